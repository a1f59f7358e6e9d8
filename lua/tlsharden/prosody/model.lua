--- What Prosody's certmanager does with a configuration: which TLS
-- contexts it builds for a host (c2s, s2s in and out, direct TLS and HTTPS
-- SNI contexts), with which layers in which order, where it finds each
-- host's certificate, and the encryption policy options around them, for
-- Prosody 0.12 and 13 (their differences are listed in docs/reference/audit.md).
-- The configuration itself is read by prosody/config.lua; the audit merges
-- and judges these layers through the pipeline.
local errors = require "tlsharden.errors"
local profiles = require "tlsharden.profiles"
local prosody_config = require "tlsharden.prosody.config"

local resolve = prosody_config.resolve

local M = {}
local model = {}
model.__index = model

--- The Prosody versions modelled, oldest first.
M.versions = { "0.12", "13" }
local KNOWN_VERSION = { ["0.12"] = true, ["13"] = true }

--- Whether name is a modelled version ("0.12", "13").
function M.known_version(name)
  return KNOWN_VERSION[name] == true
end

--- The model for a Prosody release string ("0.12.3", "13.0.1", ...): the
-- modelled version it belongs to, or the nearest one (then the second
-- result is false): before 13 is 0.12, 13 and later is 13. nil for a
-- string that is no release number.
function M.version_of(release)
  if type(release) ~= "string" then return nil end
  local major, minor = release:match("^(%d+)%.(%d+)")
  major, minor = tonumber(major), tonumber(minor)
  if not major then
    major = tonumber(release:match("^(%d+)$"))
    if not major then return nil end
    minor = 0
  end
  if major == 0 then return "0.12", minor == 12 end
  if major < 13 then return "0.12", false end
  return "13", major == 13
end

