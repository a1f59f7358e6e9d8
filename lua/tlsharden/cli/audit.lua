--- tlsharden audit and tlsharden grade: a whole Prosody configuration.
local compat = require "tlsharden.compat"
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"
local pipeline = require "tlsharden.pipeline"
local grade = require "tlsharden.grade"

return function(cli)
  local usage_error = cli.usage_error
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  local function load_audit(c)
    local path = c.args[1] or "/etc/prosody/prosody.cfg.lua"
    if #c.args > 1 then usage_error("%s takes at most one CONFIG file", c.name) end
    local env
    if c.opts["with-env"] then
      env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })
    end
    local at
    if c.opts.at then
      at = compat.tointeger(tonumber(c.opts.at))
      if not at then usage_error("option --at needs a time in seconds since the epoch, got '%s'", c.opts.at) end
    end
    return cli.input(tlsharden.audit, path, { text = false, cafile = c.opts.cafile, capath = c.opts.capath,
      guide = c.opts.guide, starttls_cap = c.opts["starttls-cap"], env = env, at = at,
      prosody = c.opts.prosody, clients = not c.opts["no-clients"] })
  end

  local function audit_exit(report, min_grade)
    local failing = false
    for _, p in ipairs(report.problems) do failing = failing or p.severity == "error" end
    for _, h in ipairs(report.hosts) do
      for _, p in ipairs(h.problems) do failing = failing or p.severity == "error" end
      for _, s in ipairs(h.services) do
        if s.reached ~= false then
          for _, p in ipairs(s.problems) do failing = failing or p.severity == "error" end
          if not s.grade or cli.below(s.grade.grade, min_grade) then failing = true end
        end
      end
    end
    for _, s in ipairs(report.ports or {}) do
      for _, p in ipairs(s.problems) do failing = failing or p.severity == "error" end
      if not s.grade or cli.below(s.grade.grade, min_grade) then failing = true end
    end
    return failing and EXIT_FINDING or EXIT_OK
  end

  local function json_audit(report, command, full)
    local function service_entry(s)
      local g = s.grade or {}
      local entry = {
        service = s.service, port = s.port, label = s.label, mode = s.mode, reached = s.reached,
        grade = g.grade, grade_if_trusted = g.grade_if_trusted, score = g.score,
        caps = json.list(g.caps or {}), reasons = json.list(g.reasons or {}),
        forward_secrecy = s.forward_secrecy, problems = json.list(s.problems),
      }
      if full then
        entry.layers = json.list(s.layers or {})
        -- what the configuration enables, and what a client gets of it
        entry.versions = json.list(s.context and s.context.versions or {})
        entry.served = json.list(s.context and (s.context.served or s.context.versions) or {})
        entry.suites = json.list(s.suites or {})
        entry.config = s.config
        entry.tlsharden_would_change = json.list(s.tlsharden_would_change or {})
        entry.clients = s.clients
      end
      return entry
    end
    local hosts = json.list()
    for _, h in ipairs(report.hosts) do
      local services = json.list()
      for _, s in ipairs(h.services) do services[#services + 1] = service_entry(s) end
      hosts[#hosts + 1] = { host = h.host, component = h.component, grade = h.grade, policy = h.policy,
        problems = json.list(h.problems), services = services }
    end
    local ports = json.list()
    for _, s in ipairs(report.ports or {}) do ports[#ports + 1] = service_entry(s) end
    return json.encode {
      command = command, file = report.file, guide = report.guide, tls_profile = report.tls_profile,
      prosody = report.prosody, prosody_from = report.prosody_from,
      grade = report.grade, hosts = hosts, components = json.list(report.components), ports = ports,
      problems = json.list(report.problems),
    }
  end

  local function print_problem(o, p, where)
    local colour = p.severity == "error" and "red" or p.severity == "warning" and "yellow" or "dim"
    o.line("  " .. o.paint(colour, ("%s: %s%s: %s"):format(p.severity, p.code,
      where and (" (" .. where .. ")") or "", p.message)))
  end

  local AUDIT_OPTIONS = { cafile = "value", capath = "value", guide = "value", ["starttls-cap"] = "flag",
    ["with-env"] = "flag", at = "value", prosody = "value", ["no-clients"] = "flag" }

  cli.command("audit", {
    summary = "audit the TLS of every host and service of a Prosody configuration",
    usage = "audit [CONFIG] [--prosody 0.12|13] [--cafile F] [--capath D] [--guide 2009q|2009r]"
      .. " [--starttls-cap] [--at EPOCH] [--with-env] [--no-clients]",
    options = AUDIT_OPTIONS,
    help = [[CONFIG defaults to /etc/prosody/prosody.cfg.lua. The file is read in a sandbox:
  nothing in it runs with access to the system. ENV_* values are empty unless
  --with-env passes the real environment. For every VirtualHost and each TLS
  service (c2s STARTTLS, s2s in and out, direct TLS, HTTPS) the audit merges the
  configuration as the Prosody version given by --prosody does (default: the one
  installed on this machine, else 13), builds the context with LuaSec, checks the
  certificate chain against the host name (--cafile/--capath for a private CA),
  grades it, says which recorded real clients each context would serve
  (--no-clients: not) and what mod_tlsharden would change. Exit 1 when a grade
  is below --min-grade (default B) or any problem is of severity error.]],
    run = function(c)
      c.name = "audit"
      local report = load_audit(c)
      if c.json then
        c.out.line(json_audit(report, "audit", true))
        return audit_exit(report, c.min_grade)
      end
      local o = c.out
      o.line(o.paint("bold", ("tlsharden audit of %s"):format(report.file)) ..
        (" (Prosody %s, guide %s, tls_profile %s)"):format(report.prosody, report.guide, report.tls_profile))
      o.line(("  modelled on: %s"):format(report.prosody_from))
      for _, p in ipairs(report.problems) do print_problem(o, p) end
      -- the ports' own contexts (clients without SNI) as one more section
      local sections = {}
      for _, h in ipairs(report.hosts) do sections[#sections + 1] = h end
      if report.ports and #report.ports > 0 then
        local worst
        for _, s in ipairs(report.ports) do
          local g = s.grade and s.grade.grade or "F"
          if not worst or grade.worse(g, worst) then worst = g end
        end
        sections[#sections + 1] = { title = "direct TLS ports, to clients without SNI", services = report.ports,
          problems = {}, grade = worst }
      end
      for _, h in ipairs(sections) do
        o.line()
        local gcol = (h.grade == "A+" or h.grade == "A") and "green" or cli.below(h.grade or "F", c.min_grade) and "red" or "yellow"
        o.line(o.paint("bold", h.title or h.host) .. (h.component and (" (Component " .. h.component .. ")") or "")
          .. "  grade " .. o.paint(gcol, h.grade or "?"))
        if #h.services == 0 then o.line("  no TLS context: the Component does not load mod_tls") end
        local rows = { { "  service", "grade", "served", "forward secrecy", "errors", "warnings" } }
        for _, s in ipairs(h.services) do
          local e, w = 0, 0
          for _, p in ipairs(s.problems) do if p.severity == "error" then e = e + 1 elseif p.severity == "warning" then w = w + 1 end end
          local g = s.grade and s.grade.grade or "-"
          if s.grade then g = grade.label(s.grade) end
          rows[#rows + 1] = { "  " .. s.label .. (s.reached == false and " (not reached)" or ""), g,
            s.context and table.concat(s.context.served or s.context.versions, ",") or "-",
            s.forward_secrecy or "-", tostring(e), tostring(w) }
        end
        o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end)
        for _, p in ipairs(h.problems) do print_problem(o, p) end
        -- Problems shared by every service are printed once.
        local seen = {}
        for _, s in ipairs(h.services) do
          for _, p in ipairs(s.reached ~= false and s.problems or {}) do
            local key = p.code .. "\0" .. p.message
            if not seen[key] then
              seen[key] = s.label
              print_problem(o, p, s.label)
            end
          end
        end
        -- the recorded clients each service would serve (those that fail by name)
        for _, sv in ipairs(h.services) do
          if sv.clients and #sv.clients > 0 and sv.reached ~= false then
            local failing = {}
            for _, cl in ipairs(sv.clients) do
              if not cl.result.ok then failing[#failing + 1] = cl end
            end
            if #failing == 0 then
              o.line(("  recorded clients (%s): all %d connect"):format(sv.label, #sv.clients))
            else
              o.line(o.paint("yellow", ("  recorded clients (%s): %d of %d cannot connect"):format(sv.label, #failing,
                #sv.clients)))
              for _, cl in ipairs(failing) do o.line(("    %s: %s"):format(cl.name, cl.result.reason)) end
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
          o.line("  mod_tlsharden would change (" .. first.label .. "): " ..
            pipeline.summary(first.tlsharden_would_change, 30))
        end
      end
      o.line()
      o.line(("overall grade %s"):format(report.grade or "-"))
      return audit_exit(report, c.min_grade)
    end,
  })

  cli.command("grade", {
    summary = "the grade of every host and service of a Prosody configuration, with its reasons",
    usage = "grade [CONFIG] [--prosody 0.12|13] [--cafile F] [--guide 2009q|2009r] [--starttls-cap]",
    options = AUDIT_OPTIONS,
    help = [[Like `tlsharden audit`, but prints only the grades, their scores, caps and
  reasons (docs/reference/grading.md). Exit 1 when a grade is below --min-grade.]],
    run = function(c)
      c.name = "grade"
      local report = load_audit(c)
      local failing = false
      local rows = {}
      for _, h in ipairs(report.hosts) do
        for _, s in ipairs(h.services) do
          if s.reached ~= false then rows[#rows + 1] = { h.host, s } end
        end
      end
      for _, s in ipairs(report.ports or {}) do rows[#rows + 1] = { "(no SNI)", s } end
      for _, row in ipairs(rows) do
        local s = row[2]
        if not s.grade or cli.below(s.grade.grade, c.min_grade) then failing = true end
      end
      if c.json then
        c.out.line(json_audit(report, "grade", false))
      else
        local o = c.out
        for _, row in ipairs(rows) do
          local host, s = row[1], row[2]
          local g = s.grade
          if g then
            o.line(("%s %s: %s (score %d: protocol %g, key exchange %g, cipher %g; guide %s)"):format(
              host, s.label, g.grade, g.score, g.protocol_score, g.kx_score, g.cipher_score, g.guide))
            for _, cap in ipairs(g.caps) do o.line(("  cap %s: %s"):format(cap.grade, cap.reason)) end
            for _, w in ipairs(g.warnings) do o.line(("  warning: %s"):format(w)) end
          else
            o.line(("%s %s: no grade (%s)"):format(host, s.label,
              s.problems[1] and s.problems[1].message or "no context"))
          end
        end
      end
      return failing and EXIT_FINDING or EXIT_OK
    end,
  })
end
