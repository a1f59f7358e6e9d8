--- JSON output with a stable shape: lua-cjson encodes the scalars; lists are
-- told apart from maps here, so an empty list is [] and not {}, and map keys
-- come out sorted.
local cjson = require "cjson"
local compat = require "tlsharden.compat"

local json = {}

--- Mark t as a list, so that it encodes as [] even when empty.
local list_mt = { __name = "tlsharden.list" }
function json.list(t)
  return setmetatable(t or {}, list_mt)
end

local function is_list(t)
  if getmetatable(t) == list_mt then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if not compat.is_integer(k) or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local encode

local function encode_into(v, out, seen)
  local t = type(v)
  if t == "table" then
    if seen[v] then error("tlsharden.json: cannot encode a table that contains itself", 0) end
    seen[v] = true
    if is_list(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_into(v[i], out, seen)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) == "string" or compat.is_integer(k) then keys[#keys + 1] = k end
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(tostring(k))
        out[#out + 1] = ":"
        encode_into(v[k], out, seen)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  elseif t == "string" or t == "number" or t == "boolean" then
    out[#out + 1] = cjson.encode(v)
  elseif v == nil then
    out[#out + 1] = "null"
  else
    -- functions and userdata have no JSON form; say what they were.
    out[#out + 1] = cjson.encode(tostring(v))
  end
end

function encode(v)
  local out = {}
  encode_into(v, out, {})
  return table.concat(out)
end
json.encode = encode

json.decode = cjson.decode

return json
