--- Report shaping for tlsharden.chain: the severity of each problem code
-- and the overall verdict. The checks themselves are in src/chain.c.
local core = require "tlsharden.core"

local chain = {}

--- Severity of every problem code; anything not listed is an error.
chain.severity = {
  EXPIRES_SOON = "warning",
}

--- tlsharden.chain(source [, opts]): see docs/chain.md.
function chain.check(source, opts)
  local result = core.chain(source, opts)
  local errors = 0
  for _, p in ipairs(result.problems) do
    p.severity = chain.severity[p.code] or "error"
    if p.severity == "error" then errors = errors + 1 end
  end
  result.ok = errors == 0
  return result
end

return chain
