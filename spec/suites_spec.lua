-- The cipher suite and group registries, cross-checked against two real
-- peers' data: testssl.sh's mapping file and what this OpenSSL knows.
local wire = require "tlsharden.wire"
local tlsharden = require "tlsharden"
local sh = require "spec.helpers.sh"

local TESTSSL_MAPPING = "/etc/testssl/cipher-mapping.txt"

local function by_id()
  local t = {}
  for _, s in ipairs(wire.suites()) do t[s.id] = s end
  return t
end

-- testssl.sh's file: "0xC0,0x2F - ECDHE-RSA-AES128-GCM-SHA256 TLS_ECDHE_RSA_... TLSv1.2 ..."
-- (three bytes for SSLv2 kinds); "-" where it has no name.
local function testssl_rows()
  local rows = {}
  for line in io.lines(TESTSSL_MAPPING) do
    local a, b, c, rest = line:match("^%s*0x(%x%x),0x(%x%x),0x(%x%x) %- (.*)")
    local id
    if a then
      id = tonumber(a .. b .. c, 16)
    else
      a, b, rest = line:match("^%s*0x(%x%x),0x(%x%x) %- (.*)")
      id = a and tonumber(a .. b, 16)
    end
    if id then
      local openssl, iana = rest:match("^(%S+)%s+(%S+)")
      rows[#rows + 1] = { id = id, sslv2 = c ~= nil, openssl = openssl ~= "-" and openssl or nil,
        iana = iana ~= "-" and iana or nil }
    end
  end
  return rows
end

-- `openssl ciphers -V -stdname`: "0x13,0x02 - TLS_AES_256_GCM_SHA384 - TLS_AES_256_GCM_SHA384
-- TLSv1.3 Kx=any Au=any Enc=AESGCM(256) Mac=AEAD".
local function openssl_rows()
  local rows = {}
  for _, line in ipairs(sh.lines("openssl ciphers -V -stdname 'ALL:COMPLEMENTOFALL'")) do
    local a, b, std, name, ver, kx, au, enc, mac = line:match(
      "0x(%x%x),0x(%x%x) %- (%S+)%s+%- (%S+)%s+(%S+)%s+Kx=(%S+)%s+Au=(%S+)%s+Enc=(%S+)%s+Mac=(%S+)")
    if a then
      rows[#rows + 1] = { id = tonumber(a .. b, 16), std = std, name = name, version = ver,
        kx = kx, auth = au, enc = enc, mac = mac }
    end
  end
  return rows
end

