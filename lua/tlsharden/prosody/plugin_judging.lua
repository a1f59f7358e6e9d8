--- mod_tlsharden's judging and logging, after a context is in use: the
-- contexts waiting to be judged (one flat record each, in one array), the
-- timer that judges a few at a time once no context was built for a
-- second and then finishes the collector's cycle, and the log lines (the
-- details of every context at debug, one info line per host, warnings
-- once each); every judged context goes to the metrics too, when given.
--
-- Nothing here touches Prosody: plugin_judging.new takes what it needs.
local pipeline = require "tlsharden.pipeline"
local grade = require "tlsharden.grade"
local plugin_dh = require "tlsharden.prosody.plugin_dh"

local dh_source = plugin_dh.source

local plugin_judging = {}

-- A waiting context's record: these slots, from its first one, then its
-- n arguments (NIL stands for nil in any slot).
local CTX, HOST, SERVICE, MODE, PORT_LABEL, CFG, CERT_FILE, MERGE_REPORT, SOURCES, CACHE, NARGS =
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
local ARGS = 11  -- the first argument's slot, the number of slots before it
local NIL = {}
local function stored(v)
  if v == nil then return NIL end
  return v
end
local function value(v)
  if v == NIL then return nil end
  return v
end

local SERVICE_RANK = { c2s = 1, s2s_in = 2, s2s_out = 3 }

-- A few contexts at a time (about SLICE of work, then a PAUSE four times
-- as long), and only once no context was queued for SETTLE seconds.
local SLICE, PAUSE, SETTLE = 0.005, 0.02, 1

