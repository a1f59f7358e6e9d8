-- The scanner's scheduler on four backends, each running the unchanged
-- tlsharden.scan.run on the c2s STARTTLS port of a loopback Prosody 0.12:
--   a  tlsharden.scan.net, select backend, standalone (sched:run(): the command line)
--   b  tlsharden.scan.net, loop backend inside Prosody's net.server_epoll loop
--   c  bench/lib/net_cqueues.lua inside server_epoll, in the cqueue that
--      Prosody's net.cqueues watches (its pollfd and timeout)
--   d  bench/lib/net_cqueues.lua standalone (cq:loop())
-- For each: wall and CPU time (os.clock) of 1 and of 8 concurrent scans,
-- whether every scan found the same (grade, protocols, suites, checks);
-- while 8 scans run inside the loop (b, c), the lateness of a 10 ms
-- repeating timer of the loop and the time of a c2s round trip (TCP
-- connect, stream header, stream features) started every 50 ms; the
-- descriptor ceiling (2,000 plain TCP connections to a local listener held
-- open and waited on at once, under ulimit -n 4096); the Lua heap at the end.
-- Every measurement runs in a process of its own (server_epoll and
-- net.cqueues are singletons), ROUNDS rounds in rotating order; medians.
--
--   lua5.4 bench/scheduler.lua [ROUNDS] [--smoke]
--
-- --smoke: one round, one scan per backend, 50 connections: a check that
-- it runs. server_epoll comes from Debian's Prosody 0.12 (/usr/lib/prosody,
-- built for Lua 5.4): b and c run on Lua 5.4 only.
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
package.path = bench.root .. "/?.lua;" .. bench.root .. "/bench/lib/?.lua;" .. package.path
local socket = require "socket"

