--- The live scanner: tlsharden.scan(target [, opts]) grades a running XMPP
-- server from outside. A DOMAIN target is resolved through SRV
-- (_xmpp-client, _xmpps-client, _xmpp-server, _xmpps-server; 5222 and
-- 5269 without any), a HOST:PORT target is one service; every address of
-- every target is scanned (tlsharden.scan.endpoint), one endpoint after
-- another with up to `connections` connections in flight, all in one coroutine
-- scheduler. The result's shape is in docs/reference/scan.md, "Scan result".
local socket = require "socket"
local errors = require "tlsharden.errors"
local grade = require "tlsharden.grade"
local dns = require "tlsharden.scan.dns"
local discovery = require "tlsharden.scan.discovery"
local scan_target = require "tlsharden.scan.target"
local json = require "tlsharden.json"
local problems = require "tlsharden.problems"
local protocols = require "tlsharden.protocols"
local net = require "tlsharden.scan.net"
local endpoint = require "tlsharden.scan.endpoint"

local M = {}

local list = json.list
local FN = "scan"

local OPTIONS = {
  kind = "string", starttls = "string", xmpphost = "string", resolver = true, resolv_conf = "string",
  timeout = "number", connections = "number", cafile = "string", capath = "string", from = "string",
  at = "number", guide = "string", starttls_cap = "boolean", protocols = "table", max_suites = "number",
  order = "boolean", on_progress = "function", sni = true, clients = "boolean", dnssec = "boolean",
  trust_anchor = "string", allow = "function",
}

local DEFAULTS = { timeout = 5, connections = 8 }

-- What a scan's target says, and how an endpoint is named in progress
-- lines (for the command line and surveys).
M.parse_target = scan_target.parse
M.label = discovery.label

local function check_common(opts, needs_resolver)
  local o = { on_progress = opts.on_progress or function() end }
  o.timeout = errors.number(FN, opts, "timeout", 0.01, 3600, DEFAULTS.timeout)
  o.connections = errors.integer(FN, opts, "connections", 1, 256, DEFAULTS.connections)
  o.max_suites = errors.integer(FN, opts, "max_suites", 1, 4000, nil)
  grade.check_guide(FN, opts.guide)
  for _, k in ipairs { "cafile", "capath", "from", "at", "guide", "starttls_cap", "resolv_conf", "order", "clients",
      "dnssec", "trust_anchor", "allow" } do
    o[k] = opts[k]
  end
  if opts.sni ~= nil and opts.sni ~= false and not (type(opts.sni) == "string" and scan_target.is_name(opts.sni)) then
    errors.option(FN, "sni", "expected a host name or false (send none), got %s", errors.quote(opts.sni))
  end
  o.sni = opts.sni
  if opts.from ~= nil and not scan_target.is_name(opts.from) then
    errors.option(FN, "from", "expected a domain name, got %s", errors.quote(opts.from))
  end
  for _, k in ipairs { "cafile", "capath", "resolv_conf", "trust_anchor" } do
    if opts[k] ~= nil then
      local f = io.open(opts[k])
      if not f then errors.option(FN, k, "cannot read %s", errors.quote(opts[k])) end
      f:close()
    end
  end
  o.protocols = protocols.check_option(FN, opts, "protocols")
  o.resolver = opts.resolver
  if opts.resolver ~= nil or needs_resolver then
    -- the resolver's own reader says what is wrong with an address or resolv.conf
    local ok, err = pcall(dns.resolver, { resolver = opts.resolver, resolv_conf = opts.resolv_conf })
    if not ok then
      if errors.is(err) and err.option then errors.option(FN, err.option, "%s", err.reason) end
      errors.reraise(err, FN)
    end
  end
  return o
end

local function check_options(target, opts)
  opts = errors.options(FN, 2, "opts", opts, OPTIONS)
  local t = scan_target.check(FN, 1, target, opts)
  local o = check_common(opts, t.domain ~= nil and t.port == nil)
  for k, v in pairs(t) do o[k] = v end
  return o
end

local function endpoint_settings(o, resolver, dns_result)
  return {
    timeout = o.timeout, connections = o.connections, from = o.from, cafile = o.cafile, capath = o.capath, at = o.at,
    guide = o.guide, starttls_cap = o.starttls_cap, protocols = o.protocols, max_suites = o.max_suites,
    order = o.order, sni = o.sni, clients = o.clients,
    resolver = resolver, tlsa_cache = {},
    on_tlsa = function(q) if dns_result then dns_result.tlsa[q.name] = discovery.trim_query(q) end end,
  }
end

-- Scan one endpoint; a fault of tlsharden's own becomes an endpoint with
-- status "error" rather than a traceback.
local function scan_endpoint(sched, ep, ctx)
  local ok, e = pcall(endpoint.scan, sched, ep, ctx)
  if ok then return e end
  local rec = endpoint.record(ep, ctx)
  rec.status, rec.reason = "error", "internal error: " .. errors.shorten((tostring(e):match("^[^\n]*")))
  rec.elapsed = 0
  return rec
end

