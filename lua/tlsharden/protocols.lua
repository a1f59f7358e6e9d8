--- The protocol versions, as the core owns them (core.protocols: one C
-- table for the context code, the registry and the ClientHello writer),
-- in the forms the Lua modules use: names lowest first, labels, ranks,
-- and the check of an option that lists versions.
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"

local M = {}

--- { name = "tlsv1_2", label = "TLS 1.2", wire = 0x0303 } for every
-- version from SSL 2.0 to TLS 1.3, lowest first.
M.list = core.protocols

M.names, M.label, M.rank, M.wire = {}, {}, {}, {}
for i, p in ipairs(M.list) do
  M.names[i] = p.name
  M.label[p.name] = p.label
  M.rank[p.name] = i
  M.wire[p.name] = p.wire
end

--- The versions below TLS 1.2, which every grade and check counts as old.
M.old = { sslv2 = true, sslv3 = true, tlsv1 = true, tlsv1_1 = true }

--- Check the option key of opts, a list of version names (or nil);
-- returns it.
function M.check_option(fn, opts, key)
  local v = opts[key]
  if v == nil then return nil end
  if type(v) ~= "table" then
    errors.option(fn, key, "expected a list of version names, got %s", errors.quote(v))
  end
  for i, p in ipairs(v) do
    if not M.rank[p] then
      errors.option(fn, key, "item #%d: expected %s, got %s", i, table.concat(M.names, ", "), errors.quote(p))
    end
  end
  return v
end

return M
