-- tlsharden's context functions given a real Prosody 13 context object:
-- the table net.tls_luasec makes around a LuaSec context (_inner), built
-- by util.sslconfig exactly as Prosody 13's certmanager builds it, with
-- its own SNI contexts (set_sni_host). Prosody's two modules are loaded
-- from build/prosody-13 into this process alone.
local tlsharden = require "tlsharden"
local pki = require "spec.helpers.pki"
local tls = require "spec.helpers.tls"
local prosody = require "spec.helpers.prosody"

local v13 = prosody.version("13")
local describe_13 = v13.ok and describe or pending

local OLD = "DEFAULT:@SECLEVEL=0"

-- Prosody 13's net.tls_luasec and util.sslconfig, without its loader.
local function prosody13_tls()
  local paths = dofile(v13.source .. "/util/paths.lua")
  local saved = package.loaded["prosody.util.paths"]
  package.loaded["prosody.util.paths"] = paths
  local ok, sslconfig = pcall(dofile, v13.source .. "/util/sslconfig.lua")
  package.loaded["prosody.util.paths"] = saved
  assert(ok, sslconfig)
  return dofile(v13.source .. "/net/tls_luasec.lua"), sslconfig
end

describe_13("tlsharden with a Prosody 13 context object", function()
  local dir, rsa, other, tls_luasec, sslconfig
  setup(function()
    dir = pki.tmpdir()
    local ca = pki.cert(dir, "ca", { ca = true })
    rsa = pki.cert(dir, "localhost", { issuer = ca, key_kind = "rsa2048", san = { "DNS:localhost" } })
    other = pki.cert(dir, "other", { issuer = ca, key_kind = "ec256", san = { "DNS:other.test" } })
    rsa.ca = ca.cert
    tls_luasec, sslconfig = prosody13_tls()
  end)
  teardown(function() pki.cleanup(dir) end)

  -- A context object as Prosody 13's create_context returns it, for a
  -- server that asks for TLS 1.0 and every suite.
  local function weak_object()
    local builder = sslconfig._new(tls_luasec.new_context, dir):apply {
      mode = "server", protocol = "tlsv1+", ciphers = "ALL:@SECLEVEL=0",
      certificate = rsa.cert, key = rsa.key,
    }
    local obj = assert(builder:build())
    assert.is_table(obj)
    assert.is_userdata(rawget(obj, "_inner"))
    return obj
  end

  local function connects(obj, client_cfg)
    local r = tls.handshake(obj, tls.client(client_cfg))
    local ok = r.ok
    r.close()
    return ok
  end

  it("reads versions, inspect and forward secrecy through the object, as of its LuaSec context", function()
    local obj = weak_object()
    assert.same(tlsharden.versions(obj._inner), tlsharden.versions(obj))
    assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, tlsharden.versions(obj).versions)
    local info = tlsharden.inspect(obj)
    assert.same(tlsharden.inspect(obj._inner), info)
    assert.equal("server", info.mode)
    assert.equal("RSA", info.certificate.key_type)
    assert.equal("some", (tlsharden.forward_secrecy(obj)))
  end)

  it("hardens the object's LuaSec context in place: what Prosody's wrap serves changes", function()
    local obj = weak_object()
    assert.is_true(connects(obj, { protocol = "tlsv1", ciphers = OLD }))
    assert.is_true(connects(obj, { protocol = "tlsv1_2", ciphers = "AES128-GCM-SHA256" }))
    local report = tlsharden.harden(obj)
    assert.is_true(#report.changes > 0)
    assert.is_false(connects(obj, { protocol = "tlsv1", ciphers = OLD }))
    assert.is_false(connects(obj, { protocol = "tlsv1_2", ciphers = "AES128-GCM-SHA256" }))
    assert.is_true(connects(obj, { protocol = "tlsv1_3" }))
    assert.equal("all", (tlsharden.forward_secrecy(obj)))
    assert.same({ "tlsv1_2", "tlsv1_3" }, tlsharden.inspect(obj).versions)
  end)

  it("checks the chain the object serves", function()
    local obj = weak_object()
    local r = tlsharden.chain(obj, { host = "localhost", service = "xmpp-client", cafile = rsa.ca })
    assert.is_true(r.ok, r.problems[1] and r.problems[1].message)
    r = tlsharden.chain(obj, { host = "other.test", cafile = rsa.ca })
    assert.is_false(r.ok)
  end)

  it("leaves the SNI contexts set_sni_host builds from the port's settings to be hardened on their own", function()
    local obj = weak_object()
    assert.is_true(obj:set_sni_host("other.test", other.cert, other.key))
    local sni = obj._sni_contexts["other.test"]
    assert.is_userdata(sni)
    tlsharden.harden(obj)
    -- the port's settings, not the hardened port context
    assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, tlsharden.versions(sni).versions)
    tlsharden.harden(sni)
    assert.same({ "tlsv1_2", "tlsv1_3" }, tlsharden.versions(sni).versions)
    assert.equal("EC", tlsharden.inspect(sni).certificate.key_type)
  end)

  it("refuses a table that only looks like one", function()
    for _, t in ipairs {
      {}, { _inner = "ctx" }, { _inner = {} },
      setmetatable({}, { __index = { _inner = weak_object()._inner } }),  -- _inner is read raw
    } do
      for _, fn in ipairs { "harden", "inspect", "versions" } do
        local ok, err = pcall(tlsharden[fn], t)
        assert.is_false(ok)
        assert.matches("tlsharden." .. fn .. ": bad argument #1: expected a LuaSec context (ssl.newcontext)"
          .. " or a Prosody 13 context object, got a table", err, 1, true)
      end
    end
  end)
end)
