-- Prosody start-up and reload with and without mod_tlsharden: a real
-- Prosody (0.12 from Debian, 13 from build/prosody-13) with Debian's
-- default prosody.cfg.lua, HOSTS virtual hosts each with its own ECDSA
-- certificate in the certificates folder, and one c2s direct TLS port (so
-- that every host also has an SNI context). Runs alternate, without the
-- module and with it; per version, the median of each measure and of the
-- per-round ratios (with / without).
--   ready    from starting the process until STARTTLS to the last host of
--            the configuration gives that host's certificate (wall clock,
--            and the CPU time the process used until then)
--   reload   from SIGHUP until the same STARTTLS works again after Prosody
--            logged the signal (wall clock and CPU time)
--   idle     the CPU time until the process has nothing left to do (no CPU
--            used for 2 s), start-up and reload each (what mod_tlsharden
--            leaves for later included)
-- With --callgrind, Prosody runs under valgrind's callgrind and the same
-- points are measured in instructions (slow: use tens of hosts, not
-- thousands); the steady measure on a shared machine.
--   lua5.4 bench/prosody_startup.lua [HOSTS] [ROUNDS] [VERSION...] [--callgrind]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
package.path = bench.root .. "/?.lua;" .. package.path
local socket = require "socket"
local ssl = require "ssl"
local prosody = require "spec.helpers.prosody"

