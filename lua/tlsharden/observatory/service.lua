--- The observatory's work, without Prosody: scan requests checked against
-- the limits, a bounded queue, scans run in a scheduler the caller owns
-- (inside Prosody: the net.server loop backend), their records kept in
-- two key-value stores (Prosody's storage API, or any { get, set }), the
-- directory of domains with their history, rescans when a domain's latest
-- scan is older than the interval, and scans cut off by a restart marked
-- as such. See docs/guide/observatory.md.
local errors = require "tlsharden.errors"
local json = require "tlsharden.json"
local scan = require "tlsharden.scan"
local target_mod = require "tlsharden.scan.target"

local M = {}

--- The limits and their defaults (the module's options say the same with
-- a tlsharden_observatory_ prefix).
M.DEFAULTS = {
  queue = 50,             -- scans waiting at most
  concurrent = 4,         -- scans running at once
  connections = 32,       -- connections in flight, all scans together
  scan_connections = 8,   -- connections in flight for one scan
  timeout = 5,            -- seconds, every wait of a scan
  domain_interval = 3600, -- seconds before the same request scans again (0: every time)
  client_limit = 10,      -- scans one client address may ask for per client_period
  client_period = 3600,
  rescan_interval = 86400, -- seconds after which the directory's domains are scanned again (0: never)
  keep = 20,              -- scans kept per domain (older ones are deleted)
  history = 50,           -- grades remembered per domain
  max_body = 4096,        -- bytes of a request body
}

local STATES = { queued = true, running = true, done = true, failed = true, cut_off = true }
M.STATES = STATES

local Service = {}
Service.__index = Service

local function log_nothing() end

--- A service. opts: stores = { scans = store, index = store } (each with
-- get(key) and set(key, value) as Prosody's keyval stores have them),
-- scheduler (a tlsharden.scan.net scheduler), policy (observatory.policy),
-- scan_options (tlsharden.scan options every scan gets: resolver, cafile,
-- ...), limits (as M.DEFAULTS), now, new_id, log(level, fmt, ...), run
-- (the scan: run(sched, target, opts) -> result; default tlsharden.scan.run),
-- on_busy(true) when the first scan starts and on_busy(false) when the
-- last one ends.
function M.new(opts)
  local limits = {}
  for k, v in pairs(M.DEFAULTS) do limits[k] = v end
  for k, v in pairs(opts.limits or {}) do
    if M.DEFAULTS[k] == nil then errors.option("observatory", k, "is not a limit of the observatory") end
    if type(v) ~= "number" or v < 0 or v ~= v then
      errors.option("observatory", k, "expected a number of at least 0, got %s", errors.quote(v))
    end
    limits[k] = v
  end
  for _, k in ipairs { "queue", "concurrent", "connections", "scan_connections", "max_body", "keep", "history" } do
    if limits[k] < 1 then errors.option("observatory", k, "expected at least 1, got %s", errors.quote(limits[k])) end
  end
  local self = setmetatable({
    scans = opts.stores.scans, index = opts.stores.index, sched = opts.scheduler, policy = opts.policy,
    scan_options = opts.scan_options or {}, limits = limits, now = opts.now or os.time,
    new_id = opts.new_id, log = opts.log or log_nothing, run = opts.run or scan.run,
    on_busy = opts.on_busy or log_nothing,
    live = {},      -- id -> record of a scan queued or running
    in_flight = {}, -- the ids of live, as stored (a restart finds them there)
    queue = {},     -- ids waiting, oldest first
    running = 0,
    clients = {},   -- client address -> times of its requests
    asked = 0,      -- requests since the client table was last pruned
    version = 0,    -- counts the directory's changes (caches of pages built from it)
  }, Service)
  self:recover()
  return self
end

-- ---- storage ----

local function store_get(store, key)
  local v, err = store:get(key)
  if v == nil and err then error(("observatory: the store could not be read: %s"):format(tostring(err)), 0) end
  return v
end

local function store_set(store, key, value)
  local ok, err = store:set(key, value)
  if not ok then error(("observatory: the store could not be written: %s"):format(tostring(err)), 0) end
end

function Service:directory_table()
  return store_get(self.index, "directory") or {}
end

-- The scans queued or running, kept in the store as they change.
local function mark_in_flight(self, id, on)
  self.in_flight[id] = on or nil
  store_set(self.index, "in_flight", next(self.in_flight) and self.in_flight or nil)
end

-- What makes two requests the same one (a scan they can share).
local function request_key(r)
  return table.concat({ r.target, r.kind, r.starttls or "", r.xmpphost or "" }, " ")
end

-- What a record is stored as: its fields, the result as the JSON text
-- `tlsharden scan --json` prints (so that it reads back the same on
-- every store).
local RECORD_FIELDS = { "id", "target", "kind", "starttls", "xmpphost", "domain", "state", "queued", "started",
  "finished", "error", "grade", "source" }

local function save(self, rec)
  local row = {}
  for _, k in ipairs(RECORD_FIELDS) do row[k] = rec[k] end
  row.result_json = rec.result_json
  store_set(self.scans, rec.id, row)
end

--- A scan's record (live or stored), or nil. Done records carry
-- result_json, and result (decoded) unless raw.
function Service:get(id, raw)
  if type(id) ~= "string" or not id:match("^[%w_-]+$") or #id > 64 then return nil end
  local rec = self.live[id]
  if rec then
    if rec.state == "queued" then
      for i, q in ipairs(self.queue) do
        if q == id then rec.position = i end
      end
    end
    return rec
  end
  local row = store_get(self.scans, id)
  if not row then return nil end
  if row.result_json and not raw then
    local ok, decoded = pcall(json.decode, row.result_json)
    row.result = ok and decoded or nil
  end
  return row
end

-- A directory entry as callers see it: a copy, its history without the
-- ids of scans no longer kept.
local HISTORY_FIELDS = { "grade", "finished", "kind", "target", "starttls", "xmpphost" }

local function public_entry(domain, e)
  local entry = {}
  for k, v in pairs(e) do entry[k] = v end
  entry.domain = domain
  entry.history = {}
  for i, h in ipairs(e.history or {}) do
    local row = { id = not h.deleted and h.id or nil }
    for _, k in ipairs(HISTORY_FIELDS) do row[k] = h[k] end
    entry.history[i] = row
  end
  return entry
end

--- The directory: a list of { domain, kind, grade, state, id, finished,
-- endpoints, target, history }.
function Service:directory()
  local out = {}
  for domain, e in pairs(self:directory_table()) do out[#out + 1] = public_entry(domain, e) end
  table.sort(out, function(a, b) return a.domain < b.domain end)
  return out
end

--- One domain's directory entry, or nil.
function Service:entry(domain)
  if type(domain) ~= "string" then return nil end
  domain = domain:lower()
  local e = self:directory_table()[domain]
  return e and public_entry(domain, e)
end

-- ---- at load: scans a restart cut off ----

--- Mark every scan that was queued or running when the process stopped
-- as cut off (run once at start).
function Service:recover()
  local stored = store_get(self.index, "in_flight") or {}
  local n = 0
  for id in pairs(stored) do
    local rec = store_get(self.scans, id)
    if rec and (rec.state == "queued" or rec.state == "running") then
      rec.state, rec.finished = "cut_off", self.now()
      rec.error = "the server restarted before this scan finished; scan again"
      save(self, rec)
      n = n + 1
    end
  end
  if next(stored) then store_set(self.index, "in_flight", nil) end
  if n > 0 then self.log("info", "%d scan%s cut off by a restart", n, n == 1 and " was" or "s were") end
  return n
end

-- ---- requests ----

--- A request's target and options checked: returns the checked request
-- { target, kind, starttls, xmpphost, domain, key } or nil, status, why.
function Service:check(req)
  if type(req) ~= "table" then return nil, 400, "expected a JSON object with target" end
  local target, kind, starttls, xmpphost = req.target, req.kind, req.starttls, req.xmpphost
  if type(target) ~= "string" or target == "" then return nil, 400, "target: expected a domain or HOST:PORT" end
  if #target > 300 then return nil, 400, "target: longer than 300 characters" end
  if starttls == "" or starttls == "auto" then starttls = nil end
  if xmpphost == "" then xmpphost = nil end
  if kind == "" then kind = nil end
  for k, v in pairs { kind = kind, starttls = starttls, xmpphost = xmpphost } do
    if v ~= nil and (type(v) ~= "string" or #v > 300) then return nil, 400, k .. ": expected a short string" end
  end
  for k in pairs(req) do
    if k ~= "target" and k ~= "kind" and k ~= "starttls" and k ~= "xmpphost" then
      return nil, 400, ("unknown field %s (known: kind, starttls, target, xmpphost)"):format(errors.quote(k))
    end
  end
  target = target:lower()
  local o, what, why = target_mod.resolve(target, { kind = kind, starttls = starttls, xmpphost = xmpphost })
  if not o then return nil, 400, what .. ": " .. why end
  -- what a target names itself is refused before anything is queued
  if o.literal then
    local ok, reason = self.policy:address(o.host)
    if not ok then return nil, 403, reason end
  end
  if o.port and not self.policy:port(o.port) then
    return nil, 403, ("port %d is not a standard XMPP port; name the domain and let SRV say"):format(o.port)
  end
  local ok, err = pcall(scan.check, target, self:scan_opts { kind = kind, starttls = starttls, xmpphost = xmpphost })
  if not ok then return nil, 400, errors.is(err) and err.reason or tostring(err) end
  local r = { target = target, kind = kind or "both", starttls = starttls, xmpphost = xmpphost, domain = o.domain }
  r.key = request_key(r)
  return r
end

function Service:scan_opts(extra)
  local o = {}
  for k, v in pairs(self.scan_options) do o[k] = v end
  o.timeout = o.timeout or self.limits.timeout
  o.connections = self.limits.scan_connections
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- The scan a request can share: one queued or running for the same
-- request, or one done within the domain interval.
local function shared(self, r)
  for _, rec in pairs(self.live) do
    if rec.key == r.key then return rec.id end
  end
  if self.limits.domain_interval <= 0 then return nil end
  local e = self:directory_table()[r.domain]
  for _, h in ipairs(e and e.history or {}) do
    if not h.deleted and request_key(h) == r.key and h.finished
        and self.now() - h.finished < self.limits.domain_interval then
      return h.id
    end
  end
end

local function client_allowed(self, client)
  if not client then return true end
  local now, period = self.now(), self.limits.client_period
  local times, kept = self.clients[client] or {}, {}
  for _, t in ipairs(times) do
    if now - t < period then kept[#kept + 1] = t end
  end
  self.clients[client] = kept
  -- now and then, forget the clients with no request in the period
  self.asked = self.asked + 1
  if self.asked >= 256 then
    self.asked = 0
    for c, ts in pairs(self.clients) do
      if c ~= client and (#ts == 0 or now - ts[#ts] >= period) then self.clients[c] = nil end
    end
  end
  if #kept >= self.limits.client_limit then
    return false, math.max(1, math.ceil(kept[1] + period - now))
  end
  kept[#kept + 1] = now
  return true
end

--- Ask for a scan. req: { target, kind, starttls, xmpphost }; client:
-- the asking address (nil: the observatory's own schedule). Returns
-- status, body (a table for the JSON API), retry_after: 202 and
-- { id, state, cached } or 400 / 403 / 429 and { error }.
function Service:submit(req, client)
  local r, status, why = self:check(req)
  if not r then return status, { error = why } end
  local id = shared(self, r)
  if id then
    local rec = self:get(id, true)
    return 202, { id = id, state = rec and rec.state or "done", cached = true }
  end
  local ok, retry = client_allowed(self, client)
  if not ok then
    return 429, { error = ("too many scans from %s: at most %d per %d s"):format(client, self.limits.client_limit,
      self.limits.client_period) }, retry
  end
  if #self.queue >= self.limits.queue then
    return 429, { error = ("the queue is full (%d scans wait); try again later"):format(#self.queue) }, 60
  end
  local rec = self:enqueue(r, client and "request" or "schedule")
  return 202, { id = rec.id, state = rec.state, cached = false }
end

-- A checked request into the queue, as a new scan.
function Service:enqueue(r, source)
  local rec = { id = self.new_id(), target = r.target, kind = r.kind, starttls = r.starttls, xmpphost = r.xmpphost,
    domain = r.domain, key = r.key, state = "queued", queued = self.now(), source = source }
  save(self, rec)
  mark_in_flight(self, rec.id, true)
  self.live[rec.id] = rec
  self.queue[#self.queue + 1] = rec.id
  self:pump()
  return rec
end

-- ---- running ----

-- Record a finished scan: its record, the domain's directory entry, the
-- scans of the domain beyond `keep` deleted.
function Service:finish(rec, result, err)
  rec.finished = self.now()
  rec.progress, rec.position = nil, nil
  if result then
    local doc = { command = "scan" }
    for k, v in pairs(result) do doc[k] = v end
    rec.result_json = json.encode(doc)
    rec.grade = result.grade
    if #(result.endpoints or {}) > 0 then
      rec.state = "done"
    else
      rec.state = "failed"
      -- why: an endpoint refused says more than a DNS answer on the way
      local why
      for _, code in ipairs { "ENDPOINT_REFUSED", "NO_ENDPOINTS" } do
        for _, p in ipairs(result.problems or {}) do
          if not why and p.code == code then why = p.message end
        end
      end
      local first = result.problems and result.problems[1]
      rec.error = why or (first and first.message) or "no endpoint was scanned"
    end
  else
    rec.state, rec.error = "failed", err or "the scan failed"
  end
  save(self, rec)
  self.live[rec.id] = nil
  mark_in_flight(self, rec.id, false)
  if rec.state == "done" then
    local dir = self:directory_table()
    local e = dir[rec.domain] or { history = {} }
    table.insert(e.history, 1, { id = rec.id, grade = rec.grade, finished = rec.finished, kind = rec.kind,
      target = rec.target, starttls = rec.starttls, xmpphost = rec.xmpphost })
    -- the scans of the domain beyond `keep`: their records go
    local kept = 0
    for i = #e.history, 1, -1 do
      if i > self.limits.history then table.remove(e.history, i) end
    end
    for _, h in ipairs(e.history) do
      kept = kept + 1
      if kept > self.limits.keep and h.id and not h.deleted then
        store_set(self.scans, h.id, nil)
        h.deleted = true
      end
    end
    e.kind, e.grade, e.state, e.id, e.finished = rec.kind, rec.grade, rec.state, rec.id, rec.finished
    e.endpoints = #result.endpoints
    e.target = rec.target
    dir[rec.domain] = e
    store_set(self.index, "directory", dir)
    self.version = self.version + 1
  end
  self.log(rec.state == "done" and "info" or "warn", "scan %s of %s (%s): %s%s", rec.id, rec.target, rec.kind,
    rec.state, rec.grade and (", grade " .. rec.grade) or (rec.error and (": " .. rec.error) or ""))
end

function Service:start_scan(rec)
  self.running = self.running + 1
  if self.running == 1 then self.on_busy(true) end
  rec.state, rec.started = "running", self.now()
  rec.progress = { message = "looking up the endpoints", done = 0, total = 0 }
  -- (not stored: the in-flight list says it was queued or running)
  local opts = self:scan_opts { kind = rec.kind ~= "both" and rec.kind or nil, starttls = rec.starttls,
    xmpphost = rec.xmpphost }
  local policy = self.policy
  opts.allow = function(ep) return policy:endpoint(ep) end
  opts.on_progress = function(line, done, total)
    rec.progress = { message = line, done = done or (rec.progress and rec.progress.done) or 0,
      total = total or (rec.progress and rec.progress.total) or 0 }
  end
  self.sched:spawn(function()
    local ok, result = pcall(self.run, self.sched, rec.target, opts)
    self.running = self.running - 1
    if self.running == 0 and #self.queue == 0 then self.on_busy(false) end
    local fok, ferr = pcall(self.finish, self, rec, ok and result or nil,
      not ok and ("internal error: " .. errors.shorten((tostring(result):match("^[^\n]*")))) or nil)
    if not fok then self.log("error", "scan %s could not be recorded: %s", rec.id, tostring(ferr)) end
    self:pump()
  end)
end

--- Start queued scans while fewer than `concurrent` run.
function Service:pump()
  while self.running < self.limits.concurrent and #self.queue > 0 do
    local id = table.remove(self.queue, 1)
    local rec = self.live[id]
    if rec then self:start_scan(rec) end
  end
end

--- Queue a rescan of every directory domain whose latest scan is older
-- than the rescan interval (as many as the queue has room for, half of it
-- at most); returns how many were queued.
function Service:rescan_due()
  local interval = self.limits.rescan_interval
  if interval <= 0 then return 0 end
  local n, now, room = 0, self.now(), math.floor(self.limits.queue / 2) - #self.queue
  local due = {}
  for domain, e in pairs(self:directory_table()) do
    if e.finished and now - e.finished >= interval then due[#due + 1] = { domain, e } end
  end
  table.sort(due, function(a, b) return a[2].finished < b[2].finished end)
  for _, d in ipairs(due) do
    if n >= room then break end
    -- the domain's latest request again, unless it is queued or running
    local last = d[2].history and d[2].history[1]
    local r = last and self:check { target = last.target, kind = last.kind, starttls = last.starttls,
      xmpphost = last.xmpphost }
    local busy = false
    for _, rec in pairs(self.live) do
      if r and rec.key == r.key then busy = true end
    end
    if r and not busy then
      self:enqueue(r, "schedule")
      n = n + 1
    end
  end
  if n > 0 then self.log("info", "%d domain%s queued for a rescan", n, n == 1 and "" or "s") end
  return n
end

--- What the observatory is doing: { queued, running, limits }.
function Service:status()
  return { queued = #self.queue, running = self.running, limits = self.limits }
end

return M
