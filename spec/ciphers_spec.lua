local ssl = require "ssl"
local tlsharden = require "tlsharden"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local tls = require "spec.helpers.tls"

local PROSODY_DEFAULT = "HIGH+kEECDH:HIGH+kEDH:HIGH:!PSK:!SRP:!3DES:!aNULL"
local MOZILLA_INTERMEDIATE = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" ..
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" ..
  "ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:" ..
  "DHE-RSA-CHACHA20-POLY1305"
local MOZILLA_OLD = MOZILLA_INTERMEDIATE .. ":ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:" ..
  "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:" ..
  "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:" ..
  "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA"

-- { cipher string, tlsharden opts, extra openssl ciphers flags }
local cases = {
  { PROSODY_DEFAULT },
  { MOZILLA_INTERMEDIATE },
  { MOZILLA_OLD },
  { MOZILLA_OLD .. ":@SECLEVEL=0" },
  { "ALL" },
  { "ALL:@SECLEVEL=0" },
  { "DEFAULT" },
  { "HIGH:!aNULL" },
  { "ECDHE+AESGCM" },
  { "kRSA" },
  { "aNULL:@SECLEVEL=0" },
  { "ALL:!ADH:!LOW:!EXP:!MD5:@STRENGTH" },
  { "HIGH:MEDIUM:!aNULL" },
  { "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" },
  { "ALL:!aNULL:!eNULL:!EXPORT:!DES:RC4+RSA:+HIGH:+MEDIUM" },
  { "EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH" },
  { "ECDHE+CHACHA20:ECDHE+AES" },
  { "DHE:!aNULL:@SECLEVEL=0" },
  { "PSK:@SECLEVEL=0" },
  { "ALL:eNULL:@SECLEVEL=0" },
  { "eNULL:@SECLEVEL=0" },
  { "AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0" },
  { PROSODY_DEFAULT, { protocol = "tlsv1_2" }, "-tls1_2" },
  { PROSODY_DEFAULT, { protocol = "tlsv1_3" }, "-tls1_3" },
  { "ALL", { ciphersuites = "TLS_CHACHA20_POLY1305_SHA256" }, "-ciphersuites TLS_CHACHA20_POLY1305_SHA256" },
  { "ECDHE+AESGCM", { ciphersuites = "" }, "-ciphersuites ''" },
  { "ALL", { seclevel = 0 }, "", "ALL:@SECLEVEL=0" },
}

