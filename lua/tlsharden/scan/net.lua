--- A small coroutine scheduler over LuaSocket for the live scanner: many
-- connections in flight from one thread, each wait (connect, send,
-- receive, a free connection slot, sleep) bounded by a deadline, and a
-- limit on the connections open to one server address at a time. See
-- docs/reference/net.md.
--
--   local sched = net.scheduler { per_server = 4 }
--   sched:spawn(function()
--     local conn, err = sched:connect("127.0.0.1", 5222, 5)
--     ...
--   end)
--   sched:run()
--
-- Two backends wake the tasks: by default run() waits in socket.select
-- until every task is done (the command line, surveys); with the `loop`
-- option the scheduler lives inside an event loop that is already running
-- (Prosody's net.server: its watchfd and timers), never blocks it, and
-- runs its tasks from the loop's callbacks in slices of a few
-- milliseconds.
local socket = require "socket"
local errors = require "tlsharden.errors"

local unpack = table.unpack or unpack

local M = {}

local DEFAULTS = { per_server = 4, max_connections = 64, timeout = 5 }
local OPTIONS = { per_server = "number", max_connections = "number", timeout = "number", loop = "table",
  on_error = "function", slice = "number" }

-- the longest a loop backend runs its tasks before it lets the loop serve
local SLICE = 0.02

local Scheduler = {}
Scheduler.__index = Scheduler

local Conn = {}
Conn.__index = Conn

--- A new scheduler. opts: per_server (connections open to one server
-- address at once, default 4), max_connections (in all, default 64:
-- select() has limits), timeout (default for every wait, seconds, default 5),
-- loop (an event loop to live in: { watchfd = fn, add_task = fn,
-- stop_task = fn }, as Prosody's net.server and util.timer give them),
-- on_error (loop backend: called with a task that raised; the others go
-- on), slice (loop backend: seconds of work before the loop is let serve).
function M.scheduler(opts)
  local fn = "scan.net.scheduler"
  opts = errors.options(fn, 1, "opts", opts, OPTIONS)
  local loop = opts.loop
  if loop ~= nil then
    for _, k in ipairs { "watchfd", "add_task", "stop_task" } do
      if type(loop[k]) ~= "function" then
        errors.option(fn, "loop", "expected a table with the function %s, got %s", k, errors.quote(loop[k]))
      end
    end
  end
  return setmetatable({
    loop = loop,
    on_error = opts.on_error,
    slice = errors.number(fn, opts, "slice", 0.001, 10, SLICE),
    tasks = {},       -- loop backend: which task each parked coroutine belongs to
    watches = {},     -- loop backend: descriptor -> { handle, read, write }
    per_server = errors.integer(fn, opts, "per_server", 1, 65536, DEFAULTS.per_server),
    max_connections = errors.integer(fn, opts, "max_connections", 1, 65536, DEFAULTS.max_connections),
    timeout = errors.number(fn, opts, "timeout", 0, 86400, DEFAULTS.timeout),
    ready = {},       -- tasks to resume: { co, value }
    waiting = {},     -- tasks parked on a socket, a slot or a timer
    open = {},        -- host -> connections open
    total = 0,        -- connections open in all
    conns = {},       -- every connection not yet closed
    alive = 0,        -- tasks not finished
  }, Scheduler)
end

M.now = socket.gettime

local schedule_pump

--- Start fn(...) as a new task; returns the task (a table with done,
-- ok and error once it finishes). With a loop, it starts from the loop's
-- next turn.
function Scheduler:spawn(fn, ...)
  local args = { n = select("#", ...), ... }
  local task = { done = false }
  task.co = coroutine.create(function() return fn(unpack(args, 1, args.n)) end)
  self.alive = self.alive + 1
  self.ready[#self.ready + 1] = { task, nil }
  if self.loop then schedule_pump(self) end
  return task
end

-- Park the running task until woken; returns the value it is woken with.
local function park(self, wait)
  local co = coroutine.running()
  wait.co = co
  -- the loop watches descriptors: a TCP socket and the TLS one over it share one
  if self.loop and wait.sock then wait.fd = wait.sock:getfd() end
  self.waiting[#self.waiting + 1] = wait
  return coroutine.yield(wait)
end

local function deadline_of(self, timeout)
  return M.now() + (timeout or self.timeout)
end

--- Park the running task until sock (anything socket.select takes: a
-- LuaSocket or LuaSec socket) can be read ("read") or written ("write"),
-- or timeout seconds (default: the scheduler's) have passed. Returns true
-- when it is ready, false on timeout.
function Scheduler:wait(sock, kind, timeout)
  if kind ~= "read" and kind ~= "write" then
    errors.argument("scan.net.wait", 2, "kind", "expected 'read' or 'write', got %s", errors.quote(kind))
  end
  return park(self, { kind = kind, sock = sock, deadline = deadline_of(self, timeout) }) == true
end

--- Sleep for seconds (bounded: at most the given time).
function Scheduler:sleep(seconds)
  park(self, { kind = "sleep", deadline = M.now() + math.max(0, seconds) })
end

-- Wait for a connection slot to host; false on timeout.
local function acquire(self, host, deadline)
  while (self.open[host] or 0) >= self.per_server or self.total >= self.max_connections do
    if not park(self, { kind = "slot", deadline = deadline }) then return false end
  end
  self.open[host] = (self.open[host] or 0) + 1
  self.total = self.total + 1
  return true
end

local function release(self, host)
  self.open[host] = self.open[host] - 1
  self.total = self.total - 1
  for _, w in ipairs(self.waiting) do
    if w.kind == "slot" then w.wake = true end
  end
end

--- Connect to host:port within timeout seconds (default: the scheduler's).
-- Returns a connection, or nil and "timeout", "connection refused", ....
function Scheduler:connect(host, port, timeout)
  if type(host) ~= "string" then
    errors.argument("scan.net.connect", 1, "host", "expected a string, got %s", errors.quote(host))
  end
  if type(port) ~= "number" or port % 1 ~= 0 or port < 1 or port > 65535 then
    errors.argument("scan.net.connect", 2, "port", "expected a port number, got %s", errors.quote(port))
  end
  local deadline = deadline_of(self, timeout)
  if not acquire(self, host, deadline) then return nil, "timeout" end
  local tcp, err = (host:find(":", 1, true) and socket.tcp6 or socket.tcp)()
  if not tcp then
    release(self, host)
    return nil, err
  end
  tcp:settimeout(0)
  local ok
  ok, err = tcp:connect(host, port)
  if not ok and err == "timeout" then
    if park(self, { kind = "write", sock = tcp, deadline = deadline }) then
      ok, err = tcp:connect(host, port)
      if not ok and err == "already connected" then ok = true end
    else
      err = "timeout"
    end
  end
  if not ok then
    tcp:close()
    release(self, host)
    return nil, err
  end
  local conn = setmetatable({ sched = self, tcp = tcp, host = host, port = port }, Conn)
  self.conns[conn] = true
  return conn
end

--- Send all of data within timeout seconds. Returns true or nil, err.
function Conn:send(data, timeout)
  if not self.tcp then return nil, "closed" end
  local deadline = deadline_of(self.sched, timeout)
  local i = 1
  while i <= #data do
    local last, err, partial = self.tcp:send(data, i)
    if last then return true end
    if err ~= "timeout" then return nil, err end
    i = partial + 1
    if i <= #data and not park(self.sched, { kind = "write", sock = self.tcp, deadline = deadline }) then
      return nil, "timeout"
    end
  end
  return true
end

--- Receive between 1 and max bytes within timeout seconds. Returns the
-- bytes, or nil and "timeout" or "closed".
function Conn:receive(max, timeout)
  if not self.tcp then return nil, "closed" end
  local deadline = deadline_of(self.sched, timeout)
  while true do
    local data, err, partial = self.tcp:receive(max)
    if data then return data end
    if partial and #partial > 0 then return partial end
    if err ~= "timeout" then return nil, err end
    if not park(self.sched, { kind = "read", sock = self.tcp, deadline = deadline }) then
      return nil, "timeout"
    end
  end
end

local unwatch

--- Close the connection and free its slot (idempotent).
function Conn:close()
  if not self.tcp then return end
  -- the loop stops watching its descriptor while it is still this one
  if self.sched.loop then unwatch(self.sched, self.tcp) end
  self.tcp:close()
  self.tcp = nil
  self.sched.conns[self] = nil
  release(self.sched, self.host)
end

local function finish(self, task, ok, err)
  task.done, task.ok = true, ok
  if not ok then task.error = err end
  self.alive = self.alive - 1
  if task.on_done then task.on_done(task) end
end

local function step(self, task, value)
  local ok, res = coroutine.resume(task.co, value)
  if not ok then
    finish(self, task, false, debug.traceback(task.co, tostring(res)))
    if not self.loop then
      self.failure = self.failure or task
    elseif self.on_error then
      self.on_error(task)
    end
  elseif coroutine.status(task.co) == "dead" then
    finish(self, task, true)
  end
end

-- ---- the loop backend ----

-- A descriptor's watch: one handle of the loop per descriptor number,
-- kept and reused from one wait to the next (a TCP socket and the TLS
-- socket over it share it); its flags are cleared as soon as the waits on
-- it wake, before the task that may close it runs, so that the loop never
-- holds a closed descriptor.
local function quiet(w)
  if w.read or w.write then
    w.handle:setflags(false, false)
    w.read, w.write = false, false
  end
end

function unwatch(self, sock)
  local w = self.watches[sock:getfd()]
  if w then quiet(w) end
end

-- Wake the waits of kind on descriptor fd (the loop saw it ready) and run.
local pump
local function on_ready(self, fd, kind)
  for _, wt in ipairs(self.waiting) do
    if wt.fd == fd and wt.kind == kind then wt.wake = true end
  end
  pump(self)
end

-- Watch what the waiting tasks wait for: each descriptor's flags the
-- union of its waits, and one timer no later than the nearest deadline.
local function arm(self)
  local want, nearest = {}, math.huge
  for _, wt in ipairs(self.waiting) do
    if wt.fd and wt.fd >= 0 then
      local w = want[wt.fd] or {}
      want[wt.fd] = w
      w[wt.kind] = true
    end
    if wt.deadline < nearest then nearest = wt.deadline end
  end
  for fd, w in pairs(self.watches) do
    if not want[fd] then quiet(w) end
  end
  for fd, w in pairs(want) do
    local have = self.watches[fd]
    if not have then
      local handle = self.loop.watchfd(fd, function() on_ready(self, fd, "read") end,
        function() on_ready(self, fd, "write") end)
      -- watchfd watches both directions it has a callback for; the flags
      -- are set to the waits' just below
      have = { handle = handle, read = true, write = true }
      self.watches[fd] = have
    end
    if have.read ~= (w.read or false) or have.write ~= (w.write or false) then
      have.read, have.write = w.read or false, w.write or false
      have.handle:setflags(have.read, have.write)
    end
  end
  -- a timer that fires early costs one empty turn; one that fires late a
  -- missed deadline: it is set again only when the nearest comes sooner
  if self.timer and nearest < self.timer_at then
    self.loop.stop_task(self.timer)
    self.timer = nil
  end
  if not self.timer and nearest < math.huge then
    self.timer_at = nearest
    self.timer = self.loop.add_task(math.max(0, nearest - M.now()), function()
      self.timer = nil
      pump(self)
    end)
  end
end

-- Run what is ready for up to a slice, then hand the loop back: another
-- turn at once when work is left, watches and a timer otherwise.
function pump(self)
  if self.pumping then return end
  self.pumping = true
  local t0, tasks = M.now(), self.tasks
  repeat
    local ready = self.ready
    self.ready = {}
    for i, r in ipairs(ready) do
      tasks[r[1].co] = r[1]
      step(self, r[1], r[2])
      if r[1].done then tasks[r[1].co] = nil end
      if M.now() - t0 > self.slice then
        for j = i + 1, #ready do self.ready[#self.ready + 1] = ready[j] end
        break
      end
    end
    local now, still, woken, kept = M.now(), {}, nil, {}
    for _, w in ipairs(self.waiting) do
      local value
      if w.wake then
        value = true
      elseif now >= w.deadline then
        value = w.kind == "sleep"
      elseif w.kind == "read" and w.sock.dirty and w.sock:dirty() then
        -- LuaSec holds bytes already read from the descriptor
        value = true
      end
      if value ~= nil then
        self.ready[#self.ready + 1] = { tasks[w.co], value }
        if w.fd then
          woken = woken or {}
          woken[w.fd] = true
        end
      else
        still[#still + 1] = w
        if w.fd then kept[w.fd] = true end
      end
    end
    self.waiting = still
    -- the descriptors no wait is left on stop being watched before their
    -- tasks run (and perhaps close them)
    for fd in pairs(woken or {}) do
      local w = not kept[fd] and self.watches[fd]
      if w then quiet(w) end
    end
  until #self.ready == 0 or M.now() - t0 > self.slice
  self.pumping = false
  if #self.ready > 0 then schedule_pump(self) end
  arm(self)
end

function schedule_pump(self)
  if self.pump_soon then return end
  self.pump_soon = true
  self.loop.add_task(0, function()
    self.pump_soon = false
    pump(self)
  end)
end

--- Loop backend: stop every task where it waits and close every
-- connection (a module being unloaded).
function Scheduler:stop()
  for conn in pairs(self.conns) do conn:close() end
  for _, w in pairs(self.watches) do quiet(w) end
  self.watches = {}
  if self.timer then self.loop.stop_task(self.timer) end
  self.timer, self.waiting, self.ready, self.tasks = nil, {}, {}, {}
  self.alive = 0
end

--- How many tasks are not finished.
function Scheduler:count() return self.alive end

--- Run until every task has finished. A task that raises stops the run:
-- every connection is closed and the error is raised again here.
function Scheduler:run()
  if self.loop then
    error("tlsharden.scan.net: a scheduler with a loop runs from the loop's callbacks, not from run()", 2)
  end
  -- which task each parked coroutine belongs to
  local tasks = {}
  while self.alive > 0 and not self.failure do
    local ready = self.ready
    self.ready = {}
    for _, r in ipairs(ready) do
      tasks[r[1].co] = r[1]
      step(self, r[1], r[2])
      -- a finished task is forgotten: a long run (a survey) spawns many
      if r[1].done then tasks[r[1].co] = nil end
      if self.failure then break end
    end
    if self.failure or self.alive == 0 then break end
    -- wake what can be woken without waiting
    local now, reads, writes, nearest = M.now(), {}, {}, math.huge
    local still = {}
    for _, w in ipairs(self.waiting) do
      if w.wake then
        self.ready[#self.ready + 1] = { tasks[w.co], true }
      elseif now >= w.deadline then
        self.ready[#self.ready + 1] = { tasks[w.co], w.kind == "sleep" }
      else
        still[#still + 1] = w
        nearest = math.min(nearest, w.deadline)
        if w.kind == "read" then reads[#reads + 1] = w.sock
        elseif w.kind == "write" then writes[#writes + 1] = w.sock end
      end
    end
    self.waiting = still
    if #self.ready == 0 then
      -- nothing that can ever wake (tasks waiting only on each other): a bug
      if nearest == math.huge then break end
      local r, w = socket.select(reads, writes, math.max(0, nearest - M.now()))
      local keep = {}
      for _, wt in ipairs(self.waiting) do
        if (wt.kind == "read" and r[wt.sock]) or (wt.kind == "write" and w[wt.sock]) then
          self.ready[#self.ready + 1] = { tasks[wt.co], true }
        else
          keep[#keep + 1] = wt
        end
      end
      self.waiting = keep
    end
  end
  for conn in pairs(self.conns) do conn:close() end
  if self.failure then error(self.failure.error, 0) end
  if self.alive > 0 then
    error(("tlsharden.scan.net: %d tasks wait on each other and can never wake"):format(self.alive), 0)
  end
  return true
end

--- A group of tasks one task can wait for: group:spawn(fn, ...) and
-- group:wait() (which returns once every task of the group is done).
function Scheduler:group()
  local sched = self
  local g = { pending = 0 }
  function g.spawn(_, fn, ...)
    g.pending = g.pending + 1
    local task = sched:spawn(fn, ...)
    task.on_done = function()
      g.pending = g.pending - 1
      if g.pending == 0 and g.waiter then g.waiter.wake = true end
    end
    return task
  end
  function g.wait()
    while g.pending > 0 do
      local w = { kind = "group", deadline = math.huge }
      g.waiter = w
      park(sched, w)
    end
  end
  return g
end

--- A counting semaphore for tasks: sem:acquire(timeout) -> true or false
-- on timeout, sem:release().
function Scheduler:semaphore(n)
  local sched = self
  local s = { free = n }
  function s.acquire(_, timeout)
    local deadline = deadline_of(sched, timeout)
    while s.free <= 0 do
      if not park(sched, { kind = "slot", deadline = deadline }) then return false end
    end
    s.free = s.free - 1
    return true
  end
  function s.release()
    s.free = s.free + 1
    for _, w in ipairs(sched.waiting) do
      if w.kind == "slot" then w.wake = true end
    end
  end
  return s
end

return M
