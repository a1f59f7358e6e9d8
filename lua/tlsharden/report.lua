--- The report of a survey: every count computed from its results file (one
-- JSON line per endpoint, as `tlsharden survey` writes it), one row per
-- endpoint for the table of servers, and the comparison of two surveys.
-- The renderers (report/markdown.lua, report/html.lua) only lay out what
-- is here. See docs/reference/survey.md.
local errors = require "tlsharden.errors"
local grade = require "tlsharden.grade"
local results = require "tlsharden.survey.results"
local problems = require "tlsharden.problems"
local protocols = require "tlsharden.protocols"
local vulns = require "tlsharden.scan.attacks"
local clients = require "tlsharden.scan.clients"

local M = {}


-- Why a certificate fails, from the chain's problem codes (docs/reference/chain.md).
local CERT_FAILURES = {
  { "expired", "expired (or not yet valid)", { EXPIRED = true, NOT_YET_VALID = true } },
  { "self_signed", "self-signed", { SELF_SIGNED = true } },
  { "self_signed_chain", "self-signed certificate in the chain", { UNTRUSTED = true } },
  { "wrong_host", "wrong host", { HOST_MISMATCH = true } },
  { "untrusted", "untrusted issuer (unknown CA or missing intermediate)",
    { MISSING_INTERMEDIATE = true, UNKNOWN_CA = true, VERIFY_ERROR = true, NOT_CA = true, DEPTH_EXCEEDED = true } },
}

local function is_table(v) return type(v) == "table" end
local function str(v) return type(v) == "string" and v or nil end
-- A number from JSON: whole numbers as integers where Lua has them (a
-- decoder may give 256.0).
-- A problem record of a results file, as the report shows it: a file
-- written by hand or by another tool may hold anything.
local function record_of(p, severity)
  local out = problems.copy({ code = type(p.code) == "string" and p.code ~= "" and p.code or "UNKNOWN",
    message = type(p.message) == "string" and p.message ~= "" and p.message or "(no message)",
    severity = problems.is_severity(p.severity) and p.severity or severity })
  return out
end

local function number(v)
  local n = tonumber(v)
  if n and math.tointeger then n = math.tointeger(n) or n end
  return n
end
M.number = number

-- The suites an endpoint accepted, once each, lowest protocol first.
local function accepted_suites(probe)
  local out, seen = {}, {}
  if not is_table(probe) or not is_table(probe.protocols) then return out end
  for _, p in ipairs(protocols.names) do
    local st = probe.protocols[p]
    if is_table(st) and st.accepted and is_table(st.suites) then
      for _, s in ipairs(st.suites) do
        if is_table(s) and s.name and not seen[s.name] then
          seen[s.name] = true
          local weak = is_table(s.weak) and table.concat(s.weak, ", ") or ""
          out[#out + 1] = { name = tostring(s.name), protocol = p, kx = str(s.kx), bits = number(s.bits),
            fs = s.fs == true, export = s.export == true, aead = s.aead == true, weak = weak }
        end
      end
    end
  end
  return out
end

