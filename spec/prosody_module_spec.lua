-- mod_tlsharden in a real Prosody 0.12 (Debian's package) on 127.0.0.1,
-- checked from outside with openssl s_client and sslscan.
local tlsharden = require "tlsharden"
local prosody = require "spec.helpers.prosody"
local sh = require "spec.helpers.sh"

local describe_prosody = prosody.installed() and describe or pending

local repo = sh.run("pwd"):gsub("%s+$", "")
-- Prosody loads the checkout's modules and core (the normal build).
local env = ("LUA_PATH_5_4='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH_5_4='%s/build/?.so;;'"):format(repo, repo, repo)

local OLD = "-cipher DEFAULT@SECLEVEL=0"
-- A block copied from an old tutorial: TLS 1.0 and every suite.
local WEAK = { protocol = "tlsv1+", ciphers = "ALL:@SECLEVEL=0" }

local function start(opts)
  opts.plugin_paths = { repo .. "/lua" }
  opts.env = env
  opts.key_kind = "rsa2048"
  return prosody.start(opts)
end

local function connect(server, port_name, extra)
  local starttls = ({ c2s = "xmpp", s2s = "xmpp-server" })[port_name]
  return prosody.s_client { port = server.ports[port_name], starttls = starttls, extra = extra }
end

describe_prosody("mod_tlsharden in a real Prosody", function()
  describe("enforce (the default)", function()
    local server
    setup(function()
      server = start { modules = { "tlsharden" }, global = { ssl = WEAK } }
    end)
    teardown(function() if server then server.stop() end end)

    for _, port in ipairs { "c2s", "s2s", "c2s_direct_tls" } do
      it("refuses TLS 1.0 and 1.1 on " .. port, function()
        assert.is_false(connect(server, port, "-tls1 " .. OLD).ok)
        assert.is_false(connect(server, port, "-tls1_1 " .. OLD).ok)
      end)

      it("refuses suites without forward secrecy on " .. port, function()
        assert.is_false(connect(server, port, "-tls1_2 -cipher AES128-GCM-SHA256").ok)
        assert.is_false(connect(server, port, "-tls1_2 -cipher kRSA@SECLEVEL=0").ok)
      end)

      it("lets TLS 1.3 and TLS 1.2 ECDHE clients in on " .. port, function()
        local r = connect(server, port, "-tls1_3")
        assert.is_true(r.ok, r.output)
        assert.equal("TLSv1.3", r.protocol)
        r = connect(server, port, "-tls1_2")
        assert.is_true(r.ok, r.output)
        assert.matches("^ECDHE%-", r.cipher)
      end)
    end

    it("logs the grade and what it changed, once per host and service", function()
      local log = server.log()
      assert.matches("tlsharden: hardening every TLS context (profile hardened, policy enforce)", log, 1, true)
      assert.matches("tlsharden: localhost c2s: grade", log, 1, true)
      assert.matches("tlsharden: localhost s2s_in: grade", log, 1, true)
      assert.matches("changed: min_version", log, 1, true)
      assert.matches("global ssl sets protocol: lowers the minimum version", log, 1, true)
    end)

    for _, case in ipairs {
      { "c2s STARTTLS", "c2s", "--starttls-xmpp" },
      { "s2s STARTTLS", "s2s", "--starttls-xmpp --xmpp-server" },
      { "direct TLS", "c2s_direct_tls", "--sni-name=localhost" },
    } do
      it("leaves sslscan nothing below TLS 1.2 and nothing without forward secrecy on " .. case[1], function()
        local ok, out = sh.exec(("timeout 120 sslscan --no-colour --ipv4 --no-check-certificate --no-heartbleed"
          .. " --no-renegotiation --no-compression --no-fallback --no-groups %s localhost:%d")
          :format(case[3], server.ports[case[2]]))
        assert.is_true(ok, out)
        assert.matches("TLSv1%.0%s+disabled", out)
        assert.matches("TLSv1%.1%s+disabled", out)
        local accepted = 0
        for proto, name in out:gmatch("Accepted%s+(TLSv[%d.]+)%s+%d+ bits%s+(%S+)") do
          accepted = accepted + 1
          assert.is_true(proto == "TLSv1.2" or proto == "TLSv1.3", proto)
          if proto == "TLSv1.2" then
            local suite = tlsharden.ciphers(name, { ciphersuites = "" }).suites[1]
            assert.equal(name, suite.name)
            assert.is_true(suite.fs, name .. " has no forward secrecy")
          end
        end
        assert.is_true(accepted > 0, out)
      end)
    end
  end)

  describe("reload, unload and report", function()
    local server
    local function prosodyctl(args)
      return sh.exec(("%s prosodyctl --config %s %s"):format(env, sh.quote(server.config), args))
    end
    setup(function()
      server = start { modules = { "tlsharden", "admin_shell" } }
    end)
    teardown(function() if server then server.stop() end end)

    -- DHE only works once tlsharden has switched on automatic DH parameters:
    -- Prosody's own contexts have none.
    local function dhe_ok()
      return connect(server, "c2s", "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256").ok
    end

    it("re-applies everything on a reload (SIGHUP)", function()
      assert.is_true(dhe_ok())
      sh.run("kill -HUP " .. server.pid())
      local deadline = os.time() + 10
      while not server.log():find("Certificates reloaded", 1, true) and os.time() < deadline do
        sh.exec("sleep 0.2")
      end
      assert.is_true(dhe_ok())
      assert.is_false(connect(server, "c2s", "-tls1_1 " .. OLD).ok)
    end)

    it("prints the audit report with prosodyctl mod_tlsharden report", function()
      local _, out, code = prosodyctl("mod_tlsharden report --no-color")
      assert.matches("tlsharden audit of " .. server.config, out, 1, true)
      assert.matches("localhost  grade", out, 1, true)
      assert.is_true(code == 0 or code == 1)
    end)

    it("gives Prosody its own behaviour back when unloaded", function()
      local ok, out = prosodyctl("shell 'module:unload(\"tlsharden\")'")
      assert.is_true(ok, out)
      assert.is_false(dhe_ok())
    end)
  end)

  describe("strict with tlsharden_allow_insecure", function()
    local server
    setup(function()
      server = start { modules = { "tlsharden" }, global = { tlsharden_policy = "strict",
        tlsharden_allow_insecure = true }, host_settings = { localhost = { ssl = WEAK } } }
    end)
    teardown(function() if server then server.stop() end end)

    it("accepts the weak settings it was told to accept, and says so", function()
      local r = connect(server, "c2s", "-tls1 " .. OLD)
      assert.is_true(r.ok, r.output)
      assert.matches("policy strict, insecure settings allowed", server.log(), 1, true)
    end)
  end)

  describe("without the module", function()
    local server
    setup(function() server = start { global = { ssl = WEAK } } end)
    teardown(function() if server then server.stop() end end)

    it("serves what the ssl block asks for: TLS 1.0 and plain-RSA suites", function()
      local r = connect(server, "c2s", "-tls1 " .. OLD)
      assert.is_true(r.ok, r.output)
      r = connect(server, "c2s", "-tls1_2 -cipher AES128-GCM-SHA256")
      assert.is_true(r.ok, r.output)
    end)
  end)

  describe("strict", function()
    local server
    setup(function()
      server = start { modules = { "tlsharden" }, global = { tlsharden_policy = "strict" },
        host_settings = { localhost = { ssl = WEAK } } }
    end)
    teardown(function() if server then server.stop() end end)

    it("refuses to start TLS for the host that asks for less, and says why", function()
      local r = connect(server, "c2s", "-tls1_3")
      assert.is_false(r.ok)
      local log = server.log()
      assert.matches("tlsharden: no TLS for localhost %(c2s%):.-lowers security: protocol 'tlsv1_2%+' %-> 'tlsv1%+'", log)
      assert.matches("tlsharden_allow_insecure", log, 1, true)
    end)
  end)
end)
