--- The attacks a server is open to, for one endpoint of a scan: verdicts
-- derived from the wire probe's facts (POODLE, SWEET32, FREAK, DROWN,
-- LOGJAM, BEAST, LUCKY13, RC4, CRIME, secure renegotiation,
-- TLS_FALLBACK_SCSV) and checks on connections of their own (Heartbleed,
-- CCS injection, ROBOT, GREASE, STARTTLS command injection), each with
-- bounded waits. Every check gives
-- { status, cve, evidence [, severity] [, suites] }; status is
-- "vulnerable", "not_vulnerable", "not_applicable" or "unknown". Bytes a
-- server should not have sent (a Heartbleed answer) are counted, never
-- kept. See docs/reference/vulnerabilities.md.
local core = require "tlsharden.core"
local json = require "tlsharden.json"
local net = require "tlsharden.scan.net"
local protocols = require "tlsharden.protocols"

local M = {}

local wire = core.wire

--- Every check, in the order the report lists them, with its CVE (or
-- nil) and the severity of a "vulnerable" verdict.
M.checks = {
  { name = "heartbleed", cve = "CVE-2014-0160", severity = "critical" },
  { name = "ccs_injection", cve = "CVE-2014-0224", severity = "high" },
  { name = "robot", cve = "CVE-2017-13099", severity = "high" },
  { name = "ticketbleed", cve = "CVE-2016-9244", severity = "high" },
  { name = "secure_renegotiation", cve = "CVE-2009-3555", severity = "medium" },
  { name = "client_renegotiation", cve = "CVE-2011-1473", severity = "medium" },
  { name = "crime", cve = "CVE-2012-4929", severity = "high" },
  { name = "poodle", cve = "CVE-2014-3566", severity = "medium" },
  { name = "sweet32", cve = "CVE-2016-2183", severity = "low" },
  { name = "freak", cve = "CVE-2015-0204", severity = "high" },
  { name = "drown", cve = "CVE-2016-0800", severity = "high" },
  { name = "logjam", cve = "CVE-2015-4000", severity = "high" },
  { name = "beast", cve = "CVE-2011-3389", severity = "low" },
  { name = "lucky13", cve = "CVE-2013-0169", severity = "low" },
  { name = "rc4", cve = "CVE-2013-2566", severity = "medium" },
  { name = "fallback_scsv", severity = "low" },
  { name = "early_data", severity = "medium" },
  { name = "grease", severity = "low" },
  { name = "starttls_injection", cve = "CVE-2011-0411", severity = "high" },
}
local BY_NAME = {}
for _, c in ipairs(M.checks) do BY_NAME[c.name] = c end

