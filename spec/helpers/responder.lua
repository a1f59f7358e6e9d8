--- A stand-in server for what no library here can serve any more (SSLv2,
-- SSL 3.0, export and RC4 suites) and for broken peers. A separate
-- process: lua5.4 spec/helpers/responder.lua PORT 'CONFIG' listens on
-- 127.0.0.1:PORT and answers each client's first flight as such a server
-- does, until it is killed. It shares no code with tlsharden: its byte
-- layouts are written here from SSL 3.0 (RFC 6101), TLS 1.0-1.2 (RFC 2246,
-- 4346, 5246) and the SSLv2 specification.
--
-- CONFIG is a Lua table:
--   mode = "tls" (default) | "sslv2" | "silent" | "close" | "close_mid" |
--          "garbage" | "huge_record" | "http" | "truncated" | "slow" | "xmpp"
--   features = "<stream:features>...</stream:features>"  -- what "xmpp" mode
--            offers after its stream header (RFC 6120), then it waits
--   versions = { "sslv3", "tlsv1" }   -- what "tls" mode negotiates
--   suites = { { 0x0003, "rsa_export" }, { 0x0004, "rsa" }, ... }  -- kx:
--            rsa, rsa_export, dhe, ecdhe; in the server's order
--   preference = "server" | "client"
--   cert = "path/to/leaf.der"
--   dh_bits = 1024                     -- DHE prime size
--   compression = true                 -- accept deflate when offered
--   secure_renegotiation = true        -- answer the SCSV / extension
--   fallback_scsv = true               -- refuse TLS_FALLBACK_SCSV downgrades
--   sslv2_kinds = { 0x010080, ... }    -- what "sslv2" mode offers
--   on_sslv2 = "close" | "alert"       -- "tls" mode's answer to an SSLv2 hello
local socket = require "socket"
local struct = require "spec.helpers.struct"

local port = assert(tonumber(arg[1]), "usage: responder.lua PORT CONFIG")
local config = assert(load("return " .. (arg[2] or "{}"), "config", "t", {}))()
local mode = config.mode or "tls"

local WIRE = { sslv3 = 0x0300, tlsv1 = 0x0301, tlsv1_1 = 0x0302, tlsv1_2 = 0x0303 }

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local cert = config.cert and read_file(config.cert) or ("\48\130\1\0" .. random_bytes(256))

-- ---- writing ----

local function record(content_type, version, body)
  return struct.pack(">B I2 s2", content_type, version, body)
