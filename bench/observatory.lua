-- The observatory (mod_tlsharden_observatory inside a real Prosody)
-- beside the command line, on the same scan, and its pages rendered from
-- storage.
--
-- The target is a loopback Prosody 0.12 of its own (c2s STARTTLS and c2s
-- direct TLS), apart from the observatory's Prosody, so that the
-- target's CPU never counts for the observatory. Each round scans the
-- target three ways, in an order that turns from round to round:
--   the command line  bin/tlsharden scan ... --json, a process (wall time
--                     and its CPU time, bash's `time`);
--   in process        tlsharden.scan (wall, os.clock);
--   the observatory   POST /observatory/api/scans, then GET
--                     /api/scans/ID every 20 ms until done: wall time from
--                     the POST to done, the result's own elapsed, and the
--                     CPU time of the observatory's Prosody over that span
--                     (/proc/PID/task/*/schedstat, nanoseconds) less what
--                     the same process uses idle over as long (measured
--                     right after); and once more with one GET only (the
--                     POST, a wait, one GET), the scan's cost without the
--                     polls.
-- The observatory's result must equal the command line's in grade,
-- score, protocols and suites.
--
-- Then 20 and more scans are stored (one per virtual host dNN.localhost of
-- the target, and the rounds' own), and each page is fetched REQUESTS
-- times over HTTP on loopback, a new connection each as a browser's first
-- visit: wall time per request (median, p95) and the Prosody's CPU time
-- per request, beside a bare Prosody request (a 404 outside /observatory)
-- and a module request that reads no storage (/api/status).
--
-- Every version of Prosody that can run here is the observatory in turn,
-- once with file storage (internal) and once with SQLite (storage = "sql").
--
--   lua5.4 bench/observatory.lua [ROUNDS] [REQUESTS] [VERSION...] [--storage file|sql] [--smoke]
--
-- ROUNDS (15) scans of each target each way; REQUESTS (100) of each page;
-- VERSION: 0.12, 13 (default: those that run here). --smoke: one round,
-- a few requests, 0.12 with file storage, two domains (a test that it
-- runs; its figures mean nothing).
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
package.path = bench.root .. "/?.lua;" .. package.path
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"
local prosody = require "spec.helpers.prosody"
local sh = require "spec.helpers.sh"

-- absolute: Prosody runs in a directory of its own
local ROOT = prosody.root

local rounds, requests, domains = 15, 100, 24
local versions, storages = {}, { "file", "sql" }
local smoke = false
do
  local numbers, i = {}, 1
  while arg[i] do
    local a = arg[i]
    if a == "--smoke" then
      smoke = true
    elseif a == "--storage" then
      i = i + 1
      storages = { assert((arg[i] == "file" or arg[i] == "sql") and arg[i], "--storage file|sql") }
    elseif tonumber(a) and #numbers < 2 and not a:find("%.") then
      numbers[#numbers + 1] = tonumber(a)
    else
      versions[#versions + 1] = a
    end
    i = i + 1
  end
  rounds, requests = numbers[1] or rounds, numbers[2] or requests
  if smoke then
    rounds, requests, domains = 1, 3, 2
    versions, storages = { "0.12" }, { "file" }
  end
end
if #versions == 0 then
  for _, v in ipairs(prosody.versions()) do
    if v.ok then versions[#versions + 1] = v.name end
  end
end

local POLL = 0.02      -- seconds between the GETs of a scan's state
local SCAN_WAIT = 30   -- seconds a scan may take at most
http.TIMEOUT = 10

local function median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  if #s == 0 then return nil end
  return s[math.floor((#s + 1) / 2)]
end

local function percentile(t, p)
  local s = { table.unpack(t) }
  table.sort(s)
  return s[math.max(1, math.ceil(#s * p))]
end

local function sum(t)
  local n = 0
  for _, v in ipairs(t) do n = n + v end
  return n
end

-- ---- processes ----

-- The CPU time of a process, all its threads: seconds (schedstat's
-- nanoseconds of run time).
local function cpu_reader(pid)
  local tasks = sh.lines("ls /proc/" .. pid .. "/task")
  assert(#tasks > 0, "no process " .. pid)
  return function()
    local ns = 0
    for _, tid in ipairs(tasks) do
      local f = io.open(("/proc/%d/task/%s/schedstat"):format(pid, tid))
      if f then
        ns = ns + (tonumber(f:read("*a"):match("^(%d+)")) or 0)
        f:close()
      end
    end
    return ns / 1e9
  end
end

-- ---- HTTP ----

local function request(base, method, path, body)
  local out = {}
  local headers = { host = "localhost" }
  if body then
    headers["content-length"] = #body
    headers["content-type"] = "application/json"
  end
  local _, code = http.request { url = base .. path, method = method, sink = ltn12.sink.table(out),
    source = body and ltn12.source.string(body), headers = headers, redirect = false }
  return code, table.concat(out)
end

-- ---- what a scan found, to compare ----

-- numbers as integers where they are (JSON reads 93 back as 93.0 on some Luas)
local function num(v)
  return tostring(math.tointeger and math.tointeger(v) or v)
end

local function suite_ids(list)
  local s = {}
  for i, v in ipairs(list or {}) do s[i] = num(type(v) == "table" and (v.id or v.name) or v) end
  table.sort(s)
  return table.concat(s, ",")
end

-- grade, score, protocols and suites of a scan's result (a decoded JSON
-- document or tlsharden.scan's table), as lines
local function findings(doc)
  local lines = { "grade " .. tostring(doc and doc.grade) }
  local e = doc and doc.endpoints and doc.endpoints[1]
  if not e then
    lines[#lines + 1] = "no endpoint"
    return lines
  end
  lines[#lines + 1] = ("endpoint %s, grade %s, score %s"):format(tostring(e.status), tostring(e.grade and e.grade.grade),
    num(e.grade and e.grade.score))
  local probe = e.probe or {}
  lines[#lines + 1] = "protocols " .. table.concat(probe.versions or {}, ",")
  for _, p in ipairs(probe.versions or {}) do
    lines[#lines + 1] = p .. " suites " .. suite_ids(probe.protocols and probe.protocols[p] and probe.protocols[p].suites)
  end
  return lines
end

-- nil when the two agree, else the lines that differ
local function differences(a, b)
  local la, lb = findings(a), findings(b)
  local diff = {}
  for i = 1, math.max(#la, #lb) do
    if la[i] ~= lb[i] then
      diff[#diff + 1] = ("command line: %s / observatory: %s"):format(tostring(la[i]), tostring(lb[i]))
    end
  end
  return #diff > 0 and diff or nil
end

-- ---- the three ways of one scan ----

local tmp = os.tmpname()

-- bin/tlsharden scan as a user runs it: wall and CPU (user + system) from
-- bash's `time` of the process, and its JSON
local function scan_cli(target, t)
  local cmd = ("TIMEFORMAT='%%3R %%3U %%3S'; { time %s scan 127.0.0.1:%d --xmpphost localhost --starttls %s"
    .. " --kind c2s --cafile %s --quiet --json > %s ; } 2>&1"):format(sh.quote(ROOT .. "/bin/tlsharden"),
    t.port, t.starttls, sh.quote(target.ca), sh.quote(tmp))
  local _, out = sh.exec("bash -c " .. sh.quote(cmd))
  local wall, user, sys = out:match("([%d.]+) ([%d.]+) ([%d.]+)%s*$")
  assert(wall, "tlsharden scan: " .. out)
  local f = assert(io.open(tmp))
  local doc = json.decode(f:read("*a"))
  f:close()
  return tonumber(wall), tonumber(user) + tonumber(sys), doc
end

local function scan_lib(target, t)
  local t0, c0 = socket.gettime(), os.clock()
  local r = tlsharden.scan("127.0.0.1:" .. t.port, { starttls = t.starttls, xmpphost = "localhost", kind = "c2s",
    cafile = target.ca })
  return socket.gettime() - t0, os.clock() - c0, r
end

local function post_scan(obs, t, xmpphost)
  local code, body = request(obs.base, "POST", "/observatory/api/scans",
    json.encode { target = "127.0.0.1:" .. t.port, kind = "c2s", starttls = t.starttls, xmpphost = xmpphost or "localhost" })
  local id = body:match('"id":"([^"]+)"')
  if code ~= 202 or not id then error(("POST /observatory/api/scans: %s %s"):format(tostring(code), body), 0) end
  if body:find('"cached":true', 1, true) then error("the observatory answered from its cache: " .. body, 0) end
  return id
end

-- state, decoded document of GET /api/scans/ID
local function scan_state(obs, id)
  local code, body = request(obs.base, "GET", "/observatory/api/scans/" .. id)
  if code ~= 200 then error(("GET /observatory/api/scans/%s: %s %s"):format(id, tostring(code), body), 0) end
  return body:match('"state":"([%w_]+)"'), body
end

local function wait_done(obs, id, interval, first_wait)
  local deadline = socket.gettime() + SCAN_WAIT
  if first_wait then socket.sleep(first_wait) end
  local polls = 0
  while true do
    local state, body = scan_state(obs, id)
    polls = polls + 1
    if state ~= "queued" and state ~= "running" then
      if state ~= "done" then error(("scan %s ended %s: %s"):format(id, tostring(state), body:sub(1, 300)), 0) end
      return socket.gettime(), json.decode(body), polls
    end
    if socket.gettime() > deadline then error(("scan %s not done after %d s"):format(id, SCAN_WAIT), 0) end
    socket.sleep(interval)
  end
end

-- POST, then a GET every 20 ms until done: wall, result, CPU over the
-- span and the idle CPU of as long right after
local function scan_obs(obs, t)
  local c0, t0 = obs.cpu(), socket.gettime()
  local id = post_scan(obs, t)
  local t1, doc, polls = wait_done(obs, id, POLL, POLL)
  local c1 = obs.cpu()
  local wall = t1 - t0
  socket.sleep(wall)
  local idle = obs.cpu() - c1
  return wall, c1 - c0 - idle, doc, polls, idle / wall, id
end

-- POST, a wait longer than the scan, one GET: the scan's CPU without the polls
local function scan_obs_quiet(obs, t, wait)
  local c0, t0 = obs.cpu(), socket.gettime()
  local id = post_scan(obs, t)
  wait_done(obs, id, 0.1, wait)
  local span = socket.gettime() - t0
  local c1 = obs.cpu()
  socket.sleep(span)
  local idle = obs.cpu() - c1
  return c1 - c0 - idle
end

-- ---- the Prosodys ----

local function start_observatory(version, storage, target)
  local log = tmp .. "-" .. version .. "-" .. storage .. ".log"
  local env = ("LUA_PATH_5_4=%s LUA_CPATH_5_4=%s"):format(
    sh.quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), sh.quote(ROOT .. "/build/?.so;;"))
  local global = {
    tlsharden_observatory_allow = { "127.0.0.0/8" },
    tlsharden_observatory_ports = "any",
    tlsharden_observatory_domain_interval = 0,
    tlsharden_observatory_client_limit = 1000000,
    tlsharden_observatory_rescan_interval = 0,
    tlsharden_observatory_queue = 200,
    tlsharden_observatory_cafile = target.ca,
    -- as a server runs: info, to a file
    log = { { levels = { min = "info" }, to = "file", filename = log } },
  }
  if storage == "sql" then
    global.storage = "sql"
    global.sql = { driver = "SQLite3", database = "observatory.sqlite" }
  end
  local s = prosody.start { version = version, http = true, plugin_paths = { ROOT .. "/lua" }, env = env,
    modules = { "tlsharden_observatory" }, global = global, wait = { "c2s", "http" } }
  s.logfile = log
  s.base = "http://127.0.0.1:" .. s.ports.http
  local pid = s.pid()
  s.cpu = cpu_reader(pid)
  return s
end

local function log_tail(s)
  local f = s and s.logfile and io.open(s.logfile)
  if not f then return "" end
  local text = f:read("*a")
  f:close()
  return text:sub(-3000)
end

-- ---- the run ----

local targets_of = function(target)
  return {
    { name = "c2s STARTTLS", port = target.ports.c2s, starttls = "c2s" },
    { name = "c2s direct TLS", port = target.ports.c2s_direct_tls, starttls = "none" },
  }
end

local scan_rows, page_cols, notes = {}, {}, {}

local function measure_scans(obs, label, target)
  for _, t in ipairs(targets_of(target)) do
    local r = { label = label, target = t.name, cli = {}, cli_cpu = {}, lib = {}, lib_cpu = {}, obs = {}, obs_cpu = {},
      elapsed = {}, cli_elapsed = {}, quiet_cpu = {}, idle = {}, polls = {}, wall_ratio = {}, cpu_ratio = {} }
    local cli_doc, obs_doc, lib_result
    for i = 1, rounds do
      local order = ({ { 1, 2, 3 }, { 3, 1, 2 }, { 2, 3, 1 } })[(i - 1) % 3 + 1]
      for _, way in ipairs(order) do
        if way == 1 then
          r.cli[i], r.cli_cpu[i], cli_doc = scan_cli(target, t)
          r.cli_elapsed[i] = cli_doc.elapsed
        elseif way == 2 then
          r.lib[i], r.lib_cpu[i], lib_result = scan_lib(target, t)
        else
          local doc, polls, idle
          r.obs[i], r.obs_cpu[i], doc, polls, idle = scan_obs(obs, t)
          obs_doc = doc.result
          r.elapsed[i], r.polls[i], r.idle[i] = obs_doc.elapsed, polls, idle
        end
      end
      r.quiet_cpu[i] = scan_obs_quiet(obs, t, math.max(0.3, 2 * r.obs[i]))
      r.wall_ratio[i] = r.obs[i] / r.cli[i]
      r.cpu_ratio[i] = r.obs_cpu[i] / r.cli_cpu[i]
    end
    r.diff = differences(cli_doc, obs_doc)
    r.lib_diff = differences(cli_doc, lib_result)
    r.grade = obs_doc.grade
    r.connections = obs_doc.endpoints[1] and obs_doc.endpoints[1].connections
    scan_rows[#scan_rows + 1] = r
  end
end

-- 20 and more scans stored: one per virtual host of the target, all asked
-- for at once (the observatory runs 4 at a time)
local function fill(obs, target)
  local t = targets_of(target)[1]
  local ids = {}
  for n = 1, domains do ids[n] = post_scan(obs, t, ("d%02d.localhost"):format(n)) end
  for _, id in ipairs(ids) do wait_done(obs, id, 0.1) end
  local code, body = request(obs.base, "GET", "/observatory/api/directory")
  assert(code == 200, "GET /observatory/api/directory: " .. tostring(code))
  local n = 0
  for _ in body:gmatch('"domain":') do n = n + 1 end
  return n
end

local PAGES = {
  { name = "bare Prosody: a 404 outside /observatory", path = "/nothing", status = 404 },
  { name = "/observatory/api/status (no storage)", path = "/observatory/api/status", status = 200 },
  { name = "/observatory/ (home)", path = "/observatory/", status = 200 },
  { name = "/observatory/scan/ID", path = "/observatory/scan/%s", status = 200 },
  { name = "/observatory/api/scans/ID", path = "/observatory/api/scans/%s", status = 200 },
  { name = "/observatory/badge/DOMAIN.svg", path = "/observatory/badge/localhost.svg", status = 200 },
  { name = "/observatory/directory", path = "/observatory/directory", status = 200 },
  { name = "/observatory/api/directory", path = "/observatory/api/directory", status = 200 },
  { name = "/observatory/report", path = "/observatory/report", status = 200 },
}

-- each page REQUESTS times, in batches of a page at a time (so that the
-- server's CPU over a batch is that page's), the pages in turn
local function measure_pages(obs, label, id, in_directory)
  local col = { label = label, directory = in_directory, pages = {} }
  for _, p in ipairs(PAGES) do
    col.pages[p.name] = { times = {}, cpu = 0, n = 0, bytes = 0, status = {} }
  end
  local batches = math.min(5, requests)
  local per = math.ceil(requests / batches)
  for p_i = 1, #PAGES do  -- warm up
    local p = PAGES[p_i]
    request(obs.base, "GET", p.path:format(id))
  end
  for _ = 1, batches do
    for _, p in ipairs(PAGES) do
      local m = col.pages[p.name]
      local path = p.path:format(id)
      local c0 = obs.cpu()
      for _ = 1, per do
        local t0 = socket.gettime()
        local code, body = request(obs.base, "GET", path)
        m.times[#m.times + 1] = socket.gettime() - t0
        m.bytes = #body
        if code ~= p.status then m.status[tostring(code)] = true end
      end
      m.cpu = m.cpu + (obs.cpu() - c0)
      m.n = m.n + per
    end
  end
  page_cols[#page_cols + 1] = col
end

local target = prosody.start { version = "0.12", hosts = (function()
  local h = { "localhost" }
  for n = 1, domains do h[#h + 1] = ("d%02d.localhost"):format(n) end
  return h
end)(), wait = { "c2s", "c2s_direct_tls" } }
local obs
local ok, err = pcall(function()
  for _, version in ipairs(versions) do
    local release = prosody.version(version).release
    for _, storage in ipairs(storages) do
      local label = ("%s %s"):format(release, storage == "sql" and "SQLite" or "file")
      obs = start_observatory(version, storage, target)
      local run_ok, run_err = pcall(function()
        measure_scans(obs, label, target)
        local n = fill(obs, target)
        -- the newest scan of localhost
        local id = select(6, scan_obs(obs, targets_of(target)[1]))
        measure_pages(obs, label, id, n)
      end)
      obs.stop()
      if not run_ok then error(("%s: %s\n%s"):format(label, tostring(run_err), log_tail(obs)), 0) end
      os.remove(obs.logfile)
      obs = nil
    end
  end

  local function ms(s) return ("%.1f ms"):format(s * 1000) end
  local function ms2(s) return ("%.2f ms"):format(s * 1000) end
  print("The same scan: the command line, in process, and through the observatory (POST, then GET every 20 ms)")
  print("")
  print("| observatory | target | command line: wall | its CPU | in process: wall | its CPU | observatory: POST → done"
    .. " | scan's own elapsed (command line / observatory) | observatory CPU, with the polls | with one GET |")
  print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
  for _, r in ipairs(scan_rows) do
    print(("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s |"):format(r.label, r.target, ms(median(r.cli)),
      ms(median(r.cli_cpu)), ms(median(r.lib)), ms(median(r.lib_cpu)), ms(median(r.obs)), ms(median(r.cli_elapsed)),
      ms(median(r.elapsed)), ms(median(r.obs_cpu)), ms(median(r.quiet_cpu))))
  end
  print("")
  print("| observatory | target | wall: observatory / command line | CPU: observatory / command line"
    .. " | CPU with one GET / command line | GETs per scan | idle CPU of the observatory | result as the command line's |")
  print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
  for _, r in ipairs(scan_rows) do
    local q = {}
    for i = 1, #r.quiet_cpu do q[i] = r.quiet_cpu[i] / r.cli_cpu[i] end
    print(("| %s | %s | **%.2f×** | **%.2f×** | %.2f× | %d | %.1f ms/s | %s |"):format(r.label, r.target,
      median(r.wall_ratio), median(r.cpu_ratio), median(q), median(r.polls), median(r.idle) * 1000,
      r.diff and "**DIFFERS**" or ("same (grade %s, %d connections)"):format(tostring(r.grade), r.connections or 0)))
  end
  for _, r in ipairs(scan_rows) do
    for _, d in ipairs(r.diff or {}) do notes[#notes + 1] = ("%s, %s: %s"):format(r.label, r.target, d) end
    for _, d in ipairs(r.lib_diff or {}) do
      notes[#notes + 1] = ("%s, %s (in process): %s"):format(r.label, r.target, d)
    end
  end
  print("")
  print(("Pages from storage over HTTP on 127.0.0.1, a new connection per request: median / p95 of %d requests each"
    .. " (wall, the client's), and the Prosody's CPU time per request"):format(requests))
  print("")
  local head, rule = { "| request" }, { "| ---" }
  for _, c in ipairs(page_cols) do
    head[#head + 1] = ("%s: median / p95"):format(c.label)
    head[#head + 1] = "CPU"
    rule[#rule + 1] = "---:"
    rule[#rule + 1] = "---:"
  end
  head[#head + 1] = "bytes"
  rule[#rule + 1] = "---:"
  print(table.concat(head, " | ") .. " |")
  print(table.concat(rule, " | ") .. " |")
  for _, p in ipairs(PAGES) do
    local line = { "| " .. p.name }
    local bytes
    for _, c in ipairs(page_cols) do
      local m = c.pages[p.name]
      line[#line + 1] = ("%s / %s"):format(ms2(median(m.times)), ms2(percentile(m.times, 0.95)))
      line[#line + 1] = ms2(m.cpu / m.n)
      bytes = m.bytes
      if next(m.status) then
        local codes = {}
        for code in pairs(m.status) do codes[#codes + 1] = code end
        notes[#notes + 1] = ("%s, %s: status %s, expected %d"):format(c.label, p.name, table.concat(codes, ", "),
          p.status)
      end
    end
    line[#line + 1] = tostring(bytes)
    print(table.concat(line, " | ") .. " |")
  end
  print("")
  for _, c in ipairs(page_cols) do
    print(("%s: %d domains in the directory"):format(c.label, c.directory))
  end
  for _, n in ipairs(notes) do print("NOTE: " .. n) end
  print("")
  print(("scans: median of %d rounds per target, the three ways in turning order; the target a Prosody 0.12 of its own"
    .. " (c2s, default TLS settings); CPU of the observatory from /proc/PID/task/*/schedstat, less its idle CPU over"
    .. " as long; of the command line from bash's time"):format(rounds))
  print("machine: " .. bench.machine())
end)
if obs then pcall(obs.stop) end
target.stop()
os.remove(tmp)
if not ok then error(err, 0) end
