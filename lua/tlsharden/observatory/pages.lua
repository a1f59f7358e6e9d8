--- The observatory's HTML pages: the home page with the scan form, the
-- page of one scan (waiting, failed or its full result), the directory of
-- domains and an error page. Pure: plain data in, an HTML string out, no
-- I/O and no Prosody. Every page is one document with one inline style
-- sheet, no script and nothing fetched from elsewhere (badges are inline
-- SVG), readable on a phone; every string that comes from data is escaped.
-- The data (scan records, directory entries) is described in
-- docs/reference/scan.md and by the observatory module that calls these.
local grade = require "tlsharden.grade"
local protocols = require "tlsharden.protocols"
local attacks = require "tlsharden.scan.attacks"
local svg = require "tlsharden.report.svg"
local badge = require "tlsharden.observatory.badge"

local M = {}

local esc = svg.escape
local concat = table.concat

-- ---- plain helpers: values of any type, never raising ----

local function tbl(v) return type(v) == "table" and v or nil end
local function list(v) return type(v) == "table" and v or {} end
-- A number as people read it: whole numbers without ".0" (a result read
-- back from JSON has floats on Lua 5.3 and 5.4).
local function number_text(v)
  if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
  return ("%.4g"):format(v)
end
local function str(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return number_text(v) end
  return nil
end
local function num(v) return type(v) == "number" and v == v and v or nil end

--- A string for a URL's path or query: every byte but the unreserved ones
-- percent-encoded.
function M.url_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
local urlenc = M.url_encode

local function base_of(opts)
  local b = opts and str(opts.base) or "/observatory"
  return (b:gsub("/+$", ""))
end

-- The largest time os.date takes on every platform and Lua: the year 9999.
local TIME_MAX = 253402300799
--- A time (seconds since the epoch) as people read it, in UTC; "-" for
-- anything that is not one.
function M.date(t)
  t = num(t)
  if not t or t < 0 or t > TIME_MAX then return "-" end
  local ok, s = pcall(os.date, "!%Y-%m-%d %H:%M UTC", math.floor(t))
  return ok and s or "-"
end
local date = M.date

local function duration(s)
  s = num(s)
  if not s or s < 0 then return nil end
  if s < 1 then return ("%.2f s"):format(s) end
  if s < 120 then return ("%.0f s"):format(s) end
  if s < 7200 then return ("%.0f min"):format(s / 60) end
  return ("%.1f h"):format(s / 3600)
end

local function plural(n, one, many) return n == 1 and one or (many or one .. "s") end

-- The CSS class of a grade: g-Ap for A+, g-Am for A-, g-none otherwise.
local function grade_class(g)
  if type(g) ~= "string" or not grade.rank(g) then return "g-none" end
  return "g-" .. g:gsub("%+", "p"):gsub("%-", "m")
end

local function grade_span(g, extra)
  local text = type(g) == "string" and grade.rank(g) and g or "-"
  return ('<span class="grade %s%s">%s</span>'):format(grade_class(g), extra and (" " .. extra) or "", esc(text))
end

-- ---- the page frame ----

local function style()
  local rules = {}
  for _, g in ipairs(grade.ORDER) do
    rules[#rules + 1] = (".%s{background:%s}"):format(grade_class(g), badge.colour(g))
  end
  return [[
:root{--fg:#1d2330;--muted:#5a6275;--line:#d8dce4;--bg:#fff;--card:#f6f7f9;--accent:#3b6ea8;--bad:#a61e1e;--warn:#b35c00;--good:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.site,main,footer{max-width:1100px;margin:0 auto;padding:0 14px}
header.site{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:baseline;border-bottom:1px solid var(--line);padding-top:10px;padding-bottom:8px}
header.site .name{font-weight:700;color:var(--fg);text-decoration:none}
header.site nav a{margin-right:12px}
footer{color:var(--muted);font-size:.85em;border-top:1px solid var(--line);margin-top:2em;padding-top:8px;padding-bottom:16px}
h1{font-size:1.5em;margin:.6em 0 .3em;overflow-wrap:anywhere}
h2{font-size:1.25em;border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:1.6em}
h3{font-size:1.08em;margin:1.2em 0 .4em;overflow-wrap:anywhere}
h4{font-size:1em;margin:1em 0 .3em}
a{color:var(--accent)}
p,li,dd,td{overflow-wrap:anywhere}
.muted,.note{color:var(--muted)}
.note{font-size:.88em}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;margin:12px 0}
.message{border-radius:6px;padding:8px 12px;margin:10px 0;border:1px solid}
.message.error{background:#fff1f0;border-color:#f3b3ae;color:var(--bad)}
.message.info{background:#eef4fb;border-color:#b8cde6}
form.scan{display:grid;gap:10px}
form.scan label{font-weight:600}
form.scan input[type=text],form.scan select{font:inherit;padding:6px 8px;width:100%;max-width:32em;border:1px solid #aab;border-radius:4px}
form.scan fieldset{border:1px solid var(--line);border-radius:6px;margin:0;padding:6px 10px}
form.scan fieldset label{font-weight:normal;margin-right:14px;white-space:nowrap}
form.scan details summary{cursor:pointer;color:var(--accent)}
form.scan details div{display:grid;gap:6px;margin-top:8px}
button{font:inherit;padding:7px 18px;border-radius:5px;border:1px solid #2d5a8c;background:var(--accent);color:#fff;cursor:pointer;justify-self:start}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;font-size:.92em}
th,td{padding:4px 7px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{white-space:nowrap}
table.wide td{white-space:nowrap}
table.wide td.wrap{white-space:normal;min-width:14em}
th a{text-decoration:none}
th[aria-sort=ascending] a::after{content:" \25B2"}
th[aria-sort=descending] a::after{content:" \25BC"}
.grade{display:inline-block;min-width:2.2em;text-align:center;color:#fff;border-radius:4px;padding:0 5px;font-weight:700;background:#9f9f9f}
.grade.big{font-size:2.4em;min-width:2em;padding:2px 12px;border-radius:8px;line-height:1.3}
.overall{display:flex;gap:14px;align-items:center;flex-wrap:wrap}
.overall p{margin:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:6px 0}
dt{color:var(--muted)}
dd{margin:0}
ul.problems{margin:4px 0;padding-left:1.2em}
.error b,.sev-error,.bad{color:var(--bad)}
.warning b,.sev-warning,.warn{color:var(--warn)}
.ok,.good{color:var(--good)}
.sev-info{color:var(--muted)}
code{font-size:.9em;overflow-wrap:anywhere}
progress{width:100%;max-width:32em;height:1.2em}
.endpoint{border-top:2px solid var(--line);margin-top:1.6em}
svg.tlsbadge{vertical-align:middle}
@media (max-width:600px){body{font-size:14px}dl{grid-template-columns:1fr}dt{font-weight:600}.grade.big{font-size:2em}}
]] .. concat(rules) .. "\n"
end

local function page(title, body, opts)
  opts = opts or {}
  local base = base_of(opts)
  return concat({
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    opts.refresh and ('<meta http-equiv="refresh" content="%d">'):format(opts.refresh) or "",
    '<meta name="referrer" content="no-referrer">',
    '<link rel="icon" href="data:,">',
    "<title>" .. esc(title) .. "</title>",
    "<style>" .. style() .. "</style></head><body>",
    ('<header class="site"><a class="name" href="%s/">XMPP TLS observatory</a><nav>'
      .. '<a href="%s/">scan</a><a href="%s/directory">directory</a><a href="%s/report">report</a></nav></header>'):format(
      esc(base), esc(base), esc(base), esc(base)),
    "<main>",
    body,
    "</main>",
    "<footer>Grades follow SSL Labs' rating guide as tlsharden applies it to XMPP. "
      .. "Results show what this observatory saw from its own network at the time of the scan.</footer>",
    "</body></html>",
  }, "\n")
end

local function scan_link(base, id)
  return ("%s/scan/%s"):format(base, urlenc(id))
end

local function kind_text(k)
  if k == "both" then return "c2s and s2s" end
  return str(k) or "-"
end

-- ---- the scan form ----

local KINDS = { { "both", "both (clients and servers)" }, { "c2s", "c2s (clients)" }, { "s2s", "s2s (servers)" } }
local STARTTLS = { { "", "auto (SRV records or the default ports)" }, { "c2s", "c2s STARTTLS" },
  { "s2s", "s2s STARTTLS" }, { "none", "none: direct TLS" } }

local function scan_form(base, values, message)
  values = tbl(values) or {}
  local kind = str(values.kind)
  if kind ~= "c2s" and kind ~= "s2s" then kind = "both" end
  local starttls = str(values.starttls) or ""
  local out = { ('<form class="scan" method="post" action="%s/scan">'):format(esc(base)) }
  if message then
    out[#out + 1] = ('<p class="message error" role="alert" id="form-error">%s</p>'):format(esc(message))
  end
  out[#out + 1] = '<label for="target">Domain, or host:port</label>'
  out[#out + 1] = ('<input type="text" id="target" name="target" required maxlength="300" autocapitalize="none"'
    .. ' autocorrect="off" spellcheck="false" placeholder="example.org or xmpp.example.org:5222" value="%s"%s>'):format(
    esc(str(values.target) or ""), message and ' aria-invalid="true" aria-describedby="form-error"' or "")
  out[#out + 1] = "<fieldset><legend>Kind</legend>"
  for _, k in ipairs(KINDS) do
    out[#out + 1] = ('<label><input type="radio" name="kind" value="%s"%s> %s</label>'):format(
      k[1], k[1] == kind and " checked" or "", esc(k[2]))
  end
  out[#out + 1] = "</fieldset>"
  local open = (starttls ~= "" or (str(values.xmpphost) or "") ~= "") and " open" or ""
  out[#out + 1] = "<details" .. open .. "><summary>Details for host:port targets</summary><div>"
  out[#out + 1] = '<label for="starttls">STARTTLS</label><select id="starttls" name="starttls">'
  for _, s in ipairs(STARTTLS) do
    out[#out + 1] = ('<option value="%s"%s>%s</option>'):format(s[1], s[1] == starttls and " selected" or "", esc(s[2]))
  end
  out[#out + 1] = "</select>"
  out[#out + 1] = '<label for="xmpphost">XMPP domain (the stream\'s "to"; needed for an address)</label>'
  out[#out + 1] = ('<input type="text" id="xmpphost" name="xmpphost" maxlength="255" autocapitalize="none"'
    .. ' spellcheck="false" placeholder="example.org" value="%s">'):format(esc(str(values.xmpphost) or ""))
  out[#out + 1] = "</div></details>"
  out[#out + 1] = "<button type=\"submit\">Scan</button></form>"
  return concat(out, "\n")
end

local function inline_badge(domain, g)
  return badge.svg(domain, g, { inline = true })
end

-- A small table of directory entries: domain, grade, kind, date.
local function recent_table(base, entries)
  local out = { '<div class="scroll"><table class="wide recent"><thead><tr><th scope="col">domain</th>'
    .. '<th scope="col">grade</th><th scope="col">kind</th><th scope="col">scanned</th></tr></thead><tbody>' }
  for _, e in ipairs(entries) do
    if tbl(e) then
      local domain = str(e.domain) or "?"
      local id = str(e.id)
      out[#out + 1] = ("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"):format(
        id and ('<a href="%s">%s</a>'):format(esc(scan_link(base, id)), esc(domain)) or esc(domain),
        inline_badge(domain, str(e.grade) or (e.state == "running" or e.state == "queued") and "scanning" or "none"),
        esc(kind_text(e.kind)), esc(date(e.finished)))
    end
  end
  out[#out + 1] = "</tbody></table></div>"
  return concat(out, "\n")
end

--- The home page: the scan form and the latest scans. opts: base, recent
-- (directory entries), message (an error shown by the form), values (the
-- form's fields refilled: target, kind, starttls, xmpphost).
function M.home(opts)
  opts = tbl(opts) or {}
  local base = base_of(opts)
  local body = {
    "<h1>XMPP TLS observatory</h1>",
    "<p>Grade the TLS of an XMPP server from outside: its endpoints from SRV records, protocols, cipher suites,"
      .. " certificate chain, DNSSEC and DANE, what real clients get, known attacks, and STARTTLS.</p>",
    '<section class="card" id="scan">',
    scan_form(base, opts.values, str(opts.message)),
    "</section>",
  }
  local recent = tbl(opts.recent)
  if recent and #recent > 0 then
    body[#body + 1] = '<section id="recent"><h2>Latest scans</h2>'
    body[#body + 1] = recent_table(base, recent)
    body[#body + 1] = "</section>"
  end
  body[#body + 1] = ('<p>See <a href="%s/directory">the directory</a> of every domain scanned, and'
    .. ' <a href="%s/report">the report</a> on all of them together.</p>'):format(esc(base), esc(base))
  return page("XMPP TLS observatory", concat(body, "\n"), opts)
end

-- ---- the page of one scan ----

local function yes_no(v, yes, no)
  if v == nil then return "?" end
  return v and (yes or "yes") or (no or "no")
end

local function list_text(t)
  t = tbl(t)
  if not t or #t == 0 then return "none" end
  local out = {}
  for i, v in ipairs(t) do out[i] = str(v) or "?" end
  return concat(out, ", ")
end

local function dl(items)
  local out = { "<dl>" }
  for _, it in ipairs(items) do
    if it[2] ~= nil and it[2] ~= "" then
      out[#out + 1] = ("<dt>%s</dt><dd%s>%s</dd>"):format(esc(it[1]), it[3] and (' class="' .. it[3] .. '"') or "",
        it.html and it[2] or esc(it[2]))
    end
  end
  if #out == 1 then return "" end
  out[#out + 1] = "</dl>"
  return concat(out)
end

local function problems_list(ps)
  ps = tbl(ps)
  if not ps or #ps == 0 then return "" end
  local out = { '<ul class="problems">' }
  for _, p in ipairs(ps) do
    if tbl(p) then
      local sev = str(p.severity) or "info"
      local where = {}
      if str(p.kind) then where[#where + 1] = str(p.kind) end
      if str(p.host) then where[#where + 1] = str(p.host) end
      if num(p.cert) then where[#where + 1] = "certificate " .. str(p.cert) end
      out[#out + 1] = ('<li class="%s"><b>%s</b> <span class="sev-%s">%s</span>%s %s</li>'):format(
        esc(sev), esc(str(p.code) or "?"), esc(sev), esc(sev),
        #where > 0 and (" (" .. esc(concat(where, ", ")) .. ")") or "", esc(str(p.message) or ""))
    end
  end
  out[#out + 1] = "</ul>"
  return concat(out, "\n")
end

local function where_of(e)
  local addr, port = str(e.address), str(e.port)
  if not addr then return str(e.host) or "?" end
  return (addr:find(":", 1, true) and "[%s]:%s" or "%s:%s"):format(addr, port or "?")
end

local function tls_text(t)
  if t == "starttls" then return "STARTTLS" end
  if t == "direct" then return "direct TLS" end
  return str(t) or "-"
end

local function endpoint_label(e)
  return ("%s %s %s %s"):format(str(e.kind) or "?", tls_text(e.tls), str(e.host) or "?", where_of(e))
end

local function source_text(e)
  local srv = tbl(e.srv)
  if srv then
    return ("SRV %s, priority %s, weight %s"):format(str(srv.service) or "?", str(srv.priority) or "?",
      str(srv.weight) or "?")
  end
  if e.source == "fallback" then return "no SRV record: the default port" end
  if e.source == "target" then return "host:port given" end
  return str(e.source)
end

local function grade_label(g)
  g = tbl(g)
  if not g or type(g.grade) ~= "string" then return "-" end
  local ok, s = pcall(grade.label, { grade = g.grade, grade_if_trusted = str(g.grade_if_trusted),
    t_cause = str(g.t_cause) })
  return ok and s or g.grade
end

local function status_class(s) return s == "ok" and "ok" or "bad" end

local function overall_section(record, result, endpoints)
  local g = str(result.grade) or str(record.grade)
  local out = { '<section id="grade"><h2>Grade</h2><div class="overall">', grade_span(g, "big") }
  local graded = 0
  for _, e in ipairs(endpoints) do if tbl(e.grade) then graded = graded + 1 end end
  out[#out + 1] = ("<p>%s<br><span class=\"muted\">%d %s, %d graded. The overall grade is the worst of the"
    .. " endpoints' grades.</span></p></div>"):format(
    g and ("Overall grade <b>" .. esc(g) .. "</b>") or "No grade: no endpoint could be graded.",
    #endpoints, plural(#endpoints, "endpoint"), graded)
  -- why: caps and warnings of every endpoint
  local why = {}
  for i, e in ipairs(endpoints) do
    local eg = tbl(e.grade)
    local label = endpoint_label(e)
    for _, c in ipairs(eg and list(eg.caps) or {}) do
      if tbl(c) then
        why[#why + 1] = ('<li>capped at %s: %s <a href="#ep-%d">%s</a></li>'):format(grade_span(str(c.grade)),
          esc(str(c.reason) or "?"), i, esc(label))
      end
    end
    for _, w in ipairs(eg and list(eg.warnings) or {}) do
      why[#why + 1] = ('<li class="warning"><b>warning</b> %s <a href="#ep-%d">%s</a></li>'):format(
        esc(str(w) or "?"), i, esc(label))
    end
    if not eg then
      why[#why + 1] = ('<li>no grade: %s%s <a href="#ep-%d">%s</a></li>'):format(esc(str(e.status) or "?"),
        str(e.reason) and (" (" .. esc(e.reason) .. ")") or "", i, esc(label))
    end
  end
  if #why > 0 then
    out[#out + 1] = '<h3>Why</h3><ul class="why">' .. concat(why, "\n") .. "</ul>"
  end
  local tp = problems_list(result.problems)
  if tp ~= "" then out[#out + 1] = "<h3>Problems of the target</h3>" .. tp end
  out[#out + 1] = "</section>"
  return concat(out, "\n")
end

local function endpoints_table(endpoints)
  local out = { '<section id="endpoints"><h2>Endpoints</h2>' }
  if #endpoints == 0 then
    out[#out + 1] = "<p>No endpoint was found.</p></section>"
    return concat(out, "\n")
  end
  out[#out + 1] = '<div class="scroll"><table class="wide endpoints"><thead><tr><th>#</th><th>kind</th>'
    .. "<th>SRV target</th><th>address</th><th>port</th><th>TLS</th><th>found by</th><th>status</th>"
    .. "<th>grade</th><th>score</th></tr></thead><tbody>"
  for i, e in ipairs(endpoints) do
    local g = tbl(e.grade)
    out[#out + 1] = ('<tr><td><a href="#ep-%d">%d</a></td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
      .. '<td>%s</td><td>%s</td><td class="%s">%s</td><td>%s %s</td><td>%s</td></tr>'):format(i, i,
      esc(str(e.kind) or "?"), esc(str(e.host) or "-"), esc(str(e.address) or "-"), esc(str(e.port) or "-"),
      esc(tls_text(e.tls)), esc(source_text(e) or "-"), status_class(e.status), esc(str(e.status) or "?"),
      grade_span(g and str(g.grade)), g and g.grade_if_trusted and esc(grade_label(g)) or "",
      esc(g and str(g.score) or "-"))
  end
  out[#out + 1] = "</tbody></table></div></section>"
  return concat(out, "\n")
end

local function dnssec_class(s)
  if s == "secure" then return "good" end
  if s == "bogus" then return "bad" end
  return nil
end

-- Lookups of one type (a table by name) as a table.
local function lookups_table(title, lookups, row_of, head)
  lookups = tbl(lookups)
  if not lookups then return "" end
  local names = {}
  for name in pairs(lookups) do names[#names + 1] = tostring(name) end
  if #names == 0 then return "" end
  table.sort(names)
  local out = { ("<h3>%s</h3><div class=\"scroll\"><table class=\"wide\"><thead><tr>%s</tr></thead><tbody>"):format(
    esc(title), head) }
  for _, name in ipairs(names) do
    local l = tbl(lookups[name])
    if l then out[#out + 1] = row_of(name, l) end
  end
  out[#out + 1] = "</tbody></table></div>"
  return concat(out, "\n")
end

local function lookup_status(l)
  local d = tbl(l.dnssec)
  local status = d and str(d.status) or (l.authenticated == true and "secure") or nil
  local failure = tbl(l.failure)
  return status, failure and (str(failure.code) or "?") .. ": " .. (str(failure.message) or "") or nil
end

local function dns_section(result)
  local d = tbl(result.dns)
  local out = { '<section id="dns"><h2>DNS, DNSSEC and DANE</h2>' }
  if not d then
    out[#out + 1] = "<p>No DNS details were kept.</p></section>"
    return concat(out, "\n")
  end
  local s = tbl(d.dnssec)
  local resolver = tbl(d.resolver) and list_text(d.resolver) or str(d.resolver)
  local dnssec_text
  if s then
    if s.validated then
      dnssec_text = ("%s (validated here by %s from %s)"):format(str(s.status) or "-", str(s.library) or "libunbound",
        str(s.trust_anchor) or "?")
    else
      dnssec_text = ("not validated (%s)"):format(str(s.why) or "?")
    end
  end
  out[#out + 1] = dl {
    { "source", d.source == "literal" and "an address: no lookup" or d.source == "system" and "the system's resolver"
      or d.source == "resolver" and "the resolver option" or str(d.source) },
    { "resolver", resolver },
    { "DNSSEC", dnssec_text, s and dnssec_class(s.status) },
    { "every SRV answer secure", d.authenticated ~= nil and yes_no(d.authenticated) or nil },
  }
  out[#out + 1] = lookups_table("SRV records", d.srv, function(name, l)
    local recs = {}
    for _, r in ipairs(list(l.records)) do
      if tbl(r) then
        recs[#recs + 1] = ("%s %s %s %s"):format(str(r.priority) or "?", str(r.weight) or "?", str(r.port) or "?",
          str(r.target) or "?")
      end
    end
    local status, failure = lookup_status(l)
    local extra = {}
    for _, p in ipairs(list(l.problems)) do if tbl(p) then extra[#extra + 1] = str(p.code) or "?" end end
    return ('<tr><td>%s</td><td class="wrap">%s</td><td class="%s">%s</td><td class="wrap">%s</td></tr>'):format(
      esc(str(l.name) or name), esc(#recs > 0 and concat(recs, "; ") or "none"), dnssec_class(status) or "",
      esc(status or "-"), esc(concat({ failure or "", concat(extra, ", ") }, " ")))
  end, "<th>name</th><th>records (priority weight port target)</th><th>DNSSEC</th><th>failure, problems</th>")
  out[#out + 1] = lookups_table("Addresses", d.addresses, function(name, l)
    local addrs = {}
    for _, a in ipairs(list(l.addresses)) do
      if tbl(a) then addrs[#addrs + 1] = str(a.address) or "?" elseif str(a) then addrs[#addrs + 1] = str(a) end
    end
    local status, failure = lookup_status(l)
    return ('<tr><td>%s</td><td class="wrap">%s</td><td class="%s">%s</td><td class="wrap">%s</td></tr>'):format(
      esc(str(l.name) or name), esc(#addrs > 0 and concat(addrs, ", ") or "none"), dnssec_class(status) or "",
      esc(status or "-"), esc(failure or ""))
  end, "<th>name</th><th>addresses</th><th>DNSSEC</th><th>failure</th>")
  out[#out + 1] = lookups_table("TLSA records", d.tlsa, function(name, l)
    local recs = {}
    for _, r in ipairs(list(l.records)) do
      if tbl(r) then
        local data = str(r.data) or ""
        if #data > 24 then data = data:sub(1, 24) .. "..." end
        recs[#recs + 1] = ("%s %s %s %s"):format(str(r.usage) or "?", str(r.selector) or "?",
          str(r.matching_type) or "?", data)
      end
    end
    local status, failure = lookup_status(l)
    return ('<tr><td>%s</td><td class="wrap">%s</td><td class="%s">%s</td><td class="wrap">%s</td></tr>'):format(
      esc(str(l.name) or name), esc(#recs > 0 and concat(recs, "; ") or "none"), dnssec_class(status) or "",
      esc(status or "-"), esc(failure or ""))
  end, "<th>name</th><th>records (usage selector matching data)</th><th>DNSSEC</th><th>failure</th>")
  out[#out + 1] = "</section>"
  return concat(out, "\n")
end

-- The certificate chain as served, with its XMPP names.
local function chain_part(e)
  local c = tbl(e.chain)
  local out = { "<h4>Certificate chain</h4>" }
  if not c then
    out[#out + 1] = ("<p>%s</p>"):format(esc(str(e.chain_error) or "No certificate was seen."))
    return concat(out, "\n")
  end
  local host_ok = true
  for _, p in ipairs(list(c.problems)) do if tbl(p) and p.code == "HOST_MISMATCH" then host_ok = false end end
  out[#out + 1] = ("<p>%s %s, %s; %s %s.</p>"):format(esc(str(c.count) or "?"),
    plural(num(c.count), "certificate"), c.trusted == true and '<span class="good">trusted</span>'
      or '<span class="bad">not trusted</span>', host_ok and "names" or '<span class="bad">does not name</span>',
    esc(str(e.domain) or "the domain"))
  for i, cert in ipairs(list(c.certs)) do
    if tbl(cert) then
      local days = num(cert.days_left)
      out[#out + 1] = ("<h5>%s %d</h5>"):format(i == 1 and "Leaf" or "Certificate", i)
      out[#out + 1] = dl {
        { "subject", str(cert.subject) },
        { "DNS names (SAN)", tbl(cert.dns_names) and list_text(cert.dns_names) or nil },
        { "SRV-IDs", tbl(cert.srv_ids) and #cert.srv_ids > 0 and list_text(cert.srv_ids) or nil },
        { "XmppAddrs", tbl(cert.xmpp_addrs) and #cert.xmpp_addrs > 0 and list_text(cert.xmpp_addrs) or nil },
        { "issuer", str(cert.issuer) },
        { "key", (str(cert.key_type) or str(cert.key_bits)) and (str(cert.key_type) or "?") .. " "
          .. (str(cert.key_bits) or "?") .. " bits" or nil },
        { "signature", str(cert.signature) },
        { "valid", (str(cert.not_before) or str(cert.not_after)) and ("%s to %s"):format(str(cert.not_before) or "?",
          str(cert.not_after) or "?") or nil },
        { "days left", days and tostring(days) or nil, days and days < 0 and "bad" or days and days < 30 and "warn" or nil },
        { "CA", cert.is_ca ~= nil and yes_no(cert.is_ca) or nil },
        { "self-signed", cert.self_signed ~= nil and yes_no(cert.self_signed) or nil },
        { "serial", str(cert.serial) },
        { "SHA-256", str(cert.sha256) },
        { "key SHA-256", str(cert.spki_sha256) },
      }
    end
  end
  local ps = problems_list(c.problems)
  if ps ~= "" then out[#out + 1] = "<h5>Chain problems</h5>" .. ps end
  return concat(out, "\n")
end

local function label_of(p) return protocols.label[p] or str(p) or "?" end

local function protocols_part(p)
  local out = { "<h4>Protocols</h4>" }
  local rows = {}
  local ps = tbl(p.protocols) or {}
  for _, name in ipairs(protocols.names) do
    local st = tbl(ps[name])
    if st then
      local accepted = st.accepted
      rows[#rows + 1] = ('<tr><td>%s</td><td class="%s">%s</td><td>%s</td><td>%s</td><td class="wrap">%s</td></tr>'):format(
        esc(label_of(name)), accepted == true and (protocols.rank[name] and protocols.rank[name] < (protocols.rank.tlsv1_2 or 0)
          and "bad" or "ok") or "", esc(yes_no(accepted)), esc(str(st.preference) or "-"),
        esc(tostring(#list(st.suites))), esc(accepted and list_text(st.groups) or (str(st.alert) and ("alert " .. st.alert)
          or str(st.answer) or "")))
    end
  end
  if #rows == 0 then
    out[#out + 1] = "<p>No protocol was probed.</p>"
  else
    out[#out + 1] = '<div class="scroll"><table class="wide"><thead><tr><th>protocol</th><th>accepted</th>'
      .. "<th>suite order</th><th>suites</th><th>groups, or the answer</th></tr></thead><tbody>"
      .. concat(rows, "\n") .. "</tbody></table></div>"
  end
  return concat(out, "\n")
end

local function suites_part(p)
  local out = { "<h4>Cipher suites</h4>" }
  local ps = tbl(p.protocols) or {}
  local any = false
  for _, name in ipairs(protocols.names) do
    local st = tbl(ps[name])
    local suites = st and tbl(st.suites)
    if suites and #suites > 0 then
      any = true
      local order = st.preference == "server" and "in the server's order of preference"
        or st.preference == "client" and "the server follows the client's order (listed as probed)"
        or "order unknown"
      out[#out + 1] = ("<h5>%s <small class=\"muted\">%s</small></h5>"):format(esc(label_of(name)), esc(order))
      out[#out + 1] = '<div class="scroll"><table class="wide suites"><thead><tr><th>suite</th><th>IANA name</th>'
        .. "<th>key exchange</th><th>auth</th><th>bits</th><th>FS</th><th>exchange</th><th>weak</th></tr></thead><tbody>"
      for _, s in ipairs(suites) do
        if tbl(s) then
          local weak = tbl(s.weak) and #s.weak > 0 and list_text(s.weak) or ""
          local exchange = str(s.group) or (num(s.dh_bits) and ("DH " .. str(s.dh_bits))) or ""
          out[#out + 1] = ('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class="%s">%s</td>'
            .. '<td>%s</td><td class="bad">%s</td></tr>'):format(esc(str(s.name) or str(s.hex) or "?"),
            esc(str(s.iana) or ""), esc(str(s.kx) or ""), esc(str(s.auth) or ""), esc(str(s.bits) or "?"),
            s.fs == true and "ok" or "bad", s.fs == true and "yes" or "no", esc(exchange),
            esc((s.export == true and "EXPORT " or "") .. weak))
        end
      end
      out[#out + 1] = "</tbody></table></div>"
    end
  end
  if not any then out[#out + 1] = "<p>No suite was accepted.</p>" end
  return concat(out, "\n")
end

local function groups_features_part(p)
  local r = tbl(p.resumption)
  local resumption
  if r then
    local kinds = {}
    if r.session_id then kinds[#kinds + 1] = "session id" end
    if r.session_ticket then kinds[#kinds + 1] = "ticket" end
    resumption = #kinds > 0 and concat(kinds, " and ") or "none"
  end
  return "<h4>Groups and TLS features</h4>" .. dl {
    { "groups", tbl(p.groups) and list_text(p.groups) or nil },
    { "group order", str(p.group_preference) and (str(p.group_preference) .. "'s order"
      .. (p.key_share_wins and "; a client's own key share wins" or "")) or nil },
    { "preferred group", str(p.preferred_group) },
    { "DH parameters", num(p.dh_bits) and (str(p.dh_bits) .. " bits") or "none", num(p.dh_bits) and p.dh_bits < 2048 and "bad" or nil },
    { "secure renegotiation", p.secure_renegotiation == nil and "not tested" or yes_no(p.secure_renegotiation),
      p.secure_renegotiation == false and "bad" or nil },
    { "TLS compression", p.compression == nil and "not tested" or p.compression == "null" and "none"
      or str(p.compression), (p.compression ~= nil and p.compression ~= "null") and "bad" or nil },
    { "fallback SCSV", p.fallback_scsv == true and "honoured" or p.fallback_scsv == false and "ignored" or "not tested",
      p.fallback_scsv == false and "warn" or nil },
    { "extended master secret", p.extended_master_secret ~= nil and yes_no(p.extended_master_secret) or nil },
    { "resumption", resumption },
    { "probe", (num(p.connections) or num(p.elapsed)) and ("%s connections in %s"):format(str(p.connections) or "?",
      duration(p.elapsed) or "?") or nil },
  } .. problems_list(p.problems)
end

local function vulnerabilities_part(v)
  v = tbl(v)
  local out = { "<h4>Vulnerabilities</h4>" }
  if not v then
    out[#out + 1] = "<p>Not checked: the scan stopped before TLS.</p>"
    return concat(out, "\n")
  end
  local rows, seen = {}, {}
  local function row(name, check)
    local x = tbl(v[name])
    if not x then return end
    seen[name] = true
    local status = str(x.status) or "?"
    local cls = status == "vulnerable" and "bad" or status == "not_vulnerable" and "ok" or "muted"
    rows[#rows + 1] = ('<tr><td>%s</td><td class="%s">%s</td><td>%s</td><td>%s</td><td class="wrap">%s</td></tr>'):format(
      esc(name), cls, esc(status:gsub("_", " ")), esc(str(x.severity) or check and check.severity or ""),
      esc(str(x.cve) or check and check.cve or ""), esc(str(x.evidence) or ""))
  end
  local vulnerable = {}
  local ok, names = pcall(attacks.vulnerable, v)
  for _, name in ipairs(ok and names or {}) do vulnerable[#vulnerable + 1] = name end
  for _, c in ipairs(attacks.checks) do row(c.name, c) end
  local other = {}
  for name in pairs(v) do if type(name) == "string" and not seen[name] then other[#other + 1] = name end end
  table.sort(other)
  for _, name in ipairs(other) do row(name) end
  out[#out + 1] = ("<p>%s</p>"):format(#vulnerable > 0
    and ('<span class="bad">Vulnerable to ' .. esc(concat(vulnerable, ", ")) .. "</span>.")
    or "Vulnerable to none of the attacks checked.")
  if #rows > 0 then
    out[#out + 1] = '<div class="scroll"><table class="wide vulns"><thead><tr><th>attack</th><th>status</th>'
      .. "<th>severity</th><th>CVE</th><th>evidence</th></tr></thead><tbody>" .. concat(rows, "\n") .. "</tbody></table></div>"
  end
  return concat(out, "\n")
end

local function clients_part(list_)
  list_ = tbl(list_)
  local out = { "<h4>Client simulation</h4>" }
  if not list_ or #list_ == 0 then
    out[#out + 1] = "<p>No client was simulated.</p>"
    return concat(out, "\n")
  end
  out[#out + 1] = "<p class=\"note\">The recorded first messages of real TLS stacks, replayed: what each would get.</p>"
  out[#out + 1] = '<div class="scroll"><table class="wide clients"><thead><tr><th>client</th><th>library</th>'
    .. "<th>gets</th><th>used by</th></tr></thead><tbody>"
  local failing, working = {}, {}
  for _, c in ipairs(list_) do
    if tbl(c) then
      if tbl(c.result) and c.result.ok == true then working[#working + 1] = c else failing[#failing + 1] = c end
    end
  end
  for _, group in ipairs { failing, working } do
    for _, c in ipairs(group) do
      local r = tbl(c.result) or {}
      local gets, cls
      if r.ok == true then
        local suite = tbl(r.suite) or {}
        gets = ("%s %s%s%s%s"):format(label_of(r.protocol), str(suite.iana) or str(suite.id) or "?",
          str(r.group) and (" " .. r.group) or "", num(r.dh_bits) and (" DH " .. str(r.dh_bits)) or "",
          r.fs == true and "" or " no forward secrecy")
        cls = r.fs == true and "" or "warn"
      else
        gets = "fails: " .. (str(r.reason) or str(r.cause) or "?")
        cls = "bad"
      end
      out[#out + 1] = ('<tr><td>%s</td><td>%s</td><td class="wrap %s">%s</td><td class="wrap">%s</td></tr>'):format(
        esc(str(c.name) or "?"), esc(str(c.library) or ""), cls, esc(gets), esc(str(c.software) or ""))
    end
  end
  out[#out + 1] = "</tbody></table></div>"
  return concat(out, "\n")
end

local function dane_part(e)
  local d = tbl(e.dane)
  local items = {
    { "DNSSEC of the SRV answer", str(e.srv_dnssec), dnssec_class(e.srv_dnssec) },
    { "DNSSEC of the addresses", str(e.address_dnssec), dnssec_class(e.address_dnssec) },
  }
  if d then
    local status = str(d.status) or "?"
    items[#items + 1] = { "DANE", status, status == "valid" and "good" or status == "invalid" and "bad" or nil }
    items[#items + 1] = { "TLSA name", str(d.name) }
    items[#items + 1] = { "TLSA records", str(d.records) }
    items[#items + 1] = { "TLSA answer", str(d.dnssec) or (d.authenticated ~= nil and (d.authenticated and "secure"
      or "not authenticated")) or nil }
    items[#items + 1] = { "matched", d.matched ~= nil and yes_no(d.matched) or nil }
    items[#items + 1] = { "SRV answer not secure", d.srv_insecure and "yes: the TLSA records do not count (RFC 7673)" or nil }
    local lookup = tbl(d.lookup)
    items[#items + 1] = { "lookup failed", lookup and ((str(lookup.code) or "?") .. ": " .. (str(lookup.message) or "")) or nil }
  else
    items[#items + 1] = { "DANE", "no TLSA lookup applies" }
  end
  return "<h4>DNSSEC and DANE</h4>" .. dl(items) .. (d and problems_list(d.problems) or "")
end

local function xmpp_part(e)
  local x = tbl(e.xmpp)
  if not x then return "<h4>XMPP</h4><p>No XMPP stream was read.</p>" end
  local se = tbl(x.stream_error)
  local starttls
  if e.tls == "starttls" then
    if x.starttls == nil and se then
      starttls = "no stream features"
    else
      starttls = x.starttls and (x.starttls_required and "offered and required" or "offered, NOT required")
        or "NOT offered"
    end
  end
  local function mechs(v) return tbl(v) and list_text(v) or nil end
  return "<h4>XMPP</h4>" .. dl {
    { "stream from", str(x.stream_from) },
    { "stream version", str(x.stream_version) },
    { "STARTTLS", starttls, starttls and not (x.starttls and x.starttls_required) and "bad" or nil },
    { "SASL before TLS", mechs(x.mechanisms_before_tls), tbl(x.mechanisms_before_tls) and #x.mechanisms_before_tls > 0
      and "warn" or nil },
    { "PLAIN before TLS", x.plain_before_tls == true and "yes: a password in clear text" or nil, "bad" },
    { "dialback before TLS", x.dialback_before_tls == true and "yes" or nil },
    { "SASL after TLS", mechs(x.mechanisms_after_tls) },
    { "dialback", e.kind == "s2s" and x.dialback ~= nil and yes_no(x.dialback) or nil },
    { "EXTERNAL", e.kind == "s2s" and x.external ~= nil and yes_no(x.external) or nil },
    { "stream compression", tbl(x.compression) and list_text(x.compression) or nil, tbl(x.compression) and "warn" or nil },
    { "resource binding", x.bind ~= nil and yes_no(x.bind) or nil },
    { "stream management", x.sm ~= nil and yes_no(x.sm) or nil },
    { "stream error", se and ("<" .. (str(se.condition) or "?") .. "/>" .. (str(se.text) and (" " .. se.text) or ""))
      or nil, "bad" },
  }
end

local function endpoint_section(i, e)
  local g = tbl(e.grade)
  local hs = tbl(e.handshake)
  local out = { ('<section class="endpoint" id="ep-%d"><h3>%d. %s</h3>'):format(i, i, esc(endpoint_label(e))) }
  local reasons = g and tbl(g.reasons) and list_text(g.reasons) or nil
  out[#out + 1] = dl {
    { "status", (str(e.status) or "?") .. (str(e.reason) and (": " .. e.reason) or ""), status_class(e.status) },
    { "grade", g and (grade_span(str(g.grade)) .. " " .. esc(grade_label(g))
      .. (num(g.score) and (", score " .. str(g.score)) or "")) or "-", html = true },
    { "scores", g and ("protocol %s, key exchange %s, cipher %s"):format(str(g.protocol_score) or "?",
      str(g.kx_score) or "?", str(g.cipher_score) or "?") or nil },
    { "how", reasons },
    { "guide", g and str(g.guide) or nil },
    { "SRV target", str(e.host) },
    { "address", where_of(e) .. (str(e.family) and (" (" .. e.family .. ")") or "") },
    { "TLS", tls_text(e.tls) },
    { "found by", source_text(e) },
    { "SNI", e.sni == false and "none sent" or str(e.sni) },
    { "handshake", hs and (hs.ok == true and ("%s, %s%s"):format(str(hs.protocol) or "?", str(hs.cipher) or "?",
      str(hs.alpn) and (", ALPN " .. hs.alpn) or "") or ("failed: " .. (str(hs.error) or "?"))) or nil },
    { "scanned in", (num(e.elapsed) or num(e.connections)) and ("%s, %s connections"):format(duration(e.elapsed) or "?",
      str(e.connections) or "?") or nil },
  }
  if g then
    local caps = {}
    for _, c in ipairs(list(g.caps)) do
      if tbl(c) then caps[#caps + 1] = ("<li>capped at %s: %s</li>"):format(grade_span(str(c.grade)), esc(str(c.reason) or "?")) end
    end
    for _, w in ipairs(list(g.warnings)) do
      caps[#caps + 1] = ('<li class="warning"><b>warning</b> %s</li>'):format(esc(str(w) or "?"))
    end
    if #caps > 0 then out[#out + 1] = '<ul class="caps">' .. concat(caps) .. "</ul>" end
  end
  local ps = problems_list(e.problems)
  out[#out + 1] = "<h4>Problems</h4>" .. (ps ~= "" and ps or "<p>None.</p>")
  out[#out + 1] = chain_part(e)
  local p = tbl(e.probe)
  if p then
    out[#out + 1] = protocols_part(p)
    out[#out + 1] = suites_part(p)
    out[#out + 1] = groups_features_part(p)
  else
    out[#out + 1] = "<h4>Protocols</h4><p>Not probed: the scan stopped before TLS.</p>"
  end
  out[#out + 1] = vulnerabilities_part(e.vulnerabilities)
  out[#out + 1] = clients_part(e.clients)
  out[#out + 1] = dane_part(e)
  out[#out + 1] = xmpp_part(e)
  out[#out + 1] = '<p><a href="#endpoints">back to the endpoints</a></p></section>'
  return concat(out, "\n")
end

local function history_section(base, history, current)
  history = tbl(history)
  if not history or #history == 0 then return "" end
  local out = { '<section id="history"><h2>History</h2><div class="scroll"><table class="wide history"><thead><tr>'
    .. "<th>date</th><th>grade</th><th>kind</th><th>scan</th></tr></thead><tbody>" }
  for _, h in ipairs(history) do
    if tbl(h) then
      local id = str(h.id)
      out[#out + 1] = ("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"):format(esc(date(h.finished)),
        grade_span(str(h.grade)), esc(kind_text(h.kind)),
        id and (id == current and "this scan" or ('<a href="%s">%s</a>'):format(esc(scan_link(base, id)), esc(id))) or "-")
    end
  end
  out[#out + 1] = "</tbody></table></div></section>"
  return concat(out, "\n")
end

-- A form that asks for the same scan again.
local function again_form(base, record)
  local fields = {}
  for _, k in ipairs { "target", "kind", "starttls", "xmpphost" } do
    local v = str(record[k])
    if v then fields[#fields + 1] = ('<input type="hidden" name="%s" value="%s">'):format(k, esc(v)) end
  end
  return ('<form class="scan" method="post" action="%s/scan">%s<button type="submit">Scan again</button></form>'):format(
    esc(base), concat(fields))
end

local STATE_TEXT = { queued = "queued", running = "running", done = "done", failed = "failed",
  cut_off = "cut off" }

--- The page of one scan record (see the module's contract): waiting
-- (queued or running: refreshes itself every 2 seconds), failed or cut
-- off (why, and a button to scan again), done (the full result). opts:
-- base, now (the time "ago" is counted from), history (the domain's
-- history, newest first), badge_url (the URL of the domain's badge image,
-- shown as a snippet to embed).
function M.scan(record, opts)
  opts = tbl(opts) or {}
  record = tbl(record) or {}
  local base = base_of(opts)
  local now = num(opts.now) or os.time()
  local state = str(record.state) or "unknown"
  local result = tbl(record.result)
  local target = str(record.target) or (result and str(result.target)) or "?"
  local waiting = state == "queued" or state == "running"
  local body = { ("<h1>%s <small class=\"muted\">%s</small></h1>"):format(esc(target),
    esc(kind_text(record.kind or result and result.kind))) }
  local times = {}
  local function ago(t)
    t = num(t)
    if not t then return nil end
    local d = now - t
    return date(t) .. (d >= 0 and d < 86400 and (" (" .. (duration(d) or "0 s") .. " ago)") or "")
  end
  body[#body + 1] = dl {
    { "state", STATE_TEXT[state] or state, (state == "failed" or state == "cut_off") and "bad" or nil },
    { "domain", str(record.domain) or (result and str(result.domain)) },
    { "STARTTLS", str(record.starttls) },
    { "XMPP domain", str(record.xmpphost) },
    { "queued", ago(record.queued) },
    { "started", ago(record.started) },
    { "finished", ago(record.finished) },
    { "took", num(record.started) and num(record.finished) and duration(record.finished - record.started) or nil },
    { "scan id", str(record.id) },
  }
  if state == "queued" then
    local pos = num(record.position)
    body[#body + 1] = ('<section class="card" id="waiting"><p>%s</p><progress aria-label="waiting in the queue"></progress>'
      .. '<p class="note">This page reloads itself every 2 seconds.</p></section>'):format(
      pos and ("Waiting: number " .. str(math.floor(pos)) .. " in the queue.") or "Waiting in the queue.")
  elseif state == "running" then
    local p = tbl(record.progress) or {}
    local done, total = num(p.done), num(p.total)
    local bar
    if done and total and total > 0 then
      local pct = math.floor(math.max(0, math.min(1, done / total)) * 100 + 0.5)
      bar = ('<progress value="%d" max="100" aria-label="scan progress">%d %%</progress><p>%s of %s steps (%d %%)</p>'):format(
        pct, pct, esc(str(done)), esc(str(total)), pct)
    else
      bar = '<progress aria-label="scan progress"></progress>'
    end
    body[#body + 1] = ('<section class="card" id="waiting"><p>Scanning%s</p>%s'
      .. '<p class="note">This page reloads itself every 2 seconds.</p></section>'):format(
      str(p.message) and (": " .. esc(p.message)) or "…", bar)
  elseif state == "failed" or state == "cut_off" then
    body[#body + 1] = ('<section class="card" id="failure"><p class="message error" role="alert">%s: %s</p>%s</section>'):format(
      state == "cut_off" and "The scan was cut off" or "The scan failed",
      esc(str(record.error) or "no reason was given"), again_form(base, record))
  elseif state == "done" and not result then
    body[#body + 1] = '<p class="message error">The scan is done but its result was not kept.</p>' .. again_form(base, record)
  end
  if result and not waiting then
    local endpoints = {}
    for _, e in ipairs(list(result.endpoints)) do if tbl(e) then endpoints[#endpoints + 1] = e end end
    body[#body + 1] = overall_section(record, result, endpoints)
    body[#body + 1] = endpoints_table(endpoints)
    body[#body + 1] = dns_section(result)
    for i, e in ipairs(endpoints) do body[#body + 1] = endpoint_section(i, e) end
    local domain = str(record.domain) or str(result.domain) or target
    body[#body + 1] = ('<section id="badge"><h2>Badge</h2><p>%s</p>%s</section>'):format(
      inline_badge(domain, str(result.grade) or str(record.grade) or "none"),
      str(opts.badge_url) and ("<p>To show it elsewhere: <code>" .. esc(('<img src="%s" alt="XMPP TLS grade of %s">'):format(
        opts.badge_url, domain)) .. "</code></p>") or "")
    if state == "done" then body[#body + 1] = '<section id="again"><h2>Scan again</h2>' .. again_form(base, record) .. "</section>" end
  end
  body[#body + 1] = history_section(base, opts.history, str(record.id))
  return page(("%s: XMPP TLS %s"):format(target, result and (str(result.grade) or str(record.grade)) and
    ("grade " .. (str(result.grade) or str(record.grade))) or "scan"), concat(body, "\n"),
    { base = opts.base, refresh = waiting and 2 or nil })
end

-- ---- the directory ----

local SORTS = { domain = true, grade = true, date = true }

local function domain_key(e) return (str(e.domain) or ""):lower() end

--- The entries sorted by sort ("domain", "grade" or "date"; anything else
-- is "domain") in order ("asc" or "desc"; anything else is "asc"): a new
-- list, the entries themselves untouched. Grades go best first in "asc"
-- (grade.ORDER); entries with no grade or no date come last in either
-- order; ties go by domain, then kind. Returns the list, the sort and the
-- order used.
function M.sort_entries(entries, sort, order)
  if not SORTS[sort] then sort, order = "domain", "asc" end
  if order ~= "desc" then order = "asc" end
  local out = {}
  for _, e in ipairs(list(entries)) do if tbl(e) then out[#out + 1] = e end end
  local function value(e)
    if sort == "grade" then return grade.rank(e.grade) end
    if sort == "date" then return num(e.finished) end
    return domain_key(e)
  end
  -- decorate once: the value and the original position (stable ties)
  local keyed = {}
  for i, e in ipairs(out) do keyed[i] = { e = e, v = value(e), d = domain_key(e), k = str(e.kind) or "", i = i } end
  table.sort(keyed, function(a, b)
    if a.v ~= b.v then
      if a.v == nil then return false end
      if b.v == nil then return true end
      if order == "desc" then return a.v > b.v end
      return a.v < b.v
    end
    if a.d ~= b.d then return a.d < b.d end
    if a.k ~= b.k then return a.k < b.k end
    return a.i < b.i
  end)
  for i, k in ipairs(keyed) do out[i] = k.e end
  return out, sort, order
end

--- The directory page: every domain with its latest grade, sortable by
-- links (no script). opts: base, sort, order (as sort_entries takes them).
function M.directory(entries, opts)
  opts = tbl(opts) or {}
  local base = base_of(opts)
  local sorted, sort, order = M.sort_entries(entries, opts.sort, opts.order)
  local function head(key, label)
    local next_order = (sort == key and order == "asc") and "desc" or "asc"
    if sort ~= key and key == "date" then next_order = "desc" end
    return ('<th scope="col" aria-sort="%s"><a href="?sort=%s&amp;order=%s">%s</a></th>'):format(
      sort == key and (order == "asc" and "ascending" or "descending") or "none", key, next_order, esc(label))
  end
  local body = { "<h1>Directory</h1>",
    ("<p>%d %s, each with its latest scan. Sort by a column's head; again for the other way.</p>"):format(
      #sorted, plural(#sorted, "domain")) }
  if #sorted == 0 then
    body[#body + 1] = ('<p>No domain has been scanned yet. <a href="%s/">Scan one</a>.</p>'):format(esc(base))
  else
    body[#body + 1] = '<div class="scroll"><table class="wide directory"><thead><tr>' .. head("domain", "domain")
      .. head("grade", "grade") .. '<th scope="col">kind</th><th scope="col">endpoints</th>' .. head("date", "scanned")
      .. '<th scope="col">badge</th><th scope="col">history</th></tr></thead><tbody>'
    for _, e in ipairs(sorted) do
      local domain = str(e.domain) or "?"
      local id = str(e.id)
      local g = str(e.grade)
      local shown = g or ((e.state == "queued" or e.state == "running") and "scanning") or "none"
      body[#body + 1] = ('<tr data-domain="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>'):format(
        esc(domain), id and ('<a href="%s">%s</a>'):format(esc(scan_link(base, id)), esc(domain)) or esc(domain),
        grade_span(g), esc(kind_text(e.kind)), esc(str(e.endpoints) or "-"), esc(date(e.finished)),
        inline_badge(domain, shown), esc(tostring(#list(e.history))) .. " " .. plural(#list(e.history), "scan"))
    end
    body[#body + 1] = "</tbody></table></div>"
  end
  return page("Directory: XMPP TLS observatory", concat(body, "\n"), opts)
end

-- ---- errors ----

local REASONS = { [400] = "Bad Request", [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
  [409] = "Conflict", [413] = "Payload Too Large", [429] = "Too Many Requests", [500] = "Internal Server Error",
  [503] = "Service Unavailable" }

--- A small page for an HTTP error: the status, its reason and message.
function M.error(status, message, opts)
  opts = tbl(opts) or {}
  local base = base_of(opts)
  local code = num(status) and math.floor(status) or 500
  local reason = REASONS[code] or "Error"
  local body = ('<h1>%d %s</h1><p class="message error" role="alert">%s</p><p><a href="%s/">Back to the observatory</a></p>'):format(
    code, esc(reason), esc(str(message) or reason), esc(base))
  return page(("%d %s: XMPP TLS observatory"):format(code, reason), body, opts)
end

return M
