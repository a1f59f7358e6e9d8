--- tlsharden: hard-to-get-wrong TLS for LuaSec servers such as Prosody.
-- This module is the public API: the capabilities, from the C core
-- (tlsharden.core) and from the Lua modules that shape policy and reports.
-- The lower-level tools live in submodules: tlsharden.context (LuaSec
-- contexts), tlsharden.wire (wire formats), tlsharden.scan, tlsharden.survey,
-- tlsharden.report. See docs/reference/api.md.
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local profiles = require "tlsharden.profiles"
local pipeline = require "tlsharden.pipeline"
local grade = require "tlsharden.grade"

-- The version has one source, the core's (TH_VERSION in
-- src/core/tlsharden.h): VERSION and _VERSION are the same string.
local M = {
  VERSION = core._VERSION,
  _VERSION = core._VERSION,
  openssl_version = core.openssl_version,
}

-- The capabilities the C core owns.
for _, name in ipairs { "protocol", "versions", "ciphers", "forward_secrecy", "merge", "harden", "inspect",
    "chain" } do
  M[name] = core[name]
end

--- A fresh merge layer for a named profile: "hardened", "intermediate",
-- "modern", "old" or "prosody". See docs/reference/merge.md.
M.profile = profiles.get
M.profile_names = profiles.names

--- Grade the facts of a server; see docs/reference/grading.md.
M.grade = grade.grade

--- Audit a Prosody configuration; see docs/reference/audit.md.
function M.audit(source, opts)
  return require("tlsharden.prosody.audit").audit(source, opts)
end

--- The smallest edit of a Prosody configuration after which the audit
-- finds no error a setting causes; see docs/reference/fix.md.
function M.fix(path, opts)
  return require("tlsharden.prosody.fix").fix(path, opts)
end

--- Scan a running XMPP server from outside; see docs/reference/scan.md.
function M.scan(target, opts)
  return require("tlsharden.scan").scan(target, opts)
end

local layer

local NEW_CONTEXT_OPTIONS = { "profile", "policy", "floor", "name", "harden" }

--- The one call a module developer needs: merge cfg over a profile
-- (opts.profile, default "hardened"), build the context with LuaSec, harden
-- it and inspect it (pipeline steps 1 to 4). Returns ctx, report or raises.
function M.new_context(cfg, opts)
  errors.table("new_context", 1, "cfg", cfg)
  opts = errors.options("new_context", 2, "opts", opts, NEW_CONTEXT_OPTIONS)
  local profile = opts.profile or "hardened"
  if not profiles.exists(profile) then
    errors.option("new_context", "profile", "unknown profile %s (known: %s)", errors.quote(profile),
      table.concat(profiles.names(), ", "))
  end
  local policy = opts.harden
  if policy ~= nil then errors.table("new_context", 2, "opts", policy) end
  -- harden sets the groups, unless the policy switches that rule off: the
  -- ones the merge settled on (the profile's, or the caller's, checked by
  -- the merge with OpenSSL) unless the policy names its own.
  local sets_groups = not (policy and policy.groups == false)
  local ctx, report = pipeline.run {
    fn = "new_context",
    layers = { profiles.shared(profile), layer(opts.name or "config", cfg) },
    merge = { policy = opts.policy or "warn", floor = opts.floor, mode = cfg.mode or "server" },
    build = function(merged)
      merged.mode = merged.mode or "server"
      return pipeline.build(merged, sets_groups)
    end,
    harden = function(merged)
      if not (sets_groups and merged.curveslist and (policy == nil or policy.groups == nil)) then
        return policy
      end
      local p = {}
      for k, v in pairs(policy or {}) do p[k] = v end
      p.groups = merged.curveslist
      return p
    end,
  }
  if not ctx then
    errors.input("new_context", "LuaSec refused the merged configuration: %s", tostring(report))
  end
  return ctx, report
end

--- Name a layer for the provenance record of tlsharden.merge: a shallow
-- copy of tbl with `name` set.
function layer(name, tbl)
  if type(name) ~= "string" then
    errors.argument("layer", 1, "name", "expected a string, got %s", errors.quote(name))
  end
  if tbl ~= nil and type(tbl) ~= "table" then
    errors.argument("layer", 2, "tbl", "expected a table or nil, got %s", errors.quote(tbl))
  end
  local t = {}
  for k, v in pairs(tbl or {}) do t[k] = v end
  t.name = name
  return t
end
M.layer = layer

-- The functions written in Lua run behind the core's own guard: an error
-- raised by an argument's own metamethod comes out as an error of the
-- tlsharden function that was called, not unchanged.
for _, name in ipairs { "profile", "grade", "audit", "scan", "new_context", "layer" } do
  M[name] = core.guard(name, M[name])
end

return M
