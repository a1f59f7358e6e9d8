-- The scanner's vulnerability checks: verdicts derived from the probe's
-- facts, checks on connections of their own against servers that behave
-- as vulnerable ones do (spec/helpers/vuln_responder.lua in front of a real
-- openssl s_server), broken peers, and no false positive on real servers
-- (openssl s_server, gnutls-serv, Prosody 0.12 and 13).
local tlsharden = require "tlsharden"
local vulns = require "tlsharden.scan.vulns"
local grade = require "tlsharden.grade"
local json = require "tlsharden.json"
local servers = require "spec.helpers.servers"
local prosody = require "spec.helpers.prosody"

local STATUSES = { vulnerable = true, not_vulnerable = true, not_applicable = true, unknown = true }
local NAMES = { "heartbleed", "ccs_injection", "robot", "ticketbleed", "secure_renegotiation",
  "client_renegotiation", "crime", "poodle", "sweet32", "freak", "drown", "logjam", "beast", "lucky13", "rc4",
  "fallback_scsv", "early_data", "grease", "starttls_injection" }
-- What no server of this century should be found open to.
local SEVERE = { "heartbleed", "ccs_injection", "robot", "ticketbleed", "drown", "crime", "poodle", "freak",
  "logjam", "sweet32", "rc4", "grease", "starttls_injection", "secure_renegotiation" }

local function suite(name)
  for _, s in ipairs(require("tlsharden.wire").suites()) do if s.name == name then return s end end
  error("no suite " .. name)
end

