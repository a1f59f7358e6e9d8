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
local prosody = require "spec.helpers.prosody"
local sh = require "spec.helpers.sh"

local OLD = "-cipher DEFAULT@SECLEVEL=0"

-- Ports and how to reach them.
local PORTS = {
  { name = "c2s", starttls = "xmpp", sslscan = "--starttls-xmpp" },
  { name = "s2s", starttls = "xmpp-server", sslscan = "--starttls-xmpp --xmpp-server" },
  { name = "c2s_direct_tls", sslscan = "--sni-name=localhost" },
  { name = "s2s_direct_tls", sslscan = "--sni-name=localhost" },
  { name = "https", sslscan = "--sni-name=localhost" },
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
  local server
  setup(function() server = prosody.start { version = version.name, key_kind = "rsa2048", https = true } end)
  teardown(function() if server then server.stop() end end)

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
        local ok, out = sh.exec(("timeout 120 sslscan --no-colour --ipv4 --no-check-certificate"
          .. " --no-heartbleed --no-renegotiation --no-compression --no-fallback --no-groups %s localhost:%d")
          :format(port.sslscan, server.ports[port.name]))
        assert.is_true(ok, out)
        for _, old in ipairs { "SSLv2", "SSLv3", "TLSv1%.0", "TLSv1%.1" } do
          assert.matches(old .. "%s+disabled", out)
        end
        assert.matches("TLSv1%.2%s+enabled", out)
        assert.matches("TLSv1%.3%s+enabled", out)
        local seen = { ["TLSv1.2"] = {}, ["TLSv1.3"] = {} }
        for line in out:gmatch("[^\n]+") do
          local verdict, proto, name = line:match("^(%a+)%s+(TLSv[%d.]+)%s+%d+ bits%s+(%S+)")
          if verdict == "Accepted" or verdict == "Preferred" then
            assert.is_not_nil(seen[proto], line)
            table.insert(seen[proto], name)
          end
        end
        assert.same(sorted(TLS12_SUITES[version.name]), sorted(seen["TLSv1.2"]))
        assert.same(sorted(TLS13_SUITES), sorted(seen["TLSv1.3"]))
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
  else
    it("applies no profile, as legacy would: static-RSA and CBC suites, P-521", function()
      for _, extra in ipairs { "-tls1_2 -cipher AES128-GCM-SHA256", "-tls1_2 -cipher ECDHE-RSA-AES128-SHA",
        "-tls1_3 -groups P-521" } do
        local r = prosody.s_client { port = server.ports.c2s, starttls = "xmpp", extra = extra }
        assert.is_true(r.ok, extra .. "\n" .. r.output)
      end
      assert.not_matches("tls_profile", server.log(), 1, true)
    end)
  end
end)
