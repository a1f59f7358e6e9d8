--- A survey's report as one self-contained HTML page: no network, no
-- external script, style or font. The counts as inline SVG charts and
-- tables, a sortable and filterable table of every endpoint (plain HTML;
-- a small inline script sorts and filters), and each endpoint's details
-- (problems, chain, suites) under an anchor the table links to.
local protocols = require "tlsharden.protocols"
local report = require "tlsharden.report"
local grade = require "tlsharden.grade"
local svg = require "tlsharden.report.svg"
local assets = require "tlsharden.report.assets"

local M = {}

local esc = svg.escape

local GRADE_COLOURS = { ["A+"] = "#1a7f37", A = "#2f9e44", ["A-"] = "#66a80f", B = "#e8a317",
  C = "#e67700", D = "#d9480f", E = "#c92a2a", F = "#a61e1e", T = "#6c757d", M = "#495057" }

local function percent_cell(n, base)
  return ("%d <span class=\"pct\">%s</span>"):format(n, report.percent(n, base))
end

local function counts_table(t, caption)
  local out = { '<table class="counts">' .. (caption and ("<caption>" .. esc(caption) .. "</caption>") or ""),
    ("<thead><tr><th></th><th>all (%d)</th><th>c2s (%d)</th><th>s2s (%d)</th></tr></thead><tbody>"):format(
      t.base.all, t.base.c2s, t.base.s2s) }
  for _, r in ipairs(t.rows) do
    out[#out + 1] = ('<tr data-key="%s"><th scope="row">%s</th><td>%s</td><td>%s</td><td>%s</td></tr>'):format(
      esc(r.key), esc(r.label), percent_cell(r.all, t.base.all), percent_cell(r.c2s, t.base.c2s),
      percent_cell(r.s2s, t.base.s2s))
  end
  out[#out + 1] = "</tbody></table>"
  if t.note then out[#out + 1] = '<p class="note">' .. esc(t.note) .. "</p>" end
  return table.concat(out, "\n")
end

local BAR_COLOURS = { status = "#3b6ea8", certificates = "#c92a2a", protocols = "#3b6ea8", keys = "#5f3dc4",
  suites = "#0b7285", starttls = "#2f9e44", plain = "#c92a2a", dane = "#5c940d" }

local function figure(t, chart)
  return ('<figure class="card" id="counts-%s"><figcaption>%s</figcaption>\n%s\n'
    .. '<details><summary>counts by kind</summary>%s</details></figure>'):format(
    esc(t.id), esc(t.title), chart, counts_table(t))
end

local function grades_figure(rep)
  local with = report.find(rep.counts, "grades")
  local without = report.find(rep.counts, "grades_if_trusted")
  local cats = {}
  for _, g in ipairs(grade.ORDER) do
    local a = report.count(rep.counts, "grades", g)
    local b = (g == "T" or g == "M") and 0 or report.count(rep.counts, "grades_if_trusted", g)
    cats[#cats + 1] = { g, { a, b }, GRADE_COLOURS[g] }
  end
  local chart = svg.vbars(cats, { { "as graded", "solid" }, { "without the T or M cap", "light" } },
    { title = "Grades, as graded and without the T or M cap", id = "chart-grades" })
  return ('<figure class="card wide" id="counts-grades"><figcaption>Grades</figcaption>\n%s\n'
    .. '<details><summary>counts by kind</summary><div class="pair">%s\n%s</div></details></figure>'):format(
    chart, counts_table(with, "as graded"), counts_table(without, "without the T or M cap"))
end

local function charts(rep)
  local out = { grades_figure(rep) }
  for _, t in ipairs(rep.counts) do
    if t.id ~= "grades" and t.id ~= "grades_if_trusted" then
      local items = {}
      for i, r in ipairs(t.rows) do items[i] = { r.label, r.all, BAR_COLOURS[t.id] } end
      out[#out + 1] = figure(t, svg.hbars(items, t.base.all, { title = t.title, id = "chart-" .. t.id }))
    end
  end
  return table.concat(out, "\n")
end

local function where(r)
  if not r.address then return r.host or "" end
  return (r.address:find(":", 1, true) and "[%s]:%s" or "%s:%s"):format(r.address, tostring(r.port or "?"))
end

local function grade_rank(g)
  return grade.rank(g) or 99
end

local function short_protocols(r)
  local t = {}
  for _, p in ipairs(r.protocols) do t[#t + 1] = protocols.label[p]:gsub("^TLS ", ""):gsub("^SSL ", "SSL") end
  return table.concat(t, " ")
end

local function grade_cell(g, rank)
  if not g then return ('<td data-v="%d" class="grade none">-</td>'):format(rank or 99) end
  return ('<td data-v="%d" class="grade"><span class="badge" style="background:%s">%s</span></td>'):format(
    grade_rank(g), GRADE_COLOURS[g] or "#777", esc(g))
end

local function server_rows(rep)
  local out = {}
  for _, r in ipairs(rep.rows) do
    local problems = {}
    for _, f in ipairs(r.cert_failures) do problems[#problems + 1] = f:gsub("_", " ") end
    out[#out + 1] = table.concat({
      ('<tr id="row-%s" data-kind="%s" data-status="%s" data-grade="%s">'):format(r.id, esc(r.kind), esc(r.status),
        esc(r.grade or "-")),
      ('<td data-v="%s"><a href="#%s">%s</a></td>'):format(esc(r.target), r.id, esc(r.target)),
      ("<td>%s</td>"):format(esc(r.kind)),
      ("<td>%s</td>"):format(esc(r.tls or "-")),
      ('<td data-v="%s">%s</td>'):format(esc(where(r)), esc(where(r))),
      ('<td class="status %s">%s</td>'):format(r.status == "ok" and "ok" or "failed", esc(r.status)),
      grade_cell(r.grade),
      grade_cell(r.letter),
      ('<td data-v="%d">%s</td>'):format(r.score or -1, r.score and tostring(r.score) or "-"),
      ("<td>%s</td>"):format(esc(short_protocols(r))),
      ('<td data-v="%s">%s</td>'):format(esc(r.cert_key and ("%s %06d"):format(r.chain[1].key_type or "", r.chain[1].key_bits or 0) or ""),
        esc(r.cert_key or "-")),
      ("<td>%s</td>"):format(esc(r.fs or "-")),
      ("<td>%s</td>"):format(esc(table.concat(problems, ", "))),
      "</tr>",
    })
  end
  return table.concat(out, "\n")
end

local COLUMNS = {
  { "server", "text" }, { "kind", "text" }, { "TLS", "text" }, { "address", "text" }, { "status", "text" },
  { "grade", "num" }, { "without T/M", "num" }, { "score", "num" }, { "protocols", "text" },
  { "key", "text" }, { "FS", "text" }, { "certificate", "text" },
}

local function options_of(rep, field, order)
  local seen, values = {}, {}
  for _, v in ipairs(order or {}) do seen[v] = false end
  for _, r in ipairs(rep.rows) do
    local v = r[field] or "-"
    if seen[v] == nil then values[#values + 1] = v end
    if not seen[v] then seen[v] = true end
  end
  local list = {}
  for _, v in ipairs(order or {}) do if seen[v] then list[#list + 1] = v end end
  table.sort(values)
  for _, v in ipairs(values) do list[#list + 1] = v end
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = ('<option value="%s">%s</option>'):format(esc(v), esc(v)) end
  return table.concat(out)
end

local function servers_section(rep)
  local head = {}
  for i, c in ipairs(COLUMNS) do
    head[i] = ('<th scope="col" data-type="%s" data-col="%d" tabindex="0" aria-sort="none">%s</th>'):format(
      c[2], i - 1, esc(c[1]))
  end
  local order = {}
  for _, g in ipairs(grade.ORDER) do order[#order + 1] = g end
  order[#order + 1] = "-"
  return table.concat({
    '<section id="servers"><h2>Servers</h2>',
    '<div class="controls">',
    '<label>filter <input type="search" id="filter" placeholder="name, address, grade..."></label>',
    '<label>kind <select id="f-kind"><option value="">all</option>' .. options_of(rep, "kind", { "c2s", "s2s" }) .. "</select></label>",
    '<label>status <select id="f-status"><option value="">all</option>' .. options_of(rep, "status", { "ok" }) .. "</select></label>",
    '<label>grade <select id="f-grade"><option value="">all</option>' .. options_of(rep, "grade", order) .. "</select></label>",
    ('<span id="shown">%d of %d shown</span>'):format(#rep.rows, #rep.rows),
    "</div>",
    '<div class="scroll"><table id="servers-table"><thead><tr>' .. table.concat(head) .. "</tr></thead><tbody>",
    server_rows(rep),
    "</tbody></table></div></section>",
  }, "\n")
end

local function detail(r)
  local out = { ('<article class="detail" id="%s"><h3>%s <small>%s %s %s</small></h3>'):format(
    r.id, esc(r.target), esc(r.kind), esc(r.tls or ""), esc(where(r))) }
  out[#out + 1] = "<dl>"
  local function item(k, v) if v and v ~= "" then out[#out + 1] = ("<dt>%s</dt><dd>%s</dd>"):format(k, esc(v)) end end
  item("status", r.status .. (r.reason and (": " .. r.reason) or ""))
  item("domain", r.domain)
  item("host", r.host)
  if r.grade then
    item("grade", (r.grade_label or r.grade) .. (r.score and (", score " .. r.score) or ""))
  end
  for _, c in ipairs(r.caps) do item("cap", c) end
  if r.vulnerable then
    local names = {}
    for name in pairs(r.vulnerable) do names[#names + 1] = name end
    table.sort(names)
    item("vulnerable to", table.concat(names, ", ") .. (r.drown_via and (" (DROWN: the same RSA key with SSL 2.0 at "
      .. r.drown_via .. ")") or ""))
  end
  item("protocols", #r.protocols > 0 and short_protocols(r) or nil)
  if r.starttls ~= nil then
    item("STARTTLS", r.starttls and (r.starttls_required and "required" or "offered, not required") or "not offered")
  end
  if r.mechanisms_before_tls then
    item("SASL before TLS", #r.mechanisms_before_tls > 0 and table.concat(r.mechanisms_before_tls, ", ") or "none")
  end
  item("DANE", r.dane)
  if r.connections then item("connections", ("%d in %.2f s"):format(r.connections, r.elapsed or 0)) end
  out[#out + 1] = "</dl>"
  if #r.problems > 0 then
    out[#out + 1] = '<h4>Problems</h4><ul class="problems">'
    for _, f in ipairs(r.problems) do
      out[#out + 1] = ('<li class="%s"><b>%s</b> %s</li>'):format(esc(f.severity), esc(f.code), esc(f.message))
    end
    out[#out + 1] = "</ul>"
  end
  if #r.chain > 0 then
    out[#out + 1] = '<h4>Certificate chain</h4><div class="scroll"><table class="small"><thead><tr><th>#</th>'
      .. "<th>subject</th><th>issuer</th><th>key</th><th>not after</th><th>days left</th></tr></thead><tbody>"
    for i, c in ipairs(r.chain) do
      out[#out + 1] = ("<tr><td>%d</td><td>%s</td><td>%s</td><td>%s %s</td><td>%s</td><td>%s</td></tr>"):format(i,
        esc(c.subject or ""), esc(c.issuer or ""), esc(c.key_type or "?"), esc(c.key_bits or "?"),
        esc(c.not_after or ""), esc(c.days_left or ""))
    end
    out[#out + 1] = "</tbody></table></div>"
    if #r.chain_problems > 0 then
      out[#out + 1] = '<ul class="problems">'
      for _, p in ipairs(r.chain_problems) do
        out[#out + 1] = ('<li class="%s"><b>%s</b> %s</li>'):format(esc(p.severity or "error"), esc(p.code), esc(p.message or ""))
      end
      out[#out + 1] = "</ul>"
    end
  end
  if #r.suites > 0 then
    out[#out + 1] = '<h4>Cipher suites</h4><div class="scroll"><table class="small"><thead><tr><th>suite</th>'
      .. "<th>protocol</th><th>key exchange</th><th>bits</th><th>FS</th><th>weak</th></tr></thead><tbody>"
    for _, s in ipairs(r.suites) do
      out[#out + 1] = ("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"):format(
        esc(s.name), esc(protocols.label[s.protocol] or s.protocol), esc(s.kx or ""), esc(s.bits or ""),
        s.fs and "yes" or "no", esc((s.export and "EXPORT " or "") .. s.weak))
    end
    out[#out + 1] = "</tbody></table></div>"
  end
  out[#out + 1] = '<p><a href="#row-' .. r.id .. '">back to the table</a></p></article>'
  return table.concat(out, "\n")
end

local function comparison_section(cmp, old_name, new_name)
  local out = { '<section id="changes"><h2>Changes</h2>',
    ("<p>From %s to %s: %d better, %d worse, %d unchanged, %d new, %d gone.</p>"):format(esc(old_name or "before"),
      esc(new_name or "now"), #cmp.better, #cmp.worse, cmp.same, #cmp.added, #cmp.removed) }
  for _, sec in ipairs { { "better", "Better" }, { "worse", "Worse" }, { "added", "New" }, { "removed", "Gone" } } do
    local items = cmp[sec[1]]
    if #items > 0 then
      out[#out + 1] = ('<h3>%s</h3><div class="scroll"><table class="small changes" id="changes-%s"><thead><tr>'
        .. "<th>server</th><th>kind</th><th>before</th><th>after</th></tr></thead><tbody>"):format(sec[2], sec[1])
      for _, it in ipairs(items) do
        out[#out + 1] = ("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>"):format(esc(it.target),
          esc(it.kind), esc(it.before or "-"), esc(it.after or "-"))
      end
      out[#out + 1] = "</tbody></table></div>"
    end
  end
  out[#out + 1] = "</section>"
  return table.concat(out, "\n")
end

--- The page as a string. rep: report.build's; opts: title, comparison
-- (report.compare's), old_name and new_name (the files compared).
function M.render(rep, opts)
  opts = opts or {}
  local title = opts.title or "XMPP TLS survey"
  local status = report.find(rep.counts, "status")
  local tls = report.find(rep.counts, "protocols")
  local when = rep.started and os.date("!%Y-%m-%d %H:%M UTC", math.floor(rep.started)) or nil
  local out = {
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<link rel="icon" href="data:,">',
    "<title>" .. esc(title) .. "</title>",
    "<style>" .. assets.css .. "</style></head><body>",
    "<header><h1>" .. esc(title) .. "</h1>",
    ("<p>%d endpoints of %d servers%s, %d of them with TLS. Percentages are of the endpoints each question"
      .. " applies to.</p>"):format(status.base.all, rep.targets, when and (", surveyed " .. esc(when)) or "",
      tls.base.all),
    '<nav><a href="#summary">summary</a> · <a href="#servers">servers</a> · <a href="#details">details</a>'
      .. (opts.comparison and ' · <a href="#changes">changes</a>' or "") .. "</nav></header>",
    "<main>",
    opts.comparison and comparison_section(opts.comparison, opts.old_name, opts.new_name) or "",
    '<section id="summary"><h2>Summary</h2><div class="grid">',
    charts(rep),
    "</div></section>",
    servers_section(rep),
    '<section id="details"><h2>Details</h2>',
  }
  for _, r in ipairs(rep.rows) do out[#out + 1] = detail(r) end
  out[#out + 1] = "</section></main>"
  out[#out + 1] = "<script>" .. assets.script .. "</script>"
  out[#out + 1] = "</body></html>"
  return table.concat(out, "\n")
end

return M
