-- The resolver of tlsharden.dns against real servers on loopback: dnsmasq
-- (Debian) for SRV, A/AAAA, TLSA, NXDOMAIN, REFUSED and truncation;
-- unbound (Debian) validating a zone signed here for the authenticated
-- (AD) answers and for SERVFAIL on a zone whose signatures no longer fit;
-- a bound UDP socket that never answers for timeouts.
local wire = require "tlsharden.wire"
local socket = require "socket"
local core = require "tlsharden.core"
local dns = require "tlsharden.scan.dns"
local dnssec = require "tlsharden.scan.dnssec"
local servers = require "spec.helpers.dns_servers"
local pki = require "spec.helpers.pki"

local TLSA_HEX = ("ab"):rep(32)

describe("resolver", function()
  local dm, dm6
  setup(function()
    local many = {}
    for i = 1, 30 do
      many[i] = ("_many._tcp.example.test,target-number-%02d.example.test,%d,1,1"):format(i, 6000 + i)
    end
    local srv = {
      "_xmpp-client._tcp.example.test,c1.example.test,5222,10,60",
      "_xmpp-client._tcp.example.test,c2.example.test,5224,10,40",
      "_xmpps-client._tcp.example.test,c1.example.test,5223,5,0",
      "_xmpp-server._tcp.example.test,s1.example.test,5269,0,0",
      "_xmpp-client._tcp.closed.example.test",   -- no target: "." (no service)
      "_xmpp-server._tcp.closed.example.test",
      "_xmpp-client._tcp.lost.example.test,gone.example.test,5222,0,0",
    }
    for _, m in ipairs(many) do srv[#srv + 1] = m end
    dm = servers.dnsmasq {
      srv = srv,
      hosts = { "c1.example.test,127.0.0.1,::1", "c2.example.test,127.0.0.2", "s1.example.test,::1",
        "fallback.example.test,127.0.0.3,::1" },
      rr = { "_5222._tcp.c1.example.test,52,030101" .. TLSA_HEX },
      txt = { "t.example.test,hello,world" },
      extra = { "--local=/example.test/" },
    }
    dm6 = servers.dnsmasq { host = "::1", hosts = { "v6.example.test,127.0.0.7" }, extra = { "--local=/example.test/" } }
  end)
  teardown(function()
    if dm then dm.stop() end
    if dm6 then dm6.stop() end
  end)

  local function resolver(opts)
    local o = { resolver = dm.address, timeout = 2 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return dns.resolver(o)
  end

  it("parses what dnsmasq sends: flags, the answer and the addresses it adds", function()
    local q = wire.dns_query("_xmpp-client._tcp.example.test", "SRV", 4242)
    local bytes = assert(dns.socket_exchange { host = dm.host, port = dm.port, family = "inet", transport = "udp",
      packet = q, timeout = 2, accept = function(b) return dns.answers_query(q, b) end })
    local m = assert(wire.dns_parse(bytes))
    assert.equals(4242, m.id)
    assert.is_true(m.flags.qr and m.flags.aa and m.flags.rd)
    assert.is_false(m.flags.ad)
    assert.equals(2, #m.answers)
    local extra = {}
    for _, rr in ipairs(m.additional) do if rr.address then extra[#extra + 1] = rr.name .. " " .. rr.address end end
    table.sort(extra)
    assert.same({ "c1.example.test 127.0.0.1", "c1.example.test ::1", "c2.example.test 127.0.0.2" }, extra)
    assert.equals("OPT", m.additional[#m.additional].type)
  end)

  it("orders SRV records by priority, then by weight with the random source given", function()
    local r = resolver { random = function(m) return m end }  -- always the last of the running sum
    local s = r:srv("xmpp-client", "tcp", "example.test")
    assert.is_nil(s.failure)
    assert.equals("NOERROR", s.rcode)
    assert.is_false(s.authenticated)
    assert.equals("_xmpp-client._tcp.example.test", s.name)
    assert.same({ "c2.example.test", "c1.example.test" }, { s.records[1].target, s.records[2].target })
    r = resolver { random = function() return 0 end }           -- always the first
    s = r:srv("_xmpp-client", "_tcp", "example.test")
    assert.same({ "c1.example.test", "c2.example.test" }, { s.records[1].target, s.records[2].target })
    assert.same({ 10, 60, 5222 }, { s.records[1].priority, s.records[1].weight, s.records[1].port })
  end)

  it("weights the random order as RFC 2782 says", function()
    local records = { { priority = 1, weight = 60, target = "a" }, { priority = 1, weight = 40, target = "b" },
      { priority = 0, weight = 0, target = "first" }, { priority = 2, weight = 0, target = "z" },
      { priority = 2, weight = 0, target = "y" } }
    local firsts = {}
    for pick = 0, 100 do
      local o = dns.order_srv(records, function(m) return pick % (m + 1) end)
      assert.equals("first", o[1].target)
      assert.same({ 2, 2 }, { o[4].priority, o[5].priority })
      firsts[o[2].target] = (firsts[o[2].target] or 0) + 1
    end
    -- picks 0..60 choose a (weight 60), 61..100 b (weight 40)
    assert.same({ a = 61, b = 40 }, firsts)
  end)

  it("says 'no service' for a lone '.' target and falls back to the domain without SRV", function()
    local r = resolver()
    local s = r:srv("xmpp-client", "tcp", "closed.example.test")
    assert.is_true(s.no_service)
    assert.same({}, s.records)
    assert.is_nil(s.failure)
    assert.same({ "info", "NO_SERVICE" }, { s.problems[1].severity, s.problems[1].code })
    local e = r:xmpp_endpoints("closed.example.test")
    assert.same({}, e.endpoints)
    e = r:xmpp_endpoints("fallback.example.test", { kind = "c2s" })
    assert.equals(2, #e.endpoints)
    for _, ep in ipairs(e.endpoints) do
      assert.same({ "c2s", "starttls", "fallback.example.test", 5222, "fallback" }, { ep.kind, ep.tls, ep.host, ep.port, ep.source })
      assert.is_nil(ep.srv)
    end
    assert.same({ "127.0.0.3", "::1" }, { e.endpoints[1].address, e.endpoints[2].address })
    e = r:xmpp_endpoints("fallback.example.test", { kind = "s2s" })
    assert.same({ 5269, 5269 }, { e.endpoints[1].port, e.endpoints[2].port })
  end)

  it("lists every XMPP endpoint: SRV targets and their addresses, direct TLS and STARTTLS mixed", function()
    local r = resolver { random = function() return 0 end }
    local e = r:xmpp_endpoints("example.test")
    local seen = {}
    for _, ep in ipairs(e.endpoints) do
      seen[#seen + 1] = table.concat({ ep.kind, ep.tls, ep.host, ep.address, ep.port, ep.srv.service }, " ")
      assert.equals("srv", ep.source)
      assert.equals(ep.port, ep.srv.port)
      assert.is_false(ep.srv_authenticated)
    end
    assert.same({
      "c2s direct c1.example.test 127.0.0.1 5223 _xmpps-client._tcp",   -- priority 5
      "c2s direct c1.example.test ::1 5223 _xmpps-client._tcp",
      "c2s starttls c1.example.test 127.0.0.1 5222 _xmpp-client._tcp",  -- priority 10, weight 60
      "c2s starttls c1.example.test ::1 5222 _xmpp-client._tcp",
      "c2s starttls c2.example.test 127.0.0.2 5224 _xmpp-client._tcp",
      "s2s starttls s1.example.test ::1 5269 _xmpp-server._tcp",
    }, seen)
    assert.same({}, e.problems)
    assert.truthy(e.lookups["_xmpps-server._tcp.example.test"])
    assert.equals("NXDOMAIN", e.lookups["_xmpps-server._tcp.example.test"].failure.code)
    -- a target without an address is a problem, not an endpoint
    e = r:xmpp_endpoints("lost.example.test", { kind = "c2s" })
    assert.same({}, e.endpoints)
    assert.equals("NXDOMAIN", e.problems[1].code)
    assert.equals("gone.example.test", e.problems[1].host)
  end)

  it("looks up A and AAAA, TLSA, and TXT through query", function()
    local r = resolver()
    local a = r:addresses("c1.example.test")
    assert.same({ { address = "127.0.0.1", family = "inet" }, { address = "::1", family = "inet6" } }, a.addresses)
    assert.is_false(a.authenticated)
    assert.is_nil(a.failure)
    local t = r:tlsa(5222, "tcp", "c1.example.test")
    assert.equals("_5222._tcp.c1.example.test", t.name)
    assert.same({ 3, 1, 1, TLSA_HEX }, { t.records[1].usage, t.records[1].selector, t.records[1].matching_type, t.records[1].data })
    assert.equals("helloworld", r:query("t.example.test", "TXT").records[1].text)
    local none = r:tlsa(5269, "tcp", "c1.example.test")
    assert.same({}, none.records)  -- no TLSA records: no DANE
    assert.equals("NXDOMAIN", none.failure.code)
    local nodata = r:query("c2.example.test", "TXT")  -- the name exists, the type does not
    assert.same({}, nodata.records)
    assert.is_nil(nodata.failure)
    assert.equals("NOERROR", nodata.rcode)
  end)

  it("reports NXDOMAIN, REFUSED, an unreachable and a silent server as failures", function()
    local r = resolver()
    local nx = r:addresses("nothing.example.test")
    assert.equals("NXDOMAIN", nx.failure.code)
    assert.equals("NXDOMAIN", nx.results.A.rcode)
    local refused = r:srv("xmpp-client", "tcp", "elsewhere.org")
    assert.equals("REFUSED", refused.failure.code)
    assert.matches("REFUSED", refused.failure.message, 1, true)
    local closed = dns.resolver { resolver = "127.0.0.1:" .. servers.free_port("127.0.0.1"), timeout = 1, attempts = 1 }
    assert.equals("UNREACHABLE", closed:tlsa(443, "tcp", "x.example.test").failure.code)
    local silent = assert(socket.udp())
    assert(silent:setsockname("127.0.0.1", 0))
    local _, port = silent:getsockname()
    local quiet = dns.resolver { resolver = "127.0.0.1:" .. port, timeout = 0.2, attempts = 2 }
    local t = quiet:srv("xmpp-client", "tcp", "example.test")
    assert.equals("TIMEOUT", t.failure.code)
    assert.matches("did not answer _xmpp-client._tcp.example.test SRV in 0.2s (2 attempts)", t.failure.message, 1, true)
    assert.same({}, t.records)
    -- the next server is tried when one does not answer
    local two = dns.resolver { resolver = { "127.0.0.1:" .. port, dm.address }, timeout = 1, attempts = 1 }
    local second = two:srv("xmpp-client", "tcp", "example.test")
    silent:close()
    assert.equals(2, #second.records)
    assert.equals(dm.address, second.server)
  end)

  it("bounds a whole lookup, and a scan's discovery, by one timeout when the nameservers are silent", function()
    local a, b = assert(socket.udp()), assert(socket.udp())
    assert(a:setsockname("127.0.0.1", 0))
    assert(b:setsockname("127.0.0.1", 0))
    local pa, pb = select(2, a:getsockname()), select(2, b:getsockname())
    local both = { "127.0.0.1:" .. pa, "127.0.0.1:" .. pb }
    local r = dns.resolver { resolver = both, timeout = 0.3, attempts = 2 }
    r:bound(0.3)
    local t = r:srv("xmpp-client", "tcp", "example.test")
    assert.equals("TIMEOUT", t.failure.code)
    -- the first server used the whole bound: the rest were not asked
    assert.matches("the lookup's 0.3s ran out", t.failure.message, 1, true)
    r:bound(nil)
    local ok, err = pcall(r.bound, r, "soon")
    assert.is_false(ok)
    assert.matches("tlsharden.scan.dns.bound: bad argument #1 'seconds': expected seconds above 0, or nil, got 'soon'",
      tostring(err), 1, true)
    assert.matches("did not answer", r:srv("xmpp-client", "tcp", "example.test").failure.message, 1, true)
    -- a scan of a domain: every SRV and address lookup within its one timeout
    local result = require("tlsharden").scan("example.test", { resolver = both, timeout = 0.3 })
    a:close()
    b:close()
    local ran_out = false
    for _, p in ipairs(result.problems) do
      ran_out = ran_out or (p.message:find("ran out", 1, true) ~= nil)
    end
    assert.is_true(ran_out)
    assert.equals(0, #result.endpoints)
  end)

  it("retries over TCP when the UDP answer is truncated", function()
    local r = resolver { edns = false }
    local s = r:srv("many", "tcp", "example.test")
    assert.is_true(s.truncated)
    assert.equals("tcp", s.transport)
    assert.equals(30, #s.records)
    -- dnsmasq saw the query twice: over UDP, then over TCP
    local _, asked = dm.log():gsub("query%[SRV%] _many%._tcp%.example%.test from", "")
    assert.equals(2, asked)
    local always = resolver { tcp = true }
    local t = always:addresses("c2.example.test")
    assert.equals("tcp", t.results.A.transport)
    assert.equals("127.0.0.2", t.addresses[1].address)
  end)

  it("talks to a resolver on an IPv6 literal", function()
    local r = dns.resolver { resolver = dm6.address, timeout = 2 }
    assert.equals("[::1]:" .. dm6.port, dm6.address)
    local a = r:addresses("v6.example.test")
    assert.equals("127.0.0.7", a.addresses[1].address)
    assert.equals(dm6.address, a.results.A.server)
  end)

  it("runs its I/O through the exchange given, inside a coroutine", function()
    local seen = {}
    local r = resolver { exchange = function(req) return coroutine.yield(req) end }
    local co = coroutine.create(function() return r:xmpp_endpoints("example.test", { kind = "c2s" }) end)
    local ok, req = coroutine.resume(co)
    while coroutine.status(co) == "suspended" do
      assert.is_true(ok, req)
      seen[#seen + 1] = req.transport .. " " .. req.host .. ":" .. req.port
      ok, req = coroutine.resume(co, dns.socket_exchange(req))
    end
    assert.is_true(ok, req)
    assert.equals(5, #req.endpoints)
    -- two SRV lookups, then A and AAAA for each of the two targets
    assert.equals(6, #seen)
    assert.equals("udp " .. dm.address, seen[1])
  end)

  it("reads its servers from a resolv.conf", function()
    local dir = pki.tmpdir()
    local path = pki.write(dir .. "/resolv.conf",
      "# comment\nsearch example.test\nnameserver 127.0.0.53\nnameserver ::1 # local\nnameserver bogus\noptions edns0\n")
    local r = dns.resolver { resolv_conf = path }
    pki.cleanup(dir)
    assert.same({ { host = "127.0.0.53", port = 53, family = "inet" }, { host = "::1", port = 53, family = "inet6" } }, r.servers)
    assert.same({ "10.0.0.1", "fe80::1%eth0" }, dns.parse_resolv_conf("nameserver 10.0.0.1\n  nameserver\tfe80::1%eth0\n"))
  end)

  it("refuses bad options and arguments, naming them", function()
    local cases = {
      { function() dns.resolver { resolver = "1.2.3" } end, "tlsharden.scan.dns.resolver: bad option 'resolver': item 1: expected an IPv4 or IPv6 address" },
      { function() dns.resolver { resolver = "127.0.0.1:0" } end, "port out of range" },
      { function() dns.resolver { resolver = "[::1]:70000" } end, "port out of range" },
      { function() dns.resolver { resolver = "1:2:3:4:5:6:7:8:9" } end, "not an IPv6 address" },
      { function() dns.resolver { resolver = {} } end, "expected an address string or a list" },
      { function() dns.resolver { bogus = 1 } end, "tlsharden.scan.dns.resolver: bad argument #1 'opts': unknown option 'bogus'" },
      { function() dns.resolver { timeout = -1 } end, "bad option 'timeout': expected a number from" },
      { function() dns.resolver { exchange = "x" } end, "bad option 'exchange': expected a function" },
      { function() dns.resolver { resolv_conf = "/nonexistent/resolv.conf" } end, "cannot read '/nonexistent/resolv.conf'" },
      { function() dns.resolver "x" end, "bad argument #1 'opts': expected a table, got 'x'" },
      { function() resolver():srv("xmpp client", "tcp", "x") end, "tlsharden.scan.dns.srv: bad argument #1 'service'" },
      { function() resolver():srv("xmpp-client", "tcp", "a..b") end, "tlsharden.scan.dns.srv: bad argument 'domain': empty label" },
      { function() resolver():srv("xmpp-client", "tcp", nil) end, "tlsharden.scan.dns.srv: bad argument #3 'domain'" },
      { function() resolver():tlsa(0, "tcp", "x") end, "tlsharden.scan.dns.tlsa: bad argument #1 'port'" },
      { function() resolver():addresses(("a"):rep(64)) end, "tlsharden.scan.dns.addresses: bad argument 'name': label of 64 bytes" },
      { function() resolver():query("x.org", "NOPE") end, "tlsharden.scan.dns.query: bad argument #2 'qtype'" },
      { function() resolver():xmpp_endpoints("x.org", { kind = "x" }) end, "bad option 'kind': expected 'c2s' or 's2s'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(c[1])
      assert.is_false(ok, c[2])
      assert.matches(c[2], err, 1, true)
    end
  end)
end)

describe("resolver against a validating unbound", function()
  if not (servers.have("unbound") and servers.have("ldns-signzone")) then
    pending("unbound and ldnsutils are not installed (scripts/install-deps.sh installs them)")
    return
  end
  local ub, bogus
  setup(function()
    local records = { "_xmpp-client._tcp IN SRV 0 5 5222 xmpp.example.test.", "xmpp IN A 127.0.0.1",
      "xmpp IN AAAA ::1", "_5222._tcp.xmpp IN TLSA 3 1 1 " .. TLSA_HEX }
    ub = servers.unbound { zone = "example.test", records = records }
    bogus = servers.unbound { zone = "example.test", records = records, tamper = function(text)
      -- change the data under its signature
      return (text:gsub("(xmpp%.example%.test%.%s+%d+%s+IN%s+A%s+)127%.0%.0%.1", "%1127.0.0.9"))
    end }
  end)
  teardown(function()
    if ub then ub.stop() end
    if bogus then bogus.stop() end
  end)

  it("keeps the AD bit of a validating resolver as ad, and trusts only its own validation", function()
    local plain = dns.resolver { resolver = ub.address, timeout = 3 }
    local p = plain:srv("xmpp-client", "tcp", "example.test")
    assert.same({ true, false, "indeterminate" }, { p.ad, p.authenticated, p.dnssec.status })
    -- validated here, from the zone's own trust anchor
    local anchor = pki.write(pki.tmpdir() .. "/anchor.ds", ub.ds)
    local v = assert(dnssec.new(plain.servers, anchor))
    local r = dns.resolver { resolver = ub.address, timeout = 3, validator = v }
    local s = r:srv("xmpp-client", "tcp", "example.test")
    assert.is_true(s.authenticated, ub.log())
    assert.equals("secure", s.dnssec.status)
    assert.equals("xmpp.example.test", s.records[1].target)
    local a = r:addresses("xmpp.example.test")
    assert.is_true(a.authenticated)
    assert.equals(2, #a.addresses)
    local t = r:tlsa(5222, "tcp", "xmpp.example.test")
    assert.is_true(t.authenticated)
    assert.equals(TLSA_HEX, t.records[1].data)
    -- the stub asks with the DO bit: the signatures come along
    local sigs = 0
    for _, rr in ipairs(plain:tlsa(5222, "tcp", "xmpp.example.test").message.answers) do
      if rr.type == "RRSIG" then sigs = sigs + 1 end
    end
    assert.equals(1, sigs)
    local nx = r:addresses("nothing.example.test")
    assert.equals("NXDOMAIN", nx.failure.code)
    assert.is_true(nx.results.A.authenticated)  -- an authenticated denial
    assert.equals("secure", nx.results.A.dnssec.status)
    local e = r:xmpp_endpoints("example.test", { kind = "c2s" })
    assert.is_true(e.endpoints[1].srv_authenticated and e.endpoints[1].address_authenticated)
  end)

  it("reports SERVFAIL when the signatures do not fit the data", function()
    local r = dns.resolver { resolver = bogus.address, timeout = 3 }
    local a = r:query("xmpp.example.test", "A")
    assert.equals("SERVFAIL", a.failure.code)
    assert.same({}, a.records)
    assert.is_false(a.authenticated)
    -- unbound names the reason in an extended DNS error (RFC 8914)
    assert.matches("extended error 6", a.failure.message, 1, true)
    -- what the signatures still cover validates (the resolver's AD bit)
    assert.is_true(r:tlsa(5222, "tcp", "xmpp.example.test").ad)
  end)
end)
