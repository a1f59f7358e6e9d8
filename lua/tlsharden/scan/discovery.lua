--- Where a scan's target is: the endpoints of a DOMAIN through SRV (both
-- kinds at once), or the addresses of HOST:PORT (the address itself, the
-- given resolver's answer, or the system's), with what DNS said trimmed
-- to plain data for the scan result. Runs inside a scan scheduler's task.
-- See docs/reference/scan.md, "Targets".
local socket = require "socket"
local dns = require "tlsharden.scan.dns"
local dnssec = require "tlsharden.scan.dnssec"
local json = require "tlsharden.json"
local problems = require "tlsharden.problems"
local sock = require "tlsharden.scan.sock"
local target = require "tlsharden.scan.target"

local M = {}

local list = json.list

--- A DNS query result as plain data (records, flags, failure).
function M.trim_query(r)
  local records = list()
  for i, rr in ipairs(r.records or {}) do
    local t = { type = rr.type, ttl = rr.ttl }
    for _, k in ipairs { "priority", "weight", "port", "target", "address", "usage", "selector", "matching_type", "data" } do
      t[k] = rr[k]
    end
    records[i] = t
  end
  return { name = r.name, type = r.type, records = records, authenticated = r.authenticated == true,
    dnssec = r.dnssec and { status = r.dnssec.status, why = r.dnssec.why } or nil, ad = r.ad,
    rcode = r.rcode, server = r.server, transport = r.transport, cnames = r.cnames and list { table.unpack(r.cnames) },
    failure = r.failure and problems.copy(r.failure) or nil,
    problems = r.problems and #r.problems > 0 and r.problems or nil }
end

local function trim_addresses(a)
  local addrs = list()
  for i, x in ipairs(a.addresses or {}) do addrs[i] = { address = x.address, family = x.family } end
  return { name = a.name, addresses = addrs, authenticated = a.authenticated == true,
    dnssec = a.dnssec and { status = a.dnssec.status, why = a.dnssec.why } or nil,
    failure = a.failure and problems.copy(a.failure) or nil }
end

--- The scan's resolver: the stub resolver of the scan's settings, whose
-- lookups a validator answers (tlsharden.scan.dnssec, forwarding to the
-- same servers) unless o.dnssec is false or no validation can run here.
-- dns_result (optional) gets dnssec = { validated, why, trust_anchor,
-- library }; where validation cannot run, problems gets the information
-- DNSSEC_NOT_VALIDATED, once.
function M.resolver(sched, o, dns_result, problem_list)
  local r = dns.resolver { resolver = o.resolver, resolv_conf = o.resolv_conf, timeout = o.timeout, attempts = 1,
    exchange = sock.dns_exchange(sched) }
  local v, why
  if o.dnssec == false then
    why = "DNSSEC validation was switched off (the dnssec option, --no-dnssec)"
  else
    v, why = dnssec.new(r.servers, o.trust_anchor)
  end
  if v then
    r.validator, r.scheduler = v, sched
  else
    r.unvalidated = "not validated: " .. why
  end
  if dns_result and not dns_result.dnssec then
    dns_result.dnssec = { validated = v ~= nil, why = why, trust_anchor = v and v.anchor or nil,
      library = v and dnssec.library() or nil }
    if not v and problem_list and o.dnssec ~= false then
      problems.add(problem_list, "info", "DNSSEC_NOT_VALIDATED",
        ("DNSSEC was not validated: %s; DANE is not used"):format(why))
    end
  end
  return r
end

-- The endpoints of a domain, both kinds looked up at once.
local function domain_endpoints(sched, o, result)
  local r = M.resolver(sched, o, result.dns, result.problems)
  o.dns_resolver = r
  result.dns.resolver = list()
  for i, s in ipairs(r.servers) do
    result.dns.resolver[i] = (s.family == "inet6" and "[%s]:%d" or "%s:%d"):format(s.host, s.port)
  end
  local kinds = target.kinds(o.kind)
  local found, g = {}, sched:group()
  -- the whole lookup (SRV, then addresses) within one timeout: a DNS
  -- outage costs that, not one timeout per query and nameserver
  r:bound(o.timeout)
  for i, kind in ipairs(kinds) do
    g:spawn(function() found[i] = r:xmpp_endpoints(o.domain, { kind = kind }) end)
  end
  g:wait()
  r:bound(nil)
  local eps = {}
  result.dns.authenticated = true
  local weakest
  for _, f in ipairs(found) do
    for _, ep in ipairs(f.endpoints) do
      ep.dane_host = ep.host
      eps[#eps + 1] = ep
    end
    for name, q in pairs(f.lookups) do result.dns.srv[name] = M.trim_query(q) end
    for name, a in pairs(f.addresses) do
      if a then result.dns.addresses[name] = trim_addresses(a) end
    end
    for _, p in ipairs(f.problems) do result.problems[#result.problems + 1] = p end
    result.dns.authenticated = result.dns.authenticated and f.authenticated
    weakest = dns.weaker(weakest, f.dnssec)
  end
  if weakest then result.dns.dnssec.status = weakest.status end
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
    local r = M.resolver(sched, o, result.dns, result.problems)
    o.dns_resolver = r
    r:bound(o.timeout)
    local a = r:addresses(o.host)
    r:bound(nil)
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

function M.label(e)
  local addr = (e.family == "inet6" and "[%s]:%d" or "%s:%d"):format(e.address, e.port)
  local name = e.host ~= e.address and e.host or e.domain
  return ("%s %s %s %s"):format(e.kind, e.tls == "starttls" and "STARTTLS" or "direct TLS", name, addr)
end

function M.new_dns()
  return { srv = {}, addresses = {}, tlsa = {} }
end

--- The endpoints of a checked target (tlsharden.scan.target's check, with
-- the scan's settings) inside a scheduler task, each carrying the target
-- and the XMPP domain. result collects dns and problems.
function M.endpoints(sched, o, result)
  local eps
  if o.port then eps = host_endpoints(sched, o, result) else eps = domain_endpoints(sched, o, result) end
  for _, ep in ipairs(eps) do
    ep.target, ep.domain = o.target, o.domain
  end
  return eps
end

-- What endpoint.scan needs of a scan's settings.
return M
