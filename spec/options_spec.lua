local context = require "tlsharden.context"
local ssl = require "ssl"
local tlsharden = require "tlsharden"

describe("context.option_names", function()
  it("lists exactly the option names LuaSec accepts", function()
    local luasec = {}
    for name in pairs(ssl.config.options) do luasec[#luasec + 1] = name end
    table.sort(luasec)
    assert.same(luasec, context.option_names())
  end)
end)

describe("option table", function()
  it("is sorted by name, as the binary search needs", function()
    local names = context.option_names()
    local sorted = { table.unpack(names) }
    table.sort(sorted)
    assert.same(sorted, names)
  end)
end)
