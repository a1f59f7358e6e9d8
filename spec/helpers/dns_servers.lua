--- Real DNS servers for the resolver specs, on free ports of the loopback
-- addresses, in the foreground in the background and always stopped:
--   dnsmasq (Debian): static SRV, A/AAAA, TXT and raw (TLSA) records, no
--     upstream, never validating (no AD bit);
--   unbound (Debian) validating a zone signed here with ldns-signzone
--     under a trust anchor written here, so that it sets AD (or answers
--     SERVFAIL for a zone whose data no longer matches its signatures).
-- Neither server ever sends a query off the machine: dnsmasq has no
-- upstream, unbound only sends from 127.0.0.1 to a stub on 127.0.0.1.
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"

local M = {}

function M.have(cmd)
  return sh.exec("command -v " .. cmd .. " >/dev/null")
end

--- A port that was free a moment ago on host for UDP and for TCP (a DNS
-- server binds both; a port free for UDP alone may be another process's
-- TCP listener).
function M.free_port(host)
  for _ = 1, 20 do
    local u = assert(host:find(":") and socket.udp6() or socket.udp())
    assert(u:setsockname(host, 0))
    local _, port = u:getsockname()
    local t = assert(host:find(":") and socket.tcp6() or socket.tcp())
    t:setoption("reuseaddr", true)
    local ok = t:bind(host, tonumber(port))
    t:close()
    u:close()
    if ok then return tonumber(port) end
  end
  error("no port free for both UDP and TCP on " .. host)
end

local function wait_tcp(host, port, seconds)
  local deadline = socket.gettime() + seconds
  while socket.gettime() < deadline do
    local c = assert(host:find(":") and socket.tcp6() or socket.tcp())
    c:settimeout(0.2)
    local ok = c:connect(host, port)
    c:close()
    if ok then return true end
    socket.sleep(0.05)
  end
  return false
end

local function handle(dir, host, port, pid, logfile)
  local server = { dir = dir, host = host, port = port, pid = pid,
    address = (host:find(":") and "[%s]:%d" or "%s:%d"):format(host, port) }
  function server.log() return (pcall(pki.read, logfile)) and pki.read(logfile) or "" end
  function server.stop()
    if server.pid then
      sh.exec("kill " .. server.pid .. " 2>/dev/null")
      for _ = 1, 100 do
        if not sh.exec("kill -0 " .. server.pid .. " 2>/dev/null") then break end
        socket.sleep(0.02)
      end
      sh.exec("kill -9 " .. server.pid .. " 2>/dev/null")
      server.pid = nil
    end
    pki.cleanup(dir)
  end
  return server
end

local function start(dir, host, port, cmd, logfile, what)
  local pid = tonumber(sh.run(("%s > %s 2>&1 & echo $!"):format(cmd, sh.quote(logfile))):match("%d+"))
  local server = handle(dir, host, port, pid, logfile)
  if not wait_tcp(host, port, 10) then
    local log = server.log()
    server.stop()
    error(what .. " did not start:\n" .. log)
  end
  return server
end

--- Start dnsmasq. opts: host ("127.0.0.1" or "::1"), srv (list of
-- "_service._proto.domain,target,port,priority,weight"), hosts (list of
-- "name,address[,address]"), txt (list of "name,text,..."), rr (list of
-- "name,type,hex"), extra (list of further arguments). Returns a handle:
-- host, port, address ("127.0.0.1:N"), log(), stop().
function M.dnsmasq(opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  local dir = pki.tmpdir()
  local port = M.free_port(host)
  local argv = { "dnsmasq", "--keep-in-foreground", "--port=" .. port, "--listen-address=" .. host,
    "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=",
    "--log-queries", "--log-facility=-", "--user=root" }
  for _, v in ipairs(opts.srv or {}) do argv[#argv + 1] = "--srv-host=" .. v end
  for _, v in ipairs(opts.hosts or {}) do argv[#argv + 1] = "--host-record=" .. v end
  for _, v in ipairs(opts.txt or {}) do argv[#argv + 1] = "--txt-record=" .. v end
  for _, v in ipairs(opts.rr or {}) do argv[#argv + 1] = "--dns-rr=" .. v end
  for _, v in ipairs(opts.extra or {}) do argv[#argv + 1] = v end
  for i, v in ipairs(argv) do argv[i] = sh.quote(v) end
  return start(dir, host, port, table.concat(argv, " "), dir .. "/dnsmasq.log", "dnsmasq")
end

--- Start unbound serving a zone signed here. opts: zone ("example.test"),
-- records (zone file lines relative to the zone), tamper (a function that
-- gets the signed zone text and returns it changed, to break signatures).
-- Returns a handle as for dnsmasq, plus ds (the trust anchor's DS line).
function M.unbound(opts)
  local zone = assert(opts.zone)
  local dir = pki.tmpdir()
  local host = "127.0.0.1"
  local port = M.free_port(host)
  local lines = { "$ORIGIN " .. zone .. ".", "$TTL 300",
    ("@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300"):format(zone, zone),
    ("@ IN NS ns.%s."):format(zone), "ns IN A 127.0.0.1" }
  for _, l in ipairs(opts.records or {}) do lines[#lines + 1] = l end
  pki.write(dir .. "/zone", table.concat(lines, "\n") .. "\n")
  local q = sh.quote
  local ksk = sh.run(("cd %s && ldns-keygen -a ECDSAP256SHA256 -k %s"):format(q(dir), q(zone))):match("%S+")
  local zsk = sh.run(("cd %s && ldns-keygen -a ECDSAP256SHA256 %s"):format(q(dir), q(zone))):match("%S+")
  sh.run(("cd %s && ldns-signzone -n -o %s zone %s %s"):format(q(dir), q(zone .. "."), q(ksk), q(zsk)))
  if opts.tamper then pki.write(dir .. "/zone.signed", opts.tamper(pki.read(dir .. "/zone.signed"))) end
  local stub = M.free_port(host)
  pki.write(dir .. "/unbound.conf", table.concat({
    "server:",
    "  interface: " .. host, "  port: " .. port, "  outgoing-interface: 127.0.0.1",
    "  do-ip6: no", "  do-daemonize: no", '  username: ""', '  chroot: ""',
    "  directory: " .. q(dir), '  pidfile: ""', "  use-syslog: no", '  logfile: ""', "  verbosity: 1",
    '  module-config: "validator iterator"', "  trust-anchor-file: " .. q(dir .. "/" .. ksk .. ".ds"),
    "  trust-anchor-signaling: no", "  root-key-sentinel: no", "  do-not-query-localhost: no",
    "  access-control: 127.0.0.0/8 allow", "  val-log-level: 2", "  ede: yes",
    ('  local-zone: "%s." nodefault'):format(zone:match("[^.]+$")),
    "auth-zone:", ('  name: "%s."'):format(zone), "  zonefile: " .. q(dir .. "/zone.signed"),
    "  for-upstream: yes", "  for-downstream: no",
    -- everything else goes to a port where nothing listens, on loopback
    "stub-zone:", '  name: "."', ("  stub-addr: 127.0.0.1@%d"):format(stub),
  }, "\n") .. "\n")
  local server = start(dir, host, port, ("unbound -d -c %s"):format(q(dir .. "/unbound.conf")),
    dir .. "/unbound.log", "unbound")
  server.ds = pki.read(dir .. "/" .. ksk .. ".ds")
  return server
end

return M
