--- A survey: many XMPP servers scanned at once in one coroutine scheduler
-- (tlsharden.scan.net), one result line per endpoint as results come in,
-- resumable from its results file. See docs/reference/survey.md.
--
--   local survey = require "tlsharden.survey"
--   local targets = survey.parse_list(text)
--   survey.run(targets, { kind = "c2s", jobs = 32, write = write_line })
--
-- The work of one list entry and kind: discover (DNS: its endpoints),
-- then scan each endpoint. Both come from the live scanner by default and
-- may be replaced (opts.discover, opts.scan); either runs inside a task of
-- the survey's scheduler and may yield to it.
local errors = require "tlsharden.errors"
local problems = require "tlsharden.problems"
local net = require "tlsharden.scan.net"
local list = require "tlsharden.survey.list"
local results = require "tlsharden.survey.results"
local scan_target = require "tlsharden.scan.target"

local M = {}

M.parse_list = list.parse
M.read = results.read
M.key = results.key

local FN = "survey.run"

local DEFAULTS = {
  jobs = 32,        -- endpoints scanned at once
  per_server = 8,   -- connections open to one server address at once
  resolvers = 16,   -- list entries resolved at once
  timeout = 5,      -- seconds, every wait of the scan
  connections = 4,  -- connections one endpoint scan keeps open at once
}

local OPTIONS = {
  kind = "string", jobs = "number", per_server = "number", resolvers = "number",
  timeout = "number", connections = "number", write = "function", resume = "table",
  discover = "function", scan = "function", on_progress = "function",
  scan_options = "table", now = "function",
}

local function integer_option(opts, name, lo, hi)
  return errors.integer(FN, opts, name, lo, hi, DEFAULTS[name])
end

local function check_targets(targets)
  errors.table(FN, 1, "targets", targets)
  for i, t in ipairs(targets) do
    if type(t) ~= "table" or type(t.target) ~= "string" then
      errors.argument(FN, 1, "targets", "item #%d: expected a target of survey.parse_list, got %s", i,
        errors.quote(t))
    end
  end
end

-- The live scanner's discover and scan functions, and its check of
-- the scan options.
local function scanner()
  local scan = require "tlsharden.scan"
  return scan.discover, scan.endpoint, scan.check_options
end

-- What is copied from a discovered endpoint into a result that has none
-- of its own (a scan that raised).
local ENDPOINT_FIELDS = { "target", "domain", "kind", "tls", "host", "address", "family", "port", "srv" }

local function failure_record(base, status, reason)
  local rec = { status = status, reason = reason, problems = problems.list() }
  for _, k in ipairs(ENDPOINT_FIELDS) do rec[k] = base[k] end
  return rec
end

