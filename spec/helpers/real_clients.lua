--- Real TLS clients for the specs: the stacks of the recorded ClientHellos
-- (lua/tlsharden/clients/, docs/reference/clients.md) run against a server
-- on 127.0.0.1, the handshake completed without certificate verification,
-- and what they negotiated said in tlsharden's names. The recording's name
-- picks the stack, the kind and the transport ("java-c2s-starttls").
--
--   local real_clients = require "spec.helpers.real_clients"
--   local ok, why = real_clients.available("java-c2s-direct")
--   local r = real_clients.run("java-c2s-direct", { port = server.port })
--   --> { ok = true, protocol = "tlsv1_3", suite = "TLS_AES_128_GCM_SHA256", group = nil, dh_bits = nil, ... }
--   --> { ok = false, reason = "dh key too small", ... }
--   real_clients.cleanup()   -- the compiled Java and Go clients
--
-- Every client runs under timeout(1) in a session and process group of its
-- own (setsid), which is killed when it returns; only loopback is used.
-- openssl s_client and gnutls-cli and tstclnt are read from their own
-- output; the small programs of scripts/record-hellos/ print one
-- "RESULT ok protocol=... suite=... [group=...] [dh_bits=...]" or
-- "RESULT fail reason=..." line in their handshake mode.
local sh = require "spec.helpers.sh"
local wire = require "tlsharden.wire"

local M = {}

M.root = require("spec.helpers.prosody").root
local PROGRAMS = M.root .. "/scripts/record-hellos"
local PYTHON = "/usr/bin/python3"
local PROSODY_SRC = os.getenv("PROSODY_SRC") or "/usr/lib/prosody"

local quote = sh.quote

-- ---- names ------------------------------------------------------------------

local PROTOCOLS = { ["1.0"] = "tlsv1", ["1"] = "tlsv1", ["1.1"] = "tlsv1_1", ["1.2"] = "tlsv1_2", ["1.3"] = "tlsv1_3" }

