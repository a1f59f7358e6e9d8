--- The few library functions of Lua 5.3 and 5.4 that tlsharden's modules use,
-- on Lua 5.2 as well. Each uses the library's own function where there is one.
local compat = {}

-- 5.2's numbers are all floats: there an integral number in the exact range of
-- a double counts as an integer, as it does in the core (th_integer).
local EXACT = 2 ^ 53

--- Whether v is an integer (math.type(v) == "integer" on 5.3 and later).
function compat.is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v == math.floor(v) and v >= -EXACT and v <= EXACT
end

--- v as an integer when it has an exact integer value, else nil (math.tointeger).
function compat.tointeger(v)
  if math.tointeger then return math.tointeger(v) end
  if compat.is_integer(v) then return v end
  return nil
end

--- The number of characters of the UTF-8 string s (utf8.len); nil when s is
-- not UTF-8 (on 5.2: the bytes that start a character).
function compat.utf8_len(s)
  if utf8 then return utf8.len(s) end
  return (select(2, s:gsub("[^\128-\191]", "")))
end

--- table.move(a1, f, e, t [, a2]): a1[f..e] into a2 (default a1) from t on.
compat.move = table.move or function(a1, f, e, t, a2)
  a2 = a2 or a1
  if e < f then return a2 end
  if t > f and a2 == a1 then
    for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
  else
    for i = 0, e - f do a2[t + i] = a1[f + i] end
  end
  return a2
end

return compat
