-- Fuzz target: the input as a private key file for context.load_key, into
-- a LuaSec context without a certificate and into one with a certificate
-- (whose key the input almost never is). Loaded or "not a PKCS#8 key" or an
-- error naming load_key are the only outcomes.
local context = require "tlsharden.context"
local core = require "tlsharden.core"
local ssl = require "ssl"

local dir = os.getenv("TMPDIR") or "/tmp"
local path = ("%s/tlsharden-fuzz-key-%d"):format(dir, math.random(1, 1e9))
local bare = assert(ssl.newcontext { mode = "server", protocol = "any" })
local cert = os.getenv("TLSHARDEN_FUZZ_CERT") or "fuzz/out/keys-cert.pem"  -- scripts/fuzz-seeds.sh
local probe = io.open(cert)
local paired = probe and assert(ssl.newcontext { mode = "server", protocol = "any", certificate = cert })
if probe then probe:close() end

return function(data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  for _, ctx in ipairs { bare, paired } do
    local ok, loaded, why = pcall(context.load_key, ctx, path)
    if ok then
      assert(loaded == true or (loaded == false and type(why) == "string"), "load_key returned nonsense")
    else
      assert(core.is_error(loaded) and loaded.fn == "context.load_key", tostring(loaded))
    end
  end
  os.remove(path)
end
