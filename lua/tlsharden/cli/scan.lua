--- tlsharden scan TARGET: grade a running XMPP server from outside.
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"
local scan = require "tlsharden.scan"
local vulns = require "tlsharden.scan.attacks"
local simulate = require "tlsharden.scan.simulate"
local grade = require "tlsharden.grade"
local compat = require "tlsharden.compat"

local protocols = require "tlsharden.protocols"

local PROTOCOL_LABEL, PROTOCOLS = protocols.label, protocols.names

return function(cli)
  local usage_error = cli.usage_error
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  local function number_option(opts, name, integer)
    local v = opts[name]
    if v == nil then return nil end
    local n = tonumber(v)
    if not n or n <= 0 or n ~= n or n == math.huge or (integer and not compat.tointeger(n)) then
      usage_error("option --%s needs a %s above 0, got '%s'", name, integer and "whole number" or "number", v)
    end
    return integer and compat.tointeger(n) or n
  end

  -- The options a scan shares with commands that run many scans (a
  -- survey): their kinds for the argument parser, and the tlsharden.scan
  -- options they give.
  local SHARED = { resolver = "value", timeout = "value", cafile = "value", capath = "value", from = "value",
    guide = "value", ["starttls-cap"] = "flag", at = "value", kind = "value", connections = "value",
    ["trust-anchor"] = "value", ["no-dnssec"] = "flag" }

  --- The shared options' kinds, with extra (a command's own) on top.
  function cli.scan_options(extra)
    local t = {}
    for k, v in pairs(SHARED) do t[k] = v end
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  --- The tlsharden.scan options of the shared options a command was given.
  function cli.scan_options_of(c)
    local at = c.opts.at and compat.tointeger(tonumber(c.opts.at))
    if c.opts.at and not at then usage_error("option --at needs a time in seconds since the epoch, got '%s'", c.opts.at) end
    local kind = c.opts.kind
    if kind ~= nil and kind ~= "c2s" and kind ~= "s2s" and kind ~= "both" then
      usage_error("option --kind needs c2s, s2s or both, got '%s'", kind)
    end
    local validate  -- nil: the default (validate)
    if c.opts["no-dnssec"] then validate = false end
    return { resolver = c.opts.resolver, cafile = c.opts.cafile, capath = c.opts.capath, from = c.opts.from,
      guide = c.opts.guide, starttls_cap = c.opts["starttls-cap"], at = at, kind = kind,
      timeout = number_option(c.opts, "timeout"), connections = number_option(c.opts, "connections", true),
      trust_anchor = c.opts["trust-anchor"], dnssec = validate }
  end

  local function failing(result, min_grade)
    if #result.endpoints == 0 then return true end
    for _, p in ipairs(result.problems) do
      if p.severity == "error" then return true end
    end
    for _, e in ipairs(result.endpoints) do
      if e.status ~= "ok" then return true end
      if not e.grade or cli.below(e.grade.grade, min_grade) then return true end
      for _, p in ipairs(e.problems) do
        if p.severity == "error" then return true end
      end
    end
    return false
  end

  local function yes_no(v)
    if v == nil then return "?" end
    return v and "yes" or "no"
  end

  local function list_text(t)
    if not t or #t == 0 then return "none" end
    return table.concat(t, ", ")
  end

  local function tls_features(p)
    local parts = {}
    parts[#parts + 1] = "renegotiation " .. (p.secure_renegotiation == true and "secure"
      or p.secure_renegotiation == false and "NOT secure" or "not tested")
    parts[#parts + 1] = "compression " .. (p.compression == nil and "not tested"
      or p.compression == "null" and "none" or tostring(p.compression))
    parts[#parts + 1] = "fallback SCSV " .. (p.fallback_scsv == true and "honoured"
      or p.fallback_scsv == false and "IGNORED" or "not tested")
    local r = p.resumption
    if r then
      local kinds = {}
      if r.session_id then kinds[#kinds + 1] = "session id" end
      if r.session_ticket then kinds[#kinds + 1] = "ticket" end
      parts[#parts + 1] = "resumption " .. (#kinds > 0 and table.concat(kinds, " and ") or "none")
    end
    return table.concat(parts, "; ")
  end

  local function chain_text(e)
    local c = e.chain
    if not c then return e.chain_error or "none seen" end
    local leaf = c.certs[1] or {}
    local names = {}
    for _, n in ipairs(leaf.dns_names or {}) do names[#names + 1] = n end
    for _, n in ipairs(leaf.srv_ids or {}) do names[#names + 1] = n end
    for _, n in ipairs(leaf.xmpp_addrs or {}) do names[#names + 1] = "xmpp:" .. n end
    local host_ok = true
    for _, p in ipairs(c.problems) do if p.code == "HOST_MISMATCH" then host_ok = false end end
    return ("%s (issuer %s), %s %s, %s, %d days left; %d certificate%s, %s; %s %s"):format(
      leaf.subject or "?", leaf.issuer or "?", leaf.key_type or "?", tostring(leaf.key_bits or "?"),
      leaf.signature_digest or "?", leaf.days_left or 0, c.count, c.count == 1 and "" or "s",
      c.trusted and "trusted" or "NOT trusted", host_ok and "names" or "does NOT name", e.domain)
      .. (#names > 0 and (" (" .. table.concat(names, ", ") .. ")") or "")
  end

  local function xmpp_text(e)
    local x, parts = e.xmpp, {}
    if e.tls == "starttls" then
      if not x.starttls and x.stream_error then
        -- the stream ended before any features: STARTTLS was never in question
        parts[#parts + 1] = ("no stream features (stream error <%s/>)"):format(tostring(x.stream_error.condition))
      else
        parts[#parts + 1] = "STARTTLS " .. (x.starttls and (x.starttls_required and "required" or "OPTIONAL") or "NOT offered")
      end
      parts[#parts + 1] = "SASL before TLS: " .. list_text(x.mechanisms_before_tls)
    end
    if x.mechanisms_after_tls then parts[#parts + 1] = "after TLS: " .. list_text(x.mechanisms_after_tls) end
    if e.kind == "s2s" and x.dialback ~= nil then
      parts[#parts + 1] = "dialback " .. yes_no(x.dialback) .. ", EXTERNAL " .. yes_no(x.external)
    end
    if x.compression then parts[#parts + 1] = "stream compression " .. list_text(x.compression) end
    if x.stream_error then parts[#parts + 1] = "stream error <" .. tostring(x.stream_error.condition) .. "/>" end
    return table.concat(parts, "; ")
  end

  local function print_problem(o, p, indent)
    local colour = p.severity == "error" and "red" or p.severity == "warning" and "yellow" or "dim"
    o.line(indent .. o.paint(colour, ("%s: %s: %s"):format(p.severity, p.code, p.message)))
  end

  -- The checks as a short table: the vulnerable ones first (most severe
  -- first), then those that could not be decided, then one line each for
  -- the names that are fine or do not apply.
  local function cut(text, n)
    text = tostring(text or "")
    if #text <= n then return text end
    return text:sub(1, n - 3) .. "..."
  end

  local function print_vulnerabilities(o, checks)
    if not checks then return end
    local rows = { { "  attack", "status", "evidence" } }
    for _, name in ipairs(vulns.vulnerable(checks)) do
      local v = checks[name]
      rows[#rows + 1] = { "  " .. name, o.paint(v.severity == "low" and "yellow" or "red",
        "VULNERABLE" .. (v.severity and (" (" .. v.severity .. ")") or "")), cut(v.evidence, 90) }
    end
    local fine, na = {}, {}
    for _, c in ipairs(vulns.checks) do
      local v = checks[c.name]
      if v and v.status == "unknown" then
        rows[#rows + 1] = { "  " .. c.name, o.paint("dim", "unknown"), cut(v.evidence, 90) }
      elseif v and v.status == "not_vulnerable" then fine[#fine + 1] = c.name
      elseif v and v.status == "not_applicable" then na[#na + 1] = c.name end
    end
    o.line("  vulnerabilities:")
    if #rows > 1 then o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end) end
    if #fine > 0 then o.line("    not vulnerable: " .. table.concat(fine, ", ")) end
    if #na > 0 then o.line("    not applicable: " .. table.concat(na, ", ")) end
  end

  -- The recorded clients as a table: those that fail first, with why,
  -- then what each of the others gets.
  local function print_clients(o, list)
    if not list or #list == 0 then return end
    local rows = { { "  client", "software", "gets" } }
    for _, c in ipairs(simulate.sorted(list)) do
      local r = c.result
      local gets
      if r.ok then
        gets = ("%s %s%s%s%s"):format(PROTOCOL_LABEL[r.protocol] or r.protocol, r.suite.iana or r.suite.id,
          r.group and (" " .. r.group) or "", r.dh_bits and (" DH " .. r.dh_bits) or "", r.fs and "" or " no FS")
        if not r.fs then gets = o.paint("yellow", gets) end
      else
        gets = o.paint("red", "FAILS: " .. cut(r.reason, 80))
      end
      rows[#rows + 1] = { "  " .. c.name, cut(c.software, 34), gets }
    end
    o.line("  clients (recorded hellos replayed):")
    o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end)
  end

  -- A DNSSEC status, painted: secure green, bogus red.
  local function dnssec_text(o, status)
    if status == "secure" then return o.paint("green", status) end
    if status == "bogus" then return o.paint("red", status) end
    return tostring(status or "-")
  end

  -- What DNS and DNSSEC said of the target, one line.
  local function print_dns(o, d)
    if not d or not d.dnssec then return end
    local s = d.dnssec
    if s.validated then
      o.line(("DNSSEC: %s (validated here by %s from %s)"):format(dnssec_text(o, s.status or "-"),
        s.library or "libunbound", s.trust_anchor or "?"))
    else
      o.line(("DNSSEC: not validated (%s)"):format(s.why or "?"))
    end
  end

  local function print_endpoint(o, e, min_grade)
    o.line()
    local src = e.srv and (" (SRV %s, priority %d, weight %d)"):format(e.srv.service or "?", e.srv.priority, e.srv.weight)
      or e.source == "fallback" and " (no SRV record: the default port)" or ""
    o.line(o.paint("bold", scan.label(e)) .. src)
    local g = e.grade
    local gtext = g and (grade.label(g)
      .. (" score %d"):format(g.score)) or "-"
    local gcol = g and (g.grade == "A+" or g.grade == "A") and "green" or (not g or cli.below(g.grade, min_grade)) and "red" or "yellow"
    o.line(("  status %s%s, grade %s, %d connections, %.2f s"):format(
      e.status == "ok" and o.paint("green", "ok") or o.paint("red", e.status),
      e.reason and (" (" .. e.reason .. ")") or "", o.paint(gcol, gtext), e.connections or 0, e.elapsed or 0))
    local p = e.probe
    if p then
      local rows = { { "  protocol", "accepted", "order", "suites" } }
      for _, name in ipairs(PROTOCOLS) do
        local st = p.protocols[name]
        if st then
          rows[#rows + 1] = { "  " .. PROTOCOL_LABEL[name], st.accepted == nil and "?" or yes_no(st.accepted),
            st.preference or "-", tostring(#st.suites) }
        end
      end
      o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end)
      for _, name in ipairs(PROTOCOLS) do
        local st = p.protocols[name]
        if st and #st.suites > 0 then
          o.line(("  %s suites%s:"):format(PROTOCOL_LABEL[name], st.preference == "server" and " (server order)"
            or st.preference == "client" and " (client order)" or ""))
          local srows = {}
          for _, s in ipairs(st.suites) do
            local extra = s.group and tostring(s.group) or s.dh_bits and ("DH " .. s.dh_bits) or ""
            srows[#srows + 1] = { "    " .. s.name, tostring(s.bits or "?"), s.kx or "", s.fs and "fs" or "no fs",
              extra, (s.weak and #s.weak > 0) and table.concat(s.weak, ",") or "" }
          end
          o.columns(srows)
        end
      end
      o.line(("  groups: %s%s; DH: %s"):format(list_text(p.groups),
        p.group_preference and (" (" .. p.group_preference .. " order"
          .. (p.key_share_wins and "; a client's own key share wins" or "") .. ")") or "",
        p.dh_bits and (p.dh_bits .. " bits") or "none"))
      o.line("  " .. tls_features(p))
    end
    if e.probe or e.chain then o.line("  chain: " .. chain_text(e)) end
    if e.srv_dnssec or e.address_dnssec then
      o.line(("  DNSSEC: SRV %s, addresses %s"):format(dnssec_text(o, e.srv_dnssec), dnssec_text(o, e.address_dnssec)))
    end
    if e.dane then
      o.line(("  DANE: %s (%s, %d TLSA record%s, %s)"):format(e.dane.status, e.dane.name or "?", e.dane.records,
        e.dane.records == 1 and "" or "s", e.dane.dnssec and ("DNSSEC " .. dnssec_text(o, e.dane.dnssec))
          or e.dane.authenticated and "authenticated" or "not authenticated"))
    end
    local xt = xmpp_text(e)
    if xt ~= "" then o.line("  XMPP: " .. xt) end
    print_vulnerabilities(o, e.vulnerabilities)
    print_clients(o, e.clients)
    for _, p in ipairs(e.problems) do print_problem(o, p, "  ") end
    if g then
      for _, cap in ipairs(g.caps) do o.line(("  cap %s: %s"):format(cap.grade, cap.reason)) end
      for _, w in ipairs(g.warnings) do o.line(("  warning: %s"):format(w)) end
    end
  end

  local function json_document(result)
    local doc = { command = "scan" }
    for k, v in pairs(result) do doc[k] = v end
    return json.encode(doc)
  end

  cli.command("scan", {
    summary = "scan a running XMPP server from outside: protocols, suites, chain, DANE, XMPP, the grade",
    usage = "scan TARGET [--kind c2s|s2s|both] [--starttls c2s|s2s|none] [--xmpphost NAME] [--resolver ADDR[:PORT]]"
      .. " [--timeout S] [--connections N] [--cafile F] [--capath D] [--from NAME] [--guide 2009q|2009r]"
      .. " [--starttls-cap] [--at EPOCH] [--sni NAME | --no-sni] [--no-clients] [--trust-anchor FILE]"
      .. " [--no-dnssec] [--quiet]",
    options = cli.scan_options { starttls = "value", xmpphost = "value", quiet = "flag", sni = "value",
      ["no-sni"] = "flag", ["no-clients"] = "flag" },
    help = [[TARGET is a DOMAIN (its SRV records _xmpp-client._tcp, _xmpps-client._tcp,
  _xmpp-server._tcp and _xmpps-server._tcp, or ports 5222 and 5269 without any;
  every target and address is scanned) or HOST:PORT ([::1]:5222 for IPv6) with
  --starttls c2s|s2s|none (none: direct TLS; default c2s) and --xmpphost NAME,
  the XMPP domain (the stream's 'to'; default HOST; required for an address).
  --kind c2s or s2s scans one kind (default both). --resolver ADDR[:PORT] asks
  that DNS server (default /etc/resolv.conf). Every answer's DNSSEC signatures
  are checked here (lua-unbound) from the root's trust anchor, or the one in
  --trust-anchor FILE (DS or DNSKEY lines); DANE counts only on secure answers,
  a bogus one is an error; --no-dnssec: no validation. --timeout S bounds every wait
  (default 5), --connections N the connections in flight (default 8). --cafile/--capath: trust
  anchors for the chain (default the system store). --sni NAME sends another
  name as SNI, --no-sni none (what such a client gets). The recorded hellos of
  real clients (OpenSSL, GnuTLS, NSS, Java, Erlang, Chromium, Go, Node.js,
  Prosody's s2s) are replayed to say what each gets (--no-clients: not).
  Progress goes to stderr
  (--quiet: none). Exit 1 when an endpoint cannot be scanned, has a grade below
  --min-grade (default B) or a problem of severity error, or no endpoint is found.]],
    run = function(c)
      if #c.args ~= 1 then usage_error("scan needs exactly one TARGET (see tlsharden scan --help)") end
      local err = c.err
      local opts = cli.scan_options_of(c)
      opts.starttls, opts.xmpphost = c.opts.starttls, c.opts.xmpphost
      if c.opts.sni and c.opts["no-sni"] then usage_error("--sni and --no-sni exclude each other") end
      opts.sni = c.opts.sni
      if c.opts["no-sni"] then opts.sni = false end
      if c.opts["no-clients"] then opts.clients = false end
      if not c.opts.quiet then opts.on_progress = function(line) err.line("tlsharden scan: " .. line) end end
      local result = cli.input(tlsharden.scan, c.args[1], opts)
      local exit = failing(result, c.min_grade) and EXIT_FINDING or EXIT_OK
      if c.json then
        c.out.line(json_document(result))
        return exit
      end
      local o = c.out
      o.line(o.paint("bold", ("tlsharden scan of %s"):format(result.target)) ..
        (" (%s, %d endpoint%s, %.2f s)"):format(result.kind == "both" and "c2s and s2s" or result.kind,
          #result.endpoints, #result.endpoints == 1 and "" or "s", result.elapsed))
      print_dns(o, result.dns)
      for _, p in ipairs(result.problems) do print_problem(o, p, "") end
      for _, e in ipairs(result.endpoints) do print_endpoint(o, e, c.min_grade) end
      o.line()
      o.line(("overall grade %s"):format(result.grade or "-"))
      return exit
    end,
  })
end