-- Heartbleed: what the request claims (testssl.sh's 0x4000), and how long
-- an answer may take; a fixed server discards the request silently.
local HEARTBEAT_CLAIM = 0x4000
local MAX_ANSWER = 70000   -- bytes read after the request, at most
local SHORT_WAIT = 3       -- seconds, at most, for an answer that may never come

local function verdict(name, status, evidence, extra)
  local c = BY_NAME[name]
  local v = { status = status, cve = c.cve, evidence = evidence }
  if status == "vulnerable" then v.severity = c.severity end
  for k, x in pairs(extra or {}) do v[k] = x end
  return v
end

-- ---- what the probe saw ----

local function accepted(pr, p)
  local st = pr.protocols and pr.protocols[p]
  return st and st.accepted and st or nil
end

local function probed(pr, p)
  return pr.protocols and pr.protocols[p] ~= nil
end

local function is_cbc(s) return (s.encryption or ""):find("%-cbc$") ~= nil end
local function is_rc4(s) return (s.encryption or ""):find("^rc4") ~= nil end
local function block64(s)
  local e = s.encryption or ""
  return e:find("^des") ~= nil or e:find("^idea") ~= nil or e:find("^rc2") ~= nil
end

-- The accepted suites (once each) that pass keep, of the protocols in ps
-- (default all), and the names.
local function suites_where(pr, keep, ps)
  local seen, names = {}, json.list()
  for _, p in ipairs(ps or protocols.names) do
    local st = accepted(pr, p)
    for _, s in ipairs(st and st.suites or {}) do
      if keep(s, p) and not seen[s.name] then
        seen[s.name] = true
        names[#names + 1] = s.name
      end
    end
  end
  return names
end

local function list_text(names, limit)
  limit = limit or 4
  local shown = {}
  for i = 1, math.min(#names, limit) do shown[i] = names[i] end
  local text = table.concat(shown, ", ")
  if #names > limit then text = text .. (" and %d more"):format(#names - limit) end
  return text
end

local function tls_below_13(pr)
  local out = {}
  for _, p in ipairs { "tlsv1_2", "tlsv1_1", "tlsv1" } do
    if accepted(pr, p) then out[#out + 1] = p end
  end
  return out
end

--- The verdicts that follow from the probe's result alone. Returns a
-- table keyed by check name.
function M.derive(pr)
  local v = {}
  local any_tls = #(pr.versions or {}) > 0
  -- POODLE: SSL 3.0 with a CBC suite
  if not probed(pr, "sslv3") then
    v.poodle = verdict("poodle", "unknown", "SSL 3.0 was not probed")
  elseif not accepted(pr, "sslv3") then
    v.poodle = verdict("poodle", "not_vulnerable", "SSL 3.0 is not accepted")
  else
    local cbc = suites_where(pr, is_cbc, { "sslv3" })
    v.poodle = #cbc > 0 and verdict("poodle", "vulnerable", "SSL 3.0 with CBC suites: " .. list_text(cbc), { suites = cbc })
      or verdict("poodle", "not_vulnerable", "SSL 3.0 is accepted, but with no CBC suite")
  end
  -- SWEET32: 64-bit block ciphers
  local b64 = suites_where(pr, block64)
  v.sweet32 = #b64 > 0 and verdict("sweet32", "vulnerable", "64-bit block suites: " .. list_text(b64), { suites = b64 })
    or verdict("sweet32", "not_vulnerable", "no suite with a 64-bit block cipher")
  -- FREAK: EXPORT suites with RSA key exchange
  local freak = suites_where(pr, function(s) return s.export and s.kx == "RSA" end)
  v.freak = #freak > 0 and verdict("freak", "vulnerable", "EXPORT RSA suites: " .. list_text(freak), { suites = freak })
    or verdict("freak", "not_vulnerable", "no EXPORT RSA suite")
  -- DROWN: SSLv2 on this endpoint (a survey adds the same key elsewhere)
  if not probed(pr, "sslv2") then
    v.drown = verdict("drown", "unknown", "SSL 2.0 was not probed")
  elseif accepted(pr, "sslv2") then
    v.drown = verdict("drown", "vulnerable", "SSL 2.0 is accepted")
  else
    v.drown = verdict("drown", "not_vulnerable", "SSL 2.0 is not accepted here")
  end
  -- LOGJAM: EXPORT DH suites, or DH parameters of 1024 bits or fewer
  local dh_export = suites_where(pr, function(s) return s.export and (s.kx == "DHE" or s.kx == "DH") end)
  local small = suites_where(pr, function(s) return s.dh_bits ~= nil and s.dh_bits <= 1024 end)
  if #dh_export > 0 then
    v.logjam = verdict("logjam", "vulnerable", "EXPORT DH suites: " .. list_text(dh_export), { suites = dh_export })
  elseif #small > 0 then
    v.logjam = verdict("logjam", "vulnerable", ("DH parameters of %d bits: %s"):format(pr.dh_bits or 0,
      list_text(small)), { suites = small })
  elseif pr.dh_bits and pr.dh_bits <= 1024 then
    v.logjam = verdict("logjam", "vulnerable", ("DH parameters of %d bits"):format(pr.dh_bits))
  else
    local dhe = suites_where(pr, function(s) return s.kx == "DHE" or s.kx == "DH" end)
    v.logjam = #dhe == 0 and verdict("logjam", "not_applicable", "no DH key exchange")
      or verdict("logjam", "not_vulnerable", ("DH parameters of %d bits, no EXPORT DH suite"):format(pr.dh_bits or 0))
  end
  -- BEAST: CBC in SSL 3.0 or TLS 1.0
  local beast = suites_where(pr, is_cbc, { "sslv3", "tlsv1" })
  if #beast > 0 then
    v.beast = verdict("beast", "vulnerable", "CBC suites in SSL 3.0 or TLS 1.0: " .. list_text(beast), { suites = beast })
  elseif not accepted(pr, "sslv3") and not accepted(pr, "tlsv1") then
    v.beast = verdict("beast", "not_applicable", "neither SSL 3.0 nor TLS 1.0 is accepted")
  else
    v.beast = verdict("beast", "not_vulnerable", "no CBC suite in SSL 3.0 or TLS 1.0")
  end
  -- LUCKY13: CBC suites in TLS (any version before 1.3)
  local lucky = suites_where(pr, is_cbc, { "tlsv1", "tlsv1_1", "tlsv1_2" })
  v.lucky13 = #lucky > 0 and verdict("lucky13", "vulnerable", "CBC suites in TLS: " .. list_text(lucky), { suites = lucky })
    or verdict("lucky13", "not_vulnerable", "no CBC suite in TLS")
  -- RC4
  local rc4 = suites_where(pr, is_rc4)
  v.rc4 = #rc4 > 0 and verdict("rc4", "vulnerable", "RC4 suites: " .. list_text(rc4), { suites = rc4 })
    or verdict("rc4", "not_vulnerable", "no RC4 suite")
  -- CRIME: TLS compression
  if pr.compression == nil then
    v.crime = verdict("crime", any_tls and #tls_below_13(pr) == 0 and "not_applicable" or "unknown",
      any_tls and #tls_below_13(pr) == 0 and "TLS 1.3 has no compression" or "compression was not tried")
  elseif pr.compression ~= "null" and pr.compression ~= 0 then
    v.crime = verdict("crime", "vulnerable", ("TLS compression is accepted (%s)"):format(tostring(pr.compression)))
  else
    v.crime = verdict("crime", "not_vulnerable", "TLS compression is refused")
  end
  -- secure renegotiation (RFC 5746)
  if pr.secure_renegotiation == true then
    v.secure_renegotiation = verdict("secure_renegotiation", "not_vulnerable", "RFC 5746 renegotiation_info is answered")
  elseif pr.secure_renegotiation == false then
    v.secure_renegotiation = verdict("secure_renegotiation", "vulnerable", "no RFC 5746 renegotiation_info in the ServerHello")
  elseif any_tls and #tls_below_13(pr) == 0 and not accepted(pr, "sslv3") then
    v.secure_renegotiation = verdict("secure_renegotiation", "not_applicable", "TLS 1.3 has no renegotiation")
  else
    v.secure_renegotiation = verdict("secure_renegotiation", "unknown", "no ServerHello below TLS 1.3 to read it from")
  end
  -- TLS_FALLBACK_SCSV
  if pr.fallback_scsv == true then
    v.fallback_scsv = verdict("fallback_scsv", "not_vulnerable", ("a fallback to %s is refused (%s)"):format(
      protocols.label[pr.fallback_protocol] or tostring(pr.fallback_protocol),
      pr.fallback_answer == "closed" and "the connection closed without an alert, where the same hello without the SCSV was accepted"
        or "inappropriate_fallback"))
  elseif pr.fallback_scsv == false then
    v.fallback_scsv = verdict("fallback_scsv", "vulnerable", ("a fallback to %s is accepted despite TLS_FALLBACK_SCSV")
      :format(protocols.label[pr.fallback_protocol] or tostring(pr.fallback_protocol)))
  elseif any_tls and #(pr.versions or {}) < 2 then
    v.fallback_scsv = verdict("fallback_scsv", "not_applicable", "one protocol version only: nothing to fall back to")
  else
    v.fallback_scsv = verdict("fallback_scsv", "unknown", "the fallback attempt was not answered")
  end
  return v
end

-- ---- checks on connections of their own ----

-- One connection: the hello out, the first flight in. Returns conn (still
-- open) and the parsed flight, the bytes after it, or nil, why, and
-- "closed" or "timeout" when the server did either.
local function hello_and_flight(ctx, hello)
  if not ctx.slots:acquire(ctx.slot_wait) then return nil, "no free connection slot" end
  ctx.connections = ctx.connections + 1
  local conn, err = ctx.open(ctx.sched)
  if not conn then
    ctx.slots:release()
    return nil, "cannot connect: " .. tostring(err)
  end
  local ok, serr = conn:send(wire.client_hello(hello), ctx.timeout)
  if not ok then
    conn:close()
    ctx.slots:release()
    return nil, "cannot send the hello: " .. tostring(serr)
  end
  local have, deadline = "", net.now() + ctx.timeout
  while true do
    local r = wire.parse_server_flight(have)
    if r.done then return conn, r, have:sub(r.consumed + 1) end
    if #have >= 262144 then
      conn:close()
      ctx.slots:release()
      return nil, "the first flight grew past 256 KiB"
    end
    local data, rerr = conn:receive(math.min(r.need, 262144 - #have), math.max(0, deadline - net.now()))
    if not data then
      r = wire.parse_server_flight(have, { eof = true })
      if r.server_hello or r.alert then return conn, r, "" end
      conn:close()
      ctx.slots:release()
      if rerr == "timeout" then return nil, "no complete first flight within the timeout", "timeout" end
      return nil, ("the server closed the connection after %d bytes, without an alert"):format(#have), "closed"
    end
    have = have .. data
  end
end

local function done(ctx, conn)
  conn:close()
  ctx.slots:release()
end

-- Read records until stop(record) says so, the peer closes, MAX_ANSWER
-- bytes came, or wait seconds passed. Returns the record stop accepted
-- (or nil) and how it ended: "record", "closed", "timeout", "malformed",
-- "too_much". Record payloads are never kept.
local function read_records(conn, have, wait, stop)
  local deadline, total = net.now() + wait, #have
  while true do
    local r = wire.parse_records(have)
    for _, rec in ipairs(r.records) do
      if stop(rec) then return rec, "record" end
    end
    if r.malformed then return nil, "malformed" end
    have = have:sub(r.consumed + 1)
    if total >= MAX_ANSWER then return nil, "too_much" end
    local left = deadline - net.now()
    if left <= 0 then return nil, "timeout" end
    local data, err = conn:receive(math.min(math.max(r.need, 1) + 16384, MAX_ANSWER - total), left)
    if not data then return nil, err == "timeout" and "timeout" or "closed" end
    total = total + #data
    have = have .. data
  end
end

local function suite_ids(st)
  local ids = {}
  for i, s in ipairs(st.suites) do ids[i] = s.id end
  return ids
end

local function wire_version(p)
  for _, v in ipairs(core.protocols) do if v.name == p then return v.wire end end
end

-- The best version below TLS 1.3 the probe saw accepted, and its entry.
local function best_below_13(pr)
  local ps = tls_below_13(pr)
  if ps[1] then return ps[1], accepted(pr, ps[1]) end
end

local function heartbleed(ctx)
  local p, st = best_below_13(ctx.probe)
  if not p then
    return verdict("heartbleed", "not_applicable", "no TLS 1.2 or older: TLS 1.3 has no heartbeat")
  end
  local conn, flight, rest = hello_and_flight(ctx, { version = p, suites = suite_ids(st), heartbeat = true,
    server_name = ctx.server_name, alpn = ctx.alpn })
  if not conn then return verdict("heartbleed", "unknown", flight) end
  local sh = flight.server_hello
  if not sh then
    done(ctx, conn)
    return verdict("heartbleed", "unknown", "no ServerHello to a hello that offers the heartbeat extension ("
      .. tostring(flight.outcome) .. ")")
  end
  if sh.heartbeat == nil then
    done(ctx, conn)
    return verdict("heartbleed", "not_applicable", "the ServerHello has no heartbeat extension")
  end
  -- a request that claims 16 KiB and carries nothing, before the
  -- handshake finishes: only a vulnerable server answers it
  local ok, err = conn:send(wire.record("heartbeat", wire_version(sh.protocol) or wire_version(p),
    wire.heartbeat_request(HEARTBEAT_CLAIM)), ctx.timeout)
  if not ok then
    done(ctx, conn)
    return verdict("heartbleed", "unknown", "cannot send the heartbeat request: " .. tostring(err))
  end
  local rec, how = read_records(conn, rest, math.min(ctx.timeout, SHORT_WAIT), function(r)
    return r.type == 24 or r.type == 21
  end)
  done(ctx, conn)
  if rec and rec.type == 24 then
    if (rec.carried or 0) > 16 then
      return verdict("heartbleed", "vulnerable", ("a heartbeat request claiming %d bytes and carrying none was"
        .. " answered with %d bytes of the server's memory (not kept)"):format(HEARTBEAT_CLAIM, rec.carried))
    end
    return verdict("heartbleed", "not_vulnerable", ("a heartbeat answer of %d bytes: no more than was sent")
      :format(rec.carried or 0))
  elseif rec then
    return verdict("heartbleed", "not_vulnerable", ("the request was answered with the alert %s")
      :format(rec.alert or tostring(rec.description)))
  elseif how == "timeout" then
    return verdict("heartbleed", "not_vulnerable", "the request was discarded (no answer within "
      .. math.min(ctx.timeout, SHORT_WAIT) .. " s), as a fixed server does")
  elseif how == "closed" then
    return verdict("heartbleed", "not_vulnerable", "the server closed the connection on the request")
  end
  return verdict("heartbleed", "unknown", "the answer was no TLS record (" .. how .. ")")
end

local VULNERABLE_CCS_ALERTS = { [20] = true, [21] = true }

local function ccs_injection(ctx)
  local p, st = best_below_13(ctx.probe)
  if not p then
    return verdict("ccs_injection", "not_applicable", "no TLS 1.2 or older: TLS 1.3 has no such ChangeCipherSpec")
  end
  local conn, flight, rest = hello_and_flight(ctx, { version = p, suites = suite_ids(st),
    server_name = ctx.server_name, alpn = ctx.alpn })
  if not conn then return verdict("ccs_injection", "unknown", flight) end
  if not flight.server_hello or flight.outcome ~= "server_hello" then
    done(ctx, conn)
    return verdict("ccs_injection", "unknown", "no ServerHello (" .. tostring(flight.outcome) .. ")")
  end
  local version = wire_version(flight.server_hello.protocol) or wire_version(p)
  local ccs = wire.record("change_cipher_spec", version, "\1")
  local wait = math.min(ctx.timeout, SHORT_WAIT)
  local function alert(r) return r.type == 21 end
  -- a ChangeCipherSpec before any key exchange: a fixed server refuses it
  -- at once; a vulnerable one takes it and fails on the next record,
  -- which it now decrypts with keys from an empty master secret
  for i = 1, 2 do
    local ok, err = conn:send(ccs, ctx.timeout)
    if not ok then
      done(ctx, conn)
      if i == 2 then
        return verdict("ccs_injection", "not_vulnerable", "the server closed the connection on the early ChangeCipherSpec")
      end
      return verdict("ccs_injection", "unknown", "cannot send the ChangeCipherSpec: " .. tostring(err))
    end
    local rec, how = read_records(conn, rest, wait, alert)
    rest = ""
    if rec then
      done(ctx, conn)
      if VULNERABLE_CCS_ALERTS[rec.description] then
        return verdict("ccs_injection", "vulnerable", ("an early ChangeCipherSpec was taken: the next record"
          .. " failed to decrypt (alert %s)"):format(rec.alert or tostring(rec.description)))
      end
      return verdict("ccs_injection", "not_vulnerable", ("the early ChangeCipherSpec was refused (alert %s)")
        :format(rec.alert or tostring(rec.description)))
    elseif how == "closed" then
      done(ctx, conn)
      return verdict("ccs_injection", "not_vulnerable", "the server closed the connection on the early ChangeCipherSpec")
    elseif how ~= "timeout" then
      done(ctx, conn)
      return verdict("ccs_injection", "unknown", "the answer was no TLS record (" .. how .. ")")
    end
  end
  done(ctx, conn)
  return verdict("ccs_injection", "unknown", "no answer to two early ChangeCipherSpec records within "
    .. wait .. " s each")
end

local function grease(ctx)
  local pr = ctx.probe
  local p = accepted(pr, "tlsv1_3") and "tlsv1_3" or best_below_13(pr)
  if not p then return verdict("grease", "not_applicable", "no TLS version to try") end
  local hello = { version = p, suites = suite_ids(accepted(pr, p)), grease = true, server_name = ctx.server_name,
    alpn = ctx.alpn }
  if p == "tlsv1_3" then hello.supported_versions = { "tlsv1_3" } end
  local conn, flight, how = hello_and_flight(ctx, hello)
  if not conn and how == "closed" then
    flight = { outcome = "closed without an alert" }
  elseif not conn then
    return verdict("grease", "unknown", flight)
  else
    done(ctx, conn)
  end
  local sh = flight.server_hello
  if sh and sh.protocol == p then
    return verdict("grease", "not_vulnerable", ("a %s hello with RFC 8701 values (suite, extensions, groups,"
      .. " signature algorithms%s) is accepted"):format(protocols.label[p], p == "tlsv1_3" and ", versions, key share" or ""))
  end
  local why = flight.alert and ("alert " .. tostring(flight.alert.name or flight.alert.description))
    or tostring(flight.outcome)
  return verdict("grease", "vulnerable", ("the same %s hello with RFC 8701 values is refused (%s): the"
    .. " server fails on values it does not know, and will break future clients"):format(protocols.label[p], why))
end

-- STARTTLS command injection (the CVE-2011-0411 class): a stanza sent in
-- the same write as <starttls/>. A sound server drops what came before
-- TLS; one that buffers it answers the stanza inside TLS, where a man in
-- the middle's commands would then run as the client's.
local INJECT_ID = "tlsharden-injected"

-- Whether a stream result shows an answer to the injected stanza: an
-- element with its id, or the id in the first bytes that came.
local function answered(r)
  for _, id in ipairs(r.ids or {}) do if id == INJECT_ID then return true end end
  return (r.head or ""):find(INJECT_ID, 1, true) ~= nil
end

local function starttls_injection(ctx)
  if not ctx.connect then return verdict("starttls_injection", "unknown", "no plain connection to try") end
  if not ctx.slots:acquire(ctx.slot_wait) then
    return verdict("starttls_injection", "unknown", "no free connection slot")
  end
  ctx.connections = ctx.connections + 1
  local conn, err = ctx.connect(ctx.sched)
  local function finish(status, evidence)
    if conn then
      if conn.tls then conn.tls:close() end
      conn:close()
    end
    ctx.slots:release()
    return verdict("starttls_injection", status, evidence)
  end
  if not conn then return finish("unknown", "cannot connect: " .. tostring(err)) end
  local stream = {}
  for k, v in pairs(ctx.stream) do stream[k] = v end
  stream.inject = ("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>"):format(INJECT_ID)
  local pre = ctx.xmpp.negotiate_starttls(ctx.sock.plain(conn), stream)
  if not pre.proceed then
    local failed = pre.failure and pre.failure.message or "no <proceed/>"
    if answered(pre) then
      return finish("not_vulnerable", "the stanza sent with <starttls/> was answered before TLS, in plaintext: " .. failed)
    end
    return finish("unknown", "no <proceed/> to <starttls/> followed by a stanza: " .. failed)
  end
  local hs = ctx.sock.handshake(ctx.sched, conn, ctx.timeout, { server_name = ctx.server_name })
  if not hs.ok then
    if #(ctx.probe.versions or {}) > 0 then
      -- STARTTLS works without the stanza: the server refused what came
      -- after <starttls/> (Prosody answers it with a stream error in
      -- plaintext and closes), so nothing injected reaches the stream
      return finish("not_vulnerable", "the server ended the connection instead of starting TLS with a stanza"
        .. " pending after <starttls/> (" .. tostring(hs.error) .. ")")
    end
    return finish("unknown", "the TLS handshake after <proceed/> failed: " .. tostring(hs.error))
  end
  stream.inject = nil
  local after = ctx.xmpp.features(ctx.sock.tls(ctx.sched, hs.tls), stream)
  if answered(after) then
    return finish("vulnerable", ("the stanza sent in plaintext with <starttls/> was answered inside TLS"
      .. " (id '%s'): a man in the middle can put commands into the encrypted stream"):format(INJECT_ID))
  end
  if after.features then
    return finish("not_vulnerable", "what was sent with <starttls/> was dropped: the stream after TLS is a new one")
  end
  if after.failure and after.failure.code == "CLOSED" and #(ctx.probe.versions or {}) > 0 then
    -- the server ended the connection inside TLS rather than answer what
    -- came before it (ejabberd's s2s at times): nothing injected ran
    return finish("not_vulnerable", "the server closed the connection after TLS, answering nothing of what was"
      .. " sent with <starttls/> (" .. after.failure.message .. ")")
  end
  return finish("unknown", "the stream after TLS failed: " .. tostring(after.failure and after.failure.message))
end

-- ROBOT: ClientKeyExchange messages with each padding fault of the ROBOT
-- paper's oracle tests, each followed by ChangeCipherSpec and a Finished
-- the server cannot decrypt. A server that answers them alike gives no
-- oracle; one that answers some faults otherwise gives one (strong when
-- even the wrong first bytes are told apart from a valid padding).
local ROBOT_VARIANTS = { "valid", "bad_first_bytes", "zero_misplaced", "no_zero", "wrong_version" }

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

local function robot_try(ctx, p, ids, variant)
  local conn, flight, rest = hello_and_flight(ctx, { version = p, suites = ids, server_name = ctx.server_name,
    alpn = ctx.alpn })
  if not conn then return nil, flight end
  local sh, certs = flight.server_hello, flight.certificates
  if not sh or not certs or not certs[1] then
    done(ctx, conn)
    return nil, "no certificate in the first flight (" .. tostring(flight.outcome) .. ")"
  end
  local cke, why = wire.robot_key_exchange(certs[1], variant, p)
  if not cke then
    done(ctx, conn)
    return nil, why
  end
  local v = wire_version(sh.protocol) or wire_version(p)
  local ok, err = conn:send(wire.record("handshake", v, cke) .. wire.record("change_cipher_spec", v, "\1")
    .. wire.record("handshake", v, random_bytes(40)), ctx.timeout)
  if not ok then
    done(ctx, conn)
    return "send failed (" .. tostring(err) .. ")"
  end
  local rec, how = read_records(conn, rest, math.min(ctx.timeout, SHORT_WAIT), function(r) return r.type == 21 end)
  done(ctx, conn)
  if rec then return "alert " .. tostring(rec.alert or rec.description) end
  return how
end

local function robot_round(ctx, p, ids)
  local answers = {}
  for _, variant in ipairs(ROBOT_VARIANTS) do
    local a, why = robot_try(ctx, p, ids, variant)
    if not a then return nil, why end
    answers[variant] = a
  end
  return answers
end

local function robot(ctx)
  local pr = ctx.probe
  local p, st = best_below_13(pr)
  local ids = {}
  for _, s in ipairs(st and st.suites or {}) do
    if s.kx == "RSA" and not s.export then ids[#ids + 1] = s.id end
  end
  if not p or #ids == 0 then return verdict("robot", "not_applicable", "no RSA key exchange") end
  local first, why = robot_round(ctx, p, ids)
  if not first then return verdict("robot", "unknown", why) end
  local same = true
  for _, variant in ipairs(ROBOT_VARIANTS) do same = same and first[variant] == first.valid end
  if same then
    return verdict("robot", "not_vulnerable", ("every padding fault got the same answer as a valid padding (%s)")
      :format(first.valid))
  end
  -- a difference must hold up: ask again
  local second, why2 = robot_round(ctx, p, ids)
  if not second then return verdict("robot", "unknown", why2) end
  local parts = {}
  for _, variant in ipairs(ROBOT_VARIANTS) do
    if second[variant] ~= first[variant] then
      return verdict("robot", "unknown", ("the answers differ by padding, but not the same way twice (%s: %s, then %s)")
        :format(variant, first[variant], second[variant]))
    end
    parts[#parts + 1] = variant .. " → " .. first[variant]
  end
  local strength = first.bad_first_bytes ~= first.valid and "a strong oracle" or "a weak oracle"
  return verdict("robot", "vulnerable", ("%s: the server answers RSA padding faults differently (%s)")
    :format(strength, table.concat(parts, ", ")), { oracle = strength == "a strong oracle" and "strong" or "weak" })
end

-- Client-initiated renegotiation (a denial of service risk: each
-- renegotiation costs the server a handshake) with OpenSSL's own client,
-- as testssl.sh does: `openssl s_client` (STARTTLS xmpp or xmpp-server
-- where the endpoint has it) is asked to renegotiate ("R") and its output
-- is read until it shows a second handshake or the refusal. The process
-- runs beside the scheduler, which polls its output; it stops by itself.
local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local S_CLIENT_VERSION = { tlsv1_2 = "-tls1_2", tlsv1_1 = "-tls1_1", tlsv1 = "-tls1" }

local function client_renegotiation(ctx)
  local p = best_below_13(ctx.probe)
  if not p then
    return verdict("client_renegotiation", "not_applicable", "no TLS 1.2 or older: TLS 1.3 has no renegotiation")
  end
  local t = ctx.target
  if not t or not t.address then return verdict("client_renegotiation", "unknown", "no address to connect to") end
  local out = os.tmpname()
  local host = t.address:find(":", 1, true) and ("[" .. t.address .. "]") or t.address
  local starttls = t.starttls and ("-starttls %s -xmpphost %s"):format(t.starttls == "s2s" and "xmpp-server" or "xmpp",
    sh_quote(t.domain)) or ""
  -- whole seconds for sleep and timeout (a scan's timeout may be 0.5)
  local wait = math.ceil(math.min(ctx.timeout, SHORT_WAIT)) + 2
  -- a session of its own, its output nowhere but the file: nothing holds
  -- the caller's stdout or stderr, and one kill stops every process of it
  local inner = ("(printf 'R\\n'; sleep %d) | timeout %d openssl s_client -connect %s %s %s -servername %s"
    .. " -legacy_renegotiation -cipher 'ALL:@SECLEVEL=0' > %s 2>&1"):format(wait, wait,
    sh_quote(host .. ":" .. t.port), S_CLIENT_VERSION[p], starttls, sh_quote(t.domain), sh_quote(out))
  local cmd = ("setsid sh -c %s > /dev/null 2>&1 < /dev/null & echo $!"):format(sh_quote(inner))
  ctx.connections = ctx.connections + 1
  local pipe = io.popen(cmd)
  local pid = pipe and tonumber(pipe:read("*l"))
  if pipe then pipe:close() end
  if not pid then
    os.remove(out)
    return verdict("client_renegotiation", "unknown", "cannot run openssl s_client")
  end
  local deadline = net.now() + wait + 1
  local text, v = "", nil
  while net.now() < deadline do
    ctx.sched:sleep(0.02)
    text = read_all(out) or ""
    local after = text:match("RENEGOTIATING(.*)$")
    if after then
      if after:find("depth=%d") then
        v = verdict("client_renegotiation", "vulnerable", ("%s: a renegotiation the client asked for was made"
          .. " (openssl s_client 'R'): each one costs the server a handshake"):format(protocols.label[p]))
      elseif after:find("no renegotiation", 1, true) or after:find("alert", 1, true)
        or after:find("error", 1, true) then
        v = verdict("client_renegotiation", "not_vulnerable", ("%s: a renegotiation the client asked for is refused")
          :format(protocols.label[p]))
      end
    elseif text:find("errno=", 1, true) or text:find(":error:", 1, true) then
      v = verdict("client_renegotiation", "unknown", "openssl s_client could not connect: "
        .. (text:match("[^\n]*:error:[^\n]*") or "no handshake"):sub(1, 160))
    end
    if v or text:find("\nDONE", 1, true) then break end
  end
  os.execute(("kill -TERM -- -%d 2>/dev/null"):format(pid))
  os.remove(out)
  if v then return v end
  if text:find("RENEGOTIATING", 1, true) then
    return verdict("client_renegotiation", "not_vulnerable", ("%s: the server ended the connection on a renegotiation")
      :format(protocols.label[p]))
  end
  if text == "" or not text:find("CONNECTED", 1, true) then
    return verdict("client_renegotiation", "unknown", "openssl s_client did not connect (is the openssl command there?)")
  end
  return verdict("client_renegotiation", "unknown", "no answer to a renegotiation within " .. wait .. " s")
end

local NOT_YET = {
  ticketbleed = "not checked by this version",
  early_data = "not checked by this version",
}

--- Run every check of one endpoint inside sched and call on_done({
-- checks, connections }) when all are done. opts: open (as the probe's),
-- server_name, alpn, timeout, per_server, probe (the probe's result),
-- starttls (the endpoint starts TLS inside XMPP), connect (a plain
-- connection to the endpoint, for the STARTTLS check), stream (its
-- XMPP stream options) and target ({ address, port, starttls ("c2s",
-- "s2s" or nil), domain }: for openssl s_client).
function M.spawn(sched, opts, on_done)
  local ctx = {
    sched = sched, open = opts.open, server_name = opts.server_name, alpn = opts.alpn,
    connect = opts.connect, stream = opts.stream, xmpp = require "tlsharden.scan.xmpp", target = opts.target,
    sock = require "tlsharden.scan.sock",
    timeout = opts.timeout or 5, probe = opts.probe, connections = 0,
    slots = sched:semaphore(opts.per_server or 4),
  }
  ctx.slot_wait = 4 * ctx.timeout
  local checks = M.derive(opts.probe)
  sched:spawn(function()
    local g = sched:group()
    if #(opts.probe.versions or {}) > 0 then
      g:spawn(function() checks.heartbleed = heartbleed(ctx) end)
      g:spawn(function() checks.ccs_injection = ccs_injection(ctx) end)
      g:spawn(function() checks.grease = grease(ctx) end)
      if opts.starttls then g:spawn(function() checks.starttls_injection = starttls_injection(ctx) end) end
      g:spawn(function() checks.robot = robot(ctx) end)
    end
    g:wait()
    -- alone, once the others are done: a server that takes one connection
    -- at a time must not keep openssl s_client waiting
    if #(opts.probe.versions or {}) > 0 then checks.client_renegotiation = client_renegotiation(ctx) end
    for _, c in ipairs(M.checks) do
      if not checks[c.name] then
        if #(opts.probe.versions or {}) == 0 then
          checks[c.name] = verdict(c.name, "unknown", "no TLS version was found")
        elseif c.name == "starttls_injection" and not opts.starttls then
          checks[c.name] = verdict(c.name, "not_applicable", "direct TLS: no STARTTLS")
        elseif c.name == "early_data" and not accepted(opts.probe, "tlsv1_3") then
          checks[c.name] = verdict(c.name, "not_applicable", "no TLS 1.3")
        elseif c.name == "robot" and #suites_where(opts.probe, function(s) return s.kx == "RSA" end) == 0 then
          checks[c.name] = verdict(c.name, "not_applicable", "no RSA key exchange")
        else
          checks[c.name] = verdict(c.name, "unknown", NOT_YET[c.name] or "not checked")
        end
      end
    end
    on_done({ checks = checks, connections = ctx.connections })
  end)
end

--- The names of the vulnerable checks, most severe first.
local SEVERITY_RANK = { critical = 1, high = 2, medium = 3, low = 4 }
function M.vulnerable(checks)
  local out = {}
  for _, c in ipairs(M.checks) do
    local v = checks and checks[c.name]
    if v and v.status == "vulnerable" then out[#out + 1] = c.name end
  end
  table.sort(out, function(a, b)
    local ra, rb = SEVERITY_RANK[BY_NAME[a].severity], SEVERITY_RANK[BY_NAME[b].severity]
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return out
end

return M
