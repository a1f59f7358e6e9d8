--- Real TLS handshakes over 127.0.0.1 inside one process: a listening
-- socket, a client that connects to it, and both handshakes stepped in turn
-- with non-blocking sockets until each side has finished or failed.
local socket = require "socket"
local ssl = require "ssl"

local tls = {}

--- Handshake a server context against a client context. Either may be a
-- Prosody 13 context object, which wraps the socket itself (ctx:wrap), as
-- Prosody's network backends call it. Returns a result table { ok, server, client, server_err, client_err };
-- call result:close() when done.
function tls.handshake(server_ctx, client_ctx, opts)
  opts = opts or {}
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  local tcp_client = assert(socket.tcp())
  tcp_client:settimeout(5)
  assert(tcp_client:connect("127.0.0.1", port))
  listener:settimeout(5)
  local tcp_server = assert(listener:accept())
  listener:close()

  local function wrap(sock, ctx)
    if type(ctx) == "table" and ctx.wrap then return assert(ctx:wrap(sock)) end
    return assert(ssl.wrap(sock, ctx))
  end
  local server = wrap(tcp_server, server_ctx)
  local client = wrap(tcp_client, client_ctx)
  if opts.sni then client:sni(opts.sni) end
  server:settimeout(0)
  client:settimeout(0)

  local result = { server = server, client = client }
  local s_done, c_done = false, false
  local deadline = socket.gettime() + (opts.timeout or 5)
  while not (s_done and c_done) do
    if not s_done then
      local ok, err = server:dohandshake()
      if ok then s_done = true
      elseif err ~= "wantread" and err ~= "wantwrite" then
        result.server_err = err; s_done = true
      end
    end
    if not c_done then
      local ok, err = client:dohandshake()
      if ok then c_done = true
      elseif err ~= "wantread" and err ~= "wantwrite" then
        result.client_err = err; c_done = true
      end
    end
    if socket.gettime() > deadline then
      result.server_err = result.server_err or "timeout"
      result.client_err = result.client_err or "timeout"
      break
    end
    if not (s_done and c_done) then socket.sleep(0.001) end
  end
  result.ok = result.server_err == nil and result.client_err == nil
  function result.close()
    server:close()
    client:close()
  end
  return result
end

--- A client context with the given overrides; old protocols need the
-- client's security level lowered, as OpenSSL 3 refuses them otherwise.
function tls.client(cfg)
  local c = { mode = "client", protocol = "any", verify = "none" }
  for k, v in pairs(cfg or {}) do c[k] = v end
  return assert(ssl.newcontext(c))
end

--- A server context for a certificate from spec/helpers/pki.lua, with
-- overrides.
function tls.server(cert, cfg)
  local c = { mode = "server", protocol = "any", key = cert.key, certificate = cert.cert }
  for k, v in pairs(cfg or {}) do c[k] = v end
  return assert(ssl.newcontext(c))
end

return tls