local function read_first_line(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return line
end

-- Where Prosody's own files are: the launcher on PATH names its source
-- directory (CFG_SOURCEDIR), then the usual places of packages.
local function source_dirs()
  local dirs = {}
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local f = io.open(dir .. "/prosody", "rb")
    if f then
      local head = f:read(4096) or ""
      f:close()
      local src = head:match("\nCFG_SOURCEDIR%s*=%s*'([^'\n]+)'") or head:match('\nCFG_SOURCEDIR%s*=%s*"([^"\n]+)"')
      if src then dirs[#dirs + 1] = (src:gsub("/+$", "")) end
      break
    end
  end
  dirs[#dirs + 1] = "/usr/lib/prosody"
  dirs[#dirs + 1] = "/usr/local/lib/prosody"
  return dirs
end

--- The Prosody installed on this machine: version (the model, "0.12" or
-- "13"), release (its prosody.version, e.g. "13.0.1") and the directory
-- it was found in; nil when none is found.
function M.installed()
  for _, dir in ipairs(source_dirs()) do
    local release = read_first_line(dir .. "/prosody.version")
    local version = release and M.version_of(release)
    if version then return { version = version, release = release, dir = dir } end
  end
  return nil
end

--- The model of a loaded configuration (prosody/config.lua, load) for a Prosody
-- version ("0.12" or "13", default "13").
function M.model(config, version)
  version = version or "13"
  if not KNOWN_VERSION[version] then
    error(("tlsharden.audit: unknown Prosody version %s (known: %s)"):format(tostring(version),
      table.concat(M.versions, ", ")), 0)
  end
  return setmetatable({ config = config, version = version }, model)
end

--- Prosody's certificate search (certmanager.find_cert) in dir for name.
local CRT_TRY = { "", "/%s.crt", "/%s/fullchain.pem", "/%s.pem" }
local KEY_TRY = { "", "/%s.key", "/%s/privkey.pem", "/%s.pem" }

local has_lfs, lfs = pcall(require, "lfs")

local function is_file(path)
  if has_lfs then return lfs.attributes(path, "mode") == "file" end
  local f = io.open(path, "rb")
  local data = f and f:read(0)
  if f then f:close() end
  return data ~= nil
end

function model:find_cert(user_certs, name)
  local certs = resolve(self.config.dir, user_certs or self.config:path_option("*", "certificates") or "certs")
  for i = 1, #CRT_TRY do
    local crt = certs .. CRT_TRY[i]:format(name)
    local key = certs .. KEY_TRY[i]:format(name)
    if is_file(crt) then
      if crt == key then
        if key:sub(-4) == ".crt" then key = key:sub(1, -4) .. "key"
        elseif key:sub(-14) == "/fullchain.pem" then key = key:sub(1, -14) .. "privkey.pem" end
      end
      if is_file(key) then return { certificate = crt, key = key } end
    end
  end
end

-- certmanager's index of the certificates folder: every *.crt or
-- *fullchain* file (three folders deep) that starts with a PEM certificate,
-- has its key beside it and is valid now, by the DNS names it holds.
local function matching_key(path)
  return (path:gsub("%.crt$", ".key"):gsub("fullchain", "privkey"))
end

function model:cert_index()
  if self._index then return self._index end
  local index = {}
  self._index = index
  if not has_lfs then return index end
  local core = require "tlsharden.core"
  local function scan(dir, depth)
    if depth <= 0 then return end
    local ok, iter, state = pcall(lfs.dir, dir)
    if not ok then return end
    local names = {}
    for f in iter, state do names[#names + 1] = f end
    table.sort(names)
    for _, f in ipairs(names) do
      local full = dir .. "/" .. f
      local mode = lfs.attributes(full, "mode")
      if mode == "directory" and f:sub(1, 1) ~= "." then
        scan(full, depth - 1)
      elseif mode == "file" and (f:find("%.crt$") or f:find("fullchain")) and is_file(matching_key(full)) then
        local fh = io.open(full)
        local first = fh and fh:read("*l")
        if fh then fh:close() end
        if first == "-----BEGIN CERTIFICATE-----" then
          local ok2, r = pcall(core.chain, full, { warn_days = 0 })
          local leaf = ok2 and r.certs[1]
          if leaf and leaf.days_left >= 0 then
            local ids = {}
            for _, n in ipairs(leaf.dns_names) do ids[#ids + 1] = n:lower() end
            if #ids == 0 then
              local cn = leaf.subject and leaf.subject:match("CN=([^,]+)")
              if cn then ids[1] = cn:lower() end
            end
            for _, n in ipairs(ids) do
              if not index[n] then index[n] = full end
            end
          end
        end
      end
    end
  end
  scan(resolve(self.config.dir, self.config:path_option("*", "certificates") or "certs"), 3)
  return index
end

--- certmanager.find_host_cert: the index of the certificates folder (by
-- the names in each certificate, wildcards included), then the host's
-- certificate setting or the folder by file name, then the parent domain.
function model:find_host_cert(host)
  if not host then return nil end
  local index = self:cert_index()
  local file = index[host] or index[(host:gsub("^[^.]+%.", "*."))]
  if file then return { certificate = file, key = matching_key(file) } end
  return self:find_cert(self.config:path_option(host, "certificate"), host)
    or self:find_host_cert(host:match("%.(.+)$"))
end

--- Prosody's built-in defaults, with ssl_compression considered. 13
-- dropped verifyext from them (mod_tls sets it for s2s itself).
function model:core_defaults()
  local d = profiles.get("prosody")
  if self.config:get("*", "ssl_compression") == true then d.options.no_compression = nil end
  if self.version == "13" then d.verifyext = nil end
  d.name = "core defaults"
  return d
end

local TLS_PROFILES = { modern = true, intermediate = true, old = true, legacy = true }

-- RFC 7919's ffdhe2048 group, as OpenSSL writes it (`openssl genpkey
-- -genparam -algorithm DH -pkeyopt group:ffdhe2048`): Prosody 13's
-- intermediate profile carries it as its dhparam.
local FFDHE2048 = [[
-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
]]
M.FFDHE2048 = FFDHE2048

-- What Prosody 13 changed in the Mozilla profiles (guidelines 5.7):
-- intermediate gained DHE-RSA-CHACHA20-POLY1305 and DH parameters.
local function profile13(name, l)
  l._source = ("Mozilla Server Side TLS 5.7 '%s', as shipped by Prosody 13"):format(name)
  if name == "intermediate" then
    for i, c in ipairs(l.ciphers) do
      if c == "DHE-RSA-AES256-GCM-SHA384" then
        table.insert(l.ciphers, i + 1, "DHE-RSA-CHACHA20-POLY1305")
        break
      end
    end
    l.dhparam = FFDHE2048
  end
  return l
end

--- The tls_profile: its name, its layer (nil for "legacy" and for an
-- unknown name) and, for an unknown name, the problem it is: Prosody 0.12
-- ignores it (no profile, as "legacy"), Prosody 13 builds no TLS context
-- at all.
function model:tls_profile()
  local t = self._tls_profile
  if not t then
    local name = self.config:get("*", "tls_profile")
    if name == nil then name = "intermediate" end
    t = { name = name }
    if not TLS_PROFILES[name] then
      local msg = ("unknown tls_profile %s (known: intermediate, legacy, modern, old)"):format(errors.quote(name))
      if self.version == "13" then
        t.problem = { severity = "error", code = "UNKNOWN_TLS_PROFILE", message = msg
          .. ": Prosody 13 builds no TLS context at all (no STARTTLS, direct TLS ports not bound)" }
        t.no_tls = true
      else
        t.problem = { severity = "warning", code = "UNKNOWN_TLS_PROFILE", message = msg
          .. ": Prosody 0.12 ignores it and applies no profile (as with legacy)" }
      end
    elseif name ~= "legacy" then
      local l = profiles.get(name)
      if self.version == "13" then profile13(name, l) end
      l.name = "tls_profile " .. name
      t.layer = l
    end
    self._tls_profile = t
  end
  return t.name, t.layer, t.problem, t.no_tls
end

--- The tls_profile layer (nil for "legacy" or an unknown name).
function model:profile_layer()
  local _, layer = self:tls_profile()
  return layer
end

-- The layers Prosody adds to every context itself, by name.
local PROSODY_LAYERS = { ["core defaults"] = true, mode = true, ["s2s client certificates"] = true,
  ["s2s ALPN"] = true, ["s2s certificate verification"] = true, ["s2s_direct_tls service"] = true }

--- Whether the layer of this name is one the admin wrote (the ssl tables,
-- a tls_profile the configuration names), rather than one Prosody adds
-- itself (its defaults, the certificate it found, the mode, the default
-- tls_profile, the layers of mod_tls and of the s2s_direct_tls service,
-- a port's final settings under its SNI contexts in 0.12: what the admin
-- wrote there is judged in the port's own context).
function model:admin_layer(name)
  name = tostring(name)
  if PROSODY_LAYERS[name] or name:find("^certificate found for ") or name:find("^certificate of ")
    or name:find(" port %d+ settings$") then
    return false
  end
  if name:find("^tls_profile ") then return self.config:get("*", "tls_profile") ~= nil end
  return true
end

-- A port's or an interface's own block inside an ssl table
-- (ssl = { [5223] = {...}, ["127.0.0.1"] = {...} }): portmanager passes it
-- as a layer of its own; the table it sits in is applied without it.
local function is_sublayer(k, v)
  return type(v) == "table" and (type(k) == "number" or (type(k) == "string" and k:find("^[%x:.*]+$") ~= nil
    and (k:find("[:.*]") ~= nil)))
end

local function strip_sublayers(t)
  if type(t) ~= "table" then return t end
  local has
  for k, v in pairs(t) do if is_sublayer(k, v) then has = true break end end
  if not has then return t end
  local c = {}
  for k, v in pairs(t) do if not is_sublayer(k, v) then c[k] = v end end
  return c
end

local function named(name, t)
  if type(t) ~= "table" then return nil end
  local c = {}
  for k, v in pairs(t) do if not is_sublayer(k, v) then c[k] = v end end
  c.name = name
  return c
end

--- The layers of one create_context call, in Prosody's order: the base
-- layers (each overriding the one before), then the extra arguments, the
-- first of which wins. Returns base, extras.
function model:context_layers(host, mode, extras, cert)
  -- The global layers are the same for every context: built once. Merging
  -- never changes a layer, so they can be shared.
  if not self._defaults then
    self._defaults = self:core_defaults()
    self._profile = self:profile_layer() or false
  end
  local base = { self._defaults }
  if cert then base[#base + 1] = named("certificate found for " .. host, cert) end
  base[#base + 1] = { name = "mode", mode = mode }
  local p = self._profile
  if p then base[#base + 1] = p end
  local g = named("global ssl", self.config:get("*", "ssl"))
  if g then base[#base + 1] = g end
  return base, extras
end

local function parent_of(host) return host:match("%.(.*)$") end

-- The modules every host loads without being asked, and those a Component
-- takes over from the global modules_enabled (core/modulemanager.lua of
-- 0.12 and 13 alike).
local AUTOLOAD = { c2s = true, s2s = true }
local COMPONENT_INHERITS = { tls = true, saslauth = true, dialback = true, iq = true, s2s = true,
  s2s_bidi = true, smacks = true, server_contact_info = true }

local function module_set(list)
  local set = {}
  if type(list) == "table" then
    for _, m in ipairs(list) do if type(m) == "string" then set[m] = true end end
  end
  return set
end

--- Whether host (a VirtualHost or a Component) loads module, as
-- modulemanager decides: a Component keeps of the global modules only the
-- few it inherits.
function model:loads(host, module)
  local component = self.config:rawget(host, "component_module") ~= nil
  local global_on = AUTOLOAD[module] or module_set(self.config:rawget("*", "modules_enabled"))[module]
  global_on = global_on and not module_set(self.config:rawget("*", "modules_disabled"))[module]
  if component then global_on = global_on and COMPONENT_INHERITS[module] end
  local own = self.config:rawget(host, "modules_enabled")
  local on = global_on or (own ~= self.config:rawget("*", "modules_enabled") and module_set(own)[module])
  local off = self.config:rawget(host, "modules_disabled")
  return (on and not (off ~= self.config:rawget("*", "modules_disabled") and module_set(off)[module])) and true
    or false
end

local function host_or_global(self, host, key)
  if self.config:rawget(host, key) ~= nil then
    return (self.config:rawget(host, "component_module") ~= nil and "Component " or "VirtualHost ") .. host .. " " .. key
  end
  return "global " .. key
end

local function port_list(ports)
  local out = {}
  if type(ports) == "number" then ports = { ports } end
  if type(ports) ~= "table" then return out end
  local seen = {}
  for _, p in ipairs(ports) do
    p = tonumber(p)
    if p and not seen[p] then seen[p] = true; out[#out + 1] = p end
  end
  return out
end

--- The direct TLS services portmanager listens on, with their ports:
-- { service, ports, layer (the service's own ssl_config) }, only those
-- with a port. host (optional): HTTPS counts when that host, or the global
-- section, loads an HTTP module; without host, when any host does.
function model:direct_services(host)
  local v13 = self.version == "13"
  local list = {
    { service = "c2s_direct_tls", ports = port_list(self.config:get("*", "c2s_direct_tls_ports")) },
    { service = "s2s_direct_tls", ports = port_list(self.config:get("*", "s2s_direct_tls_ports")),
      layer = { name = "s2s_direct_tls service", verify = { "peer", "client_once" },
        verifyext = v13 and { "lsec_continue", "lsec_ignore_purpose" } or nil } },
    { service = "legacy_ssl", ports = port_list(self.config:get("*", "legacy_ssl_ports")) },
    { service = "https", ports = port_list(self.config:get("*", "https_ports")) },
  }
  -- HTTPS listens on 5281 by default once an HTTP module is loaded.
  if self.config:get("*", "https_ports") == nil then
    local uses = false
    if host then uses = self:uses_http(host)
    else
      uses = self:uses_http("*")
      for _, h in ipairs(self.config.hosts or {}) do uses = uses or self:uses_http(h) end
    end
    if uses then list[4].ports = { 5281 } end
  end
  local out = {}
  for _, d in ipairs(list) do if #d.ports > 0 then out[#out + 1] = d end end
  return out
end

--- certmanager.find_service_cert: any certificate of the certificates
-- folder's index (Prosody takes the first its table walk meets; with
-- several, which one is not fixed: this takes the first by name), else
-- <service>_certificate (a table: by port, then its default), else the
-- folder by the service's name.
function model:find_service_cert(service, port)
  local index = self:cert_index()
  local names = {}
  for n in pairs(index) do names[#names + 1] = n end
  table.sort(names)
  if names[1] then
    local file = index[names[1]]
    return { certificate = file, key = matching_key(file) }
  end
  local cert_config = self.config:get("*", service .. "_certificate")
  if type(cert_config) == "table" then cert_config = cert_config[port] or cert_config.default end
  if cert_config ~= nil and type(cert_config) ~= "string" then cert_config = nil end
  return self:find_cert(cert_config, service)
end

--- The context a direct TLS port serves to a client that sends no SNI
-- (portmanager's get_port_ssl_ctx): create_context("<service> port N",
-- "server", prefix[port], prefix, the service's ssl_config, global ssl
-- [port]), where prefix is the global <service>_ssl, else the global ssl.
-- Blocks for one interface are not modelled (they apply on that
-- interface only). Returns { service, port, mode, base, extras, cert,
-- problems }.
function model:port_context(d, port)
  self._ports = self._ports or {}
  local id = d.service .. " port " .. port
  if self._ports[id] then return self._ports[id] end
  local key = d.service .. "_ssl"
  local global = self.config:rawget("*", "ssl")
  local prefix, prefix_name = self.config:rawget("*", key), "global " .. key
  if prefix == nil then prefix, prefix_name = global, "global ssl" end
  local function sub(t, name)
    if type(t) == "table" and type(t[port]) == "table" then return named(("%s [%d]"):format(name, port), t[port]) end
  end
  local extras = { n = 4, sub(prefix, prefix_name), named(prefix_name, strip_sublayers(prefix)), d.layer,
    sub(global, "global ssl") }
  local cert = self:find_service_cert(d.service, port)
  local pc = { service = d.service, port = port, name = id, mode = "server",
    base = self:context_layers(id, "server", extras, cert), extras = extras, cert = cert, problems = {} }
  self._ports[id] = pc
  return pc
end

--- What stops this Prosody version from starting: 13's util.sslconfig
-- cannot apply a table with a number key (a block for one port, such as
-- ssl = { [5223] = {...} }, which 0.12 takes): startup fails with
-- "attempt to index a number value". Returns a list of problems.
function model:startup_problems()
  local out = {}
  if self.version ~= "13" then return out end
  local sections = { "*" }
  for _, h in ipairs(self.config.hosts or {}) do sections[#sections + 1] = h end
  for _, h in ipairs(self.config.components or {}) do sections[#sections + 1] = h end
  for _, where in ipairs(sections) do
    local keys = {}
    for k, v in pairs(self.config.config[where] or {}) do
      if type(k) == "string" and (k == "ssl" or k:find("_ssl$")) and type(v) == "table" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local ports = {}
      for pk, pv in pairs(self.config.config[where][k]) do
        if type(pk) == "number" and type(pv) == "table" then ports[#ports + 1] = pk end
      end
      table.sort(ports)
      if #ports > 0 then
        out[#out + 1] = { severity = "error", code = "PROSODY_WILL_NOT_START", message = ("%s%s has a block for"
          .. " port %s: Prosody 13 does not start with it (util.sslconfig cannot apply a number key:"
          .. " \"attempt to index a number value\"); only 0.12 takes blocks by port"):format(
          where == "*" and "" or (where .. " "), k, table.concat(ports, ", ")) }
      end
    end
  end
  return out
end

--- Every direct TLS port's own context (for clients without SNI), see
-- model:port_context.
function model:ports()
  local list = {}
  for _, d in ipairs(self:direct_services()) do
    for _, port in ipairs(d.ports) do list[#list + 1] = self:port_context(d, port) end
  end
  return list
end

-- 0.12: the port context's final settings as a layer of an SNI context
-- (portmanager passes the port's tls_cfg): every setting merged, path
-- options that are no string dropped (its dhparam is a function by then).
function model:port_final(pc)
  if pc.final then return pc.final end
  local layers = {}
  for _, l in ipairs(pc.base) do layers[#layers + 1] = l end
  for i = pc.extras.n, 1, -1 do if pc.extras[i] then layers[#layers + 1] = pc.extras[i] end end
  local core = require "tlsharden.core"
  local ok, cfg = pcall(core.merge, layers, { policy = "warn", mode = "server" })
  local final = { name = pc.name .. " settings" }
  if ok then
    for k, v in pairs(cfg) do final[k] = v end
    pc.had_dhparam = final.dhparam ~= nil
    final.dhparam = nil
  end
  pc.final = final
  return final
end

--- Every TLS context Prosody builds for host, with its layers:
-- { service, mode, base, extras, cert, problems, unreached } for c2s, s2s_in,
-- s2s_out (mod_tls's three calls, when the host loads mod_tls), and the
-- SNI contexts of the direct TLS and HTTPS services when they are enabled
-- (portmanager). For a Component only what its s2s peers reach: its c2s
-- contexts are built, but no client stream reaches a Component. problems:
-- what the configuration sets that this Prosody version ignores.
function model:services(host)
  local v13 = self.version == "13"
  local parent = parent_of(host)
  local function kind(h) return self.config:rawget(h, "component_module") ~= nil and "Component" or "VirtualHost" end
  local function raw_or_parent(key)
    local v = self.config:rawget(host, key)
    if v ~= nil then return v, kind(host) .. " " .. host .. " " .. key end
    v = parent and self.config:rawget(parent, key)
    if v ~= nil then return v, kind(parent) .. " " .. parent .. " " .. key end
  end
  local host_ssl, host_ssl_name = raw_or_parent("ssl")
  local host_c2s, host_c2s_name = raw_or_parent("c2s_ssl")
  local host_s2s, host_s2s_name = raw_or_parent("s2s_ssl")
  local global_c2s = self.config:rawget("*", "c2s_ssl")
  local global_s2s = self.config:rawget("*", "s2s_ssl")
  local cert = self:find_host_cert(host)
  local request_client_certs = { name = "s2s client certificates", verify = { "peer", "client_once" } }
  local xmpp_alpn = { name = "s2s ALPN", alpn = "xmpp-server" }
  -- 13's mod_tls sets verifyext for s2s itself (0.12 had it in the core defaults)
  local cert_verification = v13 and { name = "s2s certificate verification",
    verifyext = { "lsec_continue", "lsec_ignore_purpose" } } or nil
  local list = {}
  -- the extra layers of one call, holes (unset options) included
  local function extras_of(...) return { n = select("#", ...), ... } end
  local function add(service, mode, extras, problems, unreached)
    local base = self:context_layers(host, mode, extras, cert)
    list[#list + 1] = { service = service, mode = mode, base = base, extras = extras, cert = cert,
      problems = problems or {}, unreached = unreached }
  end
  -- A Component has mod_tls only when it takes it over from the global
  -- modules_enabled (or names it itself); a VirtualHost is modelled with
  -- it, as every configuration that serves TLS loads it.
  local component = self.config:rawget(host, "component_module") ~= nil
  local tls = not component or self:loads(host, "tls")
  if not component or tls then
    -- a Component's c2s context is built as well, but no client stream
    -- ever reaches a Component: listed, not graded (unreached)
    add("c2s", "server", extras_of(named(host_c2s_name, host_c2s), named(host_ssl_name, host_ssl),
      named("global c2s_ssl", global_c2s)), nil, component or nil)
  end
  if not tls then
    -- no mod_tls: no STARTTLS contexts
  elseif v13 then
    add("s2s_in", "server", extras_of(named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
      named("global s2s_ssl", global_s2s), request_client_certs, cert_verification))
    add("s2s_out", "client", extras_of(named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
      named("global s2s_ssl", global_s2s), xmpp_alpn, cert_verification))
  else
    add("s2s_in", "server", extras_of(named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
      named("global s2s_ssl", global_s2s), request_client_certs))
    add("s2s_out", "client", extras_of(named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
      named("global s2s_ssl", global_s2s), request_client_certs, xmpp_alpn))
  end
  -- Direct TLS services: portmanager's SNI context for the host, on
  -- each port of the service.
  for _, d in ipairs(self:direct_services(host)) do
    -- a Component's SNI contexts of client services are built too, but no
    -- client stream reaches a Component: only s2s is served to its peers
    local unreached = component and d.service ~= "s2s_direct_tls" or nil
    do
      local key = d.service .. "_ssl"
      for _, port in ipairs(d.ports) do
        local pc = self:port_context(d, port)
        local problems = {}
        local extras, drop
        if v13 then
          -- 13 builds the SNI context from the port's settings and takes
          -- only the certificate and key of create_context(host, ...):
          -- the host's <service>_ssl, else the host's certificate, else
          -- the port's.
          local own = self.config:get(host, key)
          own = type(own) == "table" and own or {}
          local found = self:find_host_cert(host) or pc.cert or {}
          local cert_layer = { name = ("certificate of %s %s on %s"):format(kind(host), host, d.service),
            certificate = own.certificate or found.certificate, key = own.key or found.key }
          local raw = self.config:rawget(host, key)
          if type(raw) == "table" then
            local ignored = {}
            for k in pairs(strip_sublayers(raw)) do
              if k ~= "certificate" and k ~= "key" then ignored[#ignored + 1] = tostring(k) end
            end
            table.sort(ignored)
            if #ignored > 0 then
              problems[1] = { severity = "warning", code = "IGNORED_SETTING", message = ("%s %s %s sets %s:"
                .. " Prosody 13 takes only the certificate and key from it; the port's settings apply"):format(
                kind(host), host, key, table.concat(ignored, ", ")) }
            end
          end
          extras = { n = pc.extras.n + 1, cert_layer }
          for i = 1, pc.extras.n do extras[i + 1] = pc.extras[i] end
        else
          -- 0.12: create_context(host, "server", the host's <service>_ssl,
          -- the host's certificate, the port's final settings), where the
          -- port's DH parameters are already a function, which
          -- create_context drops as it drops every path option that is
          -- not a string
          local found = self:find_host_cert(host)
          local own = self.config:get(host, key)
          extras = extras_of(named(host_or_global(self, host, key), strip_sublayers(own)),
            found and named("certificate found for " .. host, found), self:port_final(pc))
          if not (type(own) == "table" and type(own.dhparam) == "string") then
            drop = { "dhparam" }
            if pc.had_dhparam then
              problems[1] = { severity = "warning", code = "DHPARAM_DROPPED", message = ("Prosody 0.12 builds"
                .. " the SNI context of %s on %s port %d without DH parameters (the port's are a function by"
                .. " then, which create_context drops): no DHE suite is served to clients that send SNI;"
                .. " %s's own %s.dhparam would keep them"):format(host, d.service, port, host, key) }
            end
          end
        end
        local base = self:context_layers(host, "server", extras, cert)
        list[#list + 1] = { service = d.service, port = port, mode = "server", base = base, extras = extras,
          cert = cert, problems = problems, drop = drop, unreached = unreached }
      end
    end
  end
  return list
end

local HTTP_MODULES = { http = true, bosh = true, websocket = true, http_file_share = true,
  http_files = true, http_openmetrics = true, http_upload = true, conversejs = true }

--- Whether the host (or the global section) loads a module that serves HTTP.
function model:uses_http(host)
  for _, where in ipairs { "*", host } do
    local mods = self.config:rawget(where, "modules_enabled")
    if type(mods) == "table" then
      for _, m in ipairs(mods) do if HTTP_MODULES[m] then return true end end
    end
  end
  return false
end

--- The host's encryption policy options, with Prosody's defaults (the same
-- in 0.12 and 13).
function model:policy(host)
  local function opt(key, default)
    local v = self.config:get(host, key)
    if v == nil then return default end
    return v
  end
  return {
    c2s_require_encryption = opt("c2s_require_encryption", opt("require_encryption", true)),
    s2s_require_encryption = opt("s2s_require_encryption", true),
    s2s_secure_auth = opt("s2s_secure_auth", false),
    allow_unencrypted_plain_auth = opt("allow_unencrypted_plain_auth", false),
    s2s_secure_domains = self.config:get(host, "s2s_secure_domains"),
    s2s_insecure_domains = self.config:get(host, "s2s_insecure_domains"),
  }
end

return M