describe("wire.suites", function()
  local suites = wire.suites()

  it("holds every IANA suite, sorted by id, each id once", function()
    assert.is_true(#suites >= 340, "only " .. #suites .. " entries")
    for i = 2, #suites do assert.is_true(suites[i - 1].id < suites[i].id) end
    local reg = by_id()
    -- a few from each part of the registry
    assert.equal("TLS_RSA_WITH_RC4_128_MD5", reg[0x0004].iana)
    assert.equal("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", reg[0xC02F].iana)
    assert.equal("TLS_AES_128_GCM_SHA256", reg[0x1301].iana)
    assert.equal("TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256", reg[0xD005].iana)
    assert.equal("TLS_GOSTR341112_256_WITH_MAGMA_MGM_S", reg[0xC106].iana)
  end)

  it("flags the two signalling values as SCSVs, not suites", function()
    local reg = by_id()
    for _, id in ipairs { 0x00FF, 0x5600 } do
      assert.is_true(reg[id].scsv)
      assert.is_nil(reg[id].kx)
    end
    assert.equal("TLS_FALLBACK_SCSV", reg[0x5600].iana)
    local n = 0
    for _, s in ipairs(suites) do if s.scsv then n = n + 1 end end
    assert.equal(2, n)
  end)

  it("describes a suite the way tlsharden.ciphers does", function()
    local s = wire.suite(0xC02F)
    assert.same({ "ECDHE", "RSA", "aes-128-gcm", 128, "AEAD", true, true, "tlsv1_2", "0xC0,0x2F" },
      { s.kx, s.auth, s.encryption, s.bits, s.mac, s.aead, s.fs, s.protocol, s.hex })
    local rc4 = wire.suite("EXP-RC4-MD5")
    assert.same({ 40, 128, true, false }, { rc4.bits, rc4.alg_bits, rc4.export, rc4.fs })
    assert.same({ "EXPORT", "RC4", "MD5", "BITS<128" }, rc4.weak)
    local t13 = wire.suite("TLS_CHACHA20_POLY1305_SHA256")
    assert.same({ true, "tlsv1_3", "any" }, { t13.tls13, t13.protocol, t13.kx })
  end)

  it("keeps the SSLv2 cipher kinds under their 3-byte ids", function()
    local reg = by_id()
    local kinds = {}
    for _, s in ipairs(suites) do if s.sslv2 then kinds[#kinds + 1] = s.id end end
    assert.same({ 0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700C0, 0x080080 }, kinds)
    assert.equal("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", reg[0x0700C0].iana)
    assert.equal("0x07,0x00,0xC0", reg[0x0700C0].hex)
    assert.same({ "sslv2", 112, 168 }, { reg[0x0700C0].protocol, reg[0x0700C0].bits, reg[0x0700C0].alg_bits })
    assert.is_true(reg[0x020080].export)
    -- a name both SSLv2 and TLS use finds the TLS suite
    assert.equal(0x0004, wire.suite("RC4-MD5").id)
  end)

  it("looks suites up by id, IANA name and OpenSSL name", function()
    assert.equal(0x009E, wire.suite("DHE-RSA-AES128-GCM-SHA256").id)
    assert.equal(0x009E, wire.suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256").id)
    assert.is_nil(wire.suite(0x1234))
    assert.is_nil(wire.suite("NO-SUCH-SUITE"))
    assert.is_nil(wire.suite("RC4-MD5\0"))
  end)

  it("refuses what is not a suite id or name", function()
    for _, bad in ipairs { -1, 0x1000000, 1.5, true, {} } do
      local ok, err = pcall(wire.suite, bad)
      assert.is_false(ok)
      assert.matches("^tlsharden%.wire%.suite: bad argument #1", err)
    end
    local ok, err = pcall(wire.suites, {})
    assert.is_false(ok)
    assert.matches("tlsharden.wire.suites: bad argument #1: expected no argument", err, 1, true)
  end)
end)

describe("the suite registry against testssl.sh's mapping", function()
  -- Where the two disagree, and why (checked by hand; a new difference fails).
  local NAMED_DIFFERENTLY = {
    -- testssl.sh files the SSLv2 kind 0x00,0x00,0x00 (which SSLv2 never defined)
    -- under the 2-byte id 0, which is TLS_NULL_WITH_NULL_NULL here.
    [0x000000] = true,
    -- the 56-bit export draft named 0x0061 ..._RC2_CBC_56_MD5
    [0x000061] = true,
  }
  -- testssl.sh has these, the registry does not: vendor and private-use codes
  -- outside IANA's registry (GOST drafts, FIPS and Netscape private codes,
  -- Google's CECPQ1 experiment) and non-standard SSLv2 kinds.
  local ONLY_TESTSSL = {
    0x0080, 0x0081, 0x0082, 0x0083, 0x16B7, 0x16B8, 0x16B9, 0x16BA, 0xFEFE, 0xFEFF,
    0xFF00, 0xFF01, 0xFF02, 0xFF03, 0xFF85, 0xFF87, 0xFFE0, 0xFFE1,
    0x060140, 0x0701C0, 0xFF8000, 0xFF8010,
  }
  -- The registry has these, testssl.sh does not: the SCSVs and suites
  -- registered after its file was written (SM4, AEGIS, ECCPWD, integrity-only,
  -- GOST of RFC 9189 and its TLS 1.3 draft, ECDHE-PSK of RFC 8442).
  local ONLY_HERE = {
    0x00C6, 0x00C7, 0x00FF, 0x1306, 0x1307, 0x5600, 0xC0B0, 0xC0B1, 0xC0B2, 0xC0B3,
    0xC0B4, 0xC0B5, 0xC100, 0xC101, 0xC102, 0xC103, 0xC104, 0xC105, 0xC106,
    0xD001, 0xD002, 0xD003, 0xD005,
  }

  local rows, reg = testssl_rows(), by_id()

  it("reads the mapping file", function()
    assert.is_true(#rows > 300)
  end)

  it("gives every suite both know the same IANA name", function()
    for _, r in ipairs(rows) do
      local s = reg[r.id]
      if s and r.iana and not NAMED_DIFFERENTLY[r.id] then
        assert.equal(r.iana, s.iana, ("0x%06X"):format(r.id))
      end
    end
    for id in pairs(NAMED_DIFFERENTLY) do
      local r
      for _, row in ipairs(rows) do if row.id == id then r = row end end
      assert.is_truthy(r, ("0x%06X is no longer in the mapping"):format(id))
      assert.are_not.equal(r.iana, reg[id].iana)
    end
  end)

  it("gives the same OpenSSL name wherever the registry has one", function()
    for _, r in ipairs(rows) do
      local s = reg[r.id]
      if s and s.openssl and r.openssl and not NAMED_DIFFERENTLY[r.id] then
        assert.equal(r.openssl, s.openssl, ("0x%06X"):format(r.id))
      end
    end
  end)

  it("differs in coverage only where documented", function()
    local in_testssl, only_testssl, only_here = {}, {}, {}
    for _, r in ipairs(rows) do
      in_testssl[r.id] = true
      if not reg[r.id] then only_testssl[#only_testssl + 1] = r.id end
    end
    for _, s in ipairs(wire.suites()) do
      if not in_testssl[s.id] then only_here[#only_here + 1] = s.id end
    end
    table.sort(only_testssl)
    local expected = { table.unpack(ONLY_TESTSSL) }
    table.sort(expected)
    assert.same(expected, only_testssl)
    assert.same(ONLY_HERE, only_here)
  end)
end)

describe("the suite registry against this OpenSSL", function()
  local KX = { ECDH = "ECDHE", DH = "DHE", RSA = "RSA", PSK = "PSK", RSAPSK = "RSA-PSK",
    DHEPSK = "DHE-PSK", ECDHEPSK = "ECDHE-PSK", SRP = "SRP", any = "any" }
  local VERSION = { ["TLSv1.3"] = "tlsv1_3", ["TLSv1.2"] = "tlsv1_2", TLSv1 = "tlsv1", SSLv3 = "sslv3" }
  local rows, reg = openssl_rows(), by_id()

  it("knows every suite OpenSSL knows, under OpenSSL's names", function()
    assert.is_true(#rows > 100)
    for _, r in ipairs(rows) do
      local s = reg[r.id]
      local where = ("%s (0x%04X)"):format(r.name, r.id)
      assert.is_truthy(s, where)
      assert.equal(r.std, s.iana, where)
      assert.equal(r.name, s.openssl, where)
      assert.equal(VERSION[r.version], s.protocol, where)
      assert.equal(KX[r.kx], s.kx, where)
      assert.equal(r.auth, s.auth, where)
      assert.equal(r.mac == "AEAD" and "AEAD" or r.mac, s.mac, where)
      assert.equal(tonumber(r.enc:match("%((%d+)%)") or 0), s.alg_bits, where)
    end
  end)

  it("classifies them as tlsharden.ciphers does from OpenSSL's cipher data", function()
    local r = tlsharden.ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0", {
      ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
        .. "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256" })
    assert.is_true(#r.suites > 80)
    for _, c in ipairs(r.suites) do
      local s = reg[c.id]
      assert.is_truthy(s, c.name)
      assert.same({ c.name, c.kx, c.auth, c.encryption, c.bits, c.alg_bits, c.aead, c.mac, c.fs, c.protocol, c.weak },
        { s.name, s.kx, s.auth, s.encryption, s.bits, s.alg_bits, s.aead, s.mac, s.fs, s.protocol, s.weak })
    end
  end)
end)

describe("wire.groups", function()
  local groups = wire.groups()

  it("lists IANA's supported groups by id, each once", function()
    for i = 2, #groups do assert.is_true(groups[i - 1].id < groups[i].id) end
    local by = {}
    for _, g in ipairs(groups) do by[g.name] = g end
    assert.same({ 29, "ecx", true }, { by.x25519.id, by.x25519.kind, by.x25519.tls13 })
    assert.same({ 256, 2048 }, { by.ffdhe2048.id, by.ffdhe2048.bits })
    assert.same({ 4588, false }, { by.X25519MLKEM768.id, by.X25519MLKEM768.key_share })
    assert.is_false(by.sect163k1.tls13)
  end)

  it("gives x25519 and the X25519 hybrids OpenSSL's 253 bits", function()
    local by = {}
    for _, g in ipairs(groups) do by[g.name] = g end
    assert.equal(253, by.x25519.bits)
    assert.equal(253, by.X25519MLKEM768.bits)
    assert.equal(253, by.X25519Kyber768Draft00.bits)
    assert.equal(448, by.x448.bits)
    -- (spec/ciphers_spec.lua reads 253 from a real connection's X25519 key)
  end)

  it("can make a key share for every group it says it can", function()
    for _, g in ipairs(groups) do
      if g.key_share then
        local ok, hello = pcall(wire.client_hello, {
          version = "tlsv1_3", groups = { g.name }, key_shares = { g.name } })
        assert.is_true(ok, g.name .. ": " .. tostring(hello))
      end
    end
  end)
end)
