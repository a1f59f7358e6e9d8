--- tlsharden: hard-to-get-wrong TLS for LuaSec servers such as Prosody.
-- This module is the public API. It re-exports the C core (tlsharden.core)
-- and adds the parts that are policy and report shaping, which live in Lua.
local core = require "tlsharden.core"

local M = {}

for name, value in pairs(core) do
  M[name] = value
end

M.core = core

local profiles = require "tlsharden.profiles"

--- A fresh merge layer for a named profile: "hardened", "intermediate",
-- "modern", "old" or "prosody". See docs/merge.md.
M.profile = profiles.get
M.profile_names = profiles.names

local harden = require "tlsharden.harden"
local chain = require "tlsharden.chain"
local grade = require "tlsharden.grade"

--- Grade the facts of a server; see docs/grading.md.
M.grade = grade.grade

--- Audit a Prosody configuration; see docs/audit.md.
function M.audit(source, opts)
  return require("tlsharden.audit").audit(source, opts)
end

--- Check a certificate chain; see docs/chain.md.
M.chain = chain.check

--- Harden a LuaSec context in place; see docs/harden.md.
M.harden = harden.harden
M.harden_defaults = harden.defaults

--- The one call a module developer needs: merge cfg over a profile
-- (opts.profile, default "hardened"), build the context with LuaSec, harden
-- it and inspect it. Returns ctx, report or raises.
local layer

function M.new_context(cfg, opts)
  if type(cfg) ~= "table" then
    error(("tlsharden.new_context: bad argument #1 'cfg': expected a table, got %s"):format(type(cfg)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("tlsharden.new_context: bad argument #2 'opts': expected a table, got %s"):format(type(opts)), 2)
  end
  opts = opts or {}
  local ssl = require "ssl"
  local merged, merge_report = core.merge_with({
    policy = opts.policy or "warn",
    floor = opts.floor,
    mode = cfg.mode or "server",
  }, profiles.shared(opts.profile or "hardened"), layer(opts.name or "config", cfg))
  merged.mode = merged.mode or "server"
  local policy = harden.policy(opts.harden)
  local ctx, err = ssl.newcontext(merged)
  if not ctx then
    error(("tlsharden.new_context: LuaSec refused the merged configuration: %s"):format(tostring(err)), 2)
  end
  local hreport = { changes = core.harden(ctx, policy), policy = policy }
  return ctx, {
    config = merged,
    merge = merge_report,
    harden = hreport,
    context = core.inspect(ctx),
  }
end

--- Name a layer for the provenance record of tlsharden.merge: a shallow
-- copy of tbl with `name` set.
function layer(name, tbl)
  if type(name) ~= "string" then
    error(("tlsharden.layer: bad argument #1 'name': expected a string, got %s"):format(type(name)), 2)
  end
  if tbl ~= nil and type(tbl) ~= "table" then
    error(("tlsharden.layer: bad argument #2 'tbl': expected a table or nil, got %s"):format(type(tbl)), 2)
  end
  local t = {}
  for k, v in pairs(tbl or {}) do t[k] = v end
  t.name = name
  return t
end
M.layer = layer

-- The functions written in Lua run behind the same guard as the C core's:
-- an error raised by an argument's own metamethod comes out as an error of
-- the tlsharden function that was called, not unchanged.
local function failed(name, e, ...)
  if type(e) == "string" and e:find("tlsharden.", 1, true) then error(e, 0) end
  if type(e) ~= "string" then e = ("(an error object of type %s)"):format(type(e)) end
  -- name the argument when only one of them is a table or userdata
  local arg, n = nil, 0
  for i = 1, select("#", ...) do
    local t = type((select(i, ...)))
    if t == "table" or t == "userdata" then arg, n = i, n + 1 end
  end
  if n == 1 then
    error(("tlsharden.%s: bad argument #%d: a metamethod of the argument raised: %s"):format(name, arg, e), 0)
  end
  error(("tlsharden.%s: a metamethod of an argument raised: %s"):format(name, e), 0)
end

-- Each of these returns one value, new_context two; the wrappers keep that
-- count and allocate nothing on the way.
local function guarded(name, f, two)
  if two then
    return function(...)
      local ok, r1, r2 = pcall(f, ...)
      if ok then return r1, r2 end
      return failed(name, r1, ...)
    end
  end
  return function(...)
    local ok, r = pcall(f, ...)
    if ok then return r end
    return failed(name, r, ...)
  end
end

for _, name in ipairs { "profile", "grade", "audit", "chain", "harden", "new_context", "layer" } do
  M[name] = guarded(name, M[name], name == "new_context")
end

return M