-- openssl ciphers -v -s: name, version, Kx=, Au=, Enc=, Mac= per line.
local function openssl_ciphers(spec, flags)
  local lines = sh.lines(("openssl ciphers -v -s %s %s"):format(flags or "", sh.quote(spec)))
  local out = {}
  for _, line in ipairs(lines) do
    local name, version, kx, au, enc, mac =
      line:match("^(%S+)%s+(%S+)%s+Kx=(%S+)%s+Au=(%S+)%s+Enc=(%S+)%s+Mac=(%S+)")
    if name then out[#out + 1] = { name = name, version = version, kx = kx, au = au, enc = enc, mac = mac } end
  end
  return out
end

local kx_column = {
  ECDHE = "ECDH", DHE = "DH", RSA = "RSA", PSK = "PSK", ["ECDHE-PSK"] = "ECDHEPSK",
  ["DHE-PSK"] = "DHEPSK", ["RSA-PSK"] = "RSAPSK", SRP = "SRP", any = "any",
}
local fs_kx = { ECDH = true, DH = true, ECDHEPSK = true, DHEPSK = true, any = true }

describe("tlsharden.ciphers", function()
  for i, case in ipairs(cases) do
    local spec, opts, flags, cli_spec = case[1], case[2], case[3], case[4]
    it(("expands like `openssl ciphers -v -s` (%d: %s%s)"):format(i, spec:sub(1, 50), flags and (" " .. flags) or ""), function()
      local expected = openssl_ciphers(cli_spec or spec, flags)
      local r = tlsharden.ciphers(spec, opts)
      local names, want = {}, {}
      for j, s in ipairs(r.suites) do names[j] = s.name end
      for j, s in ipairs(expected) do want[j] = s.name end
      assert.same(want, names)
      for j, s in ipairs(r.suites) do
        assert.equal(expected[j].kx, kx_column[s.kx], s.name)
        assert.equal(fs_kx[expected[j].kx] == true, s.fs, s.name)
        assert.equal(expected[j].au == "None" and "None" or expected[j].au, s.auth == "None" and "None" or s.auth, s.name)
        if s.aead then assert.equal("AEAD", expected[j].mac) end
      end
      assert.equal(#expected, r.count)
    end)
  end

  it("classifies every field of a suite", function()
    local s = tlsharden.ciphers("ECDHE-RSA-AES128-GCM-SHA256", { ciphersuites = "" }).suites[1]
    assert.same({
      name = "ECDHE-RSA-AES128-GCM-SHA256", iana = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      id = 0xC02F, hex = "0xC0,0x2F", protocol = "tlsv1_2", kx = "ECDHE", auth = "RSA",
      encryption = "aes-128-gcm", bits = 128, alg_bits = 128, aead = true, mac = "AEAD",
      fs = true, weak = {},
    }, s)
  end)

  it("summarises Prosody 0.12's default: some forward secrecy, plain-RSA suites listed", function()
    local r = tlsharden.ciphers(PROSODY_DEFAULT)
    assert.equal("some", r.forward_secrecy)
    assert.is_nil(r.fs)  -- the verdict has one name
    assert.is_true(r.non_fs_count > 0)
    assert.equal(r.count, r.fs_count + r.non_fs_count)
    local kx = {}
    for _, suite in ipairs(r.suites) do kx[suite.name] = suite.kx end
    for _, name in ipairs(r.non_fs) do assert.equal("RSA", kx[name]) end
    assert.equal(3, r.tls13_count)
  end)

  it("says all for ECDHE+AESGCM and none for kRSA without TLS 1.3", function()
    assert.equal("all", tlsharden.ciphers("ECDHE+AESGCM").forward_secrecy)
    local r = tlsharden.ciphers("kRSA", { ciphersuites = "" })
    assert.equal("none", r.forward_secrecy)
    assert.equal(r.count, #r.non_fs)
  end)

  -- Debian's OpenSSL 3 has no RC4, DES, 3DES or EXPORT suites left to test.
  it("names the weaknesses of old suites", function()
    local r = tlsharden.ciphers("aNULL:eNULL:@SECLEVEL=0", { ciphersuites = "" })
    local by_name = {}
    for _, w in ipairs(r.weak) do by_name[w.name] = table.concat(w.reasons, ",") end
    assert.equal(r.count, #r.weak)
    assert.matches("anon", by_name["ADH-AES128-GCM-SHA256"], 1, true)
    assert.matches("NULL", by_name["NULL-SHA256"], 1, true)
    assert.matches("BITS<128", by_name["NULL-SHA256"], 1, true)
    assert.matches("NULL", by_name["AECDH-NULL-SHA"], 1, true)
  end)

  it("counts CBC suites as weak only when strict", function()
    local lax = tlsharden.ciphers("ECDHE-RSA-AES128-SHA", { ciphersuites = "" })
    local strict = tlsharden.ciphers("ECDHE-RSA-AES128-SHA", { ciphersuites = "", strict = true })
    assert.same({}, lax.suites[1].weak)
    assert.same({ "CBC" }, strict.suites[1].weak)
  end)

  it("follows the protocol option through the protocol parser", function()
    local r = tlsharden.ciphers("ALL", { protocol = "tlsv1_3+" })
    assert.equal(3, r.count)
    assert.equal("all", r.forward_secrecy)
  end)

  it("refuses a string that matches nothing, as OpenSSL does", function()
    local ok, err = pcall(tlsharden.ciphers, "NO-SUCH-CIPHER")
    assert.is_false(ok)
    assert.matches("tlsharden.ciphers: bad argument #1 'spec': no cipher suite matches 'NO-SUCH-CIPHER'", err, 1, true)
    assert.matches("no cipher match", err, 1, true)
  end)

  it("refuses bad arguments and options by name", function()
    local function fails(pattern, ...)
      local ok, err = pcall(tlsharden.ciphers, ...)
      assert.is_false(ok)
      assert.matches(pattern, err, 1, true)
    end
    fails("bad argument #1 'spec': expected a string, got no value")
    fails("bad argument #1 'spec': expected a string, got nil", nil)
    fails("bad argument #1 'spec': expected a string, got a table", {})
    fails("bad argument #1 'spec': contains a NUL byte", "ALL\0")
    fails("bad argument #2 'opts': expected a table, got 'strict'", "ALL", "strict")
    fails("unknown option 'seclvl'", "ALL", { seclvl = 1 })
    fails("bad option 'seclevel': expected an integer from 0 to 5, got 9", "ALL", { seclevel = 9 })
    fails("bad option 'seclevel'", "ALL", { seclevel = 1.5 })
    fails("bad option 'strict': expected a boolean, got 1", "ALL", { strict = 1 })
    fails("bad option 'protocol': unknown protocol version 'tlsv9'", "ALL", { protocol = "tlsv9" })
    fails("bad option 'ciphersuites': OpenSSL refuses 'NOPE'", "ALL", { ciphersuites = "NOPE" })
    fails("bad option 'ciphersuites': expected a string, got true", "ALL", { ciphersuites = true })
  end)
end)

describe("tlsharden.forward_secrecy", function()
  local dir, rsa, ec
  setup(function()
    dir = pki.tmpdir()
    rsa = pki.cert(dir, "rsa", { key_kind = "rsa2048", san = { "DNS:localhost" } })
    ec = pki.cert(dir, "ec", { key_kind = "ec256", san = { "DNS:localhost" } })
  end)
  teardown(function() pki.cleanup(dir) end)

  local function server(cert, cfg)
    local c = { protocol = "tlsv1_2" }
    for k, v in pairs(cfg or {}) do c[k] = v end
    return tls.server(cert, c)
  end

  it("judges a cipher string", function()
    local verdict, details = tlsharden.forward_secrecy("ECDHE+AESGCM")
    assert.equal("all", verdict)
    assert.equal("string", details.source)
    assert.equal("some", (tlsharden.forward_secrecy(PROSODY_DEFAULT)))
  end)

  it("gives none on a live connection with a plain-RSA suite", function()
    local r = tls.handshake(server(rsa, { ciphers = "kRSA" }), tls.client { protocol = "tlsv1_2" })
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    for _, side in ipairs { r.server, r.client } do
      local verdict, d = tlsharden.forward_secrecy(side)
      assert.equal("none", verdict)
      assert.equal("RSA", d.cipher.kx)
      assert.equal("TLSv1.2", d.protocol)
      assert.is_nil(d.group)
    end
    r.close()
  end)

  it("gives all on a live ECDHE connection, with the group and its size", function()
    local r = tls.handshake(server(ec, { ciphers = "ECDHE+AESGCM", curveslist = "X25519" }),
      tls.client { protocol = "tlsv1_2" })
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    local verdict, d = tlsharden.forward_secrecy(r.client)
    assert.equal("all", verdict)
    assert.equal("all", d.forward_secrecy)
    assert.is_nil(d.fs)
    assert.is_true(d.cipher.fs)
    assert.equal("ECDHE", d.cipher.kx)
    assert.equal("x25519", d.group:lower())
    assert.equal(253, d.group_bits)
    r.close()
  end)

  it("gives all on a live TLS 1.3 connection", function()
    local r = tls.handshake(server(ec, { protocol = "tlsv1_3" }), tls.client { protocol = "tlsv1_3" })
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    local verdict, d = tlsharden.forward_secrecy(r.server)
    assert.equal("all", verdict)
    assert.equal("TLSv1.3", d.protocol)
    assert.equal("any", d.cipher.kx)
    assert.is_string(d.group)
    r.close()
  end)

  it("counts DHE suites of a context without DH parameters as unusable", function()
    local ctx = server(rsa, { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256" })
    local verdict, d = tlsharden.forward_secrecy(ctx)
    assert.is_true(d.probed)
    assert.is_false(d.dhe_usable)
    assert.is_true(d.ecdhe_usable)
    for _, s in ipairs(d.suites) do
      if s.kx == "DHE" then assert.is_false(s.usable) assert.is_false(s.fs) end
    end
    -- unusable suites are listed apart and count neither way
    assert.same({ "DHE-RSA-AES128-GCM-SHA256" }, d.unusable)
    assert.equal("all", verdict)
    -- and a real client that only offers DHE cannot connect
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" })
    assert.is_false(r.ok)
    r.close()
  end)

  it("counts DHE suites as usable when the context has DH parameters", function()
    local params = dir .. "/dh.pem"
    sh.run("openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out " .. sh.quote(params))
    local pem = pki.read(params)
    local ctx = server(rsa, { ciphers = "DHE-RSA-AES128-GCM-SHA256", dhparam = function() return pem end })
    local verdict, d = tlsharden.forward_secrecy(ctx)
    assert.is_true(d.dhe_usable)
    assert.equal("all", verdict)
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" })
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    r.close()
  end)

  it("counts DHE suites of an ECDSA-only context as unusable, DH parameters or not", function()
    local params = dir .. "/dh-ec.pem"
    sh.run("openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out " .. sh.quote(params))
    local pem = pki.read(params)
    local ctx = server(ec, { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
      dhparam = function() return pem end })
    local _, d = tlsharden.forward_secrecy(ctx)
    assert.is_false(d.dhe_usable)
    assert.same({ "DHE-RSA-AES128-GCM-SHA256" }, d.unusable)
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" })
    assert.is_false(r.ok)
    r.close()
  end)

  it("tests DHE on a context with an ECDSA and an RSA certificate, and keeps the one in use", function()
    local params = dir .. "/dh-dual.pem"
    sh.run("openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out " .. sh.quote(params))
    local pem = pki.read(params)
    local ctx = server(ec, { certificate = false, key = false, dhparam = function() return pem end,
      ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
      certificates = { { certificate = rsa.cert, key = rsa.key }, { certificate = ec.cert, key = ec.key } } })
    local before = tlsharden.inspect(ctx).certificate
    local _, d = tlsharden.forward_secrecy(ctx)
    assert.is_true(d.dhe_usable)
    assert.same(before, tlsharden.inspect(ctx).certificate)
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" })
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    r.close()
    r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2", ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256" })
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    r.close()
  end)

  it("does not probe a client context", function()
    local ctx = assert(ssl.newcontext { mode = "client", protocol = "tlsv1_2", ciphers = "kRSA:ECDHE+AESGCM" })
    local verdict, d = tlsharden.forward_secrecy(ctx)
    assert.equal("some", verdict)
    assert.is_false(d.probed)
  end)

  it("refuses other values and unfinished connections", function()
    for _, bad in ipairs { 1, {}, true, io.stdout } do
      local ok, err = pcall(tlsharden.forward_secrecy, bad)
      assert.is_false(ok)
      assert.matches("tlsharden.forward_secrecy: bad argument #1: expected a cipher string, a LuaSec context or a LuaSec connection", err, 1, true)
    end
    local socket = require "socket"
    local conn = assert(ssl.wrap(assert(socket.tcp()), server(ec)))
    local ok, err = pcall(tlsharden.forward_secrecy, conn)
    assert.is_false(ok)
    assert.matches("has not completed its handshake", err, 1, true)
    conn:close()
  end)
end)
