-- Survey benchmark: a survey of HOSTS virtual hosts of one loopback Prosody
-- 0.12 (Debian's) with varied certificates (good EC P-256 and RSA-2048,
-- 1024-bit RSA, expired, self-signed, wrong host; a certificate file per
-- kind, found by Prosody as the parent domain's), SRV records from
-- dnsmasq, plus refused ports and silent peers on 127.0.0.2, run the way
-- `tlsharden survey` runs it (one scheduler, JOBS endpoints at once). It
-- reports the wall time, endpoints per second, connections, where the CPU
-- time went (the survey's process and Prosody's), and the survey
-- process's memory (RSS) at every tenth of the run and its peak.
--
--   lua5.4 bench/survey.lua [HOSTS] [JOBS] [--connections N] [--timeout S] [--order] [--out FILE]
--
-- Defaults: 1000 hosts, 32 jobs, 20 refused ports and 20 silent peers
-- (fewer for a smaller run), a timeout of 5 s, the servers' orders of
-- suites and groups left out (as `tlsharden survey` does; --order finds
-- them too).
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
package.path = bench.root .. "/?.lua;" .. package.path
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local prosody = require "spec.helpers.prosody"
local dns_servers = require "spec.helpers.dns_servers"
local survey = require "tlsharden.survey"
local results = require "tlsharden.survey.results"
local report = require "tlsharden.report"

local hosts_n = tonumber(arg[1]) or 1000
local jobs = tonumber(arg[2]) or 32
local connections, out_path, order
local TIMEOUT = 5
for i = 1, #arg do
  if arg[i] == "--connections" then connections = tonumber(arg[i + 1]) end
  if arg[i] == "--timeout" then TIMEOUT = tonumber(arg[i + 1]) end
  if arg[i] == "--out" then out_path = arg[i + 1] end
  if arg[i] == "--order" then order = true end
end
local extra_n = math.max(1, math.min(20, math.floor(hosts_n / 50)))

-- Shares of the hosts, in this order.
local KINDS = {
  { "good", 0.60, { key_kind = "ec256" } },
  { "rsa", 0.10, { key_kind = "rsa2048" } },
  { "weak", 0.10, { key_kind = "rsa1024" } },
  { "expired", 0.06, { key_kind = "ec256", not_before = "20200101000000Z", not_after = "20210101000000Z" } },
  { "selfsigned", 0.06, { key_kind = "ec256", self_signed = true } },
  { "wronghost", 0.08, { key_kind = "ec256", san = "*.elsewhere.test" } },
}

local function rss_kib(pid)
  local f = io.open("/proc/" .. (pid or "self") .. "/status")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")), tonumber(text:match("VmHWM:%s*(%d+)"))
end

-- CPU seconds (user + system) of a process, from /proc/PID/stat.
local TICKS = tonumber(sh.run("getconf CLK_TCK"):match("%d+")) or 100
local function cpu_of(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  local fields = {}
  for x in s:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICKS
end

local dir = pki.tmpdir()
local started = {}
local function cleanup()
  for i = #started, 1, -1 do pcall(started[i].stop) end
  pki.cleanup(dir)
end

local ok, err = pcall(function()
  local t_setup = socket.gettime()
  local ca = pki.cert(dir, "ca", { ca = true, cn = "survey bench CA" })
  local cert_files, hosts, list, srv = {}, {}, {}, {}
  for _, k in ipairs(KINDS) do
    local name = k[1] .. ".bench.test"
    local o = k[3]
    cert_files[name] = pki.cert(dir, k[1], { cn = "*." .. name, san = { "DNS:" .. (o.san or ("*." .. name)) },
      key_kind = o.key_kind, issuer = not o.self_signed and ca or nil, not_before = o.not_before,
      not_after = o.not_after })
  end
  local n = 0
  for _, k in ipairs(KINDS) do
    for _ = 1, math.floor(hosts_n * k[2] + 0.5) do
      if n < hosts_n then
        n = n + 1
        hosts[#hosts + 1] = ("h%04d.%s.bench.test"):format(n, k[1])
      end
    end
  end
  while #hosts < hosts_n do hosts[#hosts + 1] = ("h%04d.good.bench.test"):format(#hosts + 1) end
  local certs = {}
  for _, h in ipairs(hosts) do certs[h] = false end
  local conf = pki.write(dir .. "/openssl.cnf", "openssl_conf = init\n[init]\nssl_conf = s\n[s]\n"
    .. "system_default = d\n[d]\nCipherString = DEFAULT:@SECLEVEL=0\n")
  -- warnings only: a debug log line per stanza would be much of Prosody's work
  local server = prosody.start { hosts = hosts, certs = certs, cert_files = cert_files,
    env = "OPENSSL_CONF=" .. conf, wait = { "c2s" },
    global = { log = { { levels = { min = "warn" }, to = "file", filename = dir .. "/prosody.log" } } } }
  started[#started + 1] = server
  -- Prosody listens before its last hosts are up: ready when a stream to
  -- the last host gets its features
  local deadline = socket.gettime() + 120
  repeat
    local c = socket.tcp()
    c:settimeout(2)
    local up = c:connect("127.0.0.1", server.ports.c2s) and c:send(("<stream:stream to='%s' version='1.0' "
      .. "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"):format(hosts[#hosts]))
    local got = ""
    while up and not got:find("</stream:features>", 1, true) do
      local data, e, partial = c:receive(1)
      got = got .. (data or partial or "")
      if e then up = false end
    end
    c:close()
    if not up then socket.sleep(0.2) end
  until up or socket.gettime() > deadline
  for _, h in ipairs(hosts) do
    srv[#srv + 1] = ("_xmpp-client._tcp.%s,%s,%d,0,5"):format(h, h, server.ports.c2s)
    list[#list + 1] = h
  end
  -- refused ports and silent peers on another address
  local silent_port = prosody.free_port()
  local silent = { pid = tonumber(sh.run(("lua5.4 -e %s > /dev/null 2>&1 & echo $!"):format(sh.quote(([[
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.2", %d, 64))
    local held = {}
    while true do local c = s:accept() if c then held[#held + 1] = c end end]]):format(silent_port)))):match("%d+")) }
  function silent.stop() sh.exec("kill " .. silent.pid) end
  started[#started + 1] = silent
  local refused_base = prosody.free_port()
  for i = 1, extra_n do
    list[#list + 1] = ("refused%d.peers.test:%d"):format(i, refused_base)
    list[#list + 1] = ("silent%d.peers.test:%d"):format(i, silent_port)
  end
  local dns = dns_servers.dnsmasq { srv = srv, extra = { "--address=/bench.test/127.0.0.1",
    "--address=/peers.test/127.0.0.2" } }
  started[#started + 1] = dns
  for _ = 1, 50 do
    local c = socket.tcp()
    c:settimeout(0.2)
    local up = c:connect("127.0.0.2", silent_port)
    c:close()
    if up then break end
    socket.sleep(0.1)
  end
  local setup = socket.gettime() - t_setup

  local targets = survey.parse_list(table.concat(list, "\n"))
  local path = out_path or (dir .. "/survey.jsonl")
  os.remove(path)
  local file = results.open_append(path)
  local write = results.writer(file)
  local samples, done, total_conn = {}, 0, 0
  local expected = #targets
  local next_sample = 0.1
  local t0, c0, p0 = socket.gettime(), os.clock(), cpu_of(server.pid())
  local st = survey.run(targets, {
    kind = "c2s", jobs = jobs, per_server = jobs * (connections or 4), timeout = TIMEOUT,
    connections = connections, scan_options = { resolver = dns.address, cafile = ca.cert, order = order or false },
    write = function(rec)
      write(rec)
      done = done + 1
      total_conn = total_conn + (tonumber(rec.connections) or 0)
      if done >= expected * next_sample then
        -- the live Lua heap (after a full collection) beside the RSS
        collectgarbage("collect")
        samples[#samples + 1] = { done = done, rss = rss_kib(), heap = collectgarbage("count"),
          t = socket.gettime() - t0 }
        next_sample = next_sample + 0.1
      end
    end,
  })
  local wall, cpu, pcpu = socket.gettime() - t0, os.clock() - c0, cpu_of(server.pid()) - p0
  file:close()
  local _, peak = rss_kib()
  local rep = report.build(path)
  local status = report.find(rep.counts, "status")

  print(("# survey bench: %d endpoints (%d virtual hosts of one Prosody 0.12, %d refused ports, %d silent peers), %d jobs%s")
    :format(st.scanned, hosts_n, extra_n, extra_n, jobs, order and ", servers' orders found too" or ""))
  print("machine: " .. bench.machine())
  print(("setup (certificates, Prosody with %d hosts, dnsmasq): %.1f s"):format(hosts_n, setup))
  print(("survey: %.1f s wall, %.1f endpoints/s, %d connections (%.1f per endpoint, %.0f/s)"):format(wall,
    st.scanned / wall, total_conn, total_conn / math.max(1, st.scanned), total_conn / wall))
  print(("CPU: survey process %.1f s (%.0f%% of one core), Prosody %.1f s (%.0f%% of one core)"):format(cpu,
    100 * cpu / wall, pcpu, 100 * pcpu / wall))
  local parts = {}
  for _, r in ipairs(status.rows) do parts[#parts + 1] = ("%s %d"):format(r.key, r.all) end
  print("outcomes: " .. table.concat(parts, ", "))
  local grades = {}
  for _, r in ipairs(report.find(rep.counts, "grades").rows) do
    if r.all > 0 then grades[#grades + 1] = ("%s %d"):format(r.key, r.all) end
  end
  print("grades: " .. table.concat(grades, ", "))
  local rss, heap = {}, {}
  for _, s in ipairs(samples) do
    rss[#rss + 1] = ("%d: %.1f"):format(s.done, s.rss / 1024)
    heap[#heap + 1] = ("%.1f"):format(s.heap / 1024)
  end
  print("RSS of the survey process (MiB) by endpoints done: " .. table.concat(rss, ", "))
  print("live Lua heap (MiB) at the same points: " .. table.concat(heap, ", "))
  print(("peak RSS (VmHWM) %.1f MiB; results file %.1f MiB"):format(peak / 1024,
    (io.open(path):seek("end")) / 1048576))
end)
cleanup()
if not ok then error(err, 0) end
