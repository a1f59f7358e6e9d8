--- tlsharden: hard-to-get-wrong TLS for LuaSec servers such as Prosody.
-- This module is the public API. It re-exports the C core (tlsharden.core)
-- and adds the parts that are policy and report shaping, which live in Lua.
local core = require "tlsharden.core"

local M = {}

for name, value in pairs(core) do
  M[name] = value
end

M.core = core

local profiles = require "tlsharden.profiles"

--- A fresh merge layer for a named profile: "hardened", "intermediate",
-- "modern", "old" or "prosody". See docs/merge.md.
M.profile = profiles.get
M.profile_names = profiles.names

--- Name a layer for the provenance record of tlsharden.merge: a shallow
-- copy of tbl with `name` set.
function M.layer(name, tbl)
  if type(name) ~= "string" then
    error(("tlsharden.layer: bad argument #1 'name': expected a string, got %s"):format(type(name)), 2)
  end
  if tbl ~= nil and type(tbl) ~= "table" then
    error(("tlsharden.layer: bad argument #2 'tbl': expected a table or nil, got %s"):format(type(tbl)), 2)
  end
  local t = {}
  for k, v in pairs(tbl or {}) do t[k] = v end
  t.name = name
  return t
end

return M
