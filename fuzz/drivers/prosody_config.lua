-- Fuzz target: the Prosody configuration sandbox of the audit. Any input
-- must either load or raise "tlsharden.audit: ...", never escape or hang.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local core = require "tlsharden.core"
local prosody_config = require "tlsharden.prosody.config"
local prosody_model = require "tlsharden.prosody.model"

return function(data)
  local ok, cfg = pcall(prosody_config.load, data, { text = true, dir = "/nonexistent" })
  if ok then
    for _, version in ipairs(prosody_model.versions) do
      local model = prosody_model.model(cfg, version)
      for _, host in ipairs(cfg.hosts) do
        local sok, err = pcall(model.services, model, host)
        assert(sok or (core.is_error(err) and err.fn == "audit"), tostring(err))
      end
    end
  else
    assert(core.is_error(cfg) and cfg.fn == "audit", tostring(cfg))
  end
end
