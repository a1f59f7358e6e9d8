-- mod_tlsharden's layers (tlsharden.prosody.plugin_layers) without a
-- Prosody: the admin's tables named after their option, the layers Prosody
-- derives named after what they are for and never merged, the merge
-- options, and which service a create_context call is for.
local pipeline = require "tlsharden.pipeline"
local profiles = require "tlsharden.profiles"

-- The module loaded afresh where Prosody's globals raise when touched.
local load_without_prosody = require "spec.helpers.no_prosody"

local plugin_layers = load_without_prosody "tlsharden.prosody.plugin_layers"

-- A configuration as configmanager holds it, and its two lookups.
local function configuration(tree)
  return {
    get = function(scope, option) return (tree[scope] or {})[option] end,
    getconfig = function() return tree end,
  }
end

-- portmanager's active services: name, _, _, _, { tls_cfg, server }.
local function services(list)
  return function()
    local i = 0
    return function()
      i = i + 1
      local s = list[i]
      if s then return s.name, nil, nil, nil, s end
    end
  end
end

local function names(layers)
  local out = {}
  for i, l in ipairs(layers) do out[i] = { l.name, l.admin } end
  return out
end

describe("plugin_layers", function()
  local tree, global_ssl, global_c2s, host_ssl, host_c2s, port_cfg, port_ctx, L, m

  before_each(function()
    global_ssl = { protocol = "tlsv1+", options = { "no_ticket" } }
    global_c2s = { ciphers = "HIGH" }
    host_ssl = { certificate = "/etc/example.crt", key = "/etc/example.key" }
    host_c2s = { protocol = "tlsv1_1+" }
    port_cfg = { mode = "server", protocol = "tlsv1_2+" }
    port_ctx = {}
    tree = {
      ["*"] = { ssl = global_ssl, c2s_ssl = global_c2s, admins = {}, c2s_require_encryption = true,
        https_ports = { { 5281 } } },
      ["example.org"] = { ssl = host_ssl, c2s_ssl = host_c2s },
    }
    L = plugin_layers.new {
      config = configuration(tree),
      services = services {
        { name = "c2s_direct_tls", tls_cfg = port_cfg, server = { tls_ctx = port_ctx } },
        { name = "s2s" },
      },
      profile = profiles.shared("hardened"),
    }
    m = plugin_layers.new_memo()
  end)

  it("loads and runs without a Prosody", function()
    assert.is_function(plugin_layers.new)
    assert.same({ { "global ssl", true } }, names(L.call_layers(m, "example.org")))
  end)

  it("names the admin's tables after their option, lowest priority first", function()
    -- mod_tls's c2s call: host c2s_ssl, host ssl, global c2s_ssl
    local layers = L.call_layers(m, "example.org", host_c2s, host_ssl, global_c2s)
    assert.same({
      { "global ssl", true },
      { "global c2s_ssl", true },
      { "ssl of example.org", true },
      { "c2s_ssl of example.org", true },
    }, names(layers))
    assert.equal(global_ssl, layers[1].table)
    assert.equal(host_c2s, layers[4].table)
  end)

  it("names the tables inside an option by their key", function()
    assert.equal("global ssl[options]", L.admin_name(m, global_ssl.options, "example.org"))
    assert.equal("global https_ports[1]", L.admin_name(m, tree["*"].https_ports[1], "example.org"))
    local layers = L.call_layers(m, "example.org", global_ssl.options)
    assert.same({ { "global ssl", true }, { "global ssl[options]", true } }, names(layers))
  end)

  it("finds a subdomain's tables in its parent domain's scope, as mod_tls falls back to it", function()
    local layers = L.call_layers(m, "conference.example.org", host_ssl)
    assert.same({ { "global ssl", true }, { "ssl of example.org", true } }, names(layers))
  end)

  it("reads a scope once per memo: a new memo sees a new configuration", function()
    assert.same({ { "global ssl", true }, { "ssl of example.org", true } },
      names(L.call_layers(m, "example.org", host_ssl)))
    local replaced = { protocol = "tlsv1_2+" }
    tree["example.org"].ssl = replaced
    assert.same({ { "global ssl", true }, { "settings from Prosody or a module", false } },
      names(L.call_layers(m, "example.org", replaced)))
    local fresh = plugin_layers.new_memo()
    assert.same({ { "global ssl", true }, { "ssl of example.org", true } },
      names(L.call_layers(fresh, "example.org", replaced)))
  end)

  it("names the layers Prosody derives by what they are for, and leaves out empty ones and non-tables", function()
    local layers = L.call_layers(m, "example.org",
      { alpn = "xmpp-server" }, { verifyext = { "lsec_continue" } }, { verify = { "peer" } },
      { certificate = "/c", key = "/k" }, { cafile = "/ca", capath = "/etc/ssl/certs", verify = "peer" },
      port_cfg, { something = true }, {}, nil, false, "text")
    assert.same({
      { "global ssl", true },
      { "settings from Prosody or a module", false },
      { "Prosody's final settings of the c2s_direct_tls port", false },
      { "Prosody's HTTPS client verification", false },
      { "the certificate Prosody found", false },
      { "Prosody's client certificate request", false },
      { "Prosody's certificate checks", false },
      { "Prosody's ALPN", false },
    }, names(layers))
  end)

  it("merges the profile and the admin's layers only, each as one named copy per memo", function()
    local derived = { protocol = "sslv3+" }
    local layers = L.call_layers(m, "example.org", host_c2s, derived, global_c2s)
    local list = L.merge_layers(m, layers)
    assert.equal(4, #list)
    assert.equal(profiles.shared("hardened"), list[1])
    assert.same({ "global ssl", "global c2s_ssl", "c2s_ssl of example.org" },
      { list[2].name, list[3].name, list[4].name })
    assert.equal("tlsv1+", list[2].protocol)
    assert.equal(list[2], L.merge_layers(m, layers)[2])
    assert.are_not.equal(list[2], L.merge_layers(plugin_layers.new_memo(), layers)[2])
    -- what the admin wrote is warned about under its option's name; what
    -- Prosody or a module derived is not merged at all
    local _, report = pipeline.merge { layers = list, merge = plugin_layers.merge_options("enforce", false).server }
    local warned = {}
    for _, w in ipairs(report.warnings) do
      if w.lowers then warned[#warned + 1] = tostring(w.layer) .. " " .. w.setting end
    end
    table.sort(warned)
    assert.same({ "c2s_ssl of example.org protocol", "global c2s_ssl ciphers", "global ssl protocol" }, warned)
  end)

  it("makes merge options for each policy", function()
    assert.same({ server = { policy = "warn", mode = "server" }, client = { policy = "warn", mode = "client" } },
      plugin_layers.merge_options("enforce", false))
    assert.same({ server = { policy = "strict", mode = "server" }, client = { policy = "strict", mode = "client" } },
      plugin_layers.merge_options("strict", false))
    assert.same({ server = { policy = "warn", mode = "server", floor = false },
      client = { policy = "warn", mode = "client", floor = false } },
      plugin_layers.merge_options("strict", true))
  end)

  it("tells a call's service from its host, mode, caller and shape", function()
    local function of(...) return { L.service_of(m, ...) } end
    assert.same({ "c2s_direct_tls", "port" }, of("c2s_direct_tls port 5223", "server", 1, port_cfg, "portmanager.lua"))
    assert.same({ "https", "port" }, of("https port 5281", "server", 0, nil, "x"))
    assert.same({ "c2s", "mod_tls" }, of("example.org", "server", 3, global_c2s, "plugins/mod_tls.lua"))
    assert.same({ "s2s_in", "mod_tls" }, of("example.org", "server", 5, {}, "plugins/mod_tls.lua"))
    assert.same({ "s2s_out", "mod_tls" }, of("example.org", "client", 5, {}, "plugins/mod_tls.lua"))
    assert.same({ "c2s_direct_tls (SNI)", "sni" }, of("example.org", "server", 1, port_cfg, "core/portmanager.lua"))
    assert.same({ "direct TLS (SNI)", "sni" }, of("example.org", "server", 1, {}, "core/portmanager.lua"))
    assert.same({ "other", "other" }, of("example.org", "server", 0, nil, "plugins/mod_other.lua"))
  end)

  it("finds an SNI context's service by its port settings or port context, once per memo", function()
    assert.equal("c2s_direct_tls", L.sni_service(m, port_cfg))
    assert.equal("c2s_direct_tls", L.sni_service(m, nil, port_ctx))
    assert.equal("direct TLS", L.sni_service(m, nil, {}))
    assert.equal("c2s_direct_tls", m.sni[port_cfg])
    m.sni[port_cfg] = "remembered"
    assert.equal("remembered", L.sni_service(m, port_cfg))
  end)

  it("gives the file of the calling function", function()
    local function called()
      local file = plugin_layers.caller_file(2)
      return file
    end
    local function caller()
      local file = called()
      return file
    end
    assert.matches("plugin_layers_spec.lua", caller(), 1, true)
    assert.matches("plugin_layers_spec.lua", plugin_layers.caller_file(1), 1, true)
  end)

  it("starts every configuration with an empty memo", function()
    local a, b = plugin_layers.new_memo(), plugin_layers.new_memo()
    for _, k in ipairs { "admin", "scanned", "derived", "named", "merges", "dhe", "judge", "warned", "sni" } do
      assert.same({}, a[k])
      assert.are_not.equal(a[k], b[k])
    end
  end)
end)
