-- Fuzz target: server first flights. The input is parsed as it is (and as
-- if the peer then closed), as the payload of a handshake record, as the
-- body of a ServerHello, and as a ServerKeyExchange after a ServerHello
-- whose suite (taken from the first byte) makes it DHE, ECDHE, RSA export,
-- PSK or SRP.
local wire = require "tlsharden.wire"
local core = require "tlsharden.core"

local OUTCOMES = { server_hello = true, hello_retry_request = true, alert = true,
  sslv2_server_hello = true, sslv2_error = true, not_tls = true, malformed = true,
  incomplete = true, closed = true, truncated = true }
local SUITES = { 0x009E, 0xC02F, 0x0003, 0x00A8, 0xC01D, 0x00B2, 0xC035, 0x1301, 0x0000 }

local function check(bytes, eof)
  local r = wire.parse_server_flight(bytes, { eof = eof })
  assert(OUTCOMES[r.outcome], tostring(r.outcome))
  assert(r.done or (not eof and r.need > 0), "neither done nor needing bytes")
  assert(r.consumed >= 0 and r.consumed <= #bytes)
  assert(type(r.problems) == "table" and type(r.messages) == "table")
  if r.server_hello then assert(math.type(r.server_hello.suite) == "integer") end
  return r
end

local function record(rtype, payload)
  payload = payload:sub(1, 0xFFFF)
  return string.char(rtype, 3, 3, math.floor(#payload / 256), #payload % 256) .. payload
end
local function hs(htype, body)
  body = body:sub(1, 0xFFF0)
  return string.char(htype, 0, math.floor(#body / 256), #body % 256) .. body
end

return function(data)
  check(data, false)
  check(data, true)
  check(record(22, data), false)
  check(record(22, hs(2, data)), true)
  local suite = SUITES[(data:byte(1) or 0) % #SUITES + 1]
  local sh = hs(2, "\3\3" .. ("r"):rep(32) .. "\0" .. string.char(math.floor(suite / 256), suite % 256) .. "\0")
  check(record(22, sh .. hs(12, data:sub(2)) .. hs(14, "")), true)
end
