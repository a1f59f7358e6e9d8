-- Handshake benchmark: full and resumed TLS handshakes per second, and the
-- server's CPU time per handshake, for three servers on 127.0.0.1 that use
-- the same key and certificate (RSA-2048 and ECDSA P-256 in turn):
--   prosody    a LuaSec server with Prosody 0.12's default c2s context
--   tlsharden  the same LuaSec server with tlsharden.new_context defaults
--   s_server   `openssl s_server`, the raw OpenSSL limit
-- The load comes from bench/handshake/hsload.c (one connection at a time,
-- bounded by count and time).
--
--   lua5.4 bench/handshake/run.lua [COUNT] [SECONDS] [--markdown FILE]
local socket = require "socket"

local count = tonumber(arg[1]) or 2000
local seconds = tonumber(arg[2]) or 10
local markdown
for i = 1, #arg do if arg[i] == "--markdown" then markdown = arg[i + 1] end end

local root = debug.getinfo(1, "S").source:match("^@(.*)/bench/handshake/run.lua$") or "."
local hsload = root .. "/build/bench/hsload"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  if not ok then error("command failed: " .. cmd .. "\n" .. out) end
  return out
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function wait_port(port)
  for _ = 1, 100 do
    local c = socket.tcp()
    c:settimeout(0.1)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return true end
    socket.sleep(0.05)
  end
  error("server on port " .. port .. " did not start")
end

local dir = run("mktemp -d"):gsub("%s+$", "")
local certs = {
  { name = "RSA-2048", key = "-newkey rsa:2048" },
  { name = "ECDSA P-256", key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256" },
}
for i, c in ipairs(certs) do
  c.cert, c.keyfile = dir .. "/cert" .. i .. ".pem", dir .. "/key" .. i .. ".pem"
  run(("openssl req -x509 %s -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout %s -out %s")
    :format(c.key, q(c.keyfile), q(c.cert)))
end

-- the servers run on the Lua running this script, with the core built for it
local version = _VERSION:match("%d+%.%d+")
local vu = version:gsub("%.", "_")
local build = version == "5.4" and "/build/" or "/build/" .. version .. "/"
local lua = "env LUA_PATH_" .. vu .. "=" .. q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;") ..
  " LUA_CPATH_" .. vu .. "=" .. q(root .. build .. "?.so;;") .. " lua" .. version
local servers = {
  { name = "prosody", start = function(c, port)
      return ("exec %s %s/bench/handshake/server.lua %d %s %s prosody 600"):format(lua, q(root), port, q(c.cert), q(c.keyfile))
    end },
  { name = "tlsharden", start = function(c, port)
      return ("exec %s %s/bench/handshake/server.lua %d %s %s tlsharden 600"):format(lua, q(root), port, q(c.cert), q(c.keyfile))
    end },
  { name = "s_server", start = function(c, port)
      -- -naccept bounds it; exec keeps the pid that of s_server itself
      return ("exec openssl s_server -quiet -naccept %d -accept %d -cert %s -key %s"):format(
        2 * count + 100, port, q(c.cert), q(c.keyfile))
    end },
}

local function parse(line)
  local t = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

local results = {}
for _, c in ipairs(certs) do
  for _, s in ipairs(servers) do
    local port = free_port()
    local pidfile = dir .. "/pid"
    run(("sh -c %s"):format(q(s.start(c, port) .. " > /dev/null 2>&1 & echo $! > " .. q(pidfile))))
    local pid = tonumber(run("cat " .. q(pidfile)):match("%d+"))
    -- `env` and `exec` replace the shell, so pid is the server itself.
    wait_port(port)
    local r = { cert = c.name, server = s.name }
    r.full = parse(run(("%s -p %d -n %d -t %s -P %d"):format(hsload, port, count, seconds, pid)))
    r.resumed = parse(run(("%s -p %d -n %d -t %s -P %d -r"):format(hsload, port, count, seconds, pid)))
    run("kill " .. pid .. " 2>/dev/null || true")
    results[#results + 1] = r
    io.stderr:write(("%-12s %-10s full %8.1f/s  resumed %8.1f/s (%d resumed)\n"):format(
      c.name, s.name, r.full.per_second, r.resumed.per_second, r.resumed.resumed or 0))
  end
end
run("rm -rf " .. q(dir))

local function find(cert, server)
  for _, r in ipairs(results) do if r.cert == cert and r.server == server then return r end end
end

local lines = {}
local function out(s) lines[#lines + 1] = s end
out("| certificate | handshake | tlsharden / prosody | tlsharden / s_server |")
out("| --- | --- | --- | --- |")
for _, c in ipairs(certs) do
  local a, b, s = find(c.name, "prosody"), find(c.name, "tlsharden"), find(c.name, "s_server")
  for _, kind in ipairs { "full", "resumed" } do
    out(("| %s | %s | %.2f | %.2f |"):format(c.name, kind,
      b[kind].per_second / a[kind].per_second, b[kind].per_second / s[kind].per_second))
  end
end
out("")
out("| certificate | server | full /s | server CPU ms / full | resumed /s | server CPU ms / resumed | resumed by server |")
out("| --- | --- | --- | --- | --- | --- | --- |")
for _, r in ipairs(results) do
  out(("| %s | %s | %.0f | %.3f | %.0f | %.3f | %d of %d |"):format(r.cert, r.server,
    r.full.per_second, r.full.server_cpu_ms_per_handshake or 0,
    r.resumed.per_second, r.resumed.server_cpu_ms_per_handshake or 0,
    r.resumed.resumed or 0, r.resumed.handshakes or 0))
end
out("")
local bench = dofile(root .. "/bench/common.lua")
out("machine: " .. bench.machine() .. "; client: bench/handshake/hsload.c, one connection at a time")
local text = table.concat(lines, "\n") .. "\n"
io.write(text)
if markdown then
  local f = assert(io.open(markdown, "w"))
  f:write(text)
  f:close()
end
