--- The error rule (docs/reference/api.md) for the functions written in Lua, as the C
-- core keeps it: every error is an object { kind, fn, message, reason [,
-- argument] [, option] } whose tostring is the message,
-- "tlsharden.<fn>: bad argument #<n> '<name>': ...", "bad option
-- '<name>': ...", bad values quoted by the core's own quote (shortened to
-- 40 bytes, non-printable bytes escaped), no "file:line:" prefix. kind is
-- what a program tests: "argument" (bad input), "refused" (a policy
-- refusal), "input" (a file or text that cannot be read), "failed" (the
-- system or a library failed), "interrupted".
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

--- Whether e is an error object of tlsharden (of the given kind, when
-- kind is given).
function errors.is(e, kind)
  return core.is_error(e) and (kind == nil or e.kind == kind)
end

--- A new error object: kind, fn (nil for the command line's own errors),
-- what (the part that names what is wrong: "bad option 'x': ", or ""),
-- reason, and fields (argument, option).
function errors.new(kind, fn, what, reason, fields)
  local e = { kind = kind, fn = fn, reason = reason,
    message = (fn and ("tlsharden." .. fn .. ": ") or "") .. what .. reason }
  for k, v in pairs(fields or {}) do e[k] = v end
  return core.error_new(e)
end

--- Raise an error of kind: "tlsharden.<fn>: <message>".
function errors.raise_kind(kind, fn, fmt, ...)
  error(errors.new(kind, fn, "", fmt:format(...)), 0)
end

--- Raise a bad-input error "tlsharden.<fn>: <message>".
function errors.raise(fn, fmt, ...)
  error(errors.new("argument", fn, "", fmt:format(...)), 0)
end

--- Raise "tlsharden.<fn>: <message>" for a file or text that cannot be
-- read or understood (a configuration, a list, a results file).
function errors.input(fn, fmt, ...)
  error(errors.new("input", fn, "", fmt:format(...)), 0)
end

--- Raise "tlsharden.<fn>: <message>" for a library or the system failing.
function errors.failed(fn, fmt, ...)
  error(errors.new("failed", fn, "", fmt:format(...)), 0)
end

--- Raise "tlsharden.<fn>: bad argument #<n> '<name>': <message>".
function errors.argument(fn, n, name, fmt, ...)
  error(errors.new("argument", fn, ("bad argument #%d%s: "):format(n, name and (" '" .. name .. "'") or ""),
    fmt:format(...), { argument = n }), 0)
end

--- Raise "tlsharden.<fn>: bad option '<name>': <message>".
function errors.option(fn, name, fmt, ...)
  error(errors.new("argument", fn, ("bad option '%s': "):format(name), fmt:format(...), { option = name }), 0)
end

--- The error e (an error object) as an error of the function fn: the
-- same kind, reason and fields, the message naming fn. Anything else is
-- returned as it is.
function errors.rename(e, fn)
  if not errors.is(e) or e.fn == nil then return e end
  local prefix = "tlsharden." .. e.fn .. ": "
  local copy = {}
  for k, v in pairs(e) do copy[k] = v end
  copy.fn = fn
  copy.message = "tlsharden." .. fn .. ": " .. e.message:sub(#prefix + 1)
  return core.error_new(copy)
end

--- Raise e again as an error of fn (errors.rename).
function errors.reraise(e, fn)
  error(errors.rename(e, fn), 0)
end

--- Whether e is the error the Lua interpreter raises on an interrupt
-- (SIGINT: "interrupted!"), the one error tlsharden did not make that a
-- survey tells apart.
function errors.is_interrupt(e)
  return type(e) == "string" and e:find("interrupted!", 1, true) ~= nil
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
