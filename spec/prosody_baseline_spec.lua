-- What a stock Prosody serves with its default TLS settings (no tlsharden),
-- seen from outside with openssl s_client and sslscan, for each version
-- the spec helper can run: Debian's 0.12 and 13 (build/prosody-13).
-- These are the facts tlsharden's profiles and audit rely on.
--
-- What differs between 0.12.3 and 13.0.1 (both default to tls_profile
-- "intermediate"):
--   * 13's intermediate profile carries RFC 7919's ffdhe2048 as dhparam,
--     so its TLS 1.2 DHE-RSA suites work (2048-bit DH); 0.12 lists DHE
--     suites but has no DH parameters, so a DHE-only client fails.
--   * 13 adds DHE-RSA-CHACHA20-POLY1305 to the intermediate list.
--   * Hence a TLS 1.2 client whose only group Prosody refuses (P-521) still
--     gets in to 13 over DHE, and fails on 0.12.
--   * An unknown tls_profile: 13 builds no context at all (no STARTTLS,
--     direct TLS ports not bound, an error per context); 0.12 silently
--     applies no profile, as "legacy" would.
-- The same in both: TLS 1.2 and 1.3 only, no CBC and no static-RSA suites,
-- groups X25519, P-256 and P-384 (not P-521), the client's order wins
-- (cipher_server_preference is off), on c2s STARTTLS, s2s STARTTLS, c2s and
-- s2s direct TLS and HTTPS alike.
local tlsharden = require "tlsharden"
local prosody = require "spec.helpers.prosody"

local OLD = "-cipher DEFAULT@SECLEVEL=0"

-- Ports and how to reach them.
-- Ports, how to reach them and the audit's name of their service.
local PORTS = {
  { name = "c2s", starttls = "xmpp", service = "c2s" },
  { name = "s2s", starttls = "xmpp-server", service = "s2s_in" },
  { name = "c2s_direct_tls", service = "c2s_direct_tls" },
  { name = "s2s_direct_tls", service = "s2s_direct_tls" },
  { name = "https", service = "https" },
}

local move = require("tlsharden.compat").move

