--- A survey's report as Markdown, short enough to paste into a mailing
-- list: the counts (report.counts) as tables, and the comparison of two
-- surveys.
local report = require "tlsharden.report"

local M = {}

local function cell(s)
  return (tostring(s):gsub("|", "\\|"):gsub("\n", " "))
end

local function count_text(n, base)
  return ("%d (%s)"):format(n, report.percent(n, base))
end

--- One table of counts as Markdown lines (appended to out).
function M.table(out, t)
  out[#out + 1] = "### " .. t.title
  out[#out + 1] = ""
  out[#out + 1] = ("| | all (%d) | c2s (%d) | s2s (%d) |"):format(t.base.all, t.base.c2s, t.base.s2s)
  out[#out + 1] = "| --- | ---: | ---: | ---: |"
  for _, r in ipairs(t.rows) do
    out[#out + 1] = ("| %s | %s | %s | %s |"):format(cell(r.label), count_text(r.all, t.base.all),
      count_text(r.c2s, t.base.c2s), count_text(r.s2s, t.base.s2s))
  end
  if t.note then
    out[#out + 1] = ""
    out[#out + 1] = "(" .. t.note .. ")"
  end
  out[#out + 1] = ""
end

--- The report as Markdown text. rep: report.build's result; opts.title.
function M.render(rep, opts)
  opts = opts or {}
  local out = {}
  local status = report.find(rep.counts, "status")
  out[#out + 1] = "## " .. (opts.title or "XMPP TLS survey")
  out[#out + 1] = ""
  local when = rep.started and os.date("!%Y-%m-%d", math.floor(rep.started)) or nil
  out[#out + 1] = ("%d endpoints of %d servers%s; %d with TLS. Percentages are of the endpoints each question"
    .. " applies to (in the column heads)."):format(status.base.all, rep.targets,
      when and (", surveyed " .. when) or "", report.find(rep.counts, "protocols").base.all)
  out[#out + 1] = ""
  for _, t in ipairs(rep.counts) do M.table(out, t) end
  if #rep.bad > 0 or rep.repeated > 0 then
    out[#out + 1] = ("(%d lines of the results file were not results; %d repeated an endpoint and were"
      .. " counted once.)"):format(#rep.bad, rep.repeated)
    out[#out + 1] = ""
  end
  return table.concat(out, "\n")
end

--- The comparison (report.compare's) as Markdown text.
function M.comparison(cmp, old_name, new_name)
  local out = { ("## Changes from %s to %s"):format(old_name, new_name), "",
    ("%d better, %d worse, %d unchanged, %d new, %d gone."):format(#cmp.better, #cmp.worse, cmp.same,
      #cmp.added, #cmp.removed), "" }
  local function section(title, items)
    if #items == 0 then return end
    out[#out + 1] = "### " .. title
    out[#out + 1] = ""
    out[#out + 1] = "| server | kind | before | after |"
    out[#out + 1] = "| --- | --- | --- | --- |"
    for _, it in ipairs(items) do
      out[#out + 1] = ("| %s | %s | %s | %s |"):format(cell(it.target), it.kind, cell(it.before or "-"),
        cell(it.after or "-"))
    end
    out[#out + 1] = ""
  end
  section("Better", cmp.better)
  section("Worse", cmp.worse)
  section("New", cmp.added)
  section("Gone", cmp.removed)
  return table.concat(out, "\n")
end

return M
