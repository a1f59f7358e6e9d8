-- wire.client_hello: the bytes, decoded here by the spec's own reader
-- (RFC 5246 7.4.1.2, RFC 8446 4.1.2, the SSLv2 CLIENT-HELLO), and the same
-- hellos read by a real OpenSSL server (s_server -trace) that answers them.
local wire = require "tlsharden.wire"
local socket = require "socket"
local tlsharden = require "tlsharden"
local servers = require "spec.helpers.servers"
local struct = require "spec.helpers.struct"

local function u16(b, p) return struct.unpack(">I2", b, p) end

-- The spec's own ClientHello reader: fields by name, extensions by type.
local function decode(b)
  local t = { extensions = {}, order = {} }
  t.record_type, t.record_version, t.record_length = struct.unpack(">B I2 I2", b)
  t.hs_type, t.hs_length = struct.unpack(">B I3", b, 6)
  t.version, t.random = struct.unpack(">I2 c32", b, 10)
  local p = 44
  local sid_len = b:byte(p)
  t.session_id = b:sub(p + 1, p + sid_len)
  p = p + 1 + sid_len
  local n = u16(b, p)
  p = p + 2
  t.suites = {}
  for i = 0, n / 2 - 1 do t.suites[#t.suites + 1] = u16(b, p + 2 * i) end
  p = p + n
  local cn = b:byte(p)
  t.compression = { b:byte(p + 1, p + cn) }
  p = p + 1 + cn
  if p <= #b then
    local total = u16(b, p)
    p = p + 2
    local stop = p + total
    while p < stop do
      local ty, len = struct.unpack(">I2 I2", b, p)
      t.extensions[ty] = b:sub(p + 4, p + 3 + len)
      t.order[#t.order + 1] = ty
      p = p + 4 + len
    end
    t.extensions_end = stop
  end
  t.end_ = p
  return t
end

local function key_shares(ext)
  local shares, p = {}, 3
  while p <= #ext do
    local group, len = struct.unpack(">I2 I2", ext, p)
    shares[#shares + 1] = { group = group, key = ext:sub(p + 4, p + 3 + len) }
    p = p + 4 + len
  end
  return shares
end

describe("wire.client_hello", function()
  it("writes a TLS 1.3 hello as current clients do by default", function()
    local b = wire.client_hello()
    local h = decode(b)
    assert.same({ 22, 0x0301, #b - 5, 1, #b - 9, 0x0303 },
      { h.record_type, h.record_version, h.record_length, h.hs_type, h.hs_length, h.version })
    assert.equal(#b + 1, h.end_)
    assert.equal(32, #h.session_id)  -- middlebox compatibility, as OpenSSL does
    assert.same({ 0x1302, 0x1303, 0x1301 }, { h.suites[1], h.suites[2], h.suites[3] })
    assert.equal(0x00FF, h.suites[#h.suites])
    assert.same({ 0 }, h.compression)
    assert.equal("\4\3\4\3\3", h.extensions[43])  -- supported_versions: 1.3, 1.2
    local shares = key_shares(h.extensions[51])
    assert.equal(1, #shares)
    assert.same({ 29, 32 }, { shares[1].group, #shares[1].key })
    assert.truthy(h.extensions[13] and h.extensions[10])
  end)

  it("offers the heartbeat extension and RFC 8701's GREASE values when asked", function()
    local plain = decode(wire.client_hello { version = "tlsv1_2" })
    assert.is_nil(plain.extensions[15])
    local h = decode(wire.client_hello { version = "tlsv1_2", heartbeat = true })
    assert.equal("\1", h.extensions[15])  -- peer_allowed_to_send
    local g = decode(wire.client_hello { grease = true })
    assert.equal(0x0A0A, g.suites[1])
    assert.equal("", g.extensions[0x1A1A])
    assert.equal("\0", g.extensions[0x2A2A])
    assert.equal("\6\74\74\3\4\3\3", g.extensions[43])  -- 0x4A4A first, then 1.3, 1.2
    local shares = key_shares(g.extensions[51])
    assert.same({ 0x3A3A, "\0" }, { shares[1].group, shares[1].key })
    assert.equal(0x3A3A, g.extensions[10]:byte(3) * 256 + g.extensions[10]:byte(4))
    assert.equal(0x5A5A, g.extensions[13]:byte(3) * 256 + g.extensions[13]:byte(4))
    local ok, err = pcall(wire.client_hello, { version = "sslv2", grease = true })
    assert.is_false(ok)
    assert.matches("bad option 'grease': an SSLv2 CLIENT-HELLO cannot carry it", tostring(err), 1, true)
  end)

  it("keeps the suites in the order given and appends the SCSVs asked for", function()
    local h = decode(wire.client_hello {
      version = "tlsv1_2", suites = { 0xC02F, 0x0035, 0x000A, 0x0004 }, fallback_scsv = true })
    assert.same({ 0xC02F, 0x0035, 0x000A, 0x0004, 0x00FF, 0x5600 }, h.suites)
    assert.same({ 0x0303, "" }, { h.version, h.session_id })
    assert.is_nil(h.extensions[43])
    assert.is_nil(h.extensions[51])
    assert.truthy(h.extensions[13])
    local none = decode(wire.client_hello { version = "tlsv1_2", suites = { 0x002F },
      renegotiation_scsv = false, renegotiation_info = true })
    assert.same({ 0x002F }, none.suites)
    assert.equal("\0", none.extensions[0xFF01])
  end)

  it("leaves signature_algorithms out below TLS 1.2 and every extension out of SSL 3.0", function()
    local h10 = decode(wire.client_hello { version = "tlsv1" })
    assert.same({ 0x0301, 0x0301 }, { h10.record_version, h10.version })
    assert.is_nil(h10.extensions[13])
    assert.truthy(h10.extensions[10])
    local b3 = wire.client_hello { version = "sslv3" }
    local h3 = decode(b3)
    assert.same({ 0x0300, 0x0300, #b3 + 1 }, { h3.record_version, h3.version, h3.end_ })
    assert.is_nil(h3.extensions_end)
    for _, s in ipairs(h3.suites) do
      local info = wire.suite(s)
      assert.is_true(info.scsv or info.protocol == "sslv3", info.name)
    end
    -- asked for explicitly, an SSL 3.0 hello carries the extension
    local sni = decode(wire.client_hello { version = "sslv3", server_name = "example.com" })
    assert.equal("\0\14\0\0\11example.com", sni.extensions[0])
  end)

  it("writes an SSLv2 CLIENT-HELLO with 3-byte cipher kinds", function()
    local challenge = ("c"):rep(16)
    local b = wire.client_hello { version = "sslv2", suites = { 0x0700C0, 0x020080, 0x0035 },
      random = challenge }
    local len = (b:byte(1) - 0x80) * 256 + b:byte(2)
    assert.is_true(b:byte(1) >= 0x80)
    assert.equal(#b - 2, len)
    local msg, version, specs, sid, clen = struct.unpack(">B I2 I2 I2 I2", b, 3)
    assert.same({ 1, 0x0002, 9, 0, 16 }, { msg, version, specs, sid, clen })
    assert.equal("\7\0\192\2\0\128\0\0\53", b:sub(12, 20))
    assert.equal(challenge, b:sub(21))
    -- by default every SSLv2 kind of the registry
    local all = wire.client_hello { version = "sslv2" }
    assert.equal(3 * 8, select(3, struct.unpack(">B I2 I2", all, 3)))
  end)

  it("encodes server_name, alpn, groups, point formats, compression, random and session id", function()
    local random = ("r"):rep(32)
    local h = decode(wire.client_hello {
      version = "tlsv1_2", server_name = "xmpp.example.org", alpn = { "xmpp-client", "h2" },
      groups = { "secp384r1", 0x1234 }, ec_point_formats = { "uncompressed", 1 },
      compression = { "deflate", "null" }, random = random, session_id = "abc",
      signature_algorithms = { "rsa_pss_rsae_sha256", 0x0201 }, session_ticket = false,
      extended_master_secret = false })
    assert.equal("\0\19\0\0\16xmpp.example.org", h.extensions[0])
    assert.equal("\0\15\11xmpp-client\2h2", h.extensions[16])
    assert.equal("\0\4\0\24\18\52", h.extensions[10])
    assert.equal("\2\0\1", h.extensions[11])
    assert.equal("\0\4\8\4\2\1", h.extensions[13])
    assert.same({ 1, 0 }, h.compression)
    assert.same({ random, "abc" }, { h.random, h.session_id })
    assert.is_nil(h.extensions[35])
    assert.is_nil(h.extensions[23])
  end)

  it("carries a session ticket to resume with in session_ticket", function()
    local ticket = ("t"):rep(200)
    local h = decode(wire.client_hello { version = "tlsv1_2", session_id = ("i"):rep(16), session_ticket = ticket })
    assert.equal(ticket, h.extensions[35])
    assert.equal(("i"):rep(16), h.session_id)
    -- true: the extension, empty, as a client without a ticket sends it
    assert.equal("", decode(wire.client_hello { version = "tlsv1_2", session_ticket = true }).extensions[35])
  end)

  it("makes real public keys for each key share", function()
    local h = decode(wire.client_hello {
      groups = { "x25519", "secp256r1", "x448", "secp521r1", "ffdhe2048" },
      key_shares = { "secp256r1", "x448", "ffdhe2048", "secp521r1" } })
    local shares = key_shares(h.extensions[51])
    assert.same({ 23, 30, 256, 25 }, { shares[1].group, shares[2].group, shares[3].group, shares[4].group })
    assert.same({ 65, 56, 256, 133 }, { #shares[1].key, #shares[2].key, #shares[3].key, #shares[4].key })
    assert.equal(4, shares[1].key:byte(1))  -- uncompressed point
    -- no key share at all: the server must ask with a HelloRetryRequest
    local none = decode(wire.client_hello { key_shares = {} })
    assert.equal("\0\0", none.extensions[51])
  end)

  it("refuses a hello that does not fit one record", function()
    local suites = {}
    for i = 1, 9000 do suites[i] = i end
    local ok, err = pcall(wire.client_hello, { version = "tlsv1_2", suites = suites })
    assert.is_false(ok)
    assert.matches("tlsharden.wire.client_hello: the hello does not fit in one record", err, 1, true)
    local fewer = { table.unpack(suites, 1, 5000) }
    assert.is_string(wire.client_hello { version = "tlsv1_2", suites = fewer })
  end)

  it("reads options and their lists through metamethods, as every other option table", function()
    local plain = { version = "tlsv1_2", random = ("R"):rep(32), session_id = "", suites = { 0xC02F, 0xC030 },
      alpn = { "xmpp-client", "h2" }, groups = { "x25519" }, server_name = "example.com" }
    local expected = wire.client_hello(plain)
    -- an options table that inherits every option
    assert.equal(expected, wire.client_hello(setmetatable({}, { __index = plain })))
    -- lists read through __len and __index, whose items are made afresh (and
    -- collected at once if nothing keeps them)
    local function proxy(list)
      return setmetatable({}, {
        __len = function() return #list end,
        __index = function(_, i)
          collectgarbage()
          return type(list[i]) == "string" and (list[i] .. "x"):sub(1, -2) or list[i]
        end,
      })
    end
    local o = {}
    for k, v in pairs(plain) do o[k] = type(v) == "table" and proxy(v) or v end
    assert.equal(expected, wire.client_hello(o))
    -- a list's length counts, not its raw contents; a bad item is named
    local ok, err = pcall(wire.client_hello, { suites = proxy { 1, "x" } })
    assert.is_false(ok)
    assert.matches("bad option 'suites': item #2: expected a suite id from 0 to 0xFFFF, got 'x'", err, 1, true)
    ok, err = pcall(wire.client_hello, { alpn = setmetatable({}, { __len = function() return 17 end }) })
    assert.is_false(ok)
    assert.matches("bad option 'alpn': at most 16 items, got 17", err, 1, true)
    ok, err = pcall(wire.client_hello, { alpn = setmetatable({}, { __len = function() return -1 end }) })
    assert.is_false(ok)
    assert.matches("bad option 'alpn': expected a list (a sequence without holes", err, 1, true)
    -- a raising metamethod is an error of client_hello, naming the argument
    ok, err = pcall(wire.client_hello, { groups = setmetatable({}, { __len = function() error("no length") end }) })
    assert.is_false(ok)
    assert.matches("tlsharden.wire.client_hello: bad argument #1: a metamethod of the argument raised", err, 1, true)
    assert.matches("no length", err, 1, true)
  end)

  describe("refuses bad options, naming the option and the value", function()
    local cases = {
      { { version = "tls1.2" }, "bad option 'version': expected one of sslv2, sslv3, tlsv1, tlsv1_1, tlsv1_2, tlsv1_3, got 'tls1.2'" },
      { { colour = 1 }, "unknown option 'colour'" },
      { { [1] = "x" }, "unknown option 1" },
      { { suites = "ECDHE" }, "bad option 'suites': expected a list, got 'ECDHE'" },
      { { suites = { 1, 2, [4] = 4 } }, "bad option 'suites': expected a list (a sequence without holes" },
      { { suites = { 0x10000 } }, "bad option 'suites': item #1: expected a suite id from 0 to 0xFFFF, got 65536" },
      { { suites = { 1.5 } }, "item #1: expected a suite id from 0 to 0xFFFF, got 1.5" },
      { { groups = { "P-256" } }, "bad option 'groups': item #1: expected a group name (see tlsharden.wire.groups()) or an integer from 0 to 0xFFFF, got 'P-256'" },
      { { key_shares = { "X25519MLKEM768" }, groups = { "X25519MLKEM768" } }, "bad option 'key_shares': item #1: expected a group OpenSSL can make a key for" },
      { { key_shares = { "x448" }, groups = { "x25519" } }, "bad option 'key_shares': item #1: group x448 is not in 'groups'" },
      { { server_name = "" }, "bad option 'server_name': expected 1 to 255 bytes, got 0" },
      { { server_name = "a b" }, "bad option 'server_name': expected a host name (printable ASCII without spaces), got 'a b'" },
      { { server_name = ("x"):rep(300) }, "bad option 'server_name': expected 1 to 255 bytes, got 300" },
      { { random = "short" }, "bad option 'random': expected 32 bytes, got 5" },
      { { session_id = ("s"):rep(33) }, "bad option 'session_id': expected 0 to 32 bytes, got 33" },
      { { compression = {} }, "bad option 'compression': a hello needs at least one method" },
      { { compression = { "zstd" } }, "bad option 'compression': item #1: expected null, deflate, lzs or an integer from 0 to 255, got 'zstd'" },
      { { alpn = { "" } }, "bad option 'alpn': item #1: expected a protocol name of 1 to 255 bytes, got ''" },
      { { session_ticket = "" }, "bad option 'session_ticket': expected 1 to 8192 bytes, got 0" },
      { { session_ticket = 1 }, "bad option 'session_ticket': expected a boolean or the bytes of a ticket, got 1" },
      { { version = "sslv3", extensions = false, session_ticket = "t" }, "bad option 'extensions': false, but an extension was asked for" },
      { { fallback_scsv = "yes" }, "bad option 'fallback_scsv': expected a boolean, got 'yes'" },
      { { signature_algorithms = { "rsa_sha256" } }, "bad option 'signature_algorithms': item #1: expected a signature scheme name" },
      { { supported_versions = { "sslv2" } }, "bad option 'supported_versions': item #1: expected a version from sslv3 to tlsv1_3, got 'sslv2'" },
      { { record_version = 0x10000 }, "bad option 'record_version': expected a version name or an integer from 0 to 0xFFFF, got 65536" },
      { { version = "sslv2", server_name = "example.com" }, "bad option 'server_name': an SSLv2 CLIENT-HELLO cannot carry it" },
      { { version = "sslv2", random = ("r"):rep(8) }, "bad option 'random': expected 16 to 32 bytes, got 8" },
      { { version = "sslv2", session_id = "abc" }, "bad option 'session_id': an SSLv2 session id has 0 or 16 bytes, got 3" },
      { { version = "sslv3", extensions = false, server_name = "a.example" }, "bad option 'extensions': false, but an extension was asked for" },
      { { version = "tlsv1_2", groups = { ("x"):rep(100) } }, "got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'" },
    }
    for _, c in ipairs(cases) do
      it(c[2]:sub(1, 70), function()
        local ok, err = pcall(wire.client_hello, c[1])
        assert.is_false(ok)
        assert.matches("^tlsharden%.wire%.client_hello: ", tostring(err))
        assert.matches(c[2], tostring(err), 1, true)
      end)
    end
    it("and a non-table argument", function()
      local ok, err = pcall(wire.client_hello, "tlsv1_2")
      assert.is_false(ok)
      assert.matches("tlsharden.wire.client_hello: bad argument #1 'opts': expected a table, got 'tlsv1_2'", err, 1, true)
    end)
  end)
end)

describe("wire.client_hello read by a real OpenSSL server", function()
  local fx, server
  setup(function()
    fx = servers.fixtures()
    server = servers.openssl(fx.dir, fx.rsa, "-trace -alpn xmpp-client -cipher 'ALL:@SECLEVEL=0'")
  end)
  teardown(function()
    if server then server.stop() end
    if fx then fx.cleanup() end
  end)

  local function exchange(opts)
    local c = assert(socket.connect("127.0.0.1", server.port))
    c:settimeout(5)
    assert(c:send(wire.client_hello(opts)))
    local buf = ""
    local r
    repeat
      r = wire.parse_server_flight(buf)
      if not r.done then
        local data, err, partial = c:receive(r.need)
        buf = buf .. (data or partial)
        if not data then r = wire.parse_server_flight(buf, { eof = true }); assert(err) end
      end
    until r.done
    c:close()
    return r
  end

  it("answers a TLS 1.3 hello with a ServerHello for the key share sent", function()
    for _, group in ipairs { "x25519", "secp256r1", "secp384r1", "secp521r1", "x448", "ffdhe2048" } do
      local r = exchange { groups = { group }, key_shares = { group } }
      assert.equal("server_hello", r.outcome, group)
      assert.same({ "tlsv1_3", group, false }, { r.server_hello.protocol,
        r.server_hello.key_share_group_name, r.server_hello.hello_retry_request })
    end
  end)

  it("asks for a key share with a HelloRetryRequest when none was sent", function()
    local r = exchange { key_shares = {} }
    assert.equal("hello_retry_request", r.outcome)
    assert.equal("x25519", r.server_hello.key_share_group_name)
  end)

  it("reads every field as written", function()
    local r = exchange { version = "tlsv1_2", server_name = "example.com", alpn = { "h2", "xmpp-client" },
      compression = { "deflate", "null" }, suites = { 0xC030, 0x009F } }
    assert.equal("server_hello", r.outcome)
    assert.same({ "xmpp-client", 0xC030, "null" },
      { r.server_hello.alpn, r.server_hello.suite, r.server_hello.compression_name })
    local log = server.log()
    assert.matches("extension_type=server_name(0), length=16", log, 1, true)
    assert.matches("Zlib Compression (0x01)", log, 1, true)
    assert.matches("application_layer_protocol_negotiation(16), length=17\n          h2\n          xmpp-client", log, 1, true)
    assert.matches("{0xC0, 0x30} TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", log, 1, true)
  end)

  it("answers TLS 1.0 (at security level 0) and refuses SSL 3.0, which it lacks", function()
    local r = exchange { version = "tlsv1" }
    assert.equal("server_hello", r.outcome)
    assert.equal("tlsv1", r.server_hello.protocol)
    -- SSL 3.0 has no protocol_version alert: OpenSSL refuses with handshake_failure
    r = exchange { version = "sslv3" }
    assert.equal("alert", r.outcome)
    assert.equal("handshake_failure", r.alert.name)
  end)
end)

describe("sessions: context.session and wire.parse_session", function()
  local ssl = require "ssl"
  local tls = require "spec.helpers.tls"
  local pki = require "spec.helpers.pki"
  local context = require "tlsharden.context"
  local dir, leaf
  setup(function()
    dir = pki.tmpdir()
    leaf = pki.cert(dir, "leaf", { key_kind = "ec256", cn = "example.com", san = { "DNS:example.com" } })
  end)
  teardown(function() pki.cleanup(dir) end)

  local function session_of(protocol, server_opts)
    local server = { mode = "server", protocol = protocol, key = leaf.key, certificate = leaf.cert }
    for k, v in pairs(server_opts or {}) do server[k] = v end
    local r = tls.handshake(assert(ssl.newcontext(server)),
      assert(ssl.newcontext { mode = "client", protocol = protocol, verify = "none" }))
    assert(r.ok, r.server_err or r.client_err)
    local pem = context.session(r.client)
    r.close()
    return pem
  end

  it("reads a TLS 1.2 session with its ticket, as PEM and as DER", function()
    local pem = session_of("tlsv1_2")
    assert.matches("^%-%-%-%-%-BEGIN SSL SESSION PARAMETERS%-%-%-%-%-", pem)
    local t = assert(wire.parse_session(pem))
    assert.same({ "tlsv1_2", 0x0303, 32, true, 0 }, { t.protocol, t.version, #t.session_id, t.resumable, t.max_early_data })
    assert.is_string(t.suite_name)
    assert.equal(t.suite_name, wire.suite(t.suite).name)
    assert.is_true(#t.ticket > 32)
    assert.is_true(t.ticket_lifetime > 0)
    -- the master secret is never shown
    for k in pairs(t) do assert.not_equal("master_key", k) end
    local b64 = pem:gsub("%-%-%-%-%-[^\n]*%-%-%-%-%-", ""):gsub("%s", "")
    local der = require("tlsharden.scan.dane").der_from_pem(
      "-----BEGIN CERTIFICATE-----\n" .. b64 .. "\n-----END CERTIFICATE-----\n")
    assert.same(t, wire.parse_session(der))
  end)

  it("reads no ticket where the server sends none (no_ticket)", function()
    local t = assert(wire.parse_session(session_of("tlsv1_2", { options = { "no_ticket" } })))
    assert.is_nil(t.ticket)
  end)

  it("gives nil and why for bytes that are no session, and refuses what is no connection", function()
    assert.same({ nil, "not a TLS session (PEM 'SSL SESSION PARAMETERS' or its DER)" }, { wire.parse_session("garbage") })
    assert.same({ nil, "not a TLS session (PEM 'SSL SESSION PARAMETERS' or its DER)" },
      { wire.parse_session("-----BEGIN SSL SESSION PARAMETERS-----\nAAAA\n-----END SSL SESSION PARAMETERS-----\n") })
    local ok, err = pcall(wire.parse_session, 42)
    assert.is_false(ok)
    assert.matches("tlsharden.wire.parse_session: bad argument #1 'session': expected a session (PEM or DER bytes), got 42",
      tostring(err), 1, true)
    ok, err = pcall(context.session, {})
    assert.is_false(ok)
    assert.matches("tlsharden.context.session: bad argument #1", tostring(err), 1, true)
  end)
end)
