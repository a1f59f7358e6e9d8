-- Fuzz target: PEM chains. The input is used as PEM text as it is, and
-- wrapped as the base64 body of a certificate, so that both the PEM framing
-- and the DER inside are exercised.
local core = require "tlsharden.core"

local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out, n = {}, 0
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local q1, q2 = math.floor(v / 262144), math.floor(v / 4096) % 64
    local q3, q4 = math.floor(v / 64) % 64, v % 64
    n = n + 1
    out[n] = b64:sub(q1 + 1, q1 + 1) .. b64:sub(q2 + 1, q2 + 1)
      .. (b and b64:sub(q3 + 1, q3 + 1) or "=") .. (c and b64:sub(q4 + 1, q4 + 1) or "=")
    if n % 16 == 0 then n = n + 1; out[n] = "\n" end
  end
  return table.concat(out)
end

local function check(source)
  local ok, res = pcall(core.chain, source, { host = "example.com", depth = 3 })
  if ok then
    assert(type(res.problems) == "table" and #res.certs == res.count)
  else
    assert(core.is_error(res) and res.fn == "chain", tostring(res))
  end
end

return function(data)
  check("-----BEGIN CERTIFICATE-----\n" .. base64(data) .. "\n-----END CERTIFICATE-----\n")
  if data:find("-----BEGIN", 1, true) then check(data) end
end
