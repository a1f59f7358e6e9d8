--- A stub resolver for the scanner: SRV (RFC 2782), addresses and TLSA
-- lookups over UDP with retries and a TCP fallback for truncated answers,
-- and the XMPP endpoints of a domain (RFC 6120 §3.2, XEP-0368). The wire
-- format is tlsharden.core's (dns_query, dns_parse); all network I/O is in
-- one exchange function, which a caller may replace (a coroutine
-- scheduler's sockets, say). See docs/reference/dns.md.
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local problems = require "tlsharden.problems"

local M = {}

local function gettime() return require("socket").gettime() end

local DEFAULT_PORT = 53
local MAX_CNAMES = 8

--- Parse "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353" into
-- { host, port, family = "inet"|"inet6" }, or nil, reason.
function M.parse_server(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local host, port = s:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host = s:match("^%[([^%]]+)%]$") end
  if not host then host, port = s:match("^([%d.]+):(%d+)$") end
  if not host then host = s end
  if port then
    port = tonumber(port)
    if not port or port < 1 or port > 65535 then return nil, "port out of range" end
  end
  local octets = { host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #octets == 4 then
    for _, o in ipairs(octets) do
      if #o > 3 or tonumber(o) > 255 then return nil, "not an IPv4 address" end
    end
    return { host = host, port = port or DEFAULT_PORT, family = "inet" }
  end
  -- IPv6: hex groups of 1-4 digits, at most one "::", an optional dotted
  -- IPv4 tail, eight groups in all; a zone ("%eth0") is dropped.
  local addr = host:gsub("%%[%w_.-]+$", "")
  if not addr:find("^[%x:.]+$") or not addr:find(":") then return nil, "not an IP address" end
  local head, tail = addr, nil
  local a, b = addr:find("::", 1, true)
  if a then
    if addr:find("::", b, true) then return nil, "more than one '::'" end
    head, tail = addr:sub(1, a - 1), addr:sub(b + 1)
  end
  local groups = 0
  local function count(part, last)
    if part == "" then return true end
    local items = {}
    for g in (part .. ":"):gmatch("([^:]*):") do items[#items + 1] = g end
    for i, g in ipairs(items) do
      if last and i == #items and g:find(".", 1, true) then
        local v4 = M.parse_server(g)
        if not v4 or v4.family ~= "inet" or g:find(":") then return false end
        groups = groups + 2
      elseif not g:find("^%x%x?%x?%x?$") then
        return false
      else
        groups = groups + 1
      end
    end
    return true
  end
  if not count(head, tail == nil) or not count(tail or "", true) then return nil, "not an IPv6 address" end
  if (tail == nil and groups ~= 8) or (tail ~= nil and groups > 7) then return nil, "not an IPv6 address" end
  return { host = addr, port = port or DEFAULT_PORT, family = "inet6" }
end

--- The nameserver addresses in the text of a resolv.conf, in order.
function M.parse_resolv_conf(text)
  local servers = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local addr = line:match("^%s*nameserver%s+([^%s#;]+)")
    if addr and M.parse_server(addr) then servers[#servers + 1] = addr end
  end
  return servers
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end

local function lower(name)
  name = name:lower()
  if #name > 1 and name:sub(-1) == "." then name = name:sub(1, -2) end
  return name
end

--- Whether response bytes answer the query bytes: same id, QR set, one
-- question, the same question (names compared without case).
function M.answers_query(query, response)
  if #response < 12 or response:sub(1, 2) ~= query:sub(1, 2) then return false end
  if response:byte(3) < 128 or response:sub(5, 6) ~= "\0\1" then return false end
  local pos = 13
  while query:byte(pos) and query:byte(pos) ~= 0 do
    pos = pos + query:byte(pos) + 1
  end
  local qlen = pos - 13 + 1 + 4
  return response:sub(13, 12 + qlen):lower() == query:sub(13, 12 + qlen):lower()
end

-- The I/O of a query: send it to a server and wait for the answer until
-- the timeout. req: host, port, family, transport ("udp" or "tcp"),
-- packet, timeout (seconds), accept (for UDP: whether a datagram answers
-- the query; others are ignored). Returns the response bytes, or nil and
-- "timeout", "refused", "closed" or another reason. The exchange itself is
-- the scan scheduler's (tlsharden.scan.sock.dns_exchange), run here in a
-- scheduler of its own, so that there is one DNS exchange in tlsharden.
local function socket_exchange(req)
  local net = require "tlsharden.scan.net"
  local sock = require "tlsharden.scan.sock"
  local sched = net.scheduler { timeout = req.timeout }
  local data, err
  sched:spawn(function() data, err = sock.dns_exchange(sched)(req) end)
  sched:run()
  return data, err
end
M.socket_exchange = socket_exchange

--- Order SRV records as RFC 2782 says: priority ascending, and within a
-- priority a weighted random order (records of weight 0 first in the
-- running sum, so that they are rarely chosen first). random(m) returns an
-- integer from 0 to m. Records are SRV records, or tables with priority,
-- weight and the SRV record in .record. Returns a new list.
function M.order_srv(records, random)
  random = random or function(m) return math.random(0, m) end
  local by_priority, priorities = {}, {}
  for _, r in ipairs(records) do
    local p = r.priority
    if not by_priority[p] then
      by_priority[p] = {}
      priorities[#priorities + 1] = p
    end
    table.insert(by_priority[p], r)
  end
  table.sort(priorities)
  local out = {}
  for _, p in ipairs(priorities) do
    -- weight 0 first; otherwise sorted so that a given random source
    -- gives the same order whatever order the answer listed them in
    local left = {}
    for i, r in ipairs(by_priority[p]) do left[i] = r end
    table.sort(left, function(x, y)
      if (x.weight == 0) ~= (y.weight == 0) then return x.weight == 0 end
      local tx, ty = tostring(x.target or (x.record and x.record.target)), tostring(y.target or (y.record and y.record.target))
      if tx ~= ty then return tx < ty end
      local px, py = x.port or (x.record and x.record.port) or 0, y.port or (y.record and y.record.port) or 0
      if px ~= py then return px < py end
      return tostring(x.tls) < tostring(y.tls)
    end)
    while #left > 0 do
      local sum = 0
      for _, r in ipairs(left) do sum = sum + r.weight end
      local pick, running = random(sum), 0
      for i, r in ipairs(left) do
        running = running + r.weight
        if running >= pick then
          out[#out + 1] = table.remove(left, i)
          break
        end
      end
    end
  end
  return out
end

local Resolver = {}
Resolver.__index = Resolver

local RESOLVER_OPTIONS = {
  resolver = true, resolv_conf = "string", timeout = "number", attempts = "number",
  dnssec = "boolean", edns = "boolean", udp_size = "number", tcp = "boolean",
  exchange = "function", random = "function", max_targets = "number",
  validator = "table", scheduler = "table", unvalidated = "string",
}

--- A resolver. opts: resolver ("127.0.0.1:5353", "[::1]:53", or a list of
-- them; default: the nameservers of resolv_conf, "/etc/resolv.conf"),
-- timeout (seconds per attempt, default 2), attempts (per server, default
-- 2), dnssec (ask for DNSSEC records with the DO bit, default true), edns
-- (default true), udp_size (default 1232), tcp (always TCP, default false),
-- exchange (the I/O function, see socket_exchange), random (random(m) -> an
-- integer 0..m, for ids and SRV weights), max_targets (SRV targets resolved
-- per lookup, default 16); validator (a tlsharden.scan.dnssec validator:
-- every lookup answered and validated by it instead, waiting in scheduler's
-- task when one is given), unvalidated (why there is no validator, for
-- the results' dnssec.why).
function M.resolver(opts)
  local fn = "scan.dns.resolver"
  opts = errors.options(fn, 1, "opts", opts, RESOLVER_OPTIONS)
  local list = opts.resolver
  if list == nil then
    local path = opts.resolv_conf or "/etc/resolv.conf"
    local text = read_file(path)
    if not text then errors.option(fn, "resolv_conf", "cannot read %s", errors.quote(path)) end
    list = M.parse_resolv_conf(text)
    if #list == 0 then errors.option(fn, "resolv_conf", "%s names no nameserver", errors.quote(path)) end
  elseif type(list) == "string" then
    list = { list }
  elseif type(list) ~= "table" or #list == 0 then
    errors.option(fn, "resolver", "expected an address string or a list of them, got %s", errors.quote(list))
  end
  local servers = {}
  for i, s in ipairs(list) do
    local server, why = M.parse_server(s)
    if not server then
      errors.option(fn, "resolver", "item %d: expected an IPv4 or IPv6 address with an optional port, got %s (%s)",
        i, errors.quote(s), why)
    end
    servers[i] = server
  end
  if opts.dnssec and opts.edns == false then
    errors.option(fn, "dnssec", "the DO bit needs EDNS (edns = false was given)")
  end
  local udp_size = errors.number(fn, opts, "udp_size", 512, 65535, 1232)
  if udp_size % 1 ~= 0 then errors.option(fn, "udp_size", "expected an integer, got %s", errors.quote(udp_size)) end
  return setmetatable({
    servers = servers,
    timeout = errors.number(fn, opts, "timeout", 0.001, 3600, 2),
    attempts = math.floor(errors.number(fn, opts, "attempts", 1, 10, 2)),
    dnssec = opts.dnssec ~= false and opts.edns ~= false,
    edns = opts.edns ~= false,
    udp_size = udp_size,
    tcp = opts.tcp == true,
    exchange = opts.exchange or socket_exchange,
    random = opts.random or function(m) return math.random(0, m) end,
    max_targets = math.floor(errors.number(fn, opts, "max_targets", 1, 256, 16)),
    validator = opts.validator, scheduler = opts.scheduler,
    unvalidated = opts.unvalidated or "no validator: the answers' signatures were not checked",
  }, Resolver)
end

local RCODE_FINDINGS = {
  NXDOMAIN = "%s does not exist (NXDOMAIN)",
  SERVFAIL = "the resolver could not answer for %s (SERVFAIL)",
  REFUSED = "the resolver refused to answer for %s (REFUSED)",
  FORMERR = "the resolver found the query for %s malformed (FORMERR)",
  NOTIMP = "the resolver does not implement the query for %s (NOTIMP)",
}

-- Why a lookup gave no usable answer: a problem record (an error).
local function failure(code, message) return problems.new("error", code, message) end

local function server_text(s)
  return (s.family == "inet6" and "[%s]:%d" or "%s:%d"):format(s.host, s.port)
end

-- The records of qtype for name in a parsed answer, following CNAMEs
-- inside the answer section; also the CNAME chain.
local function select_records(msg, name, qtype)
  local current, chain = lower(name), {}
  for _ = 1, MAX_CNAMES do
    local moved = false
    for _, rr in ipairs(msg.answers) do
      if rr.type == "CNAME" and qtype ~= "CNAME" and lower(rr.name) == current then
        current = lower(rr.target)
        chain[#chain + 1] = rr.target
        moved = true
        break
      end
    end
    if not moved then break end
  end
  local records = {}
  for _, rr in ipairs(msg.answers) do
    if rr.type == qtype and lower(rr.name) == current then records[#records + 1] = rr end
  end
  return records, chain
end

-- The query's bytes; dns_query's errors raised as errors of the calling
-- function fn, its name argument as the caller's argname.
local function build_query(fn, argname, name, qtype, id, qopts)
  local ok, packet = pcall(core.wire.dns_query, name, qtype, id, qopts)
  if ok then return packet end
  if errors.is(packet) and packet.argument == 1 then
    errors.raise(fn, "bad argument '%s': %s", argname, packet.reason)
  end
  errors.reraise(packet, fn)
end

--- Query name for qtype. Returns a result table: name, type, records (of
-- that type, after CNAMEs in the answer), cnames, dnssec ({ status =
-- "secure"|"insecure"|"bogus"|"indeterminate", why }: as the validator
-- found, or indeterminate without one), authenticated (dnssec.status is
-- "secure"), ad (the resolver's AD bit, not trusted), rcode, failure (nil,
-- or the problem record that says why there is no usable answer; a bogus
-- answer keeps its records and has the failure DNSSEC_BOGUS), server,
-- transport, message (the parsed answer), truncated (a UDP answer had TC
-- set).
function Resolver:query(name, qtype, fn, argname)
  fn, argname = fn or "scan.dns.query", argname or "name"
  if type(name) ~= "string" then
    errors.raise(fn, "bad argument '%s': expected a domain name string, got %s", argname, errors.quote(name))
  end
  local qopts = { dnssec = self.dnssec, edns = self.edns, udp_size = self.udp_size }
  build_query(fn, argname, name, qtype, 0, qopts)  -- raises for a bad name or type
  if self.validator then
    local wait, budget = self.timeout * self.attempts, nil
    if self.deadline then
      local left = self.deadline - gettime()
      if left < wait then wait, budget = math.max(0.001, left), self.budget end
    end
    -- half the time for the validated answer, the rest for the resolver's
    -- own where none comes (a resolver that cannot fetch the anchor's keys
    -- may take long to say so): the data then, unvalidated
    local r = self.validator:query(name, qtype, self.scheduler, wait / 2, budget)
    r.server = self.validator.server
    local code = r.failure and r.failure.code
    if #r.records == 0 and (code == "TIMEOUT" or code == "SERVFAIL" or code == "NETWORK") then
      local s = self:stub_query(name, qtype, fn, argname, qopts)
      s.dnssec = { status = "indeterminate", why = ("no validated answer (%s); the resolver's own answer"
        .. " is used"):format(r.failure.message) }
      return s
    end
    return r
  end
  return self:stub_query(name, qtype, fn, argname, qopts)
end

-- The query sent by this resolver itself (no validation).
function Resolver:stub_query(name, qtype, fn, argname, qopts)
  local result = { name = name, type = qtype, records = {}, cnames = {}, authenticated = false,
    dnssec = { status = "indeterminate", why = self.unvalidated } }
  local last = failure("TIMEOUT", ("no answer for %s %s"):format(name, qtype))
  for _, server in ipairs(self.servers) do
    local transport = self.tcp and "tcp" or "udp"
    local attempt = 1
    while attempt <= self.attempts do
      -- a deadline for a whole lookup (Resolver:bound): no query past it
      local wait = self.timeout
      if self.deadline then
        local left = self.deadline - gettime()
        if left <= 0 then
          result.failure = failure("TIMEOUT", ("no answer for %s %s: the lookup's %gs ran out")
            :format(name, qtype, self.budget))
          return result
        end
        wait = math.min(wait, left)
      end
      local packet = build_query(fn, argname, name, qtype, self.random(65535), qopts)
      local response, err = self.exchange {
        host = server.host, port = server.port, family = server.family, transport = transport,
        packet = packet, timeout = wait,
        accept = function(bytes) return M.answers_query(packet, bytes) end,
      }
      result.server, result.transport = server_text(server), transport
      if response then
        local msg, why = core.wire.dns_parse(response)
        if not msg then
          result.failure = failure("MALFORMED", ("%s sent a malformed answer for %s %s: %s")
            :format(result.server, name, qtype, why))
          return result
        end
        if not M.answers_query(packet, response) then
          result.failure = failure("MISMATCH", ("%s answered another query than %s %s")
            :format(result.server, name, qtype))
          return result
        end
        if msg.flags.tc and transport == "udp" then
          result.truncated = true
          transport = "tcp"
        else
          result.message, result.rcode = msg, msg.rcode
          result.ad = msg.flags.ad == true
          if msg.rcode == "NOERROR" then
            result.records, result.cnames = select_records(msg, name, qtype)
          else
            local text = RCODE_FINDINGS[msg.rcode] or ("the resolver answered %s for %%s"):format(msg.rcode)
            local reason = text:format(name)
            for _, o in ipairs(msg.edns and msg.edns.options or {}) do
              if o.info_code then reason = reason .. (": extended error %d %s"):format(o.info_code, o.text) end
            end
            result.failure = failure(problems.code(msg.rcode), reason)
          end
          return result
        end
      elseif err == "timeout" then
        last = failure("TIMEOUT", ("%s did not answer %s %s in %gs (%d attempts)")
          :format(server_text(server), name, qtype, self.timeout, self.attempts))
        attempt = attempt + 1
      else
        last = failure(err == "refused" and "UNREACHABLE" or "NETWORK",
          ("%s: %s (%s %s over %s)"):format(server_text(server), tostring(err), name, qtype, transport))
        break
      end
    end
  end
  result.failure = last
  return result
end

--- Bound every query from now on to end within seconds in all (nil: no
-- bound). A scan bounds its SRV and address lookups so, so that a DNS
-- outage costs one timeout rather than one per query and server.
function Resolver:bound(seconds)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0) then
    errors.argument("scan.dns.bound", 1, "seconds", "expected seconds above 0, or nil, got %s", errors.quote(seconds))
  end
  self.budget = seconds
  self.deadline = seconds and gettime() + seconds or nil
end

local function check_label(fn, n, argname, v)
  if type(v) ~= "string" or not v:find("^_?[%w][%w-]*$") or #v > 63 then
    errors.argument(fn, n, argname, "expected a label such as 'xmpp-client', got %s", errors.quote(v))
  end
  return (v:gsub("^_", ""))
end

--- SRV records of _service._proto.domain in RFC 2782 order. The result is
-- that of query, with records ordered and no_service = true when the only
-- record has the target "." (the service is decidedly not available), and
-- problems (a list of problem records: NO_SERVICE, DOT_TARGET).
function Resolver:srv(service, proto, domain)
  local fn = "scan.dns.srv"
  service = check_label(fn, 1, "service", service)
  proto = check_label(fn, 2, "proto", proto)
  if type(domain) ~= "string" then
    errors.argument(fn, 3, "domain", "expected a domain name string, got %s", errors.quote(domain))
  end
  local name = ("_%s._%s.%s"):format(service, proto, domain)
  local result = self:query(name, "SRV", fn, "domain")
  result.service, result.proto, result.domain = service, proto, domain
  result.problems = problems.list()
  local records = result.records
  if #records == 1 and records[1].target == "." then
    result.no_service = true
    result.records = {}
    problems.add(result.problems, "info", "NO_SERVICE", ("%s says the service is not available (target \".\")"):format(name))
    return result
  end
  local usable = {}
  for _, r in ipairs(records) do
    if r.target ~= "." then usable[#usable + 1] = r end
  end
  if #usable < #records then
    problems.add(result.problems, "warning", "DOT_TARGET", ("%s has a \".\" target beside other records; it is ignored"):format(name))
  end
  result.records = M.order_srv(usable, self.random)
  return result
end

-- The weaker of two DNSSEC statuses (bogus, then indeterminate, insecure,
-- secure), with its why.
local STATUS_RANK = { bogus = 1, indeterminate = 2, insecure = 3, secure = 4 }
function M.weaker(a, b)
  if not a then return b end
  if not b then return a end
  return (STATUS_RANK[b.status] or 2) < (STATUS_RANK[a.status] or 2) and b or a
end

--- The A and AAAA records of name. Result: name, records (A first, then
-- AAAA), addresses ({ address, family = "inet"|"inet6" }), dnssec (the
-- weaker of the two answers'), authenticated (both secure), failure (when
-- neither gave an address: the A lookup's failure, or NO_ADDRESS; or a
-- bogus answer's DNSSEC_BOGUS), results = { A = ..., AAAA = ... }.
function Resolver:addresses(name)
  local fn = "scan.dns.addresses"
  if type(name) ~= "string" then
    errors.argument(fn, 1, "name", "expected a domain name string, got %s", errors.quote(name))
  end
  local a = self:query(name, "A", fn, "name")
  local aaaa = self:query(name, "AAAA", fn, "name")
  local result = { name = name, records = {}, addresses = {}, results = { A = a, AAAA = aaaa },
    authenticated = a.authenticated and aaaa.authenticated, dnssec = M.weaker(a.dnssec, aaaa.dnssec) }
  for _, r in ipairs(a.records) do
    result.records[#result.records + 1] = r
    result.addresses[#result.addresses + 1] = { address = r.address, family = "inet" }
  end
  for _, r in ipairs(aaaa.records) do
    result.records[#result.records + 1] = r
    result.addresses[#result.addresses + 1] = { address = r.address, family = "inet6" }
  end
  if #result.records == 0 then
    result.failure = a.failure or aaaa.failure or failure("NO_ADDRESS", ("%s has no A or AAAA record"):format(name))
  elseif result.dnssec.status == "bogus" then
    result.failure = (a.dnssec.status == "bogus" and a or aaaa).failure
  end
  return result
end

--- TLSA records of _port._proto.host (RFC 6698 §3). The result is that of
-- query; the records may only be used when authenticated is true.
function Resolver:tlsa(port, proto, host)
  local fn = "scan.dns.tlsa"
  if type(port) ~= "number" or port % 1 ~= 0 or port < 1 or port > 65535 then
    errors.argument(fn, 1, "port", "expected a port number 1-65535, got %s", errors.quote(port))
  end
  proto = check_label(fn, 2, "proto", proto)
  if type(host) ~= "string" then
    errors.argument(fn, 3, "host", "expected a domain name string, got %s", errors.quote(host))
  end
  local result = self:query(("_%d._%s.%s"):format(port, proto, host), "TLSA", fn, "host")
  result.port, result.proto, result.host = port, proto, host
  return result
end

local XMPP_SERVICES = {
  c2s = { { service = "xmpp-client", tls = "starttls" }, { service = "xmpps-client", tls = "direct" }, port = 5222 },
  s2s = { { service = "xmpp-server", tls = "starttls" }, { service = "xmpps-server", tls = "direct" }, port = 5269 },
}

--- Every endpoint of an XMPP domain: the SRV records of _xmpp-client,
-- _xmpps-client (c2s) and _xmpp-server, _xmpps-server (s2s), mixed in one
-- RFC 2782 order per kind (XEP-0368), each target with each of its
-- addresses; without any SRV record the domain itself on 5222 or 5269
-- with STARTTLS (RFC 6120 §3.2.2). opts.kind: "c2s", "s2s" or nil (both).
-- Returns { domain, endpoints, lookups, addresses, problems, authenticated };
-- each problem record carries the kind or the host it is about.
function Resolver:xmpp_endpoints(domain, opts)
  local fn = "scan.dns.xmpp_endpoints"
  if type(domain) ~= "string" then
    errors.argument(fn, 1, "domain", "expected a domain name string, got %s", errors.quote(domain))
  end
  opts = errors.options(fn, 2, "opts", opts, { kind = "string" })
  if opts.kind ~= nil and not XMPP_SERVICES[opts.kind] then
    errors.option(fn, "kind", "expected 'c2s' or 's2s', got %s", errors.quote(opts.kind))
  end
  local out = { domain = domain, endpoints = {}, lookups = {}, addresses = {}, problems = problems.list(),
    authenticated = true, dnssec = nil }
  local resolved = 0
  local function add_problem(p, context)
    if p then problems.add(out.problems, p.severity, p.code, p.message, context) end
  end
  local function addresses_of(host)
    local key = lower(host)
    if out.addresses[key] == nil then
      if resolved >= self.max_targets then
        problems.add(out.problems, "warning", "TOO_MANY_TARGETS", ("more than %d SRV targets; %s was not resolved")
          :format(self.max_targets, host), { host = host })
        out.addresses[key] = false
      else
        resolved = resolved + 1
        out.addresses[key] = self:addresses(host)
        add_problem(out.addresses[key].failure, { host = host })
      end
    end
    return out.addresses[key] or nil
  end
  for _, kind in ipairs { "c2s", "s2s" } do
    if opts.kind == nil or opts.kind == kind then
      local spec, mixed, said_no, found_any = XMPP_SERVICES[kind], {}, 0, false
      for _, s in ipairs(spec) do
        local r = self:srv(s.service, "tcp", domain)
        out.lookups[r.name] = r
        out.authenticated = out.authenticated and r.authenticated
        out.dnssec = M.weaker(out.dnssec, r.dnssec)
        if r.no_service then said_no = said_no + 1 end
        if r.failure and r.failure.code ~= "NXDOMAIN" then add_problem(r.failure, { kind = kind }) end
        for _, p in ipairs(r.problems) do add_problem(p, { kind = kind }) end
        for _, rec in ipairs(r.records) do
          found_any = true
          mixed[#mixed + 1] = { priority = rec.priority, weight = rec.weight, record = rec, tls = s.tls,
            service = "_" .. s.service .. "._tcp", authenticated = r.authenticated, dnssec = r.dnssec }
        end
      end
      local targets = M.order_srv(mixed, self.random)
      if not found_any and said_no == 0 then
        targets = { { record = nil, tls = "starttls", service = nil, fallback = true, authenticated = false } }
      end
      for _, t in ipairs(targets) do
        local host = t.record and t.record.target or domain
        local port = t.record and t.record.port or spec.port
        local addrs = addresses_of(host)
        for _, a in ipairs(addrs and addrs.addresses or {}) do
          out.endpoints[#out.endpoints + 1] = {
            kind = kind, tls = t.tls, host = host, address = a.address, family = a.family, port = port,
            srv = t.record and { service = t.service, priority = t.record.priority, weight = t.record.weight,
              port = t.record.port, target = t.record.target } or nil,
            source = t.fallback and "fallback" or "srv",
            srv_authenticated = t.authenticated, address_authenticated = addrs.authenticated,
            srv_dnssec = t.dnssec and t.dnssec.status, address_dnssec = addrs.dnssec and addrs.dnssec.status,
          }
        end
      end
    end
  end
  return out
end

--- One-call forms with a resolver made from opts for each call.
function M.srv(service, proto, domain, opts) return M.resolver(opts):srv(service, proto, domain) end
function M.addresses(name, opts) return M.resolver(opts):addresses(name) end
function M.tlsa(port, proto, host, opts) return M.resolver(opts):tlsa(port, proto, host) end
function M.xmpp_endpoints(domain, opts, resolver_opts)
  return M.resolver(resolver_opts):xmpp_endpoints(domain, opts)
end

return M