-- A probe result with the given accepted suites per protocol.
local function probe(t)
  local pr = { protocols = {}, versions = {} }
  for _, p in ipairs { "sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" } do
    local names = t[p]
    local st = { name = p, suites = {}, accepted = names ~= nil and #names > 0 }
    for i, n in ipairs(names or {}) do st.suites[i] = suite(n) end
    pr.protocols[p] = st
    if st.accepted then pr.versions[#pr.versions + 1] = p end
  end
  for k, v in pairs(t.extra or {}) do pr[k] = v end
  return pr
end

local function scan(port, opts)
  local o = { starttls = "none", xmpphost = "example.com", timeout = 2 }
  for k, v in pairs(opts or {}) do o[k] = v end
  local r = tlsharden.scan("127.0.0.1:" .. port, o)
  return r.endpoints[1], r
end

local function assert_shape(checks)
  for _, name in ipairs(NAMES) do
    local v = checks[name]
    assert(v, "no verdict for " .. name)
    assert(STATUSES[v.status], name .. ": status " .. tostring(v.status))
    assert.is_string(v.evidence, name)
    if v.status == "vulnerable" then assert.is_string(v.severity, name) end
  end
end

describe("vulnerability checks", function()
  describe("derived from the probe's facts", function()
    it("names POODLE, SWEET32, FREAK, DROWN, LOGJAM, BEAST, LUCKY13 and RC4 with the suites as evidence", function()
      local v = vulns.derive(probe {
        sslv2 = { "DES-CBC3-MD5" },
        sslv3 = { "AES128-SHA", "EXP-RC4-MD5" },
        tlsv1 = { "DES-CBC3-SHA", "EXP-EDH-RSA-DES-CBC-SHA" },
        tlsv1_2 = { "ECDHE-RSA-AES128-GCM-SHA256", "RC4-SHA" },
      })
      assert.same({ "vulnerable", { "AES128-SHA" } }, { v.poodle.status, v.poodle.suites })
      assert.equal("CVE-2014-3566", v.poodle.cve)
      assert.same({ "DES-CBC3-MD5", "DES-CBC3-SHA", "EXP-EDH-RSA-DES-CBC-SHA" }, v.sweet32.suites)
      assert.same({ "EXP-RC4-MD5" }, v.freak.suites)
      assert.equal("vulnerable", v.drown.status)
      assert.same({ "EXP-EDH-RSA-DES-CBC-SHA" }, v.logjam.suites)
      assert.equal("vulnerable", v.beast.status)
      assert.equal("vulnerable", v.lucky13.status)
      assert.same({ "EXP-RC4-MD5", "RC4-SHA" }, v.rc4.suites)
      assert.equal("medium", v.poodle.severity)
    end)

    it("says not vulnerable, or not applicable, where the facts say so", function()
      local v = vulns.derive(probe {
        tlsv1_2 = { "ECDHE-RSA-AES128-GCM-SHA256" }, tlsv1_3 = { "TLS_AES_128_GCM_SHA256" },
        extra = { secure_renegotiation = true, compression = "null", fallback_scsv = true,
          fallback_protocol = "tlsv1_2", fallback_answer = "closed" },
      })
      for _, name in ipairs { "poodle", "sweet32", "freak", "drown", "lucky13", "rc4", "crime",
        "secure_renegotiation", "fallback_scsv" } do
        assert.equal("not_vulnerable", v[name].status, name)
      end
      assert.equal("not_applicable", v.beast.status)
      assert.equal("not_applicable", v.logjam.status)
      -- fast_tls refuses a fallback by closing: that is the SCSV honoured
      assert.matches("closed without an alert", v.fallback_scsv.evidence, 1, true)
      local weak = vulns.derive(probe { tlsv1_2 = { "DHE-RSA-AES128-GCM-SHA256" },
        extra = { secure_renegotiation = false, compression = "deflate", dh_bits = 1024 } })
      assert.equal("vulnerable", weak.crime.status)
      assert.equal("vulnerable", weak.secure_renegotiation.status)
      assert.same({ "vulnerable", "DH parameters of 1024 bits" }, { weak.logjam.status, weak.logjam.evidence })
    end)

    it("caps the grade: F for Heartbleed, CCS injection, ROBOT, Ticketbleed, DROWN; C for CRIME and POODLE", function()
      local base = { protocols = { "tlsv1_2", "tlsv1_3" }, key_type = "EC", key_bits = 256, kx_bits = 3072,
        suites = { { name = "TLS_AES_128_GCM_SHA256", bits = 128, aead = true, fs = true } },
        cert = { trusted = true, host_match = true }, secure_renegotiation = true, fallback_scsv = true }
      local function with(name, status)
        local f = {}
        for k, x in pairs(base) do f[k] = x end
        f.vulnerabilities = { [name] = { status = status } }
        return grade.grade(f)
      end
      assert.equal("A+", with("heartbleed", "not_vulnerable").grade)
      assert.equal("A+", with("heartbleed", "unknown").grade)
      for name, letter in pairs { heartbleed = "F", ccs_injection = "F", robot = "F", ticketbleed = "F", drown = "F",
        crime = "C", poodle = "C" } do
        local g = with(name, "vulnerable")
        assert.equal(letter, g.grade, name)
        assert.matches("vulnerable to", g.caps[1].reason, 1, true)
      end
    end)
  end)

  describe("on the wire", function()
    local f, upstream
    setup(function()
      f = servers.fixtures()
      -- a real OpenSSL 3 behind the responders: TLS 1.2 with RSA key exchange
      upstream = servers.openssl(f.dir, f.rsa, "-tls1_2")
    end)
    teardown(function()
      if upstream then upstream.stop() end
      f.cleanup()
    end)

    local function through(mode, body)
      local r = servers.start(("lua5.4 spec/helpers/vuln_responder.lua %s {port} %d %s"):format(mode, upstream.port,
        f.rsa.key), f.dir)
      local ok, err = pcall(body, r.port)
      r.stop()
      assert(ok, err)
    end

    it("finds Heartbleed where the heartbeat answer carries more than was sent, and keeps none of it", function()
      through("heartbleed", function(port)
        local e = scan(port)
        assert_shape(e.vulnerabilities)
        local h = e.vulnerabilities.heartbleed
        assert.same({ "vulnerable", "CVE-2014-0160", "critical" }, { h.status, h.cve, h.severity })
        assert.matches("claiming 16384 bytes and carrying none was answered with 16381 bytes", h.evidence, 1, true)
        local doc = json.encode(e)
        assert.is_nil(doc:find("secret key material", 1, true))
        local capped = false
        for _, c in ipairs(e.grade.caps) do capped = capped or (c.grade == "F" and c.reason:find("Heartbleed") ~= nil) end
        assert.is_true(capped)
        assert.equal("not_vulnerable", e.vulnerabilities.ccs_injection.status)
      end)
    end)

    it("says not vulnerable where a request that claims more than it carries is discarded", function()
      through("heartbeat_fixed", function(port)
        local h = scan(port).vulnerabilities.heartbleed
        assert.equal("not_vulnerable", h.status)
        assert.matches("discarded", h.evidence, 1, true)
      end)
    end)

    it("stays bounded on a peer that answers every heartbeat with 64 KiB", function()
      through("heartbeat_64k", function(port)
        local e = scan(port)
        assert.not_equal("error", e.status)
        assert(STATUSES[e.vulnerabilities.heartbleed.status])
      end)
    end)

    it("finds CCS injection where an early ChangeCipherSpec is taken", function()
      through("ccs", function(port)
        local e = scan(port)
        local c = e.vulnerabilities.ccs_injection
        assert.same({ "vulnerable", "CVE-2014-0224" }, { c.status, c.cve })
        assert.matches("bad_record_mac", c.evidence, 1, true)
        assert.equal("not_applicable", e.vulnerabilities.heartbleed.status)
      end)
    end)

    it("finds ROBOT where RSA padding faults are answered differently, and says how strong the oracle is", function()
      through("robot", function(port)
        local e = scan(port)
        local v = e.vulnerabilities.robot
        assert.same({ "vulnerable", "CVE-2017-13099", "strong" }, { v.status, v.cve, v.oracle })
        assert.matches("bad_first_bytes → alert handshake_failure", v.evidence, 1, true)
        assert.matches("valid → alert bad_record_mac", v.evidence, 1, true)
        -- a valid padding reaches the real server: its handshakes still work
        assert.is_true(e.handshake.ok)
        assert.equal("F", e.grade.grade_if_trusted or e.grade.grade)
      end)
    end)

    it("finds Ticketbleed where a resumption by ticket echoes a short session id as 32 bytes, and keeps none of it", function()
      through("ticketbleed", function(port)
        local e = scan(port)
        assert_shape(e.vulnerabilities)
        local v = e.vulnerabilities.ticketbleed
        assert.same({ "vulnerable", "CVE-2016-9244", "high" }, { v.status, v.cve, v.severity })
        assert.matches("with a 16-byte session id was answered with a 32-byte one: its own 16 bytes and 16 bytes"
          .. " of the server's memory (not kept)", v.evidence, 1, true)
        assert.is_nil(json.encode(e):find("secret key", 1, true))
        local capped = false
        for _, c in ipairs(e.grade.caps) do capped = capped or (c.grade == "F" and c.reason:find("Ticketbleed") ~= nil) end
        assert.is_true(capped)
      end)
    end)

    it("finds TLS 1.3 early data where a real OpenSSL server accepts 0-RTT, and not where it rejects it", function()
      for _, c in ipairs { { "-early_data", "vulnerable", "was accepted" },
        { "-max_early_data 1024", "not_vulnerable", "allow 1024 bytes of early data, but 0-RTT data was rejected" } } do
        -- OpenSSL's s_server serves 0-RTT in its plain mode only (not with -www)
        local s = servers.start(("openssl s_server -accept 127.0.0.1:{port} -cert %s -key %s -quiet %s")
          :format(f.ecdsa.cert, f.ecdsa.key, c[1]), f.dir)
        local ok, err = pcall(function()
          local v = scan(s.port).vulnerabilities.early_data
          assert.equal(c[2], v.status, v.evidence)
          assert.matches(c[3], v.evidence, 1, true)
          if c[2] == "vulnerable" then assert.equal("medium", v.severity) end
        end)
        s.stop()
        assert(ok, err)
      end
    end)

    it("names a peer that fails on GREASE values, and gives the rest of the scan", function()
      through("close_unknown", function(port)
        local e = scan(port)
        assert.equal("vulnerable", e.vulnerabilities.grease.status)
        assert.same({ "tlsv1_2" }, e.probe.versions)
      end)
    end)

    it("finds STARTTLS injection where a stanza sent with <starttls/> is answered inside TLS", function()
      for _, c in ipairs { { "buffering", "vulnerable" }, { "dropping", "not_vulnerable" } } do
        local r = servers.start(("lua5.4 spec/helpers/starttls_responder.lua %s {port} %s %s"):format(c[1],
          f.rsa.cert, f.rsa.key), f.dir)
        local ok, err = pcall(function()
          local e = scan(r.port, { starttls = "c2s", xmpphost = "localhost" })
          local v = e.vulnerabilities.starttls_injection
          assert.equal(c[2], v.status, c[1] .. ": " .. v.evidence)
          if c[2] == "vulnerable" then
            assert.same({ "CVE-2011-0411", "high" }, { v.cve, v.severity })
            local capped = false
            for _, cap in ipairs(e.grade.caps) do capped = capped or cap.reason:find("STARTTLS command injection", 1, true) ~= nil end
            assert.is_true(capped)
          end
        end)
        r.stop()
        assert(ok, err)
      end
    end)

    it("gives every check of a TLS server that speaks no XMPP (status not_xmpp)", function()
      local e = scan(upstream.port)
      assert.equal("not_xmpp", e.status)
      assert_shape(e.vulnerabilities)
      for _, name in ipairs(SEVERE) do
        assert.not_equal("vulnerable", e.vulnerabilities[name].status, name)
      end
      assert.equal("not_vulnerable", e.vulnerabilities.ccs_injection.status)
      -- OpenSSL 3 answers every padding fault alike
      assert.matches("every padding fault got the same answer", e.vulnerabilities.robot.evidence, 1, true)
      -- and refuses a renegotiation the client asks for (its default since 3.0)
      assert.equal("not_vulnerable", e.vulnerabilities.client_renegotiation.status)
      -- resumes by ticket with the session id echoed as it was sent
      assert.equal("not_vulnerable", e.vulnerabilities.ticketbleed.status, e.vulnerabilities.ticketbleed.evidence)
      assert.matches("echoes the 16-byte session id as it was sent", e.vulnerabilities.ticketbleed.evidence, 1, true)
      assert.equal("not_applicable", e.vulnerabilities.early_data.status)
    end)

    it("finds client-initiated renegotiation where the server allows it (OpenSSL's own client asks)", function()
      local lax = servers.openssl(f.dir, f.rsa, "-tls1_2 -client_renegotiation")
      local ok, err = pcall(function()
        -- a timeout that is no whole number of seconds works too
        local v = scan(lax.port, { timeout = 1.5 }).vulnerabilities.client_renegotiation
        assert.same({ "vulnerable", "CVE-2011-1473", "medium" }, { v.status, v.cve, v.severity })
        assert.matches("TLS 1.2: a renegotiation the client asked for was made", v.evidence, 1, true)
      end)
      lax.stop()
      assert(ok, err)
    end)
  end)

  it("counts each check in a survey's report, and DROWN where the RSA key is served with SSL 2.0 elsewhere", function()
    local sh = require "spec.helpers.sh"
    local report = require "tlsharden.report"
    local f = servers.fixtures()
    local der = f.rsa.cert .. ".der"
    sh.run(("openssl x509 -in %s -outform DER -out %s"):format(sh.quote(f.rsa.cert), sh.quote(der)))
    local v2 = servers.start("lua5.4 spec/helpers/responder.lua {port} " .. sh.quote(
      ('{ mode = "sslv2", cert = %q, sslv2_kinds = { 0x010080, 0x020080 } }'):format(der)), f.dir)
    local tls = servers.openssl(f.dir, f.rsa, "-tls1_2")
    local ok, err = pcall(function()
      local path = f.dir .. "/results.jsonl"
      local out = assert(io.open(path, "w"))
      for _, port in ipairs { v2.port, tls.port } do
        local e = scan(port)
        out:write(json.encode(e), "\n")
      end
      out:close()
      local rep = report.build(path)
      local sslv2_row, tls_row = rep.rows[1], rep.rows[2]
      assert.is_truthy(sslv2_row.vulnerable.drown)
      assert.matches("the same RSA key is served with SSL 2.0 at", tls_row.vulnerable.drown, 1, true)
      assert.matches(tostring(v2.port), tls_row.drown_via, 1, true)
      assert.equal(2, report.count(rep.counts, "vulnerabilities", "drown"))
      assert.equal(2, report.find(rep.counts, "vulnerabilities").base.all)
      assert.equal(2, report.count(rep.counts, "vulnerabilities", "any"))
    end)
    v2.stop()
    tls.stop()
    f.cleanup()
    assert(ok, err)
  end)

  describe("no false positive on real servers", function()
    local f
    setup(function() f = servers.fixtures() end)
    teardown(function() f.cleanup() end)

    local function clean(e, label)
      assert_shape(e.vulnerabilities)
      for _, name in ipairs(SEVERE) do
        assert.not_equal("vulnerable", e.vulnerabilities[name].status, label .. ": " .. name .. ": "
          .. e.vulnerabilities[name].evidence)
      end
    end

    it("openssl s_server (TLS 1.2 and 1.3) and gnutls-serv", function()
      for _, start in ipairs {
        function() return servers.openssl(f.dir, f.ecdsa, "") end,
        function() return servers.gnutls(f.dir, f.rsa, "NORMAL") end,
      } do
        local s = start()
        local ok, err = pcall(function()
          local e = scan(s.port)
          clean(e, s.command)
          assert.equal("not_vulnerable", e.vulnerabilities.fallback_scsv.status, s.command)
        end)
        s.stop()
        assert(ok, err)
      end
    end)

    local ejabberd = require "spec.helpers.ejabberd"
    local ej_ok, ej_why = ejabberd.available()
    if not ej_ok then
      pending("Debian's ejabberd (fast_tls): " .. ej_why)
    else
      it("Debian's ejabberd (fast_tls), c2s and s2s STARTTLS and direct TLS", function()
        local server = ejabberd.start()
        local ok, err = pcall(function()
          for _, p in ipairs { { "c2s", "c2s" }, { "s2s", "s2s" }, { "c2s_direct_tls", "none" } } do
            local e = scan(server.ports[p[1]], { starttls = p[2], xmpphost = "localhost", cafile = server.ca })
            assert.equal("ok", e.status, p[1] .. ": " .. tostring(e.reason))
            clean(e, "ejabberd " .. p[1])
            for _, name in ipairs { "ccs_injection", "robot", "grease", "fallback_scsv", "early_data" } do
              assert.equal("not_vulnerable", e.vulnerabilities[name].status, p[1] .. " " .. name .. ": "
                .. e.vulnerabilities[name].evidence)
            end
            if p[2] ~= "none" then
              assert.equal("not_vulnerable", e.vulnerabilities.starttls_injection.status, p[1] .. ": "
                .. e.vulnerabilities.starttls_injection.evidence)
            end
          end
        end)
        server.stop()
        assert(ok, err)
      end)
    end

    prosody.each_version(describe, pending, "Prosody", function(v)
      for _, c in ipairs {
        { "defaults", {} },
        { "a weak block", { key_kind = "rsa2048", global = { ssl = { protocol = "tlsv1+",
          ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" } } } },
      } do
        it(c[1], function()
          local opts = { version = v.name }
          for k, x in pairs(c[2]) do opts[k] = x end
          local server = prosody.start(opts)
          local ok, err = pcall(function()
            local e = scan(server.ports.c2s, { starttls = "c2s", xmpphost = "localhost", cafile = server.ca })
            assert.equal("ok", e.status, tostring(e.reason))
            clean(e, "Prosody " .. v.name .. " " .. c[1])
            assert.equal("not_applicable", e.vulnerabilities.heartbleed.status)
            for _, name in ipairs { "ccs_injection", "starttls_injection", "grease", "fallback_scsv",
              "client_renegotiation", "early_data" } do
              assert.equal("not_vulnerable", e.vulnerabilities[name].status, name .. ": "
                .. e.vulnerabilities[name].evidence)
            end
          end)
          server.stop()
          assert(ok, err)
        end)
      end
    end)
  end)
end)
