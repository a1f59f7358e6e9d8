-- The real clients of the recorded ClientHellos (spec/helpers/real_clients.lua):
-- each completes a handshake with openssl s_server and says what it got in
-- tlsharden's names, a suite its recorded hello offers; each STARTTLS one
-- does so with Prosody 0.12 too; the limits the recordings carry
-- (min_dh_bits, min_rsa_bits, min_protocol) hold against live servers.
-- Java and Go are compiled once per run; a client whose program is not
-- installed is pending with the reason.
local real_clients = require "spec.helpers.real_clients"
local servers = require "spec.helpers.servers"
local prosody = require "spec.helpers.prosody"
local clients = require "tlsharden.scan.clients"
local wire = require "tlsharden.wire"
local sh = require "spec.helpers.sh"

local function offered(rec, suite)
  local s = wire.suite(suite)
  for _, id in ipairs(rec.hello.suites) do
    if s and id == s.id then return true end
  end
  return false
end

-- Every process of the client's group is gone.
local function gone(r)
  return r.pgid ~= nil and not sh.exec(("kill -0 -- -%d 2>/dev/null"):format(r.pgid))
end

local function explain(r)
  return ("%s: %s\n%s"):format(r.name, tostring(r.reason), tostring(r.output):sub(1, 2000))
end