local function protocols_of(rec)
  local probe = rec.probe
  local list = is_table(probe) and probe.versions or (is_table(rec.facts) and rec.facts.protocols)
  local out, set = {}, {}
  for _, p in ipairs(is_table(list) and list or {}) do
    if protocols.label[p] and not set[p] then
      set[p] = true
      out[#out + 1] = p
    end
  end
  return out, set
end

--- One endpoint's row: what the table, the details and the counts need,
-- from one result line. n: its position in the file.
function M.row(rec, n)
  local chain = is_table(rec.chain) and rec.chain or nil
  local g = is_table(rec.grade) and rec.grade or nil
  local x = is_table(rec.xmpp) and rec.xmpp or {}
  local survey = is_table(rec.survey) and rec.survey or {}
  local protocols, protocol_set = protocols_of(rec)
  local row = {
    n = n, id = "e" .. n, key = results.key(rec),
    target = tostring(survey.target or rec.target or rec.domain or "?"),
    domain = str(rec.domain), kind = str(rec.kind) or "?", tls = str(rec.tls), host = str(rec.host),
    address = str(rec.address), port = number(rec.port), status = str(rec.status) or "error",
    reason = str(rec.reason),
    grade = g and str(g.grade), grade_if_trusted = g and str(g.grade_if_trusted), score = g and number(g.score),
    grade_label = g and str(g.grade) and grade.label { grade = str(g.grade), grade_if_trusted = str(g.grade_if_trusted),
      t_cause = str(g.t_cause) } or nil,
    caps = {}, protocols = protocols, protocol_set = protocol_set, suites = accepted_suites(rec.probe),
    cert_failures = {}, chain = {}, chain_problems = problems.list(), problems = problems.list(),
    -- features before TLS were read: the STARTTLS questions apply
    features_before_tls = is_table(x.mechanisms_before_tls),
    starttls = x.starttls, starttls_required = x.starttls_required,
    plain_before_tls = x.plain_before_tls == true and true or (x.mechanisms_before_tls and false or nil),
    mechanisms_before_tls = is_table(x.mechanisms_before_tls) and x.mechanisms_before_tls or nil,
    dane = is_table(rec.dane) and str(rec.dane.status) or nil,
    -- the DNSSEC status of the endpoint's SRV answer (where it came from
    -- SRV), else of its address answer
    dnssec = str(rec.srv_dnssec) or str(rec.address_dnssec),
    elapsed = number(rec.elapsed), connections = number(rec.connections),
  }
  row.letter = row.grade_if_trusted or row.grade
  for _, c in ipairs(g and is_table(g.caps) and g.caps or {}) do
    if is_table(c) then row.caps[#row.caps + 1] = ("%s: %s"):format(tostring(c.grade), tostring(c.reason)) end
  end
  row.tls_ok = #protocols > 0
  -- suites
  local fs, weak56, export = 0, 0, 0
  for _, s in ipairs(row.suites) do
    if s.fs then fs = fs + 1 end
    if s.bits and s.bits <= 56 then weak56 = weak56 + 1 end
    if s.export then export = export + 1 end
  end
  row.weak56, row.export = weak56, export
  if #row.suites > 0 then row.fs = fs == #row.suites and "all" or fs > 0 and "some" or "none" end
  -- the certificate chain as served
  if chain and is_table(chain.certs) then
    for i, c in ipairs(chain.certs) do
      if is_table(c) then
        row.chain[i] = { subject = str(c.subject), issuer = str(c.issuer), key_type = str(c.key_type),
          key_bits = number(c.key_bits), not_after = str(c.not_after), days_left = number(c.days_left),
          self_signed = c.self_signed == true }
      end
    end
    local leaf = row.chain[1]
    if leaf and leaf.key_type then row.cert_key = ("%s %s"):format(leaf.key_type, tostring(leaf.key_bits or "?")) end
    local leaf_rec = is_table(chain.certs[1]) and chain.certs[1] or {}
    row.spki = str(leaf_rec.spki_sha256)
    row.trusted = chain.trusted == true
    local codes = {}
    for _, p in ipairs(is_table(chain.problems) and chain.problems or {}) do
      if is_table(p) then
        codes[tostring(p.code)] = true
        row.chain_problems[#row.chain_problems + 1] = record_of(p, "error")
      end
    end
    for _, f in ipairs(CERT_FAILURES) do
      for code in pairs(f[3]) do
        if codes[code] then
          row.cert_failures[#row.cert_failures + 1] = f[1]
          break
        end
      end
    end
    row.cert_ok = #row.cert_failures == 0 and row.trusted
  end
  for _, p in ipairs(is_table(rec.problems) and rec.problems or {}) do
    if is_table(p) then row.problems[#row.problems + 1] = record_of(p, "info") end
  end
  -- the attacks it is open to (docs/reference/vulnerabilities.md)
  if is_table(rec.vulnerabilities) then
    row.vulnerable = {}
    for _, c in ipairs(vulns.checks) do
      local v = rec.vulnerabilities[c.name]
      if is_table(v) and v.status == "vulnerable" then row.vulnerable[c.name] = str(v.evidence) or "" end
    end
  end
  -- what each recorded client would get (docs/reference/clients.md)
  if is_table(rec.clients) then
    row.clients = {}
    for _, c in ipairs(rec.clients) do
      if is_table(c) and str(c.name) and is_table(c.result) then
        if c.result.ok == true then row.clients[c.name] = false
        else row.clients[c.name] = str(c.result.cause) or "error" end
      end
    end
  end
  return row
end

-- DROWN across a survey: an endpoint whose RSA key is served with SSL 2.0
-- at another endpoint of the same survey is open to it too (the attack
-- needs the key, not the protocol, at the endpoint it breaks).
local function cross_drown(rows)
  local sslv2 = {}
  for _, r in ipairs(rows) do
    if r.spki and r.protocol_set.sslv2 and not sslv2[r.spki] then sslv2[r.spki] = r end
  end
  for _, r in ipairs(rows) do
    local other = r.spki and sslv2[r.spki]
    if other and other ~= r and r.vulnerable and not r.vulnerable.drown and r.cert_key and r.cert_key:find("^RSA") then
      local where = ("%s %s:%s"):format(other.target, tostring(other.address or other.host), tostring(other.port))
      r.vulnerable.drown = "the same RSA key is served with SSL 2.0 at " .. where
      r.drown_via = where
    end
  end
end

-- ---- counting ----

-- A table of counts: rows of { label, all, c2s, s2s } over a base (the
-- endpoints the question applies to), each row a predicate on a row.
local function tally(rows, title, applies, defs, note)
  local t = { title = title, note = note, base = { all = 0, c2s = 0, s2s = 0 }, rows = {} }
  for i, d in ipairs(defs) do t.rows[i] = { key = d[1], label = d[2], all = 0, c2s = 0, s2s = 0 } end
  for _, r in ipairs(rows) do
    if applies(r) then
      t.base.all = t.base.all + 1
      if t.base[r.kind] then t.base[r.kind] = t.base[r.kind] + 1 end
      for i, d in ipairs(defs) do
        if d[3](r) then
          local c = t.rows[i]
          c.all = c.all + 1
          if c[r.kind] then c[r.kind] = c[r.kind] + 1 end
        end
      end
    end
  end
  return t
end

local function always() return true end
local function has_value(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- Rows for the values a field takes: those of order first (every one,
-- or with present_only those some row has), then any other in sorted
-- order; missing: the label of a row for rows without the field.
local function value_defs(rows, field, order, present_only, missing)
  local present = {}
  for _, r in ipairs(rows) do
    if r[field] ~= nil then present[r[field]] = true end
  end
  local seen, defs = {}, {}
  for _, v in ipairs(order or {}) do
    seen[v] = true
    if present[v] or not present_only then defs[#defs + 1] = v end
  end
  local extra = {}
  for v in pairs(present) do
    if not seen[v] then extra[#extra + 1] = v end
  end
  table.sort(extra, function(a, b) return tostring(a) < tostring(b) end)
  for _, v in ipairs(extra) do defs[#defs + 1] = v end
  local out = {}
  for _, v in ipairs(defs) do
    out[#out + 1] = { tostring(v), tostring(v), function(r) return r[field] == v end }
  end
  if missing then out[#out + 1] = { "-", missing, function(r) return r[field] == nil end } end
  return out
end

local STATUS_ORDER = { "ok", "dns", "refused", "timeout", "unreachable", "not_xmpp", "tls_only", "no_starttls",
  "stream_error", "tls_failed", "error" }

-- Key sizes: by type, then size.
local function key_defs(rows)
  local keys, seen = {}, {}
  for _, r in ipairs(rows) do
    if r.cert_key and not seen[r.cert_key] then
      local leaf = r.chain[1]
      seen[r.cert_key] = true
      keys[#keys + 1] = { r.cert_key, leaf.key_type or "", leaf.key_bits or 0 }
    end
  end
  table.sort(keys, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end  -- RSA before EC
    return a[3] < b[3]
  end)
  local defs = {}
  for _, k in ipairs(keys) do
    defs[#defs + 1] = { k[1], k[1] .. " bits", function(r) return r.cert_key == k[1] end }
  end
  return defs
end

--- All the counts of a survey from its rows: a list of tables (see
-- tally), each with title, base, rows, and an id.
function M.counts(rows)
  local tables = {}
  local function add(id, t) t.id = id tables[#tables + 1] = t end
  local tls = function(r) return r.tls_ok end
  add("status", tally(rows, "Endpoints by outcome", always, value_defs(rows, "status", STATUS_ORDER, true)))
  add("grades", tally(rows, "Grades (T: untrusted certificate, M: wrong host)",
    function(r) return r.grade ~= nil end, value_defs({}, "grade", grade.ORDER)))
  add("grades_if_trusted", tally(rows, "Grades without the T or M cap (an untrusted or mismatched certificate, the STARTTLS cap)",
    function(r) return r.letter ~= nil end, (function()
      local defs = {}
      for _, g in ipairs(grade.ORDER) do
        if g ~= "T" and g ~= "M" then
          defs[#defs + 1] = { g, g, function(r) return r.letter == g end }
        end
      end
      return defs
    end)()))
  local cert_defs = { { "any", "any certificate problem", function(r) return not r.cert_ok end } }
  for _, f in ipairs(CERT_FAILURES) do
    cert_defs[#cert_defs + 1] = { f[1], f[2], function(r) return has_value(r.cert_failures, f[1]) end }
  end
  add("certificates", tally(rows, "Certificates", function(r) return r.trusted ~= nil end, cert_defs,
    "an endpoint may fail for more than one reason"))
  local proto_defs = {}
  for _, p in ipairs(protocols.names) do
    proto_defs[#proto_defs + 1] = { p, protocols.label[p], function(r) return r.protocol_set[p] == true end }
  end
  add("protocols", tally(rows, "Protocol support", tls, proto_defs))
  add("keys", tally(rows, "Certificate keys", function(r) return r.cert_key ~= nil end, key_defs(rows)))
  add("suites", tally(rows, "Cipher suites", function(r) return #r.suites > 0 end, {
    { "weak", "weak suites (56 bits or fewer)", function(r) return r.weak56 > 0 end },
    { "export", "EXPORT suites", function(r) return r.export > 0 end },
    { "fs_all", "forward secrecy with every suite", function(r) return r.fs == "all" end },
    { "fs_some", "forward secrecy with some suites", function(r) return r.fs == "some" end },
    { "fs_none", "no forward secrecy", function(r) return r.fs == "none" end },
  }))
  add("starttls", tally(rows, "STARTTLS", function(r) return r.tls == "starttls" and r.features_before_tls end, {
    { "offered", "offered", function(r) return r.starttls == true end },
    { "required", "required", function(r) return r.starttls == true and r.starttls_required == true end },
    { "optional", "offered but not required", function(r) return r.starttls == true and r.starttls_required ~= true end },
    { "missing", "not offered", function(r) return r.starttls ~= true end },
  }))
  add("plain", tally(rows, "SASL before TLS (client streams)",
    function(r) return r.kind == "c2s" and r.tls == "starttls" and r.features_before_tls end, {
      { "plain", "PLAIN offered before TLS (a password in clear text)", function(r) return r.plain_before_tls end },
      { "any", "any mechanism offered before TLS", function(r)
        return r.mechanisms_before_tls ~= nil and #r.mechanisms_before_tls > 0 end },
    }))
  local vuln_defs = {
    { "any", "open to any of these", function(r) return next(r.vulnerable) ~= nil end },
  }
  for _, c in ipairs(vulns.checks) do
    vuln_defs[#vuln_defs + 1] = { c.name, c.name .. (c.cve and (" (" .. c.cve .. ")") or ""),
      function(r) return r.vulnerable[c.name] ~= nil end }
  end
  add("vulnerabilities", tally(rows, "Vulnerabilities", function(r) return r.vulnerable ~= nil end, vuln_defs,
    "DROWN counts endpoints whose RSA key is served with SSL 2.0 elsewhere in the survey too"))
  -- clients against servers: how many endpoints each recorded client
  -- cannot reach, and why
  local names, seen, reasons = {}, {}, {}
  for _, r in ipairs(rows) do
    for name, code in pairs(r.clients or {}) do
      if not seen[name] then seen[name] = true names[#names + 1] = name end
      if code then reasons[name .. " " .. code] = true end
    end
  end
  table.sort(names)
  local client_defs = {}
  for _, name in ipairs(names) do
    client_defs[#client_defs + 1] = { name, name .. " cannot connect",
      function(r) return r.clients[name] ~= nil and r.clients[name] ~= false end }
    for _, f in ipairs(clients.FAILURES) do
      if reasons[name .. " " .. f[1]] then
        client_defs[#client_defs + 1] = { name .. ":" .. f[1], name .. ": " .. f[2],
          function(r) return r.clients[name] == f[1] end }
      end
    end
  end
  add("clients", tally(rows, "Recorded clients that cannot connect", function(r) return r.clients ~= nil end,
    client_defs, "each client's hello replayed against every endpoint of its kind and transport"))
  add("dnssec", tally(rows, "DNSSEC of the SRV answer (validated by the scanner)", function(r) return true end,
    value_defs(rows, "dnssec", { "secure", "insecure", "bogus", "indeterminate" }, false,
      "not validated (no lua-unbound, --no-dnssec, or a HOST:PORT target)"),
    "bogus: the signatures do not check out (tampered with, or a broken zone), an error"))
  add("dane", tally(rows, "DANE (TLSA records of the SRV target)", tls,
    value_defs(rows, "dane", { "valid", "invalid", "insecure", "unusable", "none" }, false,
      "not looked up (no resolver, or no SRV record)")))
  return tables
end

--- Find a table of counts by id.
function M.find(tables, id)
  for _, t in ipairs(tables) do if t.id == id then return t end end
end

--- The count of row key in table id (of kind, default all), or nil.
function M.count(tables, id, key, kind)
  local t = M.find(tables, id)
  if not t then return nil end
  for _, r in ipairs(t.rows) do if r.key == key then return r[kind or "all"] end end
  return 0
end

--- Read a results file into a report: rows (one per endpoint, the first
-- line of each endpoint when a key repeats), counts, source, bad (lines
-- that are not results), repeated (lines whose endpoint came before),
-- targets (distinct list entries), started (the earliest start).
function M.build(path)
  if type(path) ~= "string" then errors.argument("report.build", 1, "path", "expected a string, got %s", errors.quote(path)) end
  local f, err = io.open(path, "rb")
  if not f then errors.input("report.build", "cannot read %s: %s", errors.quote(path), errors.shorten(err)) end
  f:close()
  local rows, seen, repeated, targets, ntargets = {}, {}, 0, {}, 0
  local started
  local file = results.read(path, function(rec)
    local key = results.key(rec)
    if seen[key] then
      repeated = repeated + 1
      return
    end
    seen[key] = true
    local row = M.row(rec, #rows + 1)
    rows[#rows + 1] = row
    if not targets[row.target] then
      targets[row.target] = true
      ntargets = ntargets + 1
    end
    local s = number(is_table(rec.survey) and rec.survey.started or rec.started)
    if s and (not started or s < started) then started = s end
  end)
  cross_drown(rows)
  return { source = path, rows = rows, counts = M.counts(rows), bad = file.bad, tail = file.tail,
    repeated = repeated, targets = ntargets, started = started }
end

-- ---- comparing two surveys ----

-- The worst of a target's endpoints of one kind: grade (nil when none had
-- TLS) and the statuses.
local function by_server(rep)
  local out, order = {}, {}
  for _, r in ipairs(rep.rows) do
    local id = r.target .. " " .. r.kind
    local s = out[id]
    if not s then
      s = { target = r.target, kind = r.kind, endpoints = 0, failed = 0, statuses = {} }
      out[id] = s
      order[#order + 1] = id
    end
    s.endpoints = s.endpoints + 1
    if r.status ~= "ok" then s.failed = s.failed + 1 end
    s.statuses[r.status] = (s.statuses[r.status] or 0) + 1
    if r.grade and (not s.grade or grade.worse(r.grade, s.grade)) then s.grade = r.grade end
  end
  return out, order
end

local function outcome(s)
  if s.grade then return s.grade end
  local names = {}
  for k in pairs(s.statuses) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, "+")
end

-- Better (1), worse (-1) or the same (0): a grade beats no grade, a
-- better grade beats a worse one (T and M below F), fewer failed
-- endpoints beat more.
local function compare_servers(a, b)
  if a.grade and not b.grade then return -1 end
  if b.grade and not a.grade then return 1 end
  if a.grade and b.grade and a.grade ~= b.grade then return grade.worse(a.grade, b.grade) and 1 or -1 end
  local fa, fb = a.failed / math.max(a.endpoints, 1), b.failed / math.max(b.endpoints, 1)
  if fa ~= fb then return fb < fa and 1 or -1 end
  return 0
end

--- Compare two reports (M.build's), server by server (a list entry and
-- kind, judged by its worst endpoint). Returns better, worse, added,
-- removed (lists of { target, kind, before, after }) and same (a count).
function M.compare(old, new)
  local a, _ = by_server(old)
  local b, order = by_server(new)
  local out = { better = {}, worse = {}, added = {}, removed = {}, same = 0 }
  for _, id in ipairs(order) do
    local s, o = b[id], a[id]
    local item = { target = s.target, kind = s.kind, after = outcome(s), before = o and outcome(o) }
    if not o then
      out.added[#out.added + 1] = item
    else
      local c = compare_servers(o, s)
      if c > 0 then out.better[#out.better + 1] = item
      elseif c < 0 then out.worse[#out.worse + 1] = item
      else out.same = out.same + 1 end
    end
  end
  local _, old_order = by_server(old)
  for _, id in ipairs(old_order) do
    if not b[id] then
      out.removed[#out.removed + 1] = { target = a[id].target, kind = a[id].kind, before = outcome(a[id]) }
    end
  end
  return out
end

--- A percentage of n in base, as text ("12.5%"; "-" when base is 0).
function M.percent(n, base)
  if not base or base == 0 then return "-" end
  local p = 100 * n / base
  if p == math.floor(p) then return ("%d%%"):format(p) end
  return ("%.1f%%"):format(p)
end

return M
