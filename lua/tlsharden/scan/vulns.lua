--- The attacks a server is open to, for one endpoint of a scan: the
-- verdicts that follow from the wire probe's facts (tlsharden.scan.attacks)
-- and the checks on connections of their own (Heartbleed, CCS injection,
-- ROBOT, GREASE, STARTTLS command injection, Ticketbleed; client
-- renegotiation and TLS 1.3 early data with openssl s_client), each with
-- bounded waits. Every check gives
-- { status, cve, evidence [, severity] [, suites] }; status is
-- "vulnerable", "not_vulnerable", "not_applicable" or "unknown". Bytes a
-- server should not have sent (a Heartbleed answer) are counted, never
-- kept. See docs/reference/vulnerabilities.md.
local core = require "tlsharden.core"
local net = require "tlsharden.scan.net"
local probe = require "tlsharden.scan.probe"
local protocols = require "tlsharden.protocols"

local attacks = require "tlsharden.scan.attacks"

local M = {}

local wire = core.wire

M.checks, M.derive, M.vulnerable = attacks.checks, attacks.derive, attacks.vulnerable
local verdict, accepted, suites_where, tls_below_13 = attacks.verdict, attacks.accepted, attacks.suites_where,
  attacks.tls_below_13

-- Heartbleed: what the request claims (testssl.sh's 0x4000), and how long
-- an answer may take; a fixed server discards the request silently.
local HEARTBEAT_CLAIM = 0x4000
local MAX_ANSWER = 70000   -- bytes read after the request, at most
local MAX_FLIGHT = 262144  -- bytes of a first flight, at most
local SHORT_WAIT = 3       -- seconds, at most, for an answer that may never come

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
  local r, rest, bytes, rerr = probe.read_flight(conn, ctx.timeout, MAX_FLIGHT)
  if r.outcome == "too_large" then
    conn:close()
    ctx.slots:release()
    return nil, "the first flight grew past 256 KiB"
  end
  if not rerr and r.done then return conn, r, rest end
  if r.server_hello or r.alert then return conn, r, "" end
  conn:close()
  ctx.slots:release()
  if rerr == "timeout" then return nil, "no complete first flight within the timeout", "timeout" end
  return nil, ("the server closed the connection after %d bytes, without an alert"):format(bytes), "closed"
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

local suite_ids = probe.suite_ids

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

-- OpenSSL's own client beside the scheduler, for the checks that need a
-- whole handshake (a session to resume, a renegotiation), as testssl.sh
-- does: `openssl s_client` (STARTTLS xmpp or xmpp-server where the
-- endpoint has it) in a session of its own, its output nowhere but a
-- file the scheduler polls, killed at the end; it stops by itself too.
local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = io.open(path, "wb")
  if not f then return false end
  f:write(s)
  f:close()
  return true
end

local S_CLIENT_VERSION = { tlsv1_3 = "-tls1_3", tlsv1_2 = "-tls1_2", tlsv1_1 = "-tls1_1", tlsv1 = "-tls1" }
local SESSION_END = "-----END SSL SESSION PARAMETERS-----"

-- Run s_client with args (a string) against the target; input is what it
-- reads from stdin first. opts: args, input, wait (whole seconds),
-- session_in (a session's PEM to resume), early_data (bytes to send as
-- 0-RTT data), session_out (keep the session it gets), stop(text,
-- session): true ends the run early. Returns { text, session } or nil,
-- why.
local function s_client(ctx, opts)
  local t = ctx.target
  if not t or not t.address then return nil, "no address to connect to" end
  local host = t.address:find(":", 1, true) and ("[" .. t.address .. "]") or t.address
  local starttls = t.starttls and ("-starttls %s -xmpphost %s"):format(t.starttls == "s2s" and "xmpp-server" or "xmpp",
    sh_quote(t.domain)) or ""
  local out, files = os.tmpname(), {}
  local args = opts.args
  if opts.session_out then
    files.sess_out = os.tmpname()
    args = args .. " -sess_out " .. sh_quote(files.sess_out)
  end
  if opts.session_in then
    files.sess_in = os.tmpname()
    write_file(files.sess_in, opts.session_in)
    args = args .. " -sess_in " .. sh_quote(files.sess_in)
  end
  if opts.early_data then
    files.early = os.tmpname()
    write_file(files.early, opts.early_data)
    args = args .. " -early_data " .. sh_quote(files.early)
  end
  local wait = opts.wait
  local inner = ("(printf %s; sleep %d) | timeout %d openssl s_client -connect %s %s -servername %s %s > %s 2>&1")
    :format(sh_quote(opts.input or ""), wait, wait, sh_quote(host .. ":" .. t.port), starttls, sh_quote(t.domain),
      args, sh_quote(out))
  -- the descriptors the process holds (inside Prosody: its listeners and
  -- clients) are closed first, so that nothing outlives the process with them
  inner = 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; ' .. inner
  local cmd = ("setsid bash -c %s > /dev/null 2>&1 < /dev/null & echo $!"):format(sh_quote(inner))
  local function clean()
    os.remove(out)
    for _, f in pairs(files) do os.remove(f) end
  end
  ctx.connections = ctx.connections + 1
  local pipe = io.popen(cmd)
  local pid = pipe and tonumber(pipe:read("*l"))
  if pipe then pipe:close() end
  if not pid then
    clean()
    return nil, "cannot run openssl s_client"
  end
  local deadline = net.now() + wait + 1
  local text, session = "", nil
  while net.now() < deadline do
    ctx.sched:sleep(0.02)
    text = read_all(out) or ""
    if files.sess_out then
      local s = read_all(files.sess_out)
      session = s and s:find(SESSION_END, 1, true) and s or nil
    end
    if opts.stop(text, session) or text:find("\nDONE", 1, true) then break end
  end
  os.execute(("kill -TERM -%d 2>/dev/null"):format(pid))
  if files.sess_out and not session then
    local s = read_all(files.sess_out)
    session = s and s:find(SESSION_END, 1, true) and s or nil
  end
  clean()
  return { text = text, session = session }
end

local function s_client_failed(text)
  if text:find("errno=", 1, true) or text:find(":error:", 1, true) then
    return "openssl s_client could not connect: " .. (text:match("[^\n]*:error:[^\n]*") or "no handshake"):sub(1, 160)
  end
  if text == "" or not text:find("CONNECTED", 1, true) then
    return "openssl s_client did not connect (is the openssl command there?)"
  end
end

-- whole seconds for sleep and timeout (a scan's timeout may be 0.5)
local function s_client_wait(ctx) return math.ceil(math.min(ctx.timeout, SHORT_WAIT)) + 2 end

-- A handshake of version p that keeps its session: the session (parsed,
-- with its PEM as .pem) or nil, why. A TLS 1.3 server sends its tickets
-- after the handshake: they are awaited up to a second after it.
local function fetch_session(ctx, p)
  if not ctx.slots:acquire(ctx.slot_wait) then return nil, "no free connection slot" end
  local done_at
  local run, err = s_client(ctx, { args = S_CLIENT_VERSION[p] .. " -cipher 'ALL:@SECLEVEL=0'", wait = s_client_wait(ctx),
    session_out = true, stop = function(text, session)
      if session then return true end
      if not done_at and text:find("Verify return code", 1, true) then done_at = net.now() end
      return done_at ~= nil and net.now() - done_at > 1
    end })
  ctx.slots:release()
  if not run then return nil, err end
  if not run.session then
    return nil, s_client_failed(run.text) or "no session was kept", run.text
  end
  local sess, why = wire.parse_session(run.session)
  if not sess then return nil, "the session openssl s_client kept: " .. why end
  sess.pem = run.session
  return sess
end

-- Client-initiated renegotiation (a denial of service risk: each
-- renegotiation costs the server a handshake): s_client is asked to
-- renegotiate ("R") and its output read until it shows a second
-- handshake or the refusal.
local function client_renegotiation(ctx)
  local p = best_below_13(ctx.probe)
  if not p then
    return verdict("client_renegotiation", "not_applicable", "no TLS 1.2 or older: TLS 1.3 has no renegotiation")
  end
  local wait = s_client_wait(ctx)
  local v
  local run, err = s_client(ctx, { input = "R\n", wait = wait,
    args = S_CLIENT_VERSION[p] .. " -legacy_renegotiation -cipher 'ALL:@SECLEVEL=0'",
    stop = function(text)
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
        v = verdict("client_renegotiation", "unknown", s_client_failed(text))
      end
      return v ~= nil
    end })
  if not run then return verdict("client_renegotiation", "unknown", err) end
  if v then return v end
  local text = run.text
  if text:find("RENEGOTIATING", 1, true) then
    return verdict("client_renegotiation", "not_vulnerable", ("%s: the server ended the connection on a renegotiation")
      :format(protocols.label[p]))
  end
  local failed = s_client_failed(text)
  if failed then return verdict("client_renegotiation", "unknown", failed) end
  return verdict("client_renegotiation", "unknown", "no answer to a renegotiation within " .. wait .. " s")
end

-- Ticketbleed (F5's TLS stack): a client that resumes by ticket and sends
-- a session id shorter than 32 bytes gets back, where the ticket is
-- accepted, a 32-byte session id: its own bytes and then the server's
-- memory. A session with a ticket comes from openssl s_client; the hello
-- that resumes it, with a 16-byte session id, is tlsharden's own. The
-- bytes past the 16 sent are compared, never kept.
local TICKETBLEED_ID = 16

local function ticketbleed(ctx)
  local p, st = best_below_13(ctx.probe)
  if not p then
    return verdict("ticketbleed", "not_applicable", "no TLS 1.2 or older: no session ticket of RFC 5077")
  end
  local res = ctx.probe.resumption
  if res and res.session_ticket == false then
    return verdict("ticketbleed", "not_applicable", "the server issues no session tickets (no session_ticket"
      .. " extension in its ServerHello)")
  end
  -- the full handshake's session where it has a ticket below TLS 1.3
  local sess, why = ctx.session, nil
  if not (sess and sess.ticket and sess.protocol ~= "tlsv1_3") then
    sess, why = fetch_session(ctx, p)
    if not sess then return verdict("ticketbleed", "unknown", "no session to resume: " .. why) end
  end
  if not sess.ticket then
    return verdict("ticketbleed", "not_applicable", "the server issued no session ticket")
  end
  local ids = suite_ids(st)
  local have = false
  for _, id in ipairs(ids) do have = have or id == sess.suite end
  if not have and sess.suite then table.insert(ids, 1, sess.suite) end
  local sid = random_bytes(TICKETBLEED_ID)
  local conn, flight = hello_and_flight(ctx, { version = sess.protocol or p, suites = ids,
    server_name = ctx.server_name, alpn = ctx.alpn, session_id = sid, session_ticket = sess.ticket })
  if not conn then return verdict("ticketbleed", "unknown", flight) end
  done(ctx, conn)
  local sh = flight.server_hello
  if not sh then
    return verdict("ticketbleed", "unknown", "no ServerHello to a hello that resumes by ticket ("
      .. tostring(flight.outcome) .. ")")
  end
  local echo = sh.session_id or ""
  if #echo > TICKETBLEED_ID and echo:sub(1, TICKETBLEED_ID) == sid then
    return verdict("ticketbleed", "vulnerable", ("a resumption by ticket with a %d-byte session id was answered"
      .. " with a %d-byte one: its own %d bytes and %d bytes of the server's memory (not kept)")
      :format(TICKETBLEED_ID, #echo, TICKETBLEED_ID, #echo - TICKETBLEED_ID))
  end
  if echo == sid then
    return verdict("ticketbleed", "not_vulnerable", ("a resumption by ticket echoes the %d-byte session id as it"
      .. " was sent"):format(TICKETBLEED_ID))
  end
  return verdict("ticketbleed", "unknown", "the ticket was not accepted (a full handshake followed): the echo of"
    .. " the session id could not be seen")
end

-- TLS 1.3 early data (0-RTT): data a client sends in its first flight,
-- which an attacker can replay. A session from openssl s_client says how
-- much early data its ticket allows; where it allows any, the session is
-- resumed with a whitespace (harmless to XMPP) as early data, and s_client
-- says whether the server accepted it.
local function early_data(ctx)
  if not accepted(ctx.probe, "tlsv1_3") then
    return verdict("early_data", "not_applicable", "no TLS 1.3")
  end
  -- the full handshake's session where it is a TLS 1.3 one with its
  -- ticket, else one of openssl s_client's
  local sess, why, text = ctx.session, nil, nil
  if not (sess and sess.protocol == "tlsv1_3" and sess.ticket) then
    sess, why, text = fetch_session(ctx, "tlsv1_3")
  end
  if not sess then
    if text and text:find("Verify return code", 1, true) and not s_client_failed(text) then
      return verdict("early_data", "not_vulnerable", "no TLS 1.3 session ticket came within a second of the"
        .. " handshake: nothing to resume with 0-RTT")
    end
    return verdict("early_data", "unknown", "no session to resume: " .. why)
  end
  if (sess.max_early_data or 0) == 0 then
    return verdict("early_data", "not_vulnerable", "the server's TLS 1.3 tickets allow no early data (max_early_data 0)")
  end
  if not ctx.slots:acquire(ctx.slot_wait) then return verdict("early_data", "unknown", "no free connection slot") end
  local alpn = sess.alpn and " -alpn " .. sh_quote(sess.alpn) or ""
  local run, err = s_client(ctx, { args = "-tls1_3" .. alpn, wait = s_client_wait(ctx), session_in = sess.pem,
    early_data = " ", stop = function(text)
      return text:find("Early data was %a+") ~= nil
    end })
  ctx.slots:release()
  if not run then return verdict("early_data", "unknown", err) end
  local said = run.text:match("Early data was (%a+)")
  if said == "accepted" then
    return verdict("early_data", "vulnerable", ("0-RTT data on a resumed TLS 1.3 session was accepted (tickets allow"
      .. " %d bytes): it can be replayed"):format(sess.max_early_data))
  elseif said == "rejected" then
    return verdict("early_data", "not_vulnerable", ("the tickets allow %d bytes of early data, but 0-RTT data was"
      .. " rejected"):format(sess.max_early_data))
  end
  return verdict("early_data", "unknown", s_client_failed(run.text) or ("the tickets allow %d bytes of early data;"
    .. " whether 0-RTT data is accepted was not said (%s)"):format(sess.max_early_data, said or "no answer"))
end

--- Run every check of one endpoint inside sched and call on_done({
-- checks, connections }) when all are done. opts: open (as the probe's),
-- server_name, alpn, timeout, per_server, probe (the probe's result),
-- starttls (the endpoint starts TLS inside XMPP), connect (a plain
-- connection to the endpoint, for the STARTTLS check), stream (its
-- XMPP stream options), target ({ address, port, starttls ("c2s",
-- "s2s" or nil), domain }: for openssl s_client) and session (the PEM of
-- the full handshake's session, tlsharden.context.session, if any: a
-- ticket to resume without another handshake).
function M.spawn(sched, opts, on_done)
  local ctx = {
    sched = sched, open = opts.open, server_name = opts.server_name, alpn = opts.alpn,
    connect = opts.connect, stream = opts.stream, xmpp = require "tlsharden.scan.xmpp", target = opts.target,
    sock = require "tlsharden.scan.sock",
    timeout = opts.timeout or 5, probe = opts.probe, connections = 0,
    slots = sched:semaphore(opts.per_server or 4),
  }
  ctx.slot_wait = 4 * ctx.timeout
  if opts.session then
    ctx.session = wire.parse_session(opts.session)
    if ctx.session then ctx.session.pem = opts.session end
  end
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
    -- the checks with openssl s_client come after the others, so that a
    -- server that takes one connection at a time does not keep it waiting
    -- past its own timeout; the two that resume a session run together
    if #(opts.probe.versions or {}) > 0 then
      g = sched:group()
      g:spawn(function() checks.ticketbleed = ticketbleed(ctx) end)
      g:spawn(function() checks.early_data = early_data(ctx) end)
      g:wait()
    end
    -- alone, at the end, for the same reason
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
          checks[c.name] = verdict(c.name, "unknown", "not checked")
        end
      end
    end
    on_done({ checks = checks, connections = ctx.connections })
  end)
end

return M
