--- A real browser for specs: Debian's chromium, headless, driven over the
-- DevTools protocol (a WebSocket on 127.0.0.1) with a small client written
-- here on LuaSocket. Started in its own process group with a fresh
-- profile directory, and always stopped.
--
--   local b = browser.start()          -- or nil, reason where it cannot run
--   local page = b:open("file:///tmp/x.html")
--   page:evaluate("document.title")
--   b:stop()
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local json = require "cjson"

local M = {}

M.CHROMIUM = os.getenv("TLSHARDEN_CHROMIUM") or "/usr/bin/chromium"

-- ---- base64 (RFC 4648) ----

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64_encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for k = 3, 0, -1 do
      local v = math.floor(n / 64 ^ k) % 64
      chars[#chars + 1] = B64:sub(v + 1, v + 1)
    end
    if not b then chars[3], chars[4] = "=", "=" elseif not c then chars[4] = "=" end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

local DECODE = {}
for i = 1, 64 do DECODE[B64:byte(i)] = i - 1 end

function M.base64_decode(s)
  s = s:gsub("[^%w%+/]", "")
  local out = {}
  for i = 1, #s, 4 do
    local n, count = 0, 0
    for k = 0, 3 do
      local v = DECODE[s:byte(i + k) or 0]
      n = n * 64 + (v or 0)
      if v then count = count + 1 end
    end
    local bytes = string.char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
    out[#out + 1] = bytes:sub(1, count - 1)
  end
  return table.concat(out)
end

-- ---- a WebSocket client (RFC 6455), text frames ----

local function ws_connect(host, port, path, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout)
  assert(c:connect(host, port))
  local key = M.base64_encode(string.char(math.random(0, 255), math.random(0, 255), math.random(0, 255),
    math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255),
    math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255),
    math.random(0, 255), math.random(0, 255), math.random(0, 255)))
  assert(c:send(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    .. "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"):format(path, host, port, key)))
  local status = assert(c:receive("*l"))
  if not status:find(" 101 ", 1, true) then error("the browser refused the WebSocket: " .. status) end
  repeat local line = assert(c:receive("*l")) until line == ""
  return c
end

local function u16(n) return string.char(math.floor(n / 256) % 256, n % 256) end

local function ws_send(c, text)
  local mask = { math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255) }
  local n = #text
  local head = string.char(0x81)
  if n < 126 then head = head .. string.char(0x80 + n)
  elseif n < 65536 then head = head .. string.char(0x80 + 126) .. u16(n)
  else head = head .. string.char(0x80 + 127) .. u16(0) .. u16(0) .. u16(math.floor(n / 65536)) .. u16(n % 65536) end
  local body = {}
  for i = 1, n do
    local b = text:byte(i)
    local m = mask[(i - 1) % 4 + 1]
    -- XOR without the bit library (Lua 5.2 has bit32, 5.3+ has operators)
    local x, bit = 0, 1
    for _ = 1, 8 do
      if (math.floor(b / bit) % 2) ~= (math.floor(m / bit) % 2) then x = x + bit end
      bit = bit * 2
    end
    body[i] = string.char(x)
  end
  assert(c:send(head .. string.char(mask[1], mask[2], mask[3], mask[4]) .. table.concat(body)))
end