end
local function handshake(msg_type, body)
  return struct.pack(">B I3", msg_type, #body) .. body
end
local function alert(version, description)
  return record(21, version, string.char(2, description))
end

-- ---- reading the client's first flight ----

-- Read exactly n bytes or nil.
local function read(client, n)
  local data = client:receive(n)
  return data
end

local function parse_client_hello(body)
  local h = {}
  local p
  h.version, h.random, p = struct.unpack(">I2 c32", body)
  local sid_len = body:byte(p)
  p = p + 1 + sid_len
  local n
  n, p = struct.unpack(">I2", body, p)
  h.suites = {}
  for i = 0, n / 2 - 1 do h.suites[#h.suites + 1] = struct.unpack(">I2", body, p + 2 * i) end
  p = p + n
  local cn = body:byte(p)
  h.compression = { body:byte(p + 1, p + cn) }
  p = p + 1 + cn
  h.extensions = {}
  if p < #body then
    local total
    total, p = struct.unpack(">I2", body, p)
    local stop = p + total
    while p < stop do
      local t, data
      t, data, p = struct.unpack(">I2 s2", body, p)
      h.extensions[t] = data
    end
  end
  return h
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- ---- the TLS server ----

local function choose_version(client_version)
  local best
  for _, name in ipairs(config.versions or { "tlsv1" }) do
    local v = WIRE[name]
    if v <= client_version and (not best or v > best) then best = v end
  end
  return best
end

local function choose_suite(offered)
  local ours = config.suites or {}
  if config.preference == "client" then
    for _, id in ipairs(offered) do
      for _, s in ipairs(ours) do if s[1] == id then return s end end
    end
  else
    for _, s in ipairs(ours) do
      if has(offered, s[1]) then return s end
    end
  end
end

local function server_key_exchange(version, kx)
  local params
  if kx == "dhe" then
    local bytes = math.floor((config.dh_bits or 2048) / 8)
    params = struct.pack(">s2 s2 s2", "\255" .. random_bytes(bytes - 1), "\2", random_bytes(bytes))
  elseif kx == "ecdhe" then
    params = struct.pack(">B I2 s1", 3, config.group or 23, "\4" .. random_bytes(64))
  elseif kx == "rsa_export" then
    params = struct.pack(">s2 s2", "\192" .. random_bytes(63), "\1\0\1")
  else
    return ""
  end
  local signature = random_bytes(256)
  if version >= 0x0303 then
    return handshake(12, params .. struct.pack(">I2 s2", 0x0401, signature))
  end
  return handshake(12, params .. struct.pack(">s2", signature))
end

local function answer_tls(client, header)
  local _, record_version, length = struct.unpack(">B I2 I2", header)
  local payload = read(client, length)
  if not payload or payload:byte(1) ~= 1 then return end
  local hello = parse_client_hello(payload:sub(5))
  local version = choose_version(hello.version)
  if not version then
    -- SSL 3.0 has no protocol_version alert
    client:send(alert(record_version, record_version == 0x0300 and 40 or 70))
    return
  end
  local highest = 0
  for _, name in ipairs(config.versions or {}) do highest = math.max(highest, WIRE[name]) end
  if config.fallback_scsv and has(hello.suites, 0x5600) and hello.version < highest then
    client:send(alert(version, 86))
    return
  end
  local suite = choose_suite(hello.suites)
  if not suite then
    client:send(alert(version, 40))
    return
  end
  local compression = 0
  if config.compression and has(hello.compression, 1) then compression = 1 end
  local extensions = {}
  local asked_reneg = has(hello.suites, 0x00FF) or hello.extensions[0xFF01]
  if config.secure_renegotiation and asked_reneg then
    extensions[#extensions + 1] = struct.pack(">I2 s2", 0xFF01, "\0")
  end
  if suite[2] == "ecdhe" then
    extensions[#extensions + 1] = struct.pack(">I2 s2", 11, "\1\0")
  end
  local sh = struct.pack(">I2", version) .. random_bytes(32) .. struct.pack(">s1 I2 B",
    config.session_id and random_bytes(32) or "", suite[1], compression)
  if #extensions > 0 then sh = sh .. struct.pack(">s2", table.concat(extensions)) end
  local flight = handshake(2, sh)
    .. handshake(11, struct.pack(">s3", struct.pack(">s3", cert)))
    .. server_key_exchange(version, suite[2])
    .. handshake(14, "")
  client:send(record(22, version, flight))
end

-- ---- the SSLv2 server ----

local function answer_sslv2(client, header)
  local length = (header:byte(1) - 0x80) * 256 + header:byte(2)
  local rest = read(client, length - 1)
  if not rest then return end
  local body = header:sub(3) .. rest
  local msg, _, specs_len, sid_len, challenge_len = struct.unpack(">B I2 I2 I2 I2", body)
  if msg ~= 1 then return end
  local specs = body:sub(10, 9 + specs_len)
  local common = {}
  for i = 1, #specs, 3 do
    local kind = struct.unpack(">I3", specs, i)
    if has(config.sslv2_kinds or {}, kind) then common[#common + 1] = struct.pack(">I3", kind) end
  end
  _ = sid_len + challenge_len
  local reply
  if #common == 0 then
    reply = struct.pack(">B I2", 0, 0x0001)  -- ERROR: NO-CIPHER-ERROR
  else
    local kinds = table.concat(common)
    local connection_id = random_bytes(16)
    reply = struct.pack(">B B B I2 I2 I2 I2", 4, 0, 1, 0x0002, #cert, #kinds, #connection_id)
      .. cert .. kinds .. connection_id
  end
  client:send(string.char(0x80 + math.floor(#reply / 256), #reply % 256) .. reply)
end

-- ---- one client ----

local function wait_for_close(client, seconds)
  client:settimeout(seconds)
  client:receive("*a")
end

local function serve(client)
  client:settimeout(5)
  local header = read(client, mode == "sslv2" and 3 or 5)
  if mode ~= "tls" and mode ~= "sslv2" and not header then return end
  if mode == "silent" then
    wait_for_close(client, 30)
  elseif mode == "close" then
    return
  elseif mode == "close_mid" then
    client:send(("\22\3\3\0\74\2\0\0\70\3\3" .. random_bytes(20)))
  elseif mode == "garbage" then
    client:send("\0\1" .. random_bytes(62))
  elseif mode == "huge_record" then
    client:send("\22\3\3\255\255" .. random_bytes(100))
    wait_for_close(client, 30)
  elseif mode == "http" then
    client:send("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nBad Request")
  elseif mode == "truncated" then
    client:send("\22\3\3\0\200" .. random_bytes(20))
    wait_for_close(client, 30)
  elseif mode == "slow" then
    local sh = "\22\3\3\0\74\2\0\0\70\3\3" .. random_bytes(70)
    for i = 1, #sh do
      if not client:send(sh:sub(i, i)) then return end
      socket.sleep(0.5)
    end
  elseif mode == "xmpp" then
    -- the client's stream header, then ours and the configured features
    local got = header
    while not got:find("<stream:stream[^>]*>") and #got < 4096 do
      local more = client:receive(1)
      if not more then return end
      got = got .. more
    end
    client:send("<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
      .. " xmlns:stream='http://etherx.jabber.org/streams' id='responder' from='"
      .. (config.from or "localhost") .. "' version='1.0'>" .. (config.features or "<stream:features/>"))
    wait_for_close(client, 5)
  elseif mode == "sslv2" then
    if header and header:byte(1) >= 0x80 and header:byte(3) == 1 then answer_sslv2(client, header) end
  elseif header then
    if header:byte(1) >= 0x80 then
      if config.on_sslv2 == "alert" then client:send(alert(0x0300, 40)) end
    elseif header:byte(1) == 22 then
      answer_tls(client, header)
      wait_for_close(client, 5)
    end
  end
end

math.randomseed(os.time())
local server = assert(socket.bind("127.0.0.1", port))
while true do
  local client = server:accept()
  if client then
    pcall(serve, client)
    client:close()
  end
end
