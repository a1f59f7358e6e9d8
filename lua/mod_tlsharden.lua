-- mod_tlsharden: every TLS context Prosody builds goes through tlsharden,
-- on Prosody 0.12 and 13 alike. This file holds what hooks into Prosody;
-- the rest needs no Prosody: which layers a call has and who wrote them
-- (tlsharden/prosody/plugin_layers.lua), the DH rule (plugin_dh.lua), the
-- judging from a timer with its log lines (plugin_judging.lua), and the
-- metrics of what it judged (plugin_metrics.lua).
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
--
-- What a server needs before it serves (the admin's layers merged, the
-- context built and hardened) happens when Prosody asks for the context;
-- the judgement and the log lines come afterwards. See docs/internals/plugin.md.
module:set_global()

local tlsharden = require "tlsharden"
local errors = require "tlsharden.errors"
local pipeline = require "tlsharden.pipeline"
local profiles = require "tlsharden.profiles"
local plugin_layers = require "tlsharden.prosody.plugin_layers"
local plugin_dh = require "tlsharden.prosody.plugin_dh"
local plugin_judging = require "tlsharden.prosody.plugin_judging"
local plugin_metrics = require "tlsharden.prosody.plugin_metrics"

-- Prosody 13 names its modules prosody.*, 0.12 without the prefix; the
-- core loads these before any plugin, so this finds Prosody's own tables.
local prosody_module = require "tlsharden.prosody.modules"

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
local profile_layer = profiles.shared(profile_name)

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

-- Port context objects (13) built here: their service, layers and final
-- configuration, for the SNI contexts set_sni_host builds from them.
local port_info = setmetatable({}, { __mode = "k" })

-- Everything remembered for one configuration (plugin_layers.new_memo),
-- from start-up or a reload until the next reload.
local memo
local function fresh_memo() memo = plugin_layers.new_memo() end
fresh_memo()

local function active_services()
  local portmanager = package.loaded["prosody.core.portmanager"] or package.loaded["core.portmanager"]
  local services = portmanager and portmanager.get_active_services and portmanager.get_active_services()
  if not services then return function() end end
  return services:iter(nil, nil, nil, nil)
end

local layers = plugin_layers.new { config = configmanager, services = active_services, profile = profile_layer }
local MERGE = plugin_layers.merge_options(policy_mode, allow_insecure)
local STRICT = MERGE.server.policy == "strict"
local dh = plugin_dh.new(allow_insecure)

-- What was judged, in Prosody's metrics registry (mod_http_openmetrics
-- serves it): only where Prosody has a metrics API and statistics are on.
local metrics
if prosody.process_type ~= "prosodyctl" and type(module.metric) == "function" then
  local ok, made = pcall(plugin_metrics.new, {
    metric = function(type_, name, unit, description, label_keys)
      return module:metric(type_, name, unit, description, label_keys)
    end,
    log = function(level, format, ...) module:log(level, format, ...) end,
  })
  if not ok then
    module:log("warn", "tlsharden: no metrics: %s", tostring(made))
  elseif made.enabled then
    metrics = made
  else
    module:log("debug", "tlsharden: no metrics: Prosody's statistics are off (statistics = \"internal\" turns them on)")
  end
end

local judging = plugin_judging.new {
  log = function(level, format, ...) module:log(level, format, ...) end,
  add_timer = function(delay, fn) return module:add_timer(delay, fn) end,
  config = configmanager, layers = layers, merge = MERGE, metrics = metrics,
}
local call_layers, merge_layers = layers.call_layers, layers.merge_layers

--- Building. ----------------------------------------------------------------

-- The jobs, one per depth of nested calls (Prosody does not nest them; a
-- module might). Every field is set again for each call.
local jobs, depth = {}, 0
local function job_enter(host, service, mode, port_label, owner, build)
  depth = depth + 1
  local j = jobs[depth]
  if not j then
    j = { report = {}, args_max = 0 }
    jobs[depth] = j
  end
  j.host, j.service, j.mode, j.port_label, j.owner, j.build = host, service, mode, port_label, owner, build
  j.cache, j.harden, j.later, j.n = memo, dh.harden, true, 0
  return j
end
local function job_args(j, ...)
  local n = select("#", ...)
  for i = 1, n do j[i] = (select(i, ...)) end
  for i = n + 1, j.args_max do j[i] = nil end
  if n > j.args_max then j.args_max = n end
  j.n = n
end
local JOB_FIELDS = { "cfg", "err", "sources", "cert_file", "cert", "key", "port", "dhe_slot", "layers", "merge",
  "merge_report", "config", "cache" }
