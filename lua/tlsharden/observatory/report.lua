--- The observatory's survey report: the report `tlsharden report` makes of
-- a survey's results file (tlsharden.report, tlsharden.report.html), made
-- of the latest scan records of the directory instead. Each record's
-- result becomes the lines a survey would have written (one JSON object
-- per endpoint, or one per kind that gave no endpoint), in a temporary
-- file that is always removed. The page leaves out the survey report's
-- script and its controls, so that it runs under the observatory's
-- Content-Security-Policy (no script); its tables are plain HTML.
local json = require "tlsharden.json"
local results = require "tlsharden.survey.results"
local survey_report = require "tlsharden.report"
local html = require "tlsharden.report.html"
local assets = require "tlsharden.report.assets"
local svg = require "tlsharden.report.svg"
local errors = require "tlsharden.errors"

local M = {}

local function tbl(v) return type(v) == "table" and v or nil end
local function str(v) return type(v) == "string" and v or nil end

local function kinds_of(kind)
  if kind == "c2s" or kind == "s2s" then return { kind } end
  return { "c2s", "s2s" }
end

-- Why a kind gave no endpoint: the target's problems about that kind (or
-- about no kind), as the survey's line says it.
local function no_endpoint_reason(result, kind)
  for _, p in ipairs(tbl(result.problems) or {}) do
    if tbl(p) and (p.kind == kind or p.kind == nil) and p.severity == "error" and str(p.message) then
      return p.message
    end
  end
  return "no endpoint found"
end

--- The results lines (tables, as a survey writes them) of done scan
-- records: one per endpoint, with survey = { key, target, of, index,
-- started }; for a kind with no endpoint, one line with its status
-- ("dns"), reason, problems and dns. Records that are not done or have no
-- result are left out.
function M.lines(records)
  if type(records) ~= "table" then
    errors.argument("observatory.report.lines", 1, "records", "expected a list of scan records, got %s",
      errors.quote(records))
  end
  local out = {}
  for _, rec in ipairs(records) do
    local result = tbl(rec) and rec.state == "done" and tbl(rec.result)
    if result then
      local target = str(rec.target) or str(result.target) or "?"
      local by_kind = {}
      for _, e in ipairs(tbl(result.endpoints) or {}) do
        if tbl(e) then
          local kind = str(e.kind) or "c2s"
          by_kind[kind] = by_kind[kind] or {}
          table.insert(by_kind[kind], e)
        end
      end
      for _, kind in ipairs(kinds_of(rec.kind or result.kind)) do
        local eps = by_kind[kind] or {}
        if #eps == 0 then
          out[#out + 1] = { target = target, domain = str(rec.domain) or str(result.domain), kind = kind,
            status = "dns", reason = no_endpoint_reason(result, kind), problems = tbl(result.problems) or {},
            dns = tbl(result.dns),
            survey = { key = results.endpoint_key(target, kind, nil), target = target, of = 0, index = 0,
              started = result.started } }
        end
        for i, e in ipairs(eps) do
          local line = {}
          for k, v in pairs(e) do line[k] = v end
          line.target, line.kind = target, kind
          line.survey = { key = results.endpoint_key(target, kind, e), target = target, of = #eps, index = i,
            started = result.started }
          out[#out + 1] = line
        end
      end
    end
  end
  return out
end

-- The report (tlsharden.report.build's) of the lines, through a temporary
-- file removed whatever happens.
local function build(records)
  local lines = M.lines(records)
  local path = os.tmpname()
  local ok, rep = pcall(function()
    local f, err = io.open(path, "wb")
    if not f then errors.failed("observatory.report", "cannot write %s: %s", errors.quote(path), tostring(err)) end
    local wrote, werr = true, nil
    for _, line in ipairs(lines) do
      wrote, werr = f:write(json.encode(line), "\n")
      if not wrote then break end
    end
    f:close()
    if not wrote then errors.failed("observatory.report", "cannot write %s: %s", errors.quote(path), tostring(werr)) end
    return survey_report.build(path)
  end)
  os.remove(path)
  if not ok then error(rep, 0) end
  return rep
end

--- The report's data of the latest done scan records: { targets,
-- endpoints, started, counts } with counts as tlsharden.report has them
-- (a list of tables { id, title, base, rows }).
function M.json(records)
  local rep = build(records)
  return { targets = rep.targets, endpoints = #rep.rows, started = rep.started, counts = rep.counts }
end

local function cut(text, from, to)
  local a = text:find(from, 1, true)
  if not a then return text end
  local b = text:find(to, a + #from, true)
  if not b then return text end
  return text:sub(1, a - 1) .. text:sub(b + #to)
end

--- The survey report of the latest done scan records as one HTML page
-- (the page of tlsharden report, without its script and the table's
-- controls that need it). opts: base (the observatory's URL prefix,
-- default "/observatory"), title.
function M.html(records, opts)
  opts = type(opts) == "table" and opts or {}
  local rep = build(records)
  local base = (str(opts.base) or "/observatory"):gsub("/+$", "")
  local page = html.render(rep, { title = str(opts.title) or "XMPP TLS observatory: the directory's report" })
  -- no script: the table's filters need it, its sorting too
  page = cut(page, "<script>" .. assets.script .. "</script>", "")
  page = cut(page, '<div class="controls">', "</div>")
  page = page:gsub(' tabindex="0" aria%-sort="none"', "")
  -- a way back to the observatory
  local nav = ('<p class="note"><a href="%s/">XMPP TLS observatory</a> · <a href="%s/directory">directory</a></p>'):format(
    svg.escape(base), svg.escape(base))
  local at = page:find("<header>", 1, true)
  if at then page = page:sub(1, at + #"<header>" - 1) .. nav .. page:sub(at + #"<header>") end
  return page
end

return M
