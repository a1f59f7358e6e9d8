-- Fuzz target: ClientHello options decoded from the input bytes (versions,
-- suite and group lists, names and key shares, strings taken from the
-- input), written, checked for consistent framing, and read back by the
-- flight parser (which must call a ClientHello an unexpected message).
local wire = require "tlsharden.wire"
local core = require "tlsharden.core"

local VERSIONS = { "sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3", "tlsv9", 3 }
local GROUPS = { "x25519", "secp256r1", "x448", "secp384r1", "ffdhe2048", "X25519MLKEM768", "sect163k1",
  23, 0xFFFF, "nope" }
local BOOLS = { "renegotiation_scsv", "fallback_scsv", "session_ticket", "renegotiation_info",
  "extended_master_secret", "extensions", "heartbeat", "grease" }

-- Whether bit n (0 is the lowest) of v is set.
local function bit(v, n) return math.floor(v / 2 ^ n) % 2 == 1 end

return function(data)
  local pos = 0
  local function byte()
    pos = pos + 1
    return data:byte(pos) or 0
  end
  local function bytes(n)
    pos = pos + n
    return data:sub(pos - n + 1, pos)
  end
  local opts = {}
  local flags = byte()
  if bit(flags, 0) then opts.version = VERSIONS[byte() % #VERSIONS + 1] end
  if bit(flags, 1) then
    local suites = {}
    for i = 1, byte() % 40 do suites[i] = byte() * 256 + byte() end
    if byte() % 8 == 0 then suites[#suites + 1] = byte() * 65536 end
    opts.suites = suites
  end
  if bit(flags, 2) then
    local groups = {}
    for i = 1, byte() % 6 do groups[i] = GROUPS[byte() % #GROUPS + 1] end
    opts.groups = groups
    if byte() % 2 == 0 then opts.key_shares = { groups[1] } end
  end
  if bit(flags, 3) then opts.server_name = bytes(byte() % 24) end
  if bit(flags, 4) then opts.alpn = { bytes(byte() % 12) } end
  if bit(flags, 5) then opts.compression = { byte() % 3 == 0 and "deflate" or byte() } end
  if bit(flags, 6) then opts.session_id = bytes(byte() % 40) end
  if bit(flags, 7) then opts.random = bytes(byte() % 2 == 0 and 32 or 16) end
  local b = byte()
  for i, name in ipairs(BOOLS) do
    if bit(b, i - 1) then opts[name] = byte() % 2 == 0 end
  end
  local ok, hello = pcall(wire.client_hello, opts)
  if not ok then
    assert(core.is_error(hello) and hello.fn == "wire.client_hello", tostring(hello))
    return
  end
  if hello:byte(1) >= 0x80 then
    assert(#hello == 2 + (hello:byte(1) - 0x80) * 256 + hello:byte(2), "SSLv2 length")
  else
    assert(hello:byte(1) == 22 and #hello == 5 + hello:byte(4) * 256 + hello:byte(5), "record length")
    assert(#hello - 9 == hello:byte(7) * 65536 + hello:byte(8) * 256 + hello:byte(9), "handshake length")
    local r = wire.parse_server_flight(hello)
    assert(r.problems[1] and r.problems[1].code == "UNEXPECTED_MESSAGE", "a ClientHello read as a flight")
  end
end
