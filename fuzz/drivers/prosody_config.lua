-- Fuzz target: the Prosody configuration sandbox of the audit. Any input
-- must either load or raise "tlsharden.audit: ...", never escape or hang.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local prosody_config = require "tlsharden.prosody.config"
local prosody_model = require "tlsharden.prosody.model"

return function(data)
  local ok, cfg = pcall(prosody_config.load, data, { text = true, dir = "/nonexistent" })
  if ok then
    for _, version in ipairs(prosody_model.versions) do
      local model = prosody_model.model(cfg, version)
      for _, host in ipairs(cfg.hosts) do
        local sok, err = pcall(model.services, model, host)
        assert(sok or tostring(err):find("tlsharden.prosody.audit", 1, true), tostring(err))
      end
    end
  else
    assert(type(cfg) == "string" and cfg:find("tlsharden.prosody.audit", 1, true), tostring(cfg))
  end
end
