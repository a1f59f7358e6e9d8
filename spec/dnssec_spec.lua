-- The scanner validates DNSSEC itself (tlsharden.scan.dnssec, libunbound):
-- a zone signed here and served by a real nsd on 127.0.0.1
-- (spec/helpers/dnssec_zone.lua), with the test's own trust anchor, points
-- four XMPP domains at a real Prosody: secure (DANE valid, and invalid with
-- a wrong TLSA record), an unsigned delegation (insecure), a signature
-- altered after signing and an expired one (both bogus). Every lookup's
-- verdict is the one delv and unbound-host reach on the same zone and
-- anchor; DANE counts only on secure answers; a bogus one is an error in
-- the result, the command line and the survey report.
local tlsharden = require "tlsharden"
local dnssec = require "tlsharden.scan.dnssec"
local zone = require "spec.helpers.dnssec_zone"
local prosody = require "spec.helpers.prosody"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local cli = require "spec.helpers.cli"

local function codes(list)
  local out = {}
  for _, p in ipairs(list or {}) do out[p.code] = p end
  return out
end

-- The SHA-256 of a certificate file's public key (TLSA 3 1 1).
local function spki_sha256(path)
  return sh.run(("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r")
    :format(sh.quote(path))):match("^(%x+)")
end

describe("DNSSEC validated by the scanner", function()
  local ok_zone, why_zone = zone.available()
  if not ok_zone then
    pending(why_zone .. " (scripts/install-deps.sh installs the DNSSEC fixture's packages)")
    return
  end
  if not dnssec.available() then
    pending(select(2, dnssec.available()))
    return
  end
  if not prosody.installed() then
    pending("needs Debian's prosody")
    return
  end

  local server, ns, wrong, cross
  local CASES = zone.cases
  setup(function()
    local hosts = {}
    for _, case in ipairs(CASES) do hosts[#hosts + 1] = case .. ".xmpp.test" end
    server = prosody.start { hosts = hosts, wait = { "c2s", "s2s" } }
    local digests = {}
    for _, h in ipairs(hosts) do digests[h:match("^[^.]+")] = spki_sha256(server.dir .. "/certs/" .. h .. ".crt") end
    local function tlsa(right)
      return function(case)
        return { { port = server.ports.c2s, usage = 3, selector = 1, mtype = 1,
          data = right and digests[case] or ("ab"):rep(32) } }
      end
    end
    ns = zone.start { client_port = server.ports.c2s, server_port = server.ports.s2s, tlsa = tlsa(true) }
    wrong = zone.start { client_port = server.ports.c2s, server_port = server.ports.s2s, tlsa = tlsa(false) }
    -- the unsigned domain's SRV records name a host of the signed zone,
    -- whose TLSA records (secure) match what that domain serves
    cross = zone.start { client_port = server.ports.c2s, server_port = server.ports.s2s,
      srv_targets = { insecure = "host.secure.xmpp.test." },
      tlsa = function(case)
        return { { port = server.ports.c2s, usage = 3, selector = 1, mtype = 1,
          data = case == "secure" and digests.insecure or ("ab"):rep(32) } }
      end }
  end)
  teardown(function()
    if ns then ns.stop() end
    if wrong then wrong.stop() end
    if cross then cross.stop() end
    if server then server.stop() end
  end)

  local function scan(z, case, extra)
    local opts = { kind = "c2s", resolver = "127.0.0.1:" .. z.port, trust_anchor = z.anchor_file, cafile = server.ca,
      timeout = 3, clients = false }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return tlsharden.scan(case .. ".xmpp.test", opts)
  end

  it("says what delv and unbound-host say of every SRV, address and TLSA answer", function()
    for _, case in ipairs(CASES) do
      local r = scan(ns, case)
      local names = ns.names[case]
      local function bare(n) return (n:gsub("%.$", "")) end
      local addrs = r.dns.addresses[bare(names.host)]
      local checks = {
        { names.client_srv, "SRV", r.dns.srv[bare(names.client_srv)] },
        { names.host, "A", addrs and { dnssec = addrs.dnssec } },
        { names.tlsa[1], "TLSA", r.dns.tlsa[bare(names.tlsa[1])] },
      }
      for _, c in ipairs(checks) do
        local label = ("%s %s (%s)"):format(c[1], c[2], case)
        assert(c[3] and c[3].dnssec, label .. ": no lookup in the scan")
        for _, tool in ipairs { "delv", "unbound-host" } do
          if zone.have_validator(tool) then
            local verdict, raw = zone.validate_with(tool, ns, c[1], c[2])
            assert.equal(verdict, c[3].dnssec.status, label .. ": " .. tool .. " says " .. verdict .. "\n" .. raw)
          end
        end
        assert.equal(zone.expected[case], c[3].dnssec.status, label)
      end
    end
  end)

  it("counts DANE only on secure answers: valid, invalid, insecure", function()
    local good = scan(ns, "secure")
    local e = good.endpoints[1]
    assert.same({ true, "secure" }, { good.dns.dnssec.validated, good.dns.dnssec.status })
    assert.same({ "ok", "secure", "secure" }, { e.status, e.srv_dnssec, e.address_dnssec })
    assert.same({ "valid", "secure", true }, { e.dane.status, e.dane.dnssec, e.dane.authenticated })
    local bad = scan(wrong, "secure").endpoints[1]
    assert.same({ "invalid", "secure" }, { bad.dane.status, bad.dane.dnssec })
    assert.equal("error", codes(bad.problems).DANE_MISMATCH.severity)
    -- the unsigned delegation: the matching TLSA record cannot be trusted
    local ins = scan(ns, "insecure")
    local ie = ins.endpoints[1]
    assert.same({ "insecure", "insecure", "insecure" }, { ins.dns.dnssec.status, ie.srv_dnssec, ie.dane.status })
    assert.truthy(codes(ie.problems).DANE_NOT_AUTHENTICATED)
    assert.is_nil(codes(ie.problems).DNSSEC_BOGUS)
    -- secure TLSA records that match, of a target an insecure SRV answer
    -- names: they do not count (RFC 7673)
    local x = scan(cross, "insecure").endpoints[1]
    assert.same({ "host.secure.xmpp.test", "insecure", "secure", true }, { x.host, x.srv_dnssec, x.dane.dnssec,
      x.dane.matched })
    assert.same({ "insecure", true }, { x.dane.status, x.dane.srv_insecure })
    assert.equal("warning", codes(x.problems).DANE_SRV_NOT_SECURE.severity)
  end)

  it("makes a bogus answer an error, still scanning what it names", function()
    for _, case in ipairs { "tampered", "expired" } do
      local r = scan(ns, case)
      assert.equal("bogus", r.dns.dnssec.status, case)
      local p = codes(r.problems).DNSSEC_BOGUS
      assert(p, case .. ": no DNSSEC_BOGUS among the scan's problems")
      assert.equal("error", p.severity)
      assert.matches(case == "tampered" and "signature verification failed" or "signature expired", p.message)
      local e = assert(r.endpoints[1], case .. ": the endpoint the bogus SRV names was not scanned")
      assert.same({ "ok", "bogus" }, { e.status, e.srv_dnssec })
      assert.equal("error", codes(e.problems).DNSSEC_BOGUS.severity)
      assert.is_true(e.dane.status ~= "valid")
      assert.equal("bogus", e.dane.dnssec)
    end
  end)

  it("shows DNSSEC in the command line and its JSON; --no-dnssec leaves it out", function()
    local code, out = cli.run("scan", "tampered.xmpp.test", "--kind", "c2s", "--resolver", "127.0.0.1:" .. ns.port,
      "--trust-anchor", ns.anchor_file, "--cafile", server.ca, "--no-clients", "--quiet", "--no-color")
    assert.equal(1, code)
    assert.matches("DNSSEC: bogus (validated here by libunbound", out, 1, true)
    assert.matches("error: DNSSEC_BOGUS", out, 1, true)
    assert.matches("DNSSEC: SRV bogus, addresses bogus", out, 1, true)
    local _, js = cli.run("--json", "scan", "secure.xmpp.test", "--kind", "c2s", "--resolver", "127.0.0.1:" .. ns.port,
      "--trust-anchor", ns.anchor_file, "--cafile", server.ca, "--no-clients", "--quiet")
    local doc = require("cjson").decode(js)
    assert.equal("secure", doc.dns.dnssec.status)
    assert.equal("secure", doc.endpoints[1].srv_dnssec)
    assert.equal("valid", doc.endpoints[1].dane.status)
    local _, off = cli.run("--json", "scan", "secure.xmpp.test", "--kind", "c2s", "--resolver",
      "127.0.0.1:" .. ns.port, "--no-dnssec", "--cafile", server.ca, "--no-clients", "--quiet")
    local d2 = require("cjson").decode(off)
    assert.is_false(d2.dns.dnssec.validated)
    assert.equal("insecure", d2.endpoints[1].dane.status)
  end)

  it("without lua-unbound says that DNSSEC was not validated, and why, instead of trusting an AD bit", function()
    local lua = "lua" .. _VERSION:match("%d+%.%d+")
    local ok, out = sh.exec(("%s -e 'package.preload.lunbound = function() error(\"module lunbound not found\") end'"
      .. " bin/tlsharden --json scan secure.xmpp.test --kind c2s --resolver 127.0.0.1:%d --cafile %s --no-clients"
      .. " --quiet"):format(lua, ns.port, sh.quote(server.ca)))
    local doc = require("cjson").decode(out:match("%b{}"))
    assert.is_false(doc.dns.dnssec.validated, out)
    assert.matches("lua%-unbound is not installed", doc.dns.dnssec.why)
    assert.equal("DNSSEC_NOT_VALIDATED", codes(doc.problems).DNSSEC_NOT_VALIDATED.code)
    assert.equal("info", codes(doc.problems).DNSSEC_NOT_VALIDATED.severity)
    assert.equal("insecure", doc.endpoints[1].dane.status)
    assert.is_false(doc.endpoints[1].dane.authenticated)
    local _ = ok
  end)

  it("rejects a trust anchor it cannot read, and says so of one libunbound cannot use", function()
    local ok, err = pcall(tlsharden.scan, "secure.xmpp.test", { trust_anchor = "/nonexistent/anchor.ds" })
    assert.is_false(ok)
    assert.matches("tlsharden.scan: bad option 'trust_anchor': cannot read '/nonexistent/anchor.ds'", err.message, 1,
      true)
    local garbage = pki.write(pki.tmpdir() .. "/garbage.ds", "this is not a DS record\n")
    local r = scan(ns, "secure", { trust_anchor = garbage })
    assert.is_false(r.dns.dnssec.validated)
    assert.matches("cannot start with the trust anchor", codes(r.problems).DNSSEC_NOT_VALIDATED.message, 1, true)
    -- the answers themselves still come (the resolver's), and DANE is not used
    assert.equal("insecure", r.endpoints[1].dane.status)
  end)

  it("counts bogus answers in a survey's report", function()
    local dir = pki.tmpdir()
    local list = pki.write(dir .. "/servers.txt", "secure.xmpp.test\ntampered.xmpp.test\ninsecure.xmpp.test\n")
    local code = cli.run("survey", list, "--out", dir .. "/survey.jsonl", "--kind", "c2s", "--resolver",
      "127.0.0.1:" .. ns.port, "--trust-anchor", ns.anchor_file, "--cafile", server.ca, "--timeout", "3")
    assert.is_true(code == 0 or code == 1)
    local report = require("tlsharden.report").build(dir .. "/survey.jsonl")
    local rep = require "tlsharden.report"
    assert.equal(1, rep.count(report.counts, "dnssec", "bogus"))
    assert.equal(1, rep.count(report.counts, "dnssec", "secure"))
    assert.equal(1, rep.count(report.counts, "dnssec", "insecure"))
    pki.cleanup(dir)
  end)
end)
