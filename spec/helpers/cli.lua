--- Run the tlsharden command line in-process, capturing what it prints.
local cli = require "tlsharden.cli"

local M = {}

-- A stream that keeps what is written to it.
local function buffer()
  local b = { parts = {} }
  function b:write(...)
    for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function b:text() return table.concat(self.parts) end
  return b
end
M.buffer = buffer

--- run(args...) -> exit code, stdout text, stderr text
function M.run(...)
  local out, err = buffer(), buffer()
  local code = cli.main({ ... }, out, err)
  return code, out:text(), err:text()
end

return M
