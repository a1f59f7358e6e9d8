-- Measures the limits of the recordings' real clients (docs/reference/clients.md):
-- for one recording of each stack, the smallest DH group and RSA key it
-- accepts (the key with and without verifying the certificate) and the
-- oldest protocol it still speaks, against openssl
-- s_server on 127.0.0.1 (spec/helpers/real_clients.lua). Prints a line per
-- stack and the table scripts/record-hellos.lua keeps (LIMITS), which
-- writes them into every recording of the stack.
--
--   lua5.4 scripts/measure-client-limits.lua [NAME ...]
--
-- Run from the checkout's top folder after make (it loads the spec helpers
-- and the core from there). Without names: one recording per stack.
package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;" .. package.path
package.cpath = "./build/?.so;" .. package.cpath
local real_clients = require "spec.helpers.real_clients"
local clients = require "tlsharden.scan.clients"

local names = { ... }
if #names == 0 then
  local seen = {}
  for _, name in ipairs(clients.names()) do
    local stack, _, transport = real_clients.split(name)
    if transport == "direct" and not seen[stack] then
      seen[stack] = true
      names[#names + 1] = name
    end
  end
end

local set = real_clients.limit_servers()
local rows, order = {}, {}
local ok, err = pcall(function()
  for _, name in ipairs(names) do
    local can, why = real_clients.available(name)
    if not can then
      print(("%-22s skipped: %s"):format(name, why))
    else
      local fields, results = real_clients.measure(name, set)
      local stack = real_clients.split(name)
      rows[stack] = fields
      order[#order + 1] = stack
      print(("%-22s min_dh_bits=%s min_rsa_bits=%s min_rsa_bits_unverified=%s min_protocol=%s"):format(name,
        tostring(fields.min_dh_bits), tostring(fields.min_rsa_bits), tostring(fields.min_rsa_bits_unverified),
        fields.min_protocol))
      local keys = {}
      for key in pairs(results) do keys[#keys + 1] = key end
      table.sort(keys)
      for _, key in ipairs(keys) do
        local r = results[key]
        print(("    %-17s %s"):format(key, r.ok and ("ok %s %s%s"):format(r.protocol, r.suite,
          r.dh_bits and (" DH " .. r.dh_bits) or "") or ("refused: " .. tostring(r.reason):sub(1, 120))))
      end
    end
  end
end)
set.stop()
real_clients.cleanup()
if not ok then error(err, 0) end

print("\n-- for scripts/record-hellos.lua's LIMITS")
for _, stack in ipairs(order) do
  local f = rows[stack]
  local function v(x) return type(x) == "number" and tostring(x) or ("%q"):format(x) end
  print(("  %s = { min_dh_bits = %s, min_rsa_bits = %s, min_rsa_bits_unverified = %s, min_protocol = %q },"):format(
    stack, v(f.min_dh_bits), v(f.min_rsa_bits), v(f.min_rsa_bits_unverified), f.min_protocol))
end
