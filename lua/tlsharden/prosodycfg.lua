--- A sandboxed reader for prosody.cfg.lua, and the layers Prosody 0.12
-- merges into each TLS context. Nothing in the configuration file can reach
-- the real environment: it sees only a few pure library functions, ENV_*
-- values come from the caller, and a runaway loop is stopped.
local prosodycfg = {}

local INSTRUCTION_LIMIT = 10000000

local function basename_dir(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function resolve(dir, path)
  if type(path) ~= "string" then return path end
  if path:sub(1, 1) == "/" then return path end
  return dir .. "/" .. path
end
prosodycfg.resolve = resolve

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

-- Pure functions a configuration may use; nothing that reaches files,
-- processes, the environment or the interpreter.
local function safe_globals()
  return {
    string = { format = string.format, rep = string.rep, sub = string.sub, upper = string.upper,
      lower = string.lower, len = string.len, gsub = string.gsub, match = string.match,
      find = string.find, gmatch = string.gmatch },
    table = { concat = table.concat, insert = table.insert, remove = table.remove,
      unpack = table.unpack, sort = table.sort },
    math = { floor = math.floor, ceil = math.ceil, max = math.max, min = math.min,
      huge = math.huge, tointeger = math.tointeger },
    pairs = pairs, ipairs = ipairs, next = next, select = select, type = type,
    tostring = tostring, tonumber = tonumber, unpack = table.unpack,
  }
end

local function glob_to_pattern(glob)
  return "^" .. glob:gsub("[%p]", function(c)
    if c == "*" then return ".*" elseif c == "?" then return "." end
    return "%" .. c
  end) .. "$"
end

--- Load a configuration. source is a path, or the text itself when
-- opts.text is true. opts.env: a table of ENV_* values (default empty).
-- Returns a config object or raises "tlsharden.audit: FILE:LINE: message".
function prosodycfg.load(source, opts)
  opts = opts or {}
  local name, text
  if opts.text then
    name = opts.name or "prosody.cfg.lua"
    text = source
  else
    name = source
    local err
    text, err = read_file(source)
    if not text then error(("tlsharden.audit: cannot read the configuration: %s"):format(err), 0) end
  end
  local config = { ["*"] = {} }
  local cfg = {
    file = name, dir = opts.dir or basename_dir(name), config = config,
    hosts = {}, components = {}, files = {}, warnings = {},
  }
  local env_values = opts.env or {}

  local function set(host, key, value)
    config[host] = config[host] or {}
    config[host][key] = value
  end

  local function parse(data, file)
    cfg.files[#cfg.files + 1] = file
    local current = "*"
    local globals = safe_globals()
    local env
    local api = {}

    local function host_function(kind)
      return function(hostname)
        if type(hostname) ~= "string" or hostname == "" then
          error(kind .. " must have a name", 2)
        end
        hostname = hostname:lower()
        if kind == "VirtualHost" then
          if config[hostname] and config[hostname].component_module then
            error(("Host %q clashes with a previously defined Component"):format(hostname), 2)
          end
          if not config[hostname] then cfg.hosts[#cfg.hosts + 1] = hostname end
          set(hostname, "defined", true)
        else
          if config[hostname] and config[hostname].defined and not config[hostname].component_module then
            error(("Component %q clashes with a previously defined VirtualHost"):format(hostname), 2)
          end
          if not config[hostname] then cfg.components[#cfg.components + 1] = hostname end
          set(hostname, "component_module", "component")
          set(hostname, "load_global_modules", false)
        end
        current = hostname
        local function options(t)
          current = "*"
          if type(t) ~= "table" then error("expected a table of options", 2) end
          for k, v in pairs(t) do set(hostname, k, v) end
        end
        if kind == "VirtualHost" then return options end
        return function(module_or_options)
          if type(module_or_options) == "string" then
            set(hostname, "component_module", module_or_options)
            return options
          end
          return options(module_or_options)
        end
      end
    end
    api.VirtualHost = host_function("VirtualHost")
    api.Host, api.host = api.VirtualHost, api.VirtualHost
    api.Component = host_function("Component")
    api.component = api.Component

    local dir = basename_dir(file)
    function api.Include(path)
      if type(path) ~= "string" then error("Include needs a file name", 2) end
      if path:match("[*?]") then
        local ok, lfs = pcall(require, "lfs")
        if not ok then error("Include with a wildcard needs LuaFileSystem", 2) end
        local base, glob = path:match("^(.*)/([^/]+)$")
        base = base and resolve(dir, base) or dir
        glob = glob or path
        local found = {}
        local iter_ok, iter, state = pcall(lfs.dir, base)
        if iter_ok then
          for f in iter, state do
            if f:sub(1, 1) ~= "." and f:match(glob_to_pattern(glob)) then found[#found + 1] = f end
          end
        end
        table.sort(found)
        for _, f in ipairs(found) do api.Include(base .. "/" .. f) end
        return
      end
      local full = resolve(dir, path)
      local data, err = read_file(full)
      if not data then error(("Error loading included %s: %s"):format(full, err), 0) end
      local saved = current
      parse(data, full)
      current = saved
    end
    api.include = api.Include
    function api.RunScript()
      error("RunScript is not run by the audit (it would execute code)", 2)
    end
    function api.FileContents(path)
      local data, err = read_file(resolve(dir, path))
      if not data then error(("cannot read %s: %s"):format(path, err), 2) end
      return data
    end
    function api.FileLine(path)
      local data = api.FileContents(path)
      return (data:match("^[^\n]*"))
    end
    function api.FileLines(path)
      local data, t = api.FileContents(path), {}
      for line in data:gmatch("[^\n]+") do t[#t + 1] = line end
      return t
    end

    env = setmetatable({}, {
      __index = function(_, k)
        if api[k] then return api[k] end
        if type(k) == "string" and k:match("^ENV_") then return env_values[k:sub(5)] end
        return globals[k]
      end,
      __newindex = function(_, k, v)
        set(current, k, v)
      end,
    })

    local chunk, err = load(data, "@" .. file, "t", env)
    if not chunk then error(("tlsharden.audit: %s"):format(err), 0) end
    local count = 0
    local co = coroutine.create(chunk)
    debug.sethook(co, function()
      count = count + 1
      if count * 1000 > INSTRUCTION_LIMIT then error("the configuration runs too long", 2) end
    end, "", 1000)
    local ok, run_err = coroutine.resume(co)
    if not ok then
      local msg = tostring(run_err)
      if not msg:match("^[^:]+:%d+:") then
        local info = debug.getinfo(co, 1, "Sl") or {}
        if info.currentline and info.currentline > 0 then
          msg = ("%s:%d: %s"):format(file, info.currentline, msg)
        else
          msg = file .. ": " .. msg
        end
      end
      error("tlsharden.audit: " .. msg, 0)
    end
  end

  parse(text, name)
  return setmetatable(cfg, { __index = prosodycfg })
end

--- configmanager.get: the host's value, else the global one.
function prosodycfg:get(host, key)
  local h = self.config[host]
  if h and h[key] ~= nil then return h[key] end
  return self.config["*"][key]
end

--- A path option (certificates, certificate): nil, or a string; anything
-- else is an error naming the option, as Prosody could not use it either.
function prosodycfg:path_option(host, key)
  local v = self:get(host, key)
  if v ~= nil and type(v) ~= "string" then
    error(("tlsharden.audit: option '%s'%s must be a file or folder path, got %s")
      :format(key, host == "*" and "" or (" of " .. host), type(v)), 0)
  end
  return v
end

--- configmanager.rawget: the host's own value only.
function prosodycfg:rawget(host, key)
  local h = self.config[host]
  return h and h[key]
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

function prosodycfg:find_cert(user_certs, name)
  local certs = resolve(self.dir, user_certs or self:path_option("*", "certificates") or "certs")
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

function prosodycfg:cert_index()
  if self._index then return self._index end
  local index = {}
  self._index = index
  if not has_lfs then return index end
  local chain = require "tlsharden.chain"
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
        local first = fh and fh:read("l")
        if fh then fh:close() end
        if first == "-----BEGIN CERTIFICATE-----" then
          local ok2, r = pcall(chain.check, full, { warn_days = 0 })
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
  scan(resolve(self.dir, self:path_option("*", "certificates") or "certs"), 3)
  return index
end

--- certmanager.find_host_cert: the index of the certificates folder (by
-- the names in each certificate, wildcards included), then the host's
-- certificate setting or the folder by file name, then the parent domain.
function prosodycfg:find_host_cert(host)
  if not host then return nil end
  local index = self:cert_index()
  local file = index[host] or index[(host:gsub("^[^.]+%.", "*."))]
  if file then return { certificate = file, key = matching_key(file) } end
  return self:find_cert(self:path_option(host, "certificate"), host)
    or self:find_host_cert(host:match("%.(.+)$"))
end

--- Prosody 0.12's built-in defaults, with ssl_compression considered.
function prosodycfg:core_defaults(profiles)
  local d = profiles.get("prosody")
  if self:get("*", "ssl_compression") == true then d.options.no_compression = nil end
  d.name = "core defaults"
  return d
end

local TLS_PROFILES = { modern = true, intermediate = true, old = true, legacy = true }

--- The tls_profile layer (nil for "legacy"); an unknown name is an error.
function prosodycfg:profile_layer(profiles)
  local name = self:get("*", "tls_profile") or "intermediate"
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
function prosodycfg:context_layers(profiles, host, mode, extras, cert)
  -- The global layers are the same for every context: built once. Merging
  -- never changes a layer, so they can be shared.
  if not self._defaults then
    self._defaults = self:core_defaults(profiles)
    self._profile = self:profile_layer(profiles) or false
  end
  local base = { self._defaults }
  if cert then base[#base + 1] = named("certificate found for " .. host, cert) end
  base[#base + 1] = { name = "mode", mode = mode }
  local p = self._profile
  if p then base[#base + 1] = p end
  local g = named("global ssl", self:get("*", "ssl"))
  if g then base[#base + 1] = g end
  return base, extras
end

local function parent_of(host) return host:match("%.(.*)$") end

--- Every TLS context Prosody 0.12 builds for host, with its layers:
-- { service, mode, base, extras } for c2s, s2s_in, s2s_out, and the SNI
-- contexts of the direct TLS and HTTPS services when they are enabled.
function prosodycfg:services(profiles, host)
  local parent = parent_of(host)
  local function raw_or_parent(key)
    local v = self:rawget(host, key)
    if v ~= nil then return v, "VirtualHost " .. host .. " " .. key end
    v = parent and self:rawget(parent, key)
    if v ~= nil then return v, "VirtualHost " .. parent .. " " .. key end
  end
  local host_ssl, host_ssl_name = raw_or_parent("ssl")
  local host_c2s, host_c2s_name = raw_or_parent("c2s_ssl")
  local host_s2s, host_s2s_name = raw_or_parent("s2s_ssl")
  local global_c2s = self:rawget("*", "c2s_ssl")
  local global_s2s = self:rawget("*", "s2s_ssl")
  local cert = self:find_host_cert(host)
  local request_client_certs = { name = "s2s client certificates", verify = { "peer", "client_once" } }
  local xmpp_alpn = { name = "s2s ALPN", alpn = "xmpp-server" }
  local list = {}
  local function add(service, mode, extras)
    local base = self:context_layers(profiles, host, mode, extras, cert)
    list[#list + 1] = { service = service, mode = mode, base = base, extras = extras, cert = cert }
  end
  add("c2s", "server", { named(host_c2s_name, host_c2s), named(host_ssl_name, host_ssl),
    named("global c2s_ssl", global_c2s) })
  add("s2s_in", "server", { named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
    named("global s2s_ssl", global_s2s), request_client_certs })
  add("s2s_out", "client", { named(host_s2s_name, host_s2s), named(host_ssl_name, host_ssl),
    named("global s2s_ssl", global_s2s), request_client_certs, xmpp_alpn })
  -- Direct TLS services: portmanager's SNI context for the host.
  local direct = {
    { service = "c2s_direct_tls", ports = self:get("*", "c2s_direct_tls_ports") },
    { service = "legacy_ssl", ports = self:get("*", "legacy_ssl_ports") },
    { service = "https", ports = self:get("*", "https_ports") },
  }
  -- HTTPS listens on 5281 by default once an HTTP module is loaded.
  if direct[3].ports == nil and self:uses_http(host) then direct[3].ports = { 5281 } end
  for _, d in ipairs(direct) do
    if type(d.ports) == "table" and #d.ports > 0 or type(d.ports) == "number" then
      local prefix = self:get(host, d.service .. "_ssl")
      add(d.service, "server", { named(d.service .. "_ssl", prefix) })
    end
  end
  return list
end

local HTTP_MODULES = { http = true, bosh = true, websocket = true, http_file_share = true,
  http_files = true, http_openmetrics = true, http_upload = true, conversejs = true }

--- Whether the host (or the global section) loads a module that serves HTTP.
function prosodycfg:uses_http(host)
  for _, where in ipairs { "*", host } do
    local mods = self:rawget(where, "modules_enabled")
    if type(mods) == "table" then
      for _, m in ipairs(mods) do if HTTP_MODULES[m] then return true end end
    end
  end
  return false
end

--- The host's encryption policy options, with Prosody 0.12's defaults.
function prosodycfg:policy(host)
  local function opt(key, default)
    local v = self:get(host, key)
    if v == nil then return default end
    return v
  end
  return {
    c2s_require_encryption = opt("c2s_require_encryption", opt("require_encryption", true)),
    s2s_require_encryption = opt("s2s_require_encryption", true),
    s2s_secure_auth = opt("s2s_secure_auth", false),
    allow_unencrypted_plain_auth = opt("allow_unencrypted_plain_auth", false),
    s2s_secure_domains = self:get(host, "s2s_secure_domains"),
    s2s_insecure_domains = self:get(host, "s2s_insecure_domains"),
  }
end

return prosodycfg
