#!/usr/bin/env lua5.4
-- A TLS server that behaves on the wire as vulnerable or broken servers
-- do, for the vulnerability specs: a proxy in front of a real
-- `openssl s_server` (OpenSSL 3) that forwards every byte, except where
-- the server it plays would have behaved differently:
--
--   heartbleed   OpenSSL 1.0.1 to 1.0.1f (ssl/t1_lib.c tls1_process_heartbeat):
--                the ServerHello answers a ClientHello's heartbeat extension
--                (mode peer_allowed_to_send); a HeartbeatRequest, even before
--                the handshake finishes, is answered with a HeartbeatResponse
--                of 1 + 2 + the claimed length + 16 bytes of padding, the
--                claimed length copied from where the request's payload
--                starts (here: a fixed pattern standing in for the process's
--                memory), sent as records of at most 16384 bytes
--                (ssl3_write_bytes); no check of the claimed length
--   heartbeat_fixed  OpenSSL 1.0.1g: the extension, and a request that claims
--                more than it carries is discarded without an answer
--   heartbeat_64k  a broken peer: answers any heartbeat with 64 KiB of records
--   ccs          OpenSSL before 0.9.8za/1.0.0m/1.0.1h (CVE-2014-0224,
--                ssl/s3_pkt.c ssl3_read_bytes): a ChangeCipherSpec before the
--                ClientKeyExchange is taken (the read state changes to keys
--                from an empty master secret), so the next record fails to
--                decrypt: a fatal bad_record_mac alert, in plaintext (the
--                write state is unchanged), and the connection closes
--   close_unknown  a broken peer: closes without an alert on a ClientHello
--                with an extension or suite it does not know (GREASE values)
--   robot        an RSA PKCS#1 v1.5 padding oracle (the ROBOT paper's
--                "strong oracle"): the ClientKeyExchange is decrypted with
--                OpenSSL's raw RSA (openssl pkeyutl, no padding, with KEY),
--                and each padding fault is answered its own way: wrong first
--                bytes with handshake_failure at once, a missing 0x00 with
--                decode_error, a misplaced 0x00 with illegal_parameter; a
--                valid padding (whatever the version in it) goes on to the
--                real server, where a forged Finished fails (bad_record_mac)
--                and a real client's handshake completes
--   ticketbleed  F5 BIG-IP's TLS stack (CVE-2016-9244): a ClientHello with a
--                session id shorter than 32 bytes and a session ticket the
--                server accepts gets a ServerHello whose session id is 32
--                bytes long: the client's id, then bytes of the server's
--                memory (here: the same stand-in pattern). Only the
--                ServerHello is as F5 sends it: the real server behind
--                hashed the short id into its Finished, so a client that
--                goes on fails there
--
-- usage: lua5.4 vuln_responder.lua MODE LISTEN_PORT UPSTREAM_PORT [KEY]
-- It prints "ready" once listening, and stops by itself after 120 s.
local socket = require "socket"

local mode, listen_port, upstream_port, key_file = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4]
local server = assert(socket.bind("127.0.0.1", listen_port))
server:settimeout(0)
io.stdout:write("ready\n")
io.stdout:flush()

local MEMORY = ("secret key material of another session; "):rep(2000)

local conns = {}

local function u16(s, i) return s:byte(i) * 256 + s:byte(i + 1) end
local function u24(s, i) return (s:byte(i) * 256 + s:byte(i + 1)) * 256 + s:byte(i + 2) end
-- (no bitwise operators: every Lua file of the repository loads on 5.2)
local function p16(n) return string.char(math.floor(n / 256) % 256, n % 256) end
local function p24(n) return string.char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256) end

