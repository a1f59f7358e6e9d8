--- A sandboxed reader for prosody.cfg.lua, with configmanager's lookups.
-- Nothing in the configuration file can reach the real environment: it
-- sees only a few pure library functions, ENV_* values come from the
-- caller, and a runaway loop is stopped. Which TLS contexts Prosody builds
-- from the result is certmanager.lua's job.
local errors = require "tlsharden.errors"

local M = {}

local INSTRUCTION_LIMIT = 10000000

local function basename_dir(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function resolve(dir, path)
  if type(path) ~= "string" then return path end
  if path:sub(1, 1) == "/" then return path end
  return dir .. "/" .. path
end
M.resolve = resolve

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("*a")
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
-- opts.files: texts to read instead of files, by path. opts.origins: record
-- where each option was set and each section begins (origins, sections).
-- Returns a config object or raises "tlsharden.audit: FILE:LINE: message".
function M.load(source, opts)
  opts = opts or {}
  -- texts to read instead of files on disk, by path (tlsharden fix
  -- audits its edits before it writes them)
  local overrides = opts.files or {}
  local function read_file_or_override(path)
    if overrides[path] then return overrides[path] end
    return read_file(path)
  end
  local name, text
  if opts.text then
    name = opts.name or "prosody.cfg.lua"
    text = source
  else
    name = source
    local err
    text, err = read_file_or_override(source)
    if not text then
      errors.input("audit", "cannot read the configuration %s: %s", errors.quote(source),
        errors.shorten((err or ""):gsub("^.-: ", "")))
    end
  end
  local config = { ["*"] = {} }
  local cfg = {
    file = name, dir = opts.dir or basename_dir(name), config = config,
    hosts = {}, components = {}, files = {}, warnings = {},
    -- with opts.origins: where each option was last set, and where each
    -- section begins: the file and line of the configuration's own code
    -- (for tlsharden fix; the audit does without, which loads faster)
    origins = {}, sections = {},
  }
  local track = opts.origins == true
  local env_values = opts.env or {}

  -- The file and line of the configuration code running now: the nearest
  -- main chunk on the stack (a file's code, not the loader's functions).
  local function where()
    for level = 3, 12 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if info.what == "main" and info.source:sub(1, 1) == "@" then
        return { file = info.source:sub(2), line = info.currentline }
      end
    end
  end

  local function set(host, key, value, how)
    config[host] = config[host] or {}
    config[host][key] = value
    local at = track and where()
    if at then
      at.how = how or "assign"
      cfg.origins[host] = cfg.origins[host] or {}
      cfg.origins[host][key] = at
    end
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
        local at = track and where()
        if at then
          at.host, at.kind = hostname, kind
          cfg.sections[#cfg.sections + 1] = at
        end
        local function options(t)
          current = "*"
          if type(t) ~= "table" then error("expected a table of options", 2) end
          for k, v in pairs(t) do set(hostname, k, v, "options") end
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
      local data, err = read_file_or_override(full)
      if not data then
        error(("Error loading included %s: %s"):format(errors.quote(full), errors.shorten((err or ""):gsub("^.-: ", ""))), 0)
      end
      local saved = current
      parse(data, full)
      current = saved
    end
    api.include = api.Include
    function api.RunScript()
      error("RunScript is not run by the audit (it would execute code)", 2)
    end
    function api.FileContents(path)
      local data, err = read_file_or_override(resolve(dir, path))
      if not data then
        error(("cannot read %s: %s"):format(errors.quote(path), errors.shorten((err or ""):gsub("^.-: ", ""))), 2)
      end
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
    -- Prosody 13: a file of $CREDENTIALS_DIRECTORY (from the caller's env
    -- only); without that directory Prosody 13 leaves the option unset.
    function api.Credential(name)
      if type(name) ~= "string" or name == "" or name:find("/", 1, true) then
        error(("Credential needs a file name, got %s"):format(errors.quote(name)), 2)
      end
      local credentials = env_values.CREDENTIALS_DIRECTORY
      if type(credentials) ~= "string" then return nil end
      local data, err = read_file_or_override(credentials .. "/" .. name)
      if not data then
        error(("cannot read credential %s: %s"):format(errors.quote(name), errors.shorten((err or ""):gsub("^.-: ", ""))), 2)
      end
      return data
    end

    -- Prosody 13: an option set before in the same scope reads back; a
    -- list or table one as a proxy whose :append (or a call) adds to it
    -- (modules_enabled:append { "x" }, ssl:append { protocol = ... }).
    local option_proxy = {}
    option_proxy.__index = {
      append = function(self, value)
        local original = config[self.host] and config[self.host][self.name]
        if original == nil then original = {} end
        if type(value) ~= "table" then
          error("'append' operation expects a list of values to append to the existing list", 2)
        end
        if value[1] ~= nil then
          for _, v in ipairs(value) do original[#original + 1] = v end
        else
          for k, v in pairs(value) do original[k] = v end
        end
        set(self.host, self.name, original, "append")
        return self
      end,
      value = function(self) return config[self.host] and config[self.host][self.name] end,
    }
    option_proxy.__call = function(self, v2)
      if type(v2) == "table" then return self:append(v2) end
      error("Invalid syntax - missing '=' perhaps?", 2)
    end

    env = setmetatable({}, {
      __index = function(_, k)
        if api[k] then return api[k] end
        if type(k) == "string" and k:match("^ENV_") then return env_values[k:sub(5)] end
        -- Prosody 13 spells Lua's globals Lua.x (here: the pure ones above)
        if k == "Lua" then return globals end
        local val = config[current] and config[current][k]
        if type(val) == "table" then
          return setmetatable({ host = current, name = k }, option_proxy)
        elseif val ~= nil then
          return val
        end
        return globals[k]
      end,
      __newindex = function(_, k, v)
        set(current, k, v)
      end,
    })

    local chunk, err = load(data, "@" .. file, "t", env)
    if not chunk then errors.input("audit", "%s", errors.shorten(err)) end
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
      errors.input("audit", "%s", errors.shorten(msg))
    end
  end

  parse(text, name)
  return setmetatable(cfg, { __index = M })
end

--- configmanager.get: the host's value, else the global one.
function M:get(host, key)
  local h = self.config[host]
  if h and h[key] ~= nil then return h[key] end
  return self.config["*"][key]
end

--- A path option (certificates, certificate): nil, or a string; anything
-- else is an error naming the option, as Prosody could not use it either.
function M:path_option(host, key)
  local v = self:get(host, key)
  if v ~= nil and type(v) ~= "string" then
    errors.input("audit", "option '%s'%s must be a file or folder path, got %s", key,
      host == "*" and "" or (" of " .. errors.shorten(host)), type(v))
  end
  return v
end

--- configmanager.rawget: the host's own value only.
function M:rawget(host, key)
  local h = self.config[host]
  return h and h[key]
end

return M
