-- Fuzz target: the Prosody configuration sandbox of the audit. Any input
-- must either load or raise "tlsharden.audit: ...", never escape or hang.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local prosodycfg = require "tlsharden.prosodycfg"
local certmanager = require "tlsharden.certmanager"

return function(data)
  local ok, cfg = pcall(prosodycfg.load, data, { text = true, dir = "/nonexistent" })
  if ok then
    for _, version in ipairs(certmanager.versions) do
      local model = certmanager.model(cfg, version)
      for _, host in ipairs(cfg.hosts) do
        local sok, err = pcall(model.services, model, host)
        assert(sok or tostring(err):find("tlsharden.audit", 1, true), tostring(err))
      end
    end
  else
    assert(type(cfg) == "string" and cfg:find("tlsharden.audit", 1, true), tostring(cfg))
  end
end
