-- What a stock Prosody 0.12 serves with its defaults, seen from outside.
-- These are the facts tlsharden's profiles and audit rely on.
local prosody = require "spec.helpers.prosody"

local describe_prosody = prosody.installed() and describe or pending

describe_prosody("Prosody 0.12 with its default TLS settings", function()
  local server
  setup(function() server = prosody.start { key_kind = "rsa2048" } end)
  teardown(function() if server then server.stop() end end)

  it("serves TLS 1.3 on c2s STARTTLS and direct TLS", function()
    local r = prosody.s_client { port = server.ports.c2s, starttls = "xmpp" }
    assert.is_true(r.ok, r.output)
    assert.equal("TLSv1.3", r.protocol)
    r = prosody.s_client { port = server.ports.c2s_direct_tls }
    assert.is_true(r.ok, r.output)
  end)

  it("refuses TLS 1.1 on c2s (intermediate profile)", function()
    local r = prosody.s_client { port = server.ports.c2s, starttls = "xmpp",
      extra = "-tls1_1 -cipher DEFAULT@SECLEVEL=0" }
    assert.is_false(r.ok, r.output)
  end)

  it("offers DHE suites in its cipher list but cannot use them: no DH parameters", function()
    local r = prosody.s_client { port = server.ports.c2s, starttls = "xmpp",
      extra = "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256" }
    assert.is_false(r.ok, r.output)
  end)

  it("accepts a TLS 1.2 ECDHE client on s2s", function()
    local r = prosody.s_client { port = server.ports.s2s, starttls = "xmpp-server",
      extra = "-tls1_2" }
    assert.is_true(r.ok, r.output)
    assert.equal("TLSv1.2", r.protocol)
    assert.matches("^ECDHE%-", r.cipher)
  end)
end)
