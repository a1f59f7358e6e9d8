--- The tlsharden command line: `tlsharden [global options] COMMAND [ARGS]`.
-- cli.main(argv, out, err) runs one command and returns the exit code, so
-- the CLI can be driven from specs as well as from bin/tlsharden.
--   0  ok
--   1  a finding: a grade below --min-grade or a problem of severity error
--   2  usage or input error (one line on stderr)
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"

local cli = {}

local EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2

-- A usage or input error: raised as a table so it is told apart from bugs.
local function usage_error(fmt, ...)
  error({ usage = fmt:format(...) }, 0)
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
        widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell)
      end
    end
    for r, row in ipairs(rows) do
      local parts = {}
      for i, cell in ipairs(row) do
        local pad = i < #row and (" "):rep(widths[i] - (utf8.len(cell) or #cell)) or ""
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
  json = "flag", ["no-color"] = "flag", help = "flag", ["min-grade"] = "value",
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
  local n = math.tointeger(tonumber(v))
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
    { "  --json", "print one JSON document (schema in docs/cli.md)" },
    { "  --no-color", "no colour, even on a terminal" },
    { "  --min-grade G", "exit 1 when a grade is below G (default B)" },
    { "  --help", "this text; `tlsharden COMMAND --help` for one command" },
  }
  p.line()
  p.line("exit codes: 0 ok, 1 a finding (grade below --min-grade or an error-severity")
  p.line("problem), 2 usage or input error.")
end

local grades = { "A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M" }
local grade_rank = {}
for i, g in ipairs(grades) do grade_rank[g] = i end

--- Whether grade g is below the minimum (T and M count as failing).
function cli.below(g, min)
  return (grade_rank[g] or math.huge) > grade_rank[min]
end

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
    if opts.help or not def then
      if def then command_help(out, name, def) else main_help(out) end
      return (opts.help or #argv == 0) and EXIT_OK or EXIT_USAGE
    end
    local min_grade = opts["min-grade"] or "B"
    if not grade_rank[min_grade] or min_grade == "T" or min_grade == "M" then
      usage_error("option --min-grade needs a grade from A+ to F, got '%s'", min_grade)
    end
    return def.run {
      args = args, opts = opts, out = out, err = new_printer(stderr, false),
      json = opts.json == true, min_grade = min_grade,
    }
  end)
  if ok then return code end
  if type(code) == "table" and code.usage then
    stderr:write("tlsharden: ", (code.usage:gsub("\n", " ")), "\n")
    return EXIT_USAGE
  end
  stderr:write("tlsharden: internal error: ", tostring(code), "\n")
  return EXIT_USAGE
end

cli.usage_error = usage_error
cli.EXIT_OK, cli.EXIT_FINDING, cli.EXIT_USAGE = EXIT_OK, EXIT_FINDING, EXIT_USAGE

--- Call f(...) and turn a tlsharden input error into a usage error.
function cli.input(f, ...)
  local ok, res, extra = pcall(f, ...)
  if not ok then
    local msg = tostring(res):gsub("^[^:]*:%d+: ", "")
    usage_error("%s", msg)
  end
  return res, extra
end

--- protocol ---------------------------------------------------------------

