--- The live scanner: tlsharden.scan(target [, opts]) grades a running XMPP
-- server from outside. A DOMAIN target is resolved through SRV
-- (_xmpp-client, _xmpps-client, _xmpp-server, _xmpps-server; 5222 and
-- 5269 without any), a HOST:PORT target is one service; every address of
-- every target is scanned (tlsharden.scan.endpoint), one endpoint after
-- another with up to `jobs` connections in flight, all in one coroutine
-- scheduler. The result's shape is in docs/scan.md, "Scan result".
local socket = require "socket"
local errors = require "tlsharden.errors"
local grade = require "tlsharden.grade"
local dns = require "tlsharden.scan.dns"
local json = require "tlsharden.json"
local problems = require "tlsharden.problems"
local net = require "tlsharden.scan.net"
local sock = require "tlsharden.scan.sock"
local endpoint = require "tlsharden.scan.endpoint"

local M = {}

local list = json.list
local FN = "scan"

local OPTIONS = {
  kind = "string", starttls = "string", xmpphost = "string", resolver = true, resolv_conf = "string",
  timeout = "number", jobs = "number", cafile = "string", capath = "string", from = "string",
  at = "number", guide = "string", starttls_cap = "boolean", protocols = "table", max_suites = "number",
  order = "boolean", progress = "function",
}

M.DEFAULTS = { timeout = 5, jobs = 8 }

local function is_ipv4(s)
  local p = dns.parse_server(s)
  return p ~= nil and p.family == "inet" and p.host == s
end

local function is_ip(s)
  local p = dns.parse_server(s)
  return p ~= nil and (p.host == s or ("[" .. p.host .. "]") == s)
end

-- A domain name as XMPP takes one: labels of letters, digits, '-' and '_'.
local function is_name(s)
  if #s == 0 or #s > 253 or s:find("^%.") or s:find("%.%.") then return false end
  for label in (s:gsub("%.$", "")):gmatch("[^.]+") do
    if #label > 63 or not label:find("^[%w_-]+$") then return false end
  end
  return not is_ipv4(s)
end

--- Parse a target: "example.org" -> { domain = "example.org" };
-- "host:5222", "192.0.2.1:5222", "[2001:db8::1]:5222" -> { host, port,
-- literal (the host is an address) }. Returns nil, reason for anything else.
function M.parse_target(target)
  if type(target) ~= "string" or target == "" then return nil, "expected DOMAIN or HOST:PORT" end
  if target:find("[%s/@]") then return nil, "expected DOMAIN or HOST:PORT, without spaces, '/' or '@'" end
  local host, port = target:match("^%[([^%]]+)%]:(%d+)$")
  if host then
    local p = dns.parse_server(host)
    if not p or p.family ~= "inet6" then return nil, "not an IPv6 address in brackets" end
    host = p.host
  else
    local rest
    host, rest = target:match("^([^:]+):(.*)$")
    if host then
      port = rest:match("^(%d+)$")
      if not port then
        if rest:find(":", 1, true) then return nil, "an IPv6 address needs brackets and a port: [::1]:5222" end
        return nil, "expected a port number after ':'"
      end
    end
  end
  if port then
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "port out of range (1-65535)" end
    if not is_ip(host) and not is_name(host) then return nil, "not a host name or address" end
    return { host = host, port = port, literal = is_ip(host) }
  end
  if is_ip(target) then
    if target:find(":", 1, true) then return nil, "an IPv6 address needs brackets and a port: [::1]:5222" end
    return nil, "an address needs a port (ADDRESS:PORT), and --xmpphost for the domain"
  end
  if not is_name(target) then return nil, "not a domain name" end
  return { domain = target:gsub("%.$", ""):lower() }
end

