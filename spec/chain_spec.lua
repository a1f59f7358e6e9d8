local ssl = require "ssl"
local tlsharden = require "tlsharden"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local tls = require "spec.helpers.tls"

local function codes(r)
  local t = {}
  for _, p in ipairs(r.problems) do t[#t + 1] = p.code end
  table.sort(t)
  return t
end

local function has(r, code)
  for _, p in ipairs(r.problems) do if p.code == code then return p end end
end

local function bundle(...)
  local parts = {}
  for i, c in ipairs { ... } do parts[i] = pki.read(c.cert) end
  return table.concat(parts)
end

describe("tlsharden.chain", function()
  local dir, root, int1, int2, good
  setup(function()
    dir = pki.tmpdir()
    root = pki.cert(dir, "root", { ca = true, cn = "Test Root" })
    int1 = pki.cert(dir, "int1", { ca = true, issuer = root, cn = "Test Intermediate 1" })
    int2 = pki.cert(dir, "int2", { ca = true, issuer = int1, cn = "Test Intermediate 2" })
    good = pki.cert(dir, "good", { issuer = int1, cn = "example.com",
      san = { "DNS:example.com", "DNS:*.example.com" } })
  end)
  teardown(function() pki.cleanup(dir) end)

  -- openssl verify on the same files: does OpenSSL's CLI accept the chain?
  local function openssl_verify(leaf, untrusted, depth, extra)
    local ufile = dir .. "/untrusted.pem"
    pki.write(ufile, untrusted or "")
    local ok = sh.exec(("openssl verify -CAfile %s %s %s %s %s"):format(pki.quote(root.cert),
      untrusted and ("-untrusted " .. pki.quote(ufile)) or "",
      depth and ("-verify_depth " .. depth) or "", extra or "", pki.quote(leaf.cert)))
    return ok
  end

  it("passes a good chain with every field filled and no problem at all", function()
    local r = tlsharden.chain(bundle(good, int1), { cafile = root.cert, host = "example.com" })
    assert.same({}, r.problems)
    assert.is_true(r.ok)
    assert.is_true(r.trusted)
    assert.equal(1, r.depth)
    assert.equal(2, r.count)
    local c = r.certs[1]
    assert.equal("CN=example.com", c.subject)
    assert.equal("CN=Test Intermediate 1", c.issuer)
    assert.matches("^%x+$", c.serial)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", c.not_before)
    assert.is_true(c.days_left >= 364 and c.days_left <= 365)
    assert.equal("EC", c.key_type)
    assert.equal(256, c.key_bits)
    assert.equal("ecdsa-with-SHA256", c.signature)
    assert.is_false(c.is_ca)
    assert.is_false(c.self_signed)
    assert.is_true(r.certs[2].is_ca)
    assert.same({ "example.com", "*.example.com" }, c.dns_names)
    assert.same({}, c.srv_ids)
    assert.same({}, c.xmpp_addrs)
    local fp = sh.run("openssl x509 -noout -fingerprint -sha256 -in " .. pki.quote(good.cert))
    assert.equal(fp:match("=(%S+)"), c.sha256)
    assert.is_true(openssl_verify(good, pki.read(int1.cert)))
  end)

  it("reads a PEM file path, a PEM string and a list of LuaSec certificates alike", function()
    local path = pki.write(dir .. "/bundle.pem", bundle(good, int1))
    local list = { ssl.loadcertificate(pki.read(good.cert)), ssl.loadcertificate(pki.read(int1.cert)) }
    for _, source in ipairs { path, bundle(good, int1), list } do
      local r = tlsharden.chain(source, { cafile = root.cert })
      assert.is_true(r.ok)
      assert.equal(2, r.count)
      assert.equal("CN=example.com", r.certs[1].subject)
    end
  end)

  describe("depth", function()
    -- chains with 0..4 intermediates
    local chains = {}
    setup(function()
      local issuer = root
      chains[0] = { leaf = pki.cert(dir, "d0", { issuer = root }), ints = {} }
      local ints = {}
      for k = 1, 4 do
        local ca = pki.cert(dir, "dca" .. k, { ca = true, issuer = issuer })
        table.insert(ints, 1, ca)
        issuer = ca
        chains[k] = { leaf = pki.cert(dir, "d" .. k, { issuer = issuer }), ints = { table.unpack(ints) } }
      end
    end)

    for k = 0, 4 do
      it(("counts %d intermediate%s, accepts depth %d and refuses depth %d, as openssl verify does"):format(
        k, k == 1 and "" or "s", k, k - 1), function()
        local c = chains[k]
        local parts = { pki.read(c.leaf.cert) }
        for _, i in ipairs(c.ints) do parts[#parts + 1] = pki.read(i.cert) end
        local untrusted = #c.ints > 0 and table.concat(parts, "", 2) or nil
        local at = tlsharden.chain(table.concat(parts), { cafile = root.cert, depth = k })
        assert.equal(k, at.depth)
        assert.is_nil(has(at, "DEPTH_EXCEEDED"))
        assert.is_true(at.ok)
        assert.is_true(openssl_verify(c.leaf, untrusted, k))
        if k > 0 then
          local over = tlsharden.chain(table.concat(parts), { cafile = root.cert, depth = k - 1 })
          assert.truthy(has(over, "DEPTH_EXCEEDED"))
          assert.is_false(over.ok)
          assert.is_false(openssl_verify(c.leaf, untrusted, k - 1))
        end
      end)
    end

    it("defaults to depth 9, Prosody's default", function()
      assert.is_true(tlsharden.chain(bundle(good, int1), { cafile = root.cert }).ok)
    end)
  end)

  describe("validity", function()
    it("finds an expired certificate", function()
      local old = pki.cert(dir, "expired", { issuer = int1, not_before = "20200101000000Z", not_after = "20210101000000Z" })
      local r = tlsharden.chain(bundle(old, int1), { cafile = root.cert })
      assert.same({ "EXPIRED" }, codes(r))
      assert.equal(1, has(r, "EXPIRED").cert)
      assert.matches("expired on 2021%-01%-01", has(r, "EXPIRED").message)
      assert.is_false(r.ok)
      assert.is_false(openssl_verify(old, pki.read(int1.cert)))
      assert.is_nil(has(tlsharden.chain(bundle(good, int1), { cafile = root.cert }), "EXPIRED"))
    end)

    it("finds a certificate that is not yet valid", function()
      local future = pki.cert(dir, "future", { issuer = int1, not_before = "20990101000000Z", not_after = "20991231000000Z" })
      local r = tlsharden.chain(bundle(future, int1), { cafile = root.cert })
      assert.same({ "NOT_YET_VALID" }, codes(r))
      assert.is_false(openssl_verify(future, pki.read(int1.cert)))
    end)

    it("checks at another time with opts.at", function()
      local later = os.time() + 400 * 86400
      assert.truthy(has(tlsharden.chain(bundle(good, int1), { cafile = root.cert, at = later }), "EXPIRED"))
    end)

    it("warns about a certificate that expires soon, without failing", function()
      local soon = pki.cert(dir, "soon", { issuer = int1, days = 10 })
      local r = tlsharden.chain(bundle(soon, int1), { cafile = root.cert })
      local p = has(r, "EXPIRES_SOON")
      assert.equal("warning", p.severity)
      assert.is_true(r.ok)
      assert.is_nil(has(tlsharden.chain(bundle(soon, int1), { cafile = root.cert, warn_days = 5 }), "EXPIRES_SOON"))
    end)
  end)

  describe("trust", function()
    it("finds a self-signed leaf", function()
      local self = pki.cert(dir, "selfsigned", { san = { "DNS:example.com" } })
      local r = tlsharden.chain(self.cert, { cafile = root.cert })
      assert.truthy(has(r, "SELF_SIGNED"))
      assert.is_true(r.certs[1].self_signed)
      assert.is_false(openssl_verify(self))
    end)

    it("finds a self-signed root in the chain that is not trusted", function()
      local other = pki.cert(dir, "other-root", { ca = true })
      local oint = pki.cert(dir, "other-int", { ca = true, issuer = other })
      local leaf = pki.cert(dir, "other-leaf", { issuer = oint })
      local r = tlsharden.chain(bundle(leaf, oint, other), { cafile = root.cert })
      assert.truthy(has(r, "UNTRUSTED"))
      assert.is_false(r.trusted)
      assert.is_false(openssl_verify(leaf, bundle(oint, other)))
    end)

    it("says whether an intermediate is missing or the CA is unknown", function()
      -- a leaf that publishes its issuer: the server should send it
      local published = pki.cert(dir, "published", { issuer = int1, ca_issuers = "http://ca.example/int1.der" })
      local r = tlsharden.chain(published.cert, { cafile = root.cert })
      assert.same({ "MISSING_INTERMEDIATE" }, codes(r))
      assert.matches("publishes it at http://ca.example/int1.der", r.problems[1].message, 1, true)
      assert.is_false(openssl_verify(published))
      -- a leaf whose issuer publishes nothing: most likely a CA unknown here
      r = tlsharden.chain(good.cert, { cafile = root.cert })
      assert.same({ "UNKNOWN_CA" }, codes(r))
      assert.matches("neither in the chain nor a trust anchor", r.problems[1].message, 1, true)
      -- the whole chain up to an intermediate whose root is not trusted
      local other = pki.cert(dir, "private-root", { ca = true })
      local pint = pki.cert(dir, "private-int", { ca = true, issuer = other })
      local pleaf = pki.cert(dir, "private-leaf", { issuer = pint })
      r = tlsharden.chain(bundle(pleaf, pint), { cafile = root.cert })
      assert.same({ "UNKNOWN_CA" }, codes(r))
      assert.matches("the chain ends in certificate 2, an intermediate", r.problems[1].message, 1, true)
      assert.is_false(r.trusted)
    end)

    it("finds intermediates out of order", function()
      local leaf = pki.cert(dir, "deep", { issuer = int2 })
      local r = tlsharden.chain(bundle(leaf, int1, int2), { cafile = root.cert })
      assert.truthy(has(r, "WRONG_ORDER"))
      r = tlsharden.chain(bundle(int1, good), { cafile = root.cert })
      assert.truthy(has(r, "WRONG_ORDER"))
      assert.is_nil(has(tlsharden.chain(bundle(leaf, int2, int1), { cafile = root.cert }), "WRONG_ORDER"))
    end)

    it("finds an intermediate that is not a CA", function()
      local notca = pki.cert(dir, "notca", { issuer = int1 })
      local leaf = pki.cert(dir, "under-notca", { issuer = notca })
      local r = tlsharden.chain(bundle(leaf, notca, int1), { cafile = root.cert })
      assert.truthy(has(r, "NOT_CA"))
      assert.equal(2, has(r, "NOT_CA").cert)
      assert.is_false(openssl_verify(leaf, bundle(notca, int1)))
    end)

    it("uses the system store when no cafile is given", function()
      local r = tlsharden.chain(bundle(good, int1))
      assert.is_false(r.trusted)
      assert.is_false(r.ok)
    end)
  end)

  describe("strength", function()
    it("finds a 1024-bit RSA key", function()
      local weak = pki.cert(dir, "rsa1024", { issuer = int1, key_kind = "rsa1024" })
      local r = tlsharden.chain(bundle(weak, int1), { cafile = root.cert })
      assert.same({ "WEAK_KEY" }, codes(r))
      assert.matches("1024%-bit RSA key", has(r, "WEAK_KEY").message)
      local strong = pki.cert(dir, "rsa2048", { issuer = int1, key_kind = "rsa2048" })
      assert.same({}, codes(tlsharden.chain(bundle(strong, int1), { cafile = root.cert })))
    end)

    it("finds a SHA-1 signature", function()
      local sha1 = pki.cert(dir, "sha1", { issuer = int1, md = "sha1" })
      local r = tlsharden.chain(bundle(sha1, int1), { cafile = root.cert })
      assert.same({ "WEAK_SIGNATURE" }, codes(r))
      assert.equal("sha1", r.certs[1].signature_digest:lower():gsub("%-", ""))
    end)
  end)

  describe("XMPP identity", function()
    local function names(host, service, san, cn)
      local c = pki.cert(dir, "id-" .. host:gsub("%W", "_") .. "-" .. tostring(#(san or {})), {
        issuer = int1, san = san, cn = cn or "unrelated.test" })
      return tlsharden.chain(bundle(c, int1), { cafile = root.cert, host = host, service = service })
    end

    it("matches a DNS-ID exactly, in any case", function()
      assert.is_nil(has(names("Example.COM", nil, { "DNS:example.com" }), "HOST_MISMATCH"))
      assert.truthy(has(names("example.org", nil, { "DNS:example.com" }), "HOST_MISMATCH"))
    end)

    it("matches a wildcard for exactly one left-most label", function()
      local san = { "DNS:*.example.com" }
      assert.is_nil(has(names("chat.example.com", nil, san), "HOST_MISMATCH"))
      assert.truthy(has(names("example.com", nil, san), "HOST_MISMATCH"))
      assert.truthy(has(names("a.b.example.com", nil, san), "HOST_MISMATCH"))
    end)

    it("matches an SRV-ID for its service only", function()
      local c = pki.cert(dir, "srv", { issuer = int1, san = { "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-client.example.net" } })
      local r = tlsharden.chain(bundle(c, int1), { cafile = root.cert, host = "example.net", service = "xmpp-client" })
      assert.same({ "_xmpp-client.example.net" }, r.certs[1].srv_ids)
      assert.is_nil(has(r, "HOST_MISMATCH"))
      r = tlsharden.chain(bundle(c, int1), { cafile = root.cert, host = "example.net", service = "xmpp-server" })
      assert.truthy(has(r, "HOST_MISMATCH"))
    end)

    it("matches an XmppAddr", function()
      local c = pki.cert(dir, "xmppaddr", { issuer = int1, san = { "otherName:1.3.6.1.5.5.7.8.5;UTF8:example.org" } })
      local r = tlsharden.chain(bundle(c, int1), { cafile = root.cert, host = "example.org" })
      assert.same({ "example.org" }, r.certs[1].xmpp_addrs)
      assert.is_nil(has(r, "HOST_MISMATCH"))
    end)

    it("uses the CN only when there is no subjectAltName", function()
      assert.is_nil(has(names("cn.example.com", nil, nil, "cn.example.com"), "HOST_MISMATCH"))
      assert.truthy(has(names("cn.example.com", nil, { "DNS:other.example.com" }, "cn.example.com"), "HOST_MISMATCH"))
    end)
  end)

  describe("live sources", function()
    it("reads the peer chain of a real handshake", function()
      local leaf = pki.cert(dir, "localhost", { issuer = int1, san = { "DNS:localhost" } })
      local chainfile = pki.write(dir .. "/served.pem", bundle(leaf, int1))
      local srv = assert(ssl.newcontext { mode = "server", protocol = "any", key = leaf.key, certificate = chainfile })
      local r = tls.handshake(srv, tls.client { protocol = "tlsv1_3" })
      assert.is_true(r.ok)
      local result = tlsharden.chain(r.client, { cafile = root.cert, host = "localhost" })
      r.close()
      assert.equal(2, result.count)
      assert.is_true(result.ok)
      assert.equal("CN=localhost", result.certs[1].subject)
      -- and the chain the context serves
      local served = tlsharden.chain(srv, { cafile = root.cert, host = "localhost" })
      assert.equal(2, served.count)
      assert.is_true(served.ok)
      assert.equal("server", served.mode)
    end)

    it("finds a private key that does not belong to the certificate", function()
      local r = tlsharden.chain(bundle(good, int1), { cafile = root.cert, key = int1.key })
      assert.truthy(has(r, "KEY_MISMATCH"))
      assert.is_nil(has(tlsharden.chain(bundle(good, int1), { cafile = root.cert, key = good.key }), "KEY_MISMATCH"))
    end)
  end)

  describe("bad input", function()
    local function fails(pattern, ...)
      local ok, err = pcall(tlsharden.chain, ...)
      assert.is_false(ok)
      assert.matches(pattern, err, 1, true)
    end
    it("gives clear errors", function()
      fails("bad argument #1 'source': cannot read the file '/nonexistent/chain.pem'", "/nonexistent/chain.pem")
      fails("bad argument #1 'source': the PEM string holds no PEM certificate", "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
      fails("holds no PEM certificate", pki.write(dir .. "/empty.pem", "not a certificate\n"))
      fails("bad argument #1 'source': empty certificate list", {})
      fails("item 1 is not one DER certificate", { "x" })
      fails("item 1 is 42, expected a LuaSec certificate or a DER string", { 42 })
      fails("bad argument #1 'source': expected a PEM file path", 42)
      fails("bad argument #1 'source': empty path", "")
      fails("bad argument #2 'opts': unknown option 'deep'", good.cert, { deep = 2 })
      fails("bad option 'depth': expected an integer from 0 to 100, got -1", good.cert, { depth = -1 })
      fails("bad option 'service': expected \"xmpp-client\" or \"xmpp-server\"", good.cert, { service = "http" })
      fails("bad option 'cafile': cannot load the trust anchors", good.cert, { cafile = "/nonexistent" })
      fails("bad option 'key': cannot read", good.cert, { key = "/nonexistent" })
      fails("bad option 'at'", good.cert, { at = "now" })
    end)
  end)
end)
