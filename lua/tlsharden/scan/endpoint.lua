--- One endpoint of a live scan, as a task of a scan scheduler: connect,
-- the XMPP stream up to STARTTLS (features and SASL before TLS), a full
-- handshake with LuaSec on that connection (the chain as served, TLS 1.3
-- included) and the stream's features after TLS, the wire probe
-- (tlsharden.scan.probe) over connections of its own, DANE, and the grade
-- through pipeline.judge_observation. Whatever the peer does is a status
-- or a problem record of the endpoint, never an error. See docs/reference/scan.md.
local core = require "tlsharden.core"
local net = require "tlsharden.scan.net"
local probe = require "tlsharden.scan.probe"
local vulns = require "tlsharden.scan.vulns"
local simulate = require "tlsharden.scan.simulate"
local sock = require "tlsharden.scan.sock"
local observe = require "tlsharden.scan.observe"
local xmpp = require "tlsharden.scan.xmpp"
local dane = require "tlsharden.scan.dane"
local pipeline = require "tlsharden.pipeline"
local json = require "tlsharden.json"
local problems = require "tlsharden.problems"

local M = {}

local list = json.list

local function where(ep)
  return (ep.family == "inet6" and "[%s]:%d" or "%s:%d"):format(ep.address, ep.port)
end

local function connect_status(err)
  err = tostring(err)
  if err == "connection refused" then return "refused" end
  if err == "timeout" then return "timeout" end
  local e = err:lower()
  if e:find("unreachable", 1, true) or e:find("no route", 1, true) or e:find("cannot assign", 1, true)
      or e:find("not available", 1, true) or e:find("not supported", 1, true) then
    return "unreachable"
  end
  return "error"
end

-- Failures of the XMPP layer that say what the peer is; every other one
-- means it does not speak XMPP as RFC 6120 has it.
local XMPP_STATUS = { TIMEOUT = "timeout", STREAM_ERROR = "stream_error", TLS_FAILURE = "tls_failed",
  OLD_VERSION = "no_starttls" }

-- The probe's not_tls guesses that name another protocol.
local OTHER_PROTOCOL = { http = true, ssh = true, xmpp = true, ["smtp or ftp"] = true, imap = true, pop3 = true }

local function has(t, v)
  for _, x in ipairs(t or {}) do if x == v then return true end end
  return false
end

local function der_chain(certs)
  local out = {}
  for i, c in ipairs(certs or {}) do
    local ok, pem = pcall(function() return c:pem() end)
    out[i] = ok and pem and dane.der_from_pem(pem) or nil
    if not out[i] then return out end
  end
  return out
end

-- Wait for a task started with start(on_done) to call on_done(value).
local function await(sched, start)
  local done, value = sched:semaphore(0), nil
  start(function(v)
    value = v
    done:release()
  end)
  done:acquire(math.huge)
  return value
end

local function stream_error_of(r)
  if r and r.stream_error then
    return { condition = r.stream_error.condition, text = r.stream_error.text }
  end
end

--- A new endpoint record (docs/reference/scan.md, "Scan result") for ep, an
-- endpoint of dns.xmpp_endpoints or of a HOST:PORT target.
function M.record(ep, ctx)
  local srv = ep.srv and { service = ep.srv.service, priority = ep.srv.priority, weight = ep.srv.weight,
    port = ep.srv.port, target = ep.srv.target } or nil
  return {
    target = ep.target or ctx.target, domain = ep.domain or ctx.domain, kind = ep.kind, tls = ep.tls, host = ep.host,
    address = ep.address, family = ep.family, port = ep.port, srv = srv,
    source = ep.source, srv_authenticated = ep.srv_authenticated,
    address_authenticated = ep.address_authenticated, srv_dnssec = ep.srv_dnssec, address_dnssec = ep.address_dnssec,
    connections = 0, xmpp = { plain_before_tls = false }, problems = problems.list(),
  }
end

-- The endpoint's end: status, reason, and the time it took.
local function finish(e, t0, status, reason)
  e.status, e.reason = status, reason
  e.elapsed = net.now() - t0
  return e
end

-- What negotiate_starttls saw, into e.xmpp.
local function record_before(e, pre)
  local x = e.xmpp
  x.starttls, x.starttls_required = pre.starttls, pre.starttls_required
  x.stream_error = stream_error_of(pre)
  if pre.header then
    x.stream_from, x.stream_version = pre.header.from, pre.header.version
  end
  local f = pre.features
  if f then
    x.mechanisms_before_tls = json.list { table.unpack(f.mechanisms) }
    x.plain_before_tls = has(f.mechanisms, "PLAIN")
    x.dialback_before_tls = f.dialback
    if #f.compression > 0 then x.compression = json.list { table.unpack(f.compression) } end
  end