-- One recording per stack for direct TLS, and every STARTTLS recording.
local direct, starttls, seen = {}, {}, {}
for _, name in ipairs(clients.names()) do
  local stack, _, transport = real_clients.split(name)
  if transport == "direct" and not seen[stack] then
    seen[stack] = true
    direct[#direct + 1] = name
  elseif transport == "starttls" then
    starttls[#starttls + 1] = name
  end
end

describe("#truth real clients", function()
  teardown(function() real_clients.cleanup() end)

  it("names protocols, suites and groups as tlsharden and IANA do", function()
    assert.equal("tlsv1_3", real_clients.protocol_name("TLSv1.3"))
    assert.equal("tlsv1_2", real_clients.protocol_name("TLS_1_2"))
    assert.equal("tlsv1_2", real_clients.protocol_name("tlsv1.2"))
    assert.equal("tlsv1", real_clients.protocol_name("TLSv1"))
    assert.equal("tlsv1_1", real_clients.protocol_name("TLS1.1"))
    assert.equal("tlsv1_3", real_clients.protocol_name("3.4"))
    assert.is_nil(real_clients.protocol_name("QUIC"))
    assert.equal("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", real_clients.suite_name("ECDHE-RSA-AES128-GCM-SHA256"))
    assert.equal("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", real_clients.suite_name("GNUTLS_ECDHE_RSA_AES_128_CBC_SHA1"))
    assert.equal("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
      real_clients.suite_name("GNUTLS_ECDHE_RSA_CHACHA20_POLY1305"))
    assert.equal("TLS_AES_256_GCM_SHA384", real_clients.suite_name("GNUTLS_AES_256_GCM_SHA384"))
    assert.is_nil(real_clients.suite_name("NO_SUCH_SUITE"))
    assert.equal("secp256r1", real_clients.group_name("prime256v1"))
    assert.equal("x25519", real_clients.group_name("X25519"))
    assert.equal("ffdhe2048", real_clients.group_name("FFDHE2048"))
    local ok, why = real_clients.available("chromium-c2s-direct")
    assert.is_false(ok)
    assert.matches("Chromium", why)
    ok, why = real_clients.available("nss-c2s-starttls")
    assert.is_false(ok)
    assert.matches("no starttls client", why, 1, true)
    assert.is_false((real_clients.available("not a name")))
  end)

  describe("against openssl s_server (direct TLS)", function()
    local fx, server
    setup(function()
      fx = servers.fixtures()
      server = servers.openssl(fx.dir, fx.rsa, "")
    end)
    teardown(function()
      if server then server.stop() end
      if fx then fx.cleanup() end
    end)

    for _, name in ipairs(direct) do
      local can, why = real_clients.available(name)
      if not can then
        pending(name .. ": " .. why)
      else
        it(name .. " completes a handshake and says what it negotiated, a suite its recorded hello offers", function()
          local r = real_clients.run(name, { port = server.port, timeout = 20 })
          assert.is_true(r.ok, explain(r))
          assert.is_true(gone(r), name .. ": its process group is still there")
          assert.equal("tlsv1_3", r.protocol, name)
          local s = wire.suite(r.suite)
          assert.is_table(s, name .. ": " .. tostring(r.suite))
          assert.equal(s.iana, r.suite)
          assert.is_true(s.tls13)
          assert.is_true(offered(clients.load(name), r.suite), name .. " did not offer " .. r.suite)
          local reports = real_clients.reports(r.stack)
          if reports.group then
            assert.is_string(r.group, name .. " names no group")
            local known = false
            for _, g in ipairs(wire.groups()) do known = known or g.name == r.group end
            assert.is_true(known, r.group)
          else
            assert.is_nil(r.group, name)
          end
          assert.is_nil(r.dh_bits)
        end)
      end
    end

    it("a client that cannot connect fails with a reason, in bounded time", function()
      local closed = servers.free_port()
      local r = real_clients.run("openssl-c2s-direct", { port = closed, timeout = 5 })
      assert.is_false(r.ok)
      assert.is_string(r.reason)
      assert.is_true(gone(r))
    end)
  end)

  describe("over STARTTLS against Prosody 0.12", function()
    if not prosody.installed() then
      pending("prosody is not installed")
      return
    end
    local server
    setup(function() server = prosody.start { hosts = { "localhost" } } end)
    teardown(function() if server then server.stop() end end)

    for _, name in ipairs(starttls) do
      local can, why = real_clients.available(name)
      if not can then
        pending(name .. ": " .. why)
      else
        it(name .. " gets through <starttls/> and completes the handshake", function()
          local _, kind = real_clients.split(name)
          local r = real_clients.run(name, { port = server.ports[kind], server_name = "localhost", timeout = 20 })
          assert.is_true(r.ok, explain(r))
          assert.is_true(gone(r))
          assert.truthy(r.protocol == "tlsv1_3" or r.protocol == "tlsv1_2", r.protocol)
          assert.equal(wire.suite(r.suite).iana, r.suite)
          assert.is_true(offered(clients.load(name), r.suite), name .. " did not offer " .. r.suite)
        end)
      end
    end
  end)

  describe("the limits the recordings carry", function()
    local set
    setup(function() set = real_clients.limit_servers() end)
    teardown(function() if set then set.stop() end end)

    it("every recording of a stack carries the same limits, and says where they come from", function()
      local by_stack = {}
      for _, rec in ipairs(clients.all()) do
        local stack = real_clients.split(rec.name)
        if stack ~= "chromium" then
          assert.truthy(rec.min_dh_bits == "none" or type(rec.min_dh_bits) == "number", rec.name)
          assert.is_number(rec.min_rsa_bits, rec.name)
          assert.is_number(rec.min_rsa_bits_unverified, rec.name)
          assert.is_true(rec.min_rsa_bits >= rec.min_rsa_bits_unverified, rec.name)
          assert.is_string(rec.min_protocol, rec.name)
          assert.matches("real_clients", rec.limits_source, 1, true)
          local key = ("%s %s %s %s"):format(tostring(rec.min_dh_bits), rec.min_rsa_bits, rec.min_rsa_bits_unverified,
            rec.min_protocol)
          assert.equal(by_stack[stack] or key, key, rec.name)
          by_stack[stack] = key
          -- no DH limit only where the hello offers no DHE suite
          local dhe = false
          for _, id in ipairs(rec.hello.suites) do
            local s = wire.suite(id)
            dhe = dhe or (s and s.kx == "DHE") or false
          end
          assert.equal(dhe, rec.min_dh_bits ~= "none", rec.name)
        end
      end
    end)

    for _, name in ipairs(direct) do
      local can = real_clients.available(name)
      if can then
        it(name .. ": a DH group of 1024 bits is accepted or refused as recorded; 2048 bits is accepted", function()
          local rec = clients.load(name)
          local accepted, r = real_clients.accepts(name, set, "dh1024")
          local expected = rec.min_dh_bits ~= "none" and rec.min_dh_bits <= 1024
          assert.equal(expected, accepted, explain(r))
          if rec.min_dh_bits ~= "none" then
            accepted, r = real_clients.accepts(name, set, "dh2048")
            assert.is_true(accepted, explain(r))
            assert.equal("tlsv1_2", r.protocol)
            assert.equal("DHE", wire.suite(r.suite).kx)
            if real_clients.reports(r.stack).dh_bits then assert.equal(2048, r.dh_bits, name) end
          end
        end)
      end
    end

    for _, name in ipairs { "openssl-c2s-direct", "java-c2s-direct" } do
      local can, why = real_clients.available(name)
      if not can then
        pending(name .. ": " .. why)
      else
        it(name .. ": the smallest RSA key (verified and not) and the oldest protocol are as recorded", function()
          local rec = clients.load(name)
          for _, check in ipairs { { rec.min_rsa_bits, true }, { rec.min_rsa_bits_unverified, false } } do
            local bits, verify = check[1], check[2]
            local accepted, r = real_clients.accepts(name, set, "rsa" .. bits, { verify = verify })
            assert.is_true(accepted, explain(r))
            local below
            for _, b in ipairs(real_clients.RSA_SIZES) do
              if b < bits then below = b end
            end
            if below then
              accepted, r = real_clients.accepts(name, set, "rsa" .. below, { verify = verify })
              assert.is_false(accepted, ("%s took RSA %d (verify: %s)"):format(name, below, tostring(verify)))
            end
          end
          local old = rec.min_protocol == "tlsv1_2" and "tlsv1_1" or rec.min_protocol
          local accepted, r = real_clients.accepts(name, set, old)
          assert.equal(rec.min_protocol ~= "tlsv1_2", accepted, explain(r))
        end)
      end
    end
  end)
end)
