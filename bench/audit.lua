-- Audit speed: generated Prosody configurations with 10, 100 and 1,000
-- virtual hosts sharing one wildcard certificate, audited by
-- tlsharden.audit; prints the time per host. Hosts whose effective
-- configuration is the same share one LuaSec context.
--   lua5.4 bench/audit.lua [MAX_HOSTS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local socket = require "socket"
local tlsharden = require "tlsharden"

local max_hosts = tonumber(arg[1]) or 1000
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir .. "/certs"))
assert(os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30"
  .. " -subj /CN=example.org -addext subjectAltName=DNS:example.org,DNS:*.example.org"
  .. " -keyout %s/certs/example.org.key -out %s/certs/example.org.crt 2>/dev/null"):format(dir, dir)))

local sizes = {}
for _, n in ipairs { 10, 100, 1000, 10000 } do if n <= max_hosts then sizes[#sizes + 1] = n end end
print(("%8s %10s %14s"):format("hosts", "seconds", "ms per host"))
for _, n in ipairs(sizes) do
  local lines = { 'certificates = "certs"', 'c2s_direct_tls_ports = { 5223 }' }
  for i = 1, n do
    lines[#lines + 1] = ('VirtualHost "host%d.example.org"'):format(i)
    if i % 10 == 0 then lines[#lines + 1] = '  ssl = { depth = 5 }' end
  end
  local path = dir .. "/prosody.cfg.lua"
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  collectgarbage()
  local t0 = socket.gettime()
  local report = tlsharden.audit(path)
  local t = socket.gettime() - t0
  assert(#report.hosts == n)
  print(("%8d %10.3f %14.3f"):format(n, t, t * 1000 / n))
end
os.execute("rm -rf " .. dir)
print("machine: " .. bench.machine())
