-- Cipher analysis: tlsharden.ciphers on Prosody 0.12's default cipher
-- string against what an admin does by hand, spawning `openssl ciphers -v`.
--   lua5.4 bench/ciphers.lua [SECONDS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local tlsharden = require "tlsharden"

local seconds = tonumber(arg[1]) or 3
local spec = "HIGH+kEECDH:HIGH+kEDH:HIGH:!PSK:!SRP:!3DES:!aNULL"

local ours, n1 = bench.rate(function() tlsharden.ciphers(spec) end, seconds, 20)
local theirs, n2 = bench.rate(function()
  local p = io.popen("openssl ciphers -v '" .. spec .. "'")
  p:read("*a")
  p:close()
end, seconds, 5)

local suites = tlsharden.ciphers(spec).count
print(("tlsharden.ciphers        %10.1f classifications/s (%d runs, %d suites each)"):format(ours, n1, suites))
print(("openssl ciphers -v (CLI) %10.1f runs/s (%d runs)"):format(theirs, n2))
print(("ratio                    %10.1f x faster"):format(ours / theirs))
print("machine: " .. bench.machine())
