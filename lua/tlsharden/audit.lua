--- The audit of a whole Prosody configuration: for every host and TLS
-- service, the layers Prosody would merge (certmanager.lua), then the
-- pipeline's steps: the merge, the context LuaSec builds from it, what is
-- really in force, forward secrecy, the chain, a grade, and what
-- mod_tlsharden would change (harden on a copy).
local ssl = require "ssl"
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local prosodycfg = require "tlsharden.prosodycfg"
local certmanager = require "tlsharden.certmanager"
local pipeline = require "tlsharden.pipeline"
local grade = require "tlsharden.grade"

local audit = {}

local PATH_KEYS = { "key", "certificate", "cafile", "capath", "dhparam" }

-- Layers in "later wins" order: base, then the extras from last to first.
local function ordered_layers(svc)
  local list = {}
  for _, l in ipairs(svc.base) do list[#list + 1] = l end
  for i = svc.extras.n, 1, -1 do
    if svc.extras[i] then list[#list + 1] = svc.extras[i] end
  end
  return list
end

-- certmanager.create_context: paths relative to the configuration.
local function resolve_paths(config, cfg)
  for _, k in ipairs(PATH_KEYS) do
    if type(cfg[k]) == "string" then cfg[k] = prosodycfg.resolve(config.dir, cfg[k]) end
  end
  return cfg
end

--- The effective configuration of one service, merged as Prosody would:
-- returns cfg, merge report.
function audit.effective(config, svc, policy)
  local cfg, report = core.merge_with({ policy = policy or "warn", mode = svc.mode },
    table.unpack(ordered_layers(svc)))
  return resolve_paths(config, cfg), report
end

local function serialize(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. serialize(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local SERVICE_LABEL = {
  c2s = "c2s STARTTLS", s2s_in = "s2s incoming", s2s_out = "s2s outgoing",
  c2s_direct_tls = "c2s direct TLS", legacy_ssl = "c2s legacy SSL", https = "HTTPS",
}

local function problem(list, severity, code, message)
  list[#list + 1] = { severity = severity, code = code, message = message }
end

local NO_CERTIFICATE = {}

-- Step 2 for the audit: LuaSec builds the context as Prosody would, once
-- per distinct effective configuration; a second one is hardened to show
-- what mod_tlsharden would change.
local function builder(config, svc, cache, result)
  return function(cfg)
    resolve_paths(config, cfg)
    result.config = cfg
    if svc.mode == "server" and not cfg.certificate then return nil, NO_CERTIFICATE end
    local key = serialize(cfg)
    local entry = cache.contexts[key]
    if not entry then
      entry = {}
      cache.contexts[key] = entry
      entry.ctx, entry.error = ssl.newcontext(cfg)
      local hctx = entry.ctx and ssl.newcontext(cfg)
      if hctx then
        local ok, h = pcall(core.harden, hctx)
        entry.hardening = ok and h.changes or { { setting = "harden", before = "", after = tostring(h) } }
      end
    end
    result.tlsharden_would_change = entry.hardening
    return entry.ctx, entry.error
  end
end

-- The merge warnings that matter: only what survives the merge is a
-- finding (a weak core default that the tls_profile replaces is not).
local function lowering_problems(merge, list)
  for _, w in ipairs(merge.warnings) do
    local origin = merge.origin[w.setting]
    local item = w.setting:match("^options%.(.*)$")
    if item then origin = merge.origin.options[item] end
    if origin == w.layer then
      problem(list, w.lowers and "error" or "warning", "LOWERS_SECURITY",
        ("%s sets %s: %s"):format(tostring(w.layer), w.setting, w.message))
    end
  end
end

-- What the judgement says, as problems of the service.
local function judgement_problems(j, info, list)
  if j.chain then
    for _, p in ipairs(j.chain.problems) do problem(list, p.severity, p.code, p.message) end
  elseif j.chain_error then
    problem(list, "error", "CHAIN_ERROR", j.chain_error)
  end
  local fs = j.forward_secrecy
  if fs.forward_secrecy ~= "all" then
    problem(list, "error", "NO_FORWARD_SECRECY",
      ("%d suites without forward secrecy: %s"):format(#fs.non_fs, table.concat(fs.non_fs, ", ")))
  end
  if #fs.unusable > 0 then
    problem(list, "warning", "UNUSABLE_SUITES",
      ("%d suites can never be negotiated (DHE without DH parameters, or ECDHE without a group): %s")
      :format(#fs.unusable, table.concat(fs.unusable, ", ")))
  end
  for _, v in ipairs(info.versions) do
    if v == "tlsv1" or v == "tlsv1_1" or v == "sslv3" then
      problem(list, "error", "OLD_PROTOCOL", ("%s is enabled"):format(v))
    end
  end
end

-- Evaluate one service of one host; contexts and their judgements are
-- shared through cache by every service with the same configuration.
local function evaluate(config, host, svc, opts, cache)
  local result = { host = host, service = svc.service, label = SERVICE_LABEL[svc.service] or svc.service,
    mode = svc.mode, problems = {} }
  local layers = ordered_layers(svc)
  result.layers = {}
  for i, l in ipairs(layers) do result.layers[i] = l.name end
  local ok, ctx, report, failed = pcall(pipeline.run, {
    layers = layers,
    merge = { policy = "warn", mode = svc.mode },
    build = builder(config, svc, cache, result),
    harden = false,
    judge = { host = host, service = svc.service, cafile = opts.cafile, capath = opts.capath,
      at = opts.at, guide = opts.guide, starttls_cap = opts.starttls_cap, cache = cache.judged },
  })
  if not ok then
    problem(result.problems, "error", "CONFIG_ERROR", tostring(ctx))
    return result
  end
  local err
  if not ctx then err, report = report, failed end
  result.merge = report.merge
  lowering_problems(report.merge, result.problems)
  if err == NO_CERTIFICATE then
    problem(result.problems, "error", "NO_CERTIFICATE",
      "no certificate found (Prosody looks in the certificates folder and the host's ssl.certificate)")
    return result
  elseif not ctx then
    problem(result.problems, "error", "CONTEXT_ERROR", "LuaSec cannot build the context: " .. tostring(err))
    return result
  end
  local j = report.judgement
  result.context = report.context
  result.forward_secrecy = j.forward_secrecy.forward_secrecy
  result.non_fs = j.forward_secrecy.non_fs
  result.chain = j.chain
  result.grade = j.grade
  judgement_problems(j, report.context, result.problems)
  return result
end

local function check_policy(model, host, list)
  local p = model:policy(host)
  if p.c2s_require_encryption == false then
    problem(list, "error", "C2S_ENCRYPTION_OPTIONAL", "c2s_require_encryption = false lets clients log in without TLS")
  end
  if p.s2s_require_encryption == false then
    problem(list, "error", "S2S_ENCRYPTION_OPTIONAL", "s2s_require_encryption = false lets servers federate without TLS")
  end
  if p.s2s_secure_auth ~= true then
    problem(list, "warning", "S2S_NOT_AUTHENTICATED",
      "s2s_secure_auth is off: remote servers are not required to present valid certificates (dialback is accepted)")
  end
  if p.allow_unencrypted_plain_auth == true then
    problem(list, "error", "PLAIN_AUTH_UNENCRYPTED", "allow_unencrypted_plain_auth = true sends passwords in clear text")
  end
  return p
end

local AUDIT_OPTIONS = { "text", "env", "dir", "name", "cafile", "capath", "at", "guide", "starttls_cap" }

--- tlsharden.audit(path_or_string [, opts]): see docs/audit.md.
function audit.audit(source, opts)
  if type(source) ~= "string" then
    errors.argument("audit", 1, "source", "expected a path or configuration text, got %s",
      errors.quote(source))
  end
  opts = errors.options("audit", 2, "opts", opts, AUDIT_OPTIONS)
  if opts.guide ~= nil and not grade.guides[opts.guide] then
    errors.option("audit", "guide", "unknown guide %s (known: 2009q, 2009r)", errors.quote(opts.guide))
  end
  local is_text = opts.text
  if is_text == nil then is_text = source:find("\n", 1, true) ~= nil end
  local config = prosodycfg.load(source, { text = is_text, env = opts.env, dir = opts.dir, name = opts.name })
  local model = certmanager.model(config)
  -- an unknown tls_profile is an error for the whole configuration
  model:profile_layer()
  local report = {
    file = config.file, files = config.files, guide = opts.guide or grade.default_guide,
    tls_profile = config:get("*", "tls_profile") or "intermediate",
    hosts = {}, components = config.components, problems = {},
  }
  local cache = { contexts = {}, judged = {} }
  local worst
  for _, host in ipairs(config.hosts) do
    local h = { host = host, services = {}, problems = {} }
    h.policy = check_policy(model, host, h.problems)
    for _, svc in ipairs(model:services(host)) do
      local r = evaluate(config, host, svc, opts, cache)
      h.services[#h.services + 1] = r
      local g = r.grade and r.grade.grade or "F"
      if not h.grade or grade.worse(g, h.grade) then h.grade = g end
    end
    if h.grade and (not worst or grade.worse(h.grade, worst)) then worst = h.grade end
    report.hosts[#report.hosts + 1] = h
  end
  report.grade = worst
  return report
end

return audit
