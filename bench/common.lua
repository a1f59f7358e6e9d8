-- Shared by the benchmarks: run from the repository root, using the
-- checkout's modules and the core built for the Lua running them.
local root = debug.getinfo(1, "S").source:match("^@(.*)/bench/common.lua$") or "."
local version = _VERSION:match("%d+%.%d+")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. (version == "5.4" and "/build/" or "/build/" .. version .. "/") .. "?.so;"
  .. package.cpath

local socket = require "socket"

local bench = { root = root }

--- Run f repeatedly for about `seconds` (at least `min` times); return
-- calls per second and the number of calls.
function bench.rate(f, seconds, min)
  min = min or 10
  for _ = 1, math.min(min, 10) do f() end  -- warm up
  local n, t0 = 0, socket.gettime()
  local elapsed
  repeat
    for _ = 1, min do f() end
    n = n + min
    elapsed = socket.gettime() - t0
  until elapsed >= seconds
  return n / elapsed, n
end

--- Compare two functions in alternating rounds (so that a busy neighbour
-- hurts both alike); returns the median rate of each and the median of the
-- per-round ratios a/b.
function bench.compare(fa, fb, seconds, rounds)
  rounds = rounds or 9
  local ra, rb, ratios = {}, {}, {}
  for i = 1, rounds do
    ra[i] = bench.rate(fa, seconds / rounds / 2, 5)
    rb[i] = bench.rate(fb, seconds / rounds / 2, 5)
    ratios[i] = ra[i] / rb[i]
  end
  local function median(t)
    table.sort(t)
    return t[math.floor((#t + 1) / 2)]
  end
  return median(ra), median(rb), median(ratios)
end

function bench.machine()
  local f = io.popen("nproc; uname -m; lscpu 2>/dev/null | sed -n 's/^Model name: *//p'")
  local t = {}
  for line in f:lines() do t[#t + 1] = line end
  f:close()
  local ssl = require "ssl"
  return ("%s cores, %s, %s; %s; LuaSec %s"):format(t[1] or "?", t[2] or "?", t[3] or "unknown CPU",
    require("tlsharden").openssl_version, ssl._VERSION)
end

return bench
