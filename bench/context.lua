-- Context creation: tlsharden.new_context (merge over the hardened profile,
-- ssl.newcontext, harden, inspect) against plain ssl.newcontext with the
-- same key, certificate and cipher settings, the way a module developer
-- would build the context by hand.
--   lua5.4 bench/context.lua [SECONDS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local ssl = require "ssl"
local tlsharden = require "tlsharden"

local seconds = tonumber(arg[1]) or 3
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
for _, kind in ipairs { { "rsa", "-newkey rsa:2048" }, { "ec", "-newkey ec -pkeyopt ec_paramgen_curve:P-256" } } do
  assert(os.execute(("openssl req -x509 %s -nodes -days 2 -subj /CN=localhost -keyout %s/%s.key -out %s/%s.crt 2>/dev/null")
    :format(kind[2], dir, kind[1], dir, kind[1])))
end

-- The configuration new_context ends up with, given to LuaSec directly.
for _, kind in ipairs { "rsa", "ec" } do
  local files = { key = dir .. "/" .. kind .. ".key", certificate = dir .. "/" .. kind .. ".crt" }
  local _, report = tlsharden.new_context(files)
  local plain_cfg = report.config
  local plain, ours, ratio = bench.compare(function() assert(ssl.newcontext(plain_cfg)) end,
    function() tlsharden.new_context(files) end, seconds)
  print(("%-3s ssl.newcontext          %8.1f contexts/s"):format(kind, plain))
  print(("%-3s tlsharden.new_context   %8.1f contexts/s"):format(kind, ours))
  print(("%-3s cost ratio              %8.3f (time of new_context / time of ssl.newcontext, median of 9 alternating rounds)"):format(kind, ratio))
end
os.execute("rm -rf " .. dir)
print("machine: " .. bench.machine())
