-- mod_tlsharden in a real Prosody, 0.12 (Debian's package) and 13
-- (build/prosody-13), on 127.0.0.1, checked from outside with openssl
-- s_client and sslscan: every way in (STARTTLS for clients, servers and a
-- component, direct TLS and HTTPS with and without SNI), with the module
-- loaded at start, after a reload, after unloading and when loaded while
-- the ports are already listening; without the module; under strict.
local tlsharden = require "tlsharden"
local prosody = require "spec.helpers.prosody"
local sh = require "spec.helpers.sh"

local repo = sh.run("pwd"):gsub("%s+$", "")
-- Prosody loads the checkout's modules and core (the normal build).
local env = ("LUA_PATH_5_4='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH_5_4='%s/build/?.so;;'"):format(repo, repo, repo)

local OLD = "-cipher DEFAULT@SECLEVEL=0"
-- A block copied from an old tutorial: TLS 1.0 and every suite.
local WEAK = { protocol = "tlsv1+", ciphers = "ALL:@SECLEVEL=0" }
local COMPONENT = "conference.localhost"

-- Every way in. sni = false: direct TLS without a server name, which gets
-- the port's own context rather than the host's.
local DOORS = {
  { name = "c2s STARTTLS", port = "c2s", starttls = "xmpp" },
  { name = "s2s STARTTLS", port = "s2s", starttls = "xmpp-server" },
  { name = "s2s STARTTLS to a component", port = "s2s", starttls = "xmpp-server", host = COMPONENT },
  { name = "c2s direct TLS with SNI", port = "c2s_direct_tls" },
  { name = "c2s direct TLS without SNI", port = "c2s_direct_tls", sni = false },
  { name = "s2s direct TLS with SNI", port = "s2s_direct_tls" },
  { name = "s2s direct TLS without SNI", port = "s2s_direct_tls", sni = false },
  { name = "HTTPS with SNI", port = "https" },
  { name = "HTTPS without SNI", port = "https", sni = false },
}

local function start(version, opts)
  opts.version = version.name
  opts.plugin_paths = { repo .. "/lua" }
  opts.env = env
  opts.key_kind = "rsa2048"
  opts.https = true
  opts.trust_ca = true
  opts.components = { [COMPONENT] = "muc" }
  return prosody.start(opts)
end

local function connect(server, door, extra)
  return prosody.s_client { port = server.ports[door.port], starttls = door.starttls, host = door.host,
    sni = door.sni, extra = extra }
end

-- What tlsharden lets through, and what it does not.
local function assert_hardened(server, door)
  for _, extra in ipairs { "-tls1 " .. OLD, "-tls1_1 " .. OLD, "-tls1_2 -cipher AES128-GCM-SHA256",
    "-tls1_2 -cipher kRSA@SECLEVEL=0" } do
    local r = connect(server, door, extra)
    assert.is_false(r.ok, door.name .. ": " .. extra .. " got in\n" .. r.output)
  end
  local r = connect(server, door, "-tls1_3")
  assert.is_true(r.ok, door.name .. "\n" .. r.output)
  assert.equal("TLSv1.3", r.protocol)
  r = connect(server, door, "-tls1_2")
  assert.is_true(r.ok, door.name .. "\n" .. r.output)
  assert.matches("^ECDHE%-", r.cipher, 1, false, door.name)
end

-- What the weak block asks for, served as it is.
local function assert_weak(server, door)
  for _, extra in ipairs { "-tls1 " .. OLD, "-tls1_2 -cipher AES128-GCM-SHA256" } do
    local r = connect(server, door, extra)
    assert.is_true(r.ok, door.name .. ": " .. extra .. " refused\n" .. r.output)
  end
end

-- The versions the HTTPS client context of the running server allows (it
-- makes no connection anyone could receive here: asked for in the admin
-- shell, from inside).
local function http_client_versions(server)
  local ok, out = server.prosodyctl([[shell ">local http = package.loaded['prosody.net.http'] or ]]
    .. [[package.loaded['net.http']; local c = http.default.options.sslctx; ]]
    .. [[return table.concat(require('tlsharden').versions(c).versions, '+')"]])
  assert.is_true(ok, out)
  return out:match("Result: (%S*)") or out
end

local function wait_for_log(server, text, after)
  local deadline = os.time() + 10
  while os.time() < deadline do
    local log = server.log()
    local from = log:find(after or "", 1, true)
    if from and log:find(text, from, true) then return end
    sh.exec("sleep 0.2")
  end
  error("no '" .. text .. "' in the log\n" .. server.log())
end

local function count(text, plain)
  local n = 0
  for _ in text:gmatch(plain:gsub("%p", "%%%0")) do n = n + 1 end
  return n
end

prosody.each_version(describe, pending, "mod_tlsharden in Prosody", function(version)
  describe("enforce (the default), with a weak global ssl block", function()
    local server
    setup(function()
      server = start(version, { modules = { "tlsharden", "admin_shell" }, global = { ssl = WEAK } })
    end)
    teardown(function() if server then server.stop() end end)

    for _, door in ipairs(DOORS) do
      it("refuses TLS 1.0, 1.1 and suites without forward secrecy, lets TLS 1.3 and ECDHE in: " .. door.name,
        function() assert_hardened(server, door) end)
    end

    it("logs one line per host, the details at debug, and warns once for what the admin wrote", function()
      wait_for_log(server, "tlsharden: " .. COMPONENT .. ": grade ")
      wait_for_log(server, "tlsharden: localhost: grade ")
      wait_for_log(server, "tlsharden: ports and clients: grade ")
      local log = server.log()
      assert.matches(("tlsharden: hardening every TLS context (profile hardened, policy enforce) of Prosody %s")
        :format(version.release), log, 1, true)
      -- one info line per host: its services, the worst grade, what changed
      local info = {}
      for line in log:gmatch("[^\n]+") do
        if line:find("\tinfo\ttlsharden: ") then info[#info + 1] = line end
      end
      assert.equal(4, #info, table.concat(info, "\n"))
      local host_line = log:match("tlsharden: localhost: grade ([^\n]+)")
      assert.matches("^A%+ %(c2s, s2s_in, s2s_out, ", host_line)
      for _, svc in ipairs { "c2s_direct_tls (SNI)", "s2s_direct_tls (SNI)", "https (SNI)" } do
        assert.matches(svc, host_line, 1, true)
      end
      assert.matches("; changed: TLS floor 1.2, ", host_line, 1, true)
      assert.matches("tlsharden: " .. COMPONENT .. ": grade A+ (c2s, s2s_in, s2s_out,", log, 1, true)
      local ports = log:match("tlsharden: ports and clients: grade ([^\n]+)")
      for _, label in ipairs { "c2s_direct_tls port " .. server.ports.c2s_direct_tls,
        "https port " .. server.ports.https, "client_https" } do
        assert.matches(label, ports, 1, true)
      end
      -- the details of every context at debug, with its layers
      for _, label in ipairs { "localhost c2s", "localhost s2s_in", "localhost s2s_out",
        COMPONENT .. " s2s_in", "localhost c2s_direct_tls (SNI)", "localhost s2s_direct_tls (SNI)",
        "localhost https (SNI)", "c2s_direct_tls port " .. server.ports.c2s_direct_tls,
        "https port " .. server.ports.https, "client_https" } do
        assert.matches("\tdebug\ttlsharden: " .. label .. ": grade ", log, 1, true)
      end
      assert.matches("localhost s2s_in: grade [^\n]+layers: global ssl, [^\n]*Prosody's client certificate"
        .. " request %(from Prosody%)", log)
      -- the admin's weak block: one warning per setting, for all contexts,
      -- and nothing else warns
      local warnings = {}
      for line in log:gmatch("[^\n]+") do
        if line:find("\twarn\t") then warnings[#warnings + 1] = line end
      end
      assert.equal(2, #warnings, table.concat(warnings, "\n"))
      assert.equal(1, count(log, "tlsharden: global ssl sets protocol: lowers the minimum version from TLS 1.2"
        .. " to TLS 1.0 (tlsharden kept the floor)"))
      assert.equal(1, count(log, "tlsharden: global ssl sets ciphers: "))
    end)

    for _, case in ipairs { { "c2s STARTTLS", "c2s" }, { "s2s STARTTLS", "s2s" },
                            { "direct TLS", "c2s_direct_tls" } } do
      it("leaves sslscan nothing below TLS 1.2 and nothing without forward secrecy on " .. case[1], function()
        local scan = prosody.sslscan(server, case[2])
        assert.is_true(scan.ok, scan.output)
        assert.same({ "TLSv1.2", "TLSv1.3" }, scan.enabled)
        for _, name in ipairs(scan.suites["TLSv1.2"] or {}) do
          local suite = tlsharden.ciphers(name, { ciphersuites = "" }).suites[1]
          assert.equal(name, suite.name)
          assert.is_true(suite.fs, name .. " has no forward secrecy")
        end
        assert.is_true(#scan.all > 0, scan.output)
      end)
    end

    it("hardens the HTTPS client context too", function()
      assert.equal("tlsv1_2+tlsv1_3", http_client_versions(server))
    end)

    it("re-applies everything on a reload (SIGHUP)", function()
      sh.run("kill -HUP " .. server.pid())
      wait_for_log(server, "Certificates reloaded", "Received SIGHUP")
      for _, door in ipairs(DOORS) do assert_hardened(server, door) end
    end)

    it("prints the audit report of the running version with prosodyctl mod_tlsharden report", function()
      local _, out, code = server.prosodyctl("mod_tlsharden report --no-color")
      assert.matches("tlsharden audit of " .. server.config, out, 1, true)
      assert.matches("(Prosody " .. version.name .. ",", out, 1, true)
      assert.matches("localhost  grade", out, 1, true)
      assert.equal(1, code, out)  -- the weak block is an error finding
    end)

    it("gives Prosody its own behaviour back when unloaded", function()
      local ok, out = server.prosodyctl("shell 'module:unload(\"tlsharden\")'")
      assert.is_true(ok, out)
      for _, door in ipairs(DOORS) do assert_weak(server, door) end
      assert.equal("tlsv1+tlsv1_1+tlsv1_2+tlsv1_3", http_client_versions(server))
    end)

    it("hardens every port that is already listening when it is loaded later", function()
      local ok, out = server.prosodyctl("shell 'module:load(\"tlsharden\")'")
      assert.is_true(ok, out)
      for _, door in ipairs(DOORS) do assert_hardened(server, door) end
    end)
  end)

  describe("without the module", function()
    local server, report
    setup(function() server = start(version, { global = { ssl = WEAK } }) end)
    teardown(function() if server then server.stop() end end)

    it("serves what the ssl block asks for: TLS 1.0 and plain-RSA suites, everywhere", function()
      for _, door in ipairs(DOORS) do assert_weak(server, door) end
    end)

    -- The audit of the same configuration, for the same version, says what
    -- the server really serves.
    for _, case in ipairs { { "c2s", "c2s" }, { "s2s", "s2s_in" }, { "c2s_direct_tls", "c2s_direct_tls" },
                            { "s2s_direct_tls", "s2s_direct_tls" }, { "https", "https" } } do
      it("matches the audit's versions and suites on " .. case[1], function()
        report = report or tlsharden.audit(server.config, { prosody = version.name, cafile = server.ca })
        local svc
        for _, s in ipairs(report.hosts[1].services) do if s.service == case[2] then svc = s end end
        assert.truthy(svc, case[2])
        local scan = prosody.sslscan(server, case[1])
        assert.is_true(scan.ok, scan.output)
        local versions = {}
        for i, v in ipairs(scan.enabled) do versions[i] = prosody.VERSION_NAMES[v] end
        assert.same(versions, svc.context.versions)
        local suites = require("tlsharden.compat").move(svc.suites, 1, #svc.suites, 1, {})
        table.sort(suites)
        assert.same(scan.all, suites)
        assert.is_true(#scan.all > 20)
      end)
    end
  end)

  describe("Debian's default prosody.cfg.lua with a good certificate", function()
    local server
    setup(function()
      server = prosody.start { version = version.name, debian_config = true, trust_ca = true, key_kind = "rsa2048",
        modules = { "tlsharden" }, plugin_paths = { repo .. "/lua" }, env = env,
        wait = { "c2s", "s2s", "c2s_direct_tls", "s2s_direct_tls" } }
      wait_for_log(server, "tlsharden: localhost: grade ")
    end)
    teardown(function() if server then server.stop() end end)

    local function problems_in(log)
      local found = {}
      for line in log:gmatch("[^\n]+") do
        if line:find("\twarn\t") or line:find("\terror\t") then found[#found + 1] = line end
      end
      return found
    end

    it("logs no warning at all, and one line for the host", function()
      local log = server.log()
      assert.same({}, problems_in(log))
      assert.equal(1, count(log, "tlsharden: localhost: grade "))
      assert.matches("\tinfo\ttlsharden: localhost: grade A%+ %(c2s, s2s_in, s2s_out, c2s_direct_tls %(SNI%),"
        .. " s2s_direct_tls %(SNI%)%); changed: TLS floor 1%.2, ", log)
      -- Prosody's own layers are named at debug, never warned about (0.12
      -- feeds the port's final settings into every SNI context)
      if version.name == "0.12" then
        assert.matches("localhost c2s_direct_tls %(SNI%): grade [^\n]+Prosody's final settings of the"
          .. " c2s_direct_tls port %(from Prosody%)", log)
      end
    end)

    it("serves DHE with DH parameters (Prosody 13's own, or automatic ones) and hardened TLS", function()
      for _, door in ipairs { DOORS[1], DOORS[4] } do
        local r = connect(server, door, "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256")
        assert.is_true(r.ok, door.name .. "\n" .. r.output)
        assert.is_false(connect(server, door, "-tls1_1 " .. OLD).ok)
      end
    end)

    it("has an audit without warnings, by tlsharden.audit and prosodyctl mod_tlsharden report", function()
      local report = tlsharden.audit(server.config, { prosody = version.name, cafile = server.ca })
      local found = {}
      local function check(list, where)
        for _, p in ipairs(list) do
          if p.severity ~= "info" then found[#found + 1] = where .. ": " .. p.code .. ": " .. p.message end
        end
      end
      check(report.problems, "configuration")
      for _, h in ipairs(report.hosts) do
        check(h.problems, h.host)
        for _, svc in ipairs(h.services) do check(svc.problems, h.host .. " " .. svc.service) end
      end
      assert.same({}, found)
      local ok, out = server.prosodyctl("mod_tlsharden report --no-color")
      assert.is_true(ok, out)
      assert.not_matches("warning:", out, 1, true)
      assert.not_matches("error:", out, 1, true)
    end)

    it("stays quiet after a reload (SIGHUP)", function()
      local before = server.log()
      sh.run("kill -HUP " .. server.pid())
      wait_for_log(server, "Certificates reloaded", "Received SIGHUP")
      -- every context judged again (the host's line would follow in the same
      -- turn of Prosody's loop, before it serves the next connection)
      for _, svc in ipairs { "c2s", "s2s_in", "s2s_out", "c2s_direct_tls (SNI)", "s2s_direct_tls (SNI)" } do
        wait_for_log(server, "tlsharden: localhost " .. svc .. ": grade", "Received SIGHUP")
      end
      assert.is_true(connect(server, DOORS[1], "-tls1_3").ok)
      local after = server.log():sub(#before + 1)
      assert.same({}, problems_in(after))
      assert.equal(0, count(after, "tlsharden: localhost: grade "))  -- unchanged, not logged again
      assert.matches("\tdebug\ttlsharden: localhost c2s: grade A+", after, 1, true)
    end)
  end)

  describe("enforce, with a weak ssl block of a VirtualHost", function()
    local server
    setup(function()
      server = prosody.start { version = version.name, trust_ca = true, modules = { "tlsharden" },
        plugin_paths = { repo .. "/lua" }, env = env, host_settings = { localhost = { ssl = WEAK } } }
      wait_for_log(server, "tlsharden: localhost: grade ")
    end)
    teardown(function() if server then server.stop() end end)

    it("names the admin's option in one warning for all the host's contexts", function()
      local log = server.log()
      assert.equal(1, count(log, "tlsharden: ssl of localhost sets protocol: lowers the minimum version"
        .. " from TLS 1.2 to TLS 1.0 (tlsharden kept the floor)"))
      assert_hardened(server, DOORS[1])
    end)
  end)

  describe("strict with tlsharden_allow_insecure", function()
    local server
    setup(function()
      server = start(version, { modules = { "tlsharden" }, global = { tlsharden_policy = "strict",
        tlsharden_allow_insecure = true }, host_settings = { localhost = { ssl = WEAK } } })
    end)
    teardown(function() if server then server.stop() end end)

    it("accepts the weak settings it was told to accept, and says so", function()
      local r = connect(server, DOORS[1], "-tls1 " .. OLD)
      assert.is_true(r.ok, r.output)
      assert.matches("policy strict, insecure settings allowed", server.log(), 1, true)
    end)
  end)

  describe("strict", function()
    local server
    setup(function()
      server = start(version, { modules = { "tlsharden" }, global = { tlsharden_policy = "strict" },
        host_settings = { localhost = { ssl = WEAK } } })
    end)
    teardown(function() if server then server.stop() end end)

    it("refuses to start TLS for the host that asks for less, and says why", function()
      local r = connect(server, DOORS[1], "-tls1_3")
      assert.is_false(r.ok)
      local log = server.log()
      assert.matches("tlsharden: no TLS for localhost %(c2s%):.-lowers security: protocol 'tlsv1_2%+' %-> 'tlsv1%+'", log)
      assert.matches("tlsharden_allow_insecure", log, 1, true)
    end)

    it("still serves hardened TLS where nothing asks for less", function()
      assert_hardened(server, DOORS[4])
      assert_hardened(server, DOORS[5])
    end)
  end)
end)
