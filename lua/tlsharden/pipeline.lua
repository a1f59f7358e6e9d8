--- The one path from settings to a grade. Every door of tlsharden runs
-- its steps through here, in this order (docs/architecture.md):
--
--   1. merge    the layers, with provenance and policy      (core.merge_with)
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
local facts = require "tlsharden.facts"
local grade = require "tlsharden.grade"

local pipeline = {}

--- The XMPP service a certificate must name for a tlsharden service name
-- ("c2s", "s2s_in", "s2s_out", "c2s_direct_tls", ...): RFC 6120 SRV-IDs.
function pipeline.xmpp_service(service)
  if type(service) == "string" and service:match("^s2s") then return "xmpp-server" end
  return "xmpp-client"
end

--- Whether a service starts TLS inside the XMPP stream.
function pipeline.is_starttls(service)
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

--- Step 2 for new_context: ssl.newcontext(cfg), sparing LuaSec two pieces
-- of work:
-- * the groups, when harden sets them anyway (sets_groups);
-- * an unencrypted PKCS#8 key, which core.load_key decodes for its own
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
  local ok, loaded = pcall(core.load_key, ctx, key)
  if not ok then
    error(("tlsharden.%s: %s"):format(fn or "new_context",
      (tostring(loaded):gsub("^tlsharden%.load_key: ", ""))), 0)
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

--- Step 5 for a live context. opts: host, service (tlsharden's service
-- name), curveslist, starttls, cafile, capath, at, guide, starttls_cap,
-- cache (a table shared across calls); info is step 4's result when known.
-- Returns { forward_secrecy, chain, chain_error, facts, grade }.
function pipeline.judge(ctx, opts, info)
  info = info or remembered(opts.cache, ctx, "inspect", function() return core.inspect(ctx) end)
  local _, fs = remembered(opts.cache, ctx, "fs", function() return core.forward_secrecy(ctx) end)
  local out = { forward_secrecy = fs }
  local host = opts.host
  if info.mode == "server" and info.certificate and host and not host:find(" ", 1, true) then
    local xmpp = pipeline.xmpp_service(opts.service)
    local ok, c = remembered(opts.cache, ctx, "chain " .. host .. " " .. xmpp, function()
      return pcall(core.chain, ctx, { host = host, service = xmpp, cafile = opts.cafile,
        capath = opts.capath, at = opts.at })
    end)
    if ok then out.chain = c else out.chain_error = tostring(c) end
  end
  out.facts = facts.from_context(info, fs, out.chain, { curveslist = opts.curveslist,
    starttls = opts.starttls ~= nil and opts.starttls or pipeline.is_starttls(opts.service) })
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
      service = pipeline.xmpp_service(opts.service), cafile = opts.cafile, capath = opts.capath,
      at = opts.at })
    if ok then out.chain = c else out.chain_error = tostring(c) end
  end
  out.facts = facts.from_observation(observed, out.chain)
  out.grade = grade.grade(out.facts, { guide = opts.guide, starttls_cap = opts.starttls_cap })
  return out
end

-- An error of a step, reworded as an error of the door the caller used
-- (fn), so that the message names the function that was called.
local function reraise(fn, err)
  if fn and type(err) == "string" then
    err = err:gsub("^tlsharden%.[%w_]+: ", "tlsharden." .. fn .. ": ", 1)
  end
  error(err, 0)
end

--- Steps 1 to 5 for one context. job:
--   fn       the public function running them, named in their errors
--   layers   the merge layers (step 1; omitted: job.config is used as is)
--   merge    merge_with's options (order, policy, mode, floor)
--   build    function(cfg) -> ctx | nil, err (step 2; default pipeline.build)
--   harden   a harden policy (or a function(cfg) returning one), or false
--            to leave the context alone (step 3)
--   judge    pipeline.judge's options, or nil to stop after step 4
-- Returns ctx, report { config, merge, harden, context, judgement } or
-- nil, err, report when the build failed. Errors of steps 1 and 3 raise.
function pipeline.run(job)
  local report = {}
  local cfg = job.config
  if job.layers then
    local ok, merged, merge_report = pcall(core.merge_with, job.merge or {},
      table.unpack(job.layers, 1, job.layers.n or #job.layers))
    if not ok then reraise(job.fn, merged) end
    cfg, report.merge = merged, merge_report
  end
  report.config = cfg
  local ctx, err = (job.build or pipeline.build)(cfg)
  if not ctx then return nil, err, report end
  if job.harden ~= false then
    local policy = job.harden
    if type(policy) == "function" then policy = policy(cfg) end
    local ok, hardened = pcall(core.harden, ctx, policy)
    if not ok then reraise(job.fn, hardened) end
    report.harden = hardened
  end
  -- a context nobody changed here is inspected once per cache
  local cache = job.harden == false and job.judge and job.judge.cache or nil
  report.context = remembered(cache, ctx, "inspect", function() return core.inspect(ctx) end)
  if job.judge then report.judgement = pipeline.judge(ctx, job.judge, report.context) end
  return ctx, report
end

return pipeline