-- The endpoints the caller's `allow` refuses are left out, each a problem.
local function allowed(o, eps, result)
  if not o.allow then return eps end
  local out = {}
  for _, ep in ipairs(eps) do
    local ok, why = o.allow(ep)
    if ok then
      out[#out + 1] = ep
    else
      problems.add(result.problems, "error", "ENDPOINT_REFUSED", ("%s is not scanned: %s"):format(discovery.label(ep),
        errors.shorten(tostring(why or "refused"))), { host = ep.host or ep.address, kind = ep.kind })
    end
  end
  return out
end

-- The whole scan of a checked target, inside a task of sched.
local function scan_in(sched, target, o)
  local t0 = net.now()
  local result = {
    target = target, domain = o.domain, kind = o.service_kind or o.kind or "both", started = socket.gettime(),
    dns = discovery.new_dns(), endpoints = list(), problems = problems.list(),
  }
  local found = discovery.endpoints(sched, o, result)
  local eps = allowed(o, found, result)
  local ctx = endpoint_settings(o, o.dns_resolver, result.dns)
  ctx.target, ctx.domain = target, o.domain
  o.on_progress(("%s: %d endpoint%s"):format(target, #eps, #eps == 1 and "" or "s"), 0, #eps)
  if #found == 0 then
    problems.add(result.problems, "error", "NO_ENDPOINTS",
      ("no %s endpoint found for %s"):format(o.kind or "XMPP", o.domain))
  end
  for i, ep in ipairs(eps) do
    local e = scan_endpoint(sched, ep, ctx)
    result.endpoints[#result.endpoints + 1] = e
    local g = e.grade and e.grade.grade
    o.on_progress(("[%d/%d] %s: %s%s%s (%.2f s, %d connections)"):format(i, #eps, discovery.label(e), e.status,
      g and (", grade " .. g) or "", e.reason and (": " .. e.reason) or "", e.elapsed or 0, e.connections or 0),
      i, #eps)
    if g and (not result.grade or grade.worse(g, result.grade)) then result.grade = g end
  end
  result.elapsed = net.now() - t0
  return result
end

--- tlsharden.scan(target [, opts]): see docs/reference/scan.md.
function M.scan(target, opts)
  local o = check_options(target, opts)
  local result
  -- room for the probe's connections, and one for DNS over TCP
  local sched = net.scheduler { per_server = o.connections + 1, max_connections = o.connections + 1,
    timeout = o.timeout }
  sched:spawn(function() result = scan_in(sched, target, o) end)
  sched:run()
  return result
end

--- Check a target and its options as tlsharden.scan does, without
-- scanning (raises the same errors).
function M.check(target, opts)
  check_options(target, opts)
  return true
end

--- tlsharden.scan inside a task of a scheduler the caller runs (any
-- backend, e.g. one inside Prosody's loop): the same result. sched needs
-- room for opts.connections + 1 connections to one server.
function M.run(sched, target, opts)
  return scan_in(sched, target, check_options(target, opts))
end

-- ---- for a survey: many scans in one scheduler (docs/reference/scan.md) ----

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

--- The endpoints of one target and kind, inside a task of ctx.sched.
-- target: "example.org", "host:5222", or a survey list's target (a table
-- with `target` and its own `options`: starttls, xmpphost, kind); kind:
-- "c2s" or "s2s"; ctx: { sched, options (tlsharden.scan's options),
-- timeout }. Returns { target, domain, kind, endpoints, dns, problems,
-- reason (when there is no endpoint) }; bad options raise.
function M.discover(target, kind, ctx)
  local opts = copy(ctx.options)
  if type(target) == "table" then
    -- a survey list line's own target options
    for k, v in pairs(target.options or {}) do opts[k] = v end
    target = target.target
  end
  opts.kind = kind
  opts.timeout = opts.timeout or ctx.timeout
  opts.on_progress = nil
  local o = check_options(target, opts)
  local found = { target = target, domain = o.domain, kind = kind, dns = discovery.new_dns(), problems = problems.list() }
  found.endpoints = discovery.endpoints(ctx.sched, o, found)
  if #found.endpoints == 0 then
    local f = found.problems[1]
    found.reason = f and f.message or ("no %s endpoint found for %s"):format(kind, o.domain)
  end
  return found
end

-- Settings per survey context, made once.
local SETTINGS = setmetatable({}, { __mode = "k" })

--- Check scan options (those of tlsharden.scan that do not name a target)
-- before any scan runs; raises as tlsharden.scan does.
function M.check_options(opts)
  local o = copy(opts)
  o.on_progress = nil
  check_common(errors.options(FN, 2, "opts", o, OPTIONS), false)
end

--- Scan one endpoint of M.discover inside a task of ctx.sched, with up to
-- ctx.connections connections in flight (default: the options' connections).
-- Returns the endpoint record of docs/reference/scan.md.
function M.endpoint(ep, ctx)
  local settings = SETTINGS[ctx]
  if not settings then
    local opts = copy(ctx.options)
    opts.timeout = opts.timeout or ctx.timeout
    opts.connections = ctx.connections or opts.connections
    for _, k in ipairs { "kind", "starttls", "xmpphost", "on_progress" } do opts[k] = nil end
    local o = check_common(errors.options(FN, 2, "opts", opts, OPTIONS), false)
    -- TLSA lookups (for endpoints with a dane_host) go to the resolver
    -- discover used; without a usable one there is no DANE verdict
    local ok, resolver = pcall(discovery.resolver, ctx.sched, o)
    settings = endpoint_settings(o, ok and resolver or nil, nil)
    SETTINGS[ctx] = settings
  end
  return scan_endpoint(ctx.sched, ep, settings)
end

return M
