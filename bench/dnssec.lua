-- What validating DNSSEC costs a scan of a DOMAIN: a zone signed here
-- (spec/helpers/dnssec_zone.lua: nsd on 127.0.0.1, the test's own trust
-- anchor) points secure.xmpp.test's c2s and s2s SRV records at a loopback
-- Prosody 0.12; tlsharden.scan of the domain (both kinds, the recorded
-- clients off) runs in alternating rounds
--   validated, cold  every lookup validated from the anchor, nothing cached
--                    (a fresh validator, as for the first domain of a run)
--   validated, warm  the same with the validator's answers of the round
--                    before (as a survey's later endpoints and scans of one
--                    domain get them)
--   not validated    dnssec = false: the stub resolver, no signatures
-- and prints the median of each and the ratios to the unvalidated scan.
--   lua5.4 bench/dnssec.lua [ROUNDS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
package.path = bench.root .. "/?.lua;" .. package.path
local socket = require "socket"
local tlsharden = require "tlsharden"
local dnssec = require "tlsharden.scan.dnssec"
local prosody = require "spec.helpers.prosody"
local zone = require "spec.helpers.dnssec_zone"

local rounds = tonumber(arg[1]) or 9
assert(zone.available(), "the DNSSEC fixture needs nsd and ldnsutils")
assert(dnssec.available(), "lua-unbound is not installed")

local server = prosody.start { hosts = { "secure.xmpp.test" }, wait = { "c2s", "s2s" } }
local ns
local ok, err = pcall(function()
  ns = zone.start { client_port = server.ports.c2s, server_port = server.ports.s2s }
  local function scan(validate)
    local t0 = socket.gettime()
    local r = tlsharden.scan("secure.xmpp.test", { resolver = "127.0.0.1:" .. ns.port, trust_anchor = ns.anchor_file,
      dnssec = validate, cafile = server.ca, clients = false, timeout = 3 })
    local t = socket.gettime() - t0
    assert(#r.endpoints == 2, "the scan found no endpoints")
    assert(r.dns.dnssec.status == (validate == false and nil or "secure") or validate == false,
      "not secure: " .. tostring(r.dns.dnssec.status))
    return t
  end
  scan(nil)
  local cold, warm, plain = {}, {}, {}
  for i = 1, rounds do
    dnssec.forget()
    cold[i] = scan(nil)
    warm[i] = scan(nil)
    plain[i] = scan(false)
  end
  local function median(t)
    local s = { table.unpack(t) }
    table.sort(s)
    return s[math.floor((#s + 1) / 2)]
  end
  local c, w, p = median(cold), median(warm), median(plain)
  print(("%-18s %10s %10s"):format("scan of a DOMAIN", "seconds", "ratio"))
  print(("%-18s %10.4f %10.2f"):format("validated, cold", c, c / p))
  print(("%-18s %10.4f %10.2f"):format("validated, warm", w, w / p))
  print(("%-18s %10.4f %10.2f"):format("not validated", p, 1))
  print(("(%d rounds, medians; 2 endpoints: c2s and s2s STARTTLS of one Prosody)"):format(rounds))
end)
if ns then ns.stop() end
server.stop()
assert(ok, err)
print("machine: " .. bench.machine())
