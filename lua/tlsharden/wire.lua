--- tlsharden.wire: the wire formats the scanner speaks, pure (bytes in,
-- tables or bytes out, no I/O): the cipher suite and group registries,
-- ClientHellos from SSLv2 to TLS 1.3 (written, and read back), a server's
-- first flight, DNS queries and answers, and TLSA records matched against a chain. See
-- docs/reference/wire.md.
--
--   local wire = require "tlsharden.wire"
--   local hello = wire.client_hello { server_name = "example.org" }
--   local flight = wire.parse_server_flight(bytes)
return require("tlsharden.core").wire