local function record(t, version, payload)
  return string.char(t) .. p16(version) .. p16(#payload) .. payload
end

-- The extension types and the one suite a ClientHello record carries.
local function hello_facts(rec)
  local facts = { exts = {}, suites = {} }
  -- record(5) type(1) len(3) version(2) random(32)
  local i = 5 + 1 + 3 + 2 + 32 + 1
  if #rec < i then return facts end
  facts.sid = rec:sub(i + 1, i + rec:byte(i))
  i = i + rec:byte(i) + 1                  -- session id
  local n = u16(rec, i)
  for j = i + 2, i + 1 + n, 2 do facts.suites[#facts.suites + 1] = u16(rec, j) end
  i = i + 2 + n
  i = i + rec:byte(i) + 1                  -- compression
  if i + 1 > #rec then return facts end
  local stop = i + 2 + u16(rec, i)
  i = i + 2
  while i + 3 <= stop and i + 3 <= #rec do
    facts.exts[u16(rec, i)] = true
    i = i + 4 + u16(rec, i + 2)
  end
  return facts
end

local KNOWN_EXTS = { [0] = true, [5] = true, [10] = true, [11] = true, [13] = true, [15] = true, [16] = true,
  [22] = true, [23] = true, [35] = true, [43] = true, [45] = true, [51] = true, [65281] = true }

-- The first upstream record with a TLS 1.2-or-older ServerHello at its
-- start, with a heartbeat extension added.
local function add_heartbeat(rec)
  if rec:byte(1) ~= 22 or rec:byte(6) ~= 2 then return rec end
  local mlen = u24(rec, 7)
  local body = rec:sub(10, 9 + mlen)
  local i = 2 + 32 + 1
  i = i + body:byte(i) + 1 + 2 + 1          -- session id, suite, compression
  local exts = ""
  if i <= #body then exts = body:sub(i + 2, i + 1 + u16(body, i)) end
  -- TLS 1.3 (supported_versions): no heartbeat there
  local j = 1
  while j + 3 <= #exts do
    if u16(exts, j) == 43 then return rec end
    j = j + 4 + u16(exts, j + 2)
  end
  exts = exts .. p16(15) .. p16(1) .. "\1"
  local new_body = body:sub(1, i - 1) .. p16(#exts) .. exts
  local msg = "\2" .. p24(#new_body) .. new_body
  local payload = msg .. rec:sub(10 + mlen)
  return rec:sub(1, 3) .. p16(#payload) .. payload
end

-- The first upstream record with a ServerHello at its start, with the
-- session id made 32 bytes long where it echoes the client's shorter one.
local function long_session_id(rec, sid)
  if rec:byte(1) ~= 22 or rec:byte(6) ~= 2 or #sid == 0 or #sid >= 32 then return rec end
  local mlen = u24(rec, 7)
  local body = rec:sub(10, 9 + mlen)
  local at = 2 + 32 + 1
  if body:sub(at + 1, at + body:byte(at)) ~= sid then return rec end
  local long = sid .. MEMORY:sub(1, 32 - #sid)
  local new_body = body:sub(1, at - 1) .. string.char(32) .. long .. body:sub(at + 1 + #sid)
  local payload = "\2" .. p24(#new_body) .. new_body .. rec:sub(10 + mlen)
  return rec:sub(1, 3) .. p16(#payload) .. payload
end

-- The raw RSA decryption of an encrypted premaster (no padding checks).
local function rsa_raw_decrypt(ciphertext)
  local dir = os.tmpname()
  local f = assert(io.open(dir, "wb"))
  f:write(ciphertext)
  f:close()
  os.execute(("openssl pkeyutl -decrypt -inkey '%s' -pkeyopt rsa_padding_mode:none -in '%s' -out '%s.out' 2>/dev/null")
    :format(key_file, dir, dir))
  local g = io.open(dir .. ".out", "rb")
  local plain = g and g:read("a")
  if g then g:close() end
  os.remove(dir)
  os.remove(dir .. ".out")
  return plain
end

-- Which fault a PKCS#1 v1.5 block has, as an oracle sees it.
local function padding_fault(block)
  if not block or #block < 60 then return "broken" end
  if block:byte(1) ~= 0 or block:byte(2) ~= 2 then return "bad_first_bytes" end
  local zero = block:find("\0", 3, true)
  if not zero then return "no_zero" end
  if zero ~= #block - 48 then return "zero_misplaced" end
  return "valid"
end

local ROBOT_ALERTS = { bad_first_bytes = 40, no_zero = 50, zero_misplaced = 47 }
-- Suites with RSA key exchange (the ClientKeyExchange is an encrypted premaster).
local RSA_KX = {}
for _, id in ipairs { 0x0004, 0x0005, 0x000A, 0x002F, 0x0035, 0x003C, 0x003D, 0x0041, 0x0084, 0x0096, 0x009C,
  0x009D, 0x00BA, 0x00C0, 0xC09C, 0xC09D, 0xC0A0, 0xC0A1 } do RSA_KX[id] = true end

-- The suite of a ServerHello at the start of an upstream record, or nil.
local function server_hello_suite(rec)
  if #rec < 5 + 4 + 2 + 32 + 1 or rec:byte(1) ~= 22 or rec:byte(6) ~= 2 then return nil end
  local i = 5 + 4 + 2 + 32 + 1
  local at = i + rec:byte(i) + 1
  if #rec < at + 1 then return nil end
  return u16(rec, at)
end

local function close(c)
  if c.closed then return end
  c.closed = true
  c.client:close()
  if c.up then c.up:close() end
end

local function send(sock, data)
  local i = 1
  while i <= #data do
    local n, err, part = sock:send(data, i)
    if n then i = n + 1 elseif err == "timeout" then i = part + 1; socket.sleep(0.001) else return false end
  end
  return true
end

-- One client record: forward it, or answer it as the played server would.
local function client_record(c, rec)
  local t, version = rec:byte(1), u16(rec, 2)
  if not c.hello_seen then
    c.hello_seen = true
    local f = hello_facts(rec)
    c.hb_offered = f.exts[15]
    c.sid = f.sid
    if mode == "close_unknown" then
      for e in pairs(f.exts) do if not KNOWN_EXTS[e] then return close(c) end end
      for _, s in ipairs(f.suites) do
        -- RFC 8701: 0x?A?A with both bytes alike
        if math.floor(s / 256) == s % 256 and s % 16 == 10 then return close(c) end
      end
    end
    return send(c.up, rec)
  end
  if t == 24 and c.hb_offered then
    if mode == "heartbleed" and rec:byte(6) == 1 then
      local claimed = u16(rec, 7)
      local answer = "\2" .. p16(claimed) .. MEMORY:sub(1, claimed) .. ("\0"):rep(16)
      for i = 1, #answer, 16384 do send(c.client, record(24, version, answer:sub(i, i + 16383))) end
    elseif mode == "heartbeat_64k" then
      local chunk = record(24, version, ("\2\255\255" .. ("\0"):rep(16381)))
      for _ = 1, 4 do send(c.client, chunk) end
    end
    return  -- heartbeat_fixed: discarded
  end
  if mode == "robot" and t == 22 and rec:byte(6) == 16 and not c.fault and RSA_KX[c.suite or 0] then
    -- the ClientKeyExchange: type(1) length(3) premaster length(2) premaster
    local fault = padding_fault(rsa_raw_decrypt(rec:sub(12)))
    c.fault = fault
    if ROBOT_ALERTS[fault] then
      send(c.client, record(21, version, "\2" .. string.char(ROBOT_ALERTS[fault])))
      return close(c)
    end
    -- a valid padding goes on to the real server: a real client's
    -- handshake completes, a forged Finished fails there
  end
  if mode == "ccs" and not c.kx_seen then
    if t == 22 and rec:byte(6) == 16 then c.kx_seen = true
    elseif t == 20 and not c.ccs_taken then
      c.ccs_taken = true
      return
    elseif c.ccs_taken then
      send(c.client, record(21, version, "\2\20"))
      return close(c)
    end
  end
  return send(c.up, rec)
end

local function pump_client(c)
  local data, err, part = c.client:receive(65536)
  data = data or part
  if data and #data > 0 then
    c.cbuf = c.cbuf .. data
    -- an SSLv2 hello: pass everything through
    if not c.hello_seen and c.cbuf:byte(1) >= 0x80 then
      c.raw = true
    end
    if c.raw then
      send(c.up, c.cbuf)
      c.cbuf = ""
    else
      while #c.cbuf >= 5 do
        local len = u16(c.cbuf, 4)
        if #c.cbuf < 5 + len then break end
        local rec = c.cbuf:sub(1, 5 + len)
        c.cbuf = c.cbuf:sub(6 + len)
        client_record(c, rec)
        if c.closed then return end
      end
    end
  end
  if err == "closed" then close(c) end
end

local function pump_upstream(c)
  local data, err, part = c.up:receive(65536)
  data = data or part
  if data and #data > 0 then
    if not c.suite and mode == "robot" then c.suite = server_hello_suite(data) end
    local rewrite = not c.sh_done and (c.hb_offered and (mode == "heartbleed" or mode == "heartbeat_fixed"
        or mode == "heartbeat_64k") and add_heartbeat
      or mode == "ticketbleed" and function(rec) return long_session_id(rec, c.sid or "") end)
    if rewrite then
      c.ubuf = c.ubuf .. data
      if #c.ubuf >= 5 and #c.ubuf >= 5 + u16(c.ubuf, 4) then
        local n = 5 + u16(c.ubuf, 4)
        local first = rewrite(c.ubuf:sub(1, n))
        send(c.client, first .. c.ubuf:sub(n + 1))
        c.ubuf, c.sh_done = "", true
      end
    else
      send(c.client, data)
    end
  end
  if err == "closed" then close(c) end
end

local started = socket.gettime()
while socket.gettime() - started < 120 do
  local client = server:accept()
  if client then
    client:settimeout(0)
    local up = socket.tcp()
    up:settimeout(2)
    if up:connect("127.0.0.1", upstream_port) then
      up:settimeout(0)
      conns[#conns + 1] = { client = client, up = up, cbuf = "", ubuf = "" }
    else
      client:close()
    end
  end
  local socks, owner = { server }, {}
  for _, c in ipairs(conns) do
    if not c.closed then
      socks[#socks + 1] = c.client
      socks[#socks + 1] = c.up
      owner[c.client], owner[c.up] = c, c
    end
  end
  local readable = socket.select(socks, nil, 0.05)
  for _, s in ipairs(readable or {}) do
    local c = owner[s]
    if c and not c.closed then
      if s == c.client then pump_client(c) else pump_upstream(c) end
    end
  end
  local live = {}
  for _, c in ipairs(conns) do if not c.closed then live[#live + 1] = c end end
  conns = live
end
