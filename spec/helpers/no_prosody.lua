--- A module of tlsharden loaded afresh where Prosody's globals (`module`,
-- `prosody`) raise when touched: the plugin's own modules must load and
-- work without a Prosody.
return function(name)
  local env = setmetatable({}, { __index = function(_, k)
    if k == "module" or k == "prosody" then error("touches Prosody's global " .. k, 2) end
    return _G[k]
  end })
  local path = assert(package.searchpath(name, package.path))
  local chunk = assert(loadfile(path, "t", env))
  return chunk(name)
end
