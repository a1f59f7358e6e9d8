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
function errors.shorten(msg)
  msg = tostring(msg)
  if #msg > errors.MESSAGE_MAX then msg = msg:sub(1, errors.MESSAGE_MAX - 3) .. "..." end
  return msg
end
errors.MESSAGE_MAX = 300

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
-- known (a list): returns it, or {} for nil.
function errors.options(fn, n, name, value, known)
  local opts = errors.table(fn, n, name, value, true)
  for k in next, opts do
    local ok = false
    for _, kn in ipairs(known) do
      if k == kn then ok = true break end
    end
    if not ok then
      errors.argument(fn, n, name, "unknown option %s (known: %s)", errors.quote(k),
        table.concat(known, ", "))
    end
  end
  return opts
end

return errors
