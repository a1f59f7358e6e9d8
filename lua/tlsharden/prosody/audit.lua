--- The audit of a whole Prosody configuration: for every host and TLS
-- service, the layers the audited Prosody version (0.12 or 13) would merge
-- (prosody/model.lua), then the pipeline's steps: the merge, the context
-- LuaSec builds from it, what is really in force, forward secrecy, the
-- suites a client can get, the chain, a grade, and what mod_tlsharden
-- would change (harden on a copy).
local ssl = require "ssl"
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local prosody_config = require "tlsharden.prosody.config"
local prosody_model = require "tlsharden.prosody.model"
local pipeline = require "tlsharden.pipeline"
local protocols = require "tlsharden.protocols"
local grade = require "tlsharden.grade"
local facts = require "tlsharden.facts"
local simulate = require "tlsharden.scan.simulate"

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

-- Whether a dhparam value is the PEM text itself (Prosody 13 takes it so;
-- 0.12 takes every string as a file name).
local function pem_literal(version, v)
  return version == "13" and type(v) == "string" and v:sub(1, 10) == "-----BEGIN"
end

-- certmanager.create_context (0.12) and util.sslconfig (13): paths
-- relative to the configuration; a path option that is not a string is
-- dropped.
local function resolve_paths(config, cfg, version)
  for _, k in ipairs(PATH_KEYS) do
    if type(cfg[k]) == "string" then
      if not (k == "dhparam" and pem_literal(version, cfg[k])) then
        cfg[k] = prosody_config.resolve(config.dir, cfg[k])
      end
    else
      cfg[k] = nil
    end
  end
  return cfg
end

--- The effective configuration of one service, merged as Prosody would
-- (version: "0.12" or "13", default "13"): returns cfg, merge report.
function audit.effective(config, svc, policy, version)
  local cfg, report = core.merge(ordered_layers(svc), { policy = policy or "warn", mode = svc.mode })
  return resolve_paths(config, cfg, version or "13"), report
end

-- What LuaSec is given for cfg: DH parameters as the function it wants,
-- read from the file (or, in 13, the PEM text itself) as Prosody does.
-- Returns the table for ssl.newcontext, or nil and Prosody's message.
local function luasec_config(cfg, version)
  if type(cfg.dhparam) ~= "string" then return cfg end
  local pem = cfg.dhparam
  if not pem_literal(version, pem) then
    local f, err = io.open(pem, "rb")
    if not f then return nil, "Could not open DH parameters: " .. tostring(err) end
    pem = f:read("*a")
    f:close()
  end
  local t = {}
  for k, v in pairs(cfg) do t[k] = v end
  t.dhparam = function() return pem end
  return t
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
  c2s_direct_tls = "c2s direct TLS", s2s_direct_tls = "s2s direct TLS", legacy_ssl = "c2s legacy SSL",
  https = "HTTPS",
}

