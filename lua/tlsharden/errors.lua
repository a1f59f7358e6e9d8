--- The error rule (docs/api.md) for the functions written in Lua, worded
-- as the C core words it: "tlsharden.<fn>: bad argument #<n> '<name>': ...",
-- "bad option '<name>': ...", bad values quoted by the core's own quote
-- (shortened to 40 bytes, non-printable bytes escaped). Errors carry no
-- "file:line:" prefix, like the core's.
local core = require "tlsharden.core"

local errors = {}

--- The short rendering of any value for a message.
errors.quote = core.quote

--- A message from elsewhere (Lua's parser, a configuration's own error)
-- cut to a length a message may have.
local MESSAGE_MAX = 300
function errors.shorten(msg)
  msg = tostring(msg)
  if #msg > MESSAGE_MAX then msg = msg:sub(1, MESSAGE_MAX - 3) .. "..." end
  return msg
end

--- Raise "tlsharden.<fn>: <message>".
function errors.raise(fn, fmt, ...)
  error("tlsharden." .. fn .. ": " .. fmt:format(...), 0)
end

--- Raise "tlsharden.<fn>: bad argument #<n> '<name>': <message>".
function errors.argument(fn, n, name, fmt, ...)
  error(("tlsharden.%s: bad argument #%d%s: "):format(fn, n, name and (" '" .. name .. "'") or "")
    .. fmt:format(...), 0)
end

--- Raise "tlsharden.<fn>: bad option '<name>': <message>".
function errors.option(fn, name, fmt, ...)
  error(("tlsharden.%s: bad option '%s': "):format(fn, name) .. fmt:format(...), 0)
end

--- Argument n must be a table (or nil when optional): returns it or {}.
function errors.table(fn, n, name, value, optional)
  if value == nil and optional then return {} end
  if type(value) ~= "table" then
    errors.argument(fn, n, name, "expected a table, got %s", errors.quote(value))
  end
  return value
end

--- Argument n (an options table, or nil) may only hold the names in
-- known: a list of names, or a set { name = "type" } (the value's Lua type)
-- or { name = true } (any value). Returns it, or {} for nil.
function errors.options(fn, n, name, value, known)
  local opts = errors.table(fn, n, name, value, true)
  for k, v in next, opts do
    local want = false
    if known[1] then
      for _, kn in ipairs(known) do
        if k == kn then want = true break end
      end
    elseif type(k) == "string" then
      want = known[k] or false
    end
    if not want then
      local names = known
      if not known[1] then
        names = {}
        for kn in pairs(known) do names[#names + 1] = kn end
        table.sort(names)
      end
      errors.argument(fn, n, name, "unknown option %s (known: %s)", errors.quote(k), table.concat(names, ", "))
    end
    if want ~= true and type(v) ~= want then
      errors.option(fn, k, "expected a %s, got %s", want, errors.quote(v))
    end
  end
  return opts
end

--- The number option key of opts in lo..hi, or default when absent.
function errors.number(fn, opts, key, lo, hi, default)
  local v = opts[key]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    errors.option(fn, key, "expected a number from %s to %s, got %s", lo, hi, errors.quote(v))
  end
  return v
end

--- The whole-number option key of opts in lo..hi, or default when absent.
function errors.integer(fn, opts, key, lo, hi, default)
  local v = opts[key]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v % 1 ~= 0 or v < lo or v > hi then
    errors.option(fn, key, "expected a whole number from %s to %s, got %s", lo, hi, errors.quote(v))
  end
  return v
end

return errors
