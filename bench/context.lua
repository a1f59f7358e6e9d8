-- Context creation: tlsharden.new_context (merge over the hardened profile,
-- build, harden, inspect) against plain ssl.newcontext with the same key,
-- certificate and cipher settings, the way a module developer would build
-- the context by hand. A third line shows tlsharden's own steps (merge,
-- harden, inspect) added to a plain ssl.newcontext, without the faster key
-- loading new_context does.
--   lua5.4 bench/context.lua [SECONDS]
local bench = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/common.lua")
local ssl = require "ssl"
local tlsharden = require "tlsharden"
local core = require "tlsharden.core"
local profiles = require "tlsharden.profiles"

local seconds = tonumber(arg[1]) or 3
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
for _, kind in ipairs { { "rsa", "-newkey rsa:2048" }, { "ec", "-newkey ec -pkeyopt ec_paramgen_curve:P-256" } } do
  assert(os.execute(("openssl req -x509 %s -nodes -days 2 -subj /CN=localhost -keyout %s/%s.key -out %s/%s.crt 2>/dev/null")
    :format(kind[2], dir, kind[1], dir, kind[1])))
end

for _, kind in ipairs { "rsa", "ec" } do
  local files = { key = dir .. "/" .. kind .. ".key", certificate = dir .. "/" .. kind .. ".crt" }
  -- The configuration new_context ends up with, given to LuaSec directly.
  local _, report = tlsharden.new_context(files)
  local plain_cfg = report.config
  local function plain() assert(ssl.newcontext(plain_cfg)) end
  local function steps()
    local cfg = core.merge({ profiles.shared("hardened"), tlsharden.layer("config", files) }, { policy = "warn", mode = "server" })
    cfg.mode = "server"
    local ctx = assert(ssl.newcontext(cfg))
    core.harden(ctx)
    core.inspect(ctx)
  end
  local p1, ours, ratio = bench.compare(plain, function() tlsharden.new_context(files) end, seconds)
  local p2, stepped, steps_ratio = bench.compare(plain, steps, seconds)
  print(("%-3s ssl.newcontext          %8.1f contexts/s"):format(kind, (p1 + p2) / 2))
  print(("%-3s tlsharden.new_context   %8.1f contexts/s"):format(kind, ours))
  print(("%-3s cost ratio              %8.3f (time of new_context / time of ssl.newcontext, median of 9 alternating rounds)")
    :format(kind, ratio))
  print(("%-3s tlsharden's steps alone %8.3f (time of ssl.newcontext + merge + harden + inspect / time of ssl.newcontext)")
    :format(kind, steps_ratio))
  assert(stepped > 0)
end
os.execute("rm -rf " .. dir)
print("machine: " .. bench.machine())
