--- The observatory's HTTP side, without Prosody: a request (method, path
-- below the observatory's base, query, body, client address) in, a
-- response (status, headers, body) out, for the pages, the badge and the
-- JSON API. See docs/reference/observatory.md.
local json = require "tlsharden.json"
local pages = require "tlsharden.observatory.pages"
local badge = require "tlsharden.observatory.badge"
local report = require "tlsharden.observatory.report"
local target_mod = require "tlsharden.scan.target"

local M = {}

-- Pages fetch nothing and run no script.
M.CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
  .. "base-uri 'none'; frame-ancestors 'none'"

local HTML = "text/html; charset=utf-8"
local JSON = "application/json"

local function response(status, ctype, body, extra)
  local headers = { ["Content-Type"] = ctype, ["X-Content-Type-Options"] = "nosniff",
    ["Referrer-Policy"] = "no-referrer" }
  if ctype == HTML or ctype == "image/svg+xml" then headers["Content-Security-Policy"] = M.CSP end
  for k, v in pairs(extra or {}) do headers[k] = v end
  return { status = status, headers = headers, body = body }
end

local function page(status, body, extra) return response(status, HTML, body, extra) end
local function api(status, value, extra) return response(status, JSON, json.encode(value), extra) end

local REASONS = { [400] = "Bad request", [403] = "Forbidden", [404] = "Not found", [405] = "Method not allowed",
  [413] = "Request too large", [429] = "Too many requests", [500] = "Internal error" }

local function error_page(status, message, base)
  return page(status, pages.error(status, message or REASONS[status], { base = base }))
end

local function api_error(status, message, retry)
  return api(status, { error = message or REASONS[status] },
    retry and { ["Retry-After"] = tostring(math.floor(retry)) } or nil)
end

