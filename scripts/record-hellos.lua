-- Records the ClientHellos of real TLS stacks, as XMPP software uses them,
-- into lua/tlsharden/clients/ (one NAME.hello file each, and the index):
-- for each client a listener on 127.0.0.1 with an ephemeral port, the
-- client run against it (bounded in time, then stopped with its whole
-- process group), the XMPP stream up to <proceed/> spoken where the client
-- starts with STARTTLS, and the TLS records up to the end of the
-- ClientHello kept. Nothing is handshaken: the listener closes once it has
-- the hello. docs/reference/clients.md says where each recording comes
-- from; `make record-hellos` runs this with every client.
--
--   lua5.4 scripts/record-hellos.lua [--out DIR] [--timeout SECONDS] [--list] [--verbose] [NAME ...]
--
-- Without names every client is recorded. A client whose program is
-- missing here is skipped with the reason, and its earlier recording is
-- kept. The exit code is 1 when a client that could run gave no hello.
local socket = require "socket"
-- the parser checks each hello where the core is built (make record-hellos)
local have_wire, wire = pcall(require, "tlsharden.wire")

local HERE = (arg and arg[0] or "scripts/record-hellos.lua"):match("^(.*)/[^/]*$") or "."
local PROGRAMS = HERE .. "/record-hellos"
local PROSODY = os.getenv("PROSODY_SRC") or "/usr/lib/prosody"
local PYTHON = "/usr/bin/python3"
local verbose = false  -- --verbose: each run's client pid and port

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- What cmd prints (stdout), trimmed; nil when it fails or prints nothing.
local function output(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local out = p:read("*a")
  p:close()
  out = out and out:gsub("^%s+", ""):gsub("%s+$", "")
  if out == "" then return nil end
  return out
end

local function first_line(s) return s and s:match("^[^\n]*") end

local function have(program) return output("command -v " .. quote(program)) ~= nil end

local function dpkg_version(package)
  return output("dpkg-query -W -f '${Version}' " .. quote(package))
end

-- ---- the clients ----------------------------------------------------------
--
-- Each: name (the file's), library, version() (as the tools report it
-- here), software (what uses the stack), kind, transport, sni, alpn,
-- needs (programs), prepare(work) (compiles, once, bounded; nil or an
-- error), command(port, work) (the shell command; PORT stands for the port
-- in what is recorded), note.

local C2S_DOMAIN, S2S_FROM, S2S_TO = "example.org", "example.org", "example.net"

local function alpn_of(kind, transport)
  if transport ~= "direct" then return nil end
  return kind == "c2s" and "xmpp-client" or "xmpp-server"
end

local function sni_of(kind) return kind == "c2s" and C2S_DOMAIN or S2S_TO end

local clients = {}

-- The clients of one stack: one per kind and transport given.
local function stack(def, variants)
  for _, v in ipairs(variants) do
    local kind, transport = v[1], v[2]
    local c = {}
    for k, val in pairs(def) do c[k] = val end
    c.kind, c.transport = kind, transport
    c.name = def.id .. "-" .. kind .. "-" .. transport
    c.sni = v.sni == nil and sni_of(kind) or v.sni or nil
    c.alpn = v.alpn == nil and alpn_of(kind, transport) or v.alpn or nil
    c.software = v.software or def.software
    c.note = v.note or def.note
    clients[#clients + 1] = c
  end
end

-- The arguments the small client programs of scripts/record-hellos/ take.
local function program_args(c, port)
  return ("127.0.0.1 %s %s %s %s %s"):format(port, c.transport, c.kind, c.sni or "-", c.alpn or "-")
end

stack({
  id = "luasec",
  library = "LuaSec (OpenSSL)",
  needs = { "lua5.4" },
  check = function()
    local f = io.open(PROSODY .. "/core/certmanager.lua")
    if not f then return "no Prosody 0.12 at " .. PROSODY .. " (PROSODY_SRC)" end
    f:close()
    local v = output("cat " .. quote(PROSODY .. "/prosody.version"))
    if not (v and v:find("^0%.12")) then return "the Prosody at " .. PROSODY .. " is not 0.12: " .. tostring(v) end
  end,
  version = function()
    return ("LuaSec %s, %s, Prosody %s"):format(
      output("lua5.4 -e 'io.write(require(\"ssl\")._VERSION)'") or "?",
      first_line(output("openssl version")) or "?",
      output("cat " .. quote(PROSODY .. "/prosody.version")) or "?")
  end,
  command = function(c, port)
    return ("lua5.4 %s/luasec_prosody.lua %s 127.0.0.1 %s %s %s %s"):format(PROGRAMS, PROSODY, port,
      c.transport, S2S_FROM, S2S_TO)
  end,
  software = "Prosody 0.12 (s2s, its default outgoing context)",
  note = "The context is built by Prosody 0.12's own certmanager.create_context with the layers its mod_tls"
    .. " passes for s2sout (defaults, tls_profile intermediate, verify peer, ALPN xmpp-server); over"
    .. " STARTTLS Prosody 0.12 sends no SNI.",
}, { { "s2s", "starttls", sni = false, alpn = "xmpp-server" }, { "s2s", "direct" } })

stack({
  id = "openssl",
  library = "OpenSSL",
  needs = { "openssl" },
  version = function() return output("openssl version") end,
  command = function(c, port)
    local cmd = "openssl s_client -connect 127.0.0.1:" .. port .. " -servername " .. c.sni
    if c.transport == "starttls" then
      cmd = cmd .. " -starttls " .. (c.kind == "c2s" and "xmpp" or "xmpp-server") .. " -xmpphost " .. c.sni
    end
    if c.alpn then cmd = cmd .. " -alpn " .. c.alpn end
    return cmd .. " < /dev/null"
  end,
  software = "libstrophe clients (Profanity), Psi (qca-ossl), Siskin and Beagle: OpenSSL with its defaults"
    .. " or settings of their own",
  note = "openssl s_client with OpenSSL's defaults; software on OpenSSL sets its own cipher list and options.",
}, {
  { "c2s", "starttls" }, { "c2s", "direct" },
  { "s2s", "starttls", software = "ejabberd (s2s, fast_tls: OpenSSL with ejabberd's own settings)" },
  { "s2s", "direct", software = "ejabberd (s2s, fast_tls: OpenSSL with ejabberd's own settings)" },
})

stack({
  id = "python",
  library = "Python ssl (OpenSSL)",
  needs = { PYTHON },
  version = function()
    return output(PYTHON .. " -c 'import sys, ssl; print(\"Python\", sys.version.split()[0] + \",\", ssl.OPENSSL_VERSION)'")
  end,
  command = function(c, port) return PYTHON .. " " .. PROGRAMS .. "/python_ssl.py " .. program_args(c, port) end,
  software = "Poezio, slixmpp bots (ssl.create_default_context())",
}, { { "c2s", "starttls" }, { "c2s", "direct" } })

stack({
  id = "gnutls",
  library = "GnuTLS",
  needs = { "gnutls-cli" },
  version = function() return first_line(output("gnutls-cli --version")) end,
  command = function(c, port)
    local cmd = "gnutls-cli --insecure --port " .. port .. " --sni-hostname " .. c.sni
    if c.transport == "starttls" then cmd = cmd .. " --starttls-proto xmpp" end
    if c.alpn then cmd = cmd .. " --alpn " .. c.alpn end
    return cmd .. " 127.0.0.1 < /dev/null"
  end,
  software = "Pidgin 2 (its GnuTLS plugin), and what builds on GnuTLS directly",
  note = "gnutls-cli with GnuTLS's default priority string (NORMAL); software sets its own priorities.",
}, { { "c2s", "starttls" }, { "c2s", "direct" } })

stack({
  id = "gio",
  library = "GLib GIO TLS (glib-networking, GnuTLS)",
  needs = { PYTHON },
  check = function()
    if not output(PYTHON .. " -c 'import gi; gi.require_version(\"Gio\", \"2.0\")' && echo ok") then
      return "python3-gi (GObject introspection for Python) is not installed"
    end
    local ok = output(PYTHON .. " -c 'import gi; gi.require_version(\"Gio\", \"2.0\"); from gi.repository import Gio;"
      .. " print(Gio.TlsBackend.get_default().supports_tls())'")
    if ok ~= "True" then return "GIO has no TLS backend here (glib-networking is not installed)" end
  end,
  version = function()
    return ("GLib %s, glib-networking %s (%s), GnuTLS %s"):format(dpkg_version("libglib2.0-0") or "?",
      dpkg_version("glib-networking") or "?",
      output(PYTHON .. " " .. PROGRAMS .. "/gio_tls.py - - - - - - --version") or "?",
      dpkg_version("libgnutls30") or "?")
  end,
  command = function(c, port) return PYTHON .. " " .. PROGRAMS .. "/gio_tls.py " .. program_args(c, port) end,
  software = "Gajim (nbxmpp), Dino: GIO TLS with glib-networking's defaults",
  note = "A GTlsClientConnection made through PyGObject; which backend GIO picks (GnuTLS or OpenSSL)"
    .. " depends on the system; this one is Debian's GnuTLS backend.",
}, { { "c2s", "starttls" }, { "c2s", "direct" } })

stack({
  id = "nss",
  library = "NSS",
  needs = { "tstclnt" },
  version = function() return "NSS " .. (dpkg_version("libnss3") or "?"):gsub("^%d+:", ""):gsub("%-.*$", "") end,
  command = function(c, port)
    return "tstclnt -D -o -Q -h 127.0.0.1 -p " .. port .. " -a " .. c.sni .. " < /dev/null"
  end,
  software = "Pidgin 2 (its NSS plugin)",
  note = "tstclnt speaks no XMPP and has no ALPN option: direct TLS only, without ALPN.",
}, { { "c2s", "direct", alpn = false } })

stack({
  id = "java",
  library = "Java SunJSSE",
  needs = { "java", "javac" },
  version = function()
    local runtime = first_line(output("java -XshowSettings:properties -version 2>&1"
      .. " | sed -n 's/^ *java.runtime.version = //p'"))
    return runtime and ("OpenJDK %s, SunJSSE"):format(runtime)
  end,
  prepare = function(work)
    return os.execute(("timeout 120 javac -d %s %s/HelloClient.java"):format(quote(work), PROGRAMS)) == true
      or "javac failed"
  end,
  command = function(c, port, work)
    return ("java -cp %s HelloClient %s"):format(quote(work), program_args(c, port)), "java -cp WORK HelloClient"
      .. " " .. program_args(c, "PORT")
  end,
  software = "Smack clients (Spark), Openfire and Tigase (s2s): Java's default SSLContext",
}, { { "c2s", "starttls" }, { "c2s", "direct" }, { "s2s", "starttls", software = "Openfire, Tigase (s2s)" },
  { "s2s", "direct", software = "Openfire, Tigase (s2s)" } })

stack({
  id = "erlang",
  library = "Erlang/OTP ssl",
  needs = { "escript", "erl" },
  version = function()
    return output("erl -noshell -eval 'application:load(ssl), {ok, V} = application:get_key(ssl, vsn),"
      .. " io:format(\"OTP ~s, ssl ~s\", [erlang:system_info(otp_release), V]), halt().'")
  end,
  command = function(c, port) return "escript " .. PROGRAMS .. "/hello_client.erl " .. program_args(c, port) end,
  software = "MongooseIM (just_tls), Erlang clients and bots",
}, { { "c2s", "starttls" }, { "c2s", "direct" },
  { "s2s", "starttls", software = "MongooseIM (s2s, just_tls); not ejabberd, whose fast_tls is OpenSSL" },
  { "s2s", "direct", software = "MongooseIM (s2s, just_tls); not ejabberd, whose fast_tls is OpenSSL" } })

stack({
  id = "chromium",
  library = "Chromium (BoringSSL)",
  needs = { "chromium" },
  version = function() return first_line(output("chromium --version")) end,
  command = function(c, port, work)
    local cmd = ("chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
      .. " --disable-component-update --disable-sync --disable-extensions --disable-crash-reporter"
      .. " --disable-breakpad --user-data-dir=%s --host-resolver-rules='MAP %s 127.0.0.1' https://%s:%s/")
    return cmd:format(quote(work .. "/chromium"), c.sni, c.sni, port),
      cmd:format("WORK/chromium", c.sni, c.sni, "PORT")
  end,
  software = "Conversations and other Android clients, approximately: Android's Conscrypt is BoringSSL too",
  note = "An approximation: Chromium's BoringSSL with a browser's settings stands for Conscrypt (BoringSSL),"
    .. " which Conversations uses. It offers HTTP's ALPN (h2, http/1.1), not xmpp-client, sends GREASE,"
    .. " and shuffles its extensions on every connection.",
}, { { "c2s", "direct", alpn = "h2,http/1.1" } })

stack({
  id = "go",
  library = "Go crypto/tls",
  needs = { "go" },
  version = function() return output("go version") end,
  prepare = function(work)
    return os.execute(("cd %s && GOFLAGS=-mod=mod GOCACHE=%s/gocache GOPATH=%s/gopath timeout 300 go build -o %s/hello_client"
      .. " hello_client.go"):format(PROGRAMS, quote(work), quote(work), quote(work))) == true or "go build failed"
  end,
  command = function(c, port, work)
    return quote(work .. "/hello_client") .. " " .. program_args(c, port), "WORK/hello_client "
      .. program_args(c, "PORT")
  end,
  software = "Go XMPP libraries and bots (mellium.im/xmpp, go-xmpp)",
}, { { "c2s", "starttls" }, { "c2s", "direct" } })

stack({
  id = "node",
  library = "Node.js tls (OpenSSL)",
  needs = { "node" },
  version = function()
    return output("node -e 'console.log(\"Node.js \" + process.version + \", OpenSSL \" + process.versions.openssl)'")
  end,
  command = function(c, port) return "node " .. PROGRAMS .. "/hello_client.js " .. program_args(c, port) end,
  software = "xmpp.js clients and bots on Node.js",
}, { { "c2s", "starttls" }, { "c2s", "direct" } })

-- ---- the stacks' limits ------------------------------------------------------
--
-- What each stack's real client accepts, measured by
-- scripts/measure-client-limits.lua (spec/helpers/real_clients.lua) against
-- openssl s_server, written into every recording of the stack:
-- min_dh_bits (the smallest DH group of 1024, 1536 and 2048 bits it takes
-- on a DHE suite; "none": it offers no DHE suite), min_rsa_bits (the
-- smallest RSA key of 512, 768, 1024 and 2048 bits it takes in the
-- server's certificate as the software runs it, verifying the certificate;
-- Prosody's s2s and NSS: the handshake's own limit), min_rsa_bits_unverified
-- (the same with verification off), min_protocol (the oldest of TLS 1.0,
-- 1.1 and 1.2 it completes a handshake with). Measure again when a stack's
-- version changes, and keep this table and the docs' in step.

local LIMITS_SOURCE = "measured 2026-12-05 with scripts/measure-client-limits.lua (spec/helpers/real_clients.lua)"
  .. " against openssl s_server 3.0.19 on loopback: DHE-only TLS 1.2 servers with DH groups of 1024, 1536 and"
  .. " 2048 bits; certificates with RSA keys of 512, 768, 1024 and 2048 bits, verified against their CA and"
  .. " not verified; TLS 1.0-only and TLS 1.1-only servers"

local LIMITS = {
  luasec = { min_dh_bits = 2048, min_rsa_bits = 512, min_rsa_bits_unverified = 512, min_protocol = "tlsv1_2" },
  openssl = { min_dh_bits = 2048, min_rsa_bits = 2048, min_rsa_bits_unverified = 512, min_protocol = "tlsv1_2" },
  python = { min_dh_bits = 2048, min_rsa_bits = 2048, min_rsa_bits_unverified = 512, min_protocol = "tlsv1_2" },
  gnutls = { min_dh_bits = 1024, min_rsa_bits = 1024, min_rsa_bits_unverified = 512, min_protocol = "tlsv1" },
  gio = { min_dh_bits = 1024, min_rsa_bits = 1024, min_rsa_bits_unverified = 512, min_protocol = "tlsv1" },
  nss = { min_dh_bits = 1024, min_rsa_bits = 1024, min_rsa_bits_unverified = 1024, min_protocol = "tlsv1" },
  node = { min_dh_bits = 1024, min_rsa_bits = 1024, min_rsa_bits_unverified = 512, min_protocol = "tlsv1_2" },
  java = { min_dh_bits = 1024, min_rsa_bits = 1024, min_rsa_bits_unverified = 1024, min_protocol = "tlsv1_2" },
  erlang = { min_dh_bits = 1024, min_rsa_bits = 768, min_rsa_bits_unverified = 768, min_protocol = "tlsv1_2" },
  go = { min_dh_bits = "none", min_rsa_bits = 512, min_rsa_bits_unverified = 512, min_protocol = "tlsv1_2" },
}

-- ---- running a client ------------------------------------------------------

--- Start cmd in the background under timeout(1), in a process group of its
-- own (timeout's), its output to log; returns timeout's pid.
local function spawn(cmd, seconds, log)
  local line = ("timeout -k 2 %d sh -c %s > %s 2>&1 < /dev/null & echo $!"):format(seconds, quote(cmd), quote(log))
  return tonumber(output(line))
end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

--- Stop the client: its process group (timeout's), then wait for it.
local function stop(pid)
  if not pid then return end
  os.execute(("kill -TERM -%d 2>/dev/null; kill -TERM %d 2>/dev/null"):format(pid, pid))
  local deadline = socket.gettime() + 3
  while alive(pid) and socket.gettime() < deadline do socket.sleep(0.05) end
  os.execute(("kill -KILL -- -%d 2>/dev/null; kill -KILL %d 2>/dev/null"):format(pid, pid))
end

--- Read from conn until done(buf) is true; returns buf, or nil and why.
local function read_until(conn, buf, done, deadline)
  while not done(buf) do
    local left = deadline - socket.gettime()
    if left <= 0 then return nil, "timed out" end
    conn:settimeout(math.min(left, 0.2))
    local data, err, partial = conn:receive(1)
    data = data or partial
    if data and data ~= "" then buf = buf .. data
    elseif err == "closed" then return nil, "the client closed" end
  end
  return buf
end

--- The TLS records of buf up to the end of the first handshake message,
-- once buf holds them all (nil before).
local function hello_records(buf)
  local off, hs = 1, ""
  while #buf >= off + 4 do
    local t, len = buf:byte(off), buf:byte(off + 3) * 256 + buf:byte(off + 4)
    if t ~= 22 then return false end
    if #buf < off + 4 + len then return nil end
    hs = hs .. buf:sub(off + 5, off + 4 + len)
    off = off + 5 + len
    if #hs >= 4 and #hs >= 4 + hs:byte(2) * 65536 + hs:byte(3) * 256 + hs:byte(4) then
      return buf:sub(1, off - 1)
    end
  end
  return nil
end

--- The XMPP stream up to <proceed/>, as a server offering STARTTLS; the
-- bytes after the client's <starttls/> (none, for a well-behaved client).
local function xmpp_starttls(conn, buf, deadline)
  local err
  buf, err = read_until(conn, buf, function(b) return b:find("<stream:stream[^>]*>") ~= nil end, deadline)
  if not buf then return nil, "no stream header: " .. err end
  local header = buf:match("<stream:stream[^>]*>")
  local ns = header:match("xmlns=['\"]([^'\"]*)") or "jabber:client"
  local to = header:match("to=['\"]([^'\"]*)") or C2S_DOMAIN
  conn:settimeout(5)
  conn:send(("<?xml version='1.0'?><stream:stream xmlns='%s'%s xmlns:stream='http://etherx.jabber.org/streams'"
    .. " id='record-hellos' from='%s' version='1.0'><stream:features><starttls"
    .. " xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"):format(ns,
      ns == "jabber:server" and " xmlns:db='jabber:server:dialback'" or "", to))
  local rest = buf:sub(select(2, buf:find("<stream:stream[^>]*>")) + 1)
  rest, err = read_until(conn, rest, function(b)
    return b:find("<starttls[^>]*/>") ~= nil or b:find("</starttls>", 1, true) ~= nil
  end, deadline)
  if not rest then return nil, "no <starttls/>: " .. err end
  conn:send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
  local _, e = rest:find("<starttls[^>]*/>")
  if not e then _, e = rest:find("</starttls>", 1, true) end
  return rest:sub(e + 1)
end

--- The client's first flight on the connection conn, or nil and why.
local function read_hello(c, conn, deadline)
  local buf, err = read_until(conn, "", function(b) return #b > 0 end, deadline)
  if buf and c.transport == "starttls" then
    if buf:sub(1, 1) ~= "<" then
      return nil, "STARTTLS expected, but the client began with byte " .. buf:byte(1)
    end
    buf, err = xmpp_starttls(conn, buf, deadline)
  end
  if not buf then return nil, err end
  buf, err = read_until(conn, buf, function(b) return hello_records(b) ~= nil end, deadline)
  if not buf then return nil, err end
  return hello_records(buf) or nil, "the client sent no TLS handshake record"
end

--- Run client c once: its first flight's records, or nil and why. The
-- listener, the connection and the client are gone when it returns,
-- whatever happened.
local function capture(c, work, seconds)
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local cmd = c.command(c, port, work)
  local log = work .. "/" .. c.name .. ".log"
  local pid = spawn(cmd, seconds, log)
  if verbose then print(("client pid %s on port %s: %s"):format(tostring(pid), port, cmd)) end
  local deadline = socket.gettime() + seconds
  local conn
  local ran, hello, why = pcall(function()
    if not pid then return nil, "the client could not be started" end
    server:settimeout(0.2)
    while not conn and socket.gettime() < deadline do
      conn = server:accept()
      if not conn and not alive(pid) then break end
    end
    server:close()
    if not conn then return nil, "the client never connected" end
    return read_hello(c, conn, deadline)
  end)
  server:close()
  if conn then conn:close() end
  stop(pid)
  if not ran then hello, why = nil, "the recorder failed: " .. tostring(hello) end
  if not hello then
    local f = io.open(log)
    local said = f and f:read("*a") or ""
    if f then f:close() end
    return nil, why .. (said ~= "" and (" (it said: " .. said:sub(1, 300):gsub("%s+", " ") .. ")") or "")
  end
  return hello
end

-- ---- the recording file -----------------------------------------------------

local function hex(s)
  return (s:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

local function write_recording(dir, c, hello, version, shown)
  local lines = {
    "# A ClientHello recorded by scripts/record-hellos.lua (make record-hellos); see",
    "# docs/reference/clients.md. Written by the recorder: do not edit by hand.",
    "name: " .. c.name,
    "library: " .. c.library,
    "version: " .. version,
    "software: " .. c.software,
    "kind: " .. c.kind,
    "transport: " .. c.transport,
    "sni:" .. (c.sni and " " .. c.sni or ""),
    "alpn:" .. (c.alpn and " " .. c.alpn or ""),
    "command: " .. shown,
    "recorded: " .. os.date("!%Y-%m-%d"),
  }
  if c.note then lines[#lines + 1] = "note: " .. c.note end
  local limits = LIMITS[c.id]
  if limits then
    for _, key in ipairs { "min_dh_bits", "min_rsa_bits", "min_rsa_bits_unverified", "min_protocol" } do
      lines[#lines + 1] = key .. ": " .. tostring(limits[key])
    end
    lines[#lines + 1] = "limits_source: " .. LIMITS_SOURCE
  end
  local h = hex(hello)
  for i = 1, #h, 128 do lines[#lines + 1] = "hello: " .. h:sub(i, i + 127) end
  local path = dir .. "/" .. c.name .. ".hello"
  local f = assert(io.open(path .. ".new", "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  assert(os.rename(path .. ".new", path))
end

--- The index: every recording of dir, one name a line, sorted.
local function write_index(dir)
  local names = {}
  local p = assert(io.popen("ls " .. quote(dir)))
  for f in p:lines() do
    local name = f:match("^(.+)%.hello$")
    if name then names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  local f = assert(io.open(dir .. "/index", "w"))
  f:write("# The recordings of this folder, one name a line (written by scripts/record-hellos.lua).\n")
  for _, n in ipairs(names) do f:write(n, "\n") end
  f:close()
end

-- ---- main ---------------------------------------------------------------------

local function main(argv)
  local out, seconds, wanted, list = HERE .. "/../lua/tlsharden/clients", 30, {}, false
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--out" then out, i = argv[i + 1], i + 1
    elseif a == "--timeout" then seconds, i = tonumber(argv[i + 1]), i + 1
    elseif a == "--list" then list = true
    elseif a == "--verbose" then verbose = true
    elseif a:sub(1, 1) == "-" or not a:find("^[%w_-]+$") then
      io.stderr:write("record-hellos: unknown argument ", a, "\n")
      return 2
    else wanted[#wanted + 1] = a end
    i = i + 1
  end
  if not out or not seconds or seconds < 1 then
    io.stderr:write("usage: record-hellos.lua [--out DIR] [--timeout SECONDS] [--list] [--verbose] [NAME ...]\n")
    return 2
  end
  if list then
    for _, c in ipairs(clients) do print(c.name) end
    return 0
  end
  local chosen, by_name = {}, {}
  for _, c in ipairs(clients) do by_name[c.name] = c end
  if #wanted == 0 then chosen = clients end
  for _, n in ipairs(wanted) do
    if not by_name[n] then
      io.stderr:write("record-hellos: no client ", n, " (--list names them)\n")
      return 2
    end
    chosen[#chosen + 1] = by_name[n]
  end
  assert(os.execute("mkdir -p " .. quote(out)))
  local work = output("mktemp -d")
  local prepared, failed = {}, 0
  for _, c in ipairs(chosen) do
    local skip
    for _, program in ipairs(c.needs or {}) do
      if not skip and not have(program) then skip = program .. " is not installed" end
    end
    if not skip and c.check then skip = c.check() end
    if not skip and c.prepare then
      if prepared[c.id] == nil then prepared[c.id] = c.prepare(work) end
      if prepared[c.id] ~= true then skip = prepared[c.id] end
    end
    if skip then
      print(("skipped %s: %s"):format(c.name, skip))
    else
      local hello, why = capture(c, work, seconds)
      if hello and have_wire and wire.parse_client_hello(hello).outcome ~= "client_hello" then
        hello, why = nil, "what it sent does not parse as a ClientHello: "
          .. tostring((wire.parse_client_hello(hello).problems[1] or {}).message)
      end
      if hello then
        local _, shown = c.command(c, "PORT", "WORK")
        shown = (shown or c.command(c, "PORT", "WORK")):gsub(PROGRAMS:gsub("%p", "%%%0"), "scripts/record-hellos")
        write_recording(out, c, hello, c.version() or "unknown", shown)
        print(("recorded %s: %d bytes"):format(c.name, #hello))
      else
        failed = failed + 1
        print(("FAILED %s: %s"):format(c.name, why))
      end
    end
  end
  write_index(out)
  os.execute("rm -rf " .. quote(work))
  return failed > 0 and 1 or 0
end

os.exit(main(arg or {}))