-- The options every scan takes, whatever its target (opts already
-- checked for unknown names). Returns the settings table o.
local function check_common(opts, needs_resolver)
  local o = { progress = opts.progress or function() end }
  if opts.kind ~= nil and opts.kind ~= "c2s" and opts.kind ~= "s2s" then
    errors.option(FN, "kind", "expected 'c2s' or 's2s' (nil: both), got %s", errors.quote(opts.kind))
  end
  o.kind = opts.kind
  o.timeout = errors.number(FN, opts, "timeout", 0.01, 3600, M.DEFAULTS.timeout)
  o.jobs = errors.number(FN, opts, "jobs", 1, 256, M.DEFAULTS.jobs)
  if o.jobs % 1 ~= 0 then errors.option(FN, "jobs", "expected a whole number, got %s", errors.quote(o.jobs)) end
  if opts.max_suites ~= nil then
    o.max_suites = errors.number(FN, opts, "max_suites", 1, 4000, 128)
    if o.max_suites % 1 ~= 0 then
      errors.option(FN, "max_suites", "expected a whole number, got %s", errors.quote(o.max_suites))
    end
  end
  if opts.guide ~= nil and not grade.guides[opts.guide] then
    errors.option(FN, "guide", "unknown guide %s (known: 2009q, 2009r)", errors.quote(opts.guide))
  end
  for _, k in ipairs { "cafile", "capath", "from", "at", "guide", "starttls_cap", "protocols", "resolv_conf", "order" } do
    o[k] = opts[k]
  end
  if opts.from ~= nil and not is_name(opts.from) then
    errors.option(FN, "from", "expected a domain name, got %s", errors.quote(opts.from))
  end
  for _, k in ipairs { "cafile", "capath", "resolv_conf" } do
    if opts[k] ~= nil then
      local f = io.open(opts[k])
      if not f then errors.option(FN, k, "cannot read %s", errors.quote(opts[k])) end
      f:close()
    end
  end
  if opts.protocols ~= nil then
    local known = { sslv2 = true, sslv3 = true, tlsv1 = true, tlsv1_1 = true, tlsv1_2 = true, tlsv1_3 = true }
    for i, p in ipairs(opts.protocols) do
      if not known[p] then
        errors.option(FN, "protocols", "item #%d: expected sslv2, sslv3, tlsv1, tlsv1_1, tlsv1_2 or tlsv1_3, got %s",
          i, errors.quote(p))
      end
    end
  end
  o.resolver = opts.resolver
  if opts.resolver ~= nil or needs_resolver then
    -- the resolver's own reader says what is wrong with an address or resolv.conf
    local ok, err = pcall(dns.resolver, { resolver = opts.resolver, resolv_conf = opts.resolv_conf })
    if not ok then
      local name, rest = tostring(err):match("^tlsharden%.scan%.dns%.resolver: bad option '([%w_]+)': (.*)$")
      errors.option(FN, name or "resolver", "%s", rest or tostring(err))
    end
  end
  return o
end

local function check_options(target, opts)
  local t, why = M.parse_target(target)
  if not t then
    errors.argument(FN, 1, "target", "%s: %s", why, errors.quote(target))
  end
  opts = errors.options(FN, 2, "opts", opts, OPTIONS)
  local o = check_common(opts, t.domain ~= nil)
  if t.domain then
    if opts.starttls ~= nil then
      errors.option(FN, "starttls", "is for HOST:PORT targets; %s is a domain (its SRV records say)", errors.quote(target))
    end
    if opts.xmpphost ~= nil then
      errors.option(FN, "xmpphost", "is for HOST:PORT targets; %s is the domain", errors.quote(target))
    end
    o.domain = t.domain
  else
    local st = opts.starttls
    if st ~= nil and st ~= "c2s" and st ~= "s2s" and st ~= "none" then
      errors.option(FN, "starttls", "expected 'c2s', 's2s' or 'none', got %s", errors.quote(st))
    end
    if st and st ~= "none" and o.kind and o.kind ~= st then
      errors.option(FN, "starttls", "%s STARTTLS contradicts kind %s", errors.quote(st), errors.quote(o.kind))
    end
    st = st or o.kind or "c2s"
    o.host, o.port, o.literal = t.host, t.port, t.literal
    o.service_kind = st == "none" and (o.kind or "c2s") or st
    o.tls = st == "none" and "direct" or "starttls"
    if opts.xmpphost ~= nil then
      if not is_name(opts.xmpphost) then
        errors.option(FN, "xmpphost", "expected a domain name, got %s", errors.quote(opts.xmpphost))
      end
      o.domain = opts.xmpphost:gsub("%.$", ""):lower()
    elseif t.literal then
      errors.argument(FN, 1, "target", "%s is an address: the XMPP domain (the stream's 'to') must be given"
        .. " as xmpphost", errors.quote(target))
    else
      o.domain = t.host:lower()
    end
  end
  o.target = target
  return o
end

-- ---- DNS, trimmed to plain data ----