cli.command("protocol", {
  summary = "parse a protocol setting and show the version range it allows",
  usage = "protocol SPEC [--floor VERSION|none]",
  options = { floor = "value" },
  help = [[SPEC is any form Prosody, LuaSec, fast_tls or OTP use: "tlsv1_2+", "tlsv1_2",
"sslv23", "TLSv1.2:TLSv1.3", "tlsv1_2-tlsv1_3". A range below the floor
(default tlsv1_2) is reported as an error-severity problem (exit 1).]],
  run = function(c)
    if #c.args ~= 1 then usage_error("protocol needs exactly one SPEC (see tlsharden protocol --help)") end
    local floor = c.opts.floor
    if floor == "none" then floor = false end
    local p = cli.input(tlsharden.protocol, c.args[1], { floor = floor, allow_insecure = true })
    local problems = json.list()
    if p.insecure then
      problems[1] = { severity = "error", code = "PROTOCOL_BELOW_FLOOR", message = p.warning }
    end
    if c.json then
      c.out.line(json.encode {
        command = "protocol", spec = c.args[1], min = p.min, max = p.max,
        versions = json.list(p.versions), unavailable = json.list(p.unavailable),
        luasec = { protocol = p.luasec.protocol, options = json.list(p.luasec.options) },
        floor = p.floor, insecure = p.insecure, problems = problems,
      })
    else
      local o = c.out
      o.columns {
        { "spec", c.args[1] },
        { "form", p.form },
        { "range", p.min .. " .. " .. (p.max or "newest") },
        { "versions", table.concat(p.versions, ", ") },
        { "unavailable", #p.unavailable > 0 and table.concat(p.unavailable, ", ") .. " (not in this OpenSSL)" or "-" },
        { "LuaSec", ("protocol = %q, options = { %s }"):format(p.luasec.protocol,
          table.concat(p.luasec.options, ", ")) },
      }
      o.line()
      if p.insecure then
        o.line(o.paint("red", "error: " .. p.warning))
      else
        o.line(o.paint("green", "ok: nothing below " .. (p.floor or "any floor")))
      end
    end
    return p.insecure and EXIT_FINDING or EXIT_OK
  end,
})

--- ciphers ----------------------------------------------------------------

local function suite_rows(suites)
  local rows = { { "suite", "IANA", "min", "kx", "auth", "encryption", "bits", "mac", "FS", "weak" } }
  for _, su in ipairs(suites) do
    rows[#rows + 1] = { su.name, su.iana, su.protocol, su.kx, su.auth, su.encryption,
      tostring(su.bits), su.mac, su.fs and "yes" or "NO", table.concat(su.weak, ",") }
  end
  return rows
end
cli.suite_rows = suite_rows

cli.command("ciphers", {
  summary = "expand a cipher string with OpenSSL and classify every suite",
  usage = "ciphers STRING [--ciphersuites S] [--protocol P] [--seclevel N] [--strict]",
  options = { ciphersuites = "value", protocol = "value", seclevel = "value", strict = "flag" },
  help = [[Lists the suites a server with these settings would offer, in preference
order, with key exchange, forward secrecy and weaknesses. Suites without
forward secrecy or with a weakness are problems of severity error (exit 1).]],
  run = function(c)
    if #c.args ~= 1 then usage_error("ciphers needs exactly one STRING (see tlsharden ciphers --help)") end
    local r = cli.input(tlsharden.ciphers, c.args[1], {
      ciphersuites = c.opts.ciphersuites, protocol = c.opts.protocol,
      seclevel = integer_option(c.opts, "seclevel"), strict = c.opts.strict or nil,
    })
    local problems = json.list()
    if r.non_fs_count > 0 then
      problems[#problems + 1] = { severity = "error", code = "NO_FORWARD_SECRECY",
        message = ("%d of %d suites have no forward secrecy: %s"):format(r.non_fs_count, r.count,
          table.concat(r.non_fs, ", ")) }
    end
    for _, w in ipairs(r.weak) do
      problems[#problems + 1] = { severity = "error", code = "WEAK_SUITE",
        message = ("%s: %s"):format(w.name, table.concat(w.reasons, ", ")) }
    end
    if c.json then
      for _, su in ipairs(r.suites) do json.list(su.weak) end
      c.out.line(json.encode {
        command = "ciphers", spec = r.spec, fs = r.fs, count = r.count, fs_count = r.fs_count,
        seclevel = r.seclevel, suites = json.list(r.suites), non_fs = json.list(r.non_fs),
        problems = problems,
      })
    else
      local o = c.out
      o.columns(suite_rows(r.suites), function(row, col, cell)
        if row == 1 then return o.paint("bold", cell) end
        if col == 9 and cell == "NO" then return o.paint("red", cell) end
        if col == 10 and cell ~= "" then return o.paint("red", cell) end
        return cell
      end)
      o.line()
      o.line(("%d suites, forward secrecy: %s (%d of %d), security level %d"):format(
        r.count, r.fs, r.fs_count, r.count, r.seclevel))
      for _, p in ipairs(problems) do o.line(o.paint("red", "error: " .. p.message)) end
    end
    return #problems > 0 and EXIT_FINDING or EXIT_OK
  end,
})

--- chain ------------------------------------------------------------------

cli.command("chain", {
  summary = "check a certificate chain file: trust, expiry, strength, order, XMPP names",
  usage = "chain FILE [--host DOMAIN] [--service xmpp-client|xmpp-server] [--depth N] [--cafile F] [--key F]",
  options = { host = "value", service = "value", depth = "value", cafile = "value",
    capath = "value", key = "value", ["warn-days"] = "value" },
  help = [[FILE is a PEM file, leaf first. Problems of severity error (expired, untrusted,
wrong host, weak key...) make the exit code 1; warnings (expires soon) do not.]],
  run = function(c)
    if #c.args ~= 1 then usage_error("chain needs exactly one FILE (see tlsharden chain --help)") end
    local r = cli.input(tlsharden.chain, c.args[1], {
      host = c.opts.host, service = c.opts.service, depth = integer_option(c.opts, "depth"),
      cafile = c.opts.cafile, capath = c.opts.capath, key = c.opts.key,
      warn_days = integer_option(c.opts, "warn-days"),
    })
    local failing = false
    for _, p in ipairs(r.problems) do failing = failing or p.severity == "error" end
    if c.json then
      for _, cert in ipairs(r.certs) do
        json.list(cert.dns_names) json.list(cert.srv_ids) json.list(cert.xmpp_addrs)
      end
      c.out.line(json.encode {
        command = "chain", file = c.args[1], ok = r.ok, trusted = r.trusted, depth = r.depth,
        count = r.count, certs = json.list(r.certs), problems = json.list(r.problems),
      })
    else
      local o = c.out
      local rows = { { "#", "subject", "issuer", "key", "signature", "not after", "days" } }
      for i, cert in ipairs(r.certs) do
        rows[#rows + 1] = { tostring(i), cert.subject or "", cert.issuer or "",
          ("%s %d"):format(cert.key_type or "?", cert.key_bits or 0), cert.signature_digest or "",
          cert.not_after or "", tostring(cert.days_left) }
      end
      o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end)
      o.line()
      o.line(("%d certificate%s, %d intermediate%s in the verified chain, %s"):format(
        r.count, r.count == 1 and "" or "s", r.depth, r.depth == 1 and "" or "s",
        r.trusted and "trusted" or "not trusted"))
      for _, p in ipairs(r.problems) do
        local colour = p.severity == "error" and "red" or "yellow"
        o.line(o.paint(colour, ("%s: %s%s: %s"):format(p.severity, p.code,
          p.cert and (" (certificate " .. p.cert .. ")") or "", p.message)))
      end
      if #r.problems == 0 then o.line(o.paint("green", "ok: no problem found")) end
    end
    return failing and EXIT_FINDING or EXIT_OK
  end,
})

return cli
