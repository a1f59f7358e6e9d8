--- Client simulation for one endpoint of a scan: the ClientHellos
-- recorded from real TLS stacks (tlsharden.scan.clients) replayed with
-- the target's SNI, over STARTTLS or direct TLS as the endpoint needs, one
-- connection per client, all in flight together; what the server answers
-- is what that client would get: protocol, suite, group or DH size,
-- forward secrecy, or why it fails (no shared protocol or suite, an
-- alert, a DH group or key below the client's limits). A TLS 1.3
-- HelloRetryRequest for a group the client offers is followed as the
-- client would: a second hello on the same connection with a key share
-- for that group (and the server's cookie). See docs/reference/clients.md.
local core = require "tlsharden.core"
local clients = require "tlsharden.scan.clients"
local probe = require "tlsharden.scan.probe"
local json = require "tlsharden.json"
local protocols = require "tlsharden.protocols"
local errors = require "tlsharden.errors"
local net = require "tlsharden.scan.net"

local M = {}

local wire = core.wire

local MAX_FLIGHT = 262144
-- a dummy ChangeCipherSpec, as clients in middlebox compatibility mode
-- send it before a second ClientHello (RFC 8446 appendix D.4)
local CCS = "\20\3\3\0\1\1"

local cache = {}
local RANK = {}
for i, p in ipairs(protocols.names) do RANK[p] = i end

--- The recordings of one kind ("c2s", "s2s") and transport ("starttls",
-- "direct"), loaded once per process (and folder).
function M.recordings(kind, transport, dir)
  dir = dir or clients.dir()
  local all = cache[dir]
  if not all then
    all = clients.all(dir)
    cache[dir] = all
  end
  local out = {}
  for _, r in ipairs(all) do
    if r.kind == kind and r.transport == transport then out[#out + 1] = r end
  end
  return out
end

local function has(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

local function limit(v)
  return type(v) == "number" and v or tonumber(v)
end

--- Why a client fails: codes and labels (tlsharden.scan.clients.FAILURES).
M.FAILURES = clients.FAILURES

local function fail(cause, reason, extra)
  local r = { ok = false, cause = cause, reason = reason }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- What the flight says for a client that sent hello (its parsed form).
local function outcome(rec, flight)
  local h = rec.hello
  local sh = flight.server_hello
  if not sh then
    if flight.alert then
      local a = flight.alert.name or tostring(flight.alert.description)
      local why = a == "protocol_version" and "no protocol version in common"
        or a == "handshake_failure" and "no suite or group in common"
        or a == "insufficient_security" and "the server wants stronger suites than the client offers"
        or ("the server refused")
      return fail(a == "protocol_version" and "no_protocol" or a == "handshake_failure" and "no_suite" or "refused",
        ("%s (alert %s)"):format(why, a), { alert = a })
    end
    if flight.outcome == "timeout" then return fail("no_answer", "no answer within the timeout") end
    if flight.outcome == "not_tls" then return fail("no_answer", "the answer is no TLS") end
    return fail("no_answer", ("no ServerHello (%s)"):format(tostring(flight.outcome)))
  end
  local protocol = sh.protocol
  if not protocol or not has(h.protocols, protocol) then
    return fail("unoffered", ("the server chose %s, which the client does not offer"):format(tostring(protocol or sh.version)))
  end
  if not has(h.suites, sh.suite) then
    return fail("unoffered", ("the server chose suite 0x%04X, which the client does not offer"):format(sh.suite))
  end
  local s = wire.suite(sh.suite) or {}
  local r = { ok = true, protocol = protocol,
    suite = { id = sh.suite, iana = s.iana or s.name, openssl = s.openssl, auth = s.auth },
    fs = protocol == "tlsv1_3" or s.kx == "ECDHE" or s.kx == "DHE" }
  if protocol == "tlsv1_3" then
    r.group = sh.key_share_group_name or sh.key_share_group
  else
    local ske = flight.server_key_exchange
    if ske then
      r.group = ske.group_name or ske.group
      r.dh_bits = ske.dh_bits
    end
  end
  local min_p = rec.min_protocol and RANK[rec.min_protocol]
  if min_p and RANK[protocol] and RANK[protocol] < min_p then
    return fail("no_protocol", ("%s is below the client's minimum (%s)"):format(protocols.label[protocol] or protocol,
      protocols.label[rec.min_protocol] or rec.min_protocol), { protocol = protocol, suite = r.suite })
  end
  local min_dh = limit(rec.min_dh_bits)
  if r.dh_bits and min_dh and r.dh_bits < min_dh then
    return fail("dh_too_small", ("DH parameters of %d bits, below the client's minimum of %d"):format(r.dh_bits, min_dh),
      { protocol = protocol, suite = r.suite })
  end
  return r
end

-- One client's exchange, over talk: talk.first(hello) and
-- talk.second(hello) return the server's flight in answer (or nil and
-- why). Its hello replayed with the SNI, a HelloRetryRequest followed.
local function exchange(rec, server_name, talk)
  local opts = {}
  if rec.hello.server_name then opts.server_name = server_name or false end
  local hello, why = wire.replay_hello(rec.bytes, opts)
  if not hello then return fail("error", "the recording cannot be replayed: " .. why) end
  local flight, err = talk.first(hello)
  if not flight then return fail("error", err) end
  local sh = flight.server_hello
  if not (sh and sh.hello_retry_request) then return outcome(rec, flight) end
  local g = sh.key_share_group
  if not g or not has(rec.hello.groups, g) then
    return fail("no_suite", ("a HelloRetryRequest for group %s, which the client does not offer"):format(tostring(g)))
  end
  opts.key_share = g
  opts.cookie = sh.cookie
  local second, why2 = wire.replay_hello(rec.bytes, opts)
  if not second then return fail("error", "the second hello cannot be made: " .. tostring(why2)) end
  local compat = (rec.hello.session_id_length or 0) > 0 and CCS or ""
  flight, err = talk.second(compat .. second)
  if not flight then return fail("error", err) end
  if flight.server_hello and flight.server_hello.hello_retry_request then
    return fail("refused", "a second HelloRetryRequest")
  end
  local result = outcome(rec, flight)
  result.retry = sh.key_share_group_name or g
  return result
end

-- One client against a live endpoint: a connection of its own.
local function simulate_one(ctx, rec)
  if not ctx.slots:acquire(ctx.slot_wait) then return fail("error", "no free connection slot") end
  ctx.connections = ctx.connections + 1
  local conn, err = ctx.open(ctx.sched)
  if not conn then
    ctx.slots:release()
    return fail("error", "cannot connect: " .. tostring(err))
  end
  local function send_and_read(what)
    return function(bytes)
      local ok, serr = conn:send(bytes, ctx.timeout)
      if not ok then return nil, ("cannot send the %s: %s"):format(what, tostring(serr)) end
      return (probe.read_flight(conn, ctx.timeout, MAX_FLIGHT))
    end
  end
  local result = exchange(rec, ctx.server_name, { first = send_and_read("hello"),
    second = send_and_read("second hello") })
  conn:close()
  ctx.slots:release()
  return result
end

--- What a LuaSec server context (ssl.newcontext, as Prosody builds it)
-- answers to each recorded client of kind and transport, in memory
-- (tlsharden.context.answer_hello): the same list as a scan's clients,
-- with OpenSSL itself answering. opts: server_name (the SNI the clients
-- send, default "example.org"), dir.
function M.offline(ctx, kind, transport, opts)
  opts = opts or {}
  local out = json.list()
  for i, rec in ipairs(M.recordings(kind, transport, opts.dir)) do
    local first
    local talk = {
      first = function(bytes)
        first = bytes
        return wire.parse_server_flight(core.context.answer_hello(ctx, bytes), { eof = true })
      end,
      second = function(bytes)
        local _, answer = core.context.answer_hello(ctx, first, bytes)
        return wire.parse_server_flight(answer, { eof = true })
      end,
    }
    out[i] = { name = rec.name, library = rec.library, version = rec.version, software = rec.software,
      kind = rec.kind, result = exchange(rec, opts.server_name or "example.org", talk) }
  end
  return out
end

--- Simulate every recorded client of the endpoint's kind and transport
-- inside sched; on_done({ clients, connections }) when all are done.
-- opts: open (a connection to the endpoint, STARTTLS done where it
-- applies), kind, transport, server_name (the SNI, or nil for none),
-- timeout, per_server, dir (another folder of recordings).
function M.spawn(sched, opts, on_done)
  local ctx = { sched = sched, open = opts.open, server_name = opts.server_name, timeout = opts.timeout or 5,
    connections = 0, slots = sched:semaphore(opts.per_server or 8) }
  ctx.slot_wait = 4 * ctx.timeout
  local recs = M.recordings(opts.kind, opts.transport, opts.dir)
  local out = json.list()
  sched:spawn(function()
    local g = sched:group()
    for i, rec in ipairs(recs) do
      g:spawn(function()
        out[i] = { name = rec.name, library = rec.library, version = rec.version, software = rec.software,
          kind = rec.kind, result = simulate_one(ctx, rec) }
      end)
    end
    g:wait()
    on_done({ clients = out, connections = ctx.connections })
  end)
end

local OPTIONS = { open = "function", kind = "string", transport = "string", server_name = true, timeout = "number",
  per_server = "number", dir = "string" }
local KINDS = { c2s = true, s2s = true }
local TRANSPORTS = { starttls = true, direct = true }

--- Simulate the clients against one endpoint in a scheduler of its own:
-- opts as spawn's (open, kind and transport required). Returns { clients,
-- connections }. Bad options raise an error naming the option.
function M.run(opts)
  local fn = "scan.simulate.run"
  errors.table(fn, 1, "opts", opts)
  opts = errors.options(fn, 1, "opts", opts, OPTIONS)
  if opts.open == nil then errors.option(fn, "open", "expected a function(sched) returning a connection, got nil") end
  if not KINDS[opts.kind] then errors.option(fn, "kind", "expected 'c2s' or 's2s', got %s", errors.quote(opts.kind)) end
  if not TRANSPORTS[opts.transport] then
    errors.option(fn, "transport", "expected 'starttls' or 'direct', got %s", errors.quote(opts.transport))
  end
  if opts.server_name ~= nil and opts.server_name ~= false and type(opts.server_name) ~= "string" then
    errors.option(fn, "server_name", "expected a host name or false, got %s", errors.quote(opts.server_name))
  end
  local timeout = errors.number(fn, opts, "timeout", 0.001, 3600, 5)
  local per_server = errors.integer(fn, opts, "per_server", 1, 1024, 8)
  local sched = net.scheduler { per_server = per_server, timeout = timeout }
  local result
  M.spawn(sched, { open = opts.open, kind = opts.kind, transport = opts.transport,
    server_name = opts.server_name or nil, timeout = timeout, per_server = per_server, dir = opts.dir },
    function(r) result = r end)
  sched:run()
  return result
end

--- After the chain is judged: the clients that would refuse the served
-- RSA key as too small (their recorded min_rsa_bits) fail, where their
-- suite is signed with it (TLS 1.3, or an RSA suite).
function M.apply_key_limits(list, key_type, key_bits, dir)
  if key_type ~= "RSA" or not key_bits then return end
  local by_name = {}
  for _, r in ipairs(cache[dir or clients.dir()] or {}) do by_name[r.name] = r end
  for _, c in ipairs(list or {}) do
    local rec, r = by_name[c.name], c.result
    local min_rsa = rec and limit(rec.min_rsa_bits)
    if r.ok and min_rsa and key_bits < min_rsa and (r.protocol == "tlsv1_3" or r.suite.auth == "RSA") then
      c.result = fail("key_too_small", ("an RSA key of %d bits, below the client's minimum of %d"):format(key_bits, min_rsa),
        { protocol = r.protocol, suite = r.suite })
    end
  end
end

--- The weakest key exchange the clients that connect negotiate, in
-- RSA-equivalent bits (groups by their strength, DH by its size), or nil
-- when none connects or none says.
function M.kx_bits(list)
  local facts = require "tlsharden.facts"
  local weakest
  for _, c in ipairs(list or {}) do
    local r = c.result
    if r.ok then
      local eq = r.dh_bits or (type(r.group) == "string" and facts.group_strength(r.group))
      if eq and (not weakest or eq < weakest) then weakest = eq end
    end
  end
  return weakest
end

--- The clients that fail, first, then the others, each in recording order.
function M.sorted(list)
  local out = {}
  for _, c in ipairs(list or {}) do if not c.result.ok then out[#out + 1] = c end end
  for _, c in ipairs(list or {}) do if c.result.ok then out[#out + 1] = c end end
  return out
end

return M
