-- Errors a program can test: every error tlsharden raises, from the C core
-- or from a Lua module, is an object { kind, fn, message, reason [,
-- argument] [, option] } whose tostring is the message (docs/reference/api.md,
-- "The error rule").
local tlsharden = require "tlsharden"
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local wire = require "tlsharden.wire"

local function caught(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "no error")
  assert.is_true(core.is_error(err), tostring(err))
  return err
end

describe("tlsharden's errors", function()
  it("name the function, the argument and the reason, in C and in Lua alike", function()
    local e = caught(tlsharden.protocol, 42)
    assert.same({ "argument", "protocol", 1 }, { e.kind, e.fn, e.argument })
    assert.equal("tlsharden.protocol: bad argument #1 'spec': " .. e.reason, e.message)
    assert.equal(e.message, tostring(e))
    e = caught(tlsharden.scan, "example.org", { timeout = -1 })
    assert.same({ "argument", "scan", "timeout" }, { e.kind, e.fn, e.option })
    assert.equal("tlsharden.scan: bad option 'timeout': " .. e.reason, e.message)
    e = caught(wire.client_hello, { version = "tlsv9" })
    assert.same({ "argument", "wire.client_hello", "version" }, { e.kind, e.fn, e.option })
  end)

  it("tell a policy refusal apart from bad input", function()
    local e = caught(tlsharden.protocol, "tlsv1+")
    assert.same({ "refused", "protocol" }, { e.kind, e.fn })
    e = caught(tlsharden.merge, { tlsharden.profile("hardened"), { protocol = "tlsv1+" } }, { policy = "strict" })
    assert.same({ "refused", "merge" }, { e.kind, e.fn })
    e = caught(tlsharden.new_context, { protocol = "tlsv1+" }, { policy = "strict" })
    assert.same({ "refused", "new_context" }, { e.kind, e.fn })
    assert.matches("^tlsharden%.new_context: ", e.message)
  end)

  it("say when a file or text cannot be read", function()
    local e = caught(tlsharden.audit, "/nonexistent/prosody.cfg.lua")
    assert.same({ "input", "audit" }, { e.kind, e.fn })
    e = caught(tlsharden.audit, "VirtualHost (", { text = true })
    assert.equal("input", e.kind)
    e = caught(require("tlsharden.survey").parse_list, "a.org\nnot_a/name\n", "list.txt")
    assert.same({ "input", "survey.parse_list" }, { e.kind, e.fn })
  end)

  it("report a raising metamethod as an argument error of the function, in C and in Lua", function()
    local raising = setmetatable({}, { __index = function() error("boom") end })
    for _, f in ipairs { function() return tlsharden.ciphers("HIGH", raising) end,
                         function() return tlsharden.grade(raising) end } do
      local e = caught(f)
      assert.equal("argument", e.kind)
      assert.matches("a metamethod of the argument raised: .*boom", e.message)
    end
  end)

  it("keep their kind when a door renames them", function()
    local e = caught(tlsharden.protocol, 42)
    local r = errors.rename(e, "new_context")
    assert.same({ "argument", "new_context", 1, e.reason }, { r.kind, r.fn, r.argument, r.reason })
    assert.equal("tlsharden.new_context: bad argument #1 'spec': " .. e.reason, r.message)
    assert.equal("a string", errors.rename("a string", "x"))
  end)

  it("are made only of known kinds", function()
    assert.has_error(function() core.error_new { kind = "oops", message = "m", reason = "m" } end)
    assert.has_error(function() core.error_new { kind = "input" } end)
    local e = core.error_new { kind = "input", fn = "x", message = "tlsharden.x: m", reason = "m" }
    assert.is_true(core.is_error(e))
    assert.is_false(core.is_error("tlsharden.x: m"))
    assert.is_false(core.is_error(setmetatable({ kind = "input" }, { __tostring = function() return "x" end })))
  end)
end)
