--- The scanner's scheduler (the interface of tlsharden.scan.net, see
-- docs/reference/net.md) on cqueues instead of socket.select, for
-- bench/scheduler.lua only: tasks are cqueues coroutines (cq:wrap), waits
-- are cqueues.poll on the socket's descriptor, timers cqueues.sleep,
-- connection slots, semaphores and groups cqueues condition variables.
-- The unchanged tlsharden.scan.run runs on it.
--
--   local sched = net_cqueues.scheduler { per_server = 9 }   -- a cqueue of its own
--   sched:spawn(function() ... end)
--   sched:run()                                              -- cq:loop() until done
--
--   -- inside Prosody: the controller net.cqueues watches from net.server
--   local sched = net_cqueues.scheduler { cq = require("net.cqueues").cq }
--   sched:spawn(...)                                         -- runs from the loop's callbacks
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local socket = require "socket"

local M = { now = socket.gettime }

local DEFAULTS = { per_server = 4, max_connections = 64, timeout = 5 }

local Scheduler = {}
Scheduler.__index = Scheduler

local Conn = {}
Conn.__index = Conn

--- A new scheduler. opts: per_server, max_connections, timeout (as
-- tlsharden.scan.net's), cq (a cqueue to run in, e.g. net.cqueues' inside
-- Prosody; default a new one, run by run()), on_error (called with a
-- task that raised; without it the first failure stops run()).
function M.scheduler(opts)
  opts = opts or {}
  return setmetatable({
    cq = opts.cq or cqueues.new(),
    on_error = opts.on_error,
    per_server = opts.per_server or DEFAULTS.per_server,
    max_connections = opts.max_connections or DEFAULTS.max_connections,
    timeout = opts.timeout or DEFAULTS.timeout,
    open = {}, total = 0, conns = {}, alive = 0,
    slots = condition.new(),  -- signalled when a connection slot is freed
  }, Scheduler)
end

-- Seconds left until deadline, for a cqueues wait (nil: no limit).
local function left(deadline)
  if deadline == math.huge then return nil end
  return math.max(0, deadline - M.now())
end

local function deadline_of(self, timeout)
  return M.now() + (timeout or self.timeout)
end

--- Start fn(...) as a new task; returns the task (done, ok, error).
function Scheduler:spawn(fn, ...)
  local task = { done = false }
  local args = table.pack(...)
  self.alive = self.alive + 1
  self.cq:wrap(function()
    local ok, err = xpcall(fn, debug.traceback, table.unpack(args, 1, args.n))
    task.done, task.ok = true, ok
    if not ok then task.error = err end
    self.alive = self.alive - 1
    if task.on_done then task.on_done(task) end
    if not ok then
      if self.on_error then self.on_error(task) else self.failure = self.failure or task end
    end
  end)
  return task
end

--- Park the running task until sock (a LuaSocket or LuaSec socket, or
-- anything with getfd) can be read or written; false on timeout. Bytes
-- LuaSec already holds count as readable (its descriptor may be quiet).
function Scheduler:wait(sock, kind, timeout)
  if kind ~= "read" and kind ~= "write" then
    error("tlsharden.scan.net.wait: bad argument #2 'kind' (expected 'read' or 'write', got " .. tostring(kind) .. ")", 2)
  end
  if kind == "read" and sock.dirty and sock:dirty() then return true end
  local fd = sock:getfd()
  if type(fd) ~= "number" or fd < 0 then return false end
  local t = timeout or self.timeout
  local obj = { pollfd = fd, events = kind == "read" and "r" or "w" }
  local ready
  if t == math.huge then ready = cqueues.poll(obj) else ready = cqueues.poll(obj, math.max(0, t)) end
  -- cqueues keeps a descriptor registered after the poll; the scanner
  -- closes its LuaSec and UDP sockets itself, and cqueues' next step
  -- would fail on the closed descriptor (EBADF): let go of it now
  cqueues.cancel(fd)
  return ready == obj
end

function Scheduler:sleep(seconds)
  cqueues.sleep(math.max(0, seconds))
end

local function acquire(self, host, deadline)
  while (self.open[host] or 0) >= self.per_server or self.total >= self.max_connections do
    local t = left(deadline)
    if t == 0 then return false end
    self.slots:wait(t)
  end
  self.open[host] = (self.open[host] or 0) + 1
  self.total = self.total + 1
  return true
end

local function release(self, host)
  self.open[host] = self.open[host] - 1
  self.total = self.total - 1
  self.slots:signal()
end

--- Connect within timeout seconds (a free slot first); a connection, or
-- nil and why.
function Scheduler:connect(host, port, timeout)
  if type(host) ~= "string" then error("tlsharden.scan.net.connect: bad argument #1 'host'", 2) end
  if type(port) ~= "number" or port % 1 ~= 0 or port < 1 or port > 65535 then
    error("tlsharden.scan.net.connect: bad argument #2 'port'", 2)
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
    if self:wait(tcp, "write", left(deadline)) then
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

function Conn:send(data, timeout)
  if not self.tcp then return nil, "closed" end
  local deadline = deadline_of(self.sched, timeout)
  local i = 1
  while i <= #data do
    local last, err, partial = self.tcp:send(data, i)
    if last then return true end
    if err ~= "timeout" then return nil, err end
    i = partial + 1
    if i <= #data and not self.sched:wait(self.tcp, "write", left(deadline)) then return nil, "timeout" end
  end
  return true
end

function Conn:receive(max, timeout)
  if not self.tcp then return nil, "closed" end
  local deadline = deadline_of(self.sched, timeout)
  while true do
    local data, err, partial = self.tcp:receive(max)
    if data then return data end
    if partial and #partial > 0 then return partial end
    if err ~= "timeout" then return nil, err end
    if not self.sched:wait(self.tcp, "read", left(deadline)) then return nil, "timeout" end
  end
end

function Conn:close()
  if not self.tcp then return end
  self.tcp:close()
  self.tcp = nil
  self.sched.conns[self] = nil
  release(self.sched, self.host)
end

--- Run the cqueue until every task has finished (standalone); a task's
-- error stops the run and is raised here, every connection closed.
function Scheduler:run()
  while self.alive > 0 and not self.failure do
    local ok, err = self.cq:step()
    if not ok then
      self.failure = { error = tostring(err) }
      break
    end
  end
  for conn in pairs(self.conns) do conn:close() end
  if self.failure then error(self.failure.error, 0) end
  return true
end

--- Close every connection (the tasks wake with errors and end).
function Scheduler:stop()
  for conn in pairs(self.conns) do conn:close() end
end

function Scheduler:count() return self.alive end

function Scheduler:group()
  local sched, cond = self, condition.new()
  local g = { pending = 0 }
  function g.spawn(_, fn, ...)
    g.pending = g.pending + 1
    local task = sched:spawn(fn, ...)
    task.on_done = function()
      g.pending = g.pending - 1
      if g.pending == 0 then cond:signal() end
    end
    return task
  end
  function g.wait()
    while g.pending > 0 do cond:wait() end
  end
  return g
end

function Scheduler:semaphore(n)
  local sched, cond = self, condition.new()
  local s = { free = n }
  function s.acquire(_, timeout)
    local deadline = deadline_of(sched, timeout)
    while s.free <= 0 do
      local t = left(deadline)
      if t == 0 then return false end
      cond:wait(t)
    end
    s.free = s.free - 1
    return true
  end
  function s.release()
    s.free = s.free + 1
    -- every waiter checks again (one woken by its timeout at the same
    -- moment must not swallow the wake-up)
    cond:signal()
  end
  return s
end

return M