--- The judging of one loaded plugin. opts:
--   log        function(level, format, ...), as module:log without the module
--   add_timer  function(delay, fn), as module:add_timer: fn is called after
--              delay seconds and again after the delay it returns (nil: not again)
--   config     configmanager or alike: get(scope, option) (the "gc" option)
--   layers     the plugin's plugin_layers (call_layers, merge_layers)
--   merge      merge options by mode (plugin_layers.merge_options)
--   metrics    optional: the plugin's plugin_metrics (publish, sweep), given
--              every context judged and told when a batch is done
-- Returns a table of functions (see below); nothing is judged before start().
function plugin_judging.new(opts)
  local log, add_timer, config = opts.log, opts.add_timer, opts.config
  local call_layers, merge_layers = opts.layers.call_layers, opts.layers.merge_layers
  local MERGE = opts.merge
  local metrics = opts.metrics
  local J = {}
  local active = false

  --- Logging. ---------------------------------------------------------------

  -- Per owner (a host, or "*" for ports and clients): its contexts' latest
  -- judgements by label and the line last logged for it; apart from
  -- these, how many of its contexts are still waiting to be judged (a
  -- number per owner, kept at 0 rather than removed, so that counting a
  -- reload's contexts adds nothing to Lua's heap).
  local owners, waiting = {}, {}
  local function owner_state(owner)
    local o = owners[owner]
    if not o then
      o = { contexts = {}, order = {} }
      owners[owner] = o
    end
    return o
  end

  --- Logs a warning, once per text in the memo m of a configuration.
  function J.warn_once(m, text, ...)
    local line = text:format(...)
    if m.warned[line] then return end
    m.warned[line] = true
    log("warn", "%s", line)
  end
  local warn_once = J.warn_once

  --- Logs that host gets no TLS context for service; returns nil and the
  -- error to hand to Prosody.
  function J.refuse(host, service, err, hint)
    log("error", "tlsharden: no TLS for %s (%s): %s%s", host, service, tostring(err), hint or "")
    return nil, "tlsharden: " .. tostring(err)
  end

  --- One context judged (entry as take returns it, report as
  -- pipeline.finish filled it): the details at debug; the admin's settings
  -- that ask for less and what is wrong with the certificate as warnings,
  -- once each; its grade kept for its owner's line.
  function J.record(entry, report)
    local j = report.judgement
    local names = {}
    for _, l in ipairs(entry.sources) do
      names[#names + 1] = l.name .. (l.admin and "" or " (from Prosody)")
    end
    log("debug", "tlsharden: %s: grade %s, %s, forward secrecy %s; changed: %s; layers: %s", entry.label,
      j.grade.grade, table.concat(report.context.versions, "+"), j.forward_secrecy.forward_secrecy,
      pipeline.summary(report.harden.changes), #names > 0 and table.concat(names, ", ") or "none")
    for _, w in ipairs(report.merge and report.merge.warnings or {}) do
      local key = tostring(w.layer) .. "\0" .. tostring(w.setting)
      if w.lowers and not entry.cache.warned[key] then
        entry.cache.warned[key] = true
        warn_once(entry.cache, "tlsharden: %s sets %s: %s (tlsharden kept the floor)", tostring(w.layer), w.setting,
          w.message)
      end
    end
    for _, p in ipairs(j.chain and j.chain.problems or {}) do
      warn_once(entry.cache, "tlsharden: %s: certificate %s: %s", entry.host, p.code, p.message)
    end
    if j.chain_error then warn_once(entry.cache, "tlsharden: %s: certificate not checked: %s", entry.host, j.chain_error) end
    local o = owner_state(entry.owner)
    if not o.contexts[entry.label] then o.order[#o.order + 1] = entry.label end
    o.contexts[entry.label] = { service = entry.service, grade = j.grade.grade, changes = report.harden.changes }
    if metrics then
      local ok, err = pcall(metrics.publish, entry, report)
      if not ok then warn_once(entry.cache, "tlsharden: %s: metrics not published: %s", entry.label, tostring(err)) end
    end
  end
  local record = J.record

  --- One info line per owner once none of its contexts waits: its
  -- services, the worst grade, what tlsharden changed. Again only when it
  -- changes.
  function J.say(owner)
    local o = owners[owner]
    local worst, services, changes = nil, {}, {}
    table.sort(o.order, function(a, b)
      local ra, rb = SERVICE_RANK[o.contexts[a].service] or 9, SERVICE_RANK[o.contexts[b].service] or 9
      if ra ~= rb then return ra < rb end
      return a < b
    end)
    for _, label in ipairs(o.order) do
      local c = o.contexts[label]
      if not worst or grade.worse(c.grade, worst) then worst = c.grade end
      changes[#changes + 1] = c.changes
    end
    local mixed = false
    for i, label in ipairs(o.order) do
      local c = o.contexts[label]
      mixed = mixed or c.grade ~= worst
      services[i] = owner == "*" and label or c.service
    end
    if mixed then
      for i, label in ipairs(o.order) do services[i] = services[i] .. " " .. o.contexts[label].grade end
    end
    local line = ("%s: %sgrade %s (%s); changed: %s"):format(owner == "*" and "ports and clients" or owner,
      mixed and "worst " or "", worst, table.concat(services, ", "), pipeline.phrase(changes))
    if o.line == line then return end
    o.line = line
    log("info", "tlsharden: %s", line)
  end
  local say = J.say

  --- The waiting contexts. ---------------------------------------------------

  -- One flat record per context (the slots above), in one array from head
  -- to tail. The array keeps its size when it is empty again, so that
  -- queuing the contexts of a reload adds nothing to Lua's heap: at a
  -- thousand hosts, what a context leaves in the heap until it serves is
  -- what makes the collector's work, and the reload's time.
  local queue, head, tail = {}, 1, 0

  --- Queues ctx, built by the job j (pipeline.prepare's, as mod_tlsharden
  -- fills it: host, service, mode, port_label, owner, cfg, cert_file,
  -- merge_report, sources, cache, n and the call's arguments j[1..n]).
  function J.enqueue(ctx, j)
    local q, s, n = queue, tail + 1, j.n
    q[s + CTX], q[s + HOST], q[s + SERVICE], q[s + MODE] = ctx, j.host, j.service, j.mode
    q[s + PORT_LABEL], q[s + CFG], q[s + CERT_FILE] = stored(j.port_label), stored(j.cfg), stored(j.cert_file)
    q[s + MERGE_REPORT], q[s + SOURCES] = stored(j.merge_report), stored(j.sources)
    q[s + CACHE], q[s + NARGS] = j.cache, n
    local first = s + ARGS - 1
    for i = 1, n do q[first + i] = stored(j[i]) end
    tail = first + n
    local owner = j.owner
    waiting[owner] = (waiting[owner] or 0) + 1
  end
  local enqueue = J.enqueue

  --- The next record as an entry to judge (its slots emptied; once none is
  -- left the array is filled from its start again), or nil: host,
  -- service, mode, label, owner, cfg, cert_file, sources, args (with n),
  -- cache, ctx and report (merge, and harden false: still on the context).
  function J.take()
    local q, h = queue, head
    if h > tail then return nil end
    local n = q[h + NARGS]
    local host, label = q[h + HOST], value(q[h + PORT_LABEL])
    local entry = { ctx = q[h + CTX], host = host, service = q[h + SERVICE], mode = q[h + MODE],
      cfg = value(q[h + CFG]), cert_file = value(q[h + CERT_FILE]), sources = value(q[h + SOURCES]),
      cache = q[h + CACHE], report = { merge = value(q[h + MERGE_REPORT]), harden = false }, args = { n = n } }
    entry.label = label or (host .. " " .. entry.service)
    entry.owner = (label or host:find(" ", 1, true)) and "*" or host
    local first = h + ARGS - 1
    for i = 1, n do entry.args[i] = value(q[first + i]) end
    local last = first + n
    for i = h, last do q[i] = nil end
    head = last + 1
    if head > tail then head, tail = 1, 0 end  -- the array keeps its size for the next reload
    return entry
  end
  local take = J.take

  --- How many contexts of owner wait to be judged.
  function J.waiting(owner) return waiting[owner] or 0 end

  --- Judging, after the context is in use. --------------------------------

  --- Step 1 (unless strict did it before building: it only informs here,
  -- since Prosody builds from its own layers), then steps 4 and 5, with
  -- what was remembered for the configuration the context was built with;
  -- then record.
  function J.judge(entry)
    local m = entry.cache
    local ok, err = pcall(function()
      entry.sources = entry.sources or call_layers(m, entry.host, table.unpack(entry.args, 1, entry.args.n))
      local report = entry.report
      if not report.merge then
        local merged, result, merge_report = pcall(pipeline.merge, { layers = merge_layers(m, entry.sources),
          merge = MERGE[entry.mode] or MERGE.server, cache = m })
        if merged then
          report.merge = merge_report
        else
          warn_once(m, "tlsharden: %s: its settings cannot be judged: %s", entry.label, tostring(result))
        end
      end
      pipeline.finish(entry.ctx, report, { host = entry.host, service = entry.service, memo = m.judge,
        dh_source = dh_source(entry.cfg) or "none", cert_id = entry.cert_file })
    end)
    if ok then record(entry, entry.report)
    else log("warn", "tlsharden: %s: not judged: %s", entry.label, tostring(err)) end
  end
  local judge = J.judge

  -- A few contexts at a time, so that the judging never holds up the
  -- connections Prosody serves meanwhile; and only once no context was
  -- queued for a second, so that it does not compete with a start-up or
  -- reload still building, nor with the first connections after it.
  -- queued counts the contexts queued so far, seen what it was when the
  -- timer last looked.
  --
  -- Once the queue is empty, the same slices run Lua's collector to the
  -- end of a cycle (collecting): judging makes garbage, and in incremental
  -- mode (Prosody's default) every allocation during an unfinished cycle
  -- brings collector work over the whole heap, hundreds of MB at a
  -- thousand hosts. Left alone, the next burst of work (a reload, the
  -- connections after it) would pay for judging's garbage; finished while
  -- the server is idle, the collector waits at the start of its pause
  -- instead. One cycle per batch; not in generational mode (the admin's gc
  -- option), which has no long cycles to finish.
  local timer_running, collecting = false, false
  local queued, seen = 0, 0

  local function incremental_gc()
    local gc = config.get("*", "gc")
    return not (type(gc) == "table" and gc.mode == "generational")
  end

  local function collect_some(deadline)
    repeat
      if collectgarbage("step", 0) then
        collecting, timer_running = false, false
        return nil
      end
    until os.clock() > deadline
    return PAUSE
  end

  --- The timer's function: one slice of judging or collecting; returns
  -- when to run again (nil: not until more contexts are queued).
  function J.judge_some()
    if not active then
      timer_running, collecting = false, false
      return nil
    end
    if queued ~= seen then
      seen = queued
      return SETTLE
    end
    local deadline = os.clock() + SLICE
    if head > tail then
      if collecting then return collect_some(deadline) end
      timer_running = false
      return nil
    end
    local touched, entry = {}, nil
    while head <= tail do
      entry = take()
      judge(entry)
      waiting[entry.owner] = waiting[entry.owner] - 1
      touched[entry.owner] = true
      if os.clock() > deadline then break end
    end
    for owner in pairs(touched) do
      if waiting[owner] == 0 and owners[owner] and next(owners[owner].contexts) then say(owner) end
    end
    if head > tail then
      -- the batch is done: series of an older configuration go
      if metrics then
        local ok, err = pcall(metrics.sweep, entry.cache)
        if not ok then log("warn", "tlsharden: metrics not swept: %s", tostring(err)) end
      end
      collecting = incremental_gc()
      if not collecting then timer_running = false end
      return collecting and PAUSE or nil
    end
    return PAUSE
  end
  local judge_some = J.judge_some

  --- Queues ctx built by the job j for judging, and starts the timer
  -- unless it runs.
  function J.later(ctx, j)
    enqueue(ctx, j)
    queued = queued + 1
    if not timer_running then
      timer_running = true
      seen = queued
      add_timer(SETTLE, judge_some)
    end
  end

  --- Judging may run (the plugin is loaded).
  function J.start() active = true end

  --- Judging stops (the plugin is unloaded): what waits is dropped, a
  -- running timer stops at its next run.
  function J.stop()
    active = false
    queue, head, tail, waiting, collecting = {}, 1, 0, {}, false
  end

  return J
end

return plugin_judging
