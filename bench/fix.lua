-- Fix speed: generated Prosody configurations with 10, 100 and 1,000
-- virtual hosts sharing one wildcard certificate, every tenth with a weak
-- ssl table and allow_unencrypted_plain_auth = true, fixed by
-- tlsharden.fix (rounds of audit and edit until nothing is left); beside
-- it, one tlsharden.audit of the same file (clients off in both, as fix
-- audits), the check an admin runs after editing by hand, and
-- `prosodyctl check config` (Prosody's own check, which --write runs
-- twice) where it is installed. Prints the seconds of each and the ratio.
--   lua5.4 bench/fix.lua [MAX_HOSTS]
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
-- (the certificate is self-signed: the fix leaves its T, as it must)
local ca = dir .. "/certs/example.org.crt"

local has_prosodyctl = os.execute("command -v prosodyctl > /dev/null 2>&1")
has_prosodyctl = has_prosodyctl == true or has_prosodyctl == 0

local sizes = {}
for _, n in ipairs { 10, 100, 1000 } do if n <= max_hosts then sizes[#sizes + 1] = n end end
print(("%8s %8s %8s %12s %12s %14s"):format("hosts", "changes", "rounds", "fix (s)", "audit (s)", "prosodyctl (s)"))
for _, n in ipairs(sizes) do
  local lines = { 'certificates = "certs"', 's2s_secure_auth = true', 'c2s_direct_tls_ports = { 5223 }' }
  for i = 1, n do
    lines[#lines + 1] = ('VirtualHost "host%d.example.org"'):format(i)
    if i % 10 == 0 then
      lines[#lines + 1] = '  -- copied from an old tutorial'
      lines[#lines + 1] = '  ssl = { protocol = "tlsv1+"; depth = 1; options = { "no_ticket" } }'
      lines[#lines + 1] = '  allow_unencrypted_plain_auth = true'
    end
  end
  local path = dir .. "/prosody.cfg.lua"
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  collectgarbage()
  local t0 = socket.gettime()
  local r = tlsharden.fix(path, { cafile = ca })
  local t_fix = socket.gettime() - t0
  assert(#r.files == 1 and #r.changes == 3 * n / 10, "the fix changes something else")
  collectgarbage()
  t0 = socket.gettime()
  local report = tlsharden.audit(path, { cafile = ca, clients = false })
  local t_audit = socket.gettime() - t0
  assert(#report.hosts == n)
  local t_check = "-"
  if has_prosodyctl then
    t0 = socket.gettime()
    os.execute(("prosodyctl --config %s check config > /dev/null 2>&1"):format(path))
    t_check = ("%.3f"):format(socket.gettime() - t0)
  end
  print(("%8d %8d %8d %12.3f %12.3f %14s   fix/audit %.2f"):format(n, #r.changes, r.rounds, t_fix, t_audit,
    t_check, t_fix / t_audit))
end
os.execute("rm -rf " .. dir)
print("machine: " .. bench.machine())