-- The TLS 1.2 suites each version serves with an RSA certificate.
local ECDHE_RSA = { "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305" }
local DHE_RSA = { "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305" }
local TLS12_SUITES = {
  ["0.12"] = ECDHE_RSA,
  ["13"] = move(DHE_RSA, 1, #DHE_RSA, #ECDHE_RSA + 1, move(ECDHE_RSA, 1, #ECDHE_RSA, 1, {})),
}
local TLS13_SUITES = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256" }

local function sorted(list)
  local t = move(list, 1, #list, 1, {})
  table.sort(t)
  return t
end

prosody.each_version(describe, pending, "Prosody with its default TLS settings:", function(version)
  local server, report
  setup(function() server = prosody.start { version = version.name, key_kind = "rsa2048", https = true } end)
  teardown(function() if server then server.stop() end end)

  -- tlsharden's audit of this server's configuration, for this version
  local function audited(service)
    report = report or tlsharden.audit(server.config, { prosody = version.name, cafile = server.ca })
    for _, s in ipairs(report.hosts[1].services) do
      if s.service == service then return s end
    end
  end

  local function connect(port, extra)
    return prosody.s_client { port = server.ports[port.name], starttls = port.starttls, extra = extra }
  end

  for _, port in ipairs(PORTS) do
    describe(port.name, function()
      it("serves TLS 1.3", function()
        local r = connect(port, "-tls1_3")
        assert.is_true(r.ok, r.output)
        assert.equal("TLSv1.3", r.protocol)
      end)

      it("refuses TLS 1.0 and 1.1 (intermediate profile)", function()
        assert.is_false(connect(port, "-tls1 " .. OLD).ok)
        assert.is_false(connect(port, "-tls1_1 " .. OLD).ok)
      end)

      it("takes the client's order of suites (no server preference)", function()
        local r1 = connect(port, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
        local r2 = connect(port, "-tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")
        assert.equal("ECDHE-RSA-AES128-GCM-SHA256", r1.cipher, r1.output)
        assert.equal("ECDHE-RSA-AES256-GCM-SHA384", r2.cipher, r2.output)
        local r3 = connect(port, "-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384")
        assert.equal("TLS_CHACHA20_POLY1305_SHA256", r3.cipher, r3.output)
      end)

      it("offers X25519, P-256 and P-384 but not P-521", function()
        for _, group in ipairs { "X25519", "P-256", "P-384" } do
          assert.is_true(connect(port, "-tls1_3 -groups " .. group).ok, group)
        end
        assert.is_false(connect(port, "-tls1_3 -groups P-521").ok)
      end)

      if version.name == "13" then
        it("serves DHE-RSA suites with 2048-bit DH (ffdhe2048 in the intermediate profile)", function()
          local r = connect(port, "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256")
          assert.is_true(r.ok, r.output)
          assert.matches("Server Temp Key: DH, 2048 bits", r.output, 1, true)
          -- so a TLS 1.2 client whose only group is refused still gets in
          r = connect(port, "-tls1_2 -groups P-521")
          assert.is_true(r.ok, r.output)
          assert.matches("^DHE%-RSA%-", r.cipher)
        end)
      else
        it("lists DHE suites but cannot use them: no DH parameters", function()
          assert.is_false(connect(port, "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256").ok)
          assert.is_false(connect(port, "-tls1_2 -groups P-521").ok)
        end)
      end

      it("leaves sslscan TLS 1.2 and 1.3 only, with exactly the suites of its profile", function()
        local scan = prosody.sslscan(server, port.name)
        assert.is_true(scan.ok, scan.output)
        for _, old in ipairs { "SSLv2", "SSLv3", "TLSv1%.0", "TLSv1%.1" } do
          assert.matches(old .. "%s+disabled", scan.output)
        end
        assert.same({ "TLSv1.2", "TLSv1.3" }, scan.enabled)
        for proto in pairs(scan.suites) do assert.is_truthy(proto == "TLSv1.2" or proto == "TLSv1.3", proto) end
        assert.same(sorted(TLS12_SUITES[version.name]), sorted(scan.suites["TLSv1.2"]))
        assert.same(sorted(TLS13_SUITES), sorted(scan.suites["TLSv1.3"]))
        -- and the audit of the same configuration, for the same version,
        -- says exactly that
        local svc = audited(port.service)
        assert.truthy(svc, port.service)
        assert.same({ "tlsv1_2", "tlsv1_3" }, svc.context.versions)
        assert.same(scan.all, sorted(svc.suites))
      end)
    end)
  end

  it("logs its release at start", function()
    assert.matches("Prosody version " .. version.release, server.log(), 1, true)
  end)
end)

-- tls_profile names: what an unknown one does differs.
prosody.each_version(describe, pending, "Prosody with an unknown tls_profile:", function(version)
  local server
  setup(function()
    server = prosody.start { version = version.name, key_kind = "rsa2048", wait = { "c2s", "s2s" },
      global = { tls_profile = "hardest" } }
  end)
  teardown(function() if server then server.stop() end end)

  if version.name == "13" then
    it("builds no TLS context and says why", function()
      assert.is_false(prosody.s_client { port = server.ports.c2s, starttls = "xmpp" }.ok)
      assert.is_false(prosody.s_client { port = server.ports.c2s_direct_tls }.ok)
      local log = server.log()
      assert.matches("Invalid value for 'tls_profile'", log, 1, true)
      assert.matches("Error binding encrypted port for c2s_direct_tls", log, 1, true)
    end)

    it("is what the audit of version 13 says: no context for any service", function()
      local report = tlsharden.audit(server.config, { prosody = "13", cafile = server.ca })
      assert.equal("UNKNOWN_TLS_PROFILE", report.problems[1].code)
      assert.equal("error", report.problems[1].severity)
      assert.is_true(#report.hosts[1].services >= 4)
      for _, s in ipairs(report.hosts[1].services) do
        assert.is_nil(s.context, s.service)
        assert.equal("UNKNOWN_TLS_PROFILE", s.problems[1].code)
      end
    end)
  else
    it("applies no profile, as legacy would: static-RSA and CBC suites, P-521", function()
      for _, extra in ipairs { "-tls1_2 -cipher AES128-GCM-SHA256", "-tls1_2 -cipher ECDHE-RSA-AES128-SHA",
        "-tls1_3 -groups P-521" } do
        local r = prosody.s_client { port = server.ports.c2s, starttls = "xmpp", extra = extra }
        assert.is_true(r.ok, extra .. "\n" .. r.output)
      end
      assert.not_matches("tls_profile", server.log(), 1, true)
    end)

    it("is what the audit of version 0.12 says: no profile, the suites it serves", function()
      local report = tlsharden.audit(server.config, { prosody = "0.12", cafile = server.ca })
      assert.equal("UNKNOWN_TLS_PROFILE", report.problems[1].code)
      assert.equal("warning", report.problems[1].severity)
      local c2s = report.hosts[1].services[1]
      assert.equal("c2s", c2s.service)
      local scan = prosody.sslscan(server, "c2s")
      assert.same(scan.all, sorted(c2s.suites))
      assert.is_true(#scan.all > 20)
    end)
  end
end)
