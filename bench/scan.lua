-- The live scanner side by side with sslscan and testssl.sh on the same
-- loopback targets: a Prosody 0.12 (Debian's, default TLS settings) c2s
-- STARTTLS port, its s2s port and its direct TLS port. Each tool runs as
-- the user runs it, one process per scan; the median of ROUNDS runs in
-- alternating order. tlsharden's in-process time (tlsharden.scan) is given
-- too, and whether the protocols and suites found equal sslscan's.
--
--   lua5.4 bench/scan.lua [ROUNDS]
--
-- testssl.sh takes minutes per target, so it runs only with
-- TLSHARDEN_BENCH_TESTSSL=1, once per target; its figures are kept in
-- bench/scan-testssl.lua and used for the ratios of later runs.
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
package.path = bench.root .. "/?.lua;" .. package.path
local socket = require "socket"
local tlsharden = require "tlsharden"
local prosody = require "spec.helpers.prosody"
local sh = require "spec.helpers.sh"
local sslscan = require "spec.helpers.sslscan"

local rounds = tonumber(arg[1]) or 5
local run_testssl = os.getenv("TLSHARDEN_BENCH_TESTSSL") == "1"
local RECORDED = bench.root .. "/bench/scan-testssl.lua"

local function median(t)
  local s = { table.unpack(t) }
  table.sort(s)
  return s[math.floor((#s + 1) / 2)]
end

local function timed(cmd)
  local t0 = socket.gettime()
  local ok, out = sh.exec(cmd)
  return socket.gettime() - t0, ok, out
end

local function sorted(t)
  local s = {}
  for i, v in ipairs(t or {}) do s[i] = type(v) == "table" and v.id or v end
  table.sort(s)
  return table.concat(s, ",")
end

-- Whether a scan found what sslscan found: the same protocols, the same suites of each.
local function same_as_sslscan(e, theirs)
  if table.concat(theirs.versions, ",") ~= table.concat(e.probe.versions, ",") then return false end
  for _, p in ipairs(e.probe.versions) do
    if sorted(theirs.suites[p]) ~= sorted(e.probe.protocols[p].suites) then return false end
  end
  return true
end

local function load_recorded()
  local f = io.open(RECORDED)
  if not f then return {} end
  local text = f:read("*a")
  f:close()
  local chunk = load(text, "scan-testssl", "t", {})
  local ok, t = pcall(chunk)
  return ok and type(t) == "table" and t or {}
end

local server = prosody.start { version = "0.12" }
local ok, err = pcall(function()
  local targets = {
    { name = "c2s STARTTLS", port = server.ports.c2s, starttls = "c2s", sslscan = "c2s", testssl = "-t xmpp --xmpphost localhost" },
    { name = "s2s STARTTLS", port = server.ports.s2s, starttls = "s2s", sslscan = "s2s", testssl = nil },
    { name = "c2s direct TLS", port = server.ports.c2s_direct_tls, starttls = "none", sslscan = nil, testssl = "" },
  }
  local recorded = load_recorded()
  local bin = sh.quote(bench.root .. "/bin/tlsharden")
  local rows = {}
  for _, t in ipairs(targets) do
    local ours_cmd = ("%s scan 127.0.0.1:%d --starttls %s --xmpphost localhost --cafile %s --quiet --json > /dev/null")
      :format(bin, t.port, t.starttls, sh.quote(server.ca))
    local flags = t.sslscan == "c2s" and "--starttls-xmpp" or t.sslscan == "s2s" and "--starttls-xmpp --xmpp-server" or ""
    local theirs_cmd = ("sslscan --no-colour %s localhost:%d > /dev/null"):format(flags, t.port)
    local ours, theirs, inproc, connections = {}, {}, {}, 0
    for i = 1, rounds do
      -- alternate who goes first, so that a busy neighbour hurts both alike
      local a, b
      if i % 2 == 1 then
        a = timed(ours_cmd)
        b = timed(theirs_cmd)
      else
        b = timed(theirs_cmd)
        a = timed(ours_cmd)
      end
      ours[i], theirs[i] = a, b
      local t0 = socket.gettime()
      local r = tlsharden.scan("127.0.0.1:" .. t.port, { starttls = t.starttls, xmpphost = "localhost", cafile = server.ca })
      inproc[i] = socket.gettime() - t0
      connections = r.endpoints[1].connections
      t.result = r.endpoints[1]
    end
    t.same = same_as_sslscan(t.result, sslscan.scan("localhost:" .. t.port, { starttls = t.sslscan }))
    local testssl_s, testssl_note
    if t.testssl == nil then
      testssl_note = "no s2s (3.0.8 opens jabber:client streams only)"
    elseif run_testssl then
      local secs = timed(("cd /tmp && testssl --quiet --color 0 --warnings off %s 127.0.0.1:%d > /dev/null 2>&1")
        :format(t.testssl, t.port))
      -- its vulnerability checks alone (-U), beside tlsharden's whole scan
      local u = timed(("cd /tmp && testssl --quiet --color 0 --warnings off -U %s 127.0.0.1:%d > /dev/null 2>&1")
        :format(t.testssl, t.port))
      recorded[t.name] = { seconds = secs, u_seconds = u, date = os.date("!%Y-%m-%d") }
      testssl_s = secs
    elseif recorded[t.name] then
      testssl_s = recorded[t.name].seconds
      testssl_note = "recorded " .. recorded[t.name].date
    end
    local vulnerable = {}
    for name, v in pairs(t.result.vulnerabilities or {}) do
      if v.status == "vulnerable" then vulnerable[#vulnerable + 1] = name end
    end
    table.sort(vulnerable)
    rows[#rows + 1] = { t = t, ours = median(ours), theirs = median(theirs), inproc = median(inproc),
      connections = connections, testssl = testssl_s, testssl_note = testssl_note,
      testssl_u = recorded[t.name] and recorded[t.name].u_seconds, vulnerable = vulnerable }
  end
  if run_testssl then
    local f = assert(io.open(RECORDED, "w"))
    f:write("-- testssl.sh 3.0.8 (Debian), one full run per target of bench/scan.lua, seconds\n-- (TLSHARDEN_BENCH_TESTSSL=1 lua5.4 bench/scan.lua rewrites this file)\nreturn {\n")
    for _, r in ipairs(rows) do
      if recorded[r.t.name] then
        f:write(("  [%q] = { seconds = %.1f, u_seconds = %s, date = %q },\n"):format(r.t.name,
          recorded[r.t.name].seconds, recorded[r.t.name].u_seconds and ("%.1f"):format(recorded[r.t.name].u_seconds)
          or "nil", recorded[r.t.name].date))
      end
    end
    f:write("}\n")
    f:close()
  end
  print("| target | tlsharden scan | sslscan 2.0.7 | testssl.sh 3.0.8 | sslscan / tlsharden | testssl.sh / tlsharden | same protocols and suites as sslscan |")
  print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
  for _, r in ipairs(rows) do
    print(("| %s | %.3f s | %.3f s | %s | **%.1f×** | %s | %s |"):format(r.t.name, r.ours, r.theirs,
      r.testssl and ("%.1f s"):format(r.testssl) or "-", r.theirs / r.ours,
      r.testssl and ("**%.0f×**"):format(r.testssl / r.ours) or "-", r.t.same and "yes" or "NO"))
  end
  print("")
  -- the vulnerability checks: testssl.sh -U does only those; tlsharden's
  -- whole scan (protocols, suites, chain, XMPP, grade) includes them
  print("| target | tlsharden scan (with its 19 checks) | testssl.sh -U | testssl.sh -U / tlsharden | tlsharden's connections | found vulnerable |")
  print("| --- | ---: | ---: | ---: | ---: | --- |")
  for _, r in ipairs(rows) do
    print(("| %s | %.3f s | %s | %s | %d | %s |"):format(r.t.name, r.ours,
      r.testssl_u and ("%.1f s"):format(r.testssl_u) or "-",
      r.testssl_u and ("**%.0f×**"):format(r.testssl_u / r.ours) or "-", r.connections,
      #r.vulnerable > 0 and table.concat(r.vulnerable, ", ") or "none"))
  end
  print("")
  for _, r in ipairs(rows) do
    local e = r.t.result
    print(("%s: in process %.3f s, %d connections, grade %s; testssl.sh: %s"):format(r.t.name, r.inproc,
      r.connections, e.grade and e.grade.grade or "-", r.testssl_note or (r.testssl and "this run" or "not run")))
  end
  print("")
  print(("median of %d rounds, each tool a process of its own (tlsharden: bin/tlsharden scan --json)"):format(rounds))
  print("machine: " .. bench.machine())
end)
server.stop()
if not ok then error(err, 0) end
