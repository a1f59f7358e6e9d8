-- mod_tlsharden's metrics (tlsharden.prosody.plugin_metrics) without a
-- Prosody: the grade's numbers, the certificate times it reads, and a
-- clear error for a missing metric function. spec/metrics_spec.lua checks
-- the whole in a real Prosody.
local grade = require "tlsharden.grade"
local sh = require "spec.helpers.sh"

local load_without_prosody = require "spec.helpers.no_prosody"
local plugin_metrics = load_without_prosody "tlsharden.prosody.plugin_metrics"

describe("plugin_metrics", function()
  it("numbers the grades in their order, the better the higher, A at 8", function()
    local last
    for _, g in ipairs(grade.ORDER) do
      local n = plugin_metrics.GRADE_VALUE[g]
      assert.is_number(n, g)
      if last then assert.is_true(n < last, g) end
      last = n
    end
    assert.equal(8, plugin_metrics.GRADE_VALUE.A)
    assert.equal(9, plugin_metrics.GRADE_VALUE["A+"])
    assert.equal(0, plugin_metrics.GRADE_VALUE[grade.ORDER[#grade.ORDER]])
  end)

  it("reads tlsharden's certificate times as seconds since the epoch, as date does", function()
    for _, iso in ipairs { "1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2024-03-01T00:00:00Z",
        "2038-01-19T03:14:08Z", "2099-12-31T12:30:45Z" } do
      local expected = tonumber((sh.run("date -u -d " .. sh.quote(iso) .. " +%s"):gsub("%s+$", "")))
      assert.equal(expected, plugin_metrics.epoch(iso), iso)
    end
    assert.is_nil(plugin_metrics.epoch("Jan  1 00:00:00 2030 GMT"))
    assert.is_nil(plugin_metrics.epoch(nil))
  end)

  it("says what it needs when it is not given a metric function", function()
    assert.has_error(function() plugin_metrics.new {} end,
      "plugin_metrics.new: opts.metric must be a function (module:metric), got nil")
    assert.has_error(function() plugin_metrics.new { metric = "gauge" } end,
      "plugin_metrics.new: opts.metric must be a function (module:metric), got string")
  end)
end)
