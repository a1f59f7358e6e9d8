-- wire.parse_server_flight on flights built here byte by byte (RFC 5246
-- 7.4, RFC 8446 4.1.3, the SSLv2 SERVER-HELLO), on what broken peers send,
-- and on real servers' answers (openssl s_server).
local wire = require "tlsharden.wire"
local socket = require "socket"
local tlsharden = require "tlsharden"
local servers = require "spec.helpers.servers"
local struct = require "spec.helpers.struct"

local parse = wire.parse_server_flight

-- The spec's own writer for server messages.
local function record(rtype, payload, version)
  return struct.pack(">B I2 s2", rtype, version or 0x0303, payload)
end
local function hs(htype, body) return struct.pack(">B I3", htype, #body) .. body end
local function ext(etype, data) return struct.pack(">I2 s2", etype, data) end
local function server_hello(t)
  local body = struct.pack(">I2", t.version or 0x0303) .. (t.random or ("R"):rep(32))
    .. struct.pack(">s1 I2 B", t.session_id or "", t.suite or 0xC02F, t.compression or 0)
  if t.extensions then body = body .. struct.pack(">s2", table.concat(t.extensions)) end
  return hs(2, body)
end
local function certificate(ders)
  local list = {}
  for i, d in ipairs(ders) do list[i] = struct.pack(">s3", d) end
  return hs(11, struct.pack(">s3", table.concat(list)))
end
local function ske_ecdhe(group)
  return hs(12, struct.pack(">B I2 s1 I2 s2", 3, group, "\4" .. ("P"):rep(64), 0x0401, "signature"))
end
local function ske_dhe(p)
  return hs(12, struct.pack(">s2 s2 s2 I2 s2", p, "\2", ("Y"):rep(#p), 0x0401, "signature"))
end
local SHD = hs(14, "")
local HRR_RANDOM = "\207\33\173\116\229\154\97\17\190\29\140\2\30\101\184\145"
  .. "\194\162\17\22\122\187\140\94\7\158\9\226\200\168\51\156"

local CERT1, CERT2 = "\48\130\1\0leaf-der", "\48\130\1\0intermediate-der"
local function tls12_messages()
  return {
    server_hello { suite = 0xC02F, session_id = ("S"):rep(32), extensions = {
      ext(0xFF01, "\0"), ext(23, ""), ext(35, ""), ext(16, "\0\12\11xmpp-client"), ext(11, "\1\0") } },
    certificate { CERT1, CERT2 },
    ske_ecdhe(29),
    SHD,
  }
end

local function check_tls12(r, bytes)
  assert.same({ true, "server_hello", #bytes }, { r.done, r.outcome, r.consumed })
  local sh = r.server_hello
  assert.same({ 0x0303, "tlsv1_2", 0xC02F, "ECDHE-RSA-AES128-GCM-SHA256", ("S"):rep(32), "null" },
    { sh.version, sh.protocol, sh.suite, sh.suite_name, sh.session_id, sh.compression_name })
  assert.same({ true, "", true, true, "xmpp-client", { 0 } },
    { sh.secure_renegotiation, sh.renegotiation_info, sh.extended_master_secret, sh.session_ticket,
      sh.alpn, sh.ec_point_formats })
  assert.same({ CERT1, CERT2 }, r.certificates)
  assert.same({ "ecdhe", 29, "x25519", 65 }, { r.server_key_exchange.kind, r.server_key_exchange.group,
    r.server_key_exchange.group_name, r.server_key_exchange.point_length })
  assert.is_true(r.server_hello_done)
  local names = {}
  for i, m in ipairs(r.messages) do names[i] = m.name end
  assert.same({ "server_hello", "certificate", "server_key_exchange", "server_hello_done" }, names)
  assert.same({}, r.problems)
end

describe("wire.parse_server_flight", function()
  it("reads a TLS 1.2 first flight, one message per record", function()
    local parts = {}
    for i, m in ipairs(tls12_messages()) do parts[i] = record(22, m) end
    local bytes = table.concat(parts)
    check_tls12(parse(bytes), bytes)
  end)

  it("reads several messages in one record", function()
    local bytes = record(22, table.concat(tls12_messages()))
    check_tls12(parse(bytes), bytes)
  end)

  it("reads messages that span records", function()
    local stream = table.concat(tls12_messages())
    local parts = {}
    for i = 1, #stream, 7 do parts[#parts + 1] = record(22, stream:sub(i, i + 6)) end
    local bytes = table.concat(parts)
    local r = parse(bytes)
    check_tls12(r, bytes)
    assert.equal(#parts, r.records)
  end)

  it("says how many bytes it needs, and reports a truncated flight at the end", function()
    local stream = table.concat(tls12_messages())
    local bytes = record(22, stream:sub(1, 50)) .. record(22, stream:sub(51))
    local have, steps = "", 0
    repeat
      local r = parse(have)
      if not r.done then
        assert.is_true(r.need >= 1)
        assert.is_true(#have + r.need <= #bytes)
        local cut = parse(have, { eof = true })
        assert.same({ true, #have == 0 and "closed" or "truncated" }, { cut.done, cut.outcome })
        assert.equal(#have == 0 and "NO_DATA" or "TRUNCATED", cut.problems[#cut.problems].code)
        have = bytes:sub(1, #have + r.need)
      end
      steps = steps + 1
    until r.done
    check_tls12(parse(have), bytes)
    assert.is_true(steps < 12)
  end)

  it("reads the DH prime size and an export RSA key from the ServerKeyExchange", function()
    local p1024 = "\200" .. ("p"):rep(127)
    local r = parse(record(22, server_hello { suite = 0x009E } .. ske_dhe(p1024) .. SHD))
    assert.same({ "dhe", 1024, p1024, "\2" }, { r.server_key_exchange.kind, r.server_key_exchange.dh_bits,
      r.server_key_exchange.dh_p, r.server_key_exchange.dh_g })
    r = parse(record(22, server_hello { suite = 0x009E } .. ske_dhe("\0\1" .. ("p"):rep(254)) .. SHD))
    assert.equal(2033, r.server_key_exchange.dh_bits)
    local export = hs(12, struct.pack(">s2 s2", "\192" .. ("n"):rep(63), "\1\0\1") .. "sig")
    r = parse(record(22, server_hello { suite = 0x0003 } .. export .. SHD))
    assert.same({ "rsa", 512 }, { r.server_key_exchange.kind, r.server_key_exchange.rsa_bits })
  end)

  it("stops after a TLS 1.3 ServerHello, whose rest is encrypted", function()
    local sh = record(22, server_hello { suite = 0x1301, session_id = ("s"):rep(32), extensions = {
      ext(43, "\3\4"), ext(51, struct.pack(">I2 s2", 29, ("K"):rep(32))) } })
    local bytes = sh .. record(20, "\1") .. record(23, ("e"):rep(300))
    local r = parse(bytes)
    assert.same({ true, "server_hello", #sh }, { r.done, r.outcome, r.consumed })
    assert.same({ 0x0304, "tlsv1_3", "x25519", 32, false }, { r.server_hello.selected_version,
      r.server_hello.protocol, r.server_hello.key_share_group_name, r.server_hello.key_share_length,
      r.server_hello.hello_retry_request })
  end)

  it("recognises a HelloRetryRequest by its random", function()
    local r = parse(record(22, server_hello { suite = 0x1302, random = HRR_RANDOM, extensions = {
      ext(43, "\3\4"), ext(51, "\0\23") } }))
    assert.same({ "hello_retry_request", true, 23, "secp256r1" }, { r.outcome,
      r.server_hello.hello_retry_request, r.server_hello.key_share_group, r.server_hello.key_share_group_name })
  end)

  it("reports the TLS 1.3 downgrade sentinel", function()
    local r = parse(record(22, server_hello { random = ("r"):rep(24) .. "DOWNGRD\1" } .. SHD))
    assert.equal("tlsv1_2", r.server_hello.downgrade)
  end)

  it("ends at a fatal alert and reads past a warning", function()
    local r = parse(record(21, "\2\40", 0x0300))
    assert.same({ true, "alert", "fatal", "handshake_failure", 40 },
      { r.done, r.outcome, r.alert.level_name, r.alert.name, r.alert.description })
    r = parse(record(21, "\1\112") .. record(22, server_hello {} .. SHD))
    assert.same({ "server_hello", "warning", "unrecognized_name" },
      { r.outcome, r.alerts[1].level_name, r.alerts[1].name })
    assert.is_nil(r.alert)
  end)

  it("reads an SSLv2 SERVER-HELLO and ERROR", function()
    local cert = "\48\130\1\0sslv2-cert"
    local body = struct.pack(">B B B I2 I2 I2 I2", 4, 0, 1, 0x0002, #cert, 6, 16) .. cert
      .. "\1\0\128\7\0\192" .. ("c"):rep(16)
    local bytes = string.char(0x80 + math.floor(#body / 256), #body % 256) .. body
    local r = parse(bytes)
    assert.same({ true, "sslv2_server_hello", "sslv2", cert, { 0x010080, 0x0700C0 }, #bytes },
      { r.done, r.outcome, r.sslv2.protocol, r.sslv2.certificate, r.sslv2.cipher_kinds, r.consumed })
    r = parse("\128\3\0\0\1")
    assert.same({ "sslv2_error", "no_cipher" }, { r.outcome, r.sslv2_error.name })
  end)

  describe("turns what broken peers send into problem records", function()
    local function finding(bytes, code)
      local r = parse(bytes)
      assert.is_true(r.done)
      local codes = {}
      for i, f in ipairs(r.problems) do
        assert.same({ true }, { require("tlsharden.problems").check(f) })
        codes[i] = f.code
      end
      assert.is_truthy(table.concat(codes, " "):find(code, 1, true), table.concat(codes, " "))
      return r
    end

    it("an HTTP answer", function()
      local r = finding("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "NOT_TLS")
      assert.same({ "not_tls", "http" }, { r.outcome, r.problems[1].guess })
      assert.equal("'HTTP/1.1 400 Bad Request\\13\\10Content-Length...'", r.problems[1].preview)
    end)

    it("an XMPP stream error", function()
      local r = finding("<?xml version='1.0'?><stream:stream xmlns='jabber:client'><stream:error/>", "NOT_TLS")
      assert.equal("xmpp", r.problems[1].guess)
    end)

    it("garbage", function()
      assert.equal("not_tls", finding("\0\1\2\3\4\5\6\7", "NOT_TLS").outcome)
      assert.equal("not_tls", finding("\22\0\0\0\5hello", "NOT_TLS").outcome)
      assert.equal("not_tls", finding("\128\5\9\9\9\9\9", "NOT_TLS").outcome)
    end)

    it("a record longer than the limit", function()
      local r = finding("\22\3\3\255\255" .. ("x"):rep(100), "RECORD_TOO_LONG")
      assert.equal("malformed", r.outcome)
    end)

    it("a ServerHello cut short, and a duplicated extension", function()
      finding(record(22, hs(2, "\3\3abc")), "MALFORMED")
      local r = finding(record(22, server_hello { extensions = { ext(23, ""), ext(23, "") } } .. SHD), "MALFORMED")
      assert.equal("server_hello", r.outcome)
    end)

    it("application data or a certificate before the ServerHello", function()
      finding(record(23, "data"), "UNEXPECTED_RECORD")
      finding(record(22, certificate { CERT1 } .. server_hello {} .. SHD), "UNEXPECTED_MESSAGE")
    end)

    it("an alert of the wrong size", function()
      finding(record(21, "\2\40\0"), "MALFORMED")
    end)
  end)

  it("never raises on random bytes", function()
    math.randomseed(7)
    local prefixes = { "", "\22\3\3", "\21\3\1\0\2", "\128", "\22\3\3\0\60\2\0\0\56\3\3" }
    for i = 1, 3000 do
      local t = {}
      for j = 1, math.random(0, 80) do t[j] = string.char(math.random(0, 255)) end
      local bytes = prefixes[i % #prefixes + 1] .. table.concat(t)
      local r = parse(bytes)
      assert.is_true(r.done or r.need > 0)
      assert.is_true(parse(bytes, { eof = true }).done)
    end
  end)

  it("refuses what is not bytes, and unknown options", function()
    for _, c in ipairs {
      { { nil }, "bad argument #1 'bytes': expected a string, got nil" },
      { { 42 }, "bad argument #1 'bytes': expected a string, got 42" },
      { { "", "eof" }, "bad argument #2 'opts': expected a table, got 'eof'" },
      { { "", { eof = 1 } }, "bad option 'eof': expected a boolean, got 1" },
      { { "", { timeout = 1 } }, "bad argument #2 'opts': unknown option 'timeout' (known: eof)" },
    } do
      local ok, err = pcall(parse, table.unpack(c[1], 1, 2))
      assert.is_false(ok)
      assert.matches("tlsharden.wire.parse_server_flight: " .. c[2], err, 1, true)
    end
  end)
end)

describe("wire.parse_server_flight on openssl s_server's answers", function()
  local fx
  setup(function() fx = servers.fixtures() end)
  teardown(function() if fx then fx.cleanup() end end)

  local function exchange(server, opts)
    local c = assert(socket.connect("127.0.0.1", server.port))
    c:settimeout(5)
    assert(c:send(wire.client_hello(opts)))
    local buf, r = ""
    repeat
      r = parse(buf)
      if not r.done then
        local data, _, partial = c:receive(r.need)
        buf = buf .. (data or partial)
        if not data then r = parse(buf, { eof = true }) end
      end
    until r.done
    c:close()
    return r
  end

  it("gives the certificate chain as sent and the ECDHE group", function()
    local server = servers.openssl(fx.dir, fx.ecdsa, "-tls1_2 -groups secp384r1")
    local ok, err = pcall(function()
      local r = exchange(server, { version = "tlsv1_2" })
      assert.equal("server_hello", r.outcome)
      assert.equal(1, #r.certificates)
      local hex = r.certificates[1]:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end)
      assert.equal(fx.der(fx.ecdsa), hex)
      assert.same({ "ecdhe", "secp384r1" }, { r.server_key_exchange.kind, r.server_key_exchange.group_name })
      assert.is_true(r.server_hello_done)
      assert.is_true(r.server_hello.secure_renegotiation)
    end)
    server.stop()
    assert(ok, err)
  end)

  it("gives the DH prime size of a DHE suite", function()
    local server = servers.openssl(fx.dir, fx.rsa, "-tls1_2 -dhparam " .. fx.dhparam(2048))
    local ok, err = pcall(function()
      local r = exchange(server, { version = "tlsv1_2", suites = { 0x009E } })
      assert.same({ "dhe", 2048 }, { r.server_key_exchange.kind, r.server_key_exchange.dh_bits })
    end)
    server.stop()
    assert(ok, err)
  end)
end)