--- Run a survey of targets (survey.parse_list's). opts:
--   kind: "c2s", "s2s" or "both" (the default); a target's own kind (its
--     list line's --kind, or --starttls c2s|s2s) wins, and a HOST:PORT
--     target is one service, c2s unless one kind is asked for;
--   jobs: endpoints scanned at once (default 32);
--   per_server: connections open to one server address at once (default
--     8); endpoints of one address are scanned at most
--     per_server / connections at a time (at least one);
--   resolvers: list entries resolved at once (default 16);
--   timeout: seconds for every wait (default 5);
--   connections: connections one endpoint scan keeps open (default 4);
--   write(rec): called with every result as it comes in (required);
--   resume: results.progress_of(file): what an earlier run did;
--   discover(target, kind, ctx), scan(endpoint, ctx): see the live scanner (tlsharden.scan);
--     ctx = { sched, options = scan_options, timeout, connections };
--   on_progress(state): after every change;
--   scan_options: the options of tlsharden.scan, passed to discover and
--     scan as ctx.options (checked first); order is false unless given.
-- Returns the final state: entries, lookups, resolved, found, scanned,
-- resumed, ok, failed, statuses (status -> count), started, elapsed.
function M.run(targets, opts)
  check_targets(targets)
  opts = errors.options(FN, 2, "opts", opts, OPTIONS)
  local kinds = scan_target.kinds(opts.kind)
  if not kinds then
    errors.option(FN, "kind", "expected 'c2s', 's2s' or 'both', got %s", errors.quote(opts.kind))
  end
  local jobs = integer_option(opts, "jobs", 1, 512)
  local per_server = integer_option(opts, "per_server", 1, 1024)
  local resolvers = integer_option(opts, "resolvers", 1, 256)
  local connections = integer_option(opts, "connections", 1, 64)
  local timeout = errors.number(FN, opts, "timeout", 0.001, 3600, DEFAULTS.timeout)
  if not opts.write then errors.option(FN, "write", "expected a function(rec), got nil") end
  local write, on_progress = opts.write, opts.on_progress or function() end
  -- the server's orders of suites and groups cost connections and change
  -- no count of a report: left out unless asked for
  local scan_options = {}
  for k, v in pairs(opts.scan_options or {}) do scan_options[k] = v end
  if scan_options.order == nil then scan_options.order = false end
  local discover, scan = opts.discover, opts.scan
  if not discover or not scan then
    local d, s, check = scanner()
    check(scan_options)
    discover, scan = discover or d, scan or s
  end
  local now = opts.now or net.now
  local resume = opts.resume or { done = {}, groups = {} }
  local done, groups = resume.done or {}, resume.groups or {}
  local per_address = math.max(1, math.floor(per_server / connections))

  local sched = net.scheduler { per_server = per_server, timeout = timeout,
    max_connections = math.min(900, math.max(64, jobs * connections + resolvers * 2)) }
  local ctx = { sched = sched, options = scan_options, timeout = timeout,
    connections = connections }

  local st = { entries = #targets, lookups = 0, resolved = 0, found = 0, scanned = 0,
    resumed = 0, ok = 0, failed = 0, statuses = {}, started = now() }
  for _, r in pairs(resume.statuses or {}) do st.resumed = st.resumed + r end
  for status, n in pairs(resume.statuses or {}) do
    st.statuses[status] = n
    if status == "ok" then st.ok = st.ok + n else st.failed = st.failed + n end
  end

  -- The lookups still to do: every list entry and kind not finished before.
  local lookups, total = {}, 0
  for _, t in ipairs(targets) do
    -- as a scan of the line's arguments: HOST:PORT is one service, c2s
    -- unless the line or the survey names another kind
    local own = t.kind and { t.kind } or (t.port and #kinds == 2 and { "c2s" }) or kinds
    for _, kind in ipairs(own) do
      total = total + 1
      local g = groups[(t.key or t.target) .. "|" .. kind]
      if not (g and g.of and g.count >= math.max(g.of, 1)) then
        lookups[#lookups + 1] = { target = t, kind = kind }
      end
    end
  end
  -- lookups finished in an earlier run count as resolved
  st.lookups = total
  st.resolved = st.lookups - #lookups

  local queue = {}             -- endpoints found, waiting for a scan
  local busy = {}              -- address -> scans running
  local running, resolving = 0, 0
  local event = sched:semaphore(0)

  local function record(rec, meta, key)
    rec.survey = { key = key, target = meta.target.key or meta.target.target, line = meta.target.line,
      of = meta.of, index = meta.index }
    write(rec)
    local status = rec.status or "error"
    st.statuses[status] = (st.statuses[status] or 0) + 1
    if status == "ok" then st.ok = st.ok + 1 else st.failed = st.failed + 1 end
  end

  local function lookup(item)
    local t, kind = item.target, item.kind
    local ok, found = pcall(discover, t, kind, ctx)
    local eps = ok and type(found) == "table" and found.endpoints or {}
    if not ok or type(found) ~= "table" or #eps == 0 then
      -- no endpoint: one line with the reason
      local key = results.endpoint_key(t.key or t.target, kind, nil)
      if not done[key] then
        done[key] = true
        st.found = st.found + 1
        local rec = failure_record({ target = t.target, domain = t.domain or t.host, kind = kind },
          ok and type(found) == "table" and (found.status or "dns") or "error",
          ok and type(found) == "table" and (found.reason or "no endpoint found") or errors.shorten(found))
        if ok and type(found) == "table" then
          rec.problems = found.problems or rec.problems
          rec.dns = found.dns
        end
        record(rec, { target = t, of = 0, index = 0 }, key)
        st.scanned = st.scanned + 1
      end
    else
      for i, ep in ipairs(eps) do
        local key = results.endpoint_key(t.key or t.target, kind, ep)
        if not done[key] then
          done[key] = true
          queue[#queue + 1] = { ep = ep, key = key, meta = { target = t, of = #eps, index = i } }
          st.found = st.found + 1
        end
      end
    end
    st.resolved = st.resolved + 1
  end

  local function scan_one(item)
    local ep = item.ep
    local ok, rec = pcall(scan, ep, ctx)
    if not ok or type(rec) ~= "table" then
      rec = failure_record(ep, "error", ok and ("the scan returned " .. errors.quote(rec)) or errors.shorten(rec))
    end
    record(rec, item.meta, item.key)
    st.scanned = st.scanned + 1
  end

  -- Take the next endpoint whose address has room for one more scan.
  local function next_item()
    for i = 1, #queue do
      local item = queue[i]
      local addr = item.ep.address or item.ep.host or "?"
      if (busy[addr] or 0) < per_address then
        table.remove(queue, i)
        return item, addr
      end
    end
  end

  local next_lookup = 1
  sched:spawn(function()
    while true do
      while resolving < resolvers and next_lookup <= #lookups do
        local item = lookups[next_lookup]
        next_lookup = next_lookup + 1
        resolving = resolving + 1
        sched:spawn(function()
          lookup(item)
          resolving = resolving - 1
          on_progress(st)
          event:release()
        end)
      end
      while running < jobs do
        local item, addr = next_item()
        if not item then break end
        running = running + 1
        busy[addr] = (busy[addr] or 0) + 1
        sched:spawn(function()
          scan_one(item)
          busy[addr] = busy[addr] - 1
          running = running - 1
          on_progress(st)
          event:release()
        end)
      end
      if running == 0 and resolving == 0 and next_lookup > #lookups and #queue == 0 then break end
      event:acquire(math.huge)
    end
  end)
  on_progress(st)
  local ok, err = pcall(sched.run, sched)
  if not ok then
    -- an interrupt (the interpreter's SIGINT) ends the survey as one of
    -- its own errors; what was written so far stays, --resume goes on
    if errors.is_interrupt(err) then errors.raise_kind("interrupted", FN, "interrupted") end
    error(err, 0)
  end
  st.elapsed = now() - st.started
  return st
end

return M
