-- tlsharden.problems: the one problem record, and the walker the specs of
-- the scan, the audit, the survey and the report use to hold their JSON
-- to it (spec/helpers/problem_walk.lua).
local problems = require "tlsharden.problems"
local json = require "tlsharden.json"
local walk = require("spec.helpers.problem_walk").walk

describe("tlsharden.problems", function()
  it("makes records of a severity, an UPPER_SNAKE code, a message and context fields", function()
    local p = problems.new("warning", "DOT_TARGET", "a '.' target", { kind = "c2s" })
    assert.same({ severity = "warning", code = "DOT_TARGET", message = "a '.' target", kind = "c2s" }, p)
    assert.same({ true }, { problems.check(p) })
    assert.has_error(function() problems.new("fatal", "X", "m") end)
    assert.has_error(function() problems.new("error", "lower_case", "m") end)
    assert.has_error(function() problems.new("error", "X", "m", { colour = "red" }) end)
  end)

  it("spells codes of other vocabularies its way", function()
    assert.equal("NO_ADDRESS", problems.code("no_address"))
    assert.equal("NXDOMAIN", problems.code("NXDOMAIN"))
    assert.equal("TOO_LARGE", problems.code("too-large"))
  end)

  it("refuses other shapes", function()
    for _, bad in ipairs {
      { code = "X", message = "m" },
      { severity = "error", code = "no_starttls", message = "m" },
      { severity = "error", code = "X" },
      { severity = "error", code = "X", message = "m", extra = 1 },
      "X",
    } do
      assert.is_false((problems.check(bad)))
    end
  end)

  it("adds each record once with an adder, and finds the worst severity", function()
    local list = problems.list()
    local add = problems.adder(list)
    add("warning", "A", "one")
    add("warning", "A", "one")
    add("warning", "A", "one", { protocol = "tlsv1" })
    add("error", "B", "two")
    assert.equal(3, #list)
    assert.equal("error", problems.worst(list))
    assert.is_nil(problems.worst({}))
    assert.equal("[]", json.encode(problems.list()))
  end)
end)

describe("the problem walker of the specs", function()
  it("passes a clean document and counts its records", function()
    local doc = { problems = { problems.new("error", "A", "m") },
      endpoints = { { problems = {}, dns = { failure = problems.new("error", "TIMEOUT", "t") } } } }
    local bad, seen = walk(json.encode(doc))
    assert.same({}, bad)
    assert.equal(2, seen)
  end)

  it("fails on any other shape, a lower-case code or a findings field", function()
    for _, doc in ipairs {
      { findings = {} },
      { endpoints = { { finding = { code = "X", message = "m" } } } },
      { problems = { { code = "X", message = "m" } } },
      { problems = { { severity = "error", code = "no_address", message = "m" } } },
      { dns = { failure = { code = "TIMEOUT", message = "t" } } },
      { deep = { { code = "DANE_MISMATCH", message = "m" } } },
      { problems = "none" },
    } do
      local bad = walk(json.encode(doc))
      assert.is_true(#bad > 0, json.encode(doc))
    end
  end)
end)
