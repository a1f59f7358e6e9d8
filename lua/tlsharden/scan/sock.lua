--- LuaSocket-style sockets over a scan scheduler (tlsharden.scan.net), so
-- that the XMPP stream layer (tlsharden.xmpp) and LuaSec run inside a
-- scheduler task without holding up the others: every wait parks the task
-- on the socket with a deadline. Also the full TLS handshake with LuaSec
-- on a scheduler connection (after STARTTLS or on a direct TLS port).
local ssl = require "ssl"
local net = require "tlsharden.scan.net"

local M = {}

-- "wantread"/"wantwrite" are LuaSec's words for a non-blocking socket
-- that is not ready; "timeout" LuaSocket's.
local NOT_READY = { timeout = "read", wantread = "read", wantwrite = "write" }

--- A plain scheduler connection (sched:connect) seen as a LuaSocket TCP
-- socket: send(data), receive(n) (exactly n bytes, or nil, err, partial),
-- settimeout(t) (seconds for each call; 0: take what is there).
function M.plain(conn)
  local s = { conn = conn, timeout = nil }
  function s.settimeout(_, t) s.timeout = t end
  function s.send(_, data)
    local ok, err = conn:send(data, s.timeout)
    if ok then return #data end
    return nil, err, 0
  end
  function s.receive(_, n)
    local parts, got = {}, 0
    while got < n do
      local data, err = conn:receive(n - got, s.timeout)
      if not data then return nil, err, table.concat(parts) end
      parts[#parts + 1] = data
      got = got + #data
      if s.timeout == 0 and got < n then return nil, "timeout", table.concat(parts) end
    end
    return table.concat(parts)
  end
  function s.close() conn:close() end
  return s
end

--- A LuaSec connection in a scheduler task: the same methods, each wait
-- parked on the socket (LuaSec's own buffer is drained first: select
-- cannot see bytes it has already decrypted).
function M.tls(sched, tls)
  local s = { timeout = nil }
  tls:settimeout(0)
  local function park(kind)
    return sched:wait(tls, kind, s.timeout)
  end
  function s.settimeout(_, t) s.timeout = t end
  function s.send(_, data)
    local i = 1
    while i <= #data do
      local last, err, partial = tls:send(data, i)
      if last then return #data end
      local kind = NOT_READY[err]
      if not kind then return nil, err, i - 1 end
      i = (partial or i - 1) + 1
      if i <= #data and (s.timeout == 0 or not park(kind)) then return nil, "timeout", i - 1 end
    end
    return #data
  end
  function s.receive(_, n)
    local parts, got = {}, 0
    while got < n do
      local data, err, partial = tls:receive(n - got)
      data = data or partial
      if data and #data > 0 then
        parts[#parts + 1] = data
        got = got + #data
      end
      if got < n then
        local kind = NOT_READY[err]
        if not kind then return nil, err or "closed", table.concat(parts) end
        if not tls:dirty() and (s.timeout == 0 or not park(kind)) then
          return nil, "timeout", table.concat(parts)
        end
      end
    end
    return table.concat(parts)
  end
  function s.close() tls:close() end
  return s
end

--- The full TLS handshake with LuaSec on a scheduler connection, within
-- timeout seconds. opts: server_name (SNI), alpn (a list), cafile, capath.
-- Returns a table: ok, error (LuaSec's reason), tls (the LuaSec connection,
-- after ok), protocol, cipher (OpenSSL's names), alpn (negotiated), chain
-- (the peer's certificates, LuaSec objects, leaf first).
function M.handshake(sched, conn, timeout, opts)
  local out = {}
  local ctx, err = ssl.newcontext {
    mode = "client", protocol = "any", verify = "none", options = { "all" },
    -- security level 0: see what a weak server serves rather than refuse it
    ciphers = "ALL:COMPLEMENTOFALL:@SECLEVEL=0",
    alpn = opts.alpn,
  }
  if not ctx then
    out.error = tostring(err)
    return out
  end
  local tcp = conn.tcp
  if not tcp then
    out.error = "closed"
    return out
  end
  local tls
  tls, err = ssl.wrap(tcp, ctx)
  if not tls then
    out.error = tostring(err)
    return out
  end
  -- LuaSec owns the descriptor now; the scheduler's connection keeps its slot
  conn.tls = tls
  if opts.server_name then tls:sni(opts.server_name) end
  tls:settimeout(0)
  local deadline = net.now() + timeout
  while true do
    local ok, herr = tls:dohandshake()
    if ok then break end
    local kind = NOT_READY[herr]
    if not kind then
      out.error = tostring(herr)
      return out
    end
    if not sched:wait(tls, kind, math.max(0, deadline - net.now())) then
      out.error = "timeout"
      return out
    end
  end
  out.ok, out.tls = true, tls
  local info = tls:info() or {}
  out.protocol, out.cipher = info.protocol, info.cipher
  out.alpn = tls.getalpn and tls:getalpn() or nil
  out.chain = tls:getpeerchain() or {}
  return out
end

--- The DNS exchange of tlsharden.scan.dns resolvers (their `exchange`
-- option; dns.socket_exchange runs it in a scheduler of its own): one
-- query over UDP or TCP inside a scheduler task, every wait parked with the
-- query's timeout. req: host, port, family, transport, packet, timeout,
-- accept; returns the response bytes, or nil and why.
function M.dns_exchange(sched)
  local socket = require "socket"
  return function(req)
    local deadline = net.now() + req.timeout
    local function left() return math.max(0, deadline - net.now()) end
    if req.transport == "udp" then
      local u = assert(req.family == "inet6" and socket.udp6() or socket.udp())
      u:settimeout(0)
      local ok, err = u:setpeername(req.host, req.port)
      if ok then ok, err = u:send(req.packet) end
      while ok do
        local data, rerr = u:receive()
        if data then
          if req.accept(data) then
            u:close()
            return data
          end
        elseif rerr ~= "timeout" then
          ok, err = nil, rerr
        elseif left() == 0 or not sched:wait(u, "read", left()) then
          ok, err = nil, "timeout"
        end
      end
      u:close()
      return nil, (err == "connection refused") and "refused" or err
    end
    local conn, err = sched:connect(req.host, req.port, left())
    if not conn then return nil, err == "connection refused" and "refused" or err end
    local n = #req.packet
    local ok
    ok, err = conn:send(string.char(math.floor(n / 256), n % 256) .. req.packet, left())
    local data
    if ok then
      local s = M.plain(conn)
      s:settimeout(left())
      data, err = s:receive(2)
      if data then
        s:settimeout(left())
        data, err = s:receive(data:byte(1) * 256 + data:byte(2))
      end
    end
    conn:close()
    return data, err
  end
end

return M
