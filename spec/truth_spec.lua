-- The truth of client simulation: each real client that runs here
-- (spec/helpers/real_clients.lua: openssl s_client, Python, gnutls-cli,
-- GIO, NSS's tstclnt, Java, Erlang, Go, Node.js, Prosody's s2s) against
-- real servers (openssl s_server and gnutls-serv with the server's and the
-- client's order, a TLS 1.0-only server, an RC4-only one (gnutls-serv:
-- Debian's OpenSSL 3 has no RC4), Prosody 0.12 and
-- 13 with their defaults and with a weak block), its protocol, suite and
-- group compared with what the simulation says it gets. Tagged #truth:
-- the release suite runs it (the simulation's own code runs in every
-- suite, in simulate_spec.lua).
local tlsharden = require "tlsharden"
local servers = require "spec.helpers.servers"
local prosody = require "spec.helpers.prosody"
local real_clients = require "spec.helpers.real_clients"
local sh = require "spec.helpers.sh"

local function scan(port, opts)
  local o = { starttls = "none", xmpphost = "localhost", timeout = 5 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return tlsharden.scan("127.0.0.1:" .. port, o).endpoints[1]
end

-- Every available real client of the endpoint's recordings against the
-- same server, compared with the simulation; returns how many were run.
local function compare(e, port, label)
  assert(e.clients, label .. ": no simulation (" .. tostring(e.status) .. ": " .. tostring(e.reason) .. ")")
  local ran = 0
  for _, c in ipairs(e.clients) do
    if real_clients.available(c.name) then
      local real = real_clients.run(c.name, { port = port, server_name = "localhost" })
      local sim = c.result
      local l = ("%s, %s: real %s, simulated %s"):format(label, c.name,
        real.ok and (tostring(real.protocol) .. " " .. tostring(real.suite)) or ("fails: " .. tostring(real.reason)),
        sim.ok and (tostring(sim.protocol) .. " " .. tostring(sim.suite.iana)) or ("fails: " .. tostring(sim.reason)))
      assert.equal(real.ok, sim.ok, l)
      if real.ok then
        assert.equal(real.protocol, sim.protocol, l)
        assert.equal(real.suite, sim.suite.iana, l)
        if real.group and sim.group then assert.equal(real.group, sim.group, l) end
        if real.dh_bits and sim.dh_bits then assert.equal(real.dh_bits, sim.dh_bits, l) end
      end
      ran = ran + 1
    end
  end
  return ran
end

describe("#truth simulated clients get what the real ones get", function()
  local f
  setup(function() f = servers.fixtures() end)
  teardown(function()
    f.cleanup()
    real_clients.cleanup()
  end)

  local function against(start, label)
    local s = start()
    local ok, err = pcall(function()
      local e = scan(s.port)
      assert.is_true(compare(e, s.port, label) >= 5, label .. ": fewer than five real clients ran")
    end)
    s.stop()
    assert(ok, err)
  end

  it("openssl s_server, in the client's order and in its own", function()
    against(function() return servers.openssl(f.dir, f.ecdsa, "") end, "s_server")
    against(function() return servers.openssl(f.dir, f.rsa, "-serverpref -cipher 'ECDHE+AESGCM:DHE+AESGCM:ECDHE+CHACHA20'"
      .. " -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256") end, "s_server, server order")
  end)

  it("gnutls-serv, in the client's order and in its own", function()
    against(function() return servers.gnutls(f.dir, f.rsa, "NORMAL") end, "gnutls-serv")
    against(function() return servers.gnutls(f.dir, f.rsa, "NORMAL:%SERVER_PRECEDENCE:-AES-256-GCM:-AES-128-GCM") end,
      "gnutls-serv, server order")
  end)

  it("a TLS 1.0-only server", function()
    against(function() return servers.openssl(f.dir, f.rsa, "-tls1 -cipher 'ALL:@SECLEVEL=0'") end, "TLS 1.0 only")
  end)

  it("an RC4-only server (gnutls-serv: Debian's OpenSSL 3 has no RC4)", function()
    local s = servers.gnutls(f.dir, f.rsa, "NORMAL:-VERS-TLS1.3:-CIPHER-ALL:+ARCFOUR-128")
    local ok, err = pcall(function()
      local e = scan(s.port)
      assert(e.clients, tostring(e.status) .. ": " .. tostring(e.reason))
      local rc4 = 0
      for _, c in ipairs(e.clients) do
        if c.result.ok then
          rc4 = rc4 + 1
          assert.matches("RC4", c.result.suite.iana, 1, true)
        end
      end
      assert.is_true(compare(e, s.port, "RC4 only") >= 5)
      -- some clients still offer RC4 (NSS's tstclnt), most do not
      assert.is_true(rc4 < #e.clients)
    end)
    s.stop()
    assert(ok, err)
  end)

  prosody.each_version(describe, pending, "Prosody", function(v)
    for _, c in ipairs {
      { "defaults", {} },
      { "a weak block", { key_kind = "rsa2048", global = { ssl = { protocol = "tlsv1+",
        ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" } } } },
    } do
      it(c[1] .. ", c2s and s2s over STARTTLS", function()
        local opts = { version = v.name }
        for k, x in pairs(c[2]) do opts[k] = x end
        local server = prosody.start(opts)
        local ok, err = pcall(function()
          local ran = 0
          for _, k in ipairs { { "c2s", server.ports.c2s }, { "s2s", server.ports.s2s } } do
            local e = scan(k[2], { starttls = k[1], cafile = server.ca })
            assert.equal("ok", e.status, tostring(e.reason))
            ran = ran + compare(e, k[2], ("Prosody %s %s %s"):format(v.name, c[1], k[1]))
          end
          assert.is_true(ran >= 5, "fewer than five real clients ran")
        end)
        server.stop()
        assert(ok, err)
      end)
    end
  end)
end)
