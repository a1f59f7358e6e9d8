--- mod_tlsharden's layers: which tables of a create_context call the admin
-- wrote (named after their option, "global ssl", "ssl of example.org"),
-- which Prosody derived itself (named after what they are for, neither
-- merged nor warned about), the merge layers and options, and which
-- service a call is for.
--
-- Nothing here touches Prosody: plugin_layers.new takes what it reads.
-- Every function takes the memo of the configuration the context is built
-- with (m, from new_memo), so that a reload starts from nothing.
local tlsharden = require "tlsharden"
local compat = require "tlsharden.compat"

local plugin_layers = {}

-- Layers Prosody adds itself, by what they hold (their keys, sorted).
plugin_layers.DERIVED = {
  verify = "Prosody's client certificate request",
  verifyext = "Prosody's certificate checks",
  alpn = "Prosody's ALPN",
  ["certificate key"] = "the certificate Prosody found",
  ["cafile capath verify"] = "Prosody's HTTPS client verification",
}
local DERIVED = plugin_layers.DERIVED

--- Everything mod_tlsharden remembers for one configuration, from
-- start-up or a reload until the next reload (when certificates, DH files
-- and the configuration's tables may all have changed):
--   admin    configuration table -> the option it is ("global ssl", "ssl of example.org", ...)
--   scanned  the configuration scopes already read into admin
--   derived  other layer tables -> what Prosody made them for
--   named    configuration table -> its named copy (the merge layer)
--   merges   remembered merges (pipeline.prepare's cache)
--   dhe      whether equal contexts needed automatic DH parameters (plugin_dh)
--   sni      port settings -> the direct TLS service they are for
--   judge    forward secrecy and chains (pipeline.judge's memo)
--   warned   warnings already logged (plugin_judging)
function plugin_layers.new_memo()
  return { admin = {}, scanned = {}, derived = {}, named = {}, merges = {}, dhe = {}, judge = {},
    warned = {}, sni = {} }
end

-- The file of each calling function seen, by function.
local caller_files = setmetatable({}, { __mode = "k" })

--- The file of the function level levels up the stack (1: the function
-- that calls caller_file, 2: its caller), remembered per function: who
-- called create_context decides which service the context is for.
function plugin_layers.caller_file(level)
  local info = debug.getinfo(level + 1, "f")
  local f = info and info.func
  if not f then return "" end
  local file = caller_files[f]
  if not file then
    local s = debug.getinfo(f, "S")
    file = s and s.short_src or ""
    caller_files[f] = file
  end
  return file
end

--- The merge options of a policy ("enforce" or "strict"), by mode:
-- { server = ..., client = ... }. With allow_insecure, strict refuses
-- nothing and there is no floor.
function plugin_layers.merge_options(policy_mode, allow_insecure)
  local function options(mode)
    local strict = policy_mode == "strict" and not allow_insecure
    local opts = { policy = strict and "strict" or "warn", mode = mode }
    if allow_insecure then opts.floor = false end
    return opts
  end
  return { server = options("server"), client = options("client") }
end

--- The layer logic, over what the running Prosody provides. opts:
--   config    configmanager or alike: get(scope, option), getconfig() (optional)
--   services  function returning an iterator over the active services, as
--             portmanager's get_active_services():iter() (name, _, _, _, active)
--   profile   the profile's merge layer, first of every list
-- Returns a table of functions (see below).
function plugin_layers.new(opts)
  local config, active_services, profile_layer = opts.config, opts.services, opts.profile
  local L = {}

  -- Every table the admin wrote in one scope of the configuration ("*" or
  -- a host), and every table inside one, by identity (into m.admin).
  local function scan_scope(m, scope)
    if m.scanned[scope] then return end
    m.scanned[scope] = true
    local all = config.getconfig and config.getconfig()
    local options = type(all) == "table" and rawget(all, scope)
    if type(options) ~= "table" then return end
    for key, value in pairs(options) do
      if type(key) == "string" and type(value) == "table" then
        local name = scope == "*" and ("global " .. key) or (key .. " of " .. scope)
        m.admin[value] = m.admin[value] or name
        for k, sub in pairs(value) do
          if type(sub) == "table" and (type(k) == "string" or compat.is_integer(k)) then
            m.admin[sub] = m.admin[sub] or ("%s[%s]"):format(name, tostring(k))
          end
        end
      end
    end
  end

  --- The option a table is, if the admin wrote it: looked up in the host's
  -- scope, its parent domain's (mod_tls falls back to it) and the global one.
  function L.admin_name(m, tbl, host)
    local name = m.admin[tbl]
    if name then return name end
    scan_scope(m, "*")
    if host and not host:find(" ", 1, true) then
      scan_scope(m, host)
      local parent = host:match("%.(.+)$")
      if parent then scan_scope(m, parent) end
    end
    return m.admin[tbl]
  end
  local admin_name = L.admin_name

  --- What Prosody made a table it derived for: by the keys it holds, or as
  -- the final settings of a listening port.
  function L.derived_name(m, tbl)
    local name = m.derived[tbl]
    if name then return name end
    local keys = {}
    for k in pairs(tbl) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    name = DERIVED[table.concat(keys, " ")]
    if not name then
      for service, _, _, _, active in active_services() do
        if active.tls_cfg == tbl then name = "Prosody's final settings of the " .. service .. " port" end
      end
    end
    name = name or "settings from Prosody or a module"
    m.derived[tbl] = name
    return name
  end
  local derived_name = L.derived_name

  --- The layers of a create_context call for host with the extra arguments
  -- ..., lowest priority first as Prosody applies them (the global ssl,
  -- then the extra arguments from last to first): { table, name, admin }
  -- each. Empty tables are left out.
  function L.call_layers(m, host, ...)
    local layers = {}
    local function add(tbl)
      if type(tbl) ~= "table" or next(tbl) == nil then return end
      local name = admin_name(m, tbl, host)
      layers[#layers + 1] = { table = tbl, name = name or derived_name(m, tbl), admin = name ~= nil }
    end
    add(config.get("*", "ssl"))
    for i = select("#", ...), 1, -1 do add((select(i, ...))) end
    return layers
  end

  --- The merge layers of call_layers' list: the profile and the admin's
  -- layers (named copies, one per table and configuration, so that merges
  -- can be remembered). What Prosody derives itself is not the admin's to
  -- answer for: it is neither merged nor warned about, and listed at debug.
  function L.merge_layers(m, layers)
    local list = { profile_layer }
    for _, l in ipairs(layers) do
      if l.admin then
        local named = m.named[l.table]
        if not named then
          named = tlsharden.layer(l.name, l.table)
          m.named[l.table] = named
        end
        list[#list + 1] = named
      end
    end
    return list
  end

  --- The direct TLS service whose port settings (0.12: the final
  -- configuration portmanager passes on; 13: the port context object) an
  -- SNI context has; "direct TLS" when no active service has them.
  -- Remembered per configuration (m.sni): every host's SNI context has the
  -- same port settings.
  function L.sni_service(m, tls_cfg, port_ctx)
    local key = tls_cfg or port_ctx
    local known = key ~= nil and m.sni[key]
    if known then return known end
    local found = "direct TLS"
    for name, _, _, _, active in active_services() do
      if (tls_cfg and active.tls_cfg == tls_cfg) or (port_ctx and active.server and active.server.tls_ctx == port_ctx) then
        found = name
        break
      end
    end
    if key ~= nil then m.sni[key] = found end
    return found
  end
  local sni_service = L.sni_service

  --- Which service a create_context call is for, from its host, mode, the
  -- file of its caller and its shape (n arguments after host and mode,
  -- the last of them last): service, kind ("port", "sni", "mod_tls" or
  -- "other").
  function L.service_of(m, host, mode, n, last, caller)
    local svc = host:match("^(%S+) port %d+$")
    if svc then return svc, "port" end
    if caller:find("mod_tls", 1, true) then
      if mode == "client" then return "s2s_out", "mod_tls" end
      return n >= 4 and "s2s_in" or "c2s", "mod_tls"
    end
    if caller:find("portmanager", 1, true) then return sni_service(m, last) .. " (SNI)", "sni" end
    return "other", "other"
  end

  return L
end

return plugin_layers
