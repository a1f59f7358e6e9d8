-- Memory stays flat: every public function is called many times in a loop
-- (100,000 by default) and both the Lua heap (collectgarbage "count") and
-- the process's resident set (RSS) must end where they started, so that a
-- leaked OpenSSL object, a leaked reference or a growing cache shows.
--
-- Tagged #memory: scripts/run-tests.sh runs it as a suite of its own against
-- the release build (RSS figures mean nothing under ASan or valgrind).
-- TLSHARDEN_MEMORY_ITERATIONS sets the count (default 100,000);
-- TLSHARDEN_MEMORY_SLOW sets the count for the calls that build contexts,
-- handshake or audit, which cost a millisecond or more each (default 5,000;
-- `make soak` runs them 100,000 times too). The counts are in the names.
local wire = require "tlsharden.wire"
local context = require "tlsharden.context"
local ssl = require "ssl"
local tlsharden = require "tlsharden"
local pki = require "spec.helpers.pki"
local struct = require "spec.helpers.struct"

local ITERATIONS = tonumber(os.getenv("TLSHARDEN_MEMORY_ITERATIONS")) or 100000
local SLOW = tonumber(os.getenv("TLSHARDEN_MEMORY_SLOW")) or 5000
-- A leak grows with the number of calls; the allocator and OpenSSL's own
-- caches may grow once. So the loop runs in two halves: the second half may
-- grow the Lua heap by HEAP_SLACK_KB and the RSS by RSS_SLACK_KB at most
-- (16 bytes leaked per call would be 800 KiB over 50,000 calls), and the
-- whole loop by twice that.
local HEAP_SLACK_KB = 32
local RSS_SLACK_KB = 512

local function rss_kb()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * 4
end

local function settle()
  collectgarbage("collect")
  collectgarbage("collect")
end

-- f, n times, with a full collection every BATCH calls: the garbage between
-- two collections (and the OpenSSL objects it holds until then) is then the
-- same in every phase, whatever the collector's pacing, which differs from
-- one Lua version to the next and with the size of the heap; a leak still
-- accumulates across the collections.
local BATCH = 1000
local function run(f, n)
  for i = 1, n do
    f()
    if i % BATCH == 0 then collectgarbage("collect") end
  end
end

-- Warm up (caches fill, the allocator reaches its working set), then run
-- the counted loop in two halves and compare.
local function flat(name, n, f)
  local warm = math.max(1000, math.floor(n / 10))
  local half = math.max(1, math.floor(n / 2))
  run(f, warm)
  settle()
  local heap0, rss0 = collectgarbage("count"), rss_kb()
  run(f, half)
  settle()
  local heap1, rss1 = collectgarbage("count"), rss_kb()
  run(f, n - half)
  settle()
  local heap2, rss2 = collectgarbage("count"), rss_kb()
  io.stderr:write(("memory: %-28s %7d calls  heap %+7.1f %+7.1f KiB  rss %+5d %+5d KiB\n")
    :format(name, n, heap1 - heap0, heap2 - heap1, rss1 - rss0, rss2 - rss1))
  assert.is_true(heap2 - heap1 < HEAP_SLACK_KB and heap2 - heap0 < 2 * HEAP_SLACK_KB,
    ("%s: the Lua heap grew by %.1f KiB, then %.1f KiB over %d calls"):format(name, heap1 - heap0, heap2 - heap1, n))
  assert.is_true(rss2 - rss1 < RSS_SLACK_KB and rss2 - rss0 < 2 * RSS_SLACK_KB,
    ("%s: the RSS grew by %d KiB, then %d KiB over %d calls"):format(name, rss1 - rss0, rss2 - rss1, n))
end

