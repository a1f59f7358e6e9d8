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

local layer

-- ssl.newcontext(cfg), sparing LuaSec two pieces of work:
-- * the groups, which harden sets anyway (policy.groups);
-- * an unencrypted PKCS#8 key, which core.load_key decodes for its own key
--   type in a third of the time LuaSec's loader takes; any other key goes
--   through LuaSec's own loader, exactly as ssl.newcontext would load it.
-- Returns the context, or nil and LuaSec's message; raises for a key that
-- does not match the certificate.
local function build(ssl, cfg, policy)
  local groups, key = cfg.curveslist, cfg.key
  local own_key = type(key) == "string" and cfg.password == nil and cfg.certificates == nil
  if policy.groups then cfg.curveslist = nil end
  if own_key then cfg.key = nil end
  local ctx, err = ssl.newcontext(cfg)
  cfg.curveslist, cfg.key = groups, key
  if not (ctx and own_key) then return ctx, err end
  local ok, loaded = pcall(core.load_key, ctx, key)
  if not ok then
    error(("tlsharden.new_context: %s"):format((tostring(loaded):gsub("^tlsharden%.load_key: ", ""))), 0)
  end
  if loaded then return ctx end
  local context = require "ssl.context"
  ok, err = context.loadkey(ctx, key, nil)
  if not ok then return nil, err end
  if cfg.certificate and not context.checkkey(ctx) then
    return nil, "private key does not match public key"
  end
  return ctx
end

--- The one call a module developer needs: merge cfg over a profile
-- (opts.profile, default "hardened"), build the context with LuaSec, harden
-- it and inspect it. Returns ctx, report or raises.
function M.new_context(cfg, opts)
  if type(cfg) ~= "table" then
    error(("tlsharden.new_context: bad argument #1 'cfg': expected a table, got %s"):format(type(cfg)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("tlsharden.new_context: bad argument #2 'opts': expected a table, got %s"):format(type(opts)), 2)
  end
  opts = opts or {}
  local merged, merge_report = core.merge_with({
    policy = opts.policy or "warn",
    floor = opts.floor,
    mode = cfg.mode or "server",
  }, profiles.shared(opts.profile or "hardened"), layer(opts.name or "config", cfg))
  merged.mode = merged.mode or "server"
  -- The groups the merge settled on (the profile's, or the caller's, which
  -- the merge has checked with OpenSSL) are the ones harden sets, unless
  -- the harden policy names its own.
  local policy = harden.policy(opts.harden)
  if policy.groups and merged.curveslist and not (opts.harden and opts.harden.groups ~= nil) then
    policy.groups = merged.curveslist
  end
  local ctx, err = build(require "ssl", merged, policy)
  if not ctx then
    error(("tlsharden.new_context: LuaSec refused the merged configuration: %s"):format(tostring(err)), 2)
  end
  return ctx, {
    config = merged,
    merge = merge_report,
    harden = { changes = core.harden(ctx, policy), policy = policy },
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
