-- The DNS wire format of tlsharden.core: dns_query's bytes, dns_parse's
-- tables, and what a malformed message gives (a reason, never a crash).
-- Messages are written here byte by byte after RFC 1035; what real
-- servers send is parsed in spec/resolver_spec.lua.
local wire = require "tlsharden.wire"
local core = require "tlsharden.core"

local function u16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
local function u32(n) return u16(math.floor(n / 65536)) .. u16(n % 65536) end
local function name(s)
  if s == "." then return "\0" end
  local out = {}
  for label in s:gmatch("[^.]+") do out[#out + 1] = string.char(#label) .. label end
  return table.concat(out) .. "\0"
end
local function ptr(offset) return u16(0xC000 + offset) end
local function header(id, flags, qd, an, ns, ar)
  return u16(id) .. u16(flags) .. u16(qd) .. u16(an) .. u16(ns) .. u16(ar)
end
local function rr(owner, rtype, ttl, rdata, class)
  return owner .. u16(rtype) .. u16(class or 1) .. u32(ttl) .. u16(#rdata) .. rdata
end
local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
local function unhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end

-- A response with every record kind the parser types, names compressed
-- against the question (offset 12) as servers write them.
local Q = name("example.org")             -- at offset 12
local RESPONSE = header(0xBEEF, 0x8580, 1, 9, 1, 2) .. Q .. u16(33) .. u16(1)
  .. rr(ptr(12), 1, 300, "\192\0\2\1")
  .. rr(ptr(12), 28, 300, unhex("20010db8000000000000000000000001"))
  .. rr(ptr(12), 33, 60, u16(5) .. u16(10) .. u16(5222) .. "\4xmpp" .. ptr(12))
  .. rr(ptr(12), 5, 60, "\3www" .. ptr(12))
  .. rr(ptr(12), 15, 60, u16(10) .. "\4mail" .. ptr(12))
  .. rr(ptr(12), 16, 60, "\5hello\0\5world")
  .. rr(ptr(12), 52, 60, "\3\1\1" .. unhex("abcdef0123"))
  .. rr(ptr(12), 65280, 60, "\1\2\3")
  .. rr(ptr(12), 12, 60, "\3a.b\1\0" .. ptr(12))
  .. rr(ptr(12), 6, 3600, "\2ns" .. ptr(12) .. "\10hostmaster" .. ptr(12)
    .. u32(2026120101) .. u32(3600) .. u32(600) .. u32(86400) .. u32(300))
  .. rr(ptr(12), 2, 60, "\2ns" .. ptr(12))
  -- OPT: udp 1232, extended rcode 0, version 0, DO; an EDE option (RFC 8914)
  .. "\0" .. u16(41) .. u16(1232) .. "\0\0\128\0" .. u16(4 + 2 + 5) .. u16(15) .. u16(7) .. u16(6) .. "bogus"

describe("dns_query", function()
  it("writes a query with RD, AD and an EDNS0 OPT record", function()
    local q = wire.dns_query("example.org", "A", 0x1234)
    assert.equals("1234" .. "0120" .. "0001000000000001" .. hex(name("example.org")) .. "00010001"
      .. "00" .. "0029" .. "04d0" .. "00" .. "00" .. "0000" .. "0000", hex(q))
  end)

  it("sets the DO bit, CD, no RD, or leaves EDNS out when asked", function()
    local q = wire.dns_query("example.org.", "TLSA", 7, { dnssec = true, rd = false, ad = false, cd = true })
    assert.equals("0007" .. "0010", hex(q:sub(1, 4)))
    assert.equals("8000", hex(q:sub(-4, -3)))  -- DO in the OPT TTL
    local plain = wire.dns_query("example.org", "SRV", 7, { edns = false })
    assert.equals(12 + #name("example.org") + 4, #plain)
    assert.equals("0000", hex(plain:sub(11, 12)))
    assert.equals("0800", hex(wire.dns_query("a.b", "A", 0, { udp_size = 2048 }):sub(-8, -7)))
  end)

  it("reads types by name, as TYPEn or as a number, and the root name", function()
    local a = wire.dns_query("x.org", "TLSA")
    assert.equals(a, wire.dns_query("x.org", "tlsa"))
    assert.equals(a, wire.dns_query("x.org", "TYPE52"))
    assert.equals(a, wire.dns_query("x.org", 52))
    assert.equals(hex(u16(65280)), hex(wire.dns_query("x.org", "TYPE65280", 0, { edns = false }):sub(-4, -3)))
    assert.equals("00" .. "0002" .. "0001", hex(wire.dns_query(".", "NS", 0, { edns = false }):sub(13)))
    local m = assert(wire.dns_parse(wire.dns_query("_xmpp-client._tcp.Example.ORG", "SRV", 99, { dnssec = true })))
    assert.equals(99, m.id)
    assert.same({ name = "_xmpp-client._tcp.Example.ORG", type = "SRV", type_code = 33, class = "IN" }, m.questions[1])
    assert.is_true(m.flags.rd)
    assert.is_true(m.edns.dnssec)
  end)

  it("refuses bad names, types, ids and options, naming them", function()
    local cases = {
      { { "a..b", "A" }, "bad argument #1 'name': empty label in 'a..b'" },
      { { ".a", "A" }, "empty label" },
      { { "", "A" }, "empty name" },
      { { ("x"):rep(64) .. ".org", "A" }, "label of 64 bytes (at most 63)" },
      { { (("a"):rep(63) .. "."):rep(4), "A" }, "longer than 255 bytes" },
      { { "a b.org", "A" }, "byte 32 at position 2 is not allowed" },
      { { "b\195\188cher.de", "A" }, "IDNs as xn-- labels" },
      { { "a\0.org", "A" }, "byte 0 at position 2" },
      { { 42, "A" }, "bad argument #1 'name': expected a string, got 42" },
      { { "x.org", "FOO" }, "bad argument #2 'qtype': unknown type 'FOO'" },
      { { "x.org", "OPT" }, "unknown type 'OPT'" },
      { { "x.org", 41 }, "unknown type 41" },
      { { "x.org", 0 }, "unknown type 0" },
      { { "x.org", 65536 }, "unknown type 65536" },
      { { "x.org", "TYPE0" }, "unknown type" },
      { { "x.org", "A", -1 }, "bad argument #3 'id': expected an integer 0-65535, got -1" },
      { { "x.org", "A", 1.5 }, "bad argument #3 'id'" },
      { { "x.org", "A", 0, { bogus = true } }, "bad argument #4 'opts': unknown option 'bogus' (known: edns, dnssec, rd, cd, ad, udp_size)" },
      { { "x.org", "A", 0, { dnssec = 1 } }, "bad option 'dnssec': expected a boolean, got 1" },
      { { "x.org", "A", 0, { dnssec = true, edns = false } }, "the DO bit needs EDNS" },
      { { "x.org", "A", 0, { udp_size = 100 } }, "bad option 'udp_size': expected an integer from 512 to 65535" },
      { { "x.org", "A", 0, "opts" }, "bad argument #4 'opts': expected a table" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(wire.dns_query, table.unpack(c[1]))
      assert.is_false(ok, c[2])
      assert.matches("tlsharden.wire.dns_query: ", tostring(err), 1, true)
      assert.matches(c[2], tostring(err), 1, true)
    end
    local ok, err = pcall(wire.dns_query, ("y"):rep(100), "A")
    assert.is_false(ok)
    assert.matches("'" .. ("y"):rep(40) .. "...'", err, 1, true)
  end)
end)

describe("dns_parse", function()
  it("reads the header, the question and typed records", function()
    local m = assert(wire.dns_parse(RESPONSE))
    assert.equals(0xBEEF, m.id)
    assert.equals("QUERY", m.opcode)
    assert.same({ qr = true, aa = true, tc = false, rd = true, ra = true, z = false, ad = false, cd = false }, m.flags)
    assert.equals("NOERROR", m.rcode)
    assert.equals(#RESPONSE, m.size)
    assert.equals(0, m.trailing)
    local a = m.answers
    assert.equals(9, #a)
    assert.same({ name = "example.org", type = "A", type_code = 1, class = "IN", ttl = 300, address = "192.0.2.1" }, a[1])
    assert.equals("2001:db8::1", a[2].address)
    assert.same({ 5, 10, 5222, "xmpp.example.org" }, { a[3].priority, a[3].weight, a[3].port, a[3].target })
    assert.equals("www.example.org", a[4].target)
    assert.same({ 10, "mail.example.org" }, { a[5].preference, a[5].exchange })
    assert.same({ "hello", "", "world" }, a[6].strings)
    assert.equals("helloworld", a[6].text)
    assert.same({ 3, 1, 1, "abcdef0123" }, { a[7].usage, a[7].selector, a[7].matching_type, a[7].data })
    assert.equals("TYPE65280", a[8].type)
    assert.equals("010203", a[8].rdata)
    assert.equals("a\\.b.\\000.example.org", a[9].target)  -- labels holding "." and NUL, escaped
    local soa = m.authority[1]
    assert.same({ "ns.example.org", "hostmaster.example.org", 2026120101, 3600, 600, 86400, 300 },
      { soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum })
    assert.equals("ns.example.org", m.additional[1].target)
    local opt = m.edns
    assert.equals(m.additional[2], opt)
    assert.same({ 1232, 0, true, 0 }, { opt.udp_size, opt.version, opt.dnssec, opt.extended_rcode })
    assert.same({ code = 15, data = hex(u16(6) .. "bogus"), info_code = 6, text = "bogus" }, opt.options[1])
  end)

  it("names rcodes, counts the extended rcode of EDNS and trailing bytes", function()
    local nx = header(1, 0x8183, 0, 0, 0, 0)
    assert.equals("NXDOMAIN", wire.dns_parse(nx).rcode)
    assert.equals("REFUSED", wire.dns_parse(header(1, 0x8185, 0, 0, 0, 0)).rcode)
    assert.equals("RCODE12", wire.dns_parse(header(1, 0x818C, 0, 0, 0, 0)).rcode)
    local badvers = header(1, 0x8180, 0, 0, 0, 1) .. "\0" .. u16(41) .. u16(512) .. "\1\0\0\0" .. u16(0)
    local m = wire.dns_parse(badvers)
    assert.equals("BADVERS", m.rcode)
    assert.equals(16, m.rcode_code)
    assert.equals(3, wire.dns_parse(nx .. "xyz").trailing)
  end)

  it("gives the byte where every truncation of a message stops", function()
    for n = 0, #RESPONSE - 1 do
      local m, why = wire.dns_parse(RESPONSE:sub(1, n))
      assert.is_nil(m, "prefix of " .. n)
      local at = tonumber(why:match("^truncated at byte (%d+) %(.+%)$"))
      assert.truthy(at, why)
      assert.is_true(at <= n, why)
    end
  end)

  it("refuses compression loops, forward pointers and over-long names", function()
    local self_loop = header(1, 0x8180, 1, 0, 0, 0) .. ptr(12) .. u16(1) .. u16(1)
    local m, why = wire.dns_parse(self_loop)
    assert.is_nil(m)
    assert.equals("compression pointer at byte 12 (question 1) points forward or loops", why)
    local forward = header(1, 0x8180, 1, 0, 0, 0) .. "\1a" .. ptr(16) .. "\1b\0" .. u16(1) .. u16(1)
    assert.matches("points forward or loops", select(2, wire.dns_parse(forward)), 1, true)
    -- four names of 64 bytes each, every one pointing at the one before
    local l = ("x"):rep(63)
    local long = header(1, 0x8180, 4, 0, 0, 0)
      .. "\63" .. l .. "\0" .. u16(1) .. u16(1)                -- at 12
      .. "\63" .. l .. ptr(12) .. u16(1) .. u16(1)             -- at 81
      .. "\63" .. l .. ptr(81) .. u16(1) .. u16(1)             -- at 151
      .. "\63" .. l .. ptr(151) .. u16(1) .. u16(1)
    m, why = wire.dns_parse(long)
    assert.is_nil(m)
    assert.matches("^name longer than 255 bytes at byte %d+ %(question 4%)$", why)
    local ext = header(1, 0x8180, 1, 0, 0, 0) .. "\65x" .. u16(1) .. u16(1)
    assert.matches("unsupported label at byte 12 (question 1: label type 0x40)", select(2, wire.dns_parse(ext)), 1, true)
  end)

  it("refuses rdata that does not fit its type and misplaced OPT records", function()
    local function one(rtype, rdata)
      return header(1, 0x8180, 0, 1, 0, 0) .. rr("\0", rtype, 1, rdata)
    end
    assert.equals("bad rdata at byte 23 (answer 1: 5 bytes of rdata do not fit its type)",
      select(2, wire.dns_parse(one(1, "12345"))))
    assert.matches("bad rdata", select(2, wire.dns_parse(one(28, "1234"))), 1, true)
    assert.matches("bad rdata", select(2, wire.dns_parse(one(33, u16(1) .. u16(1) .. u16(1) .. "\0junk"))), 1, true)
    assert.matches("character-string", select(2, wire.dns_parse(one(16, "\9abc"))), 1, true)
    assert.matches("misplaced OPT record at byte 12 (answer 1", select(2, wire.dns_parse(one(41, ""))), 1, true)
    local opt = "\0" .. u16(41) .. u16(512) .. "\0\0\0\0" .. u16(0)
    assert.matches("a second one", select(2, wire.dns_parse(header(1, 0x8180, 0, 0, 0, 2) .. opt .. opt)), 1, true)
    local big = header(1, 0x8180, 0, 0, 0, 0) .. ("\0"):rep(65536)
    assert.equals("a message of 65548 bytes is longer than 65535", select(2, wire.dns_parse(big)))
  end)

  it("raises only for an argument that is not a string", function()
    for _, bad in ipairs { 42, nil, {}, true } do
      local ok, err = pcall(wire.dns_parse, bad)
      assert.is_false(ok)
      assert.matches("tlsharden.wire.dns_parse: bad argument #1 'bytes': expected a string", err, 1, true)
    end
    assert.same({ nil, "truncated at byte 0 (header: 12 bytes needed)" }, { wire.dns_parse("") })
  end)
end)

describe("dns_rdata", function()
  it("reads one record's data alone into the fields dns_parse gives", function()
    local srv = wire.dns_rdata("SRV", "\0\10\0\5\20\102\4host\4xmpp\4test\0")
    assert.same({ type = "SRV", priority = 10, weight = 5, port = 5222, target = "host.xmpp.test" }, srv)
    assert.same({ type = "A", address = "127.0.0.1" }, wire.dns_rdata("A", "\127\0\0\1"))
    assert.same({ type = "AAAA", address = "::1" }, wire.dns_rdata(28, ("\0"):rep(15) .. "\1"))
    assert.same({ type = "TLSA", usage = 3, selector = 1, matching_type = 1, data = "abcd" },
      wire.dns_rdata("tlsa", "\3\1\1\171\205"))
    assert.same({ type = "CNAME", target = "a.example" }, wire.dns_rdata("CNAME", "\1a\7example\0"))
    assert.same({ type = "TYPE65000", rdata = "0102" }, wire.dns_rdata("TYPE65000", "\1\2"))
  end)

  it("gives nil and a reason for data that does not fit its type, and raises for bad arguments", function()
    assert.same({ nil, "bad rdata at byte 0 (rdata: 3 bytes of rdata do not fit its type)" },
      { wire.dns_rdata("A", "\1\2\3") })
    assert.is_nil((wire.dns_rdata("SRV", "\0\10\0\5\20\102\4host")))
    local ok, err = pcall(wire.dns_rdata, "OPT", "")
    assert.is_false(ok)
    assert.matches("tlsharden.wire.dns_rdata: bad argument #1 'qtype'", err.message, 1, true)
    ok, err = pcall(wire.dns_rdata, "A", 42)
    assert.is_false(ok)
    assert.matches("tlsharden.wire.dns_rdata: bad argument #2 'bytes': expected a string", err.message, 1, true)
  end)
end)
