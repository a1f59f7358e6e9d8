-- Client simulation: the recorded ClientHellos of real TLS stacks replayed
-- against real servers (openssl s_server, gnutls-serv, Prosody), compared
-- with what the real clients negotiate there (openssl s_client,
-- gnutls-cli), and against broken peers.
local tlsharden = require "tlsharden"
local simulate = require "tlsharden.scan.simulate"
local clients = require "tlsharden.scan.clients"
local wire = require "tlsharden.wire"
local servers = require "spec.helpers.servers"
local prosody = require "spec.helpers.prosody"
local sh = require "spec.helpers.sh"
local cli = require "spec.helpers.cli"

local function scan(port, opts)
  local o = { starttls = "none", xmpphost = "example.com", timeout = 3 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local r = tlsharden.scan("127.0.0.1:" .. port, o)
  return r.endpoints[1], r
end

local function by_name(list)
  local t = {}
  for _, c in ipairs(list or {}) do t[c.name] = c end
  return t
end

-- What a real openssl s_client negotiates: protocol, suite (IANA) and group.
local function s_client(port, extra)
  local _, out = sh.exec(("echo | timeout 10 openssl s_client -connect 127.0.0.1:%d -servername example.com %s 2>&1")
    :format(port, extra or ""))
  local proto, cipher = out:match("New, (TLSv[%d.]+), Cipher is ([%w_-]+)")
  if not proto then return { ok = false, text = out } end
  local group = out:match("Server Temp Key: X25519") and "x25519" or out:match("Server Temp Key: ECDH, ([%w-]+),")
    or out:match("Server Temp Key: X448") and "x448"
  local dh = tonumber(out:match("Server Temp Key: DH, (%d+) bits"))
  local names = { ["TLSv1.3"] = "tlsv1_3", ["TLSv1.2"] = "tlsv1_2", ["TLSv1.1"] = "tlsv1_1", ["TLSv1"] = "tlsv1" }
  local s = wire.suite(cipher)
  return { ok = true, protocol = names[proto], suite = s and s.iana, group = group, dh_bits = dh }
end

-- The same from gnutls-cli (group from its description line).
local function gnutls_cli(port)
  local _, out = sh.exec(("timeout 10 gnutls-cli --insecure --sni-hostname example.com -p %d 127.0.0.1 < /dev/null 2>&1")
    :format(port))
  local desc = out:match("Description: ([^\n]+)")
  if not desc then return { ok = false, text = out } end
  local proto = desc:match("^%((TLS[%d.]+)")
  local names = { ["TLS1.3"] = "tlsv1_3", ["TLS1.2"] = "tlsv1_2", ["TLS1.1"] = "tlsv1_1", ["TLS1.0"] = "tlsv1" }
  local kx = desc:match("%)%-%((ECDHE%-[%w]+)%)") or desc:match("%)%-%((DHE%-[%w]+)%)")
  local group = kx and ({ ["ECDHE-X25519"] = "x25519", ["ECDHE-SECP256R1"] = "secp256r1",
    ["ECDHE-SECP384R1"] = "secp384r1", ["ECDHE-SECP521R1"] = "secp521r1" })[kx]
  return { ok = true, protocol = names[proto], group = group, desc = desc }
end

local function same(sim, real, label)
  assert(sim, label .. ": not simulated")
  assert.equal(real.ok, sim.result.ok, label .. ": " .. tostring(sim.result.reason or real.text))
  if not real.ok then return end
  assert.equal(real.protocol, sim.result.protocol, label)
  if real.suite then assert.equal(real.suite, sim.result.suite.iana, label) end
  if real.group then assert.equal(real.group, sim.result.group, label) end
  if real.dh_bits then assert.equal(real.dh_bits, sim.result.dh_bits, label) end
end

describe("client simulation", function()
  local f
  setup(function() f = servers.fixtures() end)
  teardown(function() f.cleanup() end)

  local function with(server, body)
    local ok, err = pcall(body, server)
    server.stop()
    assert(ok, err)
  end

  it("replays every recorded client of the endpoint's kind and transport, and each gets what the real one gets",
    function()
      with(servers.openssl(f.dir, f.ecdsa, ""), function(s)
        local e = scan(s.port)
        local direct = simulate.recordings("c2s", "direct")
        assert.equal(#direct, #e.clients)
        for _, c in ipairs(e.clients) do
          assert.is_string(c.library)
          assert.is_string(c.software)
          assert.equal("c2s", c.kind)
          assert.is_true(c.result.ok, c.name .. ": " .. tostring(c.result.reason))
          assert.equal("tlsv1_3", c.result.protocol, c.name)
          assert.is_true(c.result.fs)
          assert.is_string(c.result.suite.iana)
          assert.is_string(c.result.suite.openssl)
        end
        local sim = by_name(e.clients)
        same(sim["openssl-c2s-direct"], s_client(s.port), "openssl s_client")
        same(sim["gnutls-c2s-direct"], gnutls_cli(s.port), "gnutls-cli")
      end)
    end)

  it("follows a HelloRetryRequest for a group the client offers, as the real client does", function()
    with(servers.openssl(f.dir, f.ecdsa, "-groups secp384r1"), function(s)
      local sim = by_name(scan(s.port).clients)
      for name, c in pairs(sim) do
        assert.equal("secp384r1", c.result.group, name)
        assert.equal("secp384r1", c.result.retry, name)
      end
      same(sim["openssl-c2s-direct"], s_client(s.port), "openssl s_client")
      same(sim["gnutls-c2s-direct"], gnutls_cli(s.port), "gnutls-cli")
    end)
  end)

  it("says which clients a DHE-only server with 1024-bit parameters loses, and why", function()
    local dh = f.dir .. "/dh1024.pem"
    assert(sh.exec("openssl dhparam -out " .. sh.quote(dh) .. " 1024 2>/dev/null"))
    with(servers.openssl(f.dir, f.rsa, "-tls1_2 -dhparam " .. dh .. " -cipher 'DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0'"),
      function(s)
        local e = scan(s.port)
        local sim = by_name(e.clients)
        -- Chromium and Go offer no DHE suite at all
        for _, name in ipairs { "chromium-c2s-direct", "go-c2s-direct" } do
          assert.same({ false, "no_suite" }, { sim[name].result.ok, sim[name].result.cause }, name)
          assert.matches("alert handshake_failure", sim[name].result.reason, 1, true)
        end
        -- OpenSSL at Debian's security level refuses DH under 2048 bits
        -- after the ServerHello, as the recording's measured limit says
        same(sim["openssl-c2s-direct"], s_client(s.port), "openssl s_client")
        assert.same({ false, "dh_too_small" }, { sim["openssl-c2s-direct"].result.ok,
          sim["openssl-c2s-direct"].result.cause })
        -- the clients that do connect: the DH size is what was negotiated
        for name, c in pairs(sim) do
          if c.result.ok then assert.equal(1024, c.result.dh_bits, name) end
        end
        -- the failing clients come first in the command line's table
        local _, out = cli.run("scan", "127.0.0.1:" .. s.port, "--starttls", "none", "--xmpphost", "example.com",
          "--timeout", "3", "--quiet")
        local first_fail = out:find("FAILS: no suite or group in common", 1, true)
        local first_ok = out:find("TLS 1.2 TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 DH 1024", 1, true)
        assert.truthy(out:find("DH parameters of 1024 bits, below the client's minimum of 2048", 1, true))
        assert.truthy(first_fail)
        assert.truthy(first_ok)
        assert.is_true(first_fail < first_ok)
      end)
  end)

  it("sends no SNI where the scan sends none, and replays hellos with the target's name", function()
    local r = clients.load("openssl-c2s-direct")
    local function replayed(opts)
      local bytes = wire.replay_hello(r.bytes, opts)
      assert.is_string(bytes)
      return wire.parse_client_hello(bytes)
    end
    local h = replayed { server_name = "chat.example.net" }
    assert.equal("chat.example.net", h.server_name)
    assert.same(r.hello.suites, h.suites)
    assert.same(r.hello.protocols, h.protocols)
    assert.is_nil(replayed({ server_name = false }).server_name)
    -- a key share for the group a HelloRetryRequest asks for, with its cookie
    local again = replayed { key_share = "secp384r1", cookie = "cookie!" }
    assert.same({ 24 }, again.key_share_groups)
  end)

  prosody.each_version(describe, pending, "Prosody", function(v)
    it("over STARTTLS, c2s and s2s: every recorded client of that kind connects to the defaults", function()
      local server = prosody.start { version = v.name }
      local ok, err = pcall(function()
        for _, k in ipairs { { "c2s", server.ports.c2s }, { "s2s", server.ports.s2s } } do
          local e = scan(k[2], { starttls = k[1], xmpphost = "localhost", cafile = server.ca })
          assert.equal("ok", e.status, tostring(e.reason))
          assert.equal(#simulate.recordings(k[1], "starttls"), #e.clients)
          for _, c in ipairs(e.clients) do
            assert.equal(k[1], c.kind)
            assert.is_true(c.result.ok, c.name .. ": " .. tostring(c.result.reason))
            assert.is_true(c.result.fs, c.name)
          end
        end
      end)
      server.stop()
      assert(ok, err)
    end)
  end)

  it("asks a context in memory what each client gets, as a server of that context answers it", function()
    local ssl = require "ssl"
    local context = require "tlsharden.context"
    local ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = f.ecdsa.key,
      certificate = f.ecdsa.cert, curve = "secp384r1" })
    local offline = by_name(simulate.offline(ctx, "c2s", "direct"))
    with(servers.openssl(f.dir, f.ecdsa, "-groups secp384r1"), function(s)
      for _, c in ipairs(scan(s.port).clients) do
        local o = offline[c.name]
        assert.same({ c.result.ok, c.result.protocol, c.result.group, c.result.retry },
          { o.result.ok, o.result.protocol, o.result.group, o.result.retry }, c.name)
        assert.same(c.result.suite, o.result.suite, c.name)
      end
    end)
    -- bad input: a client context, a second flight that is no string
    local client = assert(ssl.newcontext { mode = "client", protocol = "any" })
    local ok, e = pcall(context.answer_hello, client, "x")
    assert.is_false(ok)
    assert.matches("tlsharden.context.answer_hello: bad argument #1 'ctx': expected a server context", tostring(e), 1,
      true)
    ok, e = pcall(context.answer_hello, ctx, "x", 42)
    assert.is_false(ok)
    assert.matches("bad argument #3 'second'", tostring(e), 1, true)
    -- garbage in: an alert or nothing out, never an error
    assert.is_string(context.answer_hello(ctx, ("\0"):rep(100)))
  end)

  local have_escript = sh.exec("command -v escript > /dev/null")
  if not have_escript then
    pending("an Erlang/OTP server: needs escript (erlang-base)")
  else
    it("grades an Erlang/OTP server that also takes weak curves by what clients get, and names the curves", function()
      local s = servers.start(("escript spec/helpers/erlang_tls_server.escript {port} %s %s")
        :format(sh.quote(f.ecdsa.cert), sh.quote(f.ecdsa.key)), f.dir)
      with(s, function()
        local e = scan(s.port)
        local g = e.grade.grade_if_trusted or e.grade.grade
        assert.equal("A+", g)
        local weak
        for _, p in ipairs(e.problems) do
          if p.code == "WEAK_GROUP_ON_REQUEST" then weak = p.message end
        end
        assert.is_string(weak, "no WEAK_GROUP_ON_REQUEST")
        assert.matches("secp160r1", weak, 1, true)
        -- without the clients, the weakest curve the probe found accepted decides
        local plain = scan(s.port, { clients = false })
        assert.is_nil(plain.clients)
        assert.equal("B", plain.grade.grade_if_trusted or plain.grade.grade)
      end)
    end)
  end

  it("grades the key exchange the clients get, and names a weaker group only a lone request gets", function()
    local observe = require "tlsharden.scan.observe"
    local facts = require "tlsharden.facts"
    local grade = require "tlsharden.grade"
    local function observed()
      return { protocols = { "tlsv1_2", "tlsv1_3" }, groups = { "x25519", "secp256r1", "secp160r1", "sect163k1" },
        suites = { { name = "TLS_AES_128_GCM_SHA256", bits = 128, aead = true, fs = true } },
        key_type = "EC", key_bits = 256, compression = false, secure_renegotiation = true, fallback_scsv = true }
    end
    local list = {
      { name = "a", result = { ok = true, protocol = "tlsv1_3", group = "x25519" } },
      { name = "b", result = { ok = true, protocol = "tlsv1_2", group = "secp256r1" } },
      { name = "c", result = { ok = false, cause = "no_suite", reason = "x" } },
    }
    local o = observed()
    local alone = observe.kx_from_clients(o, list)
    assert.same({ "secp160r1", "sect163k1" }, alone)
    assert.same({ "x25519", "secp256r1" }, o.groups)
    local with = grade.grade(facts.from_observation(o))
    local without = grade.grade(facts.from_observation(observed()))
    assert.equal("A+", with.grade)
    assert.is_true(grade.worse(without.grade, with.grade), without.grade)
    -- where no client connects, the probe's groups stay
    o = observed()
    assert.same({}, observe.kx_from_clients(o, { list[3] }))
    assert.same(observed().groups, o.groups)
  end)

  describe("against broken peers", function()
    for _, c in ipairs {
      { "silent", "no_answer", "no answer within the timeout" },
      { "garbage", "no_answer", "" },
      { "close", "no_answer", "" },
    } do
      it(("gives a reason, and stops waiting at the timeout, for a peer that is %s"):format(c[1]), function()
        local r = servers.start(("lua5.4 spec/helpers/responder.lua {port} %s"):format(sh.quote(
          ("{ mode = %q }"):format(c[1]))), f.dir)
        local ok, err = pcall(function()
          local res = simulate.run { kind = "c2s", transport = "direct", timeout = 1, server_name = "example.com",
            open = function(sched) return sched:connect("127.0.0.1", r.port, 1) end }
          assert.equal(#simulate.recordings("c2s", "direct"), #res.clients)
          for _, x in ipairs(res.clients) do
            assert.is_false(x.result.ok, x.name)
            assert.equal(c[2], x.result.cause, x.name .. ": " .. x.result.reason)
            assert.matches(c[3], x.result.reason, 1, true)
          end
        end)
        r.stop()
        assert(ok, err)
      end)
    end

    it("refuses bad options, naming them", function()
      for _, c in ipairs {
        { { kind = "c2s", transport = "direct" }, "'open'" },
        { { open = function() end, kind = "both", transport = "direct" }, "'kind'" },
        { { open = function() end, kind = "c2s", transport = "tls" }, "'transport'" },
        { { open = function() end, kind = "c2s", transport = "direct", colour = 1 }, "colour" },
      } do
        local ok, e = pcall(simulate.run, c[1])
        assert.is_false(ok)
        assert.matches("scan.simulate.run", tostring(e), 1, true)
        assert.matches(c[2], tostring(e), 1, true)
      end
    end)
  end)
end)
