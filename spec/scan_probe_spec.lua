-- tlsharden.scan.probe against real peers on 127.0.0.1: openssl s_server
-- and gnutls-serv variants, compared with what sslscan finds on the same
-- port; for SSLv2, SSL 3.0 and export suites, which no library here
-- serves, and for broken peers, the spec responder (spec/helpers/responder.lua).
local wire = require "tlsharden.wire"
local probe = require "tlsharden.scan.probe"
local problems = require "tlsharden.problems"
local tlsharden = require "tlsharden"
local servers = require "spec.helpers.servers"
local sh = require "spec.helpers.sh"

local RESPONDER = "lua5.4 spec/helpers/responder.lua {port} "

local function scan(port, extra)
  local opts = { open = function(sched) return sched:connect("127.0.0.1", port) end, timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return probe.run(opts)
end

local function ids(suites)
  local t = {}
  for i, s in ipairs(suites) do t[i] = s.id end
  return t
end

local function sorted(list)
  local t = { table.unpack(list) }
  table.sort(t, function(a, b) return tostring(a) < tostring(b) end)
  return t
end

local SSLSCAN_VERSIONS = { SSLv2 = "sslv2", SSLv3 = "sslv3", ["TLSv1.0"] = "tlsv1",
  ["TLSv1.1"] = "tlsv1_1", ["TLSv1.2"] = "tlsv1_2", ["TLSv1.3"] = "tlsv1_3" }
local SSLSCAN_PROTOCOLS = { ["ssl 2"] = "sslv2", ["ssl 3"] = "sslv3", ["tls 1.0"] = "tlsv1",
  ["tls 1.1"] = "tlsv1_1", ["tls 1.2"] = "tlsv1_2", ["tls 1.3"] = "tlsv1_3" }

-- sslscan's XML report: protocols enabled, suite ids per protocol (in its
-- order: the server's when it has one), group ids per protocol.
local function sslscan(port)
  local xml = sh.run("sslscan --no-colour --xml=- --no-heartbleed 127.0.0.1:" .. port)
  local r = { versions = {}, suites = {}, groups = {}, dh_bits = {} }
  for ptype, version, enabled in xml:gmatch('<protocol type="(%a+)" version="([%d.]+)" enabled="(%d)"') do
    if enabled == "1" then r.versions[#r.versions + 1] = SSLSCAN_PROTOCOLS[ptype .. " " .. version] end
  end
  for attrs in xml:gmatch("<cipher (.-)/>") do
    local p = SSLSCAN_VERSIONS[attrs:match('sslversion="([^"]+)"')]
    r.suites[p] = r.suites[p] or {}
    table.insert(r.suites[p], tonumber(attrs:match('id="0x(%x+)"'), 16))
    local dh = attrs:match('dhebits="(%d+)"')
    if dh then r.dh_bits[#r.dh_bits + 1] = tonumber(dh) end
  end
  for attrs in xml:gmatch("<group (.-)/>") do
    local p = SSLSCAN_VERSIONS[attrs:match('sslversion="([^"]+)"')]
    r.groups[p] = r.groups[p] or {}
    table.insert(r.groups[p], tonumber(attrs:match('id="0x(%x+)"'), 16))
  end
  return r
end

local function group_ids(names)
  local by = {}
  for _, g in ipairs(wire.groups()) do by[g.name] = g.id end
  local t = {}
  for i, n in ipairs(names) do t[i] = by[n] end
  return t
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local fx
setup(function() fx = servers.fixtures() end)
teardown(function() if fx then fx.cleanup() end end)

-- Run fn(server) against a started server and always stop it.
local function against(server, fn)
  local ok, err = pcall(fn, server)
  server.stop()
  if not ok then error(err, 0) end
end

describe("the wire probe against openssl s_server", function()
  it("finds a TLS 1.2-only server's suites in its order, as sslscan does", function()
    local spec = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:AES128-SHA"
    against(servers.openssl(fx.dir, fx.rsa, ("-tls1_2 -serverpref -cipher %s -dhparam %s"):format(
      spec, fx.dhparam(2048))), function(server)
      local r = scan(server.port)
      local expected = {}
      for _, c in ipairs(tlsharden.ciphers(spec).suites) do
        if c.protocol ~= "tlsv1_3" then expected[#expected + 1] = c.id end
      end
      assert.same({ "tlsv1_2" }, r.versions)
      assert.same(expected, ids(r.protocols.tlsv1_2.suites))
      assert.equal("server", r.protocols.tlsv1_2.preference)
      -- a hello offering TLS 1.3 alone shares no version with it
      assert.same({ false, "protocol_version" }, { r.protocols.tlsv1_3.accepted, r.protocols.tlsv1_3.alert })
      assert.same({ false, "protocol_version" }, { r.protocols.tlsv1.accepted, r.protocols.tlsv1.alert })
      assert.is_false(r.protocols.sslv3.accepted)
      assert.is_false(r.protocols.sslv2.accepted)
      assert.equal(fx.der(fx.rsa), hex(r.certificates[1]))
      assert.same({ true, "null", 2048 }, { r.secure_renegotiation, r.compression, r.dh_bits })
      assert.is_nil(r.fallback_scsv)  -- one version only: nothing to fall back to
      assert.same({}, r.problems)
      local theirs = sslscan(server.port)
      assert.same(theirs.versions, r.versions)
      assert.same(theirs.suites.tlsv1_2, ids(r.protocols.tlsv1_2.suites))
    end)
  end)

  it("reports client order when the server follows the client", function()
    against(servers.openssl(fx.dir, fx.rsa, "-tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA"),
      function(server)
        local r = scan(server.port)
        assert.equal("client", r.protocols.tlsv1_2.preference)
        assert.same(sorted(sslscan(server.port).suites.tlsv1_2), sorted(ids(r.protocols.tlsv1_2.suites)))
      end)
  end)

  it("finds a TLS 1.3-only server's suites and groups and the group it prefers", function()
    against(servers.openssl(fx.dir, fx.rsa,
      "-tls1_3 -serverpref -ciphersuites TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256 -groups secp384r1:X25519"),
      function(server)
        local r = scan(server.port)
        local t13 = r.protocols.tlsv1_3
        assert.same({ "tlsv1_3" }, r.versions)
        assert.same({ 0x1302, 0x1303 }, ids(t13.suites))
        assert.same({ "server", { "secp384r1", "x25519" }, "server", "secp384r1" },
          { t13.preference, t13.groups, t13.group_preference, t13.preferred_group })
        assert.same({ "secp384r1", "x25519" }, r.groups)
        -- OpenSSL takes a client's key share for x25519 rather than ask for
        -- secp384r1: its order decides only without a key share it takes
        assert.is_true(t13.key_share_wins)
        assert.is_true(r.key_share_wins)
        assert.is_nil(r.certificates)  -- TLS 1.3 sends the chain encrypted
        assert.same({ false, "protocol_version" }, { r.protocols.tlsv1_2.accepted, r.protocols.tlsv1_2.alert })
        local theirs = sslscan(server.port)
        assert.same(sorted(theirs.suites.tlsv1_3), sorted(ids(t13.suites)))
        assert.same(sorted(theirs.groups.tlsv1_3), sorted(group_ids(t13.groups)))
      end)
  end)

  it("leaves the server's orders out with order = false, finding the same with fewer connections", function()
    against(servers.openssl(fx.dir, fx.rsa, "-serverpref -groups secp384r1:X25519:P-256"), function(server)
      local full, quick = scan(server.port), scan(server.port, { order = false })
      assert.same(full.versions, quick.versions)
      for _, p in ipairs(full.versions) do
        assert.same(sorted(ids(full.protocols[p].suites)), sorted(ids(quick.protocols[p].suites)), p)
        assert.same(sorted(full.protocols[p].groups or {}), sorted(quick.protocols[p].groups or {}), p)
        assert.equal("server", full.protocols[p].preference, p)
        assert.same({}, { quick.protocols[p].preference, quick.protocols[p].group_preference,
          quick.protocols[p].preferred_group })
      end
      assert.same({ full.dh_bits, full.secure_renegotiation, full.compression, full.fallback_scsv },
        { quick.dh_bits, quick.secure_renegotiation, quick.compression, quick.fallback_scsv })
      assert.is_true(quick.connections < full.connections)
      assert.has_error(function() scan(server.port, { order = "no" }) end,
        "tlsharden.scan.probe.run: bad option 'order': expected a boolean, got 'no'")
    end)
  end)

  it("reads a 1024-bit DH group from the ServerKeyExchange", function()
    against(servers.openssl(fx.dir, fx.rsa, "-tls1_2 -cipher 'DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA:@SECLEVEL=0' -dhparam "
      .. fx.dhparam(1024)), function(server)
      local r = scan(server.port)
      assert.equal(1024, r.dh_bits)
      for _, s in ipairs(r.protocols.tlsv1_2.suites) do assert.equal(1024, s.dh_bits) end
      assert.same({ 1024, 1024 }, sslscan(server.port).dh_bits)
    end)
  end)

  it("finds the ECDHE groups of a TLS 1.2 server in its order", function()
    -- an RSA certificate: with ECDSA, TLS 1.2 ties the certificate's curve to
    -- the client's groups, and the search would stop at that curve
    against(servers.openssl(fx.dir, fx.rsa, "-tls1_2 -serverpref -cipher ECDHE-RSA-AES128-GCM-SHA256 -groups secp384r1:prime256v1:X25519"),
      function(server)
        local r = scan(server.port)
        local t12 = r.protocols.tlsv1_2
        assert.same({ { "secp384r1", "secp256r1", "x25519" }, "server" }, { t12.groups, t12.group_preference })
        assert.equal("secp384r1", t12.suites[1].group)
        assert.same(sorted(sslscan(server.port).groups.tlsv1_2), sorted(group_ids(t12.groups)))
      end)
  end)

  it("finds every version and suite of a permissive server, and TLS_FALLBACK_SCSV", function()
    against(servers.openssl(fx.dir, fx.rsa, "-cipher 'ALL:@SECLEVEL=0' -dhparam " .. fx.dhparam(2048)), function(server)
      local r = scan(server.port)
      assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, r.versions)
      assert.is_true(r.fallback_scsv)
      assert.equal("tlsv1_2", r.fallback_protocol)
      local theirs = sslscan(server.port)
      for _, p in ipairs(r.versions) do
        assert.same(sorted(theirs.suites[p]), sorted(ids(r.protocols[p].suites)), p)
      end
    end)
  end)
end)

describe("the wire probe against gnutls-serv", function()
  it("finds the RC4 and 3DES suites OpenSSL here cannot offer, as sslscan does", function()
    against(servers.gnutls(fx.dir, fx.rsa, "NORMAL:+ARCFOUR-128:+3DES-CBC:+VERS-TLS1.0:+VERS-TLS1.1"), function(server)
      local r = scan(server.port)
      assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, r.versions)
      local t10 = ids(r.protocols.tlsv1.suites)
      for _, id in ipairs { 0x0005, 0x000A, 0x0016, 0xC011, 0xC012 } do
        assert.is_truthy(table.concat(t10, " "):find(tostring(id), 1, true), ("0x%04X"):format(id))
      end
      local rc4 = wire.suite(0x0005)
      for _, s in ipairs(r.protocols.tlsv1.suites) do
        if s.id == 0x0005 then assert.same(rc4.weak, s.weak) end
      end
      local theirs = sslscan(server.port)
      assert.same(theirs.versions, r.versions)
      for _, p in ipairs(r.versions) do
        assert.same(sorted(theirs.suites[p]), sorted(ids(r.protocols[p].suites)), p)
      end
    end)
  end)
end)

describe("the wire probe against the responder", function()
  local function responder(config)
    return servers.start(RESPONDER .. sh.quote(config), fx.dir)
  end
  local function der_file(cert)
    local path = cert.cert .. ".der"
    sh.run(("openssl x509 -in %s -outform DER -out %s"):format(sh.quote(cert.cert), sh.quote(path)))
    return path
  end

  it("finds SSL 3.0 and export suites, their key sizes, compression and the fallback refusal", function()
    local config = ([[{ versions = { "sslv3", "tlsv1" }, cert = %q, dh_bits = 512, compression = true,
      secure_renegotiation = true, fallback_scsv = true, suites = { { 0x0003, "rsa_export" },
      { 0x0006, "rsa_export" }, { 0x0004, "rsa" }, { 0x0014, "dhe" }, { 0x000A, "rsa" } } }]]):format(der_file(fx.rsa))
    against(responder(config), function(server)
      local r = scan(server.port)
      assert.same({ "sslv3", "tlsv1" }, r.versions)
      local v3 = r.protocols.sslv3
      assert.same({ 0x0003, 0x0006, 0x0004, 0x0014, 0x000A }, ids(v3.suites))
      assert.equal("server", v3.preference)
      assert.same({ true, 512 }, { v3.suites[1].export, v3.suites[1].rsa_bits })
      assert.same({ 512, "deflate", true, true, "sslv3" },
        { r.dh_bits, r.compression, r.fallback_scsv, r.secure_renegotiation, r.fallback_protocol })
      assert.equal("tlsv1", r.protocols.tlsv1_2.answered_with)
      assert.equal(fx.der(fx.rsa), hex(r.certificates[1]))
    end)
  end)

  it("reports a server without secure renegotiation that ignores TLS_FALLBACK_SCSV", function()
    against(responder('{ versions = { "sslv3", "tlsv1" }, suites = { { 0x0005, "rsa" } } }'), function(server)
      local r = scan(server.port)
      assert.same({ false, false, "null" }, { r.secure_renegotiation, r.fallback_scsv, r.compression })
      assert.is_nil(r.protocols.tlsv1.preference)  -- one suite: no order to tell
    end)
  end)

  it("finds SSLv2 and its cipher kinds", function()
    local config = ('{ mode = "sslv2", cert = %q, sslv2_kinds = { 0x0700C0, 0x020080, 0x010080 } }'):format(der_file(fx.rsa))
    against(responder(config), function(server)
      local r = scan(server.port)
      assert.same({ "sslv2" }, r.versions)
      assert.same(sorted({ 0x0700C0, 0x020080, 0x010080 }), sorted(ids(r.protocols.sslv2.suites)))
      assert.is_true(r.protocols.sslv2.suites[1].sslv2)
      assert.equal(fx.der(fx.rsa), hex(r.certificates[1]))
      for _, p in ipairs { "sslv3", "tlsv1", "tlsv1_2", "tlsv1_3" } do
        assert.is_false(r.protocols[p].accepted, p)
      end
    end)
  end)

  describe("turns a broken peer into problem records within the timeout", function()
    local cases = {
      { "silent", "TIMEOUT", nil },
      { "close", nil, false },
      { "close_mid", "TRUNCATED", nil },
      { "garbage", "NOT_TLS", nil },
      { "huge_record", "RECORD_TOO_LONG", nil },
      { "http", "NOT_TLS", nil },
      { "truncated", "TIMEOUT", nil },
      { "slow", "TIMEOUT", nil },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        against(responder(('{ mode = %q }'):format(c[1])), function(server)
          local r = scan(server.port, { timeout = 1 })
          assert.same({}, r.versions)
          for _, p in ipairs(require("tlsharden.protocols").names) do
            assert.equal(c[3], r.protocols[p].accepted, p)
          end
          local codes = {}
          for _, f in ipairs(r.problems) do
            assert.same({ true }, { problems.check(f) })
            codes[f.code] = f
          end
          if c[2] then
            assert.is_truthy(codes[c[2]], c[2])
          else
            assert.same({}, r.problems)
          end
          if c[1] == "http" then assert.matches("looks like http", codes.NOT_TLS.message, 1, true) end
        end)
      end)
    end

    it("a closed port", function()
      local r = scan(servers.free_port(), { timeout = 1 })
      assert.same({}, r.versions)
      assert.equal("CONNECT_FAILED", r.problems[1].code)
    end)
  end)
end)

describe("tlsharden.scan.probe options", function()
  local open = function() return nil, "unused" end
  for _, c in ipairs {
    { { open = open, colour = 1 }, "bad argument #1 'opts': unknown option 'colour'" },
    { { }, "bad option 'open': expected a function(sched) returning a connection, got nil" },
    { { open = open, timeout = 0 }, "bad option 'timeout': expected a number from 0.001 to 3600, got 0" },
    { { open = open, per_server = 1.5 }, "bad option 'per_server': expected a whole number from 1 to 1024, got 1.5" },
    { { open = open, protocols = { "tls1.2" } }, "bad option 'protocols': item #1: expected sslv2, sslv3, tlsv1, tlsv1_1, tlsv1_2, tlsv1_3, got 'tls1.2'" },
    { { open = open, server_name = 42 }, "bad option 'server_name': expected a string, got 42" },
    { { open = open, max_suites = 5000 }, "bad option 'max_suites': expected a whole number from 1 to 4000, got 5000" },
  } do
    it(c[2]:sub(1, 60), function()
      local ok, err = pcall(probe.run, c[1])
      assert.is_false(ok)
      assert.matches("tlsharden.scan.probe.run: " .. c[2], err, 1, true)
    end)
  end

  it("takes max_suites and a subset of protocols", function()
    against(servers.openssl(fx.dir, fx.rsa, "-tls1_2 -serverpref -cipher 'ALL:@SECLEVEL=0'"), function(server)
      local all = scan(server.port, { protocols = { "tlsv1_2" } })
      local small = scan(server.port, { protocols = { "tlsv1_2" }, max_suites = 16 })
      assert.same({ "tlsv1_2" }, small.versions)
      assert.is_nil(small.protocols.tlsv1_3)
      assert.is_true(small.protocols.tlsv1_2.chunks > all.protocols.tlsv1_2.chunks)
      assert.same(ids(all.protocols.tlsv1_2.suites), ids(small.protocols.tlsv1_2.suites))
    end)
  end)
end)
