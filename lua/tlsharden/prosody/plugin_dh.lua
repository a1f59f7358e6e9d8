--- mod_tlsharden's choice of harden's DH rule (step 3) for a context
-- Prosody built: without DH parameters only automatic ones can make DHE
-- work ("on", no test); with them, harden's test handshake is made once
-- for each set of parameters, key type and size, and suites, and contexts
-- equal in these follow its outcome (remembered in the memo of the
-- configuration, m.dhe).
--
-- Nothing here touches Prosody.
local context = require "tlsharden.context"

local plugin_dh = {}

--- What names the DH parameters of Prosody's final configuration (the
-- parameters themselves, or their file), or nil for none.
function plugin_dh.source(cfg)
  local dh = type(cfg) == "table" and cfg.dhparam
  if type(dh) == "function" then
    local ok, pem = pcall(dh, false, 2048)
    return ok and type(pem) == "string" and pem or "a function"
  end
  return type(dh) == "string" and dh or nil
end
local dh_source = plugin_dh.source

local function has_option(list, name)
  if type(list) ~= "table" then return false end
  for _, o in ipairs(list) do if o == name then return true end end
  return false
end

-- The table under t[k1][k2]..., made where missing (nil keys stand for
-- themselves as false): lookups of known keys allocate nothing.
local function slot(t, ...)
  for i = 1, select("#", ...) do
    local k = select(i, ...)
    if k == nil then k = false end
    local next_t = t[k]
    if not next_t then
      next_t = {}
      t[k] = next_t
    end
    t = next_t
  end
  return t
end

--- The DH rule with its harden policies, one per outcome, made once:
-- with allow_insecure, harden keeps the version floor, the suites and the
-- security level as they are. Returns { policy = function, remember =
-- function } (see below).
function plugin_dh.new(allow_insecure)
  local function policy_with(dhe)
    local p = { dhe = dhe }
    if allow_insecure then
      p.min_version, p.filter_ciphers, p.security_level = false, false, false
    end
    return p
  end
  local POLICY = { auto = policy_with("auto"), on = policy_with("on"), keep = policy_with("keep") }
  local D = {}

  --- harden's policy for ctx, which Prosody built from cfg in mode, under
  -- the memo m; and the memo slot to record the test's outcome in (nil:
  -- nothing to record).
  function D.policy(m, ctx, cfg, mode)
    if mode ~= "server" then return POLICY.keep end
    local dh = dh_source(cfg)
    if not dh then return POLICY.on end
    local key_type, key_bits = context.key_kind(ctx)
    local known = slot(m.dhe, key_type, key_bits, dh, cfg.ciphers, cfg.protocol,
      has_option(cfg.options, "no_tlsv1_2"))
    if known.outcome then return POLICY[known.outcome] end
    return POLICY.auto, known
  end

  --- D.policy as pipeline.prepare's harden function for mod_tlsharden's
  -- job j (its memo in j.cache, Prosody's final configuration in j.cfg):
  -- the slot to record the outcome in goes into j.dhe_slot.
  function D.harden(_, ctx, j)
    local policy
    policy, j.dhe_slot = D.policy(j.cache, ctx, j.cfg, j.mode)
    return policy
  end

  --- After harden ran on ctx with the policy of an unknown outcome: the
  -- outcome, for the contexts equal to it (whether harden had to set
  -- automatic DH parameters).
  function D.remember(known, ctx)
    local set = false
    for _, change in ipairs(context.harden_report(ctx).changes) do set = set or change.setting == "dh_parameters" end
    known.outcome = set and "on" or "keep"
  end

  return D
end

return plugin_dh
