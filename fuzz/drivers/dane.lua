-- Fuzz target: DANE matching. The input is a certificate chain (split on
-- a marker into DER blobs) and TLSA records drawn from its first bytes,
-- with data taken from the input itself (as given, and as the hex of a
-- slice), so that parsing, SPKI extraction and every comparison run.
local wire = require "tlsharden.wire"
local core = require "tlsharden.core"

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

return function(data)
  local chain = {}
  for blob in (data .. "\0\0\0\0"):gmatch("(.-)%z%z%z%z") do
    if #blob > 0 and #chain < 8 then chain[#chain + 1] = blob end
  end
  if #chain == 0 then chain[1] = data .. "x" end
  local b = { data:byte(1, 6) }
  local records = {}
  for i = 1, 3 do
    local v = b[i] or 0
    records[i] = { usage = v % 5, selector = math.floor(v / 5) % 3, matching_type = math.floor(v / 15) % 4,
      data = hex(data:sub(i * 7, i * 7 + (b[i + 3] or 32) % 80)) }
  end
  records[4] = { type = "RRSIG" }
  records[5] = { usage = 3, selector = 0, matching_type = 0, data = hex(chain[1]) }
  local ok, r = pcall(wire.dane_match, records, chain)
  if ok then
    assert(#r.records == #records and #r.certs == #chain)
    assert(r.records[4].skipped and #r.records[5].certs == 1, "a full certificate must match itself")
  else
    assert(core.is_error(r) and r.fn == "wire.dane_match", tostring(r))
  end
end
