-- The XMPP stream layer against Debian's Prosody on loopback (STARTTLS,
-- SASL before and after TLS, dialback and EXTERNAL for s2s, stream
-- errors, a direct TLS port) and against peers that are no XMPP server: a
-- silent listener, one that hangs up, and sockets that answer with HTTP,
-- garbage, TLS records or hostile XML.
local socket = require "socket"
local ssl = require "ssl"
local xmpp = require "tlsharden.scan.xmpp"
local problems = require "tlsharden.problems"
local prosody = require "spec.helpers.prosody"
local pki = require "spec.helpers.pki"

local function connect(port)
  local s = assert(socket.tcp())
  s:settimeout(5)
  assert(s:connect("127.0.0.1", port))
  return s
end

local function has(list, v)
  for _, x in ipairs(list) do if x == v then return true end end
  return false
end

-- Start TLS on a socket after <proceed/>; client cert optional.
local function start_tls(sock, host, cert)
  local ctx = assert(ssl.newcontext { mode = "client", protocol = "any", verify = "none",
    certificate = cert and cert.cert, key = cert and cert.key })
  local conn = assert(ssl.wrap(sock, ctx))
  conn:sni(host)
  conn:settimeout(5)
  assert(conn:dohandshake())
  return conn
end

-- A peer on loopback that has already sent bytes when the client reads.
local function peer_sending(bytes, close)
  local listener = assert(socket.bind("127.0.0.1", 0))
  local _, port = listener:getsockname()
  local client = connect(port)
  listener:settimeout(5)
  local server = assert(listener:accept())
  listener:close()
  if bytes then assert(server:send(bytes)) end
  if close then server:close() end
  return client, server
end