describe("memory #memory", function()
  local dir, leaf, ctx, bare_ctx, client_ctx, pem, cfg_text, dh_ctx
  local xmpp = require "tlsharden.scan.xmpp"
  local der, tlsa_records
  -- an SRV answer with a compressed target and an OPT record
  local dns_answer = "\0\7\129\128\0\1\0\1\0\0\0\1\12_xmpp-client\4_tcp\7example\3org\0\0\33\0\1"
    .. "\192\12\0\33\0\1\0\0\14\16\0\13\0\5\0\10\20\102\4xmpp\192\30"
    .. "\0\0\41\4\208\0\0\128\0\0\0"
  local stream_bytes = "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
    .. " xmlns:stream='http://etherx.jabber.org/streams' id='m' from='example.org' version='1.0'>"
    .. "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    .. "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
    .. "</stream:features></stream:stream>"

  setup(function()
    dir = pki.tmpdir()
    leaf = pki.simple(dir, "example.com", "ec256")
    ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = leaf.key, certificate = leaf.cert })
    client_ctx = assert(ssl.newcontext { mode = "client", protocol = "any", verify = "none" })
    bare_ctx = assert(ssl.newcontext { mode = "server", protocol = "any", certificate = leaf.cert })
    -- LuaSec's dhparam callback: every probe handshake asks for parameters
    local rsa = pki.simple(dir, "dh.example.com", "rsa2048")
    local dh_pem = select(2, require("spec.helpers.sh").exec(
      "openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 2>/dev/null"))
    dh_ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = rsa.key, certificate = rsa.cert,
      ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", dhparam = function() return dh_pem end })
    pem = pki.read(leaf.cert)
    der = require("tlsharden.scan.dane").der_from_pem(pem)
    local hex = der:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    tlsa_records = { { usage = 3, selector = 0, matching_type = 0, data = hex },
      { usage = 3, selector = 1, matching_type = 1, data = ("00"):rep(32) },
      { usage = 2, selector = 1, matching_type = 2, data = ("00"):rep(64) } }
    cfg_text = ('VirtualHost "example.com"\nssl = { key = %q, certificate = %q, protocol = "tlsv1+" }\n')
      :format(leaf.key, leaf.cert)
    pki.write(dir .. "/fix.cfg.lua", cfg_text)
  end)

  teardown(function()
    pki.cleanup(dir)
  end)

  -- a TLS 1.2 first flight: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone
  local function hs(t, body) return struct.pack(">B I3", t, #body) .. body end
  local hello = wire.client_hello { server_name = "example.org", alpn = { "xmpp-client" }, grease = true }
  local flight = struct.pack(">B I2 s2", 22, 0x0303, hs(2, "\3\3" .. ("r"):rep(32) .. "\0\192\47\0"
    .. struct.pack(">s2", struct.pack(">I2 s2", 0xFF01, "\0"))) .. hs(11, struct.pack(">s3", struct.pack(">s3",
    ("c"):rep(600)))) .. hs(12, struct.pack(">B I2 s1 I2 s2", 3, 29, ("k"):rep(32), 0x0804, ("s"):rep(64)))
    .. hs(14, ""))

  local layers = {
    { protocol = "tlsv1_2+", ciphers = "HIGH:!aNULL", options = { "no_ticket" } },
    { name = "host", options = { no_ticket = false, no_compression = true }, depth = 5 },
    { name = "service", protocol = "tlsv1+", ciphers = { "ECDHE+AESGCM", "AES128-SHA" } },
  }

  local cheap = {
    { "protocol", function() tlsharden.protocol("tlsv1_2+") end },
    { "protocol (refused)", function() pcall(tlsharden.protocol, "sslv3") end },
    { "versions", function() tlsharden.versions(ctx) end },
    { "option_names", function() context.option_names() end },
    { "ciphers", function() tlsharden.ciphers("HIGH:!aNULL", { seclevel = 1 }) end },
    { "ciphers (refused)", function() pcall(tlsharden.ciphers, "NOTHING") end },
    { "forward_secrecy (string)", function() tlsharden.forward_secrecy("ECDHE+AESGCM:AES128-SHA") end },
    { "merge", function() tlsharden.merge({ layers[1], layers[2], layers[3] }) end },
    { "merge (order prosody)", function() tlsharden.merge({ layers[3], layers[2], layers[1] }, { order = "prosody" }) end },
    { "merge (policy warn)", function()
      tlsharden.merge({ tlsharden.profile("hardened"), layers[2], layers[3] }, { policy = "warn" })
    end },
    { "merge (strict, refused)", function()
      pcall(tlsharden.merge, { tlsharden.profile("hardened"), layers[3] }, { policy = "strict" })
    end },
    { "harden", function() tlsharden.harden(ctx) end },
    { "harden (report later)", function()
      tlsharden.harden(ctx, nil, { report = false })
      context.harden_report(ctx)
    end },
    { "harden (refused)", function() pcall(tlsharden.harden, ctx, { groups = "P-999" }) end },
    { "inspect", function() tlsharden.inspect(ctx) end },
    { "key_kind", function() context.key_kind(ctx) end },
    { "chain", function() tlsharden.chain(pem, { cafile = leaf.ca, host = "example.com" }) end },
    { "chain (refused)", function() pcall(tlsharden.chain, "not a certificate") end },
    { "grade", function() tlsharden.grade { protocols = { "tlsv1_2" } } end },
    { "profile", function() tlsharden.profile("intermediate") end },
    { "client_hello", function() wire.client_hello() end },
    { "client_hello (refused)", function() pcall(wire.client_hello, { suites = { "x" } }) end },
    { "parse_server_flight", function() wire.parse_server_flight(flight) end },
    { "parse_client_hello", function() assert(wire.parse_client_hello(hello).outcome == "client_hello") end },
    { "parse_client_hello (cut short)", function() wire.parse_client_hello(hello:sub(1, 200)) end },
    { "replay_hello", function()
      assert(wire.replay_hello(hello, { server_name = "chat.example.net", key_share = "secp256r1", cookie = "c" }))
    end },
    { "replay_hello (cut short)", function() assert(not wire.replay_hello(hello:sub(1, 200))) end },
    { "answer_hello (a context's answer in memory)", function()
      assert(#context.answer_hello(ctx, hello) > 0)
    end },
    { "answer_hello (refused)", function() pcall(context.answer_hello, client_ctx, hello) end },
    { "parse_server_flight (garbage)", function() wire.parse_server_flight("HTTP/1.1 400\r\n", { eof = true }) end },
    { "client_hello (heartbeat, GREASE)", function() wire.client_hello { heartbeat = true, grease = true } end },
    { "record + heartbeat_request + parse_records", function()
      assert(#wire.parse_records(wire.record("heartbeat", "tlsv1_2", wire.heartbeat_request(16384))).records == 1)
    end },
    { "parse_records (refused)", function() pcall(wire.parse_records, 42) end },
    { "robot_key_exchange (not a certificate)", function() assert(not wire.robot_key_exchange("x", "valid")) end },
    { "parse_session (not a session)", function() assert(not wire.parse_session("x")) end },
    { "client_hello (resuming by ticket)", function()
      wire.client_hello { version = "tlsv1_2", session_id = ("i"):rep(16), session_ticket = ("t"):rep(180) }
    end },
    { "suite", function() wire.suite("ECDHE-RSA-AES128-GCM-SHA256") end },
    { "groups", function() wire.groups() end },
    { "layer", function() tlsharden.layer("x", layers[1]) end },
    { "dns_query", function() wire.dns_query("_xmpp-client._tcp.example.org", "SRV", 7, { dnssec = true }) end },
    { "dns_parse", function() assert(wire.dns_parse(dns_answer)) end },
    { "dns_parse (malformed)", function() assert(not wire.dns_parse(dns_answer:sub(1, 40))) end },
    { "dns_rdata", function() assert(wire.dns_rdata("SRV", "\0\0\0\5\20\102\4host\4xmpp\4test\0")) end },
    { "dns_rdata (malformed)", function() assert(not wire.dns_rdata("A", "\1\2\3")) end },
    { "dane_match", function() assert(#wire.dane_match(tlsa_records, { der }).matches == 1) end },
    { "an error object (raised, caught, renamed)", function()
      local _, e = pcall(tlsharden.protocol, 42)
      require("tlsharden.errors").rename(e, "new_context")
    end },
    { "a metamethod's error behind the guard", function()
      pcall(tlsharden.ciphers, "HIGH", setmetatable({}, { __index = function() error("x") end }))
    end },
    { "xmpp parser", function()
      local p = xmpp.parser()
      assert(#p:feed(stream_bytes) == 3)
      p:close()
    end },
  }

  local closed_port
  do
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    closed_port = tonumber(port)
  end
  local slow = {
    { "suites", function() wire.suites() end },
    { "forward_secrecy (context)", function() tlsharden.forward_secrecy(ctx) end },
    { "forward_secrecy (context with dhparam)", function()
      local _, d = tlsharden.forward_secrecy(dh_ctx)
      assert(d.dhe_usable == true)
    end },
    { "inspect (probing: DH, ECDHE, the versions served)", function()
      assert(tlsharden.inspect(ctx, { probe = true }).served)
    end },
    { "new_context", function() tlsharden.new_context { key = leaf.key, certificate = leaf.cert } end },
    { "load_key", function() assert(context.load_key(bare_ctx, leaf.key)) end },
    { "audit", function() tlsharden.audit(cfg_text, { text = true, cafile = leaf.ca }) end },
    { "fix", function() tlsharden.fix(dir .. "/fix.cfg.lua", { cafile = leaf.ca }) end },
  }

  -- The process's own one-time growth (the allocator's arenas, Lua's
  -- string table, OpenSSL's lazily made tables) happens here, before the
  -- first function is measured, rather than inside its loop.
  it("warms the process up", function()
    for _ = 1, 5 do
      for _, c in ipairs(cheap) do
        for _ = 1, 2000 do c[2]() end
      end
      settle()
    end
  end)

  for _, c in ipairs(cheap) do
    it(("stays flat over %d calls of %s"):format(ITERATIONS, c[1]), function()
      flat(c[1], ITERATIONS, c[2])
    end)
  end

  for _, c in ipairs(slow) do
    it(("stays flat over %d calls of %s"):format(SLOW, c[1]), function()
      flat(c[1], SLOW, c[2])
    end)
  end

  it(("stays flat over %d scans of a port nothing listens on"):format(SLOW), function()
    -- options, target, scheduler, socket and result; the allocator's
    -- working set for these takes longer to reach than flat()'s warm-up
    local function scan()
      assert(tlsharden.scan("127.0.0.1:" .. closed_port, { xmpphost = "localhost", timeout = 1 })
        .endpoints[1].status == "refused")
    end
    for _ = 1, 5000 do scan() end
    flat("scan (refused)", SLOW, scan)
  end)

  it(("stays flat over %d surveys of a refused port, each reported"):format(math.floor(SLOW / 10)), function()
    -- the survey's scheduler, lookups, results file and the report of it
    local survey = require "tlsharden.survey"
    local results = require "tlsharden.survey.results"
    local report = require "tlsharden.report"
    local dir = pki.tmpdir()
    local targets = survey.parse_list(("a.test:%d\nb.test:%d\n"):format(closed_port, closed_port))
    local function once()
      local path = dir .. "/s.jsonl"
      os.remove(path)
      local f = results.open_append(path)
      survey.run(targets, { kind = "c2s", write = results.writer(f), scan_options = { resolver = "127.0.0.1:1" },
        discover = function(t, kind, c)
          return { endpoints = { { target = t.target, domain = t.host, kind = kind, tls = "starttls", host = t.host,
            address = "127.0.0.1", family = "inet", port = t.port } } }
        end })
      f:close()
      assert(report.count(report.build(path).counts, "status", "refused") == 2)
    end
    for _ = 1, 500 do once() end
    flat("survey + report (refused)", math.floor(SLOW / 10), once)
    pki.cleanup(dir)
  end)

  it("stays flat over handshakes judged by forward_secrecy (connection), their sessions read", function()
    local tls = require "spec.helpers.tls"
    tlsharden.harden(ctx)
    flat("forward_secrecy (connection)", math.max(1, math.floor(SLOW / 100)), function()
      local r = tls.handshake(ctx, client_ctx)
      assert(r.ok, r.server_err or r.client_err)
      tlsharden.forward_secrecy(r.server)
      assert(wire.parse_session(context.session(r.client)).protocol)
      r.close()
    end)
  end)
end)
