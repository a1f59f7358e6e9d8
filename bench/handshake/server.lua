-- A LuaSec TLS server for the handshake benchmark: accepts connections on
-- 127.0.0.1:PORT, completes the handshake, closes. It stops by itself after
-- MAX_SECONDS (default 600) so a forgotten server cannot linger.
--
--   lua5.4 bench/handshake/server.lua PORT CERT KEY MODE [MAX_SECONDS]
--
-- MODE "prosody": the context Prosody 0.12 builds for c2s by default (its
--   core defaults and the Mozilla intermediate profile, merged in Prosody's
--   order by tlsharden.merge with order "prosody", which the specs compare
--   with Prosody's own util.sslconfig).
-- MODE "tlsharden": tlsharden.new_context with its defaults.
local socket = require "socket"
local ssl = require "ssl"
local tlsharden = require "tlsharden"

local port, cert, key, mode, max_seconds = tonumber(arg[1]), arg[2], arg[3], arg[4], tonumber(arg[5] or 600)
assert(port and cert and key and (mode == "prosody" or mode == "tlsharden"),
  "usage: server.lua PORT CERT KEY prosody|tlsharden [MAX_SECONDS]")

local ctx
local files = { mode = "server", certificate = cert, key = key }
if mode == "prosody" then
  local cfg = tlsharden.merge({ files, tlsharden.profile("intermediate"), tlsharden.profile("prosody") }, { order = "prosody" })
  ctx = assert(ssl.newcontext(cfg))
else
  ctx = tlsharden.new_context(files)
end

local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(1)
io.stdout:write("ready\n")
io.stdout:flush()
local deadline = socket.gettime() + max_seconds
while socket.gettime() < deadline do
  local client = server:accept()
  if client then
    client:settimeout(5)
    local conn = ssl.wrap(client, ctx)
    if conn then
      conn:dohandshake()
      conn:close()
    else
      client:close()
    end
  end
end