local function trim_query(r)
  local records = list()
  for i, rr in ipairs(r.records or {}) do
    local t = { type = rr.type, ttl = rr.ttl }
    for _, k in ipairs { "priority", "weight", "port", "target", "address", "usage", "selector", "matching_type", "data" } do
      t[k] = rr[k]
    end
    records[i] = t
  end
  return { name = r.name, type = r.type, records = records, authenticated = r.authenticated == true,
    rcode = r.rcode, server = r.server, transport = r.transport, cnames = r.cnames and list { table.unpack(r.cnames) },
    failure = r.failure and problems.copy(r.failure) or nil,
    problems = r.problems and #r.problems > 0 and r.problems or nil }
end

local function trim_addresses(a)
  local addrs = list()
  for i, x in ipairs(a.addresses or {}) do addrs[i] = { address = x.address, family = x.family } end
  return { name = a.name, addresses = addrs, authenticated = a.authenticated == true,
    failure = a.failure and problems.copy(a.failure) or nil }
end

local function resolver_for(sched, o)
  return dns.resolver { resolver = o.resolver, resolv_conf = o.resolv_conf, timeout = o.timeout, attempts = 1,
    exchange = sock.dns_exchange(sched) }
end

-- The endpoints of a domain, both kinds looked up at once.
local function domain_endpoints(sched, o, result)
  local r = resolver_for(sched, o)
  o.dns_resolver = r
  result.dns.resolver = list()
  for i, s in ipairs(r.servers) do
    result.dns.resolver[i] = (s.family == "inet6" and "[%s]:%d" or "%s:%d"):format(s.host, s.port)
  end
  local kinds = o.kind and { o.kind } or { "c2s", "s2s" }
  local found, g = {}, sched:group()
  for i, kind in ipairs(kinds) do
    g:spawn(function() found[i] = r:xmpp_endpoints(o.domain, { kind = kind }) end)
  end
  g:wait()
  local eps = {}
  result.dns.authenticated = true
  for _, f in ipairs(found) do
    for _, ep in ipairs(f.endpoints) do
      ep.dane_host = ep.host
      eps[#eps + 1] = ep
    end
    for name, q in pairs(f.lookups) do result.dns.srv[name] = trim_query(q) end
    for name, a in pairs(f.addresses) do
      if a then result.dns.addresses[name] = trim_addresses(a) end
    end
    for _, p in ipairs(f.problems) do result.problems[#result.problems + 1] = p end
    result.dns.authenticated = result.dns.authenticated and f.authenticated
  end
  return eps
end

-- The addresses of a HOST:PORT target: the address itself, the resolver's
-- answer when one was given, else the system's (getaddrinfo: /etc/hosts).
local function host_endpoints(sched, o, result)
  local base = { kind = o.service_kind, tls = o.tls, host = o.host, port = o.port, source = "target" }
  local addrs = {}
  if o.literal then
    local p = dns.parse_server(o.host)
    addrs[1] = { address = p.host, family = p.family }
    result.dns.source = "literal"
  elseif o.resolver then
    local r = resolver_for(sched, o)
    o.dns_resolver = r
    local a = r:addresses(o.host)
    result.dns.source = "resolver"
    result.dns.addresses[o.host:lower()] = trim_addresses(a)
    addrs = a.addresses
    if a.failure then result.problems[#result.problems + 1] = problems.copy(a.failure) end
    base.dane_host = o.host
  else
    result.dns.source = "system"
    local info, err = socket.dns.getaddrinfo(o.host)
    local seen = {}
    for _, x in ipairs(info or {}) do
      if not seen[x.addr] then
        seen[x.addr] = true
        addrs[#addrs + 1] = { address = x.addr, family = x.family }
      end
    end
    local trimmed = list()
    for i, x in ipairs(addrs) do trimmed[i] = { address = x.address, family = x.family } end
    result.dns.addresses[o.host:lower()] = { name = o.host, addresses = trimmed }
    if #addrs == 0 then
      problems.add(result.problems, "error", "NO_ADDRESS",
        ("%s has no address (%s)"):format(o.host, tostring(err or "no answer")), { host = o.host })
    end
  end
  local eps = {}
  for _, a in ipairs(addrs) do
    local ep = {}
    for k, v in pairs(base) do ep[k] = v end
    ep.address, ep.family = a.address, a.family
    eps[#eps + 1] = ep
  end
  return eps
end

local function label(e)
  local addr = (e.family == "inet6" and "[%s]:%d" or "%s:%d"):format(e.address, e.port)
  local name = e.host ~= e.address and e.host or e.domain
  return ("%s %s %s %s"):format(e.kind, e.tls == "starttls" and "STARTTLS" or "direct TLS", name, addr)
end
M.label = label

local function new_dns()
  return { srv = {}, addresses = {}, tlsa = {} }
end

-- The endpoints of a target inside a scheduler task, each carrying the
-- target and the XMPP domain. result collects dns and problems.
local function discover_in(sched, o, result)
  local eps
  if o.port then eps = host_endpoints(sched, o, result) else eps = domain_endpoints(sched, o, result) end
  for _, ep in ipairs(eps) do
    ep.target, ep.domain = o.target, o.domain
  end
  return eps
end

-- What endpoint.scan needs of a scan's settings.
local function endpoint_settings(o, resolver, dns_result)
  return {
    timeout = o.timeout, jobs = o.jobs, from = o.from, cafile = o.cafile, capath = o.capath, at = o.at,
    guide = o.guide, starttls_cap = o.starttls_cap, protocols = o.protocols, max_suites = o.max_suites,
    order = o.order,
    resolver = resolver, tlsa_cache = {},
    on_tlsa = function(q) if dns_result then dns_result.tlsa[q.name] = trim_query(q) end end,
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

--- tlsharden.scan(target [, opts]): see docs/scan.md.
function M.scan(target, opts)
  local o = check_options(target, opts)
  local t0 = net.now()
  local result = {
    target = target, domain = o.domain, kind_requested = o.service_kind or o.kind or "both", started = socket.gettime(),
    dns = new_dns(), endpoints = list(), problems = problems.list(),
  }
  -- room for the probe's connections, and one for DNS over TCP
  local sched = net.scheduler { per_host = o.jobs + 1, max_connections = o.jobs + 1, timeout = o.timeout }
  sched:spawn(function()
    local eps = discover_in(sched, o, result)
    local ctx = endpoint_settings(o, o.dns_resolver, result.dns)
    ctx.target, ctx.domain = target, o.domain
    o.progress(("%s: %d endpoint%s"):format(target, #eps, #eps == 1 and "" or "s"))
    if #eps == 0 then
      problems.add(result.problems, "error", "NO_ENDPOINTS",
        ("no %s endpoint found for %s"):format(o.kind or "XMPP", o.domain))
    end
    for i, ep in ipairs(eps) do
      local e = scan_endpoint(sched, ep, ctx)
      result.endpoints[#result.endpoints + 1] = e
      local g = e.grade and e.grade.grade
      o.progress(("[%d/%d] %s: %s%s%s (%.2f s, %d connections)"):format(i, #eps, label(e), e.status,
        g and (", grade " .. g) or "", e.reason and (": " .. e.reason) or "", e.elapsed or 0, e.connections or 0))
      if g and (not result.grade or grade.worse(g, result.grade)) then result.grade = g end
    end
  end)
  sched:run()
  result.elapsed = net.now() - t0
  return result
end

-- ---- for a survey: many scans in one scheduler (docs/scan.md) ----

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

--- The endpoints of one target and kind, inside a task of ctx.sched.
-- target: "example.org", "host:5222", or a table with `target`; kind:
-- "c2s" or "s2s"; ctx: { sched, options (tlsharden.scan's options),
-- timeout }. Returns { target, domain, kind, endpoints, dns, problems,
-- reason (when there is no endpoint) }; bad options raise.
function M.discover(target, kind, ctx)
  if type(target) == "table" then target = target.target end
  local opts = copy(ctx.options)
  opts.kind = kind
  opts.timeout = opts.timeout or ctx.timeout
  opts.progress = nil
  local o = check_options(target, opts)
  local found = { target = target, domain = o.domain, kind = kind, dns = new_dns(), problems = problems.list() }
  found.endpoints = discover_in(ctx.sched, o, found)
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
  o.progress = nil
  check_common(errors.options(FN, 2, "opts", o, OPTIONS), false)
end

--- Scan one endpoint of M.discover inside a task of ctx.sched, with up to
-- ctx.connections connections in flight (default: the options' jobs).
-- Returns the endpoint record of docs/scan.md.
function M.endpoint(ep, ctx)
  local settings = SETTINGS[ctx]
  if not settings then
    local opts = copy(ctx.options)
    opts.timeout = opts.timeout or ctx.timeout
    opts.jobs = ctx.connections or opts.jobs
    for _, k in ipairs { "kind", "starttls", "xmpphost", "progress" } do opts[k] = nil end
    local o = check_common(errors.options(FN, 2, "opts", opts, OPTIONS), false)
    -- TLSA lookups (for endpoints with a dane_host) go to the resolver
    -- discover used; without a usable one there is no DANE verdict
    local ok, resolver = pcall(resolver_for, ctx.sched, o)
    settings = endpoint_settings(o, ok and resolver or nil, nil)
    SETTINGS[ctx] = settings
  end
  return scan_endpoint(ctx.sched, ep, settings)
end

return M
