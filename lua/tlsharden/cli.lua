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

--- audit and grade ----------------------------------------------------------

local function load_audit(c)
  local path = c.args[1] or "/etc/prosody/prosody.cfg.lua"
  if #c.args > 1 then usage_error("%s takes at most one CONFIG file", c.name) end
  local env
  if c.opts["with-env"] then
    env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })
  end
  local at
  if c.opts.at then
    at = math.tointeger(tonumber(c.opts.at))
    if not at then usage_error("option --at needs a time in seconds since the epoch, got '%s'", c.opts.at) end
  end
  return cli.input(tlsharden.audit, path, { text = false, cafile = c.opts.cafile, capath = c.opts.capath,
    guide = c.opts.guide, starttls_cap = c.opts["starttls-cap"], env = env, at = at })
end

local function audit_exit(report, min_grade)
  local failing = false
  for _, h in ipairs(report.hosts) do
    for _, p in ipairs(h.problems) do failing = failing or p.severity == "error" end
    for _, s in ipairs(h.services) do
      for _, p in ipairs(s.problems) do failing = failing or p.severity == "error" end
      if not s.grade or cli.below(s.grade.grade, min_grade) then failing = true end
    end
  end
  return failing and EXIT_FINDING or EXIT_OK
end

local function json_audit(report, command, full)
  local hosts = json.list()
  for _, h in ipairs(report.hosts) do
    local services = json.list()
    for _, s in ipairs(h.services) do
      local g = s.grade or {}
      local entry = {
        service = s.service, label = s.label, mode = s.mode,
        grade = g.grade, grade_if_trusted = g.grade_if_trusted, score = g.score,
        caps = json.list(g.caps or {}), reasons = json.list(g.reasons or {}),
        forward_secrecy = s.forward_secrecy, problems = json.list(s.problems),
      }
      if full then
        entry.layers = json.list(s.layers or {})
        entry.versions = json.list(s.context and s.context.versions or {})
        entry.config = s.config
        entry.tlsharden_would_change = json.list(s.tlsharden_would_change or {})
      end
      services[#services + 1] = entry
    end
    hosts[#hosts + 1] = { host = h.host, grade = h.grade, policy = h.policy,
      problems = json.list(h.problems), services = services }
  end
  return json.encode {
    command = command, file = report.file, guide = report.guide, tls_profile = report.tls_profile,
    grade = report.grade, hosts = hosts, components = json.list(report.components),
    problems = json.list(report.problems),
  }
end

local function print_problem(o, p, where)
  local colour = p.severity == "error" and "red" or "yellow"
  o.line("  " .. o.paint(colour, ("%s: %s%s: %s"):format(p.severity, p.code,
    where and (" (" .. where .. ")") or "", p.message)))
end

local AUDIT_OPTIONS = { cafile = "value", capath = "value", guide = "value", ["starttls-cap"] = "flag",
  ["with-env"] = "flag", at = "value" }

cli.command("audit", {
  summary = "audit the TLS of every host and service of a Prosody configuration",
  usage = "audit [CONFIG] [--cafile F] [--capath D] [--guide 2009q|2009r] [--starttls-cap] [--with-env]",
  options = AUDIT_OPTIONS,
  help = [[CONFIG defaults to /etc/prosody/prosody.cfg.lua. The file is read in a sandbox:
nothing in it runs with access to the system. ENV_* values are empty unless
--with-env passes the real environment. For every VirtualHost and each TLS
service (c2s STARTTLS, s2s in and out, direct TLS, HTTPS) the audit merges the
configuration as Prosody 0.12 does, builds the context with LuaSec, checks the
certificate chain against the host name (--cafile/--capath for a private CA),
grades it, and says what mod_tlsharden would change. Exit 1 when a grade is
below --min-grade (default B) or any problem is of severity error.]],
  run = function(c)
    c.name = "audit"
    local report = load_audit(c)
    if c.json then
      c.out.line(json_audit(report, "audit", true))
      return audit_exit(report, c.min_grade)
    end
    local o = c.out
    o.line(o.paint("bold", ("tlsharden audit of %s"):format(report.file)) ..
      (" (guide %s, tls_profile %s)"):format(report.guide, report.tls_profile))
    for _, h in ipairs(report.hosts) do
      o.line()
      local gcol = (h.grade == "A+" or h.grade == "A") and "green" or cli.below(h.grade or "F", c.min_grade) and "red" or "yellow"
      o.line(o.paint("bold", h.host) .. "  grade " .. o.paint(gcol, h.grade or "?"))
      local rows = { { "  service", "grade", "versions", "forward secrecy", "errors", "warnings" } }
      for _, s in ipairs(h.services) do
        local e, w = 0, 0
        for _, p in ipairs(s.problems) do if p.severity == "error" then e = e + 1 else w = w + 1 end end
        local g = s.grade and s.grade.grade or "-"
        if s.grade and s.grade.grade_if_trusted then g = g .. " (" .. s.grade.grade_if_trusted .. " if trusted)" end
        rows[#rows + 1] = { "  " .. s.label, g, s.context and table.concat(s.context.versions, ",") or "-",
          s.forward_secrecy or "-", tostring(e), tostring(w) }
      end
      o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end)
      for _, p in ipairs(h.problems) do print_problem(o, p) end
      -- Problems shared by every service are printed once.
      local seen = {}
      for _, s in ipairs(h.services) do
        for _, p in ipairs(s.problems) do
          local key = p.code .. "\0" .. p.message
          if not seen[key] then
            seen[key] = s.label
            print_problem(o, p, s.label)
          end
        end
      end
      local first = h.services[1]
      if first and first.grade then
        for _, cap in ipairs(first.grade.caps) do
          o.line(("  cap %s (%s): %s"):format(cap.grade, first.label, cap.reason))
        end
      end
      if first and first.tlsharden_would_change and #first.tlsharden_would_change > 0 then
        local parts = {}
        for _, ch in ipairs(first.tlsharden_would_change) do
          local before, after = tostring(ch.before), tostring(ch.after)
          if #before > 30 then before = before:sub(1, 27) .. "..." end
          if #after > 30 then after = after:sub(1, 27) .. "..." end
          parts[#parts + 1] = ("%s %s -> %s"):format(ch.setting, before, after)
        end
        o.line("  mod_tlsharden would change (" .. first.label .. "): " .. table.concat(parts, "; "))
      end
    end
    if #report.components > 0 then
      o.line()
      o.line("components (no TLS context of their own): " .. table.concat(report.components, ", "))
    end
    o.line()
    o.line(("overall grade %s"):format(report.grade or "-"))
    return audit_exit(report, c.min_grade)
  end,
})

cli.command("grade", {
  summary = "the grade of every host and service of a Prosody configuration, with its reasons",
  usage = "grade [CONFIG] [--cafile F] [--guide 2009q|2009r] [--starttls-cap]",
  options = AUDIT_OPTIONS,
  help = [[Like `tlsharden audit`, but prints only the grades, their scores, caps and
reasons (docs/grading.md). Exit 1 when a grade is below --min-grade.]],
  run = function(c)
    c.name = "grade"
    local report = load_audit(c)
    local failing = false
    for _, h in ipairs(report.hosts) do
      for _, s in ipairs(h.services) do
        if not s.grade or cli.below(s.grade.grade, c.min_grade) then failing = true end
      end
    end
    if c.json then
      c.out.line(json_audit(report, "grade", false))
    else
      local o = c.out
      for _, h in ipairs(report.hosts) do
        for _, s in ipairs(h.services) do
          local g = s.grade
          if g then
            o.line(("%s %s: %s (score %d: protocol %g, key exchange %g, cipher %g; guide %s)"):format(
              h.host, s.label, g.grade, g.score, g.protocol_score, g.kx_score, g.cipher_score, g.guide))
            for _, cap in ipairs(g.caps) do o.line(("  cap %s: %s"):format(cap.grade, cap.reason)) end
            for _, w in ipairs(g.warnings) do o.line(("  warning: %s"):format(w)) end
          else
            o.line(("%s %s: no grade (%s)"):format(h.host, s.label,
              s.problems[1] and s.problems[1].message or "no context"))
          end
        end
      end
    end
    return failing and EXIT_FINDING or EXIT_OK
  end,
})

return cli