-- One whole message (fragments joined); answers pings.
local function ws_receive(c)
  local parts = {}
  while true do
    local h = assert(c:receive(2))
    local b1, b2 = h:byte(1, 2)
    local fin, opcode = b1 >= 128, b1 % 16
    local n = b2 % 128
    if n == 126 then
      local e = assert(c:receive(2))
      n = e:byte(1) * 256 + e:byte(2)
    elseif n == 127 then
      local e = assert(c:receive(8))
      n = 0
      for i = 1, 8 do n = n * 256 + e:byte(i) end
    end
    local payload = n > 0 and assert(c:receive(n)) or ""
    if opcode == 8 then error("the browser closed the DevTools connection") end
    if opcode == 9 then
      -- pong, masked with a zero mask
      assert(c:send(string.char(0x8A, 0x80 + #payload, 0, 0, 0, 0) .. payload))
    elseif opcode ~= 10 then
      parts[#parts + 1] = payload
      if fin then return table.concat(parts) end
    end
  end
end

-- ---- the browser ----

local Page = {}
Page.__index = Page

--- Send a DevTools command and wait for its answer (events that come
-- first are kept in page.events). Raises on a protocol error.
function Page:call(method, params)
  self.next_id = self.next_id + 1
  local id = self.next_id
  ws_send(self.ws, json.encode({ id = id, method = method, params = params or {} }))
  while true do
    local msg = json.decode(ws_receive(self.ws))
    if msg.id == id then
      if msg.error then error(("%s: %s"):format(method, json.encode(msg.error))) end
      return msg.result
    elseif msg.method then
      self.events[#self.events + 1] = msg
    end
  end
end

--- Wait (at most timeout seconds) for an event named method.
function Page:wait_event(method, timeout)
  for _, e in ipairs(self.events) do if e.method == method then return e end end
  local deadline = socket.gettime() + (timeout or 20)
  while socket.gettime() < deadline do
    local msg = json.decode(ws_receive(self.ws))
    if msg.method then
      self.events[#self.events + 1] = msg
      if msg.method == method then return msg end
    end
  end
  error("no " .. method .. " within " .. tostring(timeout) .. " s")
end

--- Evaluate a JavaScript expression; returns its value (by value).
function Page:evaluate(expr)
  local r = self:call("Runtime.evaluate", { expression = expr, returnByValue = true, awaitPromise = true })
  if r.exceptionDetails then error("the page's script raised: " .. json.encode(r.exceptionDetails)) end
  return r.result.value
end

--- Every console error, uncaught exception and error log entry so far.
function Page:errors()
  -- take what has arrived
  self:evaluate("1")
  local out = {}
  for _, e in ipairs(self.events) do
    if e.method == "Runtime.exceptionThrown" then
      out[#out + 1] = "exception: " .. json.encode(e.params.exceptionDetails)
    elseif e.method == "Runtime.consoleAPICalled" and (e.params.type == "error" or e.params.type == "assert") then
      out[#out + 1] = "console." .. e.params.type .. ": " .. json.encode(e.params.args)
    elseif e.method == "Log.entryAdded" and e.params.entry.level == "error" then
      out[#out + 1] = "log: " .. tostring(e.params.entry.text) .. " " .. tostring(e.params.entry.url or "")
    end
  end
  return out
end

--- A real mouse click (pressed and released) at the centre of the element
-- a CSS selector finds, after scrolling it into view.
function Page:click(selector)
  local rect = self:evaluate(([[(function () {
    var el = document.querySelector(%s);
    if (!el) { return null; }
    el.scrollIntoView({ block: "center" });
    var r = el.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  })()]]):format(json.encode(selector)))
  if not rect then error("no element " .. selector) end
  for _, kind in ipairs { "mousePressed", "mouseReleased" } do
    self:call("Input.dispatchMouseEvent", { type = kind, x = rect.x, y = rect.y, button = "left", clickCount = 1 })
  end
end

--- Type text into the element a selector finds (focused first).
function Page:type(selector, text)
  self:evaluate(("document.querySelector(%s).focus()"):format(json.encode(selector)))
  self:call("Input.insertText", { text = text })
end

--- A PNG of the page (the whole page with full = true) written to path.
function Page:screenshot(path, full)
  local r = self:call("Page.captureScreenshot", { format = "png", captureBeyondViewport = full or false })
  local f = assert(io.open(path, "wb"))
  f:write(M.base64_decode(r.data))
  f:close()
  return path
end

local Browser = {}
Browser.__index = Browser

--- Open url in the browser's page; returns the page once it has loaded,
-- with console and log events recorded from the start.
function Browser:open(url, viewport)
  local page = setmetatable({ ws = self.ws, next_id = self.next_id or 0, events = {} }, Page)
  self.page = page
  page:call("Runtime.enable")
  page:call("Log.enable")
  page:call("Page.enable")
  if viewport then
    page:call("Emulation.setDeviceMetricsOverride", { width = viewport.width, height = viewport.height,
      deviceScaleFactor = viewport.scale or 1, mobile = viewport.mobile or false })
  end
  page:call("Page.navigate", { url = url })
  page:wait_event("Page.loadEventFired", 30)
  return page
end

function Browser:stop()
  if self.ws then pcall(function() self.ws:close() end) self.ws = nil end
  if self.pid then
    -- the browser and its helper processes: the process group it leads
    sh.exec(("kill -TERM -%d 2>/dev/null; sleep 0.3; kill -KILL -%d 2>/dev/null"):format(self.pid, self.pid))
    self.pid = nil
  end
  pki.cleanup(self.dir)
end

local function http_get(port, path)
  local c = assert(socket.tcp())
  c:settimeout(5)
  assert(c:connect("127.0.0.1", port))
  assert(c:send(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"):format(path, port)))
  local length
  repeat
    local line = c:receive("*l")
    if not line then c:close() return nil end
    length = length or tonumber(line:lower():match("^content%-length:%s*(%d+)"))
  until line == ""
  local body = length and c:receive(length) or c:receive("*a")
  c:close()
  return body
end

--- Whether the browser can run here: true, or false and why not.
function M.available()
  if not sh.exec("test -x " .. sh.quote(M.CHROMIUM)) then
    return false, M.CHROMIUM .. " is not installed (apt-get install chromium)"
  end
  return true
end

--- Start the browser. opts: width, height (of its window). Returns a
-- browser, or nil and the reason it could not start.
function M.start(opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then return nil, why end
  local dir = pki.tmpdir()
  local cmd = ("setsid %s --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
    .. " --disable-background-networking --disable-component-update --disable-sync --disable-extensions"
    .. " --disable-crash-reporter --disable-breakpad"
    .. " --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 --user-data-dir=%s"
    .. " --window-size=%d,%d about:blank > %s 2>&1 & echo $!"):format(sh.quote(M.CHROMIUM), sh.quote(dir),
    opts.width or 1280, opts.height or 900, sh.quote(dir .. "/chromium.log"))
  local pid = tonumber((sh.run(cmd):match("%d+")))
  local b = setmetatable({ pid = pid, dir = dir }, Browser)
  local port, deadline = nil, socket.gettime() + 30
  while socket.gettime() < deadline do
    local f = io.open(dir .. "/DevToolsActivePort")
    if f then
      port = tonumber(f:read("*l"))
      f:close()
      if port then break end
    end
    socket.sleep(0.1)
  end
  if not port then
    local log = pki.read(dir .. "/chromium.log")
    b:stop()
    return nil, "chromium did not open its DevTools port: " .. log:sub(1, 500)
  end
  local list
  for _ = 1, 50 do
    local body = http_get(port, "/json/list")
    list = body and json.decode(body)
    if list and #list > 0 then break end
    socket.sleep(0.1)
  end
  local target
  for _, t in ipairs(list or {}) do
    if t.type == "page" then target = t break end
  end
  if not target then
    b:stop()
    return nil, "chromium has no page to drive"
  end
  local path = target.webSocketDebuggerUrl:match("^ws://[^/]+(/.*)$")
  b.ws = ws_connect("127.0.0.1", port, path, 30)
  return b
end

return M