local function url_decode(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- An application/x-www-form-urlencoded body (or a query) as a table;
-- the first value of a repeated name counts.
function M.form(s)
  local out = {}
  for pair in (s or ""):gmatch("[^&;]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = url_decode(k)
    if out[k] == nil then out[k] = url_decode(v) end
  end
  return out
end

-- The newest entries first, for the home page.
local function recent(service, n)
  local list = pages.sort_entries(service:directory(), "date", "desc")
  local out = {}
  for i = 1, math.min(n, #list) do out[i] = list[i] end
  return out
end

local function body_too_large(service, req)
  return req.body and #req.body > service.limits.max_body
end

local FORM_FIELDS = { "target", "kind", "starttls", "xmpphost" }

local function submit_form(service, req, base)
  if body_too_large(service, req) then return error_page(413, "the form is larger than it can be", base) end
  local form = M.form(req.body)
  local values = {}
  for _, k in ipairs(FORM_FIELDS) do values[k] = form[k] end
  local status, body, retry = service:submit(values, req.ip)
  if status == 202 then
    return page(303, "", { Location = base .. "/scan/" .. pages.url_encode(body.id) })
  end
  return page(status, pages.home { base = base, message = body.error, values = values, recent = recent(service, 10) },
    retry and { ["Retry-After"] = tostring(math.floor(retry)) } or nil)
end

local function submit_api(service, req)
  if body_too_large(service, req) then
    return api_error(413, ("the request is larger than %d bytes"):format(service.limits.max_body))
  end
  local ok, value = pcall(json.decode, req.body or "")
  if not ok or type(value) ~= "table" then return api_error(400, "expected a JSON object with target") end
  local status, body, retry = service:submit(value, req.ip)
  return api(status, body, retry and { ["Retry-After"] = tostring(math.floor(retry)) } or nil)
end

-- GET api/scans/ID: the record's fields and the result as the command
-- line prints it (the stored text itself).
local function scan_api(service, id)
  local rec = service:get(id, true)
  if not rec then return api_error(404, "no scan with this id") end
  local doc = { id = rec.id, state = rec.state, target = rec.target, kind = rec.kind, domain = rec.domain,
    queued = rec.queued, started = rec.started, finished = rec.finished, error = rec.error, grade = rec.grade,
    position = rec.state == "queued" and rec.position or nil, progress = rec.progress,
    starttls = rec.starttls, xmpphost = rec.xmpphost }
  local text = json.encode(doc)
  if rec.result_json then text = text:sub(1, -2) .. ',"result":' .. rec.result_json .. "}" end
  return response(200, JSON, text, (rec.state == "queued" or rec.state == "running")
    and { ["Cache-Control"] = "no-store" } or nil)
end

local function directory_entries(service, query)
  local q = M.form(query)
  return pages.sort_entries(service:directory(), q.sort, q.order)
end

-- The report reads every domain's latest result: built again only when
-- the directory has changed.
local report_cache = setmetatable({}, { __mode = "k" })

local function report_page(service, base)
  local cached = report_cache[service]
  if cached and cached.version == service.version and cached.base == base then return page(200, cached.html) end
  local recs = {}
  for _, e in ipairs(service:directory()) do
    local rec = e.id and service:get(e.id)
    if rec and rec.state == "done" then recs[#recs + 1] = rec end
  end
  local html = report.html(recs, { base = base, title = "The directory's survey report" })
  report_cache[service] = { version = service.version, base = base, html = html }
  return page(200, html)
end

--- The answer to a request that failed inside (a page, or JSON below /api/).
function M.handle_error(status, base, path)
  if (path or ""):sub(1, 5) == "/api/" then return api_error(status) end
  return error_page(status, nil, base)
end

--- Answer a request. req: { method, path (below base: "/", "/scan/ID",
-- "/api/scans", ...), query, body, ip }; base: the observatory's path.
-- Returns { status, headers, body }.
function M.handle(service, req, base)
  local method, path = req.method, req.path or "/"
  if path == "" then path = "/" end
  local is_api = path:sub(1, 5) == "/api/"
  if method ~= "GET" and method ~= "HEAD" and method ~= "POST" then
    return is_api and api_error(405) or error_page(405, nil, base)
  end
  if method == "POST" then
    if path == "/api/scans" then return submit_api(service, req) end
    if path == "/scan" then return submit_form(service, req, base) end
    return is_api and api_error(405, "only GET here") or error_page(405, "only GET here", base)
  end
  if path == "/" then
    return page(200, pages.home { base = base, recent = recent(service, 10) })
  end
  local id = path:match("^/scan/([^/]+)$")
  if id then
    local rec = service:get(id)
    if not rec then return error_page(404, "no scan with this id", base) end
    local e = rec.domain and service:entry(rec.domain)
    local live = rec.state == "queued" or rec.state == "running"
    return page(200, pages.scan(rec, { base = base, history = e and e.history or nil,
      badge_url = rec.domain and (base .. "/badge/" .. pages.url_encode(rec.domain) .. ".svg") or nil }),
      live and { ["Cache-Control"] = "no-store" } or nil)
  end
  if path == "/directory" then
    local list, sort, order = directory_entries(service, req.query)
    return page(200, pages.directory(list, { base = base, sort = sort, order = order }))
  end
  if path == "/report" then return report_page(service, base) end
  local domain = path:match("^/badge/(.+)%.svg$")
  if domain then
    domain = url_decode(domain):lower()
    if not target_mod.is_name(domain) then
      return response(400, "image/svg+xml", badge.svg("?", nil))
    end
    local e = service:entry(domain)
    local value = e and e.grade or "none"
    for _, rec in pairs(service.live) do
      if rec.domain == domain and not (e and e.grade) then value = "scanning" end
    end
    return response(e and 200 or 404, "image/svg+xml", badge.svg(domain, value),
      { ["Cache-Control"] = "max-age=300" })
  end
  if path == "/api/directory" then
    local list = directory_entries(service, req.query)
    return api(200, json.list(list))
  end
  id = path:match("^/api/scans/([^/]+)$")
  if id then return scan_api(service, id) end
  if path == "/api/status" then return api(200, service:status()) end
  return is_api and api_error(404, "no such API path") or error_page(404, "there is no page here", base)
end

return M
