-- Fuzz target: client first flights (wire.parse_client_hello). The input
-- is parsed as it is, as the body of a ClientHello in one record, split
-- over two records, and as the extensions block of a hello; and each of
-- these is replayed (wire.replay_hello) with another SNI, a key share and
-- a cookie: a hello that parses again, or nil and why.
local wire = require "tlsharden.wire"

local OUTCOMES = { client_hello = true, incomplete = true, not_tls = true, sslv2 = true, malformed = true }

local function replay(bytes)
  local out, why = wire.replay_hello(bytes, { server_name = "fuzz.example", key_share = "x25519", cookie = "c" })
  if not out then
    assert(type(why) == "string")
    return
  end
  -- what was kept as it came (a record version, the extensions) may be
  -- anything; what was written must read back as a whole record
  local r = wire.parse_client_hello(out)
  assert(r.consumed == #out or r.outcome ~= "client_hello", "a replayed hello of the wrong length")
end

local function check(bytes)
  replay(bytes)
  local r = wire.parse_client_hello(bytes)
  assert(OUTCOMES[r.outcome], tostring(r.outcome))
  assert(r.done or r.need > 0, "neither done nor needing bytes")
  assert(r.consumed >= 0 and r.consumed <= #bytes)
  assert(type(r.problems) == "table")
  if r.outcome == "client_hello" then
    assert(math.type(r.version) == "integer" and #r.suites == #r.suite_names)
    for _, e in ipairs(r.extensions or {}) do assert(e.type >= 0 and e.type <= 0xFFFF) end
  end
  return r
end

local function record(payload)
  payload = payload:sub(1, 16384)
  return string.char(22, 3, 1, math.floor(#payload / 256), #payload % 256) .. payload
end
local function hs(body)
  body = body:sub(1, 0xFFF0)
  return string.char(1, 0, math.floor(#body / 256), #body % 256) .. body
end

return function(data)
  check(data)
  local msg = hs(data)
  check(record(msg))
  local cut = (data:byte(1) or 0) % (#msg + 1)
  check(record(msg:sub(1, cut)) .. record(msg:sub(cut + 1)))
  local ext = data:sub(1, 0xFFF0)
  local body = "\3\3" .. ("r"):rep(32) .. "\0\0\2\19\1\1\0" .. string.char(math.floor(#ext / 256), #ext % 256) .. ext
  check(record(hs(body)))
end
