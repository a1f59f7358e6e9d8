local ssl = require "ssl"
local tlsharden = require "tlsharden"
local pki = require "spec.helpers.pki"
local tls = require "spec.helpers.tls"
local prosody = require "spec.helpers.prosody"

local function warning_for(report, key)
  for _, w in ipairs(report.warnings) do if w.setting == key then return w end end
end

describe("tlsharden.merge", function()
  describe("Prosody 0.12 semantics", function()
    it("unions option lists", function()
      local cfg = tlsharden.merge({ { options = { "no_ticket" } }, { options = { "no_compression" } } })
      assert.same({ "no_compression", "no_ticket" }, cfg.options)
    end)

    it("removes an option only through the map form", function()
      local cfg = tlsharden.merge({ { options = { "no_ticket", "no_compression" } }, { options = { no_ticket = false } } })
      assert.same({ "no_compression" }, cfg.options)
    end)

    it("reads a bare string as a one-item list", function()
      assert.same({ "no_ticket" }, (tlsharden.merge({ { options = "no_ticket" } })).options)
    end)

    it("keeps no_tlsv1 under a tlsv1_2+ floor despite {no_tlsv1 = false}, and says so", function()
      local cfg, report = tlsharden.merge({ { protocol = "tlsv1_2+" }, { name = "host", options = { no_tlsv1 = false } } })
      assert.equal("sslv23", cfg.protocol)
      assert.same({ "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" }, cfg.options)
      local w = warning_for(report, "options.no_tlsv1")
      assert.truthy(w)
      assert.equal("host", w.layer)
      assert.matches("the floor wins", w.message, 1, true)
    end)

    it("lets a later cipher list replace an earlier one", function()
      local cfg = tlsharden.merge({ { ciphers = { "ECDHE+AESGCM", "ECDHE+CHACHA20" } }, { ciphers = { "ECDHE+AESGCM" } } })
      assert.equal("ECDHE+AESGCM", cfg.ciphers)
      cfg = tlsharden.merge({ { ciphers = { "ECDHE+AESGCM", "ECDHE+CHACHA20" } } })
      assert.equal("ECDHE+AESGCM:ECDHE+CHACHA20", cfg.ciphers)
    end)

    it("merges verifyext like options", function()
      local cfg = tlsharden.merge({ { verifyext = { "lsec_continue" } }, { verifyext = "lsec_ignore_purpose" }, { verifyext = { lsec_continue = false } } })
      assert.same({ "lsec_ignore_purpose" }, cfg.verifyext)
    end)

    it("lets the later depth win", function()
      assert.equal(5, (tlsharden.merge({ { depth = 9 }, { depth = 5 } })).depth)
    end)

    it("ignores nil and non-table layers, and records them", function()
      local cfg, report = tlsharden.merge({ n = 4, nil, { depth = 3 }, "x", false })
      assert.equal(3, cfg.depth)
      assert.equal(3, #report.ignored)
      assert.equal(1, report.ignored[1].layer)
      assert.equal("not a table (string)", report.ignored[2].reason)
    end)

    it("ignores keys starting with _ and records them", function()
      local cfg, report = tlsharden.merge({ { _comment = "x", depth = 4 } })
      assert.is_nil(cfg._comment)
      assert.equal("_comment", report.ignored[1].key)
    end)

    it("turns tlsv1_3+ into sslv23 with no_tlsv1_2", function()
      local cfg = tlsharden.merge({ { protocol = "tlsv1_3+" } })
      assert.equal("sslv23", cfg.protocol)
      assert.same({ "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", "no_tlsv1_2" }, cfg.options)
    end)

    it("passes an exact tlsv1_2 through, pinning one version", function()
      local cfg = tlsharden.merge({ { protocol = "tlsv1_2" } })
      assert.equal("tlsv1_2", cfg.protocol)
      assert.is_nil(cfg.options)
      local ctx = assert(ssl.newcontext { mode = "server", protocol = cfg.protocol })
      assert.same({ "tlsv1_2" }, tlsharden.versions(ctx).versions)
    end)

    it("translates forms Prosody does not know into a range LuaSec accepts", function()
      local cfg = tlsharden.merge({ { protocol = "TLSv1.2:TLSv1.3" } })
      assert.equal("sslv23", cfg.protocol)
      assert.same({ "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" }, cfg.options)
    end)

    it("never outputs Prosody's quirks: a number for options={true}, duplicates", function()
      assert.has_error(function() tlsharden.merge({ { options = { true } } }) end)
      local cfg = tlsharden.merge({ { protocol = "tlsv1_2+", options = { "no_tlsv1", "no_sslv3" } } })
      local seen = {}
      for _, o in ipairs(cfg.options) do
        assert.is_nil(seen[o])
        seen[o] = true
      end
    end)
  end)

  describe("order", function()
    it("order = \"prosody\" lets the first layer win", function()
      assert.equal(1, (tlsharden.merge({ { depth = 1 }, { depth = 2 }, { depth = 3 } }, { order = "prosody" })).depth)
      assert.equal(3, (tlsharden.merge({ { depth = 1 }, { depth = 2 }, { depth = 3 } })).depth)
    end)

    it("takes the order and policy as options, and a list of layers with n for holes", function()
      assert.equal(1, (tlsharden.merge({ { depth = 1 }, { depth = 2 } }, { order = "prosody" })).depth)
      assert.has_error(function() tlsharden.merge({ {} }, { order = "sideways" }) end)
      assert.has_error(function() tlsharden.merge({ {} }, { ordr = "prosody" }) end)
      assert.equal(2, (tlsharden.merge({ n = 3, { depth = 1 }, nil, { depth = 2 } })).depth)
      local ok, err = pcall(tlsharden.merge, { depth = 1 }, { depth = 2 })
      assert.is_false(ok)
      assert.same({ "argument", "merge", 2 }, { err.kind, err.fn, err.argument })
      assert.matches("tlsharden.merge: bad argument #2 'opts': unknown option 'depth'", tostring(err), 1, true)
      ok, err = pcall(tlsharden.merge, "hardened")
      assert.matches("tlsharden.merge: bad argument #1 'layers': expected a list of layers, got 'hardened'",
        tostring(err), 1, true)
    end)
  end)

  describe("report", function()
    it("records the origin of every value, by index or name", function()
      local _, report = tlsharden.merge({ { depth = 9, options = { "no_ticket" } }, tlsharden.layer("host", { verify = "peer" }), { name = "svc", options = { "no_compression" } } })
      assert.equal(1, report.origin.depth)
      assert.equal("host", report.origin.verify)
      assert.equal(1, report.origin.options.no_ticket)
      assert.equal("svc", report.origin.options.no_compression)
    end)

    it("lists every override with setting, before, after and layer", function()
      local _, report = tlsharden.merge({ { depth = 9, options = { "no_ticket" } }, { name = "b", depth = 5, options = { no_ticket = false } } })
      table.sort(report.changes, function(x, y) return x.setting < y.setting end)
      assert.same({
        { setting = "depth", before = 9, after = 5, layer = "b" },
        { setting = "options.no_ticket", before = true, after = false, layer = "b" },
      }, report.changes)
      -- plain tables, without the older names key, old and new
      local c = report.changes[1]
      assert.is_nil(getmetatable(c))
      assert.is_nil(c.key)
      assert.is_nil(c.old)
      assert.is_nil(c.new)
    end)

    it("judges a layer's protocol together with the no_* options it sets itself", function()
      -- Prosody's own port contexts: protocol = "sslv23" with no_sslv3 ... no_tlsv1_1
      local derived = { name = "port", protocol = "sslv23",
        options = { "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", "no_compression" } }
      local cfg, report = tlsharden.merge({ tlsharden.profile("hardened"), derived }, { policy = "strict" })
      assert.same({}, report.warnings)
      assert.equals("sslv23", cfg.protocol)
      -- a map form counts too, and only the versions it really switches off
      local _, r = tlsharden.merge({ tlsharden.profile("hardened"), { name = "admin", protocol = "sslv23", options = { no_sslv3 = true } } }, { policy = "warn" })
      assert.matches("lowers the minimum version from TLS 1.2 to TLS 1.0", r.warnings[1].message, 1, true)
      _, r = tlsharden.merge({ tlsharden.profile("hardened"), { name = "admin", protocol = "sslv23" } }, { policy = "warn" })
      assert.matches("to SSL 3.0", r.warnings[1].message, 1, true)
    end)

    it("warns about a lowered floor, removed protections, weak suites, depth, verify, dhparam", function()
      local dir = pki.tmpdir()
      local dh = dir .. "/dh1024.pem"
      pki.run("openssl genpkey -genparam -algorithm DH -pkeyopt dh_paramgen_prime_len:1024 -out " .. pki.quote(dh))
      local _, report = tlsharden.merge({ tlsharden.profile("hardened"), {
        name = "tutorial", protocol = "tlsv1+", options = { no_compression = false, no_renegotiation = false },
        ciphers = "ECDHE+AESGCM:AES128-SHA", depth = 0, dhparam = dh,
      } })
      pki.cleanup(dir)
      local keys = {}
      for _, w in ipairs(report.warnings) do
        keys[#keys + 1] = w.setting
        assert.equal("tutorial", w.layer)
      end
      table.sort(keys)
      assert.same({ "ciphers", "ciphers", "depth", "dhparam", "options.no_compression",
        "options.no_renegotiation", "protocol" }, keys)
      assert.matches("lowers the minimum version from TLS 1.2 to TLS 1.0", warning_for(report, "protocol").message, 1, true)
      assert.matches("DH parameters of 1024 bits", warning_for(report, "dhparam").message, 1, true)
      -- the limit is the one core.limits shows
      assert.same({ dh_min_bits = 2048 }, require("tlsharden.core").limits)
      assert.matches("(under 2048)", warning_for(report, "dhparam").message, 1, true)
    end)

    it("warns when a client context does not verify its peer", function()
      local _, report = tlsharden.merge({ { mode = "client", verify = "none" } })
      assert.truthy(warning_for(report, "verify"))
      _, report = tlsharden.merge({ { mode = "server", verify = "none" } })
      assert.is_nil(warning_for(report, "verify"))
      _, report = tlsharden.merge({ { mode = "client", verify = { "peer", "fail_if_no_peer_cert" } } })
      assert.is_nil(warning_for(report, "verify"))
    end)

    it("warns when a layer turns TLS 1.3 off", function()
      local _, report = tlsharden.merge({ tlsharden.profile("hardened"), { name = "global", options = { "no_tlsv1_3" } } })
      assert.matches("sets option no_tlsv1_3", warning_for(report, "options.no_tlsv1_3").message, 1, true)
    end)

    it("judges verify by the mode the context ends up with, in either order", function()
      local _, report = tlsharden.merge({ { mode = "client", verify = "none" }, { mode = "server" } })
      assert.is_nil(warning_for(report, "verify"))
      _, report = tlsharden.merge({ { mode = "server", verify = "none" }, { mode = "client" } })
      assert.truthy(warning_for(report, "verify"))
      _, report = tlsharden.merge({ { mode = "client" }, { mode = "server", verify = "none" } }, { order = "prosody" })
      assert.truthy(warning_for(report, "verify"))
      -- opts.mode only when no layer sets one
      _, report = tlsharden.merge({ { mode = "server", verify = "none" } }, { mode = "client" })
      assert.is_nil(warning_for(report, "verify"))
      _, report = tlsharden.merge({ { verify = "none" } }, { mode = "client" })
      assert.truthy(warning_for(report, "verify"))
    end)

    it("gives the same verdict on a pair of cipher strings every time, in its direction", function()
      local weak = "ECDHE+AESGCM:AES128-SHA"
      for _ = 1, 3 do
        local _, report = tlsharden.merge({ { ciphers = "ECDHE+AESGCM" }, { ciphers = weak } })
        assert.matches("adds 1 suite without forward secrecy or weak: AES128-SHA (no forward secrecy)",
          warning_for(report, "ciphers").message, 1, true)
        -- the first layer adds the weak suite; the second only removes it
        _, report = tlsharden.merge({ { ciphers = weak }, { ciphers = "ECDHE+AESGCM" } })
        assert.equal(1, #report.warnings)
        assert.equal(1, report.warnings[1].layer)
      end
    end)

    it("credits options a protocol floor adds to the layer that set the protocol", function()
      local _, report = tlsharden.merge({ { options = { "no_ticket" } }, { name = "floor", protocol = "tlsv1_2+" } })
      assert.equal("floor", report.origin.options.no_tlsv1_1)
      assert.equal(1, report.origin.options.no_ticket)
    end)

    it("does not list a profile's own notes (_source ...) as ignored settings", function()
      local _, report = tlsharden.merge({ tlsharden.profile("hardened"), { _note = "mine" } })
      assert.equal(1, #report.ignored)
      assert.equal("_note", report.ignored[1].key)
    end)

    it("does not warn about a forward-secret cipher list that replaces nothing", function()
      local _, report = tlsharden.merge({ { ciphers = "ECDHE+AESGCM", protocol = "tlsv1_2+", depth = 9 } })
      assert.same({}, report.warnings)
    end)

    it("marks a wholesale replacement of a profile's list, lowering or not", function()
      local _, report = tlsharden.merge({ tlsharden.profile("hardened"), { ciphers = "ECDHE+AESGCM" } })
      local w = warning_for(report, "ciphers")
      assert.is_false(w.lowers)
      assert.matches("wholesale", w.message, 1, true)
    end)
  end)

  describe("policy strict", function()
    it("raises on the first lowering, naming layer, key, old and new value", function()
      local ok, err = pcall(tlsharden.merge, { tlsharden.profile("hardened"), { name = "legacy host", protocol = "tlsv1+" } }, { policy = "strict" })
      assert.is_false(ok)
      assert.matches("tlsharden.merge: layer 'legacy host' lowers security: protocol 'tlsv1_2+' -> 'tlsv1+'", tostring(err), 1, true)
      -- a refusal is an error of its own kind, which a program can test
      assert.same({ "refused", "merge" }, { err.kind, err.fn })
    end)

    it("passes a configuration that lowers nothing", function()
      local cfg, report = tlsharden.merge({ tlsharden.profile("hardened"), { depth = 5 } }, { policy = "strict" })
      assert.equal(5, cfg.depth)
      assert.equal("strict", report.policy)
    end)
  end)

  describe("bad input", function()
    local function fails(pattern, ...)
      local ok, err = pcall(tlsharden.merge, { ... })
      assert.is_false(ok)
      assert.matches(pattern, err, 1, true)
    end
    it("names the layer and key", function()
      fails("layer 2: bad options: unknown option 'no_tls13'", {}, { options = { "no_tls13" } })
      fails("layer 'h': bad verifyext: unknown verifyext 'lsec_whatever'", { name = "h", verifyext = { "lsec_whatever" } })
      fails("layer 1: bad verify: unknown verify mode 'sometimes'", { verify = "sometimes" })
      fails("layer 1: bad certificate: expected a file path, got 42", { certificate = 42 })
      fails("layer 1: bad key: expected a file path", { key = "" })
      fails("layer 1: bad depth: expected a non-negative integer, got -1", { depth = -1 })
      fails("layer 1: bad depth: expected a non-negative integer, got 2.5", { depth = 2.5 })
      fails("layer 1: bad depth", { depth = "9" })
      fails("layer 1: bad protocol: unknown protocol version 'tlsv1_4'", { protocol = "tlsv1_4" })
      fails("layer 1: bad ciphers: OpenSSL matches no cipher suite", { ciphers = "NOTHING" })
      fails("layer 1: bad ciphers: item 2 is a number", { ciphers = { "HIGH", 3 } })
      fails("layer 1: bad curveslist: OpenSSL refuses 'X25519:P-999'", { curveslist = { "X25519", "P-999" } })
      -- OpenSSL itself skips TLS 1.3 names it does not know
      fails("layer 1: bad ciphersuites: unknown TLS 1.3 suite 'TLS_AES_128_GCM_SHA265'",
        { ciphersuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA265" })
      fails("layer 1: bad mode", { mode = "both" })
      fails("layer 1: bad key 1: expected a setting name", { "no_ticket" })
      fails("layer 1: bad name: expected a string, got 7", { name = 7 })
      fails("bad options: expected names in a list or name = true/false", { options = { no_ticket = "yes" } })
    end)
  end)

  describe("builds contexts that work", function()
    it("hardened profile plus certificate: a real handshake at TLS 1.2 and 1.3", function()
      local dir = pki.tmpdir()
      local leaf = pki.simple(dir, "localhost", "ec256")
      local cfg = tlsharden.merge({ tlsharden.profile("hardened"), { mode = "server", key = leaf.key, certificate = leaf.cert } })
      local ctx = assert(ssl.newcontext(cfg))
      assert.same({ "tlsv1_2", "tlsv1_3" }, tlsharden.versions(ctx).versions)
      for _, proto in ipairs { "tlsv1_2", "tlsv1_3" } do
        local r = tls.handshake(ctx, tls.client { protocol = proto })
        assert.is_true(r.ok, tostring(r.server_err or r.client_err))
        r.close()
      end
      local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_1", ciphers = "DEFAULT:@SECLEVEL=0" })
      assert.is_false(r.ok)
      r.close()
      pki.cleanup(dir)
    end)
  end)
end)

describe("tlsharden.profile", function()
  it("returns a fresh named layer for every profile", function()
    for _, name in ipairs { "prosody", "modern", "intermediate", "old", "hardened" } do
      local a, b = tlsharden.profile(name), tlsharden.profile(name)
      assert.are_not.equal(a, b)
      assert.equal("profile " .. name, a.name)
      assert.equal(name, a._profile)
      assert.is_string(a._source)
      a.options.x = true
      assert.is_nil(b.options.x)
    end
  end)

  it("hardened: TLS 1.2 floor, TLS 1.3 on, forward-secret AEAD only, three TLS 1.3 suites", function()
    local cfg = tlsharden.merge({ tlsharden.profile("hardened") })
    local versions = tlsharden.protocol("tlsv1_2+")
    assert.equal(versions.luasec.protocol, cfg.protocol)
    local r = tlsharden.ciphers(cfg.ciphers, { ciphersuites = cfg.ciphersuites, protocol = "tlsv1_2+" })
    assert.equal("all", r.forward_secrecy)
    for _, s in ipairs(r.suites) do assert.is_true(s.aead, s.name) end
    assert.equal(3, r.tls13_count)
    assert.equal("X25519:P-256:P-384", cfg.curveslist)
    assert.equal(9, cfg.depth)
    for _, o in ipairs { "no_compression", "no_renegotiation" } do
      assert.truthy(table.concat(cfg.options, " "):find(o, 1, true))
    end
    assert.is_nil(table.concat(cfg.options, " "):find("no_tlsv1_3", 1, true))
  end)

  it("refuses an unknown name, listing the known ones", function()
    local ok, err = pcall(tlsharden.profile, "intermedate")
    assert.is_false(ok)
    assert.matches("unknown profile 'intermedate' (known: hardened, intermediate, modern, old, prosody)", err, 1, true)
    assert.has_error(function() tlsharden.profile(nil) end)
  end)
end)

-- The compatibility claim, tested: Prosody's own util.sslconfig and
-- tlsharden.merge on the same layers give the same configuration.
local describe_prosody = prosody.installed() and describe or pending
describe_prosody("compatibility with Prosody's util.sslconfig", function()
  local sslconfig
  setup(function()
    package.path = "/usr/lib/prosody/?.lua;" .. package.path
    sslconfig = require "util.sslconfig"
  end)

  local function prosody_merge(layers)
    local cfg = sslconfig.new()
    for _, l in ipairs(layers) do cfg:apply(l) end
    local out = cfg:final()
    -- Prosody may repeat options; the set is what LuaSec sees.
    for _, key in ipairs { "options", "verifyext" } do
      if out[key] then
        local seen, list = {}, {}
        for _, o in ipairs(out[key]) do if not seen[o] then seen[o] = true list[#list + 1] = o end end
        table.sort(list)
        out[key] = #list > 0 and list or nil
      end
    end
    if out.protocol == "any" then out.protocol = "sslv23" end
    return out
  end

  local function ours(layers)
    local cfg = tlsharden.merge(layers)
    if cfg.options and #cfg.options == 0 then cfg.options = nil end
    if cfg.verifyext and #cfg.verifyext == 0 then cfg.verifyext = nil end
    return cfg
  end

  local function strip(layer)
    local t = {}
    for k, v in pairs(layer) do if type(k) ~= "string" or (k:sub(1, 1) ~= "_" and k ~= "name") then t[k] = v end end
    return t
  end

  local cases = {
    { { options = { "no_ticket" } }, { options = { "no_compression" } } },
    { { options = { "no_ticket", "no_compression" } }, { options = { no_ticket = false } } },
    { { protocol = "tlsv1_2+" }, { options = { no_tlsv1 = false } } },
    { { ciphers = { "ECDHE+AESGCM", "ECDHE+CHACHA20" } }, { ciphers = { "HIGH" } } },
    { { verifyext = { "lsec_continue" } }, { verifyext = { lsec_continue = false, lsec_ignore_purpose = true } } },
    { { depth = 9 }, { depth = 3 } },
    { { protocol = "tlsv1_3+" } },
    { { protocol = "tlsv1_2" } },
    { { protocol = "any" }, { protocol = "tlsv1+" } },
    { strip(tlsharden.profile("prosody")), strip(tlsharden.profile("intermediate")),
      { certificate = "/x.crt", key = "/x.key", mode = "server" },
      { protocol = "tlsv1_1+", ciphers = "HIGH:!aNULL", options = { "no_ticket" } } },
    { strip(tlsharden.profile("prosody")), strip(tlsharden.profile("modern")), { depth = 4, verify = { "peer", "client_once" } } },
    { strip(tlsharden.profile("prosody")), strip(tlsharden.profile("old")), { alpn = "xmpp-client" } },
  }
  for i, layers in ipairs(cases) do
    it("agrees on case " .. i, function()
      assert.same(prosody_merge(layers), ours(layers))
    end)
  end

  -- Layer sets drawn at random from values both merges accept.
  it("agrees on 500 random layer sets", function()
    local POOL = {
      options = { { "no_ticket" }, "no_compression", { no_compression = false, no_ticket = true },
        { "no_tlsv1_3", "single_dh_use" }, { no_tlsv1 = false }, { no_renegotiation = false },
        { "cipher_server_preference", "no_sslv3" }, {} },
      verifyext = { { "lsec_continue" }, "crl_check", { lsec_continue = false, crl_check_chain = true } },
      protocol = { "tlsv1_2+", "tlsv1+", "tlsv1_1+", "tlsv1_3+", "sslv3+", "tlsv1_2", "tlsv1_3", "tlsv1", "sslv23", "any" },
      ciphers = { "HIGH", "ECDHE+AESGCM", { "ECDHE+AESGCM", "AES128-SHA" }, "DEFAULT", { "HIGH", "!aNULL", "!MD5" } },
      ciphersuites = { "TLS_AES_128_GCM_SHA256", { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384" } },
      curveslist = { "X25519", { "X25519", "P-256", "P-384" }, { "P-384" } },
      depth = { 1, 2, 5, 9, 20 },
      verify = { "none", "peer", { "peer", "client_once" } },
      mode = { "server", "client" },
      key = { "/a.key", "/b.key" }, certificate = { "/a.crt" }, cafile = { "/ca.pem" },
      alpn = { "xmpp-client" },
    }
    local KEYS = {}
    for k in pairs(POOL) do KEYS[#KEYS + 1] = k end
    table.sort(KEYS)
    local seed = os.time()
    math.randomseed(seed)
    for case = 1, 500 do
      local layers = {}
      for i = 1, math.random(1, 5) do
        local layer = {}
        for _ = 1, math.random(0, 5) do
          local k = KEYS[math.random(#KEYS)]
          layer[k] = POOL[k][math.random(#POOL[k])]
        end
        layers[i] = layer
      end
      local theirs, mine = prosody_merge(layers), ours(layers)
      assert.same(theirs, mine, ("seed %d, case %d"):format(seed, case))
    end
  end)
end)