local positional, callgrind = {}, false
for _, a in ipairs(arg) do
  if a == "--callgrind" then callgrind = true else positional[#positional + 1] = a end
end
local hosts = tonumber(positional[1]) or 1000
local rounds = tonumber(positional[2]) or 3
local wanted = {}
for i = 3, #positional do wanted[#wanted + 1] = positional[i] end
if #wanted == 0 then wanted = { "0.12", "13" } end
local slow = callgrind and 60 or 1  -- how much longer everything takes under valgrind

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok = p:close()
  if not ok then error("command failed: " .. cmd .. "\n" .. out) end
  return out
end
-- Prosody runs in its own directory: the checkout's absolute path.
local root = run("cd " .. q(bench.root) .. " && pwd"):gsub("%s+$", "")

local function host_name(i) return ("host%d.bench.example"):format(i) end

local function read_file(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- The certificates, made once and kept under build/bench/prosody-certs:
-- one CA, one P-256 key, a leaf certificate per host (signed in one shell
-- loop; openssl's start-up is most of each step).
local function certificates(n)
  local dir = root .. "/build/bench/prosody-certs"
  run("mkdir -p " .. q(dir .. "/certs"))
  if read_file(dir .. "/leaf.pub") == "" then
    run(("cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key"
      .. " && openssl req -x509 -new -key ca.key -subj '/CN=tlsharden bench CA' -days 3650"
      .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt"
      .. " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key"
      .. " && openssl pkey -in leaf.key -pubout -out leaf.pub"):format(q(dir)))
  end
  local have = 0
  while read_file(("%s/certs/%s.crt"):format(dir, host_name(have + 1))) ~= "" do have = have + 1 end
  if have < n then
    io.stderr:write(("bench: signing %d certificates (kept in %s)\n"):format(n - have, dir))
    run(("cd %s && i=%d; while [ $i -le %d ]; do h=host$i.bench.example;"
      .. " printf 'subjectAltName=DNS:%%s\\nbasicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
      .. "extendedKeyUsage=serverAuth,clientAuth\\n' $h > ext.cnf &&"
      .. " openssl x509 -new -subj /CN=$h -force_pubkey leaf.pub -CA ca.crt -CAkey ca.key -days 3650"
      .. " -set_serial $i -extfile ext.cnf -out certs/$h.crt.tmp && cp leaf.key certs/$h.key &&"
      .. " mv certs/$h.crt.tmp certs/$h.crt || exit 1; i=$((i+1)); done"):format(q(dir), have + 1, n))
  end
  return dir
end

-- A server directory with n hosts (certificates copied from the cache).
local function server_dir(version, certs, n, with_module, ports)
  local dir = run("mktemp -d"):gsub("%s+$", "")
  run(("mkdir -p %s/data %s/certs"):format(q(dir), q(dir)))
  run(("cd %s/certs && seq 1 %d | sed 's/.*/host&.bench.example.crt host&.bench.example.key/' | xargs cp -t %s")
    :format(q(certs), n, q(dir .. "/certs")))
  local settings = prosody.runtime_settings(dir, ports)
  settings.log = { { levels = { min = "info" }, to = "file", filename = dir .. "/prosody.log" } }
  -- Both runs have the plugin's directory in plugin_paths, so that the
  -- comparison is of the module alone: Prosody looks in every plugin
  -- directory for every module of every host, and one more directory costs
  -- by itself (docs/performance.md).
  settings.plugin_paths = { root .. "/lua" }
  local extra = with_module and { "tlsharden" } or {}
  local host_list = {}
  for i = 1, n do host_list[i] = host_name(i) end
  local config = dir .. "/prosody.cfg.lua"
  local f = assert(io.open(config, "w"))
  f:write(prosody.default_config(version.name, settings, extra, host_list))
  f:close()
  return dir, config
end

-- Read from c until the text has arrived; false on a timeout or close.
local function receive_until(c, text)
  local buf = ""
  while not buf:find(text, 1, true) do
    local data, _, partial = c:receive(1)
    data = data or partial
    if not data or data == "" then return false end
    buf = buf .. data
  end
  return true
end

-- STARTTLS to host on port: the common name of the certificate it gets,
-- or nil.
local function starttls_cn(port, host, timeout)
  local c = socket.tcp()
  c:settimeout(timeout)
  if not c:connect("127.0.0.1", port) then c:close() return nil end
  c:send(("<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    .. " xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>"):format(host))
  if not receive_until(c, "</stream:features>") then c:close() return nil end
  c:send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
  if not (receive_until(c, "<proceed") and receive_until(c, ">")) then c:close() return nil end
  local conn = assert(ssl.wrap(c, { mode = "client", protocol = "any", verify = "none" }))
  conn:sni(host)
  conn:settimeout(timeout)
  local cn
  if conn:dohandshake() then
    local cert = conn:getpeercertificate()
    for _, field in ipairs(cert and cert:subject() or {}) do
      if field.name == "commonName" then cn = field.value end
    end
  end
  conn:close()
  return cn
end

local function cpu_ticks(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  local fields = {}
  for x in stat:gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = x end
  return tonumber(fields[12]) + tonumber(fields[13])  -- utime + stime (fields 14, 15)
end

local HZ = tonumber(run("getconf CLK_TCK")) or 100

-- Poll until STARTTLS to host gives its certificate; the time it worked.
local function wait_serving(port, host, deadline)
  while socket.gettime() < deadline do
    local ok, cn = pcall(starttls_cn, port, host, 5 * slow)
    if ok and cn == host then return socket.gettime() end
    socket.sleep(0.02 * slow)
  end
  error("prosody did not serve " .. host .. " in time")
end

-- Wait until the process has used no CPU for a while; its CPU seconds.
-- Idle: no CPU used for 2 s, longer than the second mod_tlsharden waits
-- after the last context was built before it starts judging.
local IDLE_CHECKS = 40
local function wait_idle(pid, deadline)
  local last, still = cpu_ticks(pid), 0
  while socket.gettime() < deadline do
    socket.sleep(0.05)
    local now = cpu_ticks(pid)
    if now == last then still = still + 1 else still = 0 end
    last = now
    if still >= IDLE_CHECKS then return now / HZ end
  end
  error("prosody did not go idle in time")
end

-- Under callgrind: the instructions since the previous dump.
local dumps = 0
local function instructions(pid, dir)
  dumps = dumps + 1
  run("cd " .. q(dir) .. " && callgrind_control -d " .. pid .. " > /dev/null")
  local path = ("%s/cg.out.%d"):format(dir, dumps)
  for _ = 1, 600 do
    local text = read_file(path)
    local total = text:match("\ntotals:%s*(%d+)") or text:match("\nsummary:%s*(%d+)")
    if total then return tonumber(total) end
    socket.sleep(0.1)
  end
  error("no callgrind dump " .. path)
end

local function one_run(version, certs, n, with_module)
  local ports = { c2s = prosody.free_port(), s2s = prosody.free_port(), c2s_direct_tls = prosody.free_port() }
  local dir, config = server_dir(version, certs, n, with_module, ports)
  local env = ("env LUA_PATH_5_4=%s LUA_CPATH_5_4=%s SSL_CERT_FILE=%s"):format(
    q(root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;"), q(root .. "/build/?.so;;"), q(certs .. "/ca.crt"))
  local launcher = callgrind and ("valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=%s "):format(q(dir .. "/cg.out"))
    or ""
  local last = host_name(n)
  dumps = 0
  local t0 = socket.gettime()
  local pid = tonumber(run(("cd %s && %s %s%s --config %s -F > %s 2>&1 & echo $!"):format(q(dir), env,
    launcher, q(version.prosody), q(config), q(dir .. "/stdout.log"))))
  local r = {}
  local ok, err = pcall(function()
    local limit = t0 + (60 + n * 0.3) * slow
    r.ready = wait_serving(ports.c2s, last, limit) - t0
    r.ready_cpu = cpu_ticks(pid) / HZ
    if callgrind then r.ready_ir = instructions(pid, dir) end
    r.idle_cpu = wait_idle(pid, limit)
    if callgrind then r.idle_ir = r.ready_ir + instructions(pid, dir) end
    local log_len = #read_file(dir .. "/prosody.log")
    local before = cpu_ticks(pid)
    local t1 = socket.gettime()
    run("kill -HUP " .. pid)
    while not read_file(dir .. "/prosody.log"):find("Received SIGHUP", log_len, true) do
      if socket.gettime() > limit then error("no SIGHUP in the log") end
      socket.sleep(0.01)
    end
    r.reload = wait_serving(ports.c2s, last, limit) - t1
    r.reload_cpu = cpu_ticks(pid) / HZ - before / HZ
    if callgrind then r.reload_ir = instructions(pid, dir) end
    r.reload_idle_cpu = wait_idle(pid, limit) - before / HZ
    if callgrind then r.reload_idle_ir = r.reload_ir + instructions(pid, dir) end
    local lines, warnings = 0, 0
    for line in read_file(dir .. "/prosody.log"):gmatch("[^\n]+") do
      if line:find("tlsharden", 1, true) then
        lines = lines + 1
        if line:find("%swarn%s") then warnings = warnings + 1 end
      end
    end
    r.lines, r.warnings = lines, warnings
  end)
  run("kill " .. pid .. " 2>/dev/null; sleep " .. (0.2 * slow) .. "; kill -9 " .. pid .. " 2>/dev/null || true")
  if not ok then
    io.stderr:write(read_file(dir .. "/prosody.log"):sub(1, 6000), "\n")
    run("rm -rf " .. q(dir))
    error(err, 0)
  end
  if os.getenv("BENCH_KEEP") then io.stderr:write("bench: kept " .. dir .. "\n") else run("rm -rf " .. q(dir)) end
  return r
end

local function median(t)
  local s = {}
  for i, x in ipairs(t) do s[i] = x end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)]
end

local MEASURES = callgrind and {
  { "ready_ir", "start-up until ready (instructions)" },
  { "reload_ir", "reload until serving again (instructions)" },
  { "idle_ir", "start-up until idle (instructions)" },
  { "reload_idle_ir", "reload until idle (instructions)" },
} or {
  { "ready", "ready (s)" },
  { "ready_cpu", "CPU until ready (s)" },
  { "reload", "reload (s)" },
  { "reload_cpu", "CPU of the reload until serving again (s)" },
  { "idle_cpu", "CPU at start-up, until idle (s)" },
  { "reload_idle_cpu", "CPU of the reload, until idle (s)" },
}

local certs = certificates(hosts)
local rows, notes = {}, {}
for _, name in ipairs(wanted) do
  local version = prosody.version(name)
  if not version.ok then
    notes[#notes + 1] = ("Prosody %s: not run (%s)"):format(name, version.reason)
  else
    local without, with = {}, {}
    for round = 1, rounds do
      for _, with_module in ipairs { false, true } do
        local res = one_run(version, certs, hosts, with_module)
        table.insert(with_module and with or without, res)
        local parts = {}
        for _, m in ipairs(MEASURES) do
          parts[#parts + 1] = ("%s %s"):format(m[1], callgrind and ("%.0f M"):format(res[m[1]] / 1e6)
            or ("%.2f"):format(res[m[1]]))
        end
        io.stderr:write(("bench: Prosody %s, %d hosts, round %d, %s: %s; %d tlsharden lines, %d warnings\n")
          :format(version.release, hosts, round, with_module and "with mod_tlsharden" or "without",
            table.concat(parts, ", "), res.lines, res.warnings))
      end
    end
    local row = { version = version.release, lines = median((function()
      local t = {}
      for i, x in ipairs(with) do t[i] = x.lines end
      return t
    end)()) }
    for _, m in ipairs(MEASURES) do
      local a, b, ratio = {}, {}, {}
      for i = 1, rounds do
        a[i], b[i] = without[i][m[1]], with[i][m[1]]
        ratio[i] = b[i] / a[i]
      end
      row[m[1]] = { median(a), median(b), median(ratio), math.min(table.unpack(ratio)), math.max(table.unpack(ratio)) }
    end
    local w = {}
    for i, x in ipairs(with) do w[i] = x.warnings end
    row.warnings = median(w)
    rows[#rows + 1] = row
  end
end

print("| Prosody | measure | without | with mod_tlsharden | ratio (median) | ratio (range) |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for _, row in ipairs(rows) do
  for _, m in ipairs(MEASURES) do
    local v = row[m[1]]
    local fmt = callgrind and "%.0f M" or "%.2f"
    print(("| %s | %s | %s | %s | **%.3f** | %.3f–%.3f |"):format(row.version, m[2],
      fmt:format(callgrind and v[1] / 1e6 or v[1]), fmt:format(callgrind and v[2] / 1e6 or v[2]), v[3], v[4], v[5]))
  end
  print(("| %s | mod_tlsharden log lines (info and up) | | %d (%d warnings) | | |"):format(row.version, row.lines,
    row.warnings))
end
print()
for _, note in ipairs(notes) do print(note) end
print(("%d virtual hosts, each with its own ECDSA P-256 certificate; Debian's default prosody.cfg.lua"
  .. " plus one c2s direct TLS port; %d alternating rounds%s"):format(hosts, rounds,
  callgrind and ", under callgrind" or ""))
print("machine: " .. bench.machine())