local LUA = arg[-1] or "lua5.4"
local HERE = arg[0]
local PROSODY_LIB = "/usr/lib/prosody"

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  if #s == 0 then return nil end
  table.sort(s)
  return s[math.floor((#s + 1) / 2)]
end

-- A value as Lua source (numbers, strings, booleans, tables of them).
local function dump(v)
  if type(v) == "table" then
    local keys, out = {}, {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    for _, k in ipairs(keys) do out[#out + 1] = ("[%s] = %s"):format(dump(k), dump(v[k])) end
    return "{ " .. table.concat(out, ", ") .. " }"
  elseif type(v) == "string" then
    return ("%q"):format(v):gsub("\n", "n")
  elseif type(v) == "number" and v % 1 == 0 and math.abs(v) < 2^53 then
    return ("%d"):format(v)
  end
  return tostring(v)
end

-- ---------------------------------------------------------------- worker

-- Prosody's server_epoll, loaded on its own (as Prosody runs it); its
-- table of watched descriptors read from its loop's upvalues.
local function load_epoll()
  package.path = PROSODY_LIB .. "/?.lua;" .. package.path
  package.cpath = PROSODY_LIB .. "/?.so;" .. package.cpath
  local server = require "net.server_epoll"
  package.loaded["net.server"] = server
  local fds
  for i = 1, 60 do
    local name, value = debug.getupvalue(server.loop, i)
    if not name then break end
    if name == "fds" then fds = value end
  end
  return server, fds
end

-- What a scan found, as one string: results are compared across backends.
local function signature(r)
  local e = r and r.endpoints and r.endpoints[1]
  if not e then return "no endpoint" end
  local parts = { "status=" .. tostring(e.status), "grade=" .. tostring(r.grade) }
  local p = e.probe or {}
  parts[#parts + 1] = "protocols=" .. table.concat(p.versions or {}, ",")
  for _, v in ipairs(p.versions or {}) do
    local ids = {}
    for i, s in ipairs(p.protocols[v].suites or {}) do ids[i] = type(s) == "table" and tostring(s.id or s.name) or tostring(s) end
    table.sort(ids)
    parts[#parts + 1] = v .. "=" .. table.concat(ids, ",")
  end
  local checks = {}
  for name, c in pairs(e.vulnerabilities or {}) do checks[#checks + 1] = name .. ":" .. tostring(c.status) end
  table.sort(checks)
  parts[#parts + 1] = "checks=" .. table.concat(checks, ",")
  return table.concat(parts, " ")
end

local function make_sched(backend, n, server, on_error)
  local room = 9 * n  -- each scan: its 8 connections and one for DNS, as tlsharden.scan gives itself
  if backend == "a" or backend == "b" then
    local net = require "tlsharden.scan.net"
    local loop = backend == "b" and { watchfd = server.watchfd, add_task = server.add_task,
      stop_task = server.timer.stop } or nil
    return net.scheduler { per_server = room, max_connections = room, timeout = 5, loop = loop,
      on_error = loop and on_error or nil }
  end
  local ncq = require "net_cqueues"
  local cq = backend == "c" and require("net.cqueues").cq or nil
  return ncq.scheduler { per_server = room, max_connections = room, timeout = 5, cq = cq,
    on_error = cq and on_error or nil }
end

-- A c2s round trip in server_epoll's loop: connect, stream header, stream
-- features; on_done(seconds or nil).
local HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
  .. "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
local function round_trip(server, port, on_done)
  local t0 = socket.gettime()
  local sock = socket.tcp()
  sock:settimeout(0)
  sock:connect("127.0.0.1", port)
  local have, sent, handle = "", false, nil
  local function finish(ok)
    if not handle then return end
    handle:setflags(false, false)
    handle:close()
    handle = nil
    sock:close()
    on_done(ok and socket.gettime() - t0 or nil)
  end
  handle = server.watchfd(sock:getfd(), function()
    local data, err, partial = sock:receive(8192)
    have = have .. (data or partial or "")
    if have:find("</stream:features>", 1, true) then finish(true)
    elseif err == "closed" then finish(false) end
  end, function()
    if sent then return end
    sent = true
    sock:send(HEADER)
    handle:setflags(true, false)
  end)
  handle:setflags(false, true)
end

local function worker_scan(backend, n, port, ca, probes, rtt_port)
  local scan = require "tlsharden.scan"
  local target = "127.0.0.1:" .. port
  local opts = { starttls = "c2s", xmpphost = "localhost", kind = "c2s", cafile = ca }
  local out = { backend = backend, n = n, sigs = {}, errors = {} }
  local results, done = {}, 0
  local server, fds
  if backend == "b" or backend == "c" then server, fds = load_epoll() end
  local t_wall, t_cpu, t_end
  local sched = make_sched(backend, n, server, function(task)
    out.errors[#out.errors + 1] = (tostring(task.error):match("^[^\n]*"))
    done = done + 1
  end)
  local function start()
    t_wall, t_cpu = socket.gettime(), os.clock()
    for i = 1, n do
      sched:spawn(function()
        results[i] = scan.run(sched, target, opts)
        done = done + 1
        if done == n then t_end = { socket.gettime(), os.clock() } end
      end)
    end
  end
  if not server then
    start()
    local ok, err = pcall(sched.run, sched)
    if not ok then out.errors[#out.errors + 1] = tostring(err):match("^[^\n]*") end
    t_end = t_end or { socket.gettime(), os.clock() }
  else
    -- the probes' samples while the loop idles (before the scans) and while the scans run
    local idle, busy_ = { late = {}, trips = {} }, { late = {}, trips = {} }
    local function phase()
      if not t_wall then return idle end
      if not t_end then return busy_ end
    end
    local trip_fail = 0
    local stop, timed_out = false, false
    local last = socket.gettime()
    server.add_task(0.01, function()
      local now = socket.gettime()
      local ph = phase()
      if ph then ph.late[#ph.late + 1] = math.max(0, now - last - 0.01) end
      last = now
      if stop then return nil end
      return 0.01
    end)
    if probes then
      local busy = false
      server.add_task(0.05, function()
        if stop then return nil end
        local ph = phase()
        if ph and not busy then
          busy = true
          round_trip(server, rtt_port, function(s)
            busy = false
            if s then ph.trips[#ph.trips + 1] = s else trip_fail = trip_fail + 1 end
          end)
        end
        return 0.05
      end)
    end
    -- the scans start from a callback of the running loop, as a Prosody module starts them
    -- (after a second of the probes alone, when there are probes)
    server.add_task(probes and 1 or 0.1, function() start() end)
    local limit = socket.gettime() + (n > 1 and 240 or 120)
    repeat
      server.loop(true)
      if socket.gettime() > limit then timed_out = true end
    until (t_end and done >= n) or timed_out
    stop = true
    if timed_out then out.errors[#out.errors + 1] = ("timed out: %d of %d scans done"):format(done, n) end
    t_end = t_end or { socket.gettime(), os.clock() }
    -- a few more turns: the scheduler lets go of what it watched
    local settle = socket.gettime() + 0.3
    server.add_task(0.3, function() end)  -- so that the loop's wait ends
    while socket.gettime() < settle do server.loop(true) end
    for prefix, ph in pairs { [""] = busy_, idle_ = idle } do
      local lateness, trips = ph.late, ph.trips
      table.sort(lateness)
      out[prefix .. "late_max"] = lateness[#lateness]
      out[prefix .. "late_p99"] = lateness[math.max(1, math.ceil(#lateness * 0.99))]
      out[prefix .. "late_median"] = median(lateness)
      out[prefix .. "ticks"] = #lateness
      if probes then
        table.sort(trips)
        out[prefix .. "rtt_max"], out[prefix .. "rtt_median"], out[prefix .. "rtts"] = trips[#trips], median(trips), #trips
      end
    end
    out.rtt_fail = trip_fail
    -- descriptors server_epoll still has registered: the cqueue's pollfd
    -- (c) is one of them; any other is left behind
    local left = {}
    for fd, conn in pairs(fds) do
      left[#left + 1] = ("%d%s"):format(fd, conn.conn == fd and "" or "?")
    end
    table.sort(left)
    out.fds_left = table.concat(left, ",")
    -- what each descriptor is now (the kernel's name for it), or "closed"
    local lfs = require "lfs"
    out.fds_open = {}
    for _, fd in ipairs(left) do
      local target = lfs.symlinkattributes(("/proc/self/fd/%s"):format(fd:match("%d+")), "target")
      out.fds_open[#out.fds_open + 1] = target and target:gsub("^anon_inode:", ""):gsub(":%[%d+%]$", "") or "closed"
    end
    out.fds_open = table.concat(out.fds_open, ",")
    if backend == "b" then out.sched_watches = 0 for _ in pairs(sched.watches) do out.sched_watches = out.sched_watches + 1 end end
  end
  out.wall = t_end[1] - t_wall
  out.cpu = t_end[2] - t_cpu
  for i = 1, n do out.sigs[i] = results[i] and signature(results[i]) or "no result" end
  out.heap_kib = collectgarbage("count")
  collectgarbage("collect")
  out.heap_kib_collected = collectgarbage("count")
  return out
end

-- count plain TCP connections to a local listener, held open and waited on
-- at once (each task waits hold seconds to read from a peer that never writes).
local function worker_ceiling(backend, count, hold)
  local out = { backend = backend, count = count, connected = 0, waited = 0, failed = 0, errors = {} }
  local srv = assert(socket.tcp())
  srv:setoption("reuseaddr", true)
  assert(srv:bind("127.0.0.1", 0))
  assert(srv:listen(4096))
  local _, lport = srv:getsockname()
  lport = tonumber(lport)
  local server
  if backend == "b" or backend == "c" then server = load_epoll() end
  local sched = make_sched(backend, count, server, function(task)
    out.errors[#out.errors + 1] = tostring(task.error):match("^[^\n]*")
  end)
  sched.per_server, sched.max_connections = count, count
  local open, finished, highest_fd = 0, 0, 0
  out.max_open = 0
  local t0 = socket.gettime()
  local function start()
    t0 = socket.gettime()
    for _ = 1, count do
      sched:spawn(function()
        local conn, err = sched:connect("127.0.0.1", lport, 20)
        if not conn then
          out.failed = out.failed + 1
          out.first_error = out.first_error or err
          finished = finished + 1
          return
        end
        out.connected = out.connected + 1
        open = open + 1
        if open > out.max_open then out.max_open = open end
        local fd = conn.tcp:getfd()
        if fd > highest_fd then highest_fd = fd end
        -- hold until every connection is made, then wait on all at once
        while out.connected + out.failed < count and socket.gettime() - t0 < 30 do sched:sleep(0.05) end
        local data, rerr = conn:receive(1, hold)
        if not data and rerr == "timeout" then out.waited = out.waited + 1 end
        conn:close()
        open = open - 1
        finished = finished + 1
      end)
    end
  end
  if not server then
    start()
    local ok, err = pcall(sched.run, sched)
    if not ok then out.errors[#out.errors + 1] = tostring(err):match("^[^\n]*") end
  else
    server.add_task(0.05, start)
    server.add_task(0.1, function() if finished < count then return 0.1 end end)  -- the loop's wait ends
    local limit = socket.gettime() + 90
    repeat server.loop(true) until finished >= count or socket.gettime() > limit or #out.errors > 0
    if finished < count then out.errors[#out.errors + 1] = ("%d of %d tasks finished"):format(finished, count) end
  end
  out.seconds = socket.gettime() - t0
  out.highest_fd = highest_fd
  srv:close()
  return out
end

local function worker(argv)
  local kind, backend = argv[2], argv[3]
  local ok, res = pcall(function()
    if kind == "scan" then
      return worker_scan(backend, tonumber(argv[4]), tonumber(argv[5]), argv[6], argv[7] == "1", tonumber(argv[8]))
    end
    return worker_ceiling(backend, tonumber(argv[4]), tonumber(argv[5]))
  end)
  if not ok then res = { errors = { tostring(res):match("^[^\n]*") } } end
  io.write("RESULT ", dump(res), "\n")
  io.stdout:flush()
  os.exit(0)
end

if arg[1] == "--worker" then return worker(arg) end

-- ---------------------------------------------------------------- parent

local smoke, rounds = false, 3
for _, a in ipairs(arg) do
  if a == "--smoke" then smoke = true elseif tonumber(a) then rounds = tonumber(a) end
end
if smoke then rounds = 1 end

local sh = require "spec.helpers.sh"
local prosody = require "spec.helpers.prosody"

local function have_epoll()
  return _VERSION == "Lua 5.4" and io.open(PROSODY_LIB .. "/net/server_epoll.lua") ~= nil
end
local function have_cqueues() return (pcall(require, "cqueues")) end

local BACKENDS = {
  { id = "a", name = "net.lua select, standalone (sched:run())" },
  { id = "b", name = "net.lua loop backend in server_epoll" },
  { id = "c", name = "cqueues in server_epoll (net.cqueues' controller)" },
  { id = "d", name = "cqueues standalone (cq:loop())" },
}
local available = {}
for _, b in ipairs(BACKENDS) do
  if (b.id == "b" or b.id == "c") and not have_epoll() then
    b.skip = "server_epoll of /usr/lib/prosody needs Lua 5.4"
  end
  if (b.id == "c" or b.id == "d") and not have_cqueues() then b.skip = "lua-cqueues is not installed" end
  if not b.skip then available[#available + 1] = b end
end

local function run_worker(args, seconds)
  local cmd = ("ulimit -n 4096 && timeout %d %s %s --worker %s"):format(seconds, sh.quote(LUA), sh.quote(HERE),
    args)
  local p = assert(io.popen(sh.command(cmd) .. " 2>&1"))
  local text = p:read("*a")
  p:close()
  local line = text:match("RESULT ([^\n]*)")
  if not line then return { errors = { "worker gave no result: " .. text:sub(-400) } } end
  return assert(load("return " .. line, "result", "t", {}))()
end

local server, probe_target
local ok, err = pcall(function()
  server = prosody.start { version = "0.12" }
  -- the c2s round trips go to a second Prosody: the scanned one is busy
  probe_target = prosody.start { version = "0.12" }
  local port, ca, rtt_port = server.ports.c2s, server.ca, probe_target.ports.c2s
  local scans = smoke and { 1 } or { 1, 8 }
  local sizes = smoke and { 50 } or { 1000, 2000 }
  local res = {}  -- res[id][key] = list of worker results
  local function keep(id, key, r)
    res[id] = res[id] or {}
    res[id][key] = res[id][key] or {}
    table.insert(res[id][key], r)
    for _, e in ipairs(r.errors or {}) do io.stderr:write(("  %s %s: %s\n"):format(id, key, e)) end
  end
  for round = 1, rounds do
    for k = 0, #available - 1 do
      -- rotate who goes first, so that a busy neighbour hurts all alike
      local b = available[(k + round - 1) % #available + 1]
      for _, n in ipairs(scans) do
        io.stderr:write(("round %d: %s, %d scan%s\n"):format(round, b.id, n, n > 1 and "s" or ""))
        keep(b.id, "scan" .. n, run_worker(("scan %s %d %d %s %s %d"):format(b.id, n, port, sh.quote(ca),
          n > 1 and "1" or "0", rtt_port), 300))
      end
      for _, size in ipairs(sizes) do
        io.stderr:write(("round %d: %s, %d connections\n"):format(round, b.id, size))
        keep(b.id, "ceiling" .. size, run_worker(("ceiling %s %d %g"):format(b.id, size, smoke and 0.2 or 2), 120))
      end
    end
  end

  -- the same findings everywhere?
  local reference, differences, count = nil, {}, 0
  for _, b in ipairs(available) do
    for _, key in ipairs { "scan1", "scan8" } do
      for _, r in ipairs(res[b.id][key] or {}) do
        for _, s in ipairs(r.sigs or {}) do
          count = count + 1
          reference = reference or s
          if s ~= reference then differences[#differences + 1] = ("%s %s: %s"):format(b.id, key, s) end
        end
      end
    end
  end

  local function values(id, key, field, scale)
    local t = {}
    for _, r in ipairs((res[id] or {})[key] or {}) do
      if type(r[field]) == "number" then t[#t + 1] = r[field] * (scale or 1) end
    end
    table.sort(t)
    return t
  end
  local function med(id, key, field, scale) return median(values(id, key, field, scale)) end
  local function f(fmt, v) return v and fmt:format(v) or "-" end
  -- median, and the range of the rounds
  local function spread(id, key, field, fmt)
    local t = values(id, key, field)
    if #t == 0 then return "-" end
    if #t == 1 then return fmt:format(t[1]) .. " s" end
    return ("%s s (%s–%s)"):format(fmt:format(median(t)), fmt:format(t[1]), fmt:format(t[#t]))
  end

  print("Scans (tlsharden.scan.run, c2s STARTTLS of a loopback Prosody 0.12): median of the rounds (their range)")
  print("")
  print("| backend | 1 scan: wall | 1 scan: CPU | 8 scans: wall | 8 scans: CPU | Lua heap at end (after a full GC) |")
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  local top = smoke and "scan1" or "scan8"
  for _, b in ipairs(BACKENDS) do
    if b.skip then
      print(("| %s %s | not run: %s ||||||"):format(b.id, b.name, b.skip))
    else
      print(("| %s %s | %s | %s | %s | %s | %s |"):format(b.id, b.name,
        spread(b.id, "scan1", "wall", "%.2f"), spread(b.id, "scan1", "cpu", "%.2f"),
        spread(b.id, "scan8", "wall", "%.2f"), spread(b.id, "scan8", "cpu", "%.2f"),
        f("%.0f KiB", med(b.id, top, "heap_kib")) .. " (" .. f("%.0f KiB", med(b.id, top, "heap_kib_collected")) .. ")"))
    end
  end
  print("")
  print(("What the loop's other users feel while %s run (b, c); idle: the second before they start."):format(
    smoke and "1 scan" or "8 scans"))
  print("10 ms timer: lateness median / p99 / max; c2s round trip (connect, stream header, features) to a second Prosody every 50 ms: median / max")
  print("")
  print("| backend | timer, idle | timer, scans running | round trip, idle | round trip, scans running | timer ticks, round trips (per run) |")
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  for _, b in ipairs(available) do
    if b.id == "b" or b.id == "c" then
      local function late(prefix)
        return ("%s / %s / %s ms"):format(f("%.1f", med(b.id, top, prefix .. "late_median", 1000)),
          f("%.0f", med(b.id, top, prefix .. "late_p99", 1000)), f("%.0f", med(b.id, top, prefix .. "late_max", 1000)))
      end
      local function rtt(prefix)
        if smoke then return "-" end
        return ("%s / %s ms"):format(f("%.1f", med(b.id, top, prefix .. "rtt_median", 1000)),
          f("%.0f", med(b.id, top, prefix .. "rtt_max", 1000)))
      end
      print(("| %s | %s | %s | %s | %s | %s, %s |"):format(b.id, late("idle_"), late(""), rtt("idle_"), rtt(""),
        f("%d", med(b.id, top, "ticks")), f("%d", med(b.id, top, "rtts"))))
    end
  end
  print("")
  for _, size in ipairs(sizes) do
    local key = "ceiling" .. size
    print(("| backend | %d plain TCP connections: made | waited on at once | highest descriptor | seconds (%s s of waiting) | what stopped it |")
      :format(size, smoke and "0.2" or "2"))
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for _, b in ipairs(available) do
      local rs = res[b.id][key]
      local last = rs[#rs]
      print(("| %s | %s | %s | %s | %s | %s |"):format(b.id, f("%d", med(b.id, key, "connected")),
        f("%d", med(b.id, key, "waited")), f("%d", med(b.id, key, "highest_fd")),
        f("%.2f", med(b.id, key, "seconds")),
        (last.errors and last.errors[1]) or last.first_error or "nothing"))
    end
    print("")
  end
  for _, b in ipairs(available) do
    if b.id == "b" or b.id == "c" then
      for _, key in ipairs { "scan1", "scan8" } do
        for i, r in ipairs(res[b.id][key] or {}) do
          if r.fds_left and r.fds_left ~= "" then
            print(("%s %s round %d: descriptors server_epoll still watches after the scans: %s (%s)%s"):format(b.id, key, i,
              r.fds_left, r.fds_open, r.sched_watches and (", the scheduler's own watches: " .. r.sched_watches) or ""))
          end
        end
      end
    end
  end
  print("")
  print(#differences == 0 and ("all %d scans found the same: %s"):format(count, tostring(reference))
    or ("DIFFERENT findings (reference: %s):\n  %s"):format(tostring(reference), table.concat(differences, "\n  ")))
  print("")
  print(("%d round%s in rotating order, each measurement a process of its own (ulimit -n 4096);"
    .. " 8 scans share one scheduler with room for 9 connections each"):format(rounds, rounds == 1 and "" or "s"))
  print("machine: " .. bench.machine() .. "; " .. _VERSION .. "; lua-cqueues " .. (have_cqueues() and require("cqueues").VERSION or "none"))
end)
if probe_target then probe_target.stop() end
if server then server.stop() end
if not ok then error(err, 0) end
