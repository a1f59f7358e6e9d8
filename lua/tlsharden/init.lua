--- tlsharden: hard-to-get-wrong TLS for LuaSec servers such as Prosody.
-- This module is the public API. It re-exports the C core (tlsharden.core)
-- and adds the parts that are policy and report shaping, which live in Lua.
local core = require "tlsharden.core"

local M = {}

for name, value in pairs(core) do
  M[name] = value
end

M.core = core

return M
