-- tlsharden.scan.net: the coroutine scheduler, over real sockets on
-- 127.0.0.1 (openssl s_server and the spec responder as peers).
local net = require "tlsharden.scan.net"
local servers = require "spec.helpers.servers"

local RESPONDER = "lua5.4 spec/helpers/responder.lua {port} "

describe("tlsharden.scan.net", function()
  local fx, tls, silent
  setup(function()
    fx = servers.fixtures()
    tls = servers.openssl(fx.dir, fx.rsa, "")
    silent = servers.start(RESPONDER .. "'{ mode = \"silent\" }'", fx.dir)
  end)
  teardown(function()
    if tls then tls.stop() end
    if silent then silent.stop() end
    if fx then fx.cleanup() end
  end)

  it("runs many tasks, each with its own connection, to the end", function()
    local sched = net.scheduler { per_server = 8 }
    local done = 0
    for _ = 1, 20 do
      sched:spawn(function()
        local conn = assert(sched:connect("127.0.0.1", tls.port))
        assert(conn:send("\21\3\3\0\2\2\40"))  -- an alert: the server closes
        local data, err = conn:receive(100)
        assert(data or err == "closed")
        conn:close()
        done = done + 1
      end)
    end
    assert.is_true(sched:run())
    assert.equal(20, done)
  end)

  it("keeps at most per_server connections open to one server address", function()
    local sched = net.scheduler { per_server = 2 }
    local open, most = 0, 0
    for _ = 1, 8 do
      sched:spawn(function()
        local conn = assert(sched:connect("127.0.0.1", silent.port))
        open = open + 1
        most = math.max(most, open)
        sched:sleep(0.02)
        open = open - 1
        conn:close()
      end)
    end
    sched:run()
    assert.equal(2, most)
  end)

  it("bounds every wait: a silent peer's receive times out", function()
    local sched = net.scheduler { timeout = 0.3 }
    local got
    sched:spawn(function()
      local conn = assert(sched:connect("127.0.0.1", silent.port))
      assert(conn:send("hello"))
      got = { conn:receive(10) }
      conn:close()
    end)
    sched:run()
    assert.same({ nil, "timeout" }, got)
  end)

  it("reports a refused connection as an error value", function()
    local sched = net.scheduler()
    local got
    sched:spawn(function() got = { sched:connect("127.0.0.1", servers.free_port(), 1) } end)
    sched:run()
    assert.is_nil(got[1])
    assert.equal("connection refused", got[2])
  end)

  it("waits for a group of tasks and sleeps without blocking the others", function()
    local sched = net.scheduler()
    local order = {}
    sched:spawn(function()
      local g = sched:group()
      g:spawn(function() sched:sleep(0.05); order[#order + 1] = "slow" end)
      g:spawn(function() order[#order + 1] = "fast" end)
      g:wait()
      order[#order + 1] = "after"
    end)
    sched:run()
    assert.same({ "fast", "slow", "after" }, order)
  end)

  it("forgets finished tasks: a long run's memory stays flat", function()
    local sched = net.scheduler()
    local heap = {}
    sched:spawn(function()
      for i = 1, 20000 do
        local g = sched:group()
        -- a task with a stack of its own (a local table), finished at once
        g:spawn(function() local t = { i, i + 1, i + 2 } return t end)
        g:wait()
        if i == 2000 or i == 20000 then
          collectgarbage("collect")
          heap[#heap + 1] = collectgarbage("count")
        end
      end
    end)
    sched:run()
    -- 18,000 dead coroutines kept would be megabytes
    assert.is_true(heap[2] - heap[1] < 256, ("the heap grew by %.0f KiB"):format(heap[2] - heap[1]))
  end)

  it("raises a task's error from run and closes every connection", function()
    local sched = net.scheduler()
    local conn
    sched:spawn(function()
      conn = assert(sched:connect("127.0.0.1", silent.port))
      error("task failed")
    end)
    local ok, err = pcall(sched.run, sched)
    assert.is_false(ok)
    assert.matches("task failed", err)
    assert.is_nil(conn.tcp)
  end)

  it("refuses bad options and arguments", function()
    for _, c in ipairs {
      { { per_server = 0 }, "bad option 'per_server': expected a whole number from 1 to 65536, got 0" },
      { { timeout = "x" }, "bad option 'timeout': expected a number, got 'x'" },
      { { colour = 1 }, "bad argument #1 'opts': unknown option 'colour' (known: loop, max_connections, on_error, per_server, slice, timeout)" },
    } do
      local ok, err = pcall(net.scheduler, c[1])
      assert.is_false(ok)
      assert.matches("tlsharden.scan.net.scheduler: " .. c[2], err, 1, true)
    end
    local sched = net.scheduler()
    local ok, err
    sched:spawn(function() ok, err = pcall(sched.connect, sched, "127.0.0.1", 0) end)
    sched:run()
    assert.is_false(ok)
    assert.matches("tlsharden.scan.net.connect: bad argument #2 'port': expected a port number, got 0", err, 1, true)
  end)

  -- Prosody's server_epoll loaded on its own (Debian's 0.12, built for Lua
  -- 5.4), in a process of its own so that a loop that never ends is only
  -- a failure
  local EPOLL = "/usr/lib/prosody/net/server_epoll.lua"
  local function in_epoll(body)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(([[
package.path = "lua/?.lua;lua/?/init.lua;/usr/lib/prosody/?.lua;" .. package.path
package.cpath = "build/?.so;/usr/lib/prosody/?.so;" .. package.cpath
local socket = require "socket"
local server = require "net.server_epoll"
local net = require "tlsharden.scan.net"
local sched = net.scheduler { loop = { watchfd = server.watchfd, add_task = server.add_task,
  stop_task = server.timer.stop } }
%s
]]):format(body))
    f:close()
    local p = io.popen("timeout 20 lua5.4 " .. script .. " 2>&1")
    local out = p:read("*a")
    p:close()
    os.remove(script)
    return out
  end

  it("lives inside Prosody's loop: wakes on readiness, closes what it watched, lets the loop end", function()
    if _VERSION ~= "Lua 5.4" or not io.open(EPOLL) then
      return pending("needs Prosody 0.12's server_epoll and Lua 5.4")
    end
    local out = in_epoll [[
sched.on_error = function(task) print("task failed: " .. tostring(task.error)); os.exit(2) end
local listener = assert(socket.bind("127.0.0.1", 0))
local _, port = listener:getsockname()
port = tonumber(port)
local got, waited, done
sched:spawn(function()
  local conn = assert(sched:connect("127.0.0.1", port, 2))
  local peer = listener:accept()
  sched:spawn(function() sched:sleep(0.05); peer:send("hello") end)
  local t0 = net.now()
  got = conn:receive(5, 3)
  waited = net.now() - t0
  -- a socket closed by its task right after its wait woke, as the scanner does with TLS
  local tcp = assert(socket.connect("127.0.0.1", port))
  tcp:settimeout(0)
  sched:wait(tcp, "read", 0.05)
  tcp:close()
  conn:close()
  peer:close()
  done = true
end)
local beat = server.add_task(0.01, function() return 0.01 end)
repeat server.loop(true) until done
server.loop(true)
server.timer.stop(beat)
server.setquitting(true)
server.add_task(8, function() print("loop still running"); os.exit(1) end)
server.loop()
print(("returned got=%s woke_early=%s count=%d"):format(tostring(got), tostring(waited < 2.5), sched:count()))
]]
    assert.matches("returned got=hello woke_early=true count=0", out, 1, true)
  end)

  it("runs a task that raises beside the others, and reports it", function()
    if _VERSION ~= "Lua 5.4" or not io.open(EPOLL) then
      return pending("needs Prosody 0.12's server_epoll and Lua 5.4")
    end
    local out = in_epoll [[
local failed, other
sched.on_error = function(task) failed = task.error end
sched:spawn(function() sched:sleep(0.01); error("boom") end)
sched:spawn(function() sched:sleep(0.05); other = true end)
server.add_task(0.2, function() server.setquitting(true) end)
server.loop()
print(("failed=%s other=%s"):format(tostring(failed):match("boom") or "no", tostring(other)))
local ok, err = pcall(sched.run, sched)
print(("run %s %s"):format(tostring(ok), tostring(err):match("loop's callbacks") or tostring(err)))
]]
    assert.matches("failed=boom other=true", out, 1, true)
    assert.matches("run false loop's callbacks", out, 1, true)
  end)
end)
