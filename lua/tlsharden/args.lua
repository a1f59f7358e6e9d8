--- Argument and option checks shared by the Lua modules of the scanner, so
-- that every function words its errors the same way (docs/api.md): the
-- function, the argument or option, the bad value quoted and shortened.
local M = {}

local MAX_QUOTE = 40

--- A value as an error message shows it: strings and numbers quoted,
-- shortened to 40 bytes, non-printable bytes escaped; other values by type.
function M.quote(v)
  local t = type(v)
  if t == "string" or t == "number" then
    local s = tostring(v)
    local short = s:sub(1, MAX_QUOTE):gsub("[\0-\31\\\127-\255]", function(c) return "\\" .. c:byte() end)
    return "'" .. short .. (#s > MAX_QUOTE and "..." or "") .. "'"
  end
  if t == "nil" then return "nil" end
  return "a " .. t
end

--- Raise "tlsharden.<fn>: <message>" (without a position, like the C core).
function M.fail(fn, fmt, ...)
  error(("tlsharden.%s: " .. fmt):format(fn, ...), 0)
end

--- Check an options table: nil gives {}; anything but a table, or a key
-- that is not in known (a set of name = "type" or name = true), raises.
-- Returns the table.
function M.options(fn, argn, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("tlsharden.%s: bad argument #%d 'opts': expected a table, got %s"):format(fn, argn, M.quote(opts)), 0)
  end
  for k, v in pairs(opts) do
    local want = type(k) == "string" and known[k]
    if not want then
      local names = {}
      for name in pairs(known) do names[#names + 1] = name end
      table.sort(names)
      error(("tlsharden.%s: bad option %s (known: %s)"):format(fn, M.quote(k), table.concat(names, ", ")), 0)
    end
    if want ~= true and type(v) ~= want then
      error(("tlsharden.%s: bad option '%s': expected a %s, got %s"):format(fn, k, want, M.quote(v)), 0)
    end
  end
  return opts
end

--- A number option in [lo, hi], or the default.
function M.number(fn, opts, key, lo, hi, default)
  local v = opts[key]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    error(("tlsharden.%s: bad option '%s': expected a number from %s to %s, got %s")
      :format(fn, key, lo, hi, M.quote(v)), 0)
  end
  return v
end

return M
