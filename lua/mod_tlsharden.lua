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

local function summary(changes)
  local parts = {}
  for _, c in ipairs(changes) do
    local before, after = tostring(c.before), tostring(c.after)
    if #before > 40 then before = before:sub(1, 37) .. "..." end
    if #after > 40 then after = after:sub(1, 37) .. "..." end
    parts[#parts + 1] = ("%s %s -> %s"):format(c.setting, before, after)
  end
  return #parts > 0 and table.concat(parts, "; ") or "nothing"
end

local function hardened_create_context(host, mode, ...)
  local info = debug.getinfo(2, "S")
  local service = service_of(host, mode, select("#", ...), info and info.short_src or "")
  local strict = policy_mode == "strict" and not allow_insecure

  -- 1. What the admin asked for, against the profile and the floor.
  local opts = { policy = strict and "strict" or "warn", mode = mode }
  if allow_insecure then opts.floor = false end
  local mok, merged, merge_report = pcall(tlsharden.merge_with, opts, table.unpack(admin_layers(...)))
  if not mok then
    local msg = tostring(merged):gsub("^[^:]*:%d+: ", "")
    module:log("error", "tlsharden: no TLS for %s (%s): %s; set tlsharden_allow_insecure = true"
      .. " to accept it", host, service, msg)
    return nil, "tlsharden: " .. msg
  end

  -- 2. Prosody builds the context as it always does ...
  local ctx, err, cfg = original(host, mode, ...)
  if not ctx then return ctx, err, cfg end

  -- 3. ... and tlsharden hardens it in place. A failure makes the context
  -- unusable, and it is not handed to Prosody.
  local policy = nil
  if allow_insecure then
    policy = { min_version = false, filter_ciphers = false, security_level = false }
  end
  local hok, hreport = pcall(tlsharden.harden, ctx, policy)
  if not hok then
    local msg = tostring(hreport):gsub("^[^:]*:%d+: ", "")
    module:log("error", "tlsharden: no TLS for %s (%s): %s", host, service, msg)
    return nil, "tlsharden: " .. msg
  end

  -- 4. Judge what is now in force, and say so once per host and service.
  local inspect = tlsharden.inspect(ctx)
  local _, fs = tlsharden.forward_secrecy(ctx)
  local chain_result
  if mode == "server" and inspect.certificate and not host:find(" ") then
    local cok, c = pcall(tlsharden.chain, ctx, { host = host,
      service = service:match("^s2s") and "xmpp-server" or "xmpp-client" })
    if cok then chain_result = c end
  end
  local facts = require("tlsharden.audit").facts(ctx, cfg or {}, chain_result, false, inspect, fs)
  local g = tlsharden.grade(facts)
  local key = host .. "\0" .. service
  local line = ("%s %s: grade %s, %s, forward secrecy %s; changed: %s"):format(host, service,
    g.grade, table.concat(inspect.versions, "+"), fs.fs, summary(hreport.changes))
  if logged[key] ~= line then
    logged[key] = line
    module:log("info", "tlsharden: %s", line)
    for _, w in ipairs(merge_report.warnings) do
      if w.lowers then
        module:log("warn", "tlsharden: %s %s: %s sets %s: %s (tlsharden kept the floor)", host, service,
          tostring(w.layer), w.key, w.message)
      end
    end
    for _, p in ipairs(chain_result and chain_result.problems or {}) do
      module:log(p.severity == "error" and "warn" or "info", "tlsharden: %s %s: certificate %s: %s",
        host, service, p.code, p.message)
    end
  end
  return ctx, err, cfg
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
