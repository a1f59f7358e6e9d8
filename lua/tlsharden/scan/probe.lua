--- The wire probe of the live scanner: which protocols, suites and groups
-- a server accepts, in which order it prefers them, its DH size, secure
-- renegotiation, compression, TLS_FALLBACK_SCSV, resumption signals and
-- the certificate chain as sent. It writes its own ClientHellos
-- (tlsharden.wire.client_hello) and reads only the server's first flight
-- (tlsharden.wire.parse_server_flight), so it needs no completed handshake and
-- reaches SSLv2, SSLv3, RC4, DES and export suites that OpenSSL cannot
-- negotiate any more. Connections come from the caller's open(sched)
-- function, which returns a connection ready for the TLS first flight
-- (direct TLS, or after STARTTLS). The result's fields are in
-- docs/reference/probe.md.
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local net = require "tlsharden.scan.net"
local problems = require "tlsharden.problems"
local protocols = require "tlsharden.protocols"

local M = {}

local PROTOCOLS = protocols.names
local RANK = protocols.rank

local DEFAULTS = { timeout = 5, per_server = 4, max_suites = 128, max_flight = 262144 }
local OPTIONS = { open = "function", server_name = "string", protocols = "table", timeout = "number",
  per_server = "number", max_suites = "number", max_flight = "number", alpn = "table", order = "boolean" }

-- Groups in the order a current client offers them; the rest follow by id.
local GROUP_ORDER = { "x25519", "secp256r1", "secp384r1", "secp521r1", "x448", "X25519MLKEM768",
  "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "brainpoolP256r1tls13", "brainpoolP384r1tls13",
  "brainpoolP512r1tls13", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1",
  "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192" }

local function check_opts(fn, opts)
  errors.table(fn, 1, "opts", opts)
  opts = errors.options(fn, 1, "opts", opts, OPTIONS)
  local o = { open = opts.open, server_name = opts.server_name, alpn = opts.alpn }
  if o.open == nil then errors.option(fn, "open", "expected a function(sched) returning a connection, got nil") end
  if o.server_name == "" then errors.option(fn, "server_name", "expected a host name, got ''") end
  o.timeout = errors.number(fn, opts, "timeout", 0.001, 3600, DEFAULTS.timeout)
  o.per_server = errors.integer(fn, opts, "per_server", 1, 1024, DEFAULTS.per_server)
  o.max_suites = errors.integer(fn, opts, "max_suites", 1, 4000, DEFAULTS.max_suites)
  o.max_flight = errors.integer(fn, opts, "max_flight", 1024, 64 * 1048576, DEFAULTS.max_flight)
  o.protocols = { table.unpack(protocols.check_option(fn, opts, "protocols") or PROTOCOLS) }
  o.order = opts.order ~= false
  for i, a in ipairs(o.alpn or {}) do
    if type(a) ~= "string" or a == "" then
      errors.option(fn, "alpn", "item #%d: expected a protocol name, got %s", i, errors.quote(a))
    end
  end
  return o
end

-- ---- registry views ----

