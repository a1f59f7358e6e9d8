-- mod_tlsharden: every TLS context Prosody builds goes through tlsharden,
-- on Prosody 0.12 and 13 alike.
--
-- Prosody has no event for context creation. Every context starts in
-- core.certmanager's create_context: portmanager (direct TLS ports) looks
-- it up in the certmanager table at each call, mod_tls keeps the function
-- it found when it was loaded. Where the two versions differ, this module
-- looks at what the running Prosody provides rather than at its version:
-- * create_context returns the LuaSec context itself (0.12) or a context
--   object around it (13, net.tls_luasec); tlsharden takes both.
-- * SNI contexts of direct TLS ports come from create_context (0.12) or
--   from the port context object's set_sni_host, which builds them from
--   the port's own settings (13): that method is wrapped too.
-- * A listener whose set_sslctx does not reach what new connections use
--   (server_epoll in both versions keeps the new context where nothing
--   reads it) gets one that does, so that a reload or this module's own
--   rebuild really replaces the context of a direct TLS port.
-- See docs/prosody.md.
module:set_global()

local tlsharden = require "tlsharden"
local pipeline = require "tlsharden.pipeline"

-- Prosody 13 names its modules prosody.*, 0.12 without the prefix; the
-- core loads these before any plugin, so this finds Prosody's own tables.
local function prosody_module(name)
  local m = package.loaded["prosody." .. name] or package.loaded[name]
  if m then return m end
  local ok, found = pcall(require, "prosody." .. name)
  if ok then return found end
  return require(name)
end

local certmanager = prosody_module "core.certmanager"
local configmanager = prosody_module "core.configmanager"
local modulemanager = prosody_module "core.modulemanager"

local profile_name = module:get_option_string("tlsharden_profile", "hardened")
local policy_mode = module:get_option_string("tlsharden_policy", "enforce")
local allow_insecure = module:get_option_boolean("tlsharden_allow_insecure", false)

-- Refuse to load with a bad setting rather than guess.
if policy_mode ~= "enforce" and policy_mode ~= "strict" then
  error(("tlsharden_policy must be \"enforce\" or \"strict\", not %q"):format(tostring(policy_mode)))
end
tlsharden.profile(profile_name)  -- raises for an unknown profile

-- What the running Prosody provides. context_api: the methods of 13's
-- context objects, found on a context net.tls_luasec makes; nil when
-- create_context hands out LuaSec contexts themselves.
local context_api
do
  local tls_luasec = package.loaded["prosody.net.tls_luasec"] or package.loaded["net.tls_luasec"]
  if type(tls_luasec) == "table" and type(tls_luasec.new_context) == "function" then
    local ok, probe = pcall(tls_luasec.new_context, { mode = "client", protocol = "any" })
    local mt = ok and type(probe) == "table" and getmetatable(probe)
    local api = mt and mt.__index
    if type(api) == "table" and type(api.set_sni_host) == "function" then context_api = api end
  end
end
-- The Prosody version the audit models for `report`.
local audit_model = context_api and "13" or "0.12"

local original = certmanager.create_context
local original_set_sni_host = context_api and context_api.set_sni_host
local hooked = false
local logged = {}

-- Port context objects (13) built here: their service and layers, for the
-- SNI contexts set_sni_host builds from them.
local port_info = setmetatable({}, { __mode = "k" })

local function active_services()
  local portmanager = package.loaded["prosody.core.portmanager"] or package.loaded["core.portmanager"]
  local services = portmanager and portmanager.get_active_services and portmanager.get_active_services()
  if not services then return function() end end
  return services:iter(nil, nil, nil, nil)
end

-- The direct TLS service whose port settings (0.12: the final configuration
-- portmanager passes on; 13: the port context object) an SNI context has.
local function sni_service(tls_cfg, port_ctx)
  for name, _, _, _, active in active_services() do
    if tls_cfg and active.tls_cfg == tls_cfg then return name end
    if port_ctx and active.server and active.server.tls_ctx == port_ctx then return name end
  end
  return "direct TLS"
end

-- Which service a create_context call is for, from its caller and shape:
-- service, kind ("port", "sni", "mod_tls" or "other").
local function service_of(host, mode, args, caller)
  local svc = host:match("^(%S+) port %d+$")
  if svc then return svc, "port" end
  if caller:find("mod_tls", 1, true) then
    if mode == "client" then return "s2s_out", "mod_tls" end
    return args.n >= 4 and "s2s_in" or "c2s", "mod_tls"
  end
  if caller:find("portmanager", 1, true) then return sni_service(args[args.n]) .. " (SNI)", "sni" end
  return "other", "other"
end