end

local function record_after(e, after)
  local x = e.xmpp
  x.stream_error = x.stream_error or stream_error_of(after)
  local f = after.features
  if not f then return end
  x.mechanisms_after_tls = json.list { table.unpack(f.mechanisms) }
  x.dialback = f.dialback
  x.external = f.external
  if #f.compression > 0 then x.compression = json.list { table.unpack(f.compression) } end
  x.bind, x.sm = f.bind, f.sm
  if e.tls == "direct" then x.stream_from, x.stream_version = after.header.from, after.header.version end
end

-- The verdict of DANE for the chain served (RFC 7673: TLSA of the SRV
-- target), trimmed to plain data.
local function dane_verdict(ctx, e, host, chain_der)
  if not ctx.resolver or not host or not chain_der or #chain_der == 0 then return nil end
  local key = e.port .. " " .. host:lower()
  local tlsa = ctx.tlsa_cache[key]
  if not tlsa then
    tlsa = ctx.resolver:tlsa(e.port, "tcp", host)
    ctx.tlsa_cache[key] = tlsa
    ctx.on_tlsa(tlsa)
  end
  local v = dane.check(tlsa, chain_der)
  local out = { status = v.status, name = tlsa.name, authenticated = v.authenticated, matched = v.matched,
    pkix_required = v.pkix_required, records = #(tlsa.records or {}), matches = list(), problems = list(),
    dnssec = tlsa.dnssec and tlsa.dnssec.status or nil }
  if e.srv and not e.srv_authenticated and v.status ~= "none" then
    -- RFC 7673 §3: without a secure SRV answer the target's TLSA records
    -- are not to be used, whatever they match
    out.srv_insecure = true
  end
  for i, m in ipairs(v.matches) do
    out.matches[i] = { record = m.record, cert = m.cert, usage = m.usage, usage_name = m.usage_name, chain_ok = m.chain_ok }
  end
  for _, p in ipairs(v.problems) do
    if not (out.srv_insecure and p.code == "DANE_MISMATCH") then out.problems[#out.problems + 1] = problems.copy(p) end
  end
  if out.srv_insecure and (v.status == "valid" or v.status == "invalid") then
    out.status = "insecure"
    problems.add(out.problems, "warning", "DANE_SRV_NOT_SECURE", ("the SRV answer was not validated as"
      .. " DNSSEC-secure (%s), so the target's TLSA records do not count (RFC 7673 §3)"):format(
      tostring(e.srv_dnssec or "not validated")))
  end
  if tlsa.failure then out.lookup = problems.copy(tlsa.failure) end
  -- a TLSA answer whose signatures do not check out: someone tampers, or
  -- the zone is broken
  if tlsa.failure and tlsa.failure.code == "DNSSEC_BOGUS" then out.problems[#out.problems + 1] = problems.copy(tlsa.failure) end
  return out
end

-- The probe's connections: each one its own stream up to <proceed/> for
-- STARTTLS, or a bare TCP connection for direct TLS.
local function opener(ep, ctx, stream)
  return function(sched)
    local c, err = sched:connect(ep.address, ep.port, ctx.timeout)
    if not c then return nil, err end
    if ep.tls ~= "starttls" then return c end
    local r = xmpp.negotiate_starttls(sock.plain(c), stream)
    if r.proceed then return c end
    c:close()
    return nil, r.failure and r.failure.message or "no <proceed/> to <starttls/>"
  end
end

-- Send one ClientHello (TLS 1.2 and 1.3) and read the first flight;
-- returns whether the peer stayed silent for the whole timeout.
local function silent_to_hello(conn, ctx, alpn)
  local ok, err = conn:send(core.wire.client_hello { server_name = ctx.sni or nil, alpn = alpn }, ctx.timeout)
  if not ok then return err == "timeout" end
  local have, deadline = "", net.now() + ctx.timeout
  while true do
    local r = core.wire.parse_server_flight(have)
    if r.done or #have >= 65536 then return false end
    local data, rerr = conn:receive(math.min(r.need, 65536 - #have), math.max(0, deadline - net.now()))
    if not data then return rerr == "timeout" and #have == 0 end
    have = have .. data
  end
end

local function why_no_tls(pr, hs)
  local parts, other = {}, nil
  if hs and hs.error then parts[#parts + 1] = "the TLS handshake failed: " .. hs.error end
  for _, f in ipairs(pr and pr.problems or {}) do
    if f.code == "NOT_TLS" and OTHER_PROTOCOL[f.guess] then other = f.guess end
  end
  local first = pr and pr.problems and pr.problems[1]
  if first then parts[#parts + 1] = first.message end
  return table.concat(parts, "; "), other
end

-- The one rule for grades (docs/reference/scan.md): an endpoint is graded
-- when TLS was seen there (from the probe), or an XMPP stream that offers
-- no way into TLS (no STARTTLS, <failure/> to <starttls/>, no TLS version
-- after <proceed/>): then as a server without any protocol, F. Where
-- neither was seen there is no grade.
local function grade_without_tls(e, ctx, ep)
  local j = pipeline.judge_observation({ protocols = {}, suites = {}, starttls = ep.tls == "starttls" }, nil,
    { host = ctx.domain, service = ep.kind, guide = ctx.guide, starttls_cap = ctx.starttls_cap })
  e.facts, e.grade = j.facts, j.grade
  observe.mark_lists(nil, e.facts, e.grade)
end

--- Scan one endpoint inside a scheduler task. ep: an endpoint of
-- dns.xmpp_endpoints (kind, tls, host, address, family, port, srv, ...)
-- with dane_host (the name whose TLSA records apply, or nil), and target
-- and domain when they are not the scan's. ctx: the scan's settings
-- (target, domain, sni, timeout, connections, from, cafile, capath, at, guide,
-- starttls_cap, protocols, max_suites, order, resolver, tlsa_cache, on_tlsa).
-- Returns the endpoint record.
function M.scan(sched, ep, ctx)
  local t0 = net.now()
  -- the endpoint's own target and domain, when it carries them (a survey's)
  local domain = ep.domain or ctx.domain
  -- the name sent as SNI: the domain, unless the scan names another one
  -- or none (sni = false)
  local sni = domain
  if ctx.sni ~= nil then sni = ctx.sni or nil end
  ctx = setmetatable({ target = ep.target or ctx.target, domain = domain, sni = sni or false }, { __index = ctx })
  local e = M.record(ep, ctx)
  e.sni = sni or false
  local stream = { kind = ep.kind, to = ctx.domain, from = ctx.from, timeout = ctx.timeout, now = net.now }
  local conn, err = sched:connect(ep.address, ep.port, ctx.timeout)
  e.connections = 1
  if not conn then
    return finish(e, t0, connect_status(err), ("cannot connect to %s: %s"):format(where(ep), tostring(err)))
  end
  local pre
  if ep.tls == "starttls" then
    pre = xmpp.negotiate_starttls(sock.plain(conn), stream)
    record_before(e, pre)
    if not pre.proceed then
      conn:close()
      if pre.features and not pre.starttls then
        -- no TLS at all: the grade of a server without a protocol
        e.probe = nil
        grade_without_tls(e, ctx, ep)
        observe.problems(e, nil, nil, pre)
        return finish(e, t0, "no_starttls", "the server does not offer STARTTLS")
      end
      local f = pre.failure or { code = "CLOSED", message = "no <proceed/>" }
      if pre.tls_failure then grade_without_tls(e, ctx, ep) end
      observe.problems(e, nil, nil, pre)
      return finish(e, t0, XMPP_STATUS[f.code] or "not_xmpp", f.message)
    end
  end
  local alpn = ep.tls == "direct" and { ep.kind == "s2s" and "xmpp-server" or "xmpp-client" } or nil
  if ep.tls == "direct" then
    -- one ClientHello of our own first: a peer that never answers one is
    -- a timeout, whatever the probe would try
    local silent = silent_to_hello(conn, ctx, alpn)
    conn:close()
    if silent then
      return finish(e, t0, "timeout", ("no answer to a ClientHello within %gs"):format(ctx.timeout))
    end
    conn, err = sched:connect(ep.address, ep.port, ctx.timeout)
    e.connections = 2
    if not conn then
      return finish(e, t0, connect_status(err), ("cannot connect to %s again: %s"):format(where(ep), tostring(err)))
    end
  end
  -- the full handshake on this connection: the chain as served, TLS 1.3 too
  local hs = sock.handshake(sched, conn, ctx.timeout, { server_name = ctx.sni or nil, alpn = alpn })
  e.handshake = { ok = hs.ok == true, error = hs.error, protocol = hs.protocol, cipher = hs.cipher, alpn = hs.alpn }
  local chain_der = hs.ok and der_chain(hs.chain) or nil
  -- the stream after TLS on this connection, closed before the probe
  -- starts: a server that serves one connection at a time would not
  -- answer the probe while it waits on this one
  local after, session
  if hs.ok then
    after = xmpp.features(sock.tls(sched, hs.tls), stream)
    record_after(e, after)
    -- its session (a TLS 1.3 ticket has come by now), for the checks that
    -- resume one
    local ok, pem = pcall(core.context.session, hs.tls)
    session = ok and pem or nil
  end
  if conn.tls then conn.tls:close() end
  conn:close()
  local pr = await(sched, function(on_done)
    probe.spawn(sched, { open = opener(ep, ctx, stream), server_name = ctx.sni or nil, timeout = ctx.timeout,
      per_server = ctx.connections, protocols = ctx.protocols, max_suites = ctx.max_suites, order = ctx.order,
      alpn = alpn }, on_done)
  end)
  e.connections = e.connections + pr.connections
  e.probe = observe.trim_probe(pr)
  -- the attacks it is open to, and what each recorded client would get,
  -- on connections of their own, together
  local sim, sim_done = nil, sched:semaphore(0)
  if ctx.clients ~= false and #pr.versions > 0 then
    simulate.spawn(sched, { open = opener(ep, ctx, stream), kind = ep.kind, transport = ep.tls,
      server_name = ctx.sni or nil, timeout = ctx.timeout, per_server = ctx.connections }, function(v)
      sim = v
      sim_done:release()
    end)
  else
    sim_done:release()
  end
  local vu = await(sched, function(on_done)
    vulns.spawn(sched, { open = opener(ep, ctx, stream), server_name = ctx.sni or nil, timeout = ctx.timeout,
      per_server = ctx.connections, probe = pr, alpn = alpn, starttls = ep.tls == "starttls", stream = stream,
      session = session,
      connect = function(s) return s:connect(ep.address, ep.port, ctx.timeout) end,
      target = { address = ep.address, port = ep.port, domain = ctx.domain,
        starttls = ep.tls == "starttls" and ep.kind or nil } }, on_done)
  end)
  e.connections = e.connections + vu.connections
  e.vulnerabilities = vu.checks
  sim_done:acquire(math.huge)
  if sim then
    e.connections = e.connections + sim.connections
    e.clients = sim.clients
  end
  if (not chain_der or #chain_der == 0) and pr.certificates then chain_der = pr.certificates end
  local observed = observe.facts(pr, ep.tls == "starttls")
  observed.vulnerabilities = vu.checks
  -- the key exchange graded is what the recorded clients negotiate
  local on_request = e.clients and observe.kx_from_clients(observed, e.clients) or {}
  local j = pipeline.judge_observation(observed, chain_der, { host = ctx.domain, service = ep.kind,
    cafile = ctx.cafile, capath = ctx.capath, at = ctx.at, guide = ctx.guide, starttls_cap = ctx.starttls_cap })
  e.chain, e.facts, e.grade = j.chain, j.facts, j.grade
  if e.clients and j.facts then simulate.apply_key_limits(e.clients, j.facts.key_type, j.facts.key_bits) end
  observe.mark_lists(e.chain, e.facts, e.grade)
  e.chain_error = j.chain_error
  e.dane = dane_verdict(ctx, e, ep.dane_host, chain_der)
  observe.problems(e, pr, j, pre, after, hs)
  for _, which in ipairs { { "srv_dnssec", "SRV record" }, { "address_dnssec", "address records" } } do
    if e[which[1]] == "bogus" then
      problems.add(e.problems, "error", "DNSSEC_BOGUS", ("the DNSSEC signatures of the endpoint's %s do not"
        .. " check out (tampered with, or a broken zone)"):format(which[2]))
    end
  end
  if #on_request > 0 then
    problems.add(e.problems, "warning", "WEAK_GROUP_ON_REQUEST", ("accepted when a client offers nothing"
      .. " stronger, though no recorded client gets it: %s"):format(table.concat(on_request, ", ")))
  end
  if #pr.versions == 0 and not hs.ok then
    local reason, other = why_no_tls(pr, hs)
    e.facts, e.grade = nil, nil
    -- an XMPP stream said <proceed/>, and then no TLS: graded as one
    -- without any protocol (a direct TLS port showed no XMPP: no grade)
    if ep.tls == "starttls" and not other then grade_without_tls(e, ctx, ep) end
    return finish(e, t0, other and "not_xmpp" or "tls_failed", reason)
  end
  if ep.tls == "direct" and after and after.failure then
    -- a direct TLS port has no other sign of XMPP than the stream after TLS
    return finish(e, t0, after.failure.code == "STREAM_ERROR" and "stream_error" or "not_xmpp",
      "TLS works, but no XMPP stream after it: " .. after.failure.message)
  end
  if ep.tls == "direct" and not hs.ok then
    -- TLS answers, but only in a way no full handshake here can finish
    -- (SSL 2.0 or 3.0 only, export suites only): what follows it is
    -- unknown, which is no "ok"
    local labels = {}
    for i, v in ipairs(pr.versions) do labels[i] = require("tlsharden.protocols").label[v] or v end
    return finish(e, t0, "tls_only", ("TLS answers (%s), but no full handshake can be finished here to see"
      .. " whether XMPP follows it (%s)"):format(table.concat(labels, ", "), tostring(hs.error)))
  end
  return finish(e, t0, "ok", nil)
end

return M
