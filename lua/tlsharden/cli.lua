--- The tlsharden command line: `tlsharden [global options] COMMAND [ARGS]`.
-- This file is the framework (arguments, output, exit codes, help); each
-- command lives in lua/tlsharden/cli/ and registers itself here.
-- cli.main(argv, out, err) runs one command and returns the exit code, so
-- the CLI can be driven from specs as well as from bin/tlsharden.
--   0  ok
--   1  a finding: a grade below --min-grade or a problem of severity error
--   2  usage or input error (one line on stderr)
local compat = require "tlsharden.compat"
local errors = require "tlsharden.errors"
local grade = require "tlsharden.grade"

local cli = {}

local EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2

-- A usage or input error of the command line itself: an error object of
-- kind "input" without a function, told apart from bugs by its kind.
local function usage_error(fmt, ...)
  error(errors.new("input", nil, "", fmt:format(...)), 0)
end

--- Output -----------------------------------------------------------------

local colours = { red = "31", green = "32", yellow = "33", bold = "1", dim = "2" }

local function new_printer(stream, colour)
  local p = { stream = stream, colour = colour }
  function p.paint(name, s)
    if not p.colour or not colours[name] then return s end
    return "\27[" .. colours[name] .. "m" .. s .. "\27[0m"
  end
  function p.line(s) stream:write((s or ""), "\n") end
  -- Aligned columns; rows are lists of strings, widths from the plain text.
  function p.columns(rows, paint_cell)
    local widths = {}
    for _, row in ipairs(rows) do
      for i, cell in ipairs(row) do
        widths[i] = math.max(widths[i] or 0, compat.utf8_len(cell) or #cell)
      end
    end
    for r, row in ipairs(rows) do
      local parts = {}
      for i, cell in ipairs(row) do
        local pad = i < #row and (" "):rep(widths[i] - (compat.utf8_len(cell) or #cell)) or ""
        parts[i] = (paint_cell and paint_cell(r, i, cell) or cell) .. pad
      end
      stream:write(table.concat(parts, "  "), "\n")
    end
  end
  return p
end

local function is_terminal()
  if os.getenv("NO_COLOR") and os.getenv("NO_COLOR") ~= "" then return false end
  local term = os.getenv("TERM")
  if not term or term == "dumb" then return false end
  return os.execute("test -t 1") == true
end

--- Arguments --------------------------------------------------------------

-- Split argv into global options, the command, its options and positionals.
-- spec.options maps an option name to "flag" or "value".
local global_options = {
  json = "flag", ["no-color"] = "flag", help = "flag", version = "flag", ["min-grade"] = "value",
}

local function parse_args(argv, option_kinds)
  local opts, positional = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do positional[#positional + 1] = argv[j] end
      break
    end
    local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
    if not name then name = a:match("^%-%-([%w%-]+)$") end
    if a == "-h" then name = "help" end
    if name then
      local kind = option_kinds[name] or global_options[name]
      if not kind then usage_error("unknown option --%s", name) end
      if kind == "flag" then
        if value then usage_error("option --%s takes no value", name) end
        opts[name] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage_error("option --%s needs a value", name) end
        end
        opts[name] = value
      end
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return opts, positional
end

local function integer_option(opts, name)
  local v = opts[name]
  if v == nil then return nil end
  local n = compat.tointeger(tonumber(v))
  if not n then usage_error("option --%s needs a whole number, got '%s'", name, v) end
  return n
end
cli.integer_option = integer_option

--- Commands ---------------------------------------------------------------

local commands = {}
local order = {}

--- Register a command. def: { summary, usage, options = {name = kind},
-- help = text, run = function(ctx) -> exit code }. ctx has args, opts,
-- out (printer), err (printer), json (boolean), min_grade.
function cli.command(name, def)
  commands[name] = def
  order[#order + 1] = name
end

local function command_help(p, name, def)
  p.line("usage: tlsharden " .. def.usage)
  p.line()
  p.line(def.summary)
  if def.help then p.line(); p.line(def.help) end
end

local function main_help(p)
  p.line("usage: tlsharden [--json] [--no-color] [--min-grade G] COMMAND [ARGS]")
  p.line()
  p.line("Judge and harden the TLS of LuaSec servers such as Prosody.")
  p.line()
  p.line("commands:")
  local rows = {}
  for _, name in ipairs(order) do rows[#rows + 1] = { "  " .. name, commands[name].summary } end
  p.columns(rows)
  p.line()
  p.line("global options:")
  p.columns {
    { "  --json", "print one JSON document (schema in docs/reference/cli.md)" },
    { "  --no-color", "no colour, even on a terminal" },
    { "  --min-grade G", "exit 1 when a grade is below G (default B)" },
    { "  --help", "this text; `tlsharden COMMAND --help` for one command" },
    { "  --version", "the versions of tlsharden, Lua, LuaSec and OpenSSL" },
  }
  p.line()
  p.line("exit codes: 0 ok, 1 a finding (grade below --min-grade or an error-severity")
  p.line("problem), 2 usage or input error.")
end

--- The versions in use, for --version: tlsharden's own (the core's), the
-- Lua running it, the LuaSec it loads (false where none loads) and the
-- OpenSSL the core runs with.
function cli.versions()
  local tlsharden = require "tlsharden"
  local ok, ssl = pcall(require, "ssl")
  local luasec = ok and type(ssl) == "table" and type(ssl._VERSION) == "string" and ssl._VERSION or false
  return {
    tlsharden = tlsharden.VERSION, lua = _VERSION, luasec = luasec, openssl = tlsharden.openssl_version,
  }
end

-- One line each: "tlsharden 0.1.0", "Lua 5.4", "LuaSec 1.2.0", "OpenSSL ...".
local function print_versions(p, as_json)
  local v = cli.versions()
  if as_json then
    p.line(require("tlsharden.json").encode(v))
    return
  end
  p.line("tlsharden " .. v.tlsharden)
  p.line(v.lua)
  p.line(v.luasec and "LuaSec " .. v.luasec or "LuaSec not found")
  p.line(v.openssl)
end

--- Whether grade g is below the minimum (T and M count as failing).
cli.below = grade.below

function cli.main(argv, stdout, stderr)
  stdout = stdout or io.stdout
  stderr = stderr or io.stderr
  -- The command is the first word that is neither an option nor the value
  -- of a global option given as "--name value".
  local name, at = nil, nil
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a:sub(1, 1) ~= "-" then name, at = a, i break end
    if global_options[a:match("^%-%-([%w%-]+)$") or ""] == "value" then i = i + 1 end
    i = i + 1
  end
  local def = name and commands[name]
  local ok, code = pcall(function()
    if name and not def then usage_error("unknown command '%s' (see tlsharden --help)", name) end
    local rest = {}
    for j, a in ipairs(argv) do
      if j ~= at then rest[#rest + 1] = a end
    end
    local opts, args = parse_args(rest, def and def.options or {})
    local colour = not opts["no-color"] and not opts.json and is_terminal()
    local out = new_printer(stdout, colour)
    if opts.version then
      print_versions(out, opts.json == true)
      return EXIT_OK
    end
    if opts.help or not def then
      if def then command_help(out, name, def) else main_help(out) end
      return (opts.help or #argv == 0) and EXIT_OK or EXIT_USAGE
    end
    local min_grade = opts["min-grade"] or "B"
    if not grade.rank(min_grade) or min_grade == "T" or min_grade == "M" then
      usage_error("option --min-grade needs a grade from A+ to F, got '%s'", min_grade)
    end
    return def.run {
      args = args, opts = opts, out = out, err = new_printer(stderr, false),
      json = opts.json == true, min_grade = min_grade,
    }
  end)
  if ok then return code end
  if errors.is(code) then
    stderr:write("tlsharden: ", (code.message:gsub("\n", " ")), "\n")
    return EXIT_USAGE
  end
  stderr:write("tlsharden: internal error: ", tostring(code), "\n")
  return EXIT_USAGE
end

cli.usage_error = usage_error
cli.EXIT_OK, cli.EXIT_FINDING, cli.EXIT_USAGE = EXIT_OK, EXIT_FINDING, EXIT_USAGE

--- Call f(...); its errors (tlsharden's own: bad input, a refusal, a
-- file that cannot be read) end the command with exit code 2, anything
-- else is an internal error.
function cli.input(f, ...)
  local ok, res, extra = pcall(f, ...)
  if not ok then error(res, 0) end
  return res, extra
end

-- The commands, a file each under lua/tlsharden/cli/.
for _, name in ipairs { "protocol", "ciphers", "chain", "audit", "fix", "scan", "survey", "report" } do
  require("tlsharden.cli." .. name)(cli)
end

return cli
