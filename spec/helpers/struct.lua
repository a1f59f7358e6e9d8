--- Big-endian wire encodings for the specs, helpers and benchmarks:
-- string.pack and string.unpack for the formats they use (">", "B", "In",
-- "sn", "cn", n from 1 to 4 for integers and lengths), written out for
-- Lua 5.2, which has neither. On 5.3 and later these are the library's own.
local struct = {}

local function items(fmt)
  local list = {}
  for code, n in fmt:gmatch("([BIsc>])(%d*)") do
    if code ~= ">" then
      n = tonumber(n) or 1
      if code == "B" then code, n = "I", 1 end
      assert(code == "c" or (n >= 1 and n <= 4), "struct: size out of range in " .. fmt)
      list[#list + 1] = { code = code, n = n }
    end
  end
  return list
end

local function uint(v, n)
  assert(type(v) == "number" and v >= 0 and v < 256 ^ n and v == math.floor(v),
    "struct: integer does not fit in " .. n .. " bytes: " .. tostring(v))
  local t = {}
  for i = n, 1, -1 do
    t[i] = string.char(v % 256)
    v = math.floor(v / 256)
  end
  return table.concat(t)
end

local function read_uint(s, pos, n)
  assert(pos + n - 1 <= #s, "struct: data string too short")
  local v = 0
  for i = pos, pos + n - 1 do v = v * 256 + s:byte(i) end
  return v, pos + n
end

function struct.pack(fmt, ...)
  local out, args = {}, { ... }
  for i, item in ipairs(items(fmt)) do
    local v = args[i]
    if item.code == "I" then
      out[#out + 1] = uint(v, item.n)
    elseif item.code == "s" then
      out[#out + 1] = uint(#v, item.n) .. v
    else
      assert(#v == item.n, "struct: string of the wrong length for c" .. item.n)
      out[#out + 1] = v
    end
  end
  return table.concat(out)
end

function struct.unpack(fmt, s, pos)
  local out = {}
  pos = pos or 1
  for _, item in ipairs(items(fmt)) do
    local v
    if item.code == "I" then
      v, pos = read_uint(s, pos, item.n)
    else
      local n = item.n
      if item.code == "s" then n, pos = read_uint(s, pos, item.n) end
      assert(pos + n - 1 <= #s, "struct: data string too short")
      v, pos = s:sub(pos, pos + n - 1), pos + n
    end
    out[#out + 1] = v
  end
  out[#out + 1] = pos
  return table.unpack(out)
end

struct.pack = string.pack or struct.pack
struct.unpack = string.unpack or struct.unpack

return struct
