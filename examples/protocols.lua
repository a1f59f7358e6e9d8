-- Parse the protocol settings admins copy into prosody.cfg.lua, show what
-- each really enables, and prove it on a real LuaSec context.
local ssl = require "ssl"
local tlsharden = require "tlsharden"

local specs = {
  "tlsv1_2+", "tlsv1+", "sslv23", "tlsv1_2", "TLSv1.2:TLSv1.3", "tlsv1_2-tlsv1_3",
  { "tlsv1.2", "tlsv1.3" }, "tlsv1_4", "TLSv1:TLSv1.2",
}

local function label(spec)
  if type(spec) == "table" then return "{ " .. table.concat(spec, ", ") .. " }" end
  return ("%q"):format(spec)
end

local function range(min, max) return min .. ".." .. (max or "newest") end

print(("%-22s %-9s %-18s %-18s %s"):format("spec", "verdict", "parsed range", "real context", "LuaSec protocol + options"))
for _, spec in ipairs(specs) do
  local ok, p = pcall(tlsharden.protocol, spec, { allow_insecure = true })
  if not ok then
    -- p is an error object: its reason says what is wrong, without the
    -- function, the argument and the list of valid forms
    print(("%-22s %-9s %s"):format(label(spec), "ERROR", (p.reason:gsub(" %(valid forms.*", ""))))
  else
    local ctx = assert(ssl.newcontext { mode = "server", protocol = p.luasec.protocol,
      options = p.luasec.options })
    local real = tlsharden.versions(ctx)
    print(("%-22s %-9s %-18s %-18s %s"):format(label(spec), p.insecure and "INSECURE" or "ok",
      range(p.min, p.max), range(real.min, real.max),
      p.luasec.protocol .. " " .. table.concat(p.luasec.options, ",")))
  end
end