local function problem(list, severity, code, message)
  list[#list + 1] = { severity = severity, code = code, message = message }
end

local NO_CERTIFICATE = {}

-- Step 2 for the audit: LuaSec builds the context as Prosody would, once
-- per distinct effective configuration; a second one is hardened to show
-- what mod_tlsharden would change.
local function builder(config, svc, cache, result, version)
  return function(cfg)
    -- what Prosody drops after the merge (0.12's SNI contexts: dhparam)
    for _, k in ipairs(svc.drop or {}) do cfg[k] = nil end
    resolve_paths(config, cfg, version)
    result.config = cfg
    if svc.mode == "server" and not cfg.certificate then return nil, NO_CERTIFICATE end
    local key = serialize(cfg)
    local entry = cache.contexts[key]
    if not entry then
      entry = {}
      cache.contexts[key] = entry
      local lcfg
      lcfg, entry.error = luasec_config(cfg, version)
      if lcfg then entry.ctx, entry.error = ssl.newcontext(lcfg) end
      local hctx = entry.ctx and ssl.newcontext(lcfg)
      if hctx then
        local ok, h = pcall(core.harden, hctx)
        entry.hardening = ok and h.changes or { { setting = "harden", before = "", after = tostring(h) } }
      end
    end
    result.tlsharden_would_change = entry.hardening
    return entry.ctx, entry.error
  end
end

-- The merge warnings that matter: only what survives the merge, and only
-- what the admin wrote, is a finding (a weak core default that the
-- tls_profile replaces is not; nor is what Prosody adds itself: what it
-- really serves is judged from the context).
local function lowering_problems(model, merge, list)
  for _, w in ipairs(merge.warnings) do
    local origin = merge.origin[w.setting]
    local item = w.setting:match("^options%.(.*)$")
    if item then origin = merge.origin.options[item] end
    if origin == w.layer and model:admin_layer(w.layer) then
      problem(list, w.lowers and "error" or "warning", "LOWERS_SECURITY",
        ("%s sets %s: %s"):format(tostring(w.layer), w.setting, w.message))
    end
  end
end

-- What the judgement says, as problems of the service. Suites that can
-- never be negotiated are a warning when the admin chose the suites, and
-- only information when they are Prosody's own (DHE suites of its
-- defaults without DH parameters, or with a key no DHE suite can use).
local function judgement_problems(model, merge, j, info, list)
  if j.chain then
    for _, p in ipairs(j.chain.problems) do problem(list, p.severity, p.code, p.message) end
  elseif j.chain_error then
    problem(list, "error", "CHAIN_ERROR", j.chain_error)
  end
  local fs = j.forward_secrecy
  local non_fs = {}
  for _, s in ipairs(facts.served_suites(info, fs)) do
    if not s.fs then non_fs[#non_fs + 1] = s.name end
  end
  if #non_fs > 0 then
    problem(list, "error", "NO_FORWARD_SECRECY",
      ("%d suites without forward secrecy: %s"):format(#non_fs, table.concat(non_fs, ", ")))
  end
  if #fs.unusable > 0 then
    local chosen = merge and merge.origin.ciphers
    problem(list, chosen and model:admin_layer(chosen) and "warning" or "info", "UNUSABLE_SUITES",
      ("%d suites can never be negotiated (DHE without DH parameters or without an RSA key, or ECDHE without a group): %s")
      :format(#fs.unusable, table.concat(fs.unusable, ", ")))
  end
  -- graded: what a client gets; said apart: what the configuration asks
  -- for beyond it (OpenSSL 3 serves versions below TLS 1.2 only at
  -- security level 0: the day it drops, they are served)
  local served = {}
  for _, v in ipairs(facts.served_versions(info)) do
    served[v] = true
    if protocols.old[v] then
      problem(list, "error", "OLD_PROTOCOL", ("%s is %s"):format(protocols.label[v],
        info.mode == "client" and "offered" or "served"))
    end
  end
  for _, v in ipairs(info.versions) do
    if protocols.old[v] and not served[v] then
      problem(list, "warning", "ASKS_FOR_OLD_PROTOCOL",
        ("%s is enabled but not served: OpenSSL refuses it at security level %d; it would be served at level 0")
          :format(protocols.label[v], info.security_level or 1))
    end
  end
end

-- Evaluate one service of one host; contexts and their judgements are
-- shared through cache by every service with the same configuration.
-- Which recorded clients meet a service's context: kind and transport.
local CLIENT_SERVICES = { c2s = { "c2s", "starttls" }, s2s_in = { "s2s", "starttls" },
  c2s_direct_tls = { "c2s", "direct" }, s2s_direct_tls = { "s2s", "direct" }, legacy_ssl = { "c2s", "direct" } }

-- What each recorded client gets from the context (in memory, OpenSSL
-- answering), once per configuration and key; the grade's key exchange
-- from what they negotiate, as a scan grades it.
local function simulate_clients(result, svc, ctx, j, opts, cache)
  local which = CLIENT_SERVICES[svc.service]
  if not which or svc.mode ~= "server" then return end
  -- hosts that share a context share its answer; contexts of one
  -- configuration but another certificate, when the key is alike
  local by_ctx = cache.clients_of[ctx]
  local list = by_ctx and by_ctx[svc.service]
  if not list then
    local cfg = {}
    for k, v in pairs(result.config or {}) do cfg[k] = v end
    cfg.certificate, cfg.key = nil, nil
    local kind_of_key, bits = core.context.key_kind(ctx)
    local key = table.concat({ which[1], which[2], serialize(cfg), tostring(kind_of_key), tostring(bits) }, "\0")
    list = cache.clients[key]
    if not list then
      list = simulate.offline(ctx, which[1], which[2])
      if j.facts then simulate.apply_key_limits(list, j.facts.key_type, j.facts.key_bits) end
      cache.clients[key] = list
    end
    by_ctx = by_ctx or {}
    by_ctx[svc.service] = list
    cache.clients_of[ctx] = by_ctx
  end
  result.clients = list
  local kx = simulate.kx_bits(list)
  if kx and j.facts and kx ~= j.facts.kx_bits then
    local f = {}
    for k, v in pairs(j.facts) do f[k] = v end
    f.kx_bits = kx
    result.grade = grade.grade(f, { guide = opts.guide, starttls_cap = opts.starttls_cap })
  end
end

local function evaluate(model, host, svc, opts, cache)
  local config = model.config
  local label = SERVICE_LABEL[svc.service] or svc.service
  if svc.name then label = ("%s port %d"):format(label, svc.port) end
  local result = { host = host, service = svc.service, port = svc.port, label = label,
    mode = svc.mode, problems = {}, reached = not svc.unreached }
  local layers = ordered_layers(svc)
  result.layers = {}
  for i, l in ipairs(layers) do result.layers[i] = l.name end
  for _, p in ipairs(svc.problems or {}) do problem(result.problems, p.severity, p.code, p.message) end
  local _, _, profile_problem, no_tls = model:tls_profile()
  if no_tls then
    problem(result.problems, profile_problem.severity, profile_problem.code, profile_problem.message)
    return result
  end
  local ok, ctx, report, failed = pcall(pipeline.run, {
    layers = layers,
    merge = { policy = "warn", mode = svc.mode },
    build = builder(config, svc, cache, result, model.version),
    harden = false,
    judge = { host = host, any_host = host == nil, service = svc.service, cafile = opts.cafile, capath = opts.capath,
      at = opts.at, guide = opts.guide, starttls_cap = opts.starttls_cap, cache = cache.judged,
      -- what a client gets: a handshake per version the context enables
      probe = true },
  })
  if not ok then
    problem(result.problems, "error", "CONFIG_ERROR", tostring(ctx))
    return result
  end
  local err
  if not ctx then err, report = report, failed end
  result.merge = report.merge
  lowering_problems(model, report.merge, result.problems)
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
  -- what a client can get: the suites and their forward secrecy
  result.suites, result.non_fs = {}, {}
  for _, s in ipairs(facts.served_suites(report.context, j.forward_secrecy)) do
    result.suites[#result.suites + 1] = s.name
    if not s.fs then result.non_fs[#result.non_fs + 1] = s.name end
  end
  result.forward_secrecy = #result.suites == 0 and "none" or #result.non_fs == 0 and "all"
    or #result.non_fs < #result.suites and "some" or "none"
  result.chain = j.chain
  result.grade = j.grade
  judgement_problems(model, report.merge, j, report.context, result.problems)
  if opts.clients ~= false then simulate_clients(result, svc, ctx, j, opts, cache) end
  return result
end

local function check_policy(model, host, list, component)
  local p = model:policy(host)
  if component then
    -- no client logs in to a Component: only its s2s policy applies
    p.c2s_require_encryption, p.allow_unencrypted_plain_auth = nil, nil
  end
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

local AUDIT_OPTIONS = { "text", "env", "dir", "name", "cafile", "capath", "at", "guide", "starttls_cap",
  "prosody", "clients", "files" }

-- The installed Prosody, looked for once per process.
local installed
local function installed_prosody()
  if installed == nil then installed = prosody_model.installed() or false end
  return installed or nil
end

--- The Prosody version the audit models when opts.prosody is not given:
-- the installed one's (prosody_model.installed), else the newest.
-- Returns version, and how it was chosen.
local function default_prosody()
  local found = installed_prosody()
  if found then
    local version, exact = prosody_model.version_of(found.release)
    local how = ("installed Prosody %s (%s)"):format(found.release, found.dir)
    if not exact then how = how .. ", nearest model" end
    return version, how
  end
  local newest = prosody_model.versions[#prosody_model.versions]
  return newest, "no Prosody found on this machine; the newest model"
end

--- tlsharden.audit(path_or_string [, opts]): see docs/reference/audit.md.
function audit.audit(source, opts)
  if type(source) ~= "string" then
    errors.argument("audit", 1, "source", "expected a path or configuration text, got %s",
      errors.quote(source))
  end
  opts = errors.options("audit", 2, "opts", opts, AUDIT_OPTIONS)
  grade.check_guide("audit", opts.guide)
  local version, version_from = opts.prosody, "as asked (the prosody option)"
  if version == nil then
    version, version_from = default_prosody()
  elseif not prosody_model.known_version(version) then
    errors.option("audit", "prosody", "unknown Prosody version %s (known: %s)", errors.quote(version),
      table.concat(prosody_model.versions, ", "))
  end
  local is_text = opts.text
  if is_text == nil then is_text = source:find("\n", 1, true) ~= nil end
  if opts.files ~= nil and type(opts.files) ~= "table" then
    errors.option("audit", "files", "expected a table of texts by path, got %s", errors.quote(opts.files))
  end
  local config = prosody_config.load(source, { text = is_text, env = opts.env, dir = opts.dir, name = opts.name,
    files = opts.files })
  local model = prosody_model.model(config, version)
  local profile_name, _, profile_problem = model:tls_profile()
  local report = {
    file = config.file, files = config.files, guide = opts.guide or grade.default_guide,
    prosody = version, prosody_from = version_from, tls_profile = tostring(profile_name),
    hosts = {}, components = config.components, problems = {},
  }
  if profile_problem then
    problem(report.problems, profile_problem.severity, profile_problem.code, profile_problem.message)
  end
  for _, p in ipairs(model:startup_problems()) do problem(report.problems, p.severity, p.code, p.message) end
  local cache = { contexts = {}, judged = {}, clients = {}, clients_of = setmetatable({}, { __mode = "k" }) }
  local worst
  -- every VirtualHost, then every Component: each gets the contexts
  -- Prosody builds for it
  local names = {}
  for _, host in ipairs(config.hosts) do names[#names + 1] = host end
  for _, host in ipairs(config.components) do names[#names + 1] = host end
  for i, host in ipairs(names) do
    local component = i > #config.hosts and config:rawget(host, "component_module") or nil
    local h = { host = host, services = {}, problems = {}, component = component }
    h.policy = check_policy(model, host, h.problems, component)
    for _, svc in ipairs(model:services(host)) do
      local r = evaluate(model, host, svc, opts, cache)
      h.services[#h.services + 1] = r
      -- what no client reaches (a Component's client contexts) is listed,
      -- not counted in the host's grade
      if r.reached then
        local g = r.grade and r.grade.grade or "F"
        if not h.grade or grade.worse(g, h.grade) then h.grade = g end
      end
    end
    if h.grade and (not worst or grade.worse(h.grade, worst)) then worst = h.grade end
    report.hosts[#report.hosts + 1] = h
  end
  -- every direct TLS port's own context: what a client that sends no
  -- SNI gets
  report.ports = {}
  for _, pc in ipairs(model:ports()) do
    local r = evaluate(model, nil, pc, opts, cache)
    r.name = pc.name
    report.ports[#report.ports + 1] = r
    local g = r.grade and r.grade.grade
    if g and (not worst or grade.worse(g, worst)) then worst = g end
  end
  report.grade = worst
  return report
end

return audit
