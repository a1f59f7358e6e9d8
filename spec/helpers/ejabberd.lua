--- Debian's ejabberd (fast_tls: the TLS layer of ejabberd and MongooseIM)
-- on free ports of 127.0.0.1, with a configuration and certificate of its
-- own in a temporary folder, as an Erlang node of its own name; stop()
-- stops the node and removes the folder. The node runs as the ejabberd
-- user, as Debian's ejabberdctl runs it.
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local prosody = require "spec.helpers.prosody"

local M = {}

--- Whether ejabberd can run here, and why not.
function M.available()
  local ok = sh.exec("test -x /usr/sbin/ejabberdctl && id ejabberd")
  if not ok then return false, "ejabberd is not installed (Debian package ejabberd)" end
  return true
end

local function listening(port)
  local c = socket.tcp()
  c:settimeout(0.2)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

--- Start ejabberd for host (default "localhost"). Returns { ports = {
-- c2s, s2s, c2s_direct_tls }, ca, dir, node, log(), stop() }; raises
-- (after stopping it) when it does not listen within 60 s.
function M.start(opts)
  opts = opts or {}
  local host = opts.host or "localhost"
  local dir = pki.tmpdir()
  local ca = pki.cert(dir, "ca", { ca = true, cn = "tlsharden ejabberd test CA" })
  local leaf = pki.cert(dir, host, { issuer = ca, cn = host, key_kind = opts.key_kind or "rsa2048",
    san = { "DNS:" .. host } })
  sh.run(("cat %s %s > %s/server.pem"):format(sh.quote(leaf.cert), sh.quote(leaf.key), sh.quote(dir)))
  local ports = { c2s = prosody.free_port(), s2s = prosody.free_port(), c2s_direct_tls = prosody.free_port() }
  local node = ("tlsharden_%d@localhost"):format(ports.c2s)
  pki.write(dir .. "/ejabberd.yml", table.concat({
    "hosts:",
    "  - " .. host,
    "loglevel: info",
    "certfiles:",
    "  - " .. dir .. "/server.pem",
    "listen:",
    "  -",
    "    port: " .. ports.c2s,
    '    ip: "127.0.0.1"',
    "    module: ejabberd_c2s",
    "    starttls_required: true",
    "  -",
    "    port: " .. ports.s2s,
    '    ip: "127.0.0.1"',
    "    module: ejabberd_s2s_in",
    "  -",
    "    port: " .. ports.c2s_direct_tls,
    '    ip: "127.0.0.1"',
    "    module: ejabberd_c2s",
    "    tls: true",
    "s2s_use_starttls: optional",
    "auth_method: internal",
    "modules:",
    "  mod_disco: {}",
    "  mod_ping: {}",
    "",
  }, "\n"))
  -- Debian's /etc/ejabberd/ejabberdctl.cfg names the system's
  -- configuration and pid file: ours names neither
  pki.write(dir .. "/ejabberdctl.cfg", ('ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\nEJABBERD_PID_PATH=%s/spool/ejabberd.pid\n')
    :format(dir))
  sh.run(("mkdir -p %s/spool %s/logs && chmod -R a+rX %s && chown -R ejabberd %s/spool %s/logs"):format(
    sh.quote(dir), sh.quote(dir), sh.quote(dir), sh.quote(dir), sh.quote(dir)))
  local ctl = ("ejabberdctl --node %s --ctl-config %s/ejabberdctl.cfg --config %s/ejabberd.yml --spool %s/spool"
    .. " --logs %s/logs"):format(node, sh.quote(dir), sh.quote(dir), sh.quote(dir), sh.quote(dir))
  sh.run(ctl .. " start")
  local server = { ports = ports, ca = ca.cert, dir = dir, node = node }
  function server.log()
    local f = io.open(dir .. "/logs/ejabberd.log")
    local text = f and f:read("*a") or ""
    if f then f:close() end
    return text
  end
  function server.stop()
    if server.stopped then return end
    server.stopped = true
    sh.exec(ctl .. " stop")
    sh.exec(ctl .. " stopped")
    -- the node's processes, whatever is left of them
    sh.exec(("pkill -f %s"):format(sh.quote("-sname " .. node:match("^[^@]+"))))
    pki.cleanup(dir)
  end
  local deadline = socket.gettime() + 60
  while socket.gettime() < deadline do
    if listening(ports.c2s) and listening(ports.c2s_direct_tls) then return server end
    socket.sleep(0.2)
  end
  local log = server.log()
  server.stop()
  error("ejabberd did not listen within 60 s:\n" .. log:sub(-2000))
end

return M
