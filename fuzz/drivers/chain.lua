-- Fuzz target: PEM chains. The input is used as PEM text as it is, and
-- wrapped as the base64 body of a certificate, so that both the PEM framing
-- and the DER inside are exercised.
local core = require "tlsharden.core"

local b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  return (s:gsub(".", function(c)
    local b = c:byte()
    local r = ""
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1]
end

local function check(source)
  local ok, res = pcall(core.chain, source, { host = "example.com", depth = 3 })
  if ok then
    assert(type(res.problems) == "table" and #res.certs == res.count)
  else
    assert(type(res) == "string" and res:find("tlsharden.chain", 1, true), tostring(res))
  end
end

return function(data)
  check("-----BEGIN CERTIFICATE-----\n" .. base64(data) .. "\n-----END CERTIFICATE-----\n")
  if data:find("-----BEGIN", 1, true) then check(data) end
end
