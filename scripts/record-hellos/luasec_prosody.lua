-- A client for scripts/record-hellos.lua: Prosody 0.12's outgoing s2s
-- connection, with the context Prosody's own certmanager builds (its
-- defaults, the default tls_profile "intermediate", mode "client", and the
-- extra layers 0.12's mod_tls passes for s2sout: verify peer and
-- client_once, ALPN xmpp-server), through LuaSec.
--   lua5.4 luasec_prosody.lua PROSODY_DIR HOST PORT TRANSPORT FROM TO
-- TRANSPORT: starttls (0.12 sends no SNI after <proceed/>) or direct (SNI
-- TO, as mod_s2s asks for the xmpps-server service).
local src, host, port, transport, from, to = table.unpack(arg, 1, 6)
package.path = src .. "/?.lua;" .. package.path
package.cpath = src .. "/?.so;" .. package.cpath
local socket = require "socket"
local ssl = require "ssl"

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
assert(c:connect(host, tonumber(port)))
if transport == "starttls" then
  assert(c:send(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback'"
    .. " xmlns:stream='http://etherx.jabber.org/streams' from='%s' to='%s' version='1.0'>"):format(from, to)))
  local buf = ""
  while not buf:find("</stream:features>", 1, true) do buf = buf .. assert(c:receive(1)) end
  assert(c:send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
  while not buf:find("<proceed", 1, true) do buf = buf .. assert(c:receive(1)) end
  while buf:sub(-1) ~= ">" do buf = buf .. assert(c:receive(1)) end
end
local conn = assert(ssl.wrap(c, ctx))
if transport == "direct" then conn:sni(to) end
print(conn:dohandshake())