local function job_leave(j)
  for i = 1, j.args_max do j[i] = nil end
  for _, k in ipairs(JOB_FIELDS) do j[k] = nil end
  j.host, j.report.config, j.report.merge, j.report.harden = nil, nil, nil, nil
  depth = depth - 1
end

-- One context through the steps a server needs before it serves with it:
-- under strict, the admin's layers merged against the profile and the
-- floor first (a context that asks for less is refused); the job's build
-- makes the context as Prosody always does; tlsharden hardens it in place;
-- then it waits for judging (plugin_judging). A failure makes the context
-- unusable, and it is not handed to Prosody. Returns ctx, err, cfg.
--
-- j is pipeline.prepare's job, one table reused for every call (see
-- job_enter): host, service, mode, port_label, owner, build (which puts
-- Prosody's final configuration in j.cfg and its error in j.err), n and
-- the call's arguments in j[1..n], and sources and cert_file when build
-- does not find them. Before a context serves, nothing is made for it in
-- Lua's heap but its record in the queue: harden's report stays on the
-- context, the report of prepare is the job's own.
local function run(j)
  local m = memo
  if STRICT then
    j.sources = j.sources or call_layers(m, j.host, table.unpack(j, 1, j.n))
    j.layers, j.merge = merge_layers(m, j.sources), MERGE[j.mode] or MERGE.server
  end
  local ok, ctx, report = pcall(pipeline.prepare, j)
  if not ok then
    -- a refusal of the strict policy (the admin's settings ask for less)
    local refused = errors.is(ctx, "refused")
    return judging.refuse(j.host, j.service, ctx, refused and "; set tlsharden_allow_insecure = true to accept it")
  end
  if not ctx then return nil, report, j.cfg end  -- Prosody's own failure, as it reports it
  if j.dhe_slot then dh.remember(j.dhe_slot, ctx) end
  j.merge_report = report.merge
  j.cert_file = j.cert_file or (j.cfg and j.cfg.certificate)
  judging.later(ctx, j)
  return ctx, j.err, j.cfg
end

-- Step 2 of a create_context call: Prosody's own.
local function build_context(_, j)
  local made, err, cfg = original(j.host, j.mode, table.unpack(j, 1, j.n))
  j.err, j.cfg = err, cfg
  return made, err
end

local function hardened_create_context(host, mode, ...)
  local caller = plugin_layers.caller_file(2)
  -- 13's portmanager asks for a host's context only for its certificate
  -- and key; set_sni_host builds the SNI context (hardened there).
  if context_api and caller:find("portmanager", 1, true) and not host:find(" port %d+$") then
    return original(host, mode, ...)
  end
  local n = select("#", ...)
  local service, kind = layers.service_of(memo, host, mode, n, n > 0 and (select(n, ...)) or nil, caller)
  local port_label = kind == "port" and (host:match("^client_https port") and "client_https" or host) or nil
  local owner = (port_label or host:find(" ", 1, true)) and "*" or host
  local j = job_enter(host, service, mode, port_label, owner, build_context)
  job_args(j, ...)
  local ok, ctx, err, cfg = pcall(run, j)
  local sources = j.sources  -- known already under strict
  job_leave(j)
  if not ok then error(ctx, 0) end
  if ctx and kind == "port" and type(ctx) == "table" then
    port_info[ctx] = { service = service, sources = sources or call_layers(memo, host, ...), cfg = cfg }
  end
  return ctx, err, cfg
end

-- Step 2 of a set_sni_host call (13): Prosody's own, from the port
-- context's settings.
local function build_sni(_, j)
  local ok, e = original_set_sni_host(j.port, j.host, j.cert, j.key)
  if not ok then
    j.err = e
    return nil, e
  end
  return j.port._sni_contexts[j.host]
end

-- 13: the SNI context set_sni_host builds from the port context's
-- settings, hardened before a client can reach it; on a failure the host
-- gets no SNI context (a client asking for it is refused).
local NO_PORT = {}
local function hardened_set_sni_host(self, name, cert, key)
  local port = port_info[self] or NO_PORT
  local service = (port.service or layers.sni_service(memo, nil, self)) .. " (SNI)"
  local j = job_enter(name, service, "server", nil, name, build_sni)
  j.sources, j.cfg, j.cert_file, j.port, j.cert, j.key = port.sources, port.cfg, cert, self, cert, key
  local ok, ctx, err = pcall(run, j)
  job_leave(j)
  if not ok then error(ctx, 0) end
  if not ctx then
    self._sni_contexts[name] = nil
    return false, err
  end
  return true
end

--- Listeners, reloads, load and unload. ---------------------------------------

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

-- certmanager reads the new global ssl in its config-reloaded handler, at
-- the priority mod_tls rebuilds its contexts at (0), in an order nobody
-- chose: mod_tls sometimes builds with the old one. While this module is
-- loaded, certmanager's handler runs first (priority 1).
local reload_ssl_config = type(certmanager.reload_ssl_config) == "function" and certmanager.reload_ssl_config
local reordered = false
local function has_handler(event, handler)
  local list = prosody.events.get_handlers and prosody.events.get_handlers(event)
  for _, h in ipairs(type(list) == "table" and list or {}) do if h == handler then return true end end
  return false
end
local function reorder_certmanager(priority)
  if not (reload_ssl_config and has_handler("config-reloaded", reload_ssl_config)) then return false end
  prosody.events.add_handler("config-reloaded", reload_ssl_config, priority)
  return true
end

-- Rebuild every context that exists already with create: mod_tls holds
-- its own reference to create_context (so it is reloaded), portmanager
-- rebuilds its port and SNI contexts on config-reloaded (installed
-- through fixed listeners), the HTTPS client is built again. The
-- configuration did not change, so certmanager need not read it again.
local function rebuild(create)
  for host in pairs(prosody.hosts) do
    if modulemanager.is_loaded(host, "tls") then modulemanager.reload(host, "tls") end
  end
  fix_listeners()
  local skip = reload_ssl_config and has_handler("config-reloaded", reload_ssl_config)
  local priority = reordered and 1 or 0
  if skip then prosody.events.remove_handler("config-reloaded", reload_ssl_config) end
  local ok, err = pcall(prosody.events.fire_event, "config-reloaded", { rebuilt_by = "tlsharden" })
  if skip then prosody.events.add_handler("config-reloaded", reload_ssl_config, priority) end
  if not ok then error(err, 0) end
  rebuild_http_client(create)
end

-- On a reload: a new configuration (nothing remembered holds), and the
-- listeners that appeared since, before anyone builds. Without the
-- reordering above, mod_tls's contexts once more after certmanager (0)
-- and portmanager (-1) have run.
module:hook_global("config-reloaded", function(event)
  if not hooked then return end
  if not (type(event) == "table" and event.rebuilt_by == "tlsharden") then fresh_memo() end
  fix_listeners()
end, 2)
module:hook_global("config-reloaded", function(event)
  if not hooked or reordered or (type(event) == "table" and event.rebuilt_by == "tlsharden") then return end
  for host in pairs(prosody.hosts) do
    local mod = modulemanager.get_module(host, "tls")
    if mod then modulemanager.call_module_method(mod, "load", true) end
  end
end, -2)

-- The metrics: the seconds until each certificate expires, fresh for
-- every collection of Prosody's statistics; a deactivated host's series go.
module:hook_global("stats-update", function()
  if hooked and metrics then metrics.refresh() end
end)
module:hook_global("host-deactivated", function(host)
  if metrics and type(host) == "string" then metrics.forget_host(host) end
end)

function module.load()
  -- prosodyctl loads the module only to run its command
  if prosody.process_type == "prosodyctl" then return end
  hooked = true
  fresh_memo()
  judging.start()
  certmanager.create_context = hardened_create_context
  if context_api then context_api.set_sni_host = hardened_set_sni_host end
  reordered = reorder_certmanager(1)
  module:log("info", "tlsharden: hardening every TLS context (profile %s, policy %s%s) of Prosody %s: %s",
    profile_name, policy_mode, allow_insecure and ", insecure settings allowed" or "",
    tostring(prosody.version), context_api and "context objects, SNI contexts from set_sni_host"
      or "LuaSec contexts, SNI contexts from create_context")
  rebuild(hardened_create_context)
  local n = 0
  for _, was_fixed in pairs(fixed) do if was_fixed then n = n + 1 end end
  if n > 0 then
    module:log("debug", "tlsharden: %d direct TLS listener(s) ignore set_sslctx; tlsharden installs their"
      .. " new contexts itself", n)
  end
end

function module.unload()
  if not hooked then return end
  certmanager.create_context = original
  if context_api then context_api.set_sni_host = original_set_sni_host end
  if reordered then reorder_certmanager(0) end
  reordered = false
  hooked = false
  judging.stop()
  if metrics then metrics.clear() end
  rebuild(original)
  unfix_listeners()
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
