-- The observatory's parts that need no Prosody: which addresses and ports
-- may be scanned (observatory/policy.lua), the scanner's `allow` option
-- that applies it after discovery, the service's checks and limits
-- (observatory/service.lua) on key-value stores held in tables, and the
-- HTTP answers to bad input (observatory/web.lua). The module in a real
-- Prosody: spec/observatory_spec.lua.
local policy = require "tlsharden.observatory.policy"
local service_mod = require "tlsharden.observatory.service"
local web = require "tlsharden.observatory.web"
local net = require "tlsharden.scan.net"
local scan = require "tlsharden.scan"
local cjson = require "cjson"
local socket = require "socket"

-- a key-value store as Prosody's keyval stores answer
local function table_store()
  local data = {}
  return { data = data, get = function(_, k) return data[k] end,
    set = function(_, k, v) data[k] = v return true end }
end

local function new_service(limits, pol, stores)
  local n = 0
  return service_mod.new {
    stores = stores or { scans = table_store(), index = table_store() },
    scheduler = net.scheduler {}, policy = pol or policy.new {}, limits = limits,
    new_id = function() n = n + 1 return "id" .. n end,
  }
end

describe("observatory policy", function()
  local p = policy.new {}
  it("refuses every address that is not public unicast, IPv4 inside IPv6 included", function()
    for _, a in ipairs { "127.0.0.1", "10.1.2.3", "172.16.5.4", "192.168.0.1", "169.254.9.9", "100.64.0.1", "0.1.2.3",
        "224.0.0.251", "240.0.0.1", "255.255.255.255", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1",
        "::1", "::", "fe80::1", "fd12:3456::1", "ff02::1", "2001:db8::5", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "64:ff9b::c0a8:0101", "2002:0a00:0001::1", "3fff::1", "[::1]", "fe80::1%eth0" } do
      local ok, why = p:address(a)
      assert.is_false(ok, a)
      assert.is_string(why)
    end
    for _, a in ipairs { "8.8.8.8", "1.1.1.1", "2a01:4f8::1", "2001:4860:4860::8888", "::ffff:8.8.8.8" } do
      assert.is_true(p:address(a), a)
    end
    assert.matches("loopback", select(2, p:address("127.0.0.1")))
    assert.matches("private", select(2, p:address("::ffff:192.168.1.1")))
    assert.is_false(p:address("not-an-address"))
    assert.is_false(p:address("1.2.3.256"))
    assert.is_false(p:address("1:2:3:4:5:6:7:8:9"))
  end)

  it("lets the allow list through, and only it", function()
    local q = policy.new { allow = { "127.0.0.0/8", "::1", "10.1.0.0/16" } }
    assert.is_true(q:address("127.9.9.9"))
    assert.is_true(q:address("::1"))
    assert.is_true(q:address("10.1.200.3"))
    assert.is_false(q:address("10.2.0.1"))
    assert.is_false(q:address("192.168.1.1"))
  end)

  it("allows SRV ports and the standard ones, or any with 'any'", function()
    assert.is_true(p:endpoint { address = "8.8.8.8", port = 5222, source = "target" })
    assert.is_false(p:endpoint { address = "8.8.8.8", port = 8080, source = "target" })
    assert.is_true(p:endpoint { address = "8.8.8.8", port = 8080, source = "srv" })
    assert.is_false(p:endpoint { address = "127.0.0.1", port = 5222, source = "srv" })
    assert.is_true(policy.new { ports = "any" }:port(1))
  end)

  it("names the option and the value of a bad setting", function()
    local ok, err = pcall(policy.new, { allow = { "10.0.0.0/33" } })
    assert.is_false(ok)
    assert.matches("allow", tostring(err))
    ok, err = pcall(policy.new, { allow = { "nonsense" } })
    assert.matches("'nonsense'", tostring(err))
    ok, err = pcall(policy.new, { ports = { 0 } })
    assert.matches("ports", tostring(err))
    ok, err = pcall(policy.new, { allow = "127.0.0.1" })
    assert.matches("list of CIDR", tostring(err))
  end)
end)

