-- mod_tlsharden_observatory in a real Prosody, 0.12 and 13, with the file
-- store and with SQL (SQLite through mod_storage_sql): scans asked for
-- over the JSON API and run inside Prosody's own loop, compared with the
-- command line's scan of the same target; a restart that keeps the
-- results and marks a running scan cut off; the limits (addresses, ports,
-- per client, per domain, the queue, bad input); c2s round trips while
-- eight scans run; scheduled rescans; a domain whose SRV points inward.
-- Tagged #truth: real servers end to end; the release suite runs it.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local cjson = require "cjson"
local prosody = require "spec.helpers.prosody"
local dns_servers = require "spec.helpers.dns_servers"
local sh = require "spec.helpers.sh"

local repo = sh.run("pwd"):gsub("%s+$", "")
local env = ("LUA_PATH_5_4='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH_5_4='%s/build/?.so;;'"):format(repo, repo, repo)

local P = "tlsharden_observatory_"

-- An HTTP request to the observatory; returns status, body, headers.
local function request(server, method, path, body, ctype)
  local out = {}
  local headers = { host = "localhost" }
  if body then
    headers["content-length"] = tostring(#body)
    headers["content-type"] = ctype or "application/json"
  end
  local _, code, h = http.request { url = ("http://127.0.0.1:%d/observatory%s"):format(server.ports.http, path),
    method = method, sink = ltn12.sink.table(out), source = body and ltn12.source.string(body) or nil,
    headers = headers, redirect = false }
  return code, table.concat(out), h or {}
end

local function post_scan(server, req)
  local code, body = request(server, "POST", "/api/scans", cjson.encode(req))
  local ok, doc = pcall(cjson.decode, body)
  return code, ok and doc or { raw = body }
end

local function get_scan(server, id)
  local code, body = request(server, "GET", "/api/scans/" .. id)
  assert.equal(200, code, body)
  return cjson.decode(body)
end

-- Poll a scan until it leaves queued and running (at most `seconds`).
local function wait_scan(server, id, seconds)
  local deadline = socket.gettime() + (seconds or 60)
  local doc
  repeat
    doc = get_scan(server, id)
    if doc.state ~= "queued" and doc.state ~= "running" then return doc end
    socket.sleep(0.1)
  until socket.gettime() > deadline
  error("scan " .. id .. " still " .. doc.state .. " after " .. seconds .. " s")
end

-- A Prosody with the observatory; global: extra settings.
-- opts.strict: the default allow list and ports (public addresses only).
local function start(version, global, opts)
  opts = opts or {}
  local g = { [P .. "timeout"] = 5 }
  if not opts.strict then g[P .. "allow"], g[P .. "ports"] = { "127.0.0.0/8", "::1" }, "any" end
  for k, v in pairs(global or {}) do g[k] = v end
  return prosody.start { version = version.name, http = true, plugin_paths = { repo .. "/lua" }, env = env,
    modules = { "tlsharden_observatory" }, global = g, wait = opts.wait }
end

local function with(server, fn)
  local ok, err = pcall(fn)
  if not ok then
    if os.getenv("TLSHARDEN_SPEC_LOG") then io.stderr:write(server.log()) end
    server.stop()
    error(err, 0)
  end
  server.stop()
end

-- What two scan results must agree on: the grade, and per endpoint its
-- status, grade, protocols and suites.
local function essence(result)
  local out = { grade = result.grade, endpoints = {} }
  for i, e in ipairs(result.endpoints or {}) do
    local protos = {}
    for name, p in pairs(e.probe and e.probe.protocols or {}) do
      local suites = {}
      for j, s in ipairs(type(p) == "table" and p.suites or {}) do
        suites[j] = type(s) == "table" and (s.iana or s.name) or s
      end
      protos[name] = { offered = type(p) == "table" and p.offered, suites = suites }
    end
    out.endpoints[i] = { address = e.address, port = e.port, status = e.status,
      grade = e.grade and e.grade.grade, protocols = protos }
  end
  return out
end

local function cli_scan(target, args)
  local out = sh.run(("LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' %s/bin/tlsharden scan %s %s --json --quiet 2>/dev/null; true")
    :format(repo, repo, repo, target, args))
  return cjson.decode(out)
end

-- stream header -> stream features on a c2s port: one round trip (seconds),
-- or nil and why
local function c2s_round_trip(port)
  local c = socket.tcp()
  c:settimeout(5)
  local t0 = socket.gettime()
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then return nil, err end
  c:send("<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' "
    .. "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
  local got = ""
  while not got:find("</stream:features>", 1, true) do
    local data, rerr, partial = c:receive(1)
    data = data or partial
    if not data or data == "" then
      c:close()
      return nil, rerr
    end
    got = got .. data
  end
  local rtt = socket.gettime() - t0
  c:close()
  return rtt
end

local function median(t)
  table.sort(t)
  return t[math.ceil(#t / 2)]
end

describe("mod_tlsharden_observatory #truth", function()
  prosody.each_version(describe, pending, "on Prosody", function(version)
    for _, storage in ipairs { "internal", "sql" } do
      it(("scans through the API with %s storage, as the command line does; a restart keeps the results and marks a running scan cut off")
          :format(storage), function()
        local target = prosody.start { version = "0.12" }
        -- a port that accepts and then says nothing: a scan of it runs until its timeout
        local silent = assert(socket.bind("127.0.0.1", 0))
        local _, silent_port = silent:getsockname()
        local global = { [P .. "timeout"] = 8, [P .. "rescan_interval"] = 0 }
        if storage == "sql" then
          global.storage = "sql"
          global.sql = { driver = "SQLite3", database = "observatory.sqlite" }
        end
        local obs = start(version, global)
        with(obs, function()
          local ok, err = pcall(function()
            local t = "127.0.0.1:" .. target.ports.c2s
            local code, doc = post_scan(obs, { target = t, kind = "c2s", starttls = "c2s", xmpphost = "localhost" })
            assert.equal(202, code)
            assert.is_string(doc.id)
            local done = wait_scan(obs, doc.id, 60)
            assert.equal("done", done.state)
            assert.equal("scan", done.result.command)
            local cli = cli_scan(t, "--xmpphost localhost --starttls c2s --kind c2s")
            assert.same(essence(cli), essence(done.result))
            assert.equal(done.result.grade, done.grade)

            -- the same request again within the domain interval: the same scan
            local code2, again = post_scan(obs, { target = t, kind = "c2s", starttls = "c2s", xmpphost = "localhost" })
            assert.equal(202, code2)
            assert.equal(doc.id, again.id)
            assert.is_true(again.cached)

            -- a scan that runs when the server restarts
            local code3, slow = post_scan(obs, { target = "127.0.0.1:" .. silent_port, kind = "c2s", starttls = "c2s",
              xmpphost = "silent.localhost" })
            assert.equal(202, code3)
            local deadline = socket.gettime() + 10
            while get_scan(obs, slow.id).state ~= "running" and socket.gettime() < deadline do socket.sleep(0.05) end
            assert.equal("running", get_scan(obs, slow.id).state)
            obs.restart()

            local cut = get_scan(obs, slow.id)
            assert.equal("cut_off", cut.state)
            assert.matches("restarted", cut.error)
            local kept = get_scan(obs, doc.id)
            assert.equal("done", kept.state)
            assert.same(essence(done.result), essence(kept.result))
            local dcode, dir = request(obs, "GET", "/api/directory")
            assert.equal(200, dcode)
            dir = cjson.decode(dir)
            assert.equal(1, #dir)
            assert.equal("localhost", dir[1].domain)
            assert.equal(done.grade, dir[1].grade)
            assert.equal(doc.id, dir[1].id)
            local pcode, pagetext = request(obs, "GET", "/scan/" .. doc.id)
            assert.equal(200, pcode)
            assert.truthy(pagetext:find(tostring(target.ports.c2s), 1, true))
            local bcode, svg, bh = request(obs, "GET", "/badge/localhost.svg")
            assert.equal(200, bcode)
            assert.equal("image/svg+xml", bh["content-type"])
            assert.truthy(svg:find(">" .. done.grade .. "<", 1, true))
            if storage == "sql" then
              local f = io.open(obs.dir .. "/data/observatory.sqlite")
              assert.truthy(f, "the SQLite database is where the settings say")
              if f then f:close() end
            else
              assert.truthy(sh.run("ls " .. sh.quote(obs.dir .. "/data/localhost")):find("tlsharden_observatory", 1, true))
            end
          end)
          silent:close()
          target.stop()
          if not ok then error(err, 0) end
        end)
      end)
    end

    it("refuses what it must, with a clear status and nothing stored", function()
      local obs = start(version, { [P .. "client_limit"] = 3, [P .. "rescan_interval"] = 0 }, { strict = true })
      with(obs, function()
        local function refused(req, status, pattern)
          local code, doc = post_scan(obs, req)
          assert.equal(status, code, cjson.encode(doc))
          assert.is_string(doc.error)
          if pattern then assert.matches(pattern, doc.error) end
        end
        -- no allow list: loopback and private addresses, other ports
        refused({ target = "127.0.0.1:5222", xmpphost = "localhost" }, 403, "loopback")
        refused({ target = "[::1]:5222", xmpphost = "localhost" }, 403, "loopback")
        refused({ target = "192.168.1.1:5222", xmpphost = "x.example" }, 403, "private")
        refused({ target = "example.org:8080" }, 403, "port 8080")
        -- malformed
        refused({ target = "not a domain!" }, 400, "target")
        refused({ target = "example.org", kind = "all" }, 400, "kind")
        refused({ target = "example.org", starttls = "c2s" }, 400, "starttls")
        refused({ target = "example.org", colour = "red" }, 400, "unknown field")
        refused({ target = ("a"):rep(400) .. ".org" }, 400)
        local code, body = request(obs, "POST", "/api/scans", "{ not json")
        assert.equal(400, code)
        assert.matches("JSON", body)
        code = request(obs, "POST", "/api/scans", ('{"target":"%s"}'):format(("x"):rep(5000)))
        assert.equal(413, code)
        -- a form: an HTML page with the message, the same status
        local fcode, page = request(obs, "POST", "/scan", "target=%3Cscript%3E&kind=c2s",
          "application/x-www-form-urlencoded")
        assert.equal(400, fcode)
        assert.truthy(page:find("<!DOCTYPE html>", 1, true))
        assert.falsy(page:find("<script>", 1, true))
        -- unknown paths and methods, bad ids: pages and JSON, never a traceback
        local ucode, upage = request(obs, "GET", "/no/such/page")
        assert.equal(404, ucode)
        assert.truthy(upage:find("<!DOCTYPE html>", 1, true))
        assert.equal(404, (request(obs, "GET", "/scan/nope")))
        assert.equal(404, (request(obs, "GET", "/api/scans/..%2F..%2Fetc")))
        assert.equal(404, (request(obs, "GET", "/api/nothing")))
        assert.equal(405, (request(obs, "POST", "/directory", "x=1", "application/x-www-form-urlencoded")))
        assert.equal(400, (request(obs, "GET", "/badge/%3Cx%3E.svg")))
        assert.equal(404, (request(obs, "GET", "/badge/unknown.example.svg")))
        -- nothing stored by any of it
        local _, dir = request(obs, "GET", "/api/directory")
        assert.same({}, cjson.decode(dir))
        assert.falsy(obs.log():find("traceback", 1, true))
        assert.falsy(obs.log():find("\terror\t", 1, true))
        -- the rate limit per client address: 3 accepted requests, then 429
        -- (public names that do not resolve here: the scans fail quickly)
        for i = 1, 3 do
          local c = post_scan(obs, { target = ("nowhere%d.invalid"):format(i), kind = "c2s" })
          assert.equal(202, c)
        end
        local c4, d4 = post_scan(obs, { target = "nowhere4.invalid", kind = "c2s" })
        assert.equal(429, c4)
        assert.matches("too many", d4.error)
      end)
    end)

    it("limits the queue and shares a scan of the same request", function()
      local silent = assert(socket.bind("127.0.0.1", 0))
      local _, port = silent:getsockname()
      local obs = start(version, { [P .. "concurrent"] = 1, [P .. "queue"] = 2, [P .. "timeout"] = 1.5,
        [P .. "rescan_interval"] = 0 })
      with(obs, function()
        local ids = {}
        for i = 1, 3 do
          local code, doc = post_scan(obs, { target = "127.0.0.1:" .. port, starttls = "c2s",
            xmpphost = ("q%d.localhost"):format(i) })
          assert.equal(202, code)
          ids[i] = doc.id
        end
        assert.equal("running", get_scan(obs, ids[1]).state)
        local q = get_scan(obs, ids[2])
        assert.equal("queued", q.state)
        assert.equal(1, q.position)
        local code, doc = post_scan(obs, { target = "127.0.0.1:" .. port, starttls = "c2s", xmpphost = "q4.localhost" })
        assert.equal(429, code)
        assert.matches("queue is full", doc.error)
        -- the same request as a queued one: that scan, not a new one
        local code2, same = post_scan(obs, { target = "127.0.0.1:" .. port, starttls = "c2s", xmpphost = "q3.localhost" })
        assert.equal(202, code2)
        assert.equal(ids[3], same.id)
        for _, id in ipairs(ids) do
          local r = wait_scan(obs, id, 40)
          assert.equal("done", r.state)
          assert.equal("timeout", r.result.endpoints[1].status == "timeout" and "timeout" or r.result.endpoints[1].status)
        end
      end)
      silent:close()
    end)

    it("keeps serving its own clients while eight scans run", function()
      local target = prosody.start { version = "0.12" }
      local obs = start(version, { [P .. "concurrent"] = 8, [P .. "connections"] = 64, [P .. "domain_interval"] = 0,
        [P .. "rescan_interval"] = 0 })
      local ok, err = pcall(with, obs, function()
        local idle = {}
        for i = 1, 10 do idle[i] = assert(c2s_round_trip(obs.ports.c2s)) end
        local ids = {}
        for i = 1, 8 do
          local code, doc = post_scan(obs, { target = "127.0.0.1:" .. target.ports.c2s, starttls = "c2s",
            xmpphost = "localhost", kind = "c2s" })
          assert.equal(202, code)
          ids[i] = doc.id
        end
        assert.equal(8, #ids)
        -- round trips to the observatory's own c2s port until every scan is done
        local busy, failures, running, n = {}, 0, true, 0
        local deadline = socket.gettime() + 90
        while running and socket.gettime() < deadline do
          local rtt, why = c2s_round_trip(obs.ports.c2s)
          if rtt then busy[#busy + 1] = rtt else failures = failures + 1 print("round trip failed: " .. tostring(why)) end
          socket.sleep(0.01)
          n = n + 1
          if n % 10 == 0 then
            running = false
            for _, id in ipairs(ids) do
              local s = get_scan(obs, id).state
              if s == "queued" or s == "running" then running = true end
            end
          end
        end
        assert.is_false(running)
        assert.equal(0, failures)
        assert.is_true(#busy >= 3)
        local grades = {}
        for _, id in ipairs(ids) do
          local r = get_scan(obs, id)
          assert.equal("done", r.state)
          grades[r.grade] = true
        end
        assert.equal(1, #(function() local t = {} for g in pairs(grades) do t[#t + 1] = g end return t end)())
        local max = 0
        for _, v in ipairs(busy) do max = math.max(max, v) end
        print(("c2s round trips on Prosody %s: idle median %.1f ms; during 8 scans median %.1f ms, max %.1f ms (%d)")
          :format(version.name, median(idle) * 1000, median(busy) * 1000, max * 1000, #busy))
      end)
      target.stop()
      if not ok then error(err, 0) end
    end)

    it("rescans the directory when its latest scan is older than the interval", function()
      local target = prosody.start { version = "0.12" }
      local obs = start(version, { [P .. "rescan_interval"] = 2, [P .. "domain_interval"] = 0 })
      local ok, err = pcall(with, obs, function()
        local code, doc = post_scan(obs, { target = "127.0.0.1:" .. target.ports.c2s, starttls = "c2s",
          xmpphost = "localhost", kind = "c2s" })
        assert.equal(202, code)
        wait_scan(obs, doc.id, 60)
        local deadline, dir = socket.gettime() + 30, nil
        repeat
          socket.sleep(0.5)
          dir = cjson.decode((select(2, request(obs, "GET", "/api/directory"))))
        until (#dir[1].history >= 2) or socket.gettime() > deadline
        assert.is_true(#dir[1].history >= 2)
        assert.are_not.equal(doc.id, dir[1].history[1].id)
        assert.matches("queued for a rescan", obs.log())
      end)
      target.stop()
      if not ok then error(err, 0) end
    end)

    it("refuses a domain whose SRV records point inward, after resolution", function()
      if not dns_servers.have("dnsmasq") then return pending("dnsmasq is not installed") end
      local dns = dns_servers.dnsmasq { srv = { "_xmpp-client._tcp.inward.example,localhost.inward.example,5222,0,5" },
        hosts = { "localhost.inward.example,127.0.0.1" } }
      local obs = start(version, { [P .. "resolver"] = dns.address, [P .. "rescan_interval"] = 0,
        [P .. "dnssec"] = false }, { strict = true })
      local ok, err = pcall(with, obs, function()
        local code, doc = post_scan(obs, { target = "inward.example", kind = "c2s" })
        assert.equal(202, code)
        local r = wait_scan(obs, doc.id, 30)
        if r.state ~= "failed" then print(cjson.encode(r)) end
        assert.equal("failed", r.state)
        assert.matches("loopback", r.error)
        local refused = false
        for _, p in ipairs(r.result.problems) do
          if p.code == "ENDPOINT_REFUSED" then refused = true end
        end
        assert.is_true(refused)
        assert.equal(0, #r.result.endpoints)
        local _, dir = request(obs, "GET", "/api/directory")
        assert.same({}, cjson.decode(dir))
      end)
      dns.stop()
      if not ok then error(err, 0) end
    end)
  end)
end)
