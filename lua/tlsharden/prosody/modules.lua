--- Prosody's own modules by the name 0.12 gives them: 13 names them
-- prosody.* (prosody.core.certmanager, prosody.net.server), 0.12 without
-- the prefix. What Prosody has loaded already is used (its own tables,
-- not a second copy); else it is required under either name.
--
--   local certmanager = require "tlsharden.prosody.modules" "core.certmanager"
return function(name)
  local m = package.loaded["prosody." .. name] or package.loaded[name]
  if m then return m end
  local ok, found = pcall(require, "prosody." .. name)
  if ok then return found end
  return require(name)
end
