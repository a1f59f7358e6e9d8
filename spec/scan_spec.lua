-- tlsharden.scan and `tlsharden scan` against real servers on loopback:
-- Debian's Prosody 0.12 and Prosody 13 with their default TLS settings and
-- with a weak configuration (compared with sslscan on the same ports and
-- with tlsharden.audit of the same configuration file), dnsmasq serving
-- SRV records, a validating unbound for DANE, openssl s_server and
-- gnutls-serv, and spec/helpers/responder.lua for SSLv2, SSL 3.0, export
-- suites and for peers that are broken or no XMPP server at all. Every
-- fault case runs with a short timeout.
local socket = require "socket"
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"
local problem_walk = require "spec.helpers.problem_walk"
local prosody = require "spec.helpers.prosody"
local servers = require "spec.helpers.servers"
local dns_servers = require "spec.helpers.dns_servers"
local sslscan = require "spec.helpers.sslscan"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local run = require("spec.helpers.cli").run
local net = require "tlsharden.scan.net"
local scan = require "tlsharden.scan"

local RESPONDER = "lua5.4 spec/helpers/responder.lua {port} "
local WEAK_SSL = { protocol = "tlsv1+", ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" }

local function sorted_ids(suites)
  local t = {}
  for i, s in ipairs(suites or {}) do t[i] = type(s) == "table" and s.id or s end
  table.sort(t)
  return t
end

local function codes(list)
  local set = {}
  for _, p in ipairs(list) do set[p.code] = p end
  return set
end

local function against(server, fn)
  local ok, err = pcall(fn, server)
  server.stop()
  if not ok then error(err, 0) end
end

-- One HOST:PORT scan; returns the result and its one endpoint.
local function scan_port(port, opts)
  local o = { xmpphost = "localhost", timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local r = tlsharden.scan("127.0.0.1:" .. port, o)
  assert.equal(1, #r.endpoints)
  return r, r.endpoints[1]
end

-- dnsmasq on a port that was free a moment ago; once more when another
-- process took the port in between.
local function dnsmasq(opts)
  local ok, server = pcall(dns_servers.dnsmasq, opts)
  if ok then return server end
  return dns_servers.dnsmasq(opts)
end

-- A JSON round trip keeps every list a list.
local function json_round_trip(r)
  local text = json.encode(r)
  assert.is_nil(text:find("[\0-\31]"), "control bytes in the JSON text")
  return json.decode(text)
end

describe("tlsharden.scan arguments", function()
  local cases = {
    { { nil }, "bad argument #1 'target': expected DOMAIN or HOST:PORT" },
    { { "exa mple.org" }, "bad argument #1 'target': expected DOMAIN or HOST:PORT, without spaces" },
    { { "::1:5222" }, "an IPv6 address needs brackets and a port: [::1]:5222" },
    { { "example.org:99999" }, "port out of range (1-65535)" },
    { { "127.0.0.1" }, "an address needs a port" },
    { { "127.0.0.1:5222" }, "is an address: the XMPP domain (the stream's 'to') must be given as xmpphost" },
    { { "example.org", { bogus = 1 } }, "bad argument #2 'opts': unknown option 'bogus'" },
    { { "example.org", { kind = "c2c" } }, "bad option 'kind': expected 'c2s', 's2s' or 'both', got 'c2c'" },
    { { "example.org", { starttls = "c2s" } }, "bad option 'starttls': is for HOST:PORT targets" },
    { { "example.org", { xmpphost = "x" } }, "bad option 'xmpphost': is for HOST:PORT targets" },
    { { "h.example:5222", { starttls = "tls" } }, "bad option 'starttls': expected 'c2s', 's2s' or 'none', got 'tls'" },
    { { "h.example:5222", { starttls = "c2s", kind = "s2s" } }, "bad option 'starttls': 'c2s' STARTTLS contradicts kind 's2s'" },
    { { "h.example:5222", { timeout = 0 } }, "bad option 'timeout': expected a number from 0.01 to 3600, got 0" },
    { { "h.example:5222", { connections = 2.5 } }, "bad option 'connections': expected a whole number from 1 to 256, got 2.5" },
    { { "h.example:5222", { jobs = 2 } }, "bad argument #2 'opts': unknown option 'jobs'" },
    { { "h.example:5222", { resolver = "not an address" } }, "bad option 'resolver': item 1: expected an IPv4 or IPv6 address" },
    { { "h.example:5222", { cafile = "/nonexistent/ca.pem" } }, "bad option 'cafile': cannot read '/nonexistent/ca.pem'" },
    { { "h.example:5222", { protocols = { "tls1.2" } } }, "bad option 'protocols': item #1: expected sslv2" },
    { { "h.example:5222", { guide = "2020" } }, "bad option 'guide': unknown guide '2020'" },
    { { "h.example:5222", { sni = true } }, "bad option 'sni': expected a host name or false (send none), got true" },
    { { "h.example:5222", { sni = "a b" } }, "bad option 'sni': expected a host name or false (send none), got 'a b'" },
  }
  for _, c in ipairs(cases) do
    it(c[2]:sub(1, 70), function()
      local ok, err = pcall(tlsharden.scan, c[1][1], c[1][2])
      assert.is_false(ok)
      assert.matches("^tlsharden%.scan: ", err)
      assert.matches(c[2], err, 1, true)
    end)
  end

  it("says on the command line what is wrong, with exit code 2", function()
    for _, args in ipairs {
      { "scan" }, { "scan", "127.0.0.1:5222" }, { "scan", "example.org", "--timeout", "soon" },
      { "scan", "example.org", "--connections", "0" }, { "scan", "example.org", "--starttls", "none" },
      { "scan", "a.example", "b.example" }, { "scan", "a.example", "--sni", "b.example", "--no-sni" },
    } do
      local code, out, err = run(table.unpack(args))
      assert.equal(2, code, table.concat(args, " "))
      assert.equal("", out)
      assert.matches("^tlsharden: [^\n]+\n$", err)
      assert.is_nil(err:find("traceback", 1, true))
    end
  end)
end)

describe("tlsharden.scan against peers that are no XMPP server", function()
  local fx
  setup(function() fx = servers.fixtures() end)
  teardown(function() if fx then fx.cleanup() end end)
  local function responder(config) return servers.start(RESPONDER .. sh.quote(config), fx.dir) end

  it("reports a refused port and an unreachable address", function()
    local _, e = scan_port(servers.free_port(), { timeout = 1 })
    assert.same({ "refused", 1 }, { e.status, e.connections })
    assert.matches("connection refused", e.reason, 1, true)
    assert.is_nil(e.grade)
    -- TCP to a multicast address: the kernel refuses it before any packet leaves
    local r = tlsharden.scan("224.0.0.1:5222", { xmpphost = "localhost", timeout = 1 })
    assert.equal("unreachable", r.endpoints[1].status)
    assert.is_nil(r.grade)
  end)

  it("times out on a peer that accepts and never speaks, with STARTTLS and direct TLS", function()
    local listener = assert(socket.bind("127.0.0.1", 0))  -- the kernel completes the connect
    local _, port = listener:getsockname()
    local ok, err = pcall(function()
      for _, st in ipairs { "c2s", "none" } do
        local _, e = scan_port(port, { starttls = st, timeout = 0.5 })
        assert.equal("timeout", e.status, st)
        assert.matches(st == "none" and "no answer to a ClientHello within 0.5s" or "no answer within 0.5s", e.reason, 1, true)
      end
    end)
    listener:close()
    assert(ok, err)
  end)

  it("reports an HTTP server as no XMPP server, before and instead of TLS", function()
    against(responder('{ mode = "http" }'), function(server)
      local _, e = scan_port(server.port, { timeout = 1 })
      assert.same({ "not_xmpp", "the peer answered with HTTP: 'HTTP/1.1 400 Bad Request'" }, { e.status, e.reason })
      _, e = scan_port(server.port, { starttls = "none", timeout = 1 })
      assert.equal("not_xmpp", e.status)
      assert.matches("looks like http", e.reason, 1, true)
    end)
  end)

  it("grades a server without STARTTLS F and names the password sent in clear text", function()
    local features = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
      .. "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
    against(responder(("{ mode = 'xmpp', features = %q }"):format(features)), function(server)
      local r, e = scan_port(server.port, { timeout = 1 })
      assert.equal("no_starttls", e.status)
      assert.same({ false, { "PLAIN" }, true }, { e.xmpp.starttls, e.xmpp.mechanisms_before_tls, e.xmpp.plain_before_tls })
      assert.equal("F", e.grade.grade)
      assert.equal("F", r.grade)
      local c = codes(e.problems)
      assert.equal("error", c.NO_STARTTLS.severity)
      assert.equal("error", c.PLAIN_AUTH_UNENCRYPTED.severity)
      local code, out = run("scan", "127.0.0.1:" .. server.port, "--xmpphost", "localhost", "--timeout", "1", "--quiet")
      assert.equal(1, code)
      assert.matches("status no_starttls", out, 1, true)
    end)
  end)

  it("grades F an XMPP stream that lets no client into TLS; a port whose XMPP was never seen has no grade", function()
    local fx = servers.fixtures()
    local ok, err = pcall(function()
      for _, c in ipairs { { "failure", "tls_failed" }, { "no_tls", "tls_failed" } } do
        local s = servers.start(("lua5.4 spec/helpers/starttls_responder.lua %s {port} %s %s"):format(c[1],
          fx.rsa.cert, fx.rsa.key), fx.dir)
        local ok2, err2 = pcall(function()
          local _, e = scan_port(s.port, { starttls = "c2s", timeout = 1 })
          assert.equal(c[2], e.status, c[1] .. ": " .. tostring(e.reason))
          assert.equal("F", e.grade and e.grade.grade, c[1])
        end)
        s.stop()
        assert(ok2, err2)
      end
    end)
    fx.cleanup()
    assert(ok, err)
  end)

  describe("turns a broken TLS peer into a status and problem records", function()
    -- [4]: run the command line too
    local cases = {
      { "garbage", "tls_failed", "NOT_TLS", true },
      { "close_mid", "tls_failed", "TRUNCATED" },
      { "huge_record", "tls_failed", "RECORD_TOO_LONG", true },
      { "close", "tls_failed", nil },
      { "truncated", "tls_failed", "TIMEOUT" },
      { "slow", "tls_failed", "TIMEOUT" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        against(responder(('{ mode = %q }'):format(c[1])), function(server)
          local _, e = scan_port(server.port, { starttls = "none", timeout = 0.5 })
          assert.equal(c[2], e.status, e.reason)
          assert.is_string(e.reason)
          if c[3] then assert.is_truthy(codes(e.problems)[c[3]], c[3]) end
          assert.is_nil(e.grade)
          json_round_trip(e)
          if c[4] then
            -- the command line: exit 1, no traceback
            local code, _, err = run("scan", "127.0.0.1:" .. server.port, "--xmpphost", "localhost",
              "--starttls", "none", "--timeout", "0.5")
            assert.equal(1, code)
            assert.is_nil(err:find("traceback", 1, true))
          end
        end)
      end)
    end
  end)
end)

describe("tlsharden.scan against TLS servers that serve no XMPP", function()
  local fx
  setup(function() fx = servers.fixtures() end)
  teardown(function() if fx then fx.cleanup() end end)
  local function der_file(cert)
    local path = cert.cert .. ".der"
    sh.run(("openssl x509 -in %s -outform DER -out %s"):format(sh.quote(cert.cert), sh.quote(path)))
    return path
  end
  local function direct(port) return scan_port(port, { starttls = "none", xmpphost = "example.com", timeout = 1 }) end

  it("grades openssl s_server from what it serves, and finds no XMPP after TLS", function()
    against(servers.openssl(fx.dir, fx.rsa, "-tls1_2 -cipher AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"), function(server)
      local _, e = direct(server.port)
      assert.equal("not_xmpp", e.status)
      assert.matches("TLS works, but no XMPP stream after it", e.reason, 1, true)
      assert.same({ "tlsv1_2" }, e.probe.versions)
      local theirs = sslscan.scan("127.0.0.1:" .. server.port)
      assert.same(theirs.versions, e.probe.versions)
      assert.same(sorted_ids(theirs.suites.tlsv1_2), sorted_ids(e.probe.protocols.tlsv1_2.suites))
      assert.is_truthy(codes(e.problems).NO_FORWARD_SECRECY)
      -- self-signed for example.com: untrusted, and the names fit
      assert.is_false(e.chain.trusted)
      assert.equal("T", e.grade.grade)
      assert.equal("A+", e.grade.grade_if_trusted)
    end)
  end)

  it("reads a TLS 1.3-only server's chain from the full handshake", function()
    against(servers.openssl(fx.dir, fx.ecdsa, "-tls1_3"), function(server)
      local _, e = direct(server.port)
      assert.same({ "tlsv1_3" }, e.probe.versions)
      assert.equal(0, #e.probe.chains)  -- TLS 1.3 sends it encrypted: the probe sees none
      assert.same({ true, "TLSv1.3" }, { e.handshake.ok, e.handshake.protocol })
      assert.same({ "CN=example.com", "EC", 256 }, { e.chain.certs[1].subject, e.facts.key_type, e.facts.key_bits })
      assert.is_nil(codes(e.problems).NO_CHAIN)
      assert.same({ "T", "A+" }, { e.grade.grade, e.grade.grade_if_trusted })
    end)
  end)

  it("finds RC4 and 3DES on gnutls-serv and caps the grade at C", function()
    against(servers.gnutls(fx.dir, fx.rsa, "NORMAL:+ARCFOUR-128:+3DES-CBC:+VERS-TLS1.0:+VERS-TLS1.1"), function(server)
      local _, e = direct(server.port)
      local c = codes(e.problems)
      assert.is_truthy(c.WEAK_SUITE)
      local weak = {}
      for _, f in ipairs(e.problems) do
        if f.code == "WEAK_SUITE" then weak[#weak + 1] = f.message end
      end
      local text = table.concat(weak, "\n")
      assert.matches("RC4-SHA is accepted", text, 1, true)
      assert.matches("DES-CBC3-SHA is accepted", text, 1, true)
      assert.equal("C", e.grade.grade_if_trusted or e.grade.grade)
      local theirs = sslscan.scan("127.0.0.1:" .. server.port)
      assert.same(theirs.versions, e.probe.versions)
      for _, p in ipairs(e.probe.versions) do
        assert.same(sorted_ids(theirs.suites[p]), sorted_ids(e.probe.protocols[p].suites), p)
      end
    end)
  end)

  it("grades SSL 3.0 with export suites F, from the chain the responder sent", function()
    local config = ([[{ versions = { "sslv3", "tlsv1" }, cert = %q, secure_renegotiation = true,
      fallback_scsv = true, suites = { { 0x0003, "rsa_export" }, { 0x0004, "rsa" }, { 0x002F, "rsa" } } }]])
      :format(der_file(fx.rsa))
    against(servers.start(RESPONDER .. sh.quote(config), fx.dir), function(server)
      local _, e = direct(server.port)
      assert.same({ "sslv3", "tlsv1" }, e.probe.versions)
      assert.equal("F", e.grade.grade_if_trusted or e.grade.grade)
      assert.is_false(e.handshake.ok)  -- OpenSSL 3 speaks neither: the probe's chain is used
      -- what follows TLS cannot be seen: no "ok", whatever OpenSSL speaks
      assert.equal("tls_only", e.status)
      assert.matches("TLS answers (SSL 3.0, TLS 1.0), but no full handshake", e.reason, 1, true)
      assert.equal("CN=example.com", e.chain.certs[1].subject)
      local c = codes(e.problems)
      assert.is_truthy(c.OLD_PROTOCOL)
      assert.is_truthy(c.HANDSHAKE_FAILED)
      local reasons = table.concat((function()
        local t = {}
        for i, cap in ipairs(e.grade.caps) do t[i] = cap.reason end
        return t
      end)(), "\n")
      assert.matches("EXP-RC4-MD5 is an EXPORT suite", reasons, 1, true)
    end)
  end)

  it("grades SSLv2 F", function()
    local config = ('{ mode = "sslv2", cert = %q, sslv2_kinds = { 0x010080, 0x020080 } }'):format(der_file(fx.rsa))
    against(servers.start(RESPONDER .. sh.quote(config), fx.dir), function(server)
      local _, e = direct(server.port)
      assert.same({ "sslv2" }, e.probe.versions)
      assert.equal("tls_only", e.status)
      assert.equal("vulnerable", e.vulnerabilities.drown.status)
      assert.equal("F", e.grade.grade_if_trusted or e.grade.grade)
      assert.matches("SSL 2.0 is accepted", codes(e.problems).OLD_PROTOCOL.message, 1, true)
    end)
  end)
end)

-- The services of the offline audit that a port serves.
local AUDIT_SERVICE = { c2s = "c2s", s2s = "s2s_in", direct = "c2s_direct_tls" }

local function audit_grades(server)
  local report = tlsharden.audit(server.config, { cafile = server.ca })
  local out = {}
  for _, h in ipairs(report.hosts) do
    if h.host == "localhost" then
      for _, s in ipairs(h.services) do out[s.service] = s.grade end
    end
  end
  return out
end

prosody.each_version(describe, pending, "tlsharden.scan against Prosody", function(v)
  local default, weak
  setup(function()
    default = prosody.start { version = v.name, hosts = { "localhost", "example.test" },
      global = { interfaces = { "127.0.0.1", "::1" }, local_interfaces = { "127.0.0.1", "::1" } } }
    weak = prosody.start { version = v.name, key_kind = "rsa2048", global = { ssl = WEAK_SSL } }
  end)
  teardown(function()
    if default then default.stop() end
    if weak then weak.stop() end
  end)

  local function ports(server)
    return { { "c2s", server.ports.c2s, "c2s" }, { "s2s", server.ports.s2s, "s2s" },
      { "direct", server.ports.c2s_direct_tls, "none" } }
  end

  for _, which in ipairs { "default", "weak" } do
    it(("finds what sslscan finds and grades as the audit does (%s configuration)"):format(which), function()
      local server = which == "default" and default or weak
      local audited = audit_grades(server)
      for _, p in ipairs(ports(server)) do
        local _, e = scan_port(p[2], { starttls = p[3], cafile = server.ca })
        assert.equal("ok", e.status, e.reason)
        local theirs = sslscan.scan("localhost:" .. p[2], { starttls = p[3] ~= "none" and p[3] or nil })
        assert.same(theirs.versions, e.probe.versions, p[1])
        for _, proto in ipairs(e.probe.versions) do
          assert.same(sorted_ids(theirs.suites[proto]), sorted_ids(e.probe.protocols[proto].suites), p[1] .. " " .. proto)
        end
        local a = audited[AUDIT_SERVICE[p[1]]]
        assert.same({ a.grade, a.score, a.caps }, { e.grade.grade, e.grade.score, e.grade.caps }, p[1])
        -- what the audit assumes of an OpenSSL 3 server, observed
        assert.same({ false, true }, { e.facts.compression, e.facts.secure_renegotiation }, p[1])
        assert.is_true(e.facts.fallback_scsv ~= false, p[1])
        assert.is_true(e.chain.trusted)
      end
    end)
  end

  it("reads the XMPP features before and after TLS", function()
    local _, c2s = scan_port(default.ports.c2s, { cafile = default.ca })
    local x = c2s.xmpp
    assert.same({ true, true, {}, false }, { x.starttls, x.starttls_required, x.mechanisms_before_tls, x.plain_before_tls })
    assert.is_truthy(table.concat(x.mechanisms_after_tls, " "):find("SCRAM-SHA-1", 1, true))
    assert.is_truthy(table.concat(x.mechanisms_after_tls, " "):find("PLAIN", 1, true))
    assert.same({}, c2s.problems)
    -- an empty list is a JSON list: one JSON line per endpoint keeps its shape
    local text = json.encode(c2s)
    for _, field in ipairs { "caps", "warnings", "problems", "srv_ids", "mechanisms_before_tls" } do
      assert.matches('"' .. field .. '":%[', text, 1, false)
    end
    local _, s2s = scan_port(default.ports.s2s, { starttls = "s2s", cafile = default.ca })
    assert.same({ true, true, false }, { s2s.xmpp.starttls_required, s2s.xmpp.dialback, s2s.xmpp.external })
    local _, direct = scan_port(default.ports.c2s_direct_tls, { starttls = "none", cafile = default.ca })
    assert.is_nil(direct.xmpp.starttls)
    assert.equal("localhost", direct.xmpp.stream_from)
    assert.is_true(direct.handshake.ok)
    -- the weak configuration's problems
    local _, w = scan_port(weak.ports.c2s, { cafile = weak.ca })
    local c = codes(w.problems)
    assert.equal("error", c.OLD_PROTOCOL.severity)
    assert.equal("error", c.NO_FORWARD_SECRECY.severity)
  end)

  it("prints one problem record everywhere in its JSON", function()
    local code, out = run("--json", "scan", "127.0.0.1:" .. weak.ports.c2s, "--xmpphost", "localhost",
      "--cafile", weak.ca, "--quiet")
    assert.equal(1, code, out)
    local bad, seen = problem_walk.walk(out)
    assert.same({}, bad)
    assert.is_true(seen >= 3, tostring(seen))
    assert.equal("OLD_PROTOCOL", codes(json.decode(out).endpoints[1].problems).OLD_PROTOCOL.code)
  end)

  it("reports a stream error for a host the server does not serve", function()
    local _, e = scan_port(default.ports.c2s, { xmpphost = "nowhere.example" })
    assert.equal("stream_error", e.status)
    assert.equal("host-unknown", e.xmpp.stream_error.condition)
  end)

  it("resolves a domain's SRV records and scans every target and address", function()
    local dead = servers.free_port()
    local dm = dnsmasq {
      srv = {
        ("_xmpp-client._tcp.example.test,xmpp.example.test,%d,0,0"):format(default.ports.c2s),
        ("_xmpp-client._tcp.example.test,dead.example.test,%d,10,0"):format(dead),
        ("_xmpps-client._tcp.example.test,xmpp.example.test,%d,5,0"):format(default.ports.c2s_direct_tls),
        ("_xmpp-server._tcp.example.test,xmpp.example.test,%d,0,0"):format(default.ports.s2s),
      },
      hosts = { "xmpp.example.test,127.0.0.1,::1", "dead.example.test,127.0.0.1" },
      rr = { ("_%d._tcp.xmpp.example.test,52,030101%s"):format(default.ports.c2s, ("ab"):rep(32)) },
      extra = { "--local=/example.test/" },
    }
    local ok, err = pcall(function()
      local r = tlsharden.scan("example.test", { resolver = dm.address, cafile = default.ca, timeout = 5 })
      local seen = {}
      for _, e in ipairs(r.endpoints) do
        seen[#seen + 1] = ("%s %s %s %s %s"):format(e.kind, e.tls, e.host, e.family, e.status)
      end
      assert.same({
        "c2s starttls xmpp.example.test inet ok", "c2s starttls xmpp.example.test inet6 ok",
        "c2s direct xmpp.example.test inet ok", "c2s direct xmpp.example.test inet6 ok",
        "c2s starttls dead.example.test inet refused",
        "s2s starttls xmpp.example.test inet ok", "s2s starttls xmpp.example.test inet6 ok",
      }, seen, "what the scan found: " .. json.encode({ problems = r.problems, dns = r.dns })
        .. "\ndnsmasq's log:\n" .. dm.log():sub(-3000))
      assert.equal("A+", r.grade)
      for _, e in ipairs(r.endpoints) do
        assert.equal("example.test", e.domain)
        if e.status == "ok" then
          assert.is_true(e.chain.trusted)
          assert.equal("A+", e.grade.grade)
          assert.same({ "srv", false }, { e.source, e.srv_authenticated })
        end
      end
      -- dnsmasq does not validate: its TLSA record cannot be used
      local first = r.endpoints[1]
      assert.same({ "insecure", false, 1 }, { first.dane.status, first.dane.authenticated, first.dane.records })
      assert.equal("warning", codes(first.problems).DANE_NOT_AUTHENTICATED.severity)
      assert.equal("none", r.endpoints[3].dane.status)
      local doc = json_round_trip(r)
      assert.same({}, doc.problems)
      assert.equal(2, #doc.dns.srv["_xmpp-client._tcp.example.test"].records)
      assert.equal(7, #doc.endpoints)
      -- and the command line, with one kind only
      local code, out, stderr = run("scan", "example.test", "--kind", "c2s", "--resolver", dm.address, "--cafile", default.ca,
        "--json")
      assert.equal(1, code)  -- the dead target
      local d = json.decode(out)
      assert.same({ "scan", "c2s", 5 }, { d.command, d.kind, #d.endpoints })
      assert.matches("tlsharden scan: example.test: 5 endpoints", stderr, 1, true)
      -- the same from a caller's own scheduler, as a survey runs many scans
      local sched = net.scheduler { per_server = 8, max_connections = 16, timeout = 5 }
      local ctx = { sched = sched, options = { resolver = dm.address, cafile = default.ca }, timeout = 5, connections = 4 }
      local recs, found = {}, nil
      sched:spawn(function()
        found = scan.discover({ target = "example.test" }, "s2s", ctx)
        for _, ep in ipairs(found.endpoints) do recs[#recs + 1] = scan.endpoint(ep, ctx) end
      end)
      sched:run()
      assert.equal(2, #found.endpoints)
      for _, e in ipairs(recs) do
        assert.same({ "example.test", "example.test", "s2s", "ok", "A+" }, { e.target, e.domain, e.kind, e.status,
          e.grade.grade })
      end
    end)
    dm.stop()
    assert(ok, err)
  end)

  it("prints one table per endpoint, exit 0 for a good server and 1 for a weak one", function()
    local code, out, err = run("scan", "127.0.0.1:" .. default.ports.c2s, "--xmpphost", "localhost",
      "--cafile", default.ca, "--no-color")
    assert.equal(0, code, out)
    assert.matches("c2s STARTTLS localhost 127.0.0.1:%d+", out)
    assert.matches("status ok, grade A+", out, 1, true)
    assert.matches("TLS 1.3   yes", out, 1, true)
    assert.matches("XMPP: STARTTLS required", out, 1, true)
    assert.matches("overall grade A+", out, 1, true)
    assert.matches("%[1/1%] c2s STARTTLS localhost 127%.0%.0%.1:%d+: ok, grade A%+", err)
    code, out = run("scan", "127.0.0.1:" .. weak.ports.c2s, "--xmpphost", "localhost", "--cafile", weak.ca, "--quiet")
    assert.equal(1, code)
    assert.matches("error: OLD_PROTOCOL: TLS 1.0 is accepted", out, 1, true)
  end)

  if v.name == "0.12" then
    it("matches the served chain against authenticated TLSA records of the SRV target (RFC 7673)", function()
      if not (dns_servers.have("unbound") and dns_servers.have("ldns-signzone")) then
        pending("unbound and ldnsutils are not installed")
        return
      end
      local q = sh.quote
      local spki = sh.run(("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r")
        :format(q(default.dir .. "/certs/example.test.crt"))):match("^(%x+)")
      local ub = dns_servers.unbound { zone = "example.test", records = {
        ("_xmpp-client._tcp IN SRV 0 0 %d xmpp.example.test."):format(default.ports.c2s),
        ("_xmpps-client._tcp IN SRV 5 0 %d xmpp.example.test."):format(default.ports.c2s_direct_tls),
        "xmpp IN A 127.0.0.1",
        ("_%d._tcp.xmpp IN TLSA 3 1 1 %s"):format(default.ports.c2s, spki),
        ("_%d._tcp.xmpp IN TLSA 3 1 1 %s"):format(default.ports.c2s_direct_tls, ("00"):rep(32)),
      } }
      local ok, err = pcall(function()
        -- validated here from the zone's own trust anchor
        local anchor = pki.write(pki.tmpdir() .. "/anchor.ds", ub.ds)
        local r = tlsharden.scan("example.test", { kind = "c2s", resolver = ub.address, cafile = default.ca,
          trust_anchor = anchor })
        assert.equal(2, #r.endpoints)
        local good, bad = r.endpoints[1], r.endpoints[2]
        assert.same({ "starttls", true, "valid", true }, { good.tls, good.srv_authenticated, good.dane.status,
          good.dane.authenticated })
        assert.same({ "DANE-EE" }, { good.dane.matches[1].usage_name })
        assert.same({ "direct", "invalid" }, { bad.tls, bad.dane.status })
        assert.equal("error", codes(bad.problems).DANE_MISMATCH.severity)
        assert.is_true(r.dns.authenticated)
        assert.same({ true, "secure" }, { r.dns.dnssec.validated, r.dns.dnssec.status })
        assert.same({ "secure", "secure", "secure" }, { good.srv_dnssec, good.address_dnssec, good.dane.dnssec })
        -- the same zone from the root's anchor: nothing can be validated here, so no DANE
        local root = tlsharden.scan("example.test", { kind = "c2s", resolver = ub.address, cafile = default.ca,
          timeout = 3 })
        assert.equal("indeterminate", root.dns.dnssec.status)
        for _, e in ipairs(root.endpoints) do assert.is_true(e.dane == nil or e.dane.status ~= "valid") end
      end)
      ub.stop()
      assert(ok, err)
    end)

    it("falls back to 5222 and 5269 without SRV records (RFC 6120)", function()
      local dm = dnsmasq { hosts = { "nosrv.example.test,127.0.0.1" }, extra = { "--local=/example.test/" } }
      local ok, err = pcall(function()
        local r = tlsharden.scan("nosrv.example.test", { resolver = dm.address, timeout = 1 })
        local seen = {}
        for _, e in ipairs(r.endpoints) do seen[#seen + 1] = ("%s %d %s %s"):format(e.kind, e.port, e.tls, e.source) end
        assert.same({ "c2s 5222 starttls fallback", "s2s 5269 starttls fallback" }, seen)
        local none = tlsharden.scan("nothing.example.test", { resolver = dm.address, timeout = 1 })
        assert.same({}, none.endpoints)
        assert.equal("NO_ENDPOINTS", none.problems[#none.problems].code)
      end)
      dm.stop()
      assert(ok, err)
    end)
  end
end)
