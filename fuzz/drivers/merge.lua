-- Fuzz target: merge layers decoded from the input bytes into nested Lua
-- tables (keys and values drawn from the names merge knows, and from the
-- input itself), merged in both orders and under both policies.
local core = require "tlsharden.core"

local KEYS = { "options", "verifyext", "protocol", "ciphers", "ciphersuites", "curveslist", "depth",
  "verify", "mode", "key", "certificate", "dhparam", "name", "_x", "alpn", 1 }
local NAMES = { "no_ticket", "no_compression", "no_tlsv1", "no_tlsv1_3", "all", "bogus", "lsec_continue",
  "tlsv1_2+", "tlsv1+", "any", "TLSv1.2:TLSv1.3", "HIGH", "ECDHE+AESGCM", "kRSA", "peer", "none",
  "server", "client", "X25519", "" }

local function decoder(data)
  local pos = 0
  local function byte()
    pos = pos + 1
    return data:byte(pos) or 0
  end
  local value
  function value(depth)
    local b = byte()
    local kind = b % 7
    if kind == 0 then return NAMES[byte() % #NAMES + 1]
    elseif kind == 1 then return byte() - 8
    elseif kind == 2 then return b >= 128
    elseif kind == 3 and depth < 3 then
      local t = {}
      for _ = 1, byte() % 5 do t[#t + 1] = value(depth + 1) end
      return t
    elseif kind == 4 and depth < 3 then
      local t = {}
      for _ = 1, byte() % 4 do t[NAMES[byte() % #NAMES + 1]] = value(depth + 1) end
      return t
    elseif kind == 5 then
      local n = byte() % 16
      pos = pos + n
      return data:sub(pos - n + 1, pos)
    end
    return nil
  end
  return function()
    local layer = {}
    for _ = 1, byte() % 6 do layer[KEYS[byte() % #KEYS + 1]] = value(0) end
    return layer
  end
end

return function(data)
  local next_layer = decoder(data)
  local layers = {}
  for i = 1, (data:byte(1) or 0) % 5 + 1 do layers[i] = next_layer() end
  for _, order in ipairs { "later", "prosody" } do
    local ok, cfg, report = pcall(core.merge, layers, { order = order })
    if ok then
      assert(type(cfg) == "table" and type(report.warnings) == "table")
    else
      assert(core.is_error(cfg) and cfg.fn == "merge" and cfg.kind == "argument", tostring(cfg))
    end
  end
  local ok, err = pcall(core.merge, layers, { policy = "strict" })
  assert(ok or (core.is_error(err) and err.fn == "merge"), tostring(err))
end
