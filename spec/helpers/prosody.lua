--- A real Prosody (Debian's package) for integration specs: a throwaway
-- config, data directory and certificates under /tmp, free ports on
-- 127.0.0.1, started in the foreground in the background and always stopped.
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"

local M = {}

function M.installed()
  return sh.exec("command -v prosody >/dev/null && test -d /usr/lib/prosody")
end

--- A port that was free a moment ago on 127.0.0.1.
function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function lua_value(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for i, item in ipairs(v) do parts[i] = lua_value(item) end
  for k, item in pairs(v) do
    if math.type(k) ~= "integer" then
      parts[#parts + 1] = ("[%q] = %s"):format(k, lua_value(item))
    end
  end
  return "{ " .. table.concat(parts, ", ") .. " }"
end
M.lua_value = lua_value

--- Start Prosody. opts:
--   hosts: list of host names (default { "localhost" }); a certificate signed
--          by a throwaway CA is generated for each;
--   global: extra global settings (a table, written as Lua);
--   host_settings: { [host] = { setting = value } };
--   modules: extra modules_enabled entries;
--   plugin_paths: list;
--   key_kind: the hosts' key type (spec/helpers/pki.lua; default ec256);
--   env: extra environment (string "NAME=value ...") for the prosody process.
-- Returns a server handle: dir, ports {c2s, s2s, c2s_direct_tls}, ca,
-- log() -> text, stop().
function M.start(opts)
  opts = opts or {}
  local dir = pki.tmpdir()
  local hosts = opts.hosts or { "localhost" }
  sh.run("mkdir -p " .. sh.quote(dir .. "/data") .. " " .. sh.quote(dir .. "/certs"))
  local ca = pki.cert(dir, "ca", { ca = true, cn = "tlsharden prosody test CA" })
  for _, host in ipairs(hosts) do
    local leaf = pki.cert(dir, host, { issuer = ca, cn = host, key_kind = opts.key_kind,
      san = { "DNS:" .. host, "DNS:*." .. host } })
    sh.run(("mv %s %s/certs/%s.crt && mv %s %s/certs/%s.key"):format(
      sh.quote(leaf.cert), sh.quote(dir), host, sh.quote(leaf.key), sh.quote(dir), host))
  end
  local ports = { c2s = M.free_port(), s2s = M.free_port(), c2s_direct_tls = M.free_port() }
  local settings = {
    run_as_root = true,
    daemonize = false,
    pidfile = dir .. "/prosody.pid",
    data_path = dir .. "/data",
    interfaces = { "127.0.0.1" },
    local_interfaces = { "127.0.0.1" },
    c2s_ports = { ports.c2s },
    s2s_ports = { ports.s2s },
    c2s_direct_tls_ports = { ports.c2s_direct_tls },
    http_ports = {},
    https_ports = {},
    component_ports = {},
    admin_socket = dir .. "/admin.sock",
    certificates = "certs",
    log = { { levels = { min = "debug" }, to = "file", filename = dir .. "/prosody.log" } },
    plugin_paths = opts.plugin_paths,
    modules_enabled = { "tls", "saslauth", "disco", "roster", "ping", "dialback" },
  }
  for _, m in ipairs(opts.modules or {}) do table.insert(settings.modules_enabled, m) end
  for k, v in pairs(opts.global or {}) do settings[k] = v end
  local lines = {}
  local keys = {}
  for k in pairs(settings) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do lines[#lines + 1] = k .. " = " .. lua_value(settings[k]) end
  for _, host in ipairs(hosts) do
    lines[#lines + 1] = ("VirtualHost %q"):format(host)
    for k, v in pairs((opts.host_settings or {})[host] or {}) do
      lines[#lines + 1] = "  " .. k .. " = " .. lua_value(v)
    end
  end
  local config = dir .. "/prosody.cfg.lua"
  pki.write(config, table.concat(lines, "\n") .. "\n")

  local server = { dir = dir, ports = ports, ca = ca.cert, config = config, hosts = hosts }
  function server.log()
    local f = io.open(dir .. "/prosody.log")
    local text = f and f:read("a") or ""
    if f then f:close() end
    local g = io.open(dir .. "/stdout.log")
    if g then text = text .. g:read("a") g:close() end
    return text
  end
  function server.pid()
    local f = io.open(dir .. "/prosody.pid")
    local pid = f and tonumber(f:read("l"))
    if f then f:close() end
    return pid
  end
  function server.stop()
    local pid = server.pid()
    if pid then
      sh.exec("kill " .. pid)
      for _ = 1, 100 do
        if not sh.exec("kill -0 " .. pid .. " 2>/dev/null") then break end
        socket.sleep(0.05)
      end
      sh.exec("kill -9 " .. pid .. " 2>/dev/null")
    end
    if not os.getenv("TLSHARDEN_KEEP_PROSODY") then pki.cleanup(dir) end
  end

  sh.run(("cd %s && %s prosody --config %s -F > %s 2>&1 &"):format(
    sh.quote(dir), opts.env and ("env " .. opts.env) or "", sh.quote(config),
    sh.quote(dir .. "/stdout.log")))
  -- Ready when c2s accepts connections (or give up after 15 s).
  local deadline = socket.gettime() + 15
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    if c:connect("127.0.0.1", ports.c2s) then
      c:close()
      return server
    end
    c:close()
    socket.sleep(0.1)
  end
  local log = server.log()
  server.stop()
  error("prosody did not start:\n" .. log)
end

--- Run `openssl s_client` against the server. opts: port, starttls ("xmpp"
-- or "xmpp-server"), host, extra (string of flags). Returns a table
-- { ok, protocol, cipher, output }.
function M.s_client(opts)
  local cmd = ("echo | timeout 10 openssl s_client -connect 127.0.0.1:%d %s %s %s 2>&1"):format(
    opts.port,
    opts.starttls and ("-starttls " .. opts.starttls .. " -xmpphost " .. sh.quote(opts.host or "localhost")) or
      ("-servername " .. sh.quote(opts.host or "localhost")),
    opts.ca and ("-CAfile " .. sh.quote(opts.ca)) or "",
    opts.extra or "")
  local _, out = sh.exec(cmd)
  local protocol, cipher = out:match("New, (%S+), Cipher is (%S+)")
  local r = { output = out, protocol = protocol, cipher = cipher }
  r.ok = cipher ~= nil and cipher ~= "(NONE)"
  return r
end

return M