--- A protocol name as any of the stacks says it ("TLSv1.3", "TLS1.2",
-- "tlsv1.2", "TLS_1_2", "TLSv1", NSS's "3.4") in tlsharden's form
-- ("tlsv1_3"); nil for one it does not know.
function M.protocol_name(s)
  if type(s) ~= "string" then return nil end
  local l = s:lower():gsub("_", ".")
  if l == "sslv3" or l == "ssl3.0" or l == "3.0" then return "sslv3" end
  local nss_minor = l:match("^3%.(%d)$")
  if nss_minor then return ({ ["1"] = "tlsv1", ["2"] = "tlsv1_1", ["3"] = "tlsv1_2", ["4"] = "tlsv1_3" })[nss_minor] end
  local v = l:match("^tlsv?%.?(1[%.%d]*)$")
  return v and PROTOCOLS[v]
end

-- GnuTLS's suite names ("GNUTLS_ECDHE_RSA_AES_128_CBC_SHA1") are IANA's
-- without "WITH", with "SHA1" for "SHA" and no PRF hash after CHACHA20_POLY1305.
local gnutls_index
local function gnutls_key(iana)
  return (iana:gsub("_WITH_", "_"):gsub("_SHA$", "_SHA1"):gsub("CHACHA20_POLY1305_SHA256$", "CHACHA20_POLY1305"))
end

--- A suite name (OpenSSL's, IANA's, GnuTLS's) as IANA names it; nil for
-- one the registry does not have.
function M.suite_name(s)
  if type(s) ~= "string" or s == "" then return nil end
  local found = wire.suite(s)
  if found and found.iana then return found.iana end
  if not gnutls_index then
    gnutls_index = {}
    for _, suite in ipairs(wire.suites()) do
      if suite.iana then gnutls_index[gnutls_key(suite.iana)] = suite.iana end
    end
  end
  local name = s:gsub("^GNUTLS_", "TLS_")
  return gnutls_index[name] or gnutls_index[gnutls_key(name)]
end

local GROUP_ALIASES = { prime256v1 = "secp256r1", ["p-256"] = "secp256r1", ["p-384"] = "secp384r1",
  ["p-521"] = "secp521r1", ["x25519"] = "x25519", ["x448"] = "x448" }
local group_index

--- A group name as a stack says it ("X25519", "prime256v1", "SECP256R1",
-- "P-256", "FFDHE2048") as IANA's registry names it ("x25519",
-- "secp256r1", "ffdhe2048"); nil for one it does not know.
function M.group_name(s)
  if type(s) ~= "string" or s == "" then return nil end
  if not group_index then
    group_index = {}
    for _, g in ipairs(wire.groups()) do group_index[g.name:lower()] = g.name end
  end
  local l = s:lower()
  return group_index[GROUP_ALIASES[l] or l]
end

-- NSS names a group only by its key size: the curve or ffdhe group of that size.
local NSS_GROUP_BITS = { [255] = "x25519", [256] = "secp256r1", [384] = "secp384r1", [521] = "secp521r1",
  [448] = "x448" }

-- NSS's names of bulk ciphers and MACs (tstclnt's "128-bit AES-GCM with
-- 128-bit AEAD MAC"), as the registry's encryption and mac fields.
local NSS_CIPHERS = { ["AES-GCM"] = "aes-%d-gcm", AES = "aes-%d-cbc", ["3DES-EDE-CBC"] = "des-ede3-cbc",
  RC4 = "rc4", ["ChaCha20-Poly1305"] = "chacha20-poly1305", CHACHA20POLY1305 = "chacha20-poly1305", Camellia = "camellia-%d-cbc", SEED = "seed-cbc" }

--- The registry's suite for what tstclnt says of a connection: the one
-- registered suite of that key exchange, authentication, cipher and MAC.
local function nss_suite(protocol, kx, auth, cipher_bits, cipher, mac)
  local enc = NSS_CIPHERS[cipher]
  if not enc then return nil end
  enc = enc:format(cipher_bits)
  local tls13 = protocol == "tlsv1_3"
  mac = mac == "SHA" and "SHA1" or mac
  local match
  for _, s in ipairs(wire.suites()) do
    if s.registered and not s.scsv and s.iana and s.encryption == enc and s.tls13 == tls13
      and (tls13 or (s.kx == kx and s.auth == auth and s.mac == mac)) then
      if match then return nil end  -- not one suite: leave it unknown
      match = s.iana
    end
  end
  return match
end

-- ---- the stacks -------------------------------------------------------------

local function have(program)
  return sh.exec("command -v " .. quote(program) .. " >/dev/null")
end

-- The work folder: the compiled Java and Go clients, made once per run.
local work
local function work_dir()
  if not work then work = sh.run("mktemp -d"):gsub("%s+$", "") end
  return work
end

--- Remove the compiled clients (call from a spec's teardown).
function M.cleanup()
  if work and work:find("^/tmp/") then sh.exec("rm -rf " .. quote(work)) end
  work = nil
end

-- The small programs' arguments: HOST PORT TRANSPORT KIND SNI ALPN handshake [CAFILE].
local function program_args(c)
  return ("127.0.0.1 %d %s %s %s %s handshake%s"):format(c.port, c.transport, c.kind, quote(c.server_name),
    c.alpn and quote(c.alpn) or "-", c.ca and (" " .. quote(c.ca)) or "")
end

local function result_line(out)
  local line = out:match("RESULT [^\n]*")
  if not line then return nil end
  if line:find("^RESULT ok") then
    return { ok = true, protocol = line:match("protocol=(%S+)"), suite = line:match("suite=(%S+)"),
      group = line:match("group=(%S+)"), dh_bits = tonumber(line:match("dh_bits=(%d+)")) }
  end
  return { ok = false, reason = line:match("reason=(.*)$") or line }
end

-- OpenSSL's error lines: "...:error:0A00018A:SSL routines:func:dh key too small:file:line:".
local function openssl_reason(out)
  return out:match(":error:%x+:[^:]*:[^:]*:([^:\n]+)") or out:match("[^\n]*[Ee]rror[^\n]*")
end

local function parse_openssl(out)
  local protocol, cipher = out:match("New, (%S+), Cipher is (%S+)")
  if not cipher or cipher == "(NONE)" then
    return { ok = false, reason = openssl_reason(out) or "no handshake" }
  end
  local r = { ok = true, protocol = protocol, suite = cipher }
  local key = out:match("Server Temp Key: ([^\n]*)")
  if key then
    local kind, rest = key:match("^(%w+), (.*)$")
    if kind == "DH" then
      local bits = tonumber(rest:match("(%d+) bits"))
      if M.protocol_name(protocol) == "tlsv1_3" then r.group = "ffdhe" .. tostring(bits)
      else r.dh_bits = bits end
    elseif kind == "ECDH" then
      r.group = rest:match("^([^,]+)")
    else
      r.group = kind  -- X25519, X448
    end
  end
  return r
end

local function parse_gnutls(out)
  if not out:find("Handshake was completed", 1, true) then
    return { ok = false, reason = out:match("%*%*%* Fatal error: ([^\n]*)") or out:match("%*%*%* ([^\n]*failed[^\n]*)")
      or out:match("[^\n]*[Ee]rror[^\n]*") or "no handshake" }
  end
  local suite
  for name in out:gmatch("Cipher Suite: (GNUTLS_[%w_]+)") do suite = name end
  suite = suite or out:match("Selected cipher suite: (GNUTLS_[%w_]+)")
  local desc = out:match("%- Description: ([^\n]*)") or ""
  local protocol = desc:match("^%((TLS[%d.]+)")
  local kx = desc:match("^%([^)]*%)%-%(([^)]*)%)") or ""
  local r = { ok = true, protocol = protocol, suite = suite }
  local curve = kx:match("^ECDHE%-(.+)$")
  local ff = kx:match("^DHE%-(FFDHE%d+)$")
  local custom = tonumber(kx:match("^DHE%-CUSTOM(%d+)$"))
  if curve then r.group = curve
  elseif ff then
    r.group = ff
    if M.protocol_name(protocol) ~= "tlsv1_3" then r.dh_bits = tonumber(ff:match("%d+")) end
  elseif custom then r.dh_bits = custom end
  return r
end

local function parse_nss(out)
  local major, minor, cbits, cipher, mac = out:match("SSL version (%d)%.(%d) using (%d+)%-bit (%S+) with %d+%-bit (%S+) MAC")
  if not major then
    return { ok = false, reason = out:match("(SSL_ERROR_[%w_]+[^\n]*)") or out:match("(SEC_ERROR_[%w_]+[^\n]*)")
      or out:match("tstclnt: ([^\n]*failed[^\n]*)") or "no handshake" }
  end
  local protocol = M.protocol_name(major .. "." .. minor)
  local auth, kx_bits, kx = out:match("Server Auth: %d+%-bit ([^,\n]+), Key Exchange: (%d+)%-bit ([^\n,]+)")
  kx_bits = tonumber(kx_bits)
  local r = { ok = true, protocol = protocol }
  kx = kx and kx:gsub("%s+$", "")
  r.suite = nss_suite(protocol, kx, auth, tonumber(cbits), cipher, mac)
  if kx == "DHE" then r.dh_bits = kx_bits
  elseif kx_bits then r.group = NSS_GROUP_BITS[kx_bits] or (kx_bits >= 2048 and "ffdhe" .. kx_bits) or nil end
  return r
end

local STACKS = {}

STACKS.openssl = {
  needs = { "openssl" },
  command = function(c)
    local cmd = ("openssl s_client -connect 127.0.0.1:%d -servername %s"):format(c.port, quote(c.server_name))
    if c.transport == "starttls" then
      cmd = cmd .. " -starttls " .. (c.kind == "c2s" and "xmpp" or "xmpp-server") .. " -xmpphost " .. quote(c.server_name)
    end
    if c.alpn then cmd = cmd .. " -alpn " .. quote(c.alpn) end
    if c.ca then
      cmd = cmd .. (" -CAfile %s -verify_return_error -verify_hostname %s"):format(quote(c.ca), quote(c.server_name))
    end
    return cmd
  end,
  parse = parse_openssl,
  reports = { group = true, dh_bits = true },
}

STACKS.gnutls = {
  needs = { "gnutls-cli" },
  kinds = { c2s = true },  -- its STARTTLS speaks jabber:client only
  command = function(c)
    -- gnutls-cli names the XMPP host by the host it connects to
    local host = (c.transport == "starttls" and c.server_name == "localhost") and "localhost" or "127.0.0.1"
    local verify = c.ca and ("--x509cafile %s --verify-hostname %s"):format(quote(c.ca), quote(c.server_name))
      or "--insecure"
    local cmd = ("gnutls-cli -d 4 %s --port %d --sni-hostname %s"):format(verify, c.port, quote(c.server_name))
    if c.transport == "starttls" then cmd = cmd .. " --starttls-proto xmpp" end
    if c.alpn then cmd = cmd .. " --alpn " .. quote(c.alpn) end
    return cmd .. " " .. host .. " 2>&1 | grep -E 'Cipher Suite:|Selected cipher suite|^- |^\\*\\*\\*|rror'"
  end,
  parse = parse_gnutls,
  reports = { group = true, dh_bits = true },
}

STACKS.nss = {
  needs = { "tstclnt" },
  transports = { direct = true },  -- tstclnt speaks no XMPP
  command = function(c)
    return ("tstclnt -D -o -Q -v -h 127.0.0.1 -p %d -a %s"):format(c.port, quote(c.server_name))
  end,
  parse = parse_nss,
  no_alpn = true,
  no_ca = "tstclnt verifies only against a certificate database",
  reports = { group = "from the key exchange's size", dh_bits = true },
}

STACKS.python = {
  needs = { PYTHON },
  command = function(c) return PYTHON .. " " .. PROGRAMS .. "/python_ssl.py " .. program_args(c) end,
  reports = {},
}

STACKS.gio = {
  needs = { PYTHON },
  check = function()
    local ok, out = sh.exec(PYTHON .. " -c 'import gi; gi.require_version(\"Gio\", \"2.0\"); from gi.repository import Gio;"
      .. " print(Gio.TlsBackend.get_default().supports_tls())'")
    if not ok then return "python3-gi (GObject introspection for Python) is not installed" end
    if not out:find("True") then return "GIO has no TLS backend here (glib-networking is not installed)" end
  end,
  command = function(c) return PYTHON .. " " .. PROGRAMS .. "/gio_tls.py " .. program_args(c) end,
  reports = {},
}

STACKS.java = {
  needs = { "java", "javac" },
  prepare = function(dir)
    local ok, out = sh.exec(("timeout 120 javac -d %s %s/HelloClient.java"):format(quote(dir), PROGRAMS))
    return ok or ("javac failed: " .. out)
  end,
  command = function(c, dir)
    return ("java -XX:TieredStopAtLevel=1 -Xshare:auto -cp %s HelloClient %s"):format(quote(dir), program_args(c))
  end,
  reports = {},
}

STACKS.erlang = {
  needs = { "escript", "erl" },
  command = function(c) return "escript " .. PROGRAMS .. "/hello_client.erl " .. program_args(c) end,
  reports = {},
}

STACKS.go = {
  needs = { "go" },
  prepare = function(dir)
    local ok, out = sh.exec(("cd %s && GOFLAGS=-mod=mod GOCACHE=%s/gocache GOPATH=%s/gopath timeout 300"
      .. " go build -o %s/hello_client hello_client.go"):format(PROGRAMS, quote(dir), quote(dir), quote(dir)))
    return ok or ("go build failed: " .. out)
  end,
  command = function(c, dir) return quote(dir .. "/hello_client") .. " " .. program_args(c) end,
  reports = {},
}

STACKS.node = {
  needs = { "node" },
  command = function(c) return "node " .. PROGRAMS .. "/hello_client.js " .. program_args(c) end,
  reports = { group = true, dh_bits = true },
}

STACKS.luasec = {
  needs = { "lua5.4" },
  kinds = { s2s = true },
  check = function()
    local f = io.open(PROSODY_SRC .. "/core/certmanager.lua")
    if not f then return "no Prosody 0.12 at " .. PROSODY_SRC .. " (PROSODY_SRC)" end
    f:close()
    local v = io.open(PROSODY_SRC .. "/prosody.version")
    local release = v and v:read("*l")
    if v then v:close() end
    if not (release and release:find("^0%.12")) then
      return "the Prosody at " .. PROSODY_SRC .. " is not 0.12: " .. tostring(release)
    end
  end,
  command = function(c)
    -- tlsharden from this checkout, for the group and the DH size
    return ("LUA_PATH_5_4=%s LUA_CPATH_5_4=%s lua5.4 %s/luasec_prosody.lua %s 127.0.0.1 %d %s example.org %s handshake"):format(
      quote(M.root .. "/lua/?.lua;" .. M.root .. "/lua/?/init.lua;;"), quote(M.root .. "/build/?.so;;"), PROGRAMS,
      quote(PROSODY_SRC), c.port, c.transport, quote(c.server_name))
  end,
  reports = { group = true, dh_bits = true },
  fixed_alpn = "xmpp-server",
  no_ca = "Prosody's context verifies against the system's store, and a failed verification does not stop"
    .. " its handshake",
}

M.STACKS = STACKS

--- What each stack can tell of a connection besides protocol and suite:
-- { group = true | false | "how", dh_bits = true | false }.
function M.reports(stack)
  local s = STACKS[stack]
  if not s then return nil end
  return { group = s.reports.group or false, dh_bits = s.reports.dh_bits or false }
end

--- stack, kind, transport of a recording's name; nil for a name that is not one.
function M.split(name)
  if type(name) ~= "string" then return nil end
  local stack, kind, transport = name:match("^(%w+)%-(%w+)%-(%w+)$")
  if not (kind == "c2s" or kind == "s2s") or not (transport == "starttls" or transport == "direct") then
    return nil
  end
  return stack, kind, transport
end

local prepared, checked = {}, {}  -- by stack: the compilation's outcome, the programs' and checks'

--- Can the client of this recording's name run here? true, or false and why.
function M.available(name)
  local stack, kind, transport = M.split(name)
  if not stack then return false, "not a recording's name (STACK-KIND-TRANSPORT): " .. tostring(name) end
  local s = STACKS[stack]
  if not s then
    return false, stack == "chromium" and "Chromium is not run as a real client" or ("no real client for " .. stack)
  end
  if s.kinds and not s.kinds[kind] then return false, stack .. " has no " .. kind .. " client" end
  if s.transports and not s.transports[transport] then return false, stack .. " has no " .. transport .. " client" end
  if checked[stack] == nil then
    checked[stack] = true
    for _, program in ipairs(s.needs) do
      if checked[stack] == true and not have(program) then checked[stack] = program .. " is not installed" end
    end
    if checked[stack] == true and s.check then checked[stack] = s.check() or true end
  end
  if checked[stack] ~= true then return false, checked[stack] end
  if s.prepare then
    if prepared[stack] == nil or (prepared[stack] == true and not work) then
      prepared[stack] = s.prepare(work_dir())
    end
    if prepared[stack] ~= true then return false, prepared[stack] end
  end
  return true
end

-- The ALPN a recording's client sent (its file), or the one of XMPP on direct TLS.
local function default_alpn(name, s, kind, transport)
  if s.no_alpn then return nil end
  if s.fixed_alpn then return s.fixed_alpn end
  local ok, rec = pcall(function() return require("tlsharden.scan.clients").load(name) end)
  if ok then return rec.alpn end
  if transport ~= "direct" then return nil end
  return kind == "c2s" and "xmpp-client" or "xmpp-server"
end

--- Run cmd under timeout(1) in a new session (its own process group),
-- which is killed when it is done; returns what it printed.
local function run_bounded(cmd, seconds)
  local inner = ("echo PGID $$; exec timeout -k 2 %d sh -c %s"):format(math.ceil(seconds), quote(cmd))
  local p = assert(io.popen(sh.command("setsid sh -c " .. quote(inner) .. " 2>&1 < /dev/null")))
  local out = p:read("*a")
  p:close()
  local pgid = tonumber(out:match("^PGID (%d+)"))
  if pgid and pgid > 1 then sh.exec(("kill -KILL -- -%d 2>/dev/null"):format(pgid)) end
  return (out:gsub("^PGID %d+\n", "")), pgid
end

--- Run the real client of a recording's name against 127.0.0.1. opts:
-- port (required), server_name (SNI and the XMPP host; default
-- "localhost"), alpn (default the recording's; false for none), timeout
-- (seconds, default 10), ca (a PEM file: verify the server's certificate
-- against it and the host name server_name; not for nss and luasec).
-- Returns { ok = true, protocol, suite, group,
-- dh_bits, name, stack, output } (protocol as tlsharden names it, suite as
-- IANA does; group and dh_bits nil where the client does not tell them)
-- or { ok = false, reason, name, stack, output }.
function M.run(name, opts)
  opts = opts or {}
  assert(type(opts.port) == "number", "real_clients.run: opts.port must be a port number")
  local can, why = M.available(name)
  if not can then return { ok = false, reason = "unavailable: " .. why, name = name } end
  local stack, kind, transport = M.split(name)
  local s = STACKS[stack]
  local alpn = opts.alpn
  if alpn == nil then alpn = default_alpn(name, s, kind, transport) end
  if opts.ca and s.no_ca then return { ok = false, reason = "unsupported: " .. s.no_ca, name = name, stack = stack } end
  local c = { stack = stack, kind = kind, transport = transport, port = opts.port,
    server_name = opts.server_name or "localhost", alpn = alpn or nil, ca = opts.ca }
  local out, pgid = run_bounded(s.command(c, work), opts.timeout or 10)
  local r = (s.parse or result_line)(out) or { ok = false, reason = "no result line" }
  r.name, r.stack, r.output, r.pgid = name, stack, out, pgid
  if r.ok then
    local raw_protocol, raw_suite, raw_group = r.protocol, r.suite, r.group
    r.protocol = M.protocol_name(raw_protocol) or raw_protocol
    r.suite = M.suite_name(raw_suite) or raw_suite
    r.group = raw_group and (M.group_name(raw_group) or raw_group) or nil
    r.raw = { protocol = raw_protocol, suite = raw_suite, group = raw_group }
  else
    r.reason = tostring(r.reason):gsub("%s+", " ")
  end
  return r
end

-- ---- limits -----------------------------------------------------------------

-- The sizes tried, smallest first.
M.DH_SIZES = { 1024, 1536, 2048 }  -- OpenSSL 3 serves no DH group under 1024 bits, at any level
M.RSA_SIZES = { 512, 768, 1024, 2048 }
M.OLD_PROTOCOLS = { "tlsv1", "tlsv1_1" }

--- The servers the limits are measured against, each an openssl s_server
-- started when first asked for: "dh<BITS>" (DHE suites only, TLS 1.2, DH
-- parameters of that size), "rsa<BITS>" (a certificate for localhost with
-- an RSA key of that size, issued by a CA with a key of 2048 bits, set.ca;
-- TLS 1.2), "tlsv1", "tlsv1_1" (that version only), all at security
-- level 0. Returns { get = function(key) -> server, stop = function(), ca }.
function M.limit_servers()
  local servers = require "spec.helpers.servers"
  local fx = servers.fixtures()
  local set, running = { fixtures = fx }, {}
  local function dhparam(bits)
    if bits >= 2048 or bits == 1536 then
      local path = fx.dir .. "/dh" .. bits .. ".pem"
      local group = bits == 1536 and "modp_1536" or ("ffdhe" .. bits)
      sh.run(("openssl genpkey -genparam -algorithm DH -pkeyopt group:%s -out %s"):format(group, quote(path)))
      return path
    end
    return fx.dhparam(bits)
  end
  -- the CA of the RSA certificates
  local ca_key, ca = fx.dir .. "/limits-ca.key", fx.dir .. "/limits-ca.crt"
  sh.run(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -subj '/CN=tlsharden limits CA' -days 2"
    .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null"):format(
    quote(ca_key), quote(ca)))
  set.ca = ca
  local function rsa_cert(bits)
    local base = fx.dir .. "/rsa" .. bits
    local ext = base .. ".ext"
    local f = assert(io.open(ext, "w"))
    f:write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
      "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n")
    f:close()
    sh.run(("openssl req -new -newkey rsa:%d -nodes -keyout %s.key -out %s.csr -subj /CN=localhost 2>/dev/null"
      .. " && openssl x509 -req -in %s.csr -CA %s -CAkey %s -set_serial %d -days 2 -sha256 -extfile %s -out %s.crt"
      .. " 2>/dev/null"):format(bits, quote(base), quote(base), quote(base), quote(ca), quote(ca_key), bits,
      quote(ext), quote(base)))
    return { cert = base .. ".crt", key = base .. ".key" }
  end
  -- OpenSSL's configuration for the servers: security level 0 and no
  -- lower bound on the version (Debian's own asks for level 2 and TLS 1.2,
  -- and the level applies before -cipher's @SECLEVEL=0 to the DH parameters)
  local conf = fx.dir .. "/openssl-level0.cnf"
  local f = assert(io.open(conf, "w"))
  f:write("openssl_conf = conf\n[conf]\nssl_conf = ssl\n[ssl]\nsystem_default = system\n[system]\n",
    "CipherString = ALL:@SECLEVEL=0\nMinProtocol = TLSv1\n")
  f:close()
  local function s_server(cert, args)
    return servers.start(("OPENSSL_CONF=%s openssl s_server -accept 127.0.0.1:{port} -cert %s -key %s -www %s"):format(
      quote(conf), quote(cert.cert), quote(cert.key), args), fx.dir)
  end
  function set.get(key)
    if running[key] then return running[key] end
    local bits = tonumber(key:match("%d+$"))
    local server
    if key:find("^dh") then
      server = s_server(fx.rsa, ("-dhparam %s -cipher 'DHE:@SECLEVEL=0' -no_tls1_3"):format(quote(dhparam(bits))))
    elseif key:find("^rsa") then
      server = s_server(rsa_cert(bits), "-cipher 'ALL:@SECLEVEL=0' -no_tls1_3")
    elseif key == "tlsv1" or key == "tlsv1_1" then
      server = s_server(fx.rsa, (key == "tlsv1" and "-tls1" or "-tls1_1") .. " -cipher 'ALL:@SECLEVEL=0'")
    else
      error("real_clients.limit_servers: no server " .. tostring(key))
    end
    running[key] = server
    return server
  end
  function set.stop()
    for _, server in pairs(running) do server.stop() end
    running = {}
    fx.cleanup()
  end
  return set
end

--- Does the client of name complete a handshake with the limit server key
-- ("dh1024", "rsa1024", "tlsv1")? true or false, and the result. opts:
-- timeout, verify (check the certificate against set.ca).
function M.accepts(name, set, key, opts)
  local server = set.get(key)
  local o = { port = server.port, timeout = (opts and opts.timeout) or 15, ca = opts and opts.verify and set.ca or nil }
  local r = M.run(name, o)
  if r.ok and key:find("^dh") and r.dh_bits and r.dh_bits ~= tonumber(key:match("%d+")) then
    error(("%s reports DH %d against the %s server"):format(name, r.dh_bits, key))
  end
  return r.ok, r
end

--- Measure a client's limits against the servers of set:
--   min_dh_bits: the smallest DH size of M.DH_SIZES it accepts; "none" when
--     the recording offers no DHE suite and no DH server lets it in;
--   min_rsa_bits: the smallest RSA key of M.RSA_SIZES it accepts in the
--     server's certificate as it runs in XMPP software: verifying the
--     certificate (against set.ca), or without verification where the
--     handshake goes on whatever it finds (luasec: Prosody) or the
--     program cannot take a CA (nss);
--   min_rsa_bits_unverified: the same with verification off;
--   min_protocol: the oldest of TLS 1.0, 1.1 and 1.2 it completes a
--     handshake with.
-- Returns the fields and the results by server ("rsa1024", and
-- "rsa1024 verified").
function M.measure(name, set, opts)
  local results, fields = {}, {}
  local offers_dhe = false
  local ok, rec = pcall(function() return require("tlsharden.scan.clients").load(name) end)
  if ok then
    for _, id in ipairs(rec.hello.suites) do
      local s = wire.suite(id)
      if s and s.kx == "DHE" then offers_dhe = true end
    end
  end
  for _, bits in ipairs(M.DH_SIZES) do
    local accepted, r = M.accepts(name, set, "dh" .. bits, opts)
    results["dh" .. bits] = r
    if accepted and not fields.min_dh_bits then fields.min_dh_bits = bits end
  end
  if not fields.min_dh_bits then fields.min_dh_bits = offers_dhe and "refused" or "none" end
  local can_verify = not STACKS[M.split(name)].no_ca
  for _, bits in ipairs(M.RSA_SIZES) do
    local accepted, r = M.accepts(name, set, "rsa" .. bits, opts)
    results["rsa" .. bits] = r
    if accepted and not fields.min_rsa_bits_unverified then fields.min_rsa_bits_unverified = bits end
    if can_verify then
      local o = { timeout = opts and opts.timeout, verify = true }
      accepted, r = M.accepts(name, set, "rsa" .. bits, o)
      results["rsa" .. bits .. " verified"] = r
      if accepted and not fields.min_rsa_bits then fields.min_rsa_bits = bits end
    end
  end
  fields.min_rsa_bits_unverified = fields.min_rsa_bits_unverified or "refused"
  if not can_verify then fields.min_rsa_bits = fields.min_rsa_bits_unverified end
  fields.min_rsa_bits = fields.min_rsa_bits or "refused"
  fields.min_protocol = "tlsv1_2"
  for i = #M.OLD_PROTOCOLS, 1, -1 do
    local key = M.OLD_PROTOCOLS[i]
    local accepted, r = M.accepts(name, set, key, opts)
    results[key] = r
    if accepted then fields.min_protocol = key end
  end
  return fields, results
end

return M
