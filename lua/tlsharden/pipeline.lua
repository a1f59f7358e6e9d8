--- The one path from settings to a grade. Every door of tlsharden runs
-- its steps through here, in this order (docs/architecture.md):
--
--   1. merge    the layers, with provenance and policy      (core.merge)
--   2. build    a LuaSec context from the merged config     (LuaSec, or the caller's builder)
--   3. harden   the live context, failing closed            (core.harden)
--   4. inspect  what the context really has in force        (core.inspect)
--   5. judge    forward secrecy, chain and XMPP identity,   (core.forward_secrecy, core.chain,
--               the grading facts and the grade              facts, grade)
--
-- new_context runs 1-4, mod_tlsharden 1-5 with Prosody's own builder, the
-- audit 1, 2, 4 and 5 (and 3 on a copy, for what mod_tlsharden would
-- change); the scanner has no context and enters at 5 with observed facts
-- (pipeline.judge_observation).
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local facts = require "tlsharden.facts"
local grade = require "tlsharden.grade"

local pipeline = {}

--- The XMPP service a certificate must name for a tlsharden service name
-- ("c2s", "s2s_in", "s2s_out", "c2s_direct_tls", ...): RFC 6120 SRV-IDs.
local function xmpp_service(service)
  if type(service) == "string" and service:match("^s2s") then return "xmpp-server" end
  return "xmpp-client"
end

--- Whether a service starts TLS inside the XMPP stream.
local function is_starttls(service)
  return service == "c2s" or service == "s2s_in" or service == "s2s_out"
end

--- A one-line summary of change records ({ setting, before, after }),
-- each value shortened to width characters; "nothing" for none.
function pipeline.summary(changes, width)
  width = width or 40
  local function short(v)
    v = tostring(v)
    if #v > width then v = v:sub(1, width - 3) .. "..." end
    return v
  end
  local parts = {}
  for _, c in ipairs(changes or {}) do
    parts[#parts + 1] = ("%s %s -> %s"):format(c.setting, short(c.before), short(c.after))
  end
  return #parts > 0 and table.concat(parts, "; ") or "nothing"
end

-- How each setting harden changes reads in a short phrase, in this order.
local PHRASES = {
  { "min_version", function(c) return ("TLS floor %s"):format(tostring(c.after):gsub("^tlsv", ""):gsub("_", ".")) end },
  { "max_version", function() return "TLS 1.3 on" end },
  { "options.no_tlsv1_3", function() return "TLS 1.3 on" end },
  { "ciphers", function() return "weak suites out" end },
  { "ciphersuites", function() return "TLS 1.3 suites" end },
  { "groups", function() return "groups" end },
  { "security_level", function(c) return "security level " .. tostring(c.after) end },
  { "dh_parameters", function() return "automatic DH" end },
  { "options.cipher_server_preference", function(c) return c.after and "server order" or "client order" end },
  { "options.no_compression", function() return "no compression" end },
  { "options.no_renegotiation", function() return "no renegotiation" end },
  { "num_tickets", function(c) return c.after == 1 and "one ticket" or (tostring(c.after) .. " tickets") end },
  { "depth", function(c) return "depth " .. tostring(c.after) end },
}

--- What harden changed on any of several contexts (a list of change
-- lists), in one short phrase: "TLS floor 1.2, server order, one ticket";
-- "nothing" for none.
function pipeline.phrase(change_lists)
  local seen, parts = {}, {}
  for _, p in ipairs(PHRASES) do
    for _, changes in ipairs(change_lists or {}) do
      for _, c in ipairs(changes or {}) do
        if c.setting == p[1] then
          local text = p[2](c)
          if not seen[text] then
            seen[text] = true
            parts[#parts + 1] = text
          end
        end
      end
    end
  end
  return #parts > 0 and table.concat(parts, ", ") or "nothing"
end

--- Step 2 for new_context: ssl.newcontext(cfg), sparing LuaSec two pieces
-- of work:
-- * the groups, when harden sets them anyway (sets_groups);
-- * an unencrypted PKCS#8 key, which core.context.load_key decodes for its own
--   key type in a third of the time LuaSec's loader takes; any other key
--   goes through LuaSec's own loader, exactly as ssl.newcontext loads it.
-- Returns the context, or nil and LuaSec's message; raises (as fn) for a
-- key that does not match the certificate.
function pipeline.build(cfg, sets_groups, fn)
  local ssl = require "ssl"
  local groups, key = cfg.curveslist, cfg.key
  local own_key = type(key) == "string" and cfg.password == nil and cfg.certificates == nil
  if sets_groups then cfg.curveslist = nil end
  if own_key then cfg.key = nil end
  local ctx, err = ssl.newcontext(cfg)
  cfg.curveslist, cfg.key = groups, key
  if not (ctx and own_key) then return ctx, err end
  local ok, loaded = pcall(core.context.load_key, ctx, key)
  if not ok then errors.reraise(loaded, fn or "new_context") end
  if loaded then return ctx end
  local context = require "ssl.context"
  ok, err = context.loadkey(ctx, key, nil)
  if not ok then return nil, err end
  if cfg.certificate and not context.checkkey(ctx) then
    return nil, "private key does not match public key"
  end
  return ctx
end

-- Per-context results remembered in a caller's cache table, so that
-- services sharing one context are judged once.
local function remembered(cache, ctx, field, compute)
  if not cache then return compute() end
  local entry = cache[ctx]
  if not entry then
    entry = {}
    cache[ctx] = entry
  end
  if entry[field] == nil then entry[field] = { compute() } end
  return table.unpack(entry[field])
end

-- Results remembered by a key in a caller's memo table (any context with
-- the same key gets the same result), or computed when there is no key.
local function memoised(memo, key, compute)
  if not (memo and key) then return compute() end
  local entry = memo[key]
  if entry == nil then
    entry = { compute() }
    memo[key] = entry
  end
  return table.unpack(entry)
end

--- What forward secrecy of a context depends on, from its inspection:
-- mode, versions, suites, groups, security level, DH parameters and the
-- certificate's key. The probe handshakes of forward_secrecy test exactly
-- these, so contexts with equal fingerprints get equal verdicts. DH
-- parameters tlsharden did not set are invisible to inspect: dh_source
-- names them (nil: unknown, and then there is no fingerprint); so are
-- groups harden did not set (no fingerprint either).
local PROBE = { probe = true }

local function fingerprint(info, dh_source)
  if not info.groups or (info.dh ~= "auto" and dh_source == nil) then return nil end
  local cert = info.certificate
  local parts = { info.mode, table.concat(info.versions, ","), info.groups, tostring(info.security_level),
    info.dh, info.dh == "auto" and "" or tostring(dh_source), cert and cert.key_type or "-",
    tostring(cert and cert.key_bits or 0), "|" }
  for _, s in ipairs(info.tls12_suites) do parts[#parts + 1] = s.name end
  parts[#parts + 1] = "|"
  for _, s in ipairs(info.tls13_suites) do parts[#parts + 1] = s.name end
  return table.concat(parts, " ")
end

-- Step 4: what the context has in force; with probe (the audit's), also
-- the versions a real handshake gets (inspect's served).
local function inspect(ctx, probe)
  if probe then return core.inspect(ctx, PROBE) end
  return core.inspect(ctx)
end

--- Step 5 for a live context. opts: host, service (tlsharden's service
-- name), curveslist, starttls, cafile, capath, at, guide, starttls_cap,
-- probe (inspect with handshakes: grade the versions the context serves),
-- cache (a table shared across calls: per context), memo (a table shared
-- across contexts: forward secrecy per fingerprint, chains per
-- certificate), dh_source (what names the context's own DH parameters, for
-- the fingerprint), cert_id (what names the context's certificate chain,
-- e.g. its file; without it chains are not shared), any_host (check the
-- chain of a context that serves no one name: trust and dates, not the
-- name); info is step 4's
-- result when known. Returns { forward_secrecy, chain, chain_error, facts,
-- grade }.
function pipeline.judge(ctx, opts, info)
  info = info or remembered(opts.cache, ctx, "inspect", function() return inspect(ctx, opts.probe) end)
  local memo = opts.memo
  local fs_key = memo and fingerprint(info, opts.dh_source)
  local _, fs = remembered(opts.cache, ctx, "fs", function()
    return memoised(memo, fs_key and "fs " .. fs_key, function() return core.forward_secrecy(ctx) end)
  end)
  local out = { forward_secrecy = fs }
  local host = opts.host
  if host and host:find(" ", 1, true) then host = nil end
  if info.mode == "server" and info.certificate and (host or opts.any_host) then
    local xmpp = xmpp_service(opts.service)
    local cert = info.certificate
    local chain_key = opts.cert_id and table.concat({ "chain", tostring(opts.cert_id), cert.not_after,
      tostring(cert.key_type), tostring(host), xmpp, tostring(opts.cafile), tostring(opts.capath), tostring(opts.at) }, " ")
    local ok, c = remembered(opts.cache, ctx, "chain " .. tostring(host) .. " " .. xmpp, function()
      return memoised(memo, chain_key, function()
        return pcall(core.chain, ctx, { host = host, service = xmpp, cafile = opts.cafile,
          capath = opts.capath, at = opts.at })
      end)
    end)
    if ok then out.chain = c else out.chain_error = tostring(c) end
  end
  out.facts = facts.from_context(info, fs, out.chain, { curveslist = opts.curveslist,
    starttls = opts.starttls ~= nil and opts.starttls or is_starttls(opts.service) })
  out.grade = grade.grade(out.facts, { guide = opts.guide, starttls_cap = opts.starttls_cap })
  return out
end

--- Step 5 for a server seen from outside: observed facts (facts.lua) and
-- the chain it sent (a list of DER strings, or nil). opts: host, service,
-- cafile, capath, at, guide, starttls_cap. Returns { chain, chain_error,
-- facts, grade }.
function pipeline.judge_observation(observed, chain_der, opts)
  local out = {}
  if chain_der and #chain_der > 0 then
    local ok, c = pcall(core.chain, chain_der, { host = opts.host,
      service = xmpp_service(opts.service), cafile = opts.cafile, capath = opts.capath,
      at = opts.at })
    if ok then out.chain = c else out.chain_error = tostring(c) end
  end
  out.facts = facts.from_observation(observed, out.chain)
  out.grade = grade.grade(out.facts, { guide = opts.guide, starttls_cap = opts.starttls_cap })
  return out
end

-- An error of a step, raised as an error of the door the caller used
-- (fn), so that the message names the function that was called.
local function reraise(fn, err)
  if fn then errors.reraise(err, fn) end
  error(err, 0)
end

--- Step 1 alone: job.layers merged with job.merge's options, remembered
-- in job.cache when the caller gives one (the same layer tables merged
-- with the same options give the same result; callers that pass a cache
-- promise not to change their layers, nor the result). Returns the merged
-- configuration and the merge report; errors raise, as errors of job.fn.
function pipeline.merge(job)
  local opts = job.merge or {}
  local n = job.layers.n or #job.layers
  local m
  if job.cache then
    local parts = { tostring(opts.policy), tostring(opts.mode), tostring(opts.floor), tostring(opts.order) }
    for i = 1, n do parts[#parts + 1] = tostring(job.layers[i]) end
    local key = table.concat(parts, " ")
    local merges = job.cache.merges
    if not merges then
      merges = {}
      job.cache.merges = merges
    end
    m = merges[key]
    if not m then
      m = { pcall(core.merge, job.layers, opts) }
      merges[key] = m
    end
  else
    m = { pcall(core.merge, job.layers, opts) }
  end
  if not m[1] then reraise(job.fn, m[2]) end
  return m[2], m[3]
end

--- Steps 1 to 3 for one context: what a server needs before it can serve
-- with it. job:
--   fn       the public function running them, named in their errors
--   layers   the merge layers (step 1; omitted: job.config is used as is)
--   merge    merge's options (order, policy, mode, floor)
--   cache    a table in which merges of the same layers are remembered
--   build    function(cfg, job) -> ctx | nil, err (step 2; default pipeline.build)
--   harden   a harden policy (or a function(cfg, ctx, job) returning one,
--            called with the merged configuration and the built context), or false
--            to leave the context alone (step 3)
--   later    true: harden's report stays in C, on the context, until
--            finish asks for it (nothing is allocated in Lua's heap for it
--            meanwhile); report.harden is then false until finish
--   report   a table to fill in as the report, instead of a new one (a
--            caller that takes what it needs from it at once can pass the
--            same table every time: what an earlier prepare or finish put
--            in it is cleared)
-- Returns ctx, report { config, merge, harden } or nil, err, report when
-- the build failed. Errors of steps 1 and 3 raise.
local QUIET = { report = false }
function pipeline.prepare(job)
  local report = job.report or {}
  local cfg = job.config
  report.merge, report.harden, report.context, report.judgement = nil, nil, nil, nil
  if job.layers then cfg, report.merge = pipeline.merge(job) end
  report.config = cfg
  local ctx, err
  if job.build then ctx, err = job.build(cfg, job) else ctx, err = pipeline.build(cfg) end
  if not ctx then return nil, err, report end
  if job.harden ~= false then
    local policy = job.harden
    if type(policy) == "function" then policy = policy(cfg, ctx, job) end
    local ok, hardened = pcall(core.harden, ctx, policy, job.later and QUIET or nil)
    if not ok then reraise(job.fn, hardened) end
    report.harden = not job.later and hardened
  end
  return ctx, report
end

--- Steps 4 and 5 for a context pipeline.prepare made (report is its
-- report; harden's report is fetched from the context when prepare left
-- it there): judge is pipeline.judge's options, or nil to stop after step 4;
-- cache as in pipeline.judge, used for step 4 only for a context nobody
-- changed (unchanged). Fills in report.context and report.judgement;
-- returns report.
function pipeline.finish(ctx, report, judge, unchanged)
  local cache = unchanged and judge and judge.cache or nil
  if report.harden == false then report.harden = core.context.harden_report(ctx) end
  report.context = remembered(cache, ctx, "inspect", function() return inspect(ctx, judge and judge.probe) end)
  if judge then report.judgement = pipeline.judge(ctx, judge, report.context) end
  return report
end

--- Steps 1 to 5 for one context: pipeline.prepare's job, plus judge
-- (pipeline.judge's options, or nil to stop after step 4). Returns ctx,
-- report { config, merge, harden, context, judgement } or nil, err, report
-- when the build failed. Errors of steps 1 and 3 raise.
function pipeline.run(job)
  local ctx, report, failed = pipeline.prepare(job)
  if not ctx then return nil, report, failed end
  -- a context nobody changed here is inspected once per cache
  return ctx, pipeline.finish(ctx, report, job.judge, job.harden == false)
end

return pipeline
