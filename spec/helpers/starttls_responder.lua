#!/usr/bin/env lua5.4
-- An XMPP server with STARTTLS for the STARTTLS injection check, behaving
-- on the wire as the two kinds of server do (the CVE-2011-0411 class, as
-- in Postfix before 2.8.4): one reads its socket into a buffer, handles
-- <starttls/>, starts TLS on the socket and goes on with what was left in
-- the buffer as if it had come inside TLS ("buffering"); the other drops
-- the buffer when TLS starts, as RFC 6120 section 5.4.3.3 has it
-- ("dropping"). TLS is LuaSec's (OpenSSL 3), with the given certificate.
-- Two more modes for servers that let no client into TLS: "failure"
-- answers <starttls/> with <failure/>, "no_tls" says <proceed/> and closes.
-- Connections are served one at a time; after its stream features the
-- server closes.
--
-- usage: lua5.4 starttls_responder.lua MODE PORT CERT KEY
-- It stops by itself after 120 s.
local socket = require "socket"
local ssl = require "ssl"

local mode, port, cert, key = arg[1], tonumber(arg[2]), arg[3], arg[4]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0.2)
local params = { mode = "server", protocol = "any", key = key, certificate = cert, options = { "all" } }

local HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
  .. " xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='localhost' version='1.0'>"
local TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"

-- Read from sock until pattern is in the buffer; returns the buffer.
local function read_until(sock, buf, pattern, seconds)
  local deadline = socket.gettime() + seconds
  while not buf:find(pattern) do
    if socket.gettime() > deadline or #buf > 65536 then return nil end
    sock:settimeout(0.1)
    local data, err, part = sock:receive(1)
    data = data or part
    if data and #data > 0 then buf = buf .. data
    elseif err == "closed" then return nil end
  end
  -- what else came in the same write
  sock:settimeout(0.05)
  while true do
    local data, _, part = sock:receive(4096)
    data = data or part
    if not data or #data == 0 then break end
    buf = buf .. data
  end
  return buf
end

local function serve(client)
  local buf = read_until(client, "", "<stream:stream[^>]*>", 5)
  if not buf then return end
  client:send(HEADER:format("before-tls") .. "<stream:features><starttls xmlns='" .. TLS_NS
    .. "'><required/></starttls></stream:features>")
  buf = read_until(client, "", "<starttls[^>]*/>", 5)
  if not buf then return end
  local _, stop = buf:find("<starttls[^>]*/>")
  local left = buf:sub(stop + 1)
  if mode == "failure" then
    -- RFC 6120 5.4.2.2: TLS cannot be started
    client:send("<failure xmlns='" .. TLS_NS .. "'/></stream:stream>")
    return
  end
  client:send("<proceed xmlns='" .. TLS_NS .. "'/>")
  if mode == "no_tls" then return end  -- <proceed/>, then no TLS at all
  local tls = ssl.wrap(client, params)
  if not tls then return end
  tls:settimeout(2)
  if not tls:dohandshake() then return end
  if mode == "buffering" then
    -- what followed <starttls/> is read as the stream's next stanza
    local id = left:match("<iq[^>]-id=['\"]([^'\"]+)['\"]")
    if id then tls:send(("<iq type='result' id='%s' from='localhost'/>"):format(id)) end
  end
  local again = read_until(tls, "", "<stream:stream[^>]*>", 5)
  if not again then return end
  tls:send(HEADER:format("after-tls") .. "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    .. "<mechanism>PLAIN</mechanism></mechanisms></stream:features>")
  socket.sleep(0.1)
  tls:close()
end

local started = socket.gettime()
while socket.gettime() - started < 120 do
  local client = server:accept()
  if client then
    pcall(serve, client)
    client:close()
  end
end
