--- The audit of a whole Prosody configuration: for every host and TLS
-- service, the effective configuration as Prosody 0.12 would merge it, the
-- context LuaSec builds from it, what is really in force, the chain, the
-- forward secrecy, a grade, and what mod_tlsharden would change.
local ssl = require "ssl"
local core = require "tlsharden.core"
local profiles = require "tlsharden.profiles"
local prosodycfg = require "tlsharden.prosodycfg"
local grade = require "tlsharden.grade"
local chain = require "tlsharden.chain"
local harden = require "tlsharden.harden"

local audit = {}

local PATH_KEYS = { "key", "certificate", "cafile", "capath", "dhparam" }

-- Layers in "later wins" order: base, then the extras from last to first.
local function ordered_layers(svc)
  local list = {}
  for _, l in ipairs(svc.base) do list[#list + 1] = l end
  for i = #svc.extras, 1, -1 do
    if svc.extras[i] then list[#list + 1] = svc.extras[i] end
  end
  return list
end

--- The effective configuration of one service, merged as Prosody would:
-- returns cfg, merge report.
function audit.effective(config, svc, policy)
  local layers = ordered_layers(svc)
  local cfg, report = core.merge_with({ policy = policy or "warn", mode = svc.mode }, table.unpack(layers))
  -- certmanager.create_context: paths relative to the configuration
  for _, k in ipairs(PATH_KEYS) do
    if type(cfg[k]) == "string" then cfg[k] = prosodycfg.resolve(config.dir, cfg[k]) end
  end
  return cfg, report
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

local function rsa_eq_groups(groups)
  local weakest
  for g in (groups or ""):gmatch("[^:]+") do
    local bits = ({ X25519 = 253, X448 = 448, ["P-256"] = 256, prime256v1 = 256, secp256r1 = 256,
      ["P-384"] = 384, secp384r1 = 384, ["P-521"] = 521, secp521r1 = 521 })[g]
    local eq = bits and grade.rsa_equivalent("EC", bits)
    if eq and (not weakest or eq < weakest) then weakest = eq end
  end
  return weakest
end

--- The grading facts of a context (from inspect, forward_secrecy and chain).
-- info and fs may be given when already known.
function audit.facts(ctx, cfg, chain_result, starttls, info, fs)
  info = info or core.inspect(ctx)
  if not fs then
    local _
    _, fs = core.forward_secrecy(ctx)
  end
  local suites = {}
  for _, s in ipairs(fs.suites) do
    if s.usable ~= false then suites[#suites + 1] = s end  -- never negotiated otherwise
  end
  local kx = rsa_eq_groups(info.groups or cfg.curveslist or "X25519:P-256:X448:P-521:P-384")
  for _, s in ipairs(suites) do
    if s.kx == "DHE" and info.certificate then
      local dh = info.certificate.key_type == "RSA" and info.certificate.key_bits or 2048
      if not kx or dh < kx then kx = dh end
    end
  end
  local leaf = chain_result and chain_result.certs[1]
  local problems = {}
  for _, p in ipairs(chain_result and chain_result.problems or {}) do problems[p.code] = true end
  return {
    protocols = info.versions,
    suites = suites,
    key = info.certificate and { type = info.certificate.key_type, bits = info.certificate.key_bits },
    kx_bits = kx,
    cert = chain_result and {
      trusted = chain_result.trusted,
      self_signed = problems.SELF_SIGNED or (leaf and leaf.self_signed) or false,
      expired = problems.EXPIRED or false,
      host_match = not problems.HOST_MISMATCH,
      signature_digest = leaf and leaf.signature_digest,
    } or nil,
    compression = false,           -- Debian's OpenSSL 3 has no TLS compression
    secure_renegotiation = true,   -- OpenSSL always supports RFC 5746
    fallback_scsv = true,          -- OpenSSL servers honour TLS_FALLBACK_SCSV
    starttls = starttls,
  }, info, fs
end

local SERVICE_LABEL = {
  c2s = "c2s STARTTLS", s2s_in = "s2s incoming", s2s_out = "s2s outgoing",
  c2s_direct_tls = "c2s direct TLS", legacy_ssl = "c2s legacy SSL", https = "HTTPS",
}

local function problem(list, severity, code, message)
  list[#list + 1] = { severity = severity, code = code, message = message }
end

-- Evaluate one service of one host; results of identical configurations
-- are shared through cache.
local function evaluate(config, host, svc, opts, cache)
  local result = { host = host, service = svc.service, label = SERVICE_LABEL[svc.service] or svc.service,
    mode = svc.mode, problems = {} }
  local ok, cfg, merge_report = pcall(audit.effective, config, svc, "warn")
  if not ok then
    problem(result.problems, "error", "CONFIG_ERROR", tostring(cfg):gsub("^[^:]*:%d+: ", ""))
    return result
  end
  result.config = cfg
  result.merge = merge_report
  local layers = {}
  for _, l in ipairs(ordered_layers(svc)) do layers[#layers + 1] = l.name end
  result.layers = layers
  -- Only what survives the merge matters: a weak core default that the
  -- tls_profile replaces is not a finding.
  for _, w in ipairs(merge_report.warnings) do
    local origin = merge_report.origin[w.key]
    local item = w.key:match("^options%.(.*)$")
    if item then origin = merge_report.origin.options[item] end
    if origin == w.layer then
      problem(result.problems, w.lowers and "error" or "warning", "LOWERS_SECURITY",
        ("%s sets %s: %s"):format(tostring(w.layer), w.key, w.message))
    end
  end
  if svc.mode == "server" and not cfg.certificate then
    problem(result.problems, "error", "NO_CERTIFICATE",
      "no certificate found (Prosody looks in the certificates folder and the host's ssl.certificate)")
    return result
  end
  local key = serialize(cfg)
  local entry = cache[key]
  if not entry then
    entry = {}
    cache[key] = entry
    local ctx, err = ssl.newcontext(cfg)
    if not ctx then
      entry.error = err
    else
      entry.ctx = ctx
      entry.inspect = core.inspect(ctx)
      local _
      _, entry.fs = core.forward_secrecy(ctx)
      local hctx = ssl.newcontext(cfg)
      if hctx then
        local hok, hreport = pcall(harden.harden, hctx)
        entry.hardening = hok and hreport.changes or { { setting = "harden", before = "", after = tostring(hreport) } }
        entry.hardened = core.inspect(hctx)
      end
    end
  end
  if entry.error then
    problem(result.problems, "error", "CONTEXT_ERROR", "LuaSec cannot build the context: " .. tostring(entry.error))
    return result
  end
  local chain_result
  if svc.mode == "server" then
    -- Services of a host that serve the same chain for the same XMPP
    -- service (c2s STARTTLS and direct TLS) share one check.
    local xmpp_service = svc.service:match("^s2s") and "xmpp-server" or "xmpp-client"
    if entry.chains_host ~= host then entry.chains, entry.chains_host = {}, host end
    local ckey = xmpp_service
    local cached = entry.chains[ckey]
    local cok, c
    if cached then
      cok, c = cached[1], cached[2]
    else
      cok, c = pcall(chain.check, entry.ctx, { host = host, cafile = opts.cafile, capath = opts.capath,
        service = xmpp_service, at = opts.at })
      entry.chains[ckey] = { cok, c }  -- kept for this host only
    end
    if cok then
      chain_result = c
      for _, p in ipairs(c.problems) do
        problem(result.problems, p.severity, p.code, p.message)
      end
    else
      problem(result.problems, "error", "CHAIN_ERROR", tostring(c))
    end
  end
  local facts, info, fs = audit.facts(entry.ctx, cfg, chain_result, svc.service == "c2s" or svc.service == "s2s_in",
    entry.inspect, entry.fs)
  result.context = info
  result.forward_secrecy = fs.fs
  result.non_fs = fs.non_fs
  result.chain = chain_result
  result.grade = grade.grade(facts, { guide = opts.guide, starttls_cap = opts.starttls_cap })
  result.tlsharden_would_change = entry.hardening
  if fs.fs ~= "all" then
    problem(result.problems, "error", "NO_FORWARD_SECRECY",
      ("%d suites without forward secrecy: %s"):format(#fs.non_fs, table.concat(fs.non_fs, ", ")))
  end
  if #fs.unusable > 0 then
    problem(result.problems, "warning", "UNUSABLE_SUITES",
      ("%d suites can never be negotiated (DHE without DH parameters, or ECDHE without a group): %s")
      :format(#fs.unusable, table.concat(fs.unusable, ", ")))
  end
  for _, v in ipairs(info.versions) do
    if v == "tlsv1" or v == "tlsv1_1" or v == "sslv3" then
      problem(result.problems, "error", "OLD_PROTOCOL", ("%s is enabled"):format(v))
    end
  end
  return result
end

local function check_policy(config, host, list)
  local p = config:policy(host)
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

--- tlsharden.audit(path_or_string [, opts]): see docs/audit.md.
function audit.audit(source, opts)
  if type(source) ~= "string" then
    error(("tlsharden.audit: bad argument #1: expected a path or configuration text, got %s"):format(type(source)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then
    error(("tlsharden.audit: bad argument #2 'opts': expected a table, got %s"):format(type(opts)), 2)
  end
  local is_text = opts.text
  if is_text == nil then is_text = source:find("\n", 1, true) ~= nil end
  local config = prosodycfg.load(source, { text = is_text, env = opts.env, dir = opts.dir, name = opts.name })
  -- an unknown tls_profile is an error for the whole configuration
  config:profile_layer(profiles)
  local report = {
    file = config.file, files = config.files, guide = opts.guide or grade.default_guide,
    tls_profile = config:get("*", "tls_profile") or "intermediate",
    hosts = {}, components = config.components, problems = {},
  }
  local cache = {}
  local worst
  for _, host in ipairs(config.hosts) do
    local h = { host = host, services = {}, problems = {} }
    h.policy = check_policy(config, host, h.problems)
    for _, svc in ipairs(config:services(profiles, host)) do
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
