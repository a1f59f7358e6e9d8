-- Fuzz target: DNS messages. The input is parsed as a whole message, as a
-- message behind a fixed header (so that the fuzzer spends its bytes on the
-- sections), and split into a name and a type for dns_query, whose output
-- must parse back to the same question; and as the data of one record of
-- each type the parser reads (dns_rdata, as libunbound hands it over).
local wire = require "tlsharden.wire"
local core = require "tlsharden.core"

local HEADER = "\0\1\129\128\0\1\0\2\0\1\0\1"

local function check(bytes)
  local ok, msg, why = pcall(wire.dns_parse, bytes)
  assert(ok, msg)
  if msg then
    assert(type(msg.answers) == "table" and type(msg.flags) == "table" and msg.size == #bytes)
    assert(msg.trailing >= 0 and msg.trailing <= #bytes)
  else
    assert(type(why) == "string" and #why > 0)
  end
end

local RDATA_TYPES = { "A", "AAAA", "NS", "CNAME", "SOA", "MX", "TXT", "SRV", "TLSA", "DS" }

return function(data)
  local t = RDATA_TYPES[#data % #RDATA_TYPES + 1]
  local ok, r, why = pcall(wire.dns_rdata, t, data)
  assert(ok, r)
  assert((r and r.type == t) or (not r and type(why) == "string" and #why > 0))
  check(data)
  check(HEADER .. data)
  local name, qtype = data:match("^([^%z]*)%z(.*)$")
  local ok, q = pcall(wire.dns_query, name or data, qtype ~= "" and qtype or "A", #data % 65536,
    { dnssec = #data % 2 == 0 })
  if ok then
    local m = assert(wire.dns_parse(q))
    assert(#m.questions == 1 and m.edns and m.id == #data % 65536)
  else
    assert(core.is_error(q) and q.fn == "wire.dns_query", tostring(q))
  end
end
