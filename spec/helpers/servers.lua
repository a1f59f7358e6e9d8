--- Real TLS servers for the wire and probe specs: openssl s_server and
-- gnutls-serv on a free port of 127.0.0.1, each a separate process that the
-- spec stops (stop() kills it and waits until it is gone).
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"

local M = {}

--- A port that was free a moment ago on 127.0.0.1 (the Prosody helper's).
M.free_port = require("spec.helpers.prosody").free_port

-- Running, and not a zombie: the process is not our child, and what reaps
-- orphans may not run here.
local function alive(pid)
  local _, out = sh.exec("ps -o stat= -p " .. pid)
  out = out:gsub("%s", "")
  return out ~= "" and not out:find("^Z")
end

local function wait_listening(port, pid, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", port)
    c:close()
    if ok then return true end
    if not alive(pid) then return false end
    socket.sleep(0.05)
  end
  return false
end

--- Start a server from a shell command line in which "{port}" stands for
-- the port. Returns { port, pid, log = function() -> text, stop = function() }.
-- Raises (after stopping it) when the server does not listen within 10 s.
function M.start(cmd, dir)
  local port = M.free_port()
  local logfile = (dir or os.tmpname()) .. "/server-" .. port .. ".log"
  local line = cmd:gsub("{port}", tostring(port))
  local p = assert(io.popen(sh.command(line .. " > " .. sh.quote(logfile) ..
    " 2>&1 < /dev/null & echo $!")))
  local pid = tonumber(p:read("*l"))
  p:close()
  assert(pid, "no pid for " .. line)
  local server = { port = port, pid = pid, command = line }
  function server.log()
    local f = io.open(logfile, "rb")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
  end
  function server.stop()
    if not server.pid then return end
    sh.exec("kill " .. server.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not alive(server.pid) then break end
      socket.sleep(0.02)
    end
    if alive(server.pid) then sh.exec("kill -9 " .. server.pid .. " 2>/dev/null") end
    server.pid = nil
  end
  if not wait_listening(port, pid, 10) then
    local log = server.log()
    server.stop()
    error("server did not listen: " .. line .. "\n" .. log, 2)
  end
  return server
end

--- openssl s_server with a certificate (cert = { cert, key } from
-- spec/helpers/pki.lua) and extra arguments (a string).
function M.openssl(dir, cert, args)
  return M.start(("openssl s_server -accept 127.0.0.1:{port} -cert %s -key %s -www %s"):format(
    sh.quote(cert.cert), sh.quote(cert.key), args or ""), dir)
end

--- gnutls-serv with a certificate and a priority string.
function M.gnutls(dir, cert, priority, args)
  return M.start(("gnutls-serv --port {port} --x509certfile %s --x509keyfile %s --priority %s -q %s"):format(
    sh.quote(cert.cert), sh.quote(cert.key), sh.quote(priority), args or ""), dir)
end

--- A directory with an RSA and an ECDSA certificate for example.com and a
-- 1024-bit and a 2048-bit DH parameter file; cleanup() removes it.
function M.fixtures()
  local dir = pki.tmpdir()
  local f = { dir = dir }
  f.rsa = pki.cert(dir, "rsa", { key_kind = "rsa2048", cn = "example.com", san = { "DNS:example.com" } })
  f.ecdsa = pki.cert(dir, "ecdsa", { key_kind = "ec256", cn = "example.com", san = { "DNS:example.com" } })
  function f.dhparam(bits)
    local path = dir .. "/dh" .. bits .. ".pem"
    local file = io.open(path)
    if file then file:close() return path end
    if bits >= 2048 then
      -- an ffdhe group (RFC 7919) as a DH parameter file: made in no time
      sh.run(("openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe%d -out %s"):format(bits, sh.quote(path)))
    else
      sh.run(("openssl dhparam -out %s %d 2>/dev/null"):format(sh.quote(path), bits))
    end
    return path
  end
  function f.der(cert)
    return sh.run(("openssl x509 -in %s -outform DER | od -An -v -tx1"):format(sh.quote(cert.cert)))
      :gsub("%s+", "")
  end
  function f.cleanup() pki.cleanup(dir) end
  return f
end

return M
