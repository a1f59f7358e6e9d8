--- What Prosody's certmanager does with a configuration: which TLS
-- contexts it builds for a host (c2s, s2s in and out, direct TLS and HTTPS
-- SNI contexts), with which layers in which order, where it finds each
-- host's certificate, and the encryption policy options around them. The
-- configuration itself is read by prosodycfg.lua; the audit merges and
-- judges these layers through the pipeline.
local profiles = require "tlsharden.profiles"
local prosodycfg = require "tlsharden.prosodycfg"

local resolve = prosodycfg.resolve

local certmanager = {}
local model = {}
model.__index = model

--- The model of a loaded configuration (prosodycfg.load).
function certmanager.model(config)
  return setmetatable({ config = config }, model)
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

--- Prosody 0.12's built-in defaults, with ssl_compression considered.
function model:core_defaults()
  local d = profiles.get("prosody")
  if self.config:get("*", "ssl_compression") == true then d.options.no_compression = nil end
  d.name = "core defaults"
  return d
end

local TLS_PROFILES = { modern = true, intermediate = true, old = true, legacy = true }

--- The tls_profile layer (nil for "legacy"); an unknown name is an error.
function model:profile_layer()
  local name = self.config:get("*", "tls_profile") or "intermediate"
  if not TLS_PROFILES[name] then
    error(("tlsharden.audit: unknown tls_profile '%s' (known: intermediate, legacy, modern, old)"):format(tostring(name)), 0)
  end
  if name == "legacy" then return nil end
  local l = profiles.get(name)
  l.name = "tls_profile " .. name
  return l
end

local function named(name, t)
  if type(t) ~= "table" then return nil end
  local c = {}
  for k, v in pairs(t) do c[k] = v end
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

--- Every TLS context Prosody 0.12 builds for host, with its layers:
-- { service, mode, base, extras } for c2s, s2s_in, s2s_out, and the SNI
-- contexts of the direct TLS and HTTPS services when they are enabled.
function model:services(host)
  local parent = parent_of(host)
  local function raw_or_parent(key)
    local v = self.config:rawget(host, key)
    if v ~= nil then return v, "VirtualHost " .. host .. " " .. key end
    v = parent and self.config:rawget(parent, key)
    if v ~= nil then return v, "VirtualHost " .. parent .. " " .. key end
  end
  local host_ssl, host_ssl_name = raw_or_parent("ssl")
  local host_c2s, host_c2s_name = raw_or_parent("c2s_ssl")
  local host_s2s, host_s2s_name = raw_or_parent("s2s_ssl")
  local global_c2s = self.config:rawget("*", "c2s_ssl")
  local global_s2s = self.config:rawget("*", "s2s_ssl")
  local cert = self:find_host_cert(host)
  local request_client_certs = { name = "s2s client certificates", verify = { "peer", "client_once" } }
  local xmpp_alpn = { name = "s2s ALPN", alpn = "xmpp-server" }
  local list = {}
  -- the extra layers of one call, holes (unset options) included
  local function extras_of(...) return { n = select("#", ...), ... } end
  local function add(service, mode, extras)
    local base = self:context_layers(host, mode, extras, cert)
    list[#list + 1] = { service = service, mode = mode, base = base, extras = extras, cert = cert }
  end
  add("c2s", "server", extras_of(named(host_c2s_name, host_c2s), named(host_ssl_name, host_ssl),
    named("global c2s_ssl", global_c2s)))
  add("s2s_in", "server", extras_of(named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
    named("global s2s_ssl", global_s2s), request_client_certs))
  add("s2s_out", "client", extras_of(named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
    named("global s2s_ssl", global_s2s), request_client_certs, xmpp_alpn))
  -- Direct TLS services: portmanager's SNI context for the host.
  local direct = {
    { service = "c2s_direct_tls", ports = self.config:get("*", "c2s_direct_tls_ports") },
    { service = "legacy_ssl", ports = self.config:get("*", "legacy_ssl_ports") },
    { service = "https", ports = self.config:get("*", "https_ports") },
  }
  -- HTTPS listens on 5281 by default once an HTTP module is loaded.
  if direct[3].ports == nil and self:uses_http(host) then direct[3].ports = { 5281 } end
  for _, d in ipairs(direct) do
    if type(d.ports) == "table" and #d.ports > 0 or type(d.ports) == "number" then
      local prefix = self.config:get(host, d.service .. "_ssl")
      add(d.service, "server", extras_of(named(d.service .. "_ssl", prefix)))
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

--- The host's encryption policy options, with Prosody 0.12's defaults.
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

return certmanager
