-- Fuzz target: protocol specifications, as a string and as an OTP-style
-- list (the input split on newlines), with and without a floor.
local core = require "tlsharden.core"

local function expect_result_or_error(ok, res)
  if ok then
    assert(type(res) == "table" and res.min and res.luasec, "protocol returned no range")
  else
    assert(core.is_error(res) and res.fn == "protocol",
      "protocol raised an error without its name: " .. tostring(res))
  end
end

return function(data)
  expect_result_or_error(pcall(core.protocol, data, { floor = false }))
  expect_result_or_error(pcall(core.protocol, data))
  local list = {}
  for item in (data .. "\n"):gmatch("([^\n]*)\n") do list[#list + 1] = item end
  expect_result_or_error(pcall(core.protocol, list, { floor = false }))
end