describe("xmpp stream headers", function()
  it("open c2s and s2s streams", function()
    assert.equals("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
      .. " to='example.org' version='1.0'>", xmpp.stream_header { to = "example.org" })
    assert.equals("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback'"
      .. " xmlns:stream='http://etherx.jabber.org/streams' to='example.org' from='a&amp;b.test' xml:lang='en'"
      .. " version='1.0'>", xmpp.stream_header { kind = "s2s", to = "example.org", from = "a&b.test", lang = "en" })
  end)

  it("refuse bad options, naming them", function()
    local cases = {
      { {}, "bad option 'to': expected a domain name, got nil" },
      { { to = "a b" }, "bad option 'to': expected a domain name, got 'a b'" },
      { { to = "x", kind = "c2c" }, "bad option 'kind': expected 'c2s' or 's2s', got 'c2c'" },
      { { to = "x", from = 5 }, "bad option 'from'" },
      { { to = "x", version = "one" }, "bad option 'version'" },
      { { to = "x", bogus = 1 }, "bad argument #1 'opts': unknown option 'bogus' (known: from, kind, lang, to, version)" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(xmpp.stream_header, c[1])
      assert.is_false(ok)
      assert.matches("tlsharden.scan.xmpp.stream_header: " .. c[2], err, 1, true)
    end
    local ok, err = pcall(xmpp.negotiate_starttls, nil, { to = "x" })
    assert.is_false(ok)
    assert.matches("tlsharden.scan.xmpp.negotiate_starttls: bad argument #1 'sock'", err, 1, true)
    ok, err = pcall(xmpp.features, {}, { to = "x", timeout = -1 })
    assert.is_false(ok)
    assert.matches("tlsharden.scan.xmpp.features: bad option 'timeout'", err, 1, true)
  end)
end)

describe("xmpp parser", function()
  local STREAM = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    .. " id='s1' from='example.org' version='1.0' xml:lang='en'><stream:features>"
    .. "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    .. "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism>"
    .. "<mechanism> PLAIN </mechanism></mechanisms>"
    .. "<compression xmlns='http://jabber.org/features/compress'><method>zlib</method></compression>"
    .. "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>"
    .. "</stream:features> <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    .. "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    .. "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>replaced</text></stream:error></stream:stream>"

  local function events_of(chunks)
    local p = xmpp.parser()
    local out = {}
    for _, c in ipairs(chunks) do
      for _, e in ipairs(p:feed(c)) do
        e.node = nil
        out[#out + 1] = e
      end
    end
    return out
  end

  it("reads the header, features, proceed, a stream error and the close, in one piece or byte by byte", function()
    local whole = events_of { STREAM }
    local bytes = {}
    for i = 1, #STREAM do bytes[i] = STREAM:sub(i, i) end
    assert.same(whole, events_of(bytes))
    assert.same({ "header", "features", "proceed", "stream_error", "close" },
      { whole[1].event, whole[2].event, whole[3].event, whole[4].event, whole[5].event })
    assert.same({ id = "s1", from = "example.org", version = "1.0", lang = "en", xmlns = "jabber:client" }, whole[1].attrs)
    local f = whole[2].features
    assert.is_true(f.starttls and f.starttls_required)
    assert.same({ "SCRAM-SHA-1", "PLAIN" }, f.mechanisms)
    assert.is_false(f.external)
    assert.same({ "zlib" }, f.compression)
    assert.same({ "urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl",
      "http://jabber.org/features/compress", "http://jabber.org/protocol/caps" }, f.namespaces)
    assert.same({ name = "c", ns = "http://jabber.org/protocol/caps", required = false }, f.elements[4])
    assert.same({ "conflict", "replaced" }, { whole[4].condition, whole[4].text })
  end)

  it("turns hostile or broken input into a failure (a problem record) and stops", function()
    local head = STREAM:sub(1, STREAM:find("<stream:features>", 1, true) - 1)
    local cases = {
      { head .. ("<a>"):rep(40), "TOO_DEEP" },
      { head .. "<stream:features>" .. ("<x/>"):rep(2000), "TOO_LARGE" },
      { head .. "<stream:features><x>" .. ("y"):rep(70000), "TOO_LARGE" },
      { "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='" .. ("z"):rep(70000), "TOO_LARGE" },
      { "<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]><lol>&b;</lol>", "RESTRICTED_XML" },
      { head .. "<!-- hi -->", "RESTRICTED_XML" },
      { head .. "<?pi x?>", "RESTRICTED_XML" },
      { "<html><body>hi</body></html>", "NOT_XMPP" },
      { head .. "<a></b>", "NOT_XML" },
      { "\0\255garbage", "NOT_XML" },
      { "HTTP/1.1 400 Bad Request\r\n\r\n", "HTTP" },
      { "SSH-2.0-OpenSSH_9.2\r\n", "SSH" },
      { "220 mail.example.org ESMTP\r\n", "OTHER_PROTOCOL" },
      { "\22\3\1\0\5hello", "TLS" },
    }
    for _, c in ipairs(cases) do
      local p = xmpp.parser()
      local last
      for i = 1, #c[1], 1000 do
        for _, e in ipairs(p:feed(c[1]:sub(i, i + 999))) do last = e end
      end
      assert.equals("failure", last and last.event, c[2])
      assert.same({ true }, { problems.check(last.problem) })
      assert.equals("error", last.problem.severity)
      assert.equals(c[2], last.problem.code, last.problem.message)
      assert.is_true(p.dead)
      assert.same({}, p:feed("<more/>"))
    end
    -- "HTT" alone does not decide yet
    local p = xmpp.parser()
    assert.same({}, p:feed("HTT"))
    assert.equals("HTTP", p:feed("P/1.0 200 OK\r\n")[1].problem.code)
  end)
end)

describe("xmpp against Prosody", function()
  if not prosody.installed() then
    pending("prosody is not installed")
    return
  end
  local server
  setup(function()
    server = prosody.start {
      hosts = { "localhost", "open.localhost" },
      host_settings = { ["open.localhost"] = { c2s_require_encryption = false, allow_unencrypted_plain_auth = true } },
      -- s2s peers' certificates are checked against the test CA (relative to the config)
      global = { s2s_ssl = { cafile = "ca.crt" } },
    }
  end)
  teardown(function()
    if server then server.stop() end
  end)

  it("c2s: STARTTLS required and no SASL before TLS, SASL after", function()
    local s = connect(server.ports.c2s)
    local r = xmpp.negotiate_starttls(s, { to = "localhost", timeout = 5 })
    assert.is_nil(r.failure, r.failure and r.failure.message)
    assert.same({}, r.problems)
    assert.equals("localhost", r.header.from)
    assert.equals("1.0", r.header.version)
    assert.equals("jabber:client", r.header.xmlns)
    assert.truthy(r.header.id and #r.header.id > 0)
    assert.is_true(r.starttls and r.starttls_required and r.proceed)
    assert.same({}, r.features.mechanisms)
    local conn = start_tls(s, "localhost")
    local after = xmpp.features(conn, { to = "localhost", timeout = 5 })
    conn:close()
    assert.is_nil(after.failure)
    assert.is_false(after.features.starttls)
    assert.is_true(has(after.features.mechanisms, "PLAIN"))
    assert.is_true(has(after.features.mechanisms, "SCRAM-SHA-1"))
    assert.is_false(after.features.external)
    assert.are_not.equal(r.header.id, after.header.id)
  end)

  it("c2s: STARTTLS optional and SASL offered before TLS when the host allows it", function()
    local s = connect(server.ports.c2s)
    local r = xmpp.negotiate_starttls(s, { to = "open.localhost", timeout = 5 })
    s:close()
    assert.is_true(r.starttls)
    assert.is_false(r.starttls_required)
    assert.is_true(has(r.features.mechanisms, "PLAIN"))
    assert.is_true(r.proceed)
  end)

  it("s2s: dialback before and after TLS, EXTERNAL only for a trusted certificate", function()
    local function run(cert)
      local s = connect(server.ports.s2s)
      local r = xmpp.negotiate_starttls(s, { kind = "s2s", to = "localhost", from = "remote.test", timeout = 5 })
      assert.is_nil(r.failure, r.failure and r.failure.message)
      assert.equals("jabber:server", r.header.xmlns)
      assert.equals("jabber:server:dialback", r.header.db)
      assert.is_true(r.starttls_required and r.features.dialback and r.proceed)
      local conn = start_tls(s, "localhost", cert)
      local after = xmpp.features(conn, { kind = "s2s", to = "localhost", from = "remote.test", timeout = 5 })
      conn:close()
      assert.is_nil(after.failure, after.failure and after.failure.message)
      return after.features
    end
    local plain = run(nil)
    assert.is_true(plain.dialback)
    assert.is_false(plain.external)
    local cert = pki.cert(server.dir, "remote.test", { issuer = { cert = server.dir .. "/ca.crt", key = server.dir .. "/ca.key" },
      cn = "remote.test", san = { "DNS:remote.test" } })
    local trusted = run(cert)
    assert.is_true(trusted.external, server.log():sub(-2000))
    assert.same({ "EXTERNAL" }, trusted.mechanisms)
    assert.is_true(trusted.dialback)
  end)

  it("reports a stream error with its condition and text", function()
    local s = connect(server.ports.c2s)
    local r = xmpp.negotiate_starttls(s, { to = "nowhere.example", timeout = 5 })
    s:close()
    assert.equals("STREAM_ERROR", r.failure.code)
    assert.equals("host-unknown", r.stream_error.condition)
    assert.matches("nowhere.example", r.stream_error.text, 1, true)
    assert.is_false(r.proceed)
  end)

  it("reports a direct TLS port, which waits for a ClientHello, as closed", function()
    local s = connect(server.ports.c2s_direct_tls)
    local r = xmpp.negotiate_starttls(s, { to = "localhost", timeout = 5 })
    s:close()
    assert.equals("CLOSED", r.failure.code)
    assert.matches("before any reply", r.failure.message, 1, true)
  end)

  it("works over any object with send and receive", function()
    local s = connect(server.ports.c2s)
    local sent, got = {}, {}
    local proxy = {
      send = function(_, data) sent[#sent + 1] = data return s:send(data) end,
      receive = function(_, n)
        local d, e, p = s:receive(n)
        got[#got + 1] = d or p
        return d, e, p
      end,
      settimeout = function(_, t) s:settimeout(t) end,
    }
    local r = xmpp.negotiate_starttls(proxy, { to = "localhost", timeout = 5 })
    s:close()
    assert.is_true(r.proceed)
    assert.equals(xmpp.stream_header { to = "localhost" } .. "\n", sent[1])
    assert.equals(xmpp.STARTTLS, sent[2])
    assert.equals(r.received, #table.concat(got))
  end)
end)

describe("xmpp against peers that are no XMPP server", function()
  it("times out on a peer that never answers", function()
    local listener = assert(socket.bind("127.0.0.1", 0))  -- never accepts: the kernel completes the connect
    local _, port = listener:getsockname()
    local s = connect(port)
    local r = xmpp.negotiate_starttls(s, { to = "localhost", timeout = 0.3 })
    s:close()
    listener:close()
    assert.equals("TIMEOUT", r.failure.code)
    assert.equals("no answer within 0.3s before any reply", r.failure.message)
    assert.is_nil(r.header)
  end)

  it("reports a peer that hangs up, sends garbage, TLS records or an old stream", function()
    local cases = {
      { nil, true, "CLOSED" },
      { "\0\1\2garbage\255", false, "NOT_XML" },
      { "\21\3\3\0\2\2\70", true, "TLS" },  -- a TLS alert record (protocol_version)
      { "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", true, "HTTP" },
      { "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        .. " id='old' from='localhost'>", false, "OLD_VERSION" },
      { "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        .. " id='x' from='localhost' version='1.0'></stream:stream>", true, "CLOSED" },
    }
    for _, c in ipairs(cases) do
      local s, peer = peer_sending(c[1], c[2])
      local r = xmpp.negotiate_starttls(s, { to = "localhost", timeout = 2 })
      s:close()
      peer:close()
      assert.equals(c[3], r.failure and r.failure.code, r.failure and r.failure.message)
      assert.is_false(r.proceed)
    end
  end)

  it("notes a header that does not fit what was asked", function()
    local s, peer = peer_sending("<?xml version='1.0'?><stream:stream xmlns='jabber:server'"
      .. " xmlns:stream='http://etherx.jabber.org/streams' from='other.example' version='1.0'>"
      .. "<stream:features/>")
    local r = xmpp.negotiate_starttls(s, { to = "localhost", timeout = 2 })
    s:close()
    peer:close()
    local codes = {}
    for _, p in ipairs(r.problems) do codes[#codes + 1] = p.code end
    assert.same({ "NO_STREAM_ID", "WRONG_NAMESPACE", "FROM_MISMATCH", "NO_STARTTLS" }, codes)
    for _, p in ipairs(r.problems) do assert.same({ true }, { problems.check(p) }) end
    assert.is_nil(r.failure)
    assert.is_false(r.starttls)
  end)
end)