-- The layers the admin wrote for this call, lowest priority first.
local function admin_layers(...)
  local layers = { tlsharden.profile(profile_name) }
  local global_ssl = configmanager.get("*", "ssl")
  if type(global_ssl) == "table" then layers[#layers + 1] = tlsharden.layer("global ssl", global_ssl) end
  local n = select("#", ...)
  for i = n, 1, -1 do
    local l = select(i, ...)
    if type(l) == "table" then layers[#layers + 1] = tlsharden.layer(("layer %d of %d"):format(i, n), l) end
  end
  return layers
end

-- What insecure settings the admin accepted leave to harden.
local INSECURE_POLICY = { min_version = false, filter_ciphers = false, security_level = false }

local function refuse(host, service, err, hint)
  module:log("error", "tlsharden: no TLS for %s (%s): %s%s", host, service, tostring(err), hint or "")
  return nil, "tlsharden: " .. tostring(err)
end

-- Say what is in force, once per host and service (again only when it
-- changes).
local function say(label, report)
  local j = report.judgement
  local line = ("%s: grade %s, %s, forward secrecy %s; changed: %s"):format(label, j.grade.grade,
    table.concat(report.context.versions, "+"), j.forward_secrecy.forward_secrecy,
    pipeline.summary(report.harden.changes))
  if logged[label] == line then return end
  logged[label] = line
  module:log("info", "tlsharden: %s", line)
  for _, w in ipairs(report.merge.warnings) do
    if w.lowers then
      module:log("warn", "tlsharden: %s: %s sets %s: %s (tlsharden kept the floor)", label, tostring(w.layer),
        w.setting, w.message)
    end
  end
  for _, p in ipairs(j.chain and j.chain.problems or {}) do
    module:log(p.severity == "error" and "warn" or "info", "tlsharden: %s: certificate %s: %s", label,
      p.code, p.message)
  end
end

-- One context through the pipeline: what the admin asked for (layers) is
-- merged against the profile and the floor (refused under strict), build()
-- makes the context as Prosody always does, tlsharden hardens it in place
-- and judges it. A failure makes the context unusable, and it is not
-- handed to Prosody. build returns ctx, err, cfg; so does this.
local function run(host, service, label, mode, layers, build)
  local strict = policy_mode == "strict" and not allow_insecure
  local merge_opts = { policy = strict and "strict" or "warn", mode = mode }
  if allow_insecure then merge_opts.floor = false end
  local built = {}
  local ok, ctx, report = pcall(pipeline.run, {
    layers = layers,
    merge = merge_opts,
    build = function()
      local c, err, cfg = build()
      built.err, built.cfg = err, cfg
      return c, err
    end,
    harden = allow_insecure and INSECURE_POLICY or nil,
    judge = { host = host, service = service },
  })
  if not ok then
    local merge_refused = tostring(ctx):find("^tlsharden%.merge_with:")
    return refuse(host, service, ctx, merge_refused and "; set tlsharden_allow_insecure = true to accept it")
  end
  if not ctx then return nil, report, built.cfg end  -- Prosody's own failure, as it reports it
  say(label, report)
  return ctx, built.err, built.cfg
end

local function hardened_create_context(host, mode, ...)
  local args = table.pack(...)
  local info = debug.getinfo(2, "S")
  local service, kind = service_of(host, mode, args, info and info.short_src or "")
  -- 13's portmanager asks for a host's context only for its certificate
  -- and key; set_sni_host builds the SNI context (hardened there).
  if kind == "sni" and context_api then return original(host, mode, ...) end
  local layers = admin_layers(...)
  local label = kind == "port" and (host:match("^client_https port") and "client_https" or host)
    or host .. " " .. service
  local ctx, err, cfg = run(host, service, label, mode, layers, function()
    return original(host, mode, table.unpack(args, 1, args.n))
  end)
  if ctx and kind == "port" and type(ctx) == "table" then port_info[ctx] = { service = service, layers = layers } end
  return ctx, err, cfg
end

-- 13: the SNI context set_sni_host builds from the port context's
-- settings, hardened before a client can reach it; on a failure the host
-- gets no SNI context (a client asking for it is refused).
local function hardened_set_sni_host(self, name, cert, key)
  local port = port_info[self] or {}
  local service = (port.service or sni_service(nil, self)) .. " (SNI)"
  local ctx, err = run(name, service, name .. " " .. service, "server", port.layers or admin_layers(), function()
    local ok, e = original_set_sni_host(self, name, cert, key)
    if not ok then return nil, e end
    return self._sni_contexts[name]
  end)
  if not ctx then
    self._sni_contexts[name] = nil
    return false, err
  end
  return true
end

-- Listeners whose set_sslctx does not reach what new connections use get
-- one that does (until unload). Found by trying it with a marker and
-- putting everything back; nothing can connect in between.
local fixed = setmetatable({}, { __mode = "k" })
local function fix_listener(srv)
  if type(srv) ~= "table" or fixed[srv] ~= nil then return end
  fixed[srv] = false
  local set, current = srv.set_sslctx, rawget(srv, "tls_ctx")
  if type(set) ~= "function" or current == nil then return end
  local saved, marker = rawget(srv, "_sslctx"), {}
  local ok = pcall(set, srv, marker)
  local works = rawget(srv, "tls_ctx") == marker
  rawset(srv, "tls_ctx", current)
  rawset(srv, "_sslctx", saved)
  if not ok or works then return end
  rawset(srv, "set_sslctx", function(self, ctx)
    set(self, ctx)
    rawset(self, "tls_ctx", ctx)
  end)
  fixed[srv] = true
end

local function fix_listeners()
  for _, _, _, _, active in active_services() do
    if active.tls_cfg then fix_listener(active.server) end
  end
end

local function unfix_listeners()
  for srv, was_fixed in pairs(fixed) do
    if was_fixed then rawset(srv, "set_sslctx", nil) end
    fixed[srv] = nil
  end
end

-- The HTTPS client context (outgoing requests of net.http), built once at
-- startup before any module: built again with create, as startup builds
-- it. If create refuses it, outgoing HTTPS gets a context that cannot
-- complete a handshake rather than none (0.12 would then speak plain HTTP).
local function rebuild_http_client(create)
  local http = package.loaded["prosody.net.http"] or package.loaded["net.http"]
  local options = type(http) == "table" and type(http.default) == "table" and http.default.options
  if type(options) ~= "table" then return end
  local config_ssl = configmanager.get("*", "ssl") or {}
  local ctx = create("client_https port 0", "client", { capath = config_ssl.capath, cafile = config_ssl.cafile,
    verify = "peer" }, configmanager.get("*", "client_https_ssl"))
  if not ctx then
    ctx = original("client_https port 0", "client", { protocol = "tlsv1_3", options = { "no_tlsv1_3" } })
  end
  options.sslctx = ctx
end

-- Rebuild every context that exists already with create: mod_tls holds
-- its own reference to create_context (so it is reloaded), portmanager
-- rebuilds its port and SNI contexts on config-reloaded (installed
-- through fixed listeners), the HTTPS client is built again.
local function rebuild(create)
  for host in pairs(prosody.hosts) do
    if modulemanager.is_loaded(host, "tls") then modulemanager.reload(host, "tls") end
  end
  fix_listeners()
  prosody.events.fire_event("config-reloaded", { rebuilt_by = "tlsharden" })
  rebuild_http_client(create)
end

-- On a reload: first the listeners that appeared since, then, after
-- certmanager (priority 0) and portmanager (-1) have run, mod_tls's
-- contexts once more, since mod_tls (also priority 0) may have run before
-- certmanager read the new global ssl.
module:hook_global("config-reloaded", function()
  if hooked then fix_listeners() end
end, 1)
module:hook_global("config-reloaded", function(event)
  if not hooked or (type(event) == "table" and event.rebuilt_by == "tlsharden") then return end
  for host in pairs(prosody.hosts) do
    local mod = modulemanager.get_module(host, "tls")
    if mod then modulemanager.call_module_method(mod, "load", true) end
  end
end, -2)

function module.load()
  -- prosodyctl loads the module only to run its command
  if prosody.process_type == "prosodyctl" then return end
  hooked = true
  certmanager.create_context = hardened_create_context
  if context_api then context_api.set_sni_host = hardened_set_sni_host end
  module:log("info", "tlsharden: hardening every TLS context (profile %s, policy %s%s) of Prosody %s: %s",
    profile_name, policy_mode, allow_insecure and ", insecure settings allowed" or "",
    tostring(prosody.version), context_api and "context objects, SNI contexts from set_sni_host"
      or "LuaSec contexts, SNI contexts from create_context")
  rebuild(hardened_create_context)
  local n = 0
  for _, was_fixed in pairs(fixed) do if was_fixed then n = n + 1 end end
  if n > 0 then
    module:log("info", "tlsharden: %d direct TLS listener(s) ignore set_sslctx; tlsharden installs their"
      .. " new contexts itself", n)
  end
end

function module.unload()
  if not hooked then return end
  certmanager.create_context = original
  if context_api then context_api.set_sni_host = original_set_sni_host end
  rebuild(original)
  unfix_listeners()
  hooked = false
end

-- prosodyctl mod_tlsharden report [--json] [audit options]: the report of
-- `tlsharden audit` for the configuration this Prosody runs with, modelled
-- on the running version unless --prosody says otherwise.
function module.command(arg)
  if arg[1] ~= "report" then
    print("usage: prosodyctl mod_tlsharden report [--json] [--prosody 0.12|13] [--cafile F] [--min-grade G]")
    return 2
  end
  local files = configmanager.files and configmanager.files() or {}
  local argv = { "audit", files[1] or "/etc/prosody/prosody.cfg.lua" }
  local version_given = false
  for i = 2, #arg do
    argv[#argv + 1] = arg[i]
    if arg[i] == "--prosody" or tostring(arg[i]):find("^%-%-prosody=") then version_given = true end
  end
  if not version_given then
    argv[#argv + 1] = "--prosody"
    argv[#argv + 1] = audit_model
  end
  return require("tlsharden.cli").main(argv)
end