describe("tlsharden.scan's allow option", function()
  it("refuses endpoints after discovery, before any connection, each a problem", function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    server:settimeout(0)
    local p = policy.new {}
    local r = scan.scan("127.0.0.1:" .. port, { xmpphost = "localhost", allow = function(ep) return p:endpoint(ep) end })
    assert.equal(0, #r.endpoints)
    assert.equal("ENDPOINT_REFUSED", r.problems[1].code)
    assert.matches("loopback", r.problems[1].message)
    assert.is_nil(server:accept(), "nothing connected")
    server:close()
    local ok, err = pcall(scan.scan, "127.0.0.1:" .. port, { xmpphost = "localhost", allow = "yes" })
    assert.is_false(ok)
    assert.matches("allow", tostring(err))
  end)
end)

describe("tlsharden.scan's check and run", function()
  it("raise the errors tlsharden.scan raises, naming the argument or option and the value", function()
    local ok, err = pcall(scan.check, "not a domain!")
    assert.is_false(ok)
    assert.matches("^tlsharden%.scan: bad argument #1 'target'", tostring(err))
    assert.matches("'not a domain!'", tostring(err))
    ok, err = pcall(scan.check, "example.org", { kind = "all" })
    assert.matches("bad option 'kind'", tostring(err))
    assert.is_true(scan.check("127.0.0.1:5222", { xmpphost = "localhost", starttls = "c2s" }))
    local sched = net.scheduler {}
    sched:spawn(function() ok, err = pcall(scan.run, sched, "example.org", { timeout = -1 }) end)
    sched:run()
    assert.is_false(ok)
    assert.matches("bad option 'timeout'", tostring(err))
  end)

  it("run gives inside a caller's scheduler what tlsharden.scan gives", function()
    local silent = assert(socket.bind("127.0.0.1", 0))
    local _, port = silent:getsockname()
    local opts = { xmpphost = "localhost", starttls = "c2s", timeout = 0.3 }
    local direct = scan.scan("127.0.0.1:" .. port, opts)
    local sched, inside = net.scheduler { per_server = 9 }, nil
    sched:spawn(function() inside = scan.run(sched, "127.0.0.1:" .. port, opts) end)
    sched:run()
    silent:close()
    assert.equal(1, #inside.endpoints)
    assert.equal(direct.endpoints[1].status, inside.endpoints[1].status)
    assert.equal(direct.target, inside.target)
    assert.equal(direct.domain, inside.domain)
  end)
end)

describe("observatory service", function()
  it("checks requests: 400 for what is malformed, 403 for what may not be scanned", function()
    local s = new_service()
    local cases = {
      { { target = "example.org", kind = "all" }, 400, "kind" },
      { { target = "" }, 400, "target" },
      { { target = 5 }, 400, "target" },
      { { target = "exa mple.org" }, 400, "target" },
      { { target = "example.org", starttls = "c2s" }, 400, "starttls" },
      { { target = "example.org", extra = 1 }, 400, "unknown field" },
      { { target = "127.0.0.1:5222", xmpphost = "localhost" }, 403, "loopback" },
      { { target = "example.org:8443" }, 403, "port 8443" },
      { "just a string", 400, "JSON object" },
    }
    for _, c in ipairs(cases) do
      local status, body = s:submit(c[1], "192.0.2.9")
      assert.equal(c[2], status, cjson.encode(c[1]))
      assert.matches(c[3], body.error)
    end
    assert.same({}, s.scans.data)
    assert.same({}, s.index.data)
  end)

  it("limits each client, bounds the queue, shares a scan of the same request", function()
    local s = new_service({ client_limit = 2, queue = 2, concurrent = 1 })
    local a = { s:submit({ target = "one.example" }, "192.0.2.1") }
    assert.equal(202, a[1])
    assert.equal("running", a[2].state)
    assert.equal(202, (s:submit({ target = "two.example" }, "192.0.2.1")))
    local st, body, retry = s:submit({ target = "three.example" }, "192.0.2.1")
    assert.equal(429, st)
    assert.matches("too many scans", body.error)
    assert.is_true(retry > 0)
    -- another client: the queue (one running, one waiting) has room for one more
    assert.equal(202, (s:submit({ target = "three.example" }, "192.0.2.2")))
    st, body = s:submit({ target = "four.example" }, "192.0.2.3")
    assert.equal(429, st)
    assert.matches("queue is full", body.error)
    -- the same request as one waiting: that one
    st, body = s:submit({ target = "TWO.example" }, "192.0.2.4")
    assert.equal(202, st)
    assert.is_true(body.cached)
    assert.equal("queued", s:get(body.id).state)
  end)

  it("marks the scans a restart cut off, once", function()
    local stores = { scans = table_store(), index = table_store() }
    local s = new_service({ concurrent = 1 }, nil, stores)
    local _, a = s:submit({ target = "one.example" }, "192.0.2.1")
    local _, b = s:submit({ target = "two.example" }, "192.0.2.1")
    assert.equal("running", s:get(a.id).state)
    assert.equal("queued", s:get(b.id).state)
    assert.truthy(stores.index.data.in_flight[a.id])
    assert.truthy(stores.index.data.in_flight[b.id])
    local again = new_service({}, nil, stores)
    assert.equal("cut_off", again:get(a.id).state)
    assert.equal("cut_off", again:get(b.id).state)
    assert.matches("restarted", again:get(a.id).error)
    assert.is_nil(stores.index.data.in_flight)
    assert.equal(0, again:recover())
  end)

  it("refuses limits that make no sense", function()
    assert.has_error(function() new_service({ queue = 0 }) end)
    assert.has_error(function() new_service({ colour = 1 }) end)
    assert.has_error(function() new_service({ timeout = "soon" }) end)
  end)
end)

describe("observatory web answers", function()
  local s = new_service()
  local function get(path, query) return web.handle(s, { method = "GET", path = path, query = query }, "/observatory") end

  it("answers unknown paths, methods and ids with a page or JSON and the right status", function()
    local r = get("/nothing/here")
    assert.equal(404, r.status)
    assert.matches("^text/html", r.headers["Content-Type"])
    assert.truthy(r.headers["Content-Security-Policy"])
    r = get("/api/nothing")
    assert.equal(404, r.status)
    assert.equal("application/json", r.headers["Content-Type"])
    assert.equal(404, get("/scan/nope").status)
    assert.equal(404, get("/api/scans/../../x").status)
    assert.equal(405, web.handle(s, { method = "DELETE", path = "/" }, "/observatory").status)
    assert.equal(400, get("/badge/%3Cb%3E.svg").status)
    r = get("/badge/unknown.example.svg")
    assert.equal(404, r.status)
    assert.equal("image/svg+xml", r.headers["Content-Type"])
    assert.equal(200, get("/").status)
    assert.equal(200, get("/directory", "sort=grade&order=desc").status)
    assert.equal("[]", get("/api/directory").body)
  end)

  it("answers bad bodies with 400 and 413, a form with the page again", function()
    local r = web.handle(s, { method = "POST", path = "/api/scans", body = "[1,2" }, "/observatory")
    assert.equal(400, r.status)
    r = web.handle(s, { method = "POST", path = "/api/scans", body = ("x"):rep(5000) }, "/observatory")
    assert.equal(413, r.status)
    r = web.handle(s, { method = "POST", path = "/scan", body = "target=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
      ip = "192.0.2.1" }, "/observatory")
    assert.equal(400, r.status)
    assert.falsy(r.body:find("<script>", 1, true))
    assert.truthy(r.body:find("&lt;script&gt;", 1, true))
    r = web.handle(s, { method = "POST", path = "/scan", body = "target=scan.example&kind=c2s", ip = "192.0.2.1" },
      "/observatory")
    assert.equal(303, r.status)
    assert.matches("^/observatory/scan/id%d+$", r.headers.Location)
  end)

  it("reads forms as browsers send them", function()
    assert.same({ target = "a b", kind = "c2s", x = "=&" }, web.form("target=a+b&kind=c2s&x=%3D%26&target=other"))
  end)
end)
