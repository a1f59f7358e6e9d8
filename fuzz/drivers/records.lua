-- Fuzz target: the records a server sends after its first flight
-- (wire.parse_records), as they come and wrapped as the payload of an
-- alert, a heartbeat and a handshake record; and the record writers fed
-- with the input; and the input as the certificate of ROBOT's messages,
-- as a TLS session (wire.parse_session, DER and PEM) and as the ticket of
-- a hello that resumes one.
local wire = require "tlsharden.wire"

local function check(bytes)
  local r = wire.parse_records(bytes)
  assert(r.consumed >= 0 and r.consumed <= #bytes)
  assert(r.need >= 0)
  local sum = 0
  for _, rec in ipairs(r.records) do
    assert(rec.type >= 20 and rec.type <= 24, tostring(rec.type))
    assert(rec.length >= 0 and rec.length <= 16384 + 2048)
    sum = sum + 5 + rec.length
    if rec.carried then assert(rec.carried == rec.length - 3) end
  end
  assert(sum == r.consumed, "records and consumed disagree")
  return r
end

return function(data)
  check(data)
  local payload = data:sub(1, 16384)
  for _, t in ipairs { "alert", "heartbeat", "handshake", "change_cipher_spec" } do
    local r = check(wire.record(t, "tlsv1_2", payload) .. data)
    assert(r.records[1] and r.records[1].length == #payload)
  end
  -- the input as the server's certificate for ROBOT's messages: a message
  -- or nil and why, never a crash
  local m, why = wire.robot_key_exchange(data, "no_zero")
  assert((m and m:byte(1) == 16) or type(why) == "string")
  local claimed = ((data:byte(1) or 0) * 256 + (data:byte(2) or 0))
  local hb = wire.heartbeat_request(claimed, data:sub(3, 1000))
  assert(#hb == 3 + math.min(#data - 2, 998) or #data < 3)
  -- the input as a session: a table or nil and why, never a crash
  for _, bytes in ipairs { data, "-----BEGIN SSL SESSION PARAMETERS-----\n" .. data
    .. "\n-----END SSL SESSION PARAMETERS-----\n" } do
    local t, why2 = wire.parse_session(bytes)
    assert((type(t) == "table" and type(t.session_id) == "string") or type(why2) == "string")
  end
  if #data > 0 then
    local hello = wire.client_hello { version = "tlsv1_2", session_ticket = data:sub(1, 8192) }
    assert(hello:find(data:sub(1, 8192), 1, true))
  end
end
