-- DANE: TLSA records (RFC 6698, RFC 7671) against certificate chains made
-- here, with the expected digests computed by the openssl command line;
-- and end to end, TLSA records from a validating unbound against the chain
-- a real TLS server sent in a handshake on loopback.
local wire = require "tlsharden.wire"
local ssl = require "ssl"
local core = require "tlsharden.core"
local dane = require "tlsharden.scan.dane"
local dns = require "tlsharden.scan.dns"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local tls = require "spec.helpers.tls"
local servers = require "spec.helpers.dns_servers"

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

describe("dane", function()
  local dir, leaf, ca, other_ca, der, spki, digest
  setup(function()
    dir = pki.tmpdir()
    leaf = pki.simple(dir, "xmpp.example.test", "ec256")
    ca = { cert = leaf.ca, key = dir .. "/ca.key" }
    other_ca = pki.cert(dir, "other-ca", { ca = true, cn = "another CA" })
    local q = sh.quote
    der = {}
    for _, c in ipairs { { "leaf", leaf.cert }, { "ca", ca.cert }, { "other", other_ca.cert } } do
      sh.run(("openssl x509 -in %s -outform DER -out %s"):format(q(c[2]), q(dir .. "/" .. c[1] .. ".der")))
      sh.run(("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER -out %s"):format(
        q(c[2]), q(dir .. "/" .. c[1] .. ".spki")))
      der[c[1]] = pki.read(dir .. "/" .. c[1] .. ".der")
    end
    spki = { leaf = pki.read(dir .. "/leaf.spki"), ca = pki.read(dir .. "/ca.spki") }
    -- digest("leaf", 1, "sha256"): what openssl dgst says for the selector's bytes
    function digest(name, selector, md)
      local file = dir .. "/" .. name .. (selector == 0 and ".der" or ".spki")
      return sh.run(("openssl dgst -%s -r %s"):format(md, sh.quote(file))):match("^(%x+)")
    end
  end)
  teardown(function() pki.cleanup(dir) end)

  local function record(usage, selector, mtype, data)
    return { usage = usage, selector = selector, matching_type = mtype, data = data }
  end

  it("matches the end entity for every selector and matching type", function()
    for _, usage in ipairs { 3, 1 } do
      for selector = 0, 1 do
        local exact = hex(selector == 0 and der.leaf or spki.leaf)
        local data = { [0] = exact, [1] = digest("leaf", selector, "sha256"), [2] = digest("leaf", selector, "sha512") }
        for mtype = 0, 2 do
          local r = dane.check({ record(usage, selector, mtype, data[mtype]:upper()) }, { der.leaf, der.ca },
            { authenticated = true })
          local what = ("%d %d %d"):format(usage, selector, mtype)
          assert.equals("valid", r.status, what)
          assert.same({ { record = 1, cert = 1, usage = usage, usage_name = usage == 3 and "DANE-EE" or "PKIX-EE",
            chain_ok = true } }, r.matches, what)
          assert.equals(usage == 1, r.pkix_required, what)
          assert.same({}, r.problems, what)
        end
      end
    end
  end)

  it("matches a trust anchor above the end entity and checks the chain up to it", function()
    local ta = record(2, 1, 1, digest("ca", 1, "sha256"))
    local r = dane.check({ ta }, { der.leaf, der.ca }, { authenticated = true })
    assert.equals("valid", r.status)
    assert.same({ 2 }, r.records[1].certs)
    assert.is_true(r.certs[1].issued_by_next)
    -- the same record does not match the leaf itself
    r = dane.check({ record(2, 1, 1, digest("leaf", 1, "sha256")) }, { der.leaf, der.ca }, { authenticated = true })
    assert.equals("invalid", r.status)
    assert.equals("DANE_MISMATCH", r.problems[1].code)
    -- an anchor the leaf was not issued by matches, but the chain is broken
    r = dane.check({ record(2, 0, 2, digest("other", 0, "sha512")) }, { der.leaf, der.other }, { authenticated = true })
    assert.equals("invalid", r.status)
    assert.is_false(r.certs[1].issued_by_next)
    assert.is_false(r.matches[1].chain_ok)
    assert.equals("DANE_TA_CHAIN_BROKEN", r.problems[1].code)
    -- PKIX-TA names the CA too, and leaves path validation to the caller
    r = dane.check({ record(0, 0, 1, digest("ca", 0, "sha256")) }, { der.leaf, der.ca }, { authenticated = true })
    assert.equals("valid", r.status)
    assert.is_true(r.pkix_required)
  end)

  it("does not trust records that were not authenticated", function()
    local r = dane.check({ record(3, 1, 1, digest("leaf", 1, "sha256")) }, { der.leaf })
    assert.equals("insecure", r.status)
    assert.is_true(r.matched)
    assert.is_false(r.authenticated)
    assert.equals("DANE_NOT_AUTHENTICATED", r.problems[1].code)
    -- a lookup result carries its own AD status
    r = dane.check({ records = { record(3, 1, 1, digest("leaf", 1, "sha256")) }, authenticated = true }, { der.leaf })
    assert.equals("valid", r.status)
  end)

  it("sets unusable records aside and says when none is left", function()
    local bad = { record(4, 1, 1, digest("leaf", 1, "sha256")), record(3, 2, 0, "00"), record(3, 1, 3, "00"),
      record(3, 1, 1, "abcd"), record(3, 1, 2, digest("leaf", 1, "sha256")), record(3, 0, 0, "") }
    local r = dane.check(bad, { der.leaf }, { authenticated = true })
    assert.equals("unusable", r.status)
    local reasons = {}
    for _, rec in ipairs(r.records) do reasons[#reasons + 1] = rec.reason end
    assert.same({ "unknown certificate usage", "unknown selector", "unknown matching type",
      "SHA-256 data is not 32 bytes", "SHA-512 data is not 64 bytes", "empty data" }, reasons)
    assert.equals(7, #r.problems)
    assert.equals("DANE_UNUSABLE", r.problems[7].code)
    table.insert(bad, record(3, 1, 1, digest("ca", 1, "sha256")))
    assert.equals("invalid", dane.check(bad, { der.leaf }, { authenticated = true }).status)
    assert.equals("none", dane.check({}, { der.leaf }).status)
    -- other records of an answer (its signatures) are skipped
    r = dane.check({ { type = "RRSIG", rdata = "00" }, record(3, 1, 1, digest("leaf", 1, "sha256")) }, { der.leaf },
      { authenticated = true })
    assert.equals("valid", r.status)
    assert.is_true(r.records[1].skipped)
  end)

  it("takes PEM text and LuaSec certificates as well as DER", function()
    local pem = pki.read(leaf.cert)
    local data = digest("leaf", 0, "sha256")
    assert.equals(der.leaf, dane.der_from_pem(pem))
    assert.equals("valid", dane.check({ record(3, 0, 1, data) }, { pem }, { authenticated = true }).status)
    local x509 = assert(ssl.loadcertificate(pem))
    assert.equals("valid", dane.check({ record(3, 0, 1, data) }, { x509 }, { authenticated = true }).status)
    -- bytes that are no certificate can still be compared in full, not by key
    local r = wire.dane_match({ record(3, 0, 0, hex("junk")), record(3, 1, 1, digest("leaf", 1, "sha256")) }, { "junk" })
    assert.is_false(r.certs[1].parsed)
    assert.same({ { record = 1, cert = 1, usage = 3, chain_ok = true } }, r.matches)
  end)

  it("refuses bad records and chains, naming them", function()
    local cases = {
      { { "x", { der.leaf } }, "bad argument #1 'records': expected a list of TLSA records, got 'x'" },
      { { {}, "x" }, "bad argument #2 'chain': expected a list of DER certificates" },
      { { {}, {} }, "bad argument #2 'chain': 0 certificates (1 to 32)" },
      { { { 1 }, { der.leaf } }, "item 1 is 1, expected a TLSA record table" },
      { { { record(3, 1, 1, "xyz") }, { der.leaf } }, "item 1 field 'data': expected a hex string of whole bytes, got 'xyz'" },
      { { { record(256, 1, 1, "00") }, { der.leaf } }, "item 1 field 'usage': expected an integer 0-255, got 256" },
      { { { record(3, nil, 1, "00") }, { der.leaf } }, "item 1 field 'selector': expected an integer 0-255, got nil" },
      { { {}, { der.leaf, 5 } }, "bad argument #2 'chain': item 2 is 5, expected a DER certificate string" },
      { { {}, { "" } }, "item 1 has 0 bytes" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(wire.dane_match, table.unpack(c[1]))
      assert.is_false(ok, c[2])
      assert.matches("tlsharden.wire.dane_match: bad argument #", err, 1, true)
      assert.matches(c[2], err, 1, true)
    end
    local ok, err = pcall(dane.check, { record(3, 1, 1, "00") }, { {} })
    assert.is_false(ok)
    assert.matches("tlsharden.scan.dane.check: bad argument #2 'chain': item 1 is a table", err, 1, true)
    ok, err = pcall(dane.check, {}, {}, { bogus = 1 })
    assert.is_false(ok)
    assert.matches("tlsharden.scan.dane.check: bad argument #3 'opts': unknown option 'bogus'", err, 1, true)
  end)

  describe("end to end", function()
    if not (servers.have("unbound") and servers.have("ldns-signzone")) then
      pending("unbound and ldnsutils are not installed (scripts/install-deps.sh installs them)")
      return
    end
    local ub, dm
    setup(function()
      local tlsa = ("_5222._tcp.xmpp IN TLSA 3 1 1 %s"):format(digest("leaf", 1, "sha256"))
      ub = servers.unbound { zone = "example.test", records = { tlsa, "xmpp IN A 127.0.0.1" } }
      dm = servers.dnsmasq { rr = { "_5222._tcp.xmpp.example.test,52,030101" .. digest("leaf", 1, "sha256") } }
    end)
    teardown(function()
      if ub then ub.stop() end
      if dm then dm.stop() end
    end)

    it("validates the chain a TLS server sends against authenticated TLSA records", function()
      local hs = tls.handshake(tls.server(leaf), tls.client())
      assert.is_true(hs.ok, hs.client_err)
      local chain = hs.client:getpeerchain()
      hs.close()
      local anchor = pki.write(pki.tmpdir() .. "/anchor.ds", ub.ds)
      local plain_ub = dns.resolver { resolver = ub.address, timeout = 3 }
      local v = assert(require("tlsharden.scan.dnssec").new(plain_ub.servers, anchor))
      local signed = dns.resolver({ resolver = ub.address, timeout = 3, validator = v }):tlsa(5222, "tcp",
        "xmpp.example.test")
      assert.is_true(signed.authenticated)
      assert.equals("secure", signed.dnssec.status)
      -- the resolver's own AD bit alone is not trusted
      assert.equals("insecure", dane.check(plain_ub:tlsa(5222, "tcp", "xmpp.example.test"), chain).status)
      local r = dane.check(signed, chain)
      assert.equals("valid", r.status)
      assert.equals(1, r.matches[1].cert)
      -- the same record from a resolver that does not validate
      local plain = dns.resolver({ resolver = dm.address, timeout = 3 }):tlsa(5222, "tcp", "xmpp.example.test")
      assert.equals(1, #plain.records)
      assert.equals("insecure", dane.check(plain, chain).status)
    end)
  end)
end)