local function copy(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  return t
end

local function reversed(list)
  local t = {}
  for i = #list, 1, -1 do t[#t + 1] = list[i] end
  return t
end

local function index_of(list, v)
  for i, x in ipairs(list) do if x == v then return i end end
end

local function remove_value(list, v)
  local i = index_of(list, v)
  if i then table.remove(list, i) end
end

-- The suites offered at protocol p: every registry suite that can be
-- negotiated in it (all pre-TLS 1.3 suites below 1.3: a server decides
-- what its version allows).
local function candidates(p)
  local ids = {}
  for _, s in ipairs(core.wire.suites()) do
    if not s.scsv then
      if p == "sslv2" then
        if s.sslv2 then ids[#ids + 1] = s.id end
      elseif p == "tlsv1_3" then
        if s.tls13 then ids[#ids + 1] = s.id end
      elseif not s.tls13 and not s.sslv2 then
        ids[#ids + 1] = s.id
      end
    end
  end
  return ids
end

local function group_lists()
  local by_name, ordered, seen = {}, {}, {}
  for _, g in ipairs(core.wire.groups()) do by_name[g.name] = g end
  for _, name in ipairs(GROUP_ORDER) do
    if by_name[name] then ordered[#ordered + 1] = by_name[name]; seen[name] = true end
  end
  for _, g in ipairs(core.wire.groups()) do
    if not seen[g.name] then ordered[#ordered + 1] = g end
  end
  local tls13, tls12, ec = {}, {}, {}
  for _, g in ipairs(ordered) do
    if g.tls13 then tls13[#tls13 + 1] = g.name end
    if g.kind == "ec" or g.kind == "ecx" or g.kind == "ffdhe" then tls12[#tls12 + 1] = g.name end
    if g.kind == "ec" or g.kind == "ecx" then ec[#ec + 1] = g.name end
  end
  return tls13, tls12, ec
end

local function group_name(id)
  for _, g in ipairs(core.wire.groups()) do if g.id == id then return g.name end end
  return id
end

-- ---- one connection: hello out, first flight in ----

-- A broken or surprising answer: a problem record (a warning) of the
-- result, once per code and protocol.
local function add_problem(ctx, code, message, protocol, guess)
  local key = code .. "\0" .. (protocol or "")
  if ctx.seen_problems[key] then return end
  ctx.seen_problems[key] = true
  problems.add(ctx.result.problems, "warning", code, message, { protocol = protocol, guess = guess })
end

local function hello_for(ctx, p, extra)
  local h = { version = p }
  if p == "tlsv1_3" then
    h.supported_versions = { "tlsv1_3" }
    h.groups = ctx.groups13
    h.key_shares = { "x25519" }
  elseif p ~= "sslv2" and p ~= "sslv3" then
    h.groups = ctx.groups12
  end
  if p ~= "sslv2" and p ~= "sslv3" then
    h.server_name = ctx.server_name
    h.alpn = ctx.alpn
  end
  for k, v in pairs(extra) do h[k] = v end
  return h
end

--- Read a server's first flight from conn (a scheduler connection): the
-- whole answer within timeout seconds, not each piece of it (a peer that
-- sends a byte now and then must not hold the caller), at most max bytes.
-- Returns the parsed flight (outcome "timeout" or "too_large" where it
-- ended so), the bytes after a complete flight ("" otherwise), how many
-- bytes were read, and the receive error where the peer closed or went
-- silent.
function M.read_flight(conn, timeout, max)
  local have, r, deadline = "", nil, net.now() + timeout
  while true do
    r = core.wire.parse_server_flight(have)
    if r.done then return r, have:sub(r.consumed + 1), #have end
    if #have >= max then
      r = core.wire.parse_server_flight(have, { eof = true })
      r.outcome = "too_large"
      return r, "", #have
    end
    local data, rerr = conn:receive(math.min(r.need, max - #have), math.max(0, deadline - net.now()))
    if not data then
      r = core.wire.parse_server_flight(have, { eof = true })
      if rerr == "timeout" then r.outcome = "timeout" end
      return r, "", #have, rerr
    end
    have = have .. data
  end
end

--- The ids of the suites of a protocol's entry, in its order.
function M.suite_ids(st)
  local ids = {}
  for i, s in ipairs(st.suites) do ids[i] = s.id end
  return ids
end

-- One attempt: returns { outcome, flight, error, bytes }. outcome is the
-- flight's (server_hello, alert, ...) or connect_failed, send_failed,
-- timeout.
local function attempt(ctx, p, hello_opts)
  local hello = core.wire.client_hello(hello_for(ctx, p, hello_opts))
  if not ctx.slots:acquire(ctx.slot_wait) then
    return { outcome = "timeout", error = "no free connection slot" }
  end
  ctx.result.connections = ctx.result.connections + 1
  local entry = ctx.result.protocols[p]
  if entry then entry.connections = entry.connections + 1 end
  local conn, err = ctx.open(ctx.sched)
  if not conn then
    ctx.slots:release()
    return { outcome = "connect_failed", error = tostring(err) }
  end
  local ok, serr = conn:send(hello, ctx.timeout)
  if not ok then
    conn:close()
    ctx.slots:release()
    return { outcome = serr == "timeout" and "timeout" or "send_failed", error = tostring(serr) }
  end
  local r, _, bytes, rerr = M.read_flight(conn, ctx.timeout, ctx.max_flight)
  conn:close()
  ctx.slots:release()
  return { outcome = r.outcome, flight = r, error = rerr or err, bytes = bytes }
end

local BROKEN_MESSAGES = {
  timeout = "no complete answer within the timeout",
  too_large = "the answer grew past max_flight bytes",
  connect_failed = "cannot connect",
  send_failed = "cannot send the hello",
}

-- accepted | other_version | refused | broken, plus the answered version.
local function classify(ctx, a, p)
  local r = a.flight
  for _, f in ipairs(r and r.problems or {}) do
    if f.code ~= "TRUNCATED" and f.code ~= "NO_DATA" then add_problem(ctx, f.code, f.message, p, f.guess) end
  end
  local answered = r and (r.server_hello and r.server_hello.protocol or r.sslv2 and "sslv2")
  if answered == p then return "accepted", answered end
  if r and (r.server_hello or r.sslv2) then return "other_version", answered or "unknown" end
  if a.outcome == "alert" or a.outcome == "sslv2_error" or a.outcome == "closed" then return "refused" end
  local msg = BROKEN_MESSAGES[a.outcome] or ("the answer was " .. tostring(a.outcome))
  if a.error then msg = msg .. " (" .. a.error .. ")" end
  if a.bytes and a.bytes > 0 then msg = msg .. (", after %d bytes"):format(a.bytes) end
  add_problem(ctx, problems.code(a.outcome), msg, p)
  return "broken"
end

local function chosen_suite(a)
  return a.flight.server_hello and a.flight.server_hello.suite
end

local function remember_chain(ctx, p, a, suite)
  local certs = a.flight.certificates
  if a.flight.sslv2 and a.flight.sslv2.certificate then certs = { a.flight.sslv2.certificate } end
  if not certs or #certs == 0 then return end
  for _, c in ipairs(ctx.result.chains) do
    if c.certificates[1] == certs[1] then return end
  end
  local s = core.wire.suite(suite)
  ctx.result.chains[#ctx.result.chains + 1] = { certificates = certs, protocol = p, suite = suite,
    auth = s and s.auth }
end

local function suite_entry(p, id, a)
  local s = core.wire.suite(id) or { id = id, name = ("0x%04X"):format(id), registered = false }
  local ske, sh = a.flight.server_key_exchange, a.flight.server_hello
  if ske then
    s.dh_bits = ske.dh_bits
    s.group = ske.group_name or ske.group
    s.rsa_bits = ske.rsa_bits
  end
  if p == "tlsv1_3" and sh and sh.key_share_group then
    s.group = sh.key_share_group_name or sh.key_share_group
  end
  return s
end

-- Offer list, take the suite the server chooses out, offer again, until it
-- refuses. Returns the suites found (entries) and why it stopped.
local function enumerate(ctx, st, p, list)
  local remaining, found = copy(list), {}
  for _ = 1, #list + 1 do
    if #remaining == 0 then return found, "done" end
    local a = attempt(ctx, p, { suites = remaining })
    local kind, answered = classify(ctx, a, p)
    if st.answer == nil then
      st.answer = a.outcome
      if a.flight and a.flight.alert then st.alert = a.flight.alert.name end
    end
    if kind == "accepted" then
      local sh = a.flight.server_hello
      if not st.server_hello and sh then st.server_hello = sh end
      local chosen = chosen_suite(a)
      if p == "sslv2" then
        for _, kind_id in ipairs(a.flight.sslv2.cipher_kinds) do
          found[#found + 1] = suite_entry(p, kind_id, a)
        end
        remember_chain(ctx, p, a, a.flight.sslv2.cipher_kinds[1])
        return found, "done"
      end
      if not index_of(remaining, chosen) then
        add_problem(ctx, "UNOFFERED_SUITE", ("the server chose suite 0x%04X, which was not offered")
          :format(chosen), p)
        return found, "broken"
      end
      found[#found + 1] = suite_entry(p, chosen, a)
      remember_chain(ctx, p, a, chosen)
      remove_value(remaining, chosen)
    elseif kind == "other_version" then
      st.answered_with = st.answered_with or answered
      return found, #found == 0 and "other_version" or "broken"
    elseif kind == "refused" then
      return found, "refused"
    else
      return found, "broken"
    end
  end
  return found, "done"
end

-- server / client / mixed, from the choices for list and for it reversed.
local function order_of(list, choose)
  local first = choose(list)
  local second = choose(reversed(list))
  if not first or not second then return nil end
  if first == list[1] and second == list[#list] then return "client" end
  if first == second then return "server" end
  return "mixed"
end

local function suite_choice(ctx, p)
  return function(ids)
    local a = attempt(ctx, p, { suites = ids })
    if classify(ctx, a, p) == "accepted" then return chosen_suite(a) end
  end
end

local function probe_protocol(ctx, p)
  local st = ctx.result.protocols[p]
  local all = candidates(p)
  local chunks = {}
  for i = 1, #all, ctx.max_suites do
    chunks[#chunks + 1] = { table.unpack(all, i, math.min(#all, i + ctx.max_suites - 1)) }
  end
  st.chunks = #chunks
  local broken, chunks_with_suites = false, 0
  for _, chunk in ipairs(chunks) do
    local found, why = enumerate(ctx, st, p, chunk)
    for _, s in ipairs(found) do st.suites[#st.suites + 1] = s end
    if #found > 0 then chunks_with_suites = chunks_with_suites + 1 end
    if why == "other_version" or (why == "broken" and #st.suites == 0) then
      broken = why == "broken"
      break
    end
    -- protocol_version refuses the version, whatever the suites: the
    -- other chunks would get the same answer
    if why == "refused" and #st.suites == 0 and st.alert == "protocol_version" then break end
    if why == "broken" then broken = true end
  end
  if #st.suites > 0 then st.accepted = true
  elseif broken then st.accepted = nil
  else st.accepted = false end
  -- the server's order costs two connections or more; order = false skips it
  if #st.suites < 2 or p == "sslv2" or not ctx.order then return end
  local ids = {}
  for i, s in ipairs(st.suites) do ids[i] = s.id end
  st.preference = order_of(ids, suite_choice(ctx, p))
  if st.preference == "server" and chunks_with_suites > 1 then
    -- the order found chunk by chunk is not the server's: once more, all together
    local found = enumerate(ctx, {}, p, ids)
    if #found == #ids then st.suites = found end
  end
end

-- Groups: offer them all, take the chosen one out, again until refused.
-- choose(groups) returns the group the server picks, or nil.
local function enumerate_groups(st, offer, choose, order)
  local remaining, found = copy(offer), {}
  for _ = 1, #offer + 1 do
    if #remaining == 0 then break end
    local g = choose(remaining)
    if not g or not index_of(remaining, g) then break end
    found[#found + 1] = g
    remove_value(remaining, g)
  end
  st.groups = found
  if #found >= 2 and order then
    st.group_preference = order_of(found, choose)
  end
  if st.group_preference == "server" then st.preferred_group = found[1] end
end

local function groups13(ctx)
  local st = ctx.result.protocols.tlsv1_3
  local ids = {}
  for i, s in ipairs(st.suites) do ids[i] = s.id end
  enumerate_groups(st, ctx.groups13, function(groups)
    -- no key share: the server names its choice in a HelloRetryRequest
    local a = attempt(ctx, "tlsv1_3", { suites = ids, groups = groups, key_shares = {} })
    if classify(ctx, a, "tlsv1_3") == "accepted" then
      return group_name(a.flight.server_hello.key_share_group)
    end
  end, ctx.order)
  -- A server order decides only when the client sends no key share it
  -- takes: offered a key share for its least preferred group, most
  -- servers take it rather than ask for another (as clients send one)
  local found = st.groups or {}
  if st.group_preference == "server" and #found >= 2 then
    local last = found[#found]
    local ok, a = pcall(attempt, ctx, "tlsv1_3", { suites = ids, groups = found, key_shares = { last } })
    if ok and a.flight and a.outcome == "server_hello" and classify(ctx, a, "tlsv1_3") == "accepted" then
      st.key_share_wins = group_name(a.flight.server_hello.key_share_group) == last
    end
  end
end

local function groups12(ctx, p)
  local st = ctx.result.protocols[p]
  local ids = {}
  for _, s in ipairs(st.suites) do
    if s.kx == "ECDHE" then ids[#ids + 1] = s.id end
  end
  if #ids == 0 then return end
  enumerate_groups(st, ctx.groups_ec, function(groups)
    local a = attempt(ctx, p, { suites = ids, groups = groups })
    local ske = a.flight and a.flight.server_key_exchange
    if classify(ctx, a, p) == "accepted" and ske then return ske.group_name or ske.group end
  end, ctx.order)
end

local suite_ids = M.suite_ids

local function compression(ctx, p)
  local a = attempt(ctx, p, { suites = suite_ids(ctx.result.protocols[p]), compression = { "deflate", "null" } })
  if classify(ctx, a, p) == "accepted" then
    ctx.result.compression = a.flight.server_hello.compression_name or a.flight.server_hello.compression
  end
end

local function fallback(ctx, p)
  local a = attempt(ctx, p, { suites = suite_ids(ctx.result.protocols[p]), fallback_scsv = true })
  local kind = classify(ctx, a, p)
  if a.flight and a.flight.alert and a.flight.alert.name == "inappropriate_fallback" then
    ctx.result.fallback_scsv, ctx.result.fallback_answer = true, "alert"
  elseif kind == "accepted" then
    ctx.result.fallback_scsv = false
  elseif a.outcome == "closed" then
    -- fast_tls (ejabberd, MongooseIM) refuses a fallback by closing
    -- without an alert: p was accepted by the same hello without the
    -- SCSV, so the close is the SCSV honoured
    ctx.result.fallback_scsv, ctx.result.fallback_answer = true, "closed"
  end
  ctx.result.fallback_protocol = p
end

local function summarise(ctx)
  local res = ctx.result
  local tls = {}
  for _, p in ipairs(PROTOCOLS) do
    local st = res.protocols[p]
    if st and st.accepted then
      res.versions[#res.versions + 1] = p
      if p ~= "sslv2" then tls[#tls + 1] = p end
      for _, s in ipairs(st.suites) do
        if s.dh_bits and (not res.dh_bits or s.dh_bits < res.dh_bits) then res.dh_bits = s.dh_bits end
      end
    end
  end
  local best12
  for _, p in ipairs(tls) do if p ~= "tlsv1_3" then best12 = p end end
  local source = res.protocols.tlsv1_3 and res.protocols.tlsv1_3.accepted and res.protocols.tlsv1_3
    or best12 and res.protocols[best12]
  if source and source.groups then
    res.groups = source.groups
    res.group_preference = source.group_preference
    res.preferred_group = source.preferred_group
    res.key_share_wins = source.key_share_wins
  end
  if best12 then
    local sh = res.protocols[best12].server_hello
    if sh then
      res.secure_renegotiation = sh.secure_renegotiation
      res.extended_master_secret = sh.extended_master_secret
      res.resumption = { protocol = best12, session_id = #sh.session_id > 0,
        session_ticket = sh.session_ticket }
    end
  end
  if res.chains[1] then res.certificates = res.chains[1].certificates end
  for _, p in ipairs(PROTOCOLS) do
    local st = res.protocols[p]
    if st then st.server_hello = nil end
  end
  res.elapsed = net.now() - ctx.started
end

--- Probe one endpoint inside an existing scheduler: starts a task on
-- sched and calls on_done(result) when the probe has finished.
function M.spawn(sched, opts, on_done)
  local o = check_opts("scan.probe.spawn", opts)
  local g13, g12, gec = group_lists()
  local ctx = {
    sched = sched, open = o.open, server_name = o.server_name, alpn = o.alpn,
    timeout = o.timeout, max_suites = o.max_suites, max_flight = o.max_flight, order = o.order,
    -- a slot frees within one attempt (connect, send, answer: three
    -- timeouts); at most #protocols + 4 tasks compete for per_server slots
    slots = sched:semaphore(o.per_server),
    slot_wait = 3 * o.timeout * math.ceil((#o.protocols + 4) / o.per_server + 1),
    groups13 = g13, groups12 = g12, groups_ec = gec, seen_problems = {}, started = net.now(),
    result = { protocols = {}, versions = {}, chains = {}, problems = problems.list(), connections = 0 },
  }
  for _, p in ipairs(o.protocols) do
    ctx.result.protocols[p] = { name = p, suites = {}, connections = 0 }
  end
  sched:spawn(function()
    local first = sched:group()
    for _, p in ipairs(o.protocols) do
      first:spawn(function()
        probe_protocol(ctx, p)
        if p == "tlsv1_3" and ctx.result.protocols[p].accepted then groups13(ctx) end
      end)
    end
    first:wait()
    local accepted = {}
    for _, p in ipairs(PROTOCOLS) do
      local st = ctx.result.protocols[p]
      if st and st.accepted and p ~= "sslv2" then accepted[#accepted + 1] = p end
    end
    local best12
    for _, p in ipairs(accepted) do if p ~= "tlsv1_3" then best12 = p end end
    local second = sched:group()
    if best12 then
      second:spawn(groups12, ctx, best12)
      second:spawn(compression, ctx, best12)
    end
    if #accepted >= 2 then second:spawn(fallback, ctx, accepted[#accepted - 1]) end
    second:wait()
    summarise(ctx)
    on_done(ctx.result)
  end)
end

--- Probe one endpoint and return the result (see docs/reference/probe.md).
function M.run(opts)
  local o = check_opts("scan.probe.run", opts)
  local sched = net.scheduler { per_server = o.per_server, timeout = o.timeout }
  local result
  M.spawn(sched, opts, function(r) result = r end)
  sched:run()
  return result
end

return M
