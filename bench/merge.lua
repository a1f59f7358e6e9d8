-- Option merging: tlsharden.merge against Prosody's own util.sslconfig
-- (loaded from the installed package) on the same five layers, the stack
-- Prosody builds for a c2s context: core defaults, certificate, mode,
-- tls_profile, and a host's ssl table.
--   lua5.4 bench/merge.lua [SECONDS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local tlsharden = require "tlsharden"
package.path = "/usr/lib/prosody/?.lua;" .. package.path
local ok, sslconfig = pcall(require, "util.sslconfig")
if not ok then
  print("Prosody's util.sslconfig is not installed (apt-get install prosody)")
  os.exit(1)
end

local seconds = tonumber(arg[1]) or 3

local function strip(layer)
  local t = {}
  for k, v in pairs(layer) do if k:sub(1, 1) ~= "_" and k ~= "name" then t[k] = v end end
  return t
end
local layers = {
  strip(tlsharden.profile("prosody")),
  { certificate = "/etc/prosody/certs/example.org.crt", key = "/etc/prosody/certs/example.org.key" },
  { mode = "server" },
  strip(tlsharden.profile("intermediate")),
  { protocol = "tlsv1_2+", options = { "no_ticket", no_compression = true }, depth = 5 },
}

local prosody_rate = bench.rate(function()
  local cfg = sslconfig.new()
  for i = 1, 5 do cfg:apply(layers[i]) end
  cfg:final()
end, seconds, 200)

local list = { layers[1], layers[2], layers[3], layers[4], layers[5] }
local ours_rate = bench.rate(function()
  tlsharden.merge(list)
end, seconds, 200)

-- The least any merge of these layers must do: visit every setting once
-- and store it in one result table (no sets, no joins, no checks, no
-- report). It bounds what a faster merge could gain.
local function bare_copy(...)
  local out = {}
  for i = 1, 5 do
    for k, v in pairs((select(i, ...))) do out[k] = v end
  end
  return out
end
local bare_rate = bench.rate(function()
  bare_copy(layers[1], layers[2], layers[3], layers[4], layers[5])
end, seconds, 200)

print(("Prosody util.sslconfig  %10.0f merges/s"):format(prosody_rate))
print(("tlsharden.merge         %10.0f merges/s (with validation, provenance and warnings)"):format(ours_rate))
print(("ratio                   %10.2f (tlsharden / Prosody)"):format(ours_rate / prosody_rate))
print(("bare copy of the keys   %10.0f copies/s = %.1f x Prosody's merge (copying alone: no merge rules, checks or report)")
  :format(bare_rate, bare_rate / prosody_rate))
print("machine: " .. bench.machine())
