-- mod_tlsharden: every TLS context Prosody builds goes through tlsharden.
--
-- Prosody has no event for context creation. Every context is built by
-- core.certmanager's create_context: portmanager (direct TLS ports and their
-- SNI contexts) looks it up in the certmanager table at each call, mod_tls
-- keeps the function it found when it was loaded. So this module replaces
-- the table's function, reloads mod_tls on every host so that it picks the
-- new one up, and fires config-reloaded so that portmanager rebuilds the
-- contexts of ports that were already listening. Unloading puts Prosody's
-- function back the same way. See docs/prosody.md.
module:set_global()

local tlsharden = require "tlsharden"
local pipeline = require "tlsharden.pipeline"
local certmanager = require "core.certmanager"
local configmanager = require "core.configmanager"
local modulemanager = require "core.modulemanager"

local profile_name = module:get_option_string("tlsharden_profile", "hardened")
local policy_mode = module:get_option_string("tlsharden_policy", "enforce")
local allow_insecure = module:get_option_boolean("tlsharden_allow_insecure", false)

-- Refuse to load with a bad setting rather than guess.
if policy_mode ~= "enforce" and policy_mode ~= "strict" then
  error(("tlsharden_policy must be \"enforce\" or \"strict\", not %q"):format(tostring(policy_mode)))
end
tlsharden.profile(profile_name)  -- raises for an unknown profile

local original = certmanager.create_context
local logged = {}

-- Which service a create_context call is for, from its caller and shape.
local function service_of(host, mode, nextra, caller)
  local svc = host:match("^(%S+) port %d+$")
  if svc then return svc end
  if caller:find("mod_tls", 1, true) then
    if mode == "client" then return "s2s_out" end
    return nextra >= 4 and "s2s_in" or "c2s"
  end
  if caller:find("portmanager", 1, true) then return "direct TLS (SNI)" end
  return "other"
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

local function hardened_create_context(host, mode, ...)
  local info = debug.getinfo(2, "S")
  local service = service_of(host, mode, select("#", ...), info and info.short_src or "")
  local strict = policy_mode == "strict" and not allow_insecure
  local args = table.pack(...)
  local final_err, final_cfg

  -- What the admin asked for is merged against the profile and the floor
  -- (refused under strict), Prosody builds the context as it always does,
  -- tlsharden hardens it in place and judges it. A failure makes the
  -- context unusable, and it is not handed to Prosody.
  local merge_opts = { policy = strict and "strict" or "warn", mode = mode }
  if allow_insecure then merge_opts.floor = false end
  local ok, ctx, report = pcall(pipeline.run, {
    layers = admin_layers(...),
    merge = merge_opts,
    build = function()
      local c, err, cfg = original(host, mode, table.unpack(args, 1, args.n))
      final_err, final_cfg = err, cfg
      return c, err
    end,
    harden = allow_insecure and INSECURE_POLICY or nil,
    judge = { host = host, service = service },
  })
  if not ok then
    local merge_refused = tostring(ctx):find("^tlsharden%.merge_with:")
    return refuse(host, service, ctx, merge_refused and "; set tlsharden_allow_insecure = true to accept it")
  end
  if not ctx then return nil, report, final_cfg end

  -- Say what is in force once per host and service.
  local j = report.judgement
  local key = host .. "\0" .. service
  local line = ("%s %s: grade %s, %s, forward secrecy %s; changed: %s"):format(host, service,
    j.grade.grade, table.concat(report.context.versions, "+"), j.forward_secrecy.forward_secrecy,
    pipeline.summary(report.harden.changes))
  if logged[key] ~= line then
    logged[key] = line
    module:log("info", "tlsharden: %s", line)
    for _, w in ipairs(report.merge.warnings) do
      if w.lowers then
        module:log("warn", "tlsharden: %s %s: %s sets %s: %s (tlsharden kept the floor)", host, service,
          tostring(w.layer), w.setting, w.message)
      end
    end
    for _, p in ipairs(j.chain and j.chain.problems or {}) do
      module:log(p.severity == "error" and "warn" or "info", "tlsharden: %s %s: certificate %s: %s",
        host, service, p.code, p.message)
    end
  end
  return ctx, final_err, final_cfg
end

-- Rebuild the contexts that were built before this module (or after it
-- was unloaded): mod_tls holds its own reference to create_context.
local function rebuild()
  for host in pairs(prosody.hosts) do
    if modulemanager.is_loaded(host, "tls") then modulemanager.reload(host, "tls") end
  end
  prosody.events.fire_event("config-reloaded", { rebuilt_by = "tlsharden" })
end

function module.load()
  certmanager.create_context = hardened_create_context
  module:log("info", "tlsharden: hardening every TLS context (profile %s, policy %s%s)", profile_name,
    policy_mode, allow_insecure and ", insecure settings allowed" or "")
  rebuild()
end

function module.unload()
  certmanager.create_context = original
  rebuild()
end

-- prosodyctl mod_tlsharden report [--json] [audit options]: the report of
-- `tlsharden audit` for the configuration this Prosody runs with.
function module.command(arg)
  if arg[1] ~= "report" then
    print("usage: prosodyctl mod_tlsharden report [--json] [--cafile F] [--min-grade G]")
    return 2
  end
  local files = configmanager.files and configmanager.files() or {}
  local argv = { "audit", files[1] or "/etc/prosody/prosody.cfg.lua" }
  for i = 2, #arg do argv[#argv + 1] = arg[i] end
  return require("tlsharden.cli").main(argv)
end
