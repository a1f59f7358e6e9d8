-- mod_tlsharden's choice of harden's DH rule (tlsharden.prosody.plugin_dh)
-- without a Prosody: no test handshake without DH parameters, one per set
-- of parameters, key and suites with them, its outcome followed by equal
-- contexts.
local ssl = require "ssl"
local pki = require "spec.helpers.pki"
local pipeline = require "tlsharden.pipeline"

local plugin_dh = require "tlsharden.prosody.plugin_dh"

describe("plugin_dh", function()
  local dir, ec, rsa, dh_pem
  setup(function()
    dir = pki.tmpdir()
    ec = pki.simple(dir, "example.org")
    rsa = pki.cert(dir, "rsa", { key_kind = "rsa2048", cn = "example.org", san = { "DNS:example.org" } })
    local path = dir .. "/dh.pem"
    pki.run("openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out " .. pki.quote(path))
    dh_pem = pki.read(path)
  end)
  teardown(function() pki.cleanup(dir) end)

  -- A context Prosody would build from cfg (LuaSec calls dhparam itself).
  local function context(cert, dhparam)
    local cfg = { mode = "server", protocol = "any", certificate = cert.cert, key = cert.key, dhparam = dhparam }
    return assert(ssl.newcontext(cfg)), cfg
  end

  it("names the DH parameters of a configuration", function()
    assert.is_nil(plugin_dh.source(nil))
    assert.is_nil(plugin_dh.source({}))
    assert.equal("/etc/prosody/dh.pem", plugin_dh.source({ dhparam = "/etc/prosody/dh.pem" }))
    assert.equal(dh_pem, plugin_dh.source({ dhparam = function() return dh_pem end }))
    assert.equal("a function", plugin_dh.source({ dhparam = function() error("no file") end }))
  end)

  it("keeps a client's DH alone and gives a server without parameters automatic ones, without a test", function()
    local D = plugin_dh.new(false)
    local m = { dhe = {} }
    local ctx, cfg = context(ec)
    local policy, known = D.policy(m, ctx, cfg, "client")
    assert.equal("keep", policy.dhe)
    assert.is_nil(known)
    policy, known = D.policy(m, ctx, cfg, "server")
    assert.equal("on", policy.dhe)
    assert.is_nil(known)
    assert.same({}, m.dhe)
  end)

  it("tests a server's own parameters once, and equal contexts follow the outcome", function()
    local D = plugin_dh.new(false)
    local m = { dhe = {} }
    local dhparam = function() return dh_pem end
    local j = { mode = "server", cache = m, later = true, report = {} }
    j.build = function(_, job)
      local ctx
      ctx, job.cfg = context(ec, dhparam)
      return ctx
    end
    j.harden = D.harden
    local ctx = assert(pipeline.prepare(j))
    local known = j.dhe_slot
    assert.is_table(known)
    assert.is_nil(known.outcome)
    D.remember(known, ctx)
    assert.is_truthy(known.outcome == "on" or known.outcome == "keep")

    local again, cfg = context(ec, dhparam)
    local policy, slot = D.policy(m, again, cfg, "server")
    assert.equal(known.outcome, policy.dhe)
    assert.is_nil(slot)
    -- another key type, other suites: a test of their own
    local other_key, other_cfg = context(rsa, dhparam)
    policy, slot = D.policy(m, other_key, other_cfg, "server")
    assert.equal("auto", policy.dhe)
    assert.are_not.equal(known, slot)
    assert.are_not.equal(known, select(2, D.policy(m, again, { dhparam = dhparam, ciphers = "ECDHE+AESGCM" },
      "server")))
  end)

  it("leaves floor, suites and security level alone with allow_insecure", function()
    local ctx, cfg = context(ec)
    local strict = plugin_dh.new(false).policy({ dhe = {} }, ctx, cfg, "server")
    assert.same({ dhe = "on" }, strict)
    local insecure = plugin_dh.new(true).policy({ dhe = {} }, ctx, cfg, "server")
    assert.same({ dhe = "on", min_version = false, filter_ciphers = false, security_level = false }, insecure)
  end)
end)
