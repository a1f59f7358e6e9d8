local context = require "tlsharden.context"
local ssl = require "ssl"
local socket = require "socket"
local tlsharden = require "tlsharden"
local pki = require "spec.helpers.pki"
local tls = require "spec.helpers.tls"

local OLD = "DEFAULT:@SECLEVEL=0"

describe("tlsharden.harden and tlsharden.inspect", function()
  local dir, rsa, ec
  setup(function()
    dir = pki.tmpdir()
    rsa = pki.cert(dir, "rsa", { key_kind = "rsa2048", san = { "DNS:localhost" } })
    ec = pki.cert(dir, "ec", { key_kind = "ec256", san = { "DNS:localhost" } })
  end)
  teardown(function() pki.cleanup(dir) end)

  local server = tls.server

  local function connects(ctx, client_cfg)
    local r = tls.handshake(ctx, tls.client(client_cfg))
    local ok = r.ok
    r.close()
    return ok
  end

  describe("a hardened server", function()
    local ctx
    setup(function()
      ctx = server(rsa, { protocol = "any", ciphers = "ALL:@SECLEVEL=0" })
      -- before: an old client gets in
      assert.is_true(connects(ctx, { protocol = "tlsv1", ciphers = OLD }))
      assert.is_true(connects(ctx, { protocol = "tlsv1_2", ciphers = "AES128-GCM-SHA256" }))
      tlsharden.harden(ctx)
    end)

    it("refuses clients pinned to TLS 1.0 and TLS 1.1", function()
      assert.is_false(connects(ctx, { protocol = "tlsv1", ciphers = OLD }))
      assert.is_false(connects(ctx, { protocol = "tlsv1_1", ciphers = OLD }))
    end)

    it("refuses clients that offer only suites without forward secrecy", function()
      assert.is_false(connects(ctx, { protocol = "tlsv1_2", ciphers = "AES128-GCM-SHA256" }))
      assert.is_false(connects(ctx, { protocol = "tlsv1_2", ciphers = "kRSA:@SECLEVEL=0" }))
    end)

    it("accepts TLS 1.2 ECDHE and TLS 1.3 clients", function()
      local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2", ciphers = "ECDHE-RSA-AES128-GCM-SHA256" })
      assert.is_true(r.ok, tostring(r.server_err or r.client_err))
      assert.equal("ECDHE-RSA-AES128-GCM-SHA256", r.client:info().cipher)
      r.close()
      r = tls.handshake(ctx, tls.client { protocol = "tlsv1_3" })
      assert.is_true(r.ok)
      assert.equal("TLSv1.3", r.client:info().protocol)
      r.close()
    end)

    it("makes DHE usable with automatic parameters", function()
      assert.is_true(connects(ctx, { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" }))
      assert.equal("auto", tlsharden.inspect(ctx).dh)
    end)
  end)

  describe("a report kept for later", function()
    it("is the report harden would have returned, asked for when it is needed", function()
      local cfg = { protocol = "any", ciphers = "ALL:@SECLEVEL=0" }
      local now_ctx, later_ctx = server(rsa, cfg), server(rsa, cfg)
      assert.is_nil(context.harden_report(later_ctx))
      local now = tlsharden.harden(now_ctx, { dhe = "on" })
      local n = tlsharden.harden(later_ctx, { dhe = "on" }, { report = false })
      assert.equal(#now.changes, n)
      assert.is_true(n >= 5)
      assert.same(now, context.harden_report(later_ctx))
      assert.same(now, context.harden_report(now_ctx))
      -- the cipher lists are recorded whole
      local ciphers
      for _, c in ipairs(now.changes) do if c.setting == "ciphers" then ciphers = c end end
      assert.truthy((":" .. ciphers.before .. ":"):find(":AES128-SHA:", 1, true))
      assert.is_nil((":" .. ciphers.after .. ":"):find(":AES128-SHA:", 1, true))
      -- the context is hardened the same way
      assert.is_false(connects(later_ctx, { protocol = "tlsv1", ciphers = OLD }))
      assert.same(tlsharden.inspect(now_ctx), tlsharden.inspect(later_ctx))
      -- a second hardening replaces the report: nothing left to change
      assert.equal(0, tlsharden.harden(later_ctx, { dhe = "on" }, { report = false }))
      assert.same({}, context.harden_report(later_ctx).changes)
    end)

    it("pipeline.prepare fills the caller's report table and hands its job to the builder", function()
      local pipeline = require "tlsharden.pipeline"
      local report = { merge = "stale", harden = "stale", config = "stale" }
      local seen
      local job = { report = report, later = true, harden = { dhe = "on" } }
      job.build = function(cfg, j)
        seen = j
        assert.is_nil(cfg)
        return server(rsa, { protocol = "any", ciphers = "ALL:@SECLEVEL=0" })
      end
      local ctx, got = pipeline.prepare(job)
      assert.equal(job, seen)
      assert.equal(report, got)
      assert.is_nil(got.merge)
      assert.is_nil(got.config)
      assert.is_false(got.harden)  -- kept on the context until finish
      local finished = pipeline.finish(ctx, got)
      assert.is_true(#finished.harden.changes >= 5)
      assert.same(context.harden_report(ctx), finished.harden)
      assert.is_table(finished.context)
      local first = finished.harden
      -- the same table again, for the next context: nothing of the first left in it
      local ctx2, again = pipeline.prepare(job)
      assert.equal(report, again)
      assert.is_false(again.harden)
      assert.is_nil(again.context)
      assert.same(first, context.harden_report(ctx2))
    end)

    it("refuses unknown options and what is not a context", function()
      local ctx = server(ec, {})
      local ok, err = pcall(tlsharden.harden, ctx, nil, { reprot = false })
      assert.is_false(ok)
      assert.matches("tlsharden.harden: bad argument #3 'opts': unknown option 'reprot'", err, 1, true)
      ok, err = pcall(tlsharden.harden, ctx, nil, { report = "no" })
      assert.is_false(ok)
      assert.matches("tlsharden.harden: bad option 'report'", err, 1, true)
      ok, err = pcall(context.harden_report, "x")
      assert.is_false(ok)
      assert.matches("^tlsharden%.context%.harden_report: bad argument #1", tostring(err))
    end)
  end)

  describe("the dhe rule", function()
    local DHE = { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" }
    local pem
    setup(function()
      local params = dir .. "/dh.pem"
      pki.run("openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe3072 -out " .. pki.quote(params))
      pem = pki.read(params)
    end)
    local function dh_change(report)
      for _, c in ipairs(report.changes) do if c.setting == "dh_parameters" then return c end end
    end

    it("auto: switches automatic parameters on only for a context without its own", function()
      local bare = server(rsa, { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256" })
      assert.is_false(connects(bare, DHE))
      assert.equal("auto", dh_change(tlsharden.harden(bare)).after)
      assert.is_true(connects(bare, DHE))
      local own = server(rsa, { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
        dhparam = function() return pem end })
      assert.is_nil(dh_change(tlsharden.harden(own)))
      assert.equal("unknown", tlsharden.inspect(own).dh)
      assert.is_true(connects(own, DHE))
    end)

    it("on: switches them on without testing; keep: leaves the context as it is", function()
      local bare = server(rsa, { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256" })
      assert.equal("auto", dh_change(tlsharden.harden(bare, { dhe = "on" })).after)
      assert.equal("auto", tlsharden.inspect(bare).dh)
      assert.is_true(connects(bare, DHE))
      local kept = server(rsa, { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256" })
      assert.is_nil(dh_change(tlsharden.harden(kept, { dhe = "keep" })))
      assert.is_false(connects(kept, DHE))
      -- nothing to switch on without DHE suites
      local ecdhe = server(rsa, { ciphers = "ECDHE-RSA-AES128-GCM-SHA256" })
      assert.is_nil(dh_change(tlsharden.harden(ecdhe, { dhe = "on" })))
      assert.equal("on", tlsharden.harden(ecdhe, { dhe = "on" }).policy.dhe)
    end)
  end)

  -- Which inspect field each report setting changes.
  local function field_of(setting)
    if setting:match("^options%.") then return "options" end
    return ({ min_version = "min", max_version = "max", ciphers = "tls12_suites",
      ciphersuites = "tls13_suites", groups = "groups", depth = "depth",
      security_level = "security_level", dh_parameters = "dh", num_tickets = "num_tickets" })[setting]
  end

  local function differs(a, b)
    if type(a) ~= type(b) then return true end
    if type(a) ~= "table" then return a ~= b end
    for k, v in pairs(a) do if differs(v, b[k]) then return true end end
    for k in pairs(b) do if a[k] == nil then return true end end
    return false
  end

  it("inspect with only = \"certificate\" gives the mode and the same certificate, nothing else", function()
    for _, cert in ipairs { rsa, ec } do
      local ctx = server(cert, { protocol = "any" })
      local full, part = tlsharden.inspect(ctx), tlsharden.inspect(ctx, { only = "certificate" })
      assert.same({ mode = full.mode, certificate = full.certificate }, part)
      assert.same(full, tlsharden.inspect(ctx, { only = "all" }))
    end
    assert.equal("EC", tlsharden.inspect(server(ec, { protocol = "any" }), { only = "certificate" }).certificate.key_type)
    assert.same({ mode = "server" }, tlsharden.inspect(ssl.newcontext { mode = "server", protocol = "any" },
      { only = "certificate" }))
    assert.has_error(function() tlsharden.inspect(server(ec, {}), { only = "suites" }) end,
      "tlsharden.inspect: bad option 'only': expected \"all\" or \"certificate\", got 'suites'")
  end)

  it("key_kind gives the certificate key's type and size, as inspect does, and nil without a certificate", function()
    for _, cert in ipairs { rsa, ec } do
      local ctx = server(cert, { protocol = "any" })
      local c = tlsharden.inspect(ctx).certificate
      local key_type, key_bits = context.key_kind(ctx)
      assert.equal(c.key_type, key_type)
      assert.equal(c.key_bits, key_bits)
    end
    assert.same({ "EC", 256 }, { context.key_kind(server(ec, { protocol = "any" })) })
    assert.is_nil(context.key_kind(ssl.newcontext { mode = "server", protocol = "any" }))
    assert.is_nil(context.key_kind(ssl.newcontext { mode = "client", protocol = "any" }))
  end)

  it("inspect before and after shows exactly the differences the report lists", function()
    local ctx = server(ec, { protocol = "any", ciphers = "ALL" })
    local before = tlsharden.inspect(ctx)
    local report = tlsharden.harden(ctx)
    local after = tlsharden.inspect(ctx)
    local listed = {}
    for _, change in ipairs(report.changes) do
      local field = assert(field_of(change.setting), change.setting)
      listed[field] = true
      if change.setting == "options.cipher_server_preference" then listed.server_preference = true end
      assert.are_not.same(change.before, change.after)
    end
    listed.versions = listed.min  -- the versions list follows the minimum
    listed.min_version = listed.min
    listed.groups_source = listed.groups
    for k in pairs(after) do
      if differs(before[k], after[k]) then
        assert.is_true(listed[k] == true, "inspect field '" .. k .. "' changed without a report entry")
      end
    end
    for field in pairs(listed) do
      if field ~= "versions" and field ~= "groups_source" then
        assert.is_true(differs(before[field], after[field]), "report lists '" .. field .. "' but inspect shows no change")
      end
    end
    -- and the specific before/after values
    assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, before.versions)
    assert.same({ "tlsv1_2", "tlsv1_3" }, after.versions)
    assert.equal("X25519:P-256:P-384", after.groups)
    assert.equal(9, after.depth)
    assert.equal(2, before.num_tickets)
    assert.equal(1, after.num_tickets)
    for _, s in ipairs(after.tls12_suites) do
      local info = tlsharden.ciphers(s.name, { ciphersuites = "" }).suites[1]
      assert.is_true(info.fs, s.name)
      assert.same({}, info.weak)
    end
  end)

  it("reads back everything it documents", function()
    local ctx = server(ec, { protocol = "tlsv1_2", verify = { "peer", "fail_if_no_peer_cert" }, depth = 4,
      options = { "cipher_server_preference" } })
    local info = tlsharden.inspect(ctx)
    assert.equal("server", info.mode)
    assert.equal("tlsv1_2", info.min)
    assert.equal("tlsv1_2", info.max)
    assert.same({ "peer", "fail_if_no_peer_cert" }, info.verify)
    assert.equal(4, info.depth)
    assert.is_true(info.server_preference)
    assert.equal(2, info.security_level)
    assert.equal("CN=ec", info.certificate.subject)
    assert.equal("EC", info.certificate.key_type)
    assert.equal(256, info.certificate.key_bits)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", info.certificate.not_after)
    assert.is_false(info.unusable)
    assert.equal("TLS_AES_256_GCM_SHA384", info.tls13_suites[1].iana)
    local probed = tlsharden.inspect(ctx, { probe = true })
    assert.is_true(probed.ecdhe_usable)
  end)

  it("hardens a context built with Prosody 0.12's default layers", function()
    local cfg = tlsharden.merge({ { mode = "server", key = rsa.key, certificate = rsa.cert }, tlsharden.profile("intermediate"), tlsharden.profile("prosody") }, { order = "prosody" })
    local ctx = assert(ssl.newcontext(cfg))
    local report = tlsharden.harden(ctx)
    local settings = {}
    for _, c in ipairs(report.changes) do settings[c.setting] = c end
    -- Prosody leaves no minimum on the SSL_CTX (its floor is options) ...
    assert.equal("any", settings.min_version.before)
    -- ... has no DH parameters for its DHE suites ...
    assert.equal("auto", settings.dh_parameters.after)
    -- ... and prefers the client's order.
    assert.is_true(settings["options.cipher_server_preference"].after)
    assert.is_true(connects(ctx, { protocol = "tlsv1_2", ciphers = "DHE-RSA-AES128-GCM-SHA256" }))
  end)

  it("hardens a legacy block copied from an old tutorial", function()
    local ctx = server(rsa, { protocol = "sslv23", ciphers = "ALL:@SECLEVEL=0", options = { "no_sslv2" } })
    assert.is_true(connects(ctx, { protocol = "tlsv1", ciphers = OLD }))
    local report = tlsharden.harden(ctx)
    assert.is_true(#report.changes >= 5)
    assert.is_false(connects(ctx, { protocol = "tlsv1", ciphers = OLD }))
    assert.is_false(connects(ctx, { protocol = "tlsv1_2", ciphers = "ADH-AES128-GCM-SHA256:@SECLEVEL=0" }))
    assert.is_true(connects(ctx, { protocol = "tlsv1_3" }))
    local info = tlsharden.inspect(ctx)
    assert.equal(2, info.security_level)
  end)

  it("hardens a client context", function()
    local ctx = assert(ssl.newcontext { mode = "client", protocol = "any", ciphers = "ALL" })
    local report = tlsharden.harden(ctx)
    assert.is_true(#report.changes > 0)
    local info = tlsharden.inspect(ctx)
    assert.equal("client", info.mode)
    assert.same({ "tlsv1_2", "tlsv1_3" }, info.versions)
    -- it can still talk to a modern server, and not to a TLS 1.1-only one
    local modern = server(ec, { protocol = "tlsv1_2" })
    local r = tls.handshake(modern, ctx)
    assert.is_true(r.ok, tostring(r.server_err or r.client_err))
    r.close()
    local old = server(rsa, { protocol = "tlsv1_1", ciphers = OLD })
    r = tls.handshake(old, ctx)
    assert.is_false(r.ok)
    r.close()
  end)

  it("switches a rule off or gives it another value", function()
    local ctx = server(ec, { protocol = "any", ciphers = "ALL" })
    local report = tlsharden.harden(ctx, { min_version = "tlsv1_3", groups = false, filter_ciphers = false,
      server_preference = false, depth = 5 })
    local info = tlsharden.inspect(ctx)
    assert.same({ "tlsv1_3" }, info.versions)
    assert.is_nil(info.groups)
    assert.is_false(info.server_preference)
    assert.equal(5, info.depth)
    for _, c in ipairs(report.changes) do assert.are_not.equal("ciphers", c.setting) end
  end)

  describe("fails closed", function()
    it("makes the context unusable when no forward-secret suite is left", function()
      local ctx = server(rsa, { protocol = "tlsv1_2", ciphers = "kRSA" })
      assert.is_true(connects(ctx, { protocol = "tlsv1_2" }))
      local ok, err = pcall(tlsharden.harden, ctx)
      assert.is_false(ok)
      assert.matches("tlsharden.harden: step 'cipher list' failed: no forward-secret TLS 1.2 suite", err, 1, true)
      assert.matches("the context has been made unusable", err, 1, true)
      -- no client gets in, whatever it offers
      assert.is_false(connects(ctx, { protocol = "tlsv1_2" }))
      assert.is_false(connects(ctx, { protocol = "tlsv1_3" }))
      assert.is_false(connects(ctx, { protocol = "any", ciphers = OLD }))
      local info = tlsharden.inspect(ctx)
      assert.is_true(info.unusable)
      assert.equal("cipher list", info.failed_step)
      assert.same({}, info.versions)
      -- and it cannot be hardened again into use
      ok, err = pcall(tlsharden.harden, ctx)
      assert.is_false(ok)
      assert.matches("made unusable by a failed hardening", err, 1, true)
    end)
  end)

  describe("bad input", function()
    local function unchanged(ctx, f)
      local before = tlsharden.inspect(ctx)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.same(before, tlsharden.inspect(ctx))
      return tostring(err)
    end

    it("names the argument for anything that is not a LuaSec context", function()
      for _, bad in ipairs { 1, "ctx", {}, io.stdout } do
        for _, fn in ipairs { "harden", "inspect" } do
          local ok, err = pcall(tlsharden[fn], bad)
          assert.is_false(ok)
          assert.matches("tlsharden." .. fn .. ": bad argument #1: expected a LuaSec context", err, 1, true)
        end
      end
      local conn = assert(ssl.wrap(assert(socket.tcp()), server(ec)))
      assert.has_error(function() tlsharden.inspect(conn) end)
      conn:close()
    end)

    it("refuses a closed context", function()
      local ctx = server(ec)
      getmetatable(ctx).__close(ctx)
      local ok, err = pcall(tlsharden.harden, ctx)
      assert.is_false(ok)
      assert.matches("the LuaSec context is closed", err, 1, true)
    end)

    it("refuses a bad policy and leaves the context as it was", function()
      local ctx = server(ec, { protocol = "any", ciphers = "ALL" })
      local err = unchanged(ctx, function() tlsharden.harden(ctx, { min_version = "tlsv9" }) end)
      assert.matches("bad policy 'min_version'", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, { bogus = true }) end)
      assert.matches("unknown rule 'bogus'", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, { ciphersuites = "TLS_NOPE" }) end)
      assert.matches("bad policy 'ciphersuites': OpenSSL refuses 'TLS_NOPE'", err, 1, true)
      assert.matches("the context was not changed", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, { groups = "P-999" }) end)
      assert.matches("bad policy 'groups': OpenSSL refuses 'P-999'", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, { security_level = 9 }) end)
      assert.matches("bad policy 'security_level'", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, { depth = 40 }) end)
      assert.matches("outside depth_min..depth_max", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, { dhe = "maybe" }) end)
      assert.matches("bad policy 'dhe'", err, 1, true)
      err = unchanged(ctx, function() tlsharden.harden(ctx, "strict") end)
      assert.matches("bad argument #2 'policy'", err, 1, true)
    end)

    it("knows the same rules as harden_defaults shows, and takes the defaults back unchanged", function()
      local ctx = server(ec, { protocol = "any", ciphers = "ALL" })
      local err = unchanged(ctx, function() tlsharden.harden(ctx, { bogus = true }) end)
      local known = {}
      for name in err:match("%(known: ([^)]*)%)"):gmatch("[%w_]+") do known[#known + 1] = name end
      local shown = {}
      for name in pairs(context.harden_defaults()) do shown[#shown + 1] = name end
      table.sort(known)
      table.sort(shown)
      assert.same(shown, known)
      assert.equal(15, #known)
      local report = tlsharden.harden(server(ec, { protocol = "any", ciphers = "ALL" }), context.harden_defaults())
      assert.same(context.harden_defaults(), report.policy)
      -- a depth outside its bounds is reported before a later bad rule
      err = unchanged(ctx, function() tlsharden.harden(ctx, { depth = 40, num_tickets = 99 }) end)
      assert.matches("outside depth_min..depth_max", err, 1, true)
    end)
  end)
end)

describe("tlsharden.new_context", function()
  local dir, ec
  setup(function()
    dir = pki.tmpdir()
    ec = pki.cert(dir, "ec", { key_kind = "ec256", san = { "DNS:localhost" } })
  end)
  teardown(function() pki.cleanup(dir) end)

  it("merges over the hardened profile, builds, hardens and inspects", function()
    local ctx, report = tlsharden.new_context { key = ec.key, certificate = ec.cert }
    assert.equal("sslv23", report.config.protocol)
    assert.equal("profile hardened", report.merge.origin.ciphers)
    assert.same({ "tlsv1_2", "tlsv1_3" }, report.context.versions)
    assert.equal("server", report.context.mode)
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_3" })
    assert.is_true(r.ok)
    r.close()
    r = tls.handshake(ctx, tls.client { protocol = "tlsv1_1", ciphers = OLD })
    assert.is_false(r.ok)
    r.close()
  end)

  it("keeps the floor even when the config asks for less, and warns", function()
    local ctx, report = tlsharden.new_context { key = ec.key, certificate = ec.cert, protocol = "tlsv1+" }
    assert.equal("protocol", report.merge.warnings[1].setting)
    assert.same({ "tlsv1_2", "tlsv1_3" }, report.context.versions)
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1", ciphers = OLD })
    assert.is_false(r.ok)
    r.close()
  end)

  it("sets the groups the configuration asks for, checked by OpenSSL, or the profile's", function()
    local _, report = tlsharden.new_context { key = ec.key, certificate = ec.cert }
    assert.equal("X25519:P-256:P-384", report.context.groups)
    local ctx
    ctx, report = tlsharden.new_context { key = ec.key, certificate = ec.cert, curveslist = { "P-384" } }
    assert.equal("P-384", report.context.groups)
    assert.equal("P-384", report.config.curveslist)
    for _, c in ipairs { { "P-384", true }, { "X25519", false } } do
      local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_3", curveslist = c[1] })
      assert.equal(c[2], r.ok, c[1])
      r.close()
    end
    -- a harden policy that names groups wins
    _, report = tlsharden.new_context({ key = ec.key, certificate = ec.cert, curveslist = "P-384" },
      { harden = { groups = "X25519" } })
    assert.equal("X25519", report.context.groups)
    local ok, err = pcall(tlsharden.new_context, { key = ec.key, certificate = ec.cert, curveslist = "P-384:P-999" })
    assert.is_false(ok)
    assert.matches("bad curveslist: OpenSSL refuses 'P-384:P-999'", err, 1, true)
  end)

  it("loads every kind of key LuaSec loads, the common ones through load_key", function()
    local rsa = pki.cert(dir, "rsa", { key_kind = "rsa2048", san = { "DNS:localhost" } })
    local ed = pki.cert(dir, "ed", { key_kind = "ed25519", san = { "DNS:localhost" } })
    -- the same keys in the older PEM forms, and one encrypted with a password
    local sec1, pkcs1, enc = dir .. "/ec-sec1.key", dir .. "/rsa-pkcs1.key", dir .. "/ec-enc.key"
    pki.run(("openssl ec -in %s -out %s 2>/dev/null"):format(pki.quote(ec.key), pki.quote(sec1)))
    pki.run(("openssl rsa -traditional -in %s -out %s 2>/dev/null"):format(pki.quote(rsa.key), pki.quote(pkcs1)))
    pki.run(("openssl pkey -in %s -aes256 -passout pass:secret -out %s"):format(pki.quote(ec.key), pki.quote(enc)))
    assert.matches("BEGIN EC PRIVATE KEY", pki.read(sec1), 1, true)
    assert.matches("BEGIN RSA PRIVATE KEY", pki.read(pkcs1), 1, true)
    local cases = {
      { ec.key, ec.cert, true }, { rsa.key, rsa.cert, true }, { ed.key, ed.cert, true },
      { sec1, ec.cert, false }, { pkcs1, rsa.cert, false },
    }
    for _, c in ipairs(cases) do
      local bare = assert(ssl.newcontext { mode = "server", protocol = "any", certificate = c[2] })
      assert.equal(c[3], (context.load_key(bare, c[1])), c[1])
      local ctx = tlsharden.new_context { key = c[1], certificate = c[2] }
      local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_3" })
      assert.is_true(r.ok, c[1] .. ": " .. tostring(r.server_err or r.client_err))
      r.close()
    end
    local ctx = tlsharden.new_context { key = enc, certificate = ec.cert, password = "secret" }
    local r = tls.handshake(ctx, tls.client { protocol = "tlsv1_2" })
    assert.is_true(r.ok)
    r.close()
    -- a key that is not the certificate's is refused, whichever loader runs
    for _, key in ipairs { rsa.key, pkcs1 } do
      local ok, err = pcall(tlsharden.new_context, { key = key, certificate = ec.cert })
      assert.is_false(ok)
      assert.matches("private key does not match public key", err, 1, true)
    end
    local ok, err = pcall(tlsharden.new_context, { key = dir .. "/none.key", certificate = ec.cert })
    assert.is_false(ok)
    assert.matches("LuaSec refused the merged configuration: error loading private key", err, 1, true)
  end)

  it("refuses under policy strict", function()
    local ok, err = pcall(tlsharden.new_context, { key = ec.key, certificate = ec.cert, protocol = "tlsv1+" },
      { policy = "strict" })
    assert.is_false(ok)
    assert.matches("layer 'config' lowers security: protocol", err, 1, true)
  end)

  it("raises with LuaSec's reason when the merged configuration cannot be built", function()
    local ok, err = pcall(tlsharden.new_context, { key = dir .. "/missing.key", certificate = ec.cert })
    assert.is_false(ok)
    assert.matches("tlsharden.new_context: LuaSec refused the merged configuration", err, 1, true)
    assert.has_error(function() tlsharden.new_context("x") end)
    assert.has_error(function() tlsharden.new_context({}, { profile = "nope" }) end)
  end)
end)
