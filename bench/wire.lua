-- The scanner's wire layer: ClientHellos written and server first flights
-- parsed per second (the probe does one of each per connection).
--   lua5.4 bench/wire.lua [SECONDS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local wire = require "tlsharden.wire"
local tlsharden = require "tlsharden"
local struct = dofile(bench.root .. "/spec/helpers/struct.lua")

local seconds = tonumber(arg[1]) or 3

-- every pre-1.3 suite of the registry, in 128-suite hellos as the probe sends them
local all = {}
for _, s in ipairs(wire.suites()) do
  if not s.scsv and not s.tls13 and not s.sslv2 then all[#all + 1] = s.id end
end
local chunk = { table.unpack(all, 1, 128) }

-- A TLS 1.2 first flight as a server sends it: ServerHello, a 1 KiB
-- certificate, an ECDHE ServerKeyExchange, ServerHelloDone, one record each.
local function record(payload) return struct.pack(">B I2 s2", 22, 0x0303, payload) end
local function hs(t, body) return struct.pack(">B I3", t, #body) .. body end
local flight = record(hs(2, "\3\3" .. ("r"):rep(32) .. "\0\192\47\0" .. struct.pack(">s2",
    struct.pack(">I2 s2 I2 s2 I2 s2", 0xFF01, "\0", 23, "", 11, "\1\0"))))
  .. record(hs(11, struct.pack(">s3", struct.pack(">s3", ("c"):rep(1024)))))
  .. record(hs(12, struct.pack(">B I2 s1 I2 s2", 3, 29, ("k"):rep(32), 0x0804, ("s"):rep(256))))
  .. record(hs(14, ""))
assert(wire.parse_server_flight(flight).server_hello_done)

local rows = {
  { "client_hello TLS 1.2, 128 suites", function() wire.client_hello { version = "tlsv1_2", suites = chunk } end },
  { "client_hello TLS 1.3, x25519 key share", function() wire.client_hello { supported_versions = { "tlsv1_3" } } end },
  { "client_hello TLS 1.3, no key share", function() wire.client_hello { supported_versions = { "tlsv1_3" }, key_shares = {} } end },
  { "client_hello SSLv2", function() wire.client_hello { version = "sslv2" } end },
  { ("parse_server_flight TLS 1.2 (%d bytes)"):format(#flight), function() wire.parse_server_flight(flight) end },
  { "suites() (the whole registry)", function() wire.suites() end },
}
print("| operation | per second |")
print("| --- | ---: |")
for _, r in ipairs(rows) do
  local rate = bench.rate(r[2], seconds / #rows, 20)
  print(("| %s | %.0f |"):format(r[1], rate))
end
print("")
print("machine: " .. bench.machine())
