-- A client for scripts/record-hellos.lua: Prosody 0.12's outgoing s2s
-- connection, with the context Prosody's own certmanager builds (its
-- defaults, the default tls_profile "intermediate", mode "client", and the
-- extra layers 0.12's mod_tls passes for s2sout: verify peer and
-- client_once, ALPN xmpp-server), through LuaSec.
--   lua5.4 luasec_prosody.lua PROSODY_DIR HOST PORT TRANSPORT FROM TO [handshake]
-- TRANSPORT: starttls (0.12 sends no SNI after <proceed/>) or direct (SNI
-- TO, as mod_s2s asks for the xmpps-server service).
-- With "handshake" it completes the handshake and prints one line for
-- spec/helpers/real_clients.lua:
--   RESULT ok protocol=TLSv1.3 suite=TLS_AES_128_GCM_SHA256 [group=x25519] [dh_bits=N]   or   RESULT fail reason=...
-- The certificate is verified as Prosody verifies it, and, as in Prosody,
-- a failed verification does not stop the handshake (lsec_continue). The
-- group and the DH size come from tlsharden.forward_secrecy where tlsharden
-- can be loaded (LUA_PATH, LUA_CPATH), else they are left out.
local src, host, port, transport, from, to, mode = table.unpack(arg, 1, 7)
local handshake = mode == "handshake"
package.path = src .. "/?.lua;" .. package.path
package.cpath = src .. "/?.so;" .. package.cpath
local socket = require "socket"
local ssl = require "ssl"

local function fail(reason)
  if not handshake then error(reason, 0) end
  print("RESULT fail reason=" .. tostring(reason):gsub("%s+", " "))
  os.exit(0)
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -m 700 " .. dir))
local cfg_path = dir .. "/prosody.cfg.lua"
local f = assert(io.open(cfg_path, "w"))
f:write(('VirtualHost "%s"\n'):format(from))
f:close()
_G.prosody = { paths = { config = dir, data = dir }, events = require("util.events").new(), hosts = {},
  platform = "posix", process_type = "prosodyctl" }
local configmanager = require "core.configmanager"
assert(configmanager.load(cfg_path))
local certmanager = require "core.certmanager"
-- mod_tls of 0.12: the s2sout context
local NULL = {}
local host_s2s = configmanager.rawget(from, "s2s_ssl") or NULL
local host_ssl = configmanager.rawget(from, "ssl") or NULL
local global_s2s = configmanager.rawget("*", "s2s_ssl") or NULL
local ctx = assert(certmanager.create_context(from, "client", host_s2s, host_ssl, global_s2s,
  { verify = { "peer", "client_once" } }, { alpn = "xmpp-server" }))
os.remove(cfg_path)
os.remove(dir)

local c = assert(socket.tcp())
c:settimeout(10)
local connected, err = c:connect(host, tonumber(port))
if not connected then fail(err) end
local function receive()
  local byte, e = c:receive(1)
  if not byte then fail("the server closed the stream: " .. tostring(e)) end
  return byte
end
if transport == "starttls" then
  assert(c:send(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback'"
    .. " xmlns:stream='http://etherx.jabber.org/streams' from='%s' to='%s' version='1.0'>"):format(from, to)))
  local buf = ""
  while not buf:find("</stream:features>", 1, true) do buf = buf .. receive() end
  assert(c:send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
  while not buf:find("<proceed", 1, true) do buf = buf .. receive() end
  while buf:sub(-1) ~= ">" do buf = buf .. receive() end
end
local conn = assert(ssl.wrap(c, ctx))
if transport == "direct" then conn:sni(to) end
local ok, hs_err = conn:dohandshake()
if not handshake then
  print(ok, hs_err)
  return
end
if not ok then fail(hs_err) end
local info = conn:info()
local line = ("RESULT ok protocol=%s suite=%s"):format(info.protocol, info.cipher)
local have, tlsharden = pcall(require, "tlsharden")
if have then
  local _, details = tlsharden.forward_secrecy(conn)
  if details.group then line = line .. " group=" .. details.group end
  if details.cipher and details.cipher.kx == "DHE" and details.group_bits then
    line = line .. " dh_bits=" .. details.group_bits
  end
end
print(line)
conn:close()
