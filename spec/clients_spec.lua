-- The recorded ClientHellos of real TLS stacks (lua/tlsharden/clients/):
-- every one loads and parses and says where it came from, each stack's
-- hello has what is known of that stack, the recorder captures a real
-- openssl s_client over loopback and cleans up after it, and files that
-- are no recording are refused by name.
local clients = require "tlsharden.scan.clients"
local wire = require "tlsharden.wire"
local tlsharden = require "tlsharden"
local errors = require "tlsharden.errors"
local sh = require "spec.helpers.sh"

local STACKS = { "luasec", "openssl", "python", "gnutls", "gio", "nss", "java", "erlang", "chromium", "go", "node" }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function set(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

local function ext_types(hello)
  local t = {}
  for _, e in ipairs(hello.extensions) do t[#t + 1] = e.type end
  return t
end

describe("the recorded ClientHellos", function()
  local all, by_name = clients.all(), {}
  for _, r in ipairs(all) do by_name[r.name] = r end

  it("cover every stack, each for c2s, and the servers' stacks for s2s too", function()
    assert.is_true(#all >= 20, "recordings: " .. #all)
    for _, id in ipairs(STACKS) do
      local found = false
      for _, r in ipairs(all) do
        if r.name:find("^" .. id .. "%-") then found = true end
      end
      assert.is_true(found, "no recording of " .. id)
    end
    for _, name in ipairs { "luasec-s2s-starttls", "luasec-s2s-direct", "openssl-c2s-starttls", "openssl-s2s-starttls",
      "java-c2s-starttls", "java-s2s-starttls", "erlang-s2s-starttls", "erlang-s2s-direct", "nss-c2s-direct",
      "chromium-c2s-direct", "gio-c2s-starttls", "gnutls-c2s-starttls", "python-c2s-starttls", "go-c2s-direct",
      "node-c2s-direct" } do
      assert.is_table(by_name[name], name)
    end
  end)

  it("carry the limits measured with the real client, but Chromium's, which is not run as one", function()
    for _, r in ipairs(all) do
      if r.name:find("^chromium") then
        assert.is_nil(r.min_dh_bits, r.name)
      else
        assert.truthy(r.min_dh_bits == "none" or type(r.min_dh_bits) == "number", r.name)
        assert.is_number(r.min_rsa_bits, r.name)
        assert.is_number(r.min_rsa_bits_unverified, r.name)
        assert.matches("^tlsv1", r.min_protocol)
        assert.matches("^measured %d%d%d%d%-%d%d%-%d%d ", r.limits_source)
      end
    end
    -- what is known of the stacks: Go has no DHE; OpenSSL's security level 2 wants 2048 bits when it verifies
    assert.equal("none", by_name["go-c2s-direct"].min_dh_bits)
    assert.equal(2048, by_name["openssl-c2s-direct"].min_dh_bits)
    assert.equal(2048, by_name["python-c2s-direct"].min_rsa_bits)
    assert.equal("tlsv1_2", by_name["java-c2s-direct"].min_protocol)
  end)

  it("each parse as one whole ClientHello and name their stack, version, software and how they were run", function()
    for _, r in ipairs(all) do
      local h = r.hello
      assert.equal("client_hello", h.outcome, r.name)
      assert.same({}, h.problems, r.name)
      assert.equal(#r.bytes, h.consumed, r.name .. ": bytes after the hello")
      for _, key in ipairs { "library", "version", "software", "command" } do
        assert.is_true(#r[key] > 2, r.name .. ": " .. key)
      end
      assert.matches("^%d%d%d%d%-%d%d%-%d%d$", r.recorded)
      -- the command as one could run it again: the port and the work folder as words
      assert.is_nil(r.command:find("127%.0%.0%.1:%d") or r.command:find("/tmp/", 1, true), r.name .. ": " .. r.command)
      assert.matches("PORT", r.command, 1, true)
      -- the name says kind and transport, the metadata what was sent
      assert.equal(r.name:match("%-(%w+)%-%w+$"), r.kind)
      assert.equal(r.name:match("%-(%w+)$"), r.transport)
      assert.equal(r.sni, h.server_name, r.name .. ": SNI")
      assert.same(r.alpn_list, h.alpn or {}, r.name .. ": ALPN")
      -- placeholders only
      if r.sni then assert.truthy(r.sni == "example.org" or r.sni == "example.net", r.sni) end
      assert.truthy(set(h.protocols).tlsv1_2, r.name .. " offers TLS 1.2")
    end
  end)

  it("send the ALPN of XMPP on direct TLS where the software would, and none over STARTTLS but Prosody's", function()
    for _, r in ipairs(all) do
      local alpn = r.hello.alpn
      local stack = r.name:match("^(%w+)")
      if r.transport == "direct" and stack ~= "nss" and stack ~= "chromium" then
        assert.same({ r.kind == "c2s" and "xmpp-client" or "xmpp-server" }, alpn, r.name)
      elseif r.transport == "starttls" and stack ~= "luasec" then
        assert.is_nil(alpn, r.name)
      end
    end
    -- Prosody 0.12 sets ALPN on its s2sout context, which STARTTLS uses too
    assert.same({ "xmpp-server" }, by_name["luasec-s2s-starttls"].hello.alpn)
  end)

  it("differ between STARTTLS and direct TLS of one stack only in SNI and ALPN", function()
    for _, r in ipairs(all) do
      local direct = by_name[r.name:gsub("%-starttls$", "-direct")]
      if r.transport == "starttls" and direct then
        assert.same(direct.hello.suites, r.hello.suites, r.name)
        assert.same(direct.hello.groups, r.hello.groups, r.name)
        assert.same(direct.hello.signature_algorithms, r.hello.signature_algorithms, r.name)
      end
    end
  end)

  it("carry GREASE only in Chromium's", function()
    for _, r in ipairs(all) do
      assert.equal(r.name:find("^chromium") ~= nil, r.hello.grease, r.name)
    end
  end)

  it("Prosody 0.12's s2s (LuaSec): TLS 1.3 and 1.2, the suites of its default profile (intermediate), no SNI over STARTTLS", function()
    local starttls, direct = by_name["luasec-s2s-starttls"], by_name["luasec-s2s-direct"]
    assert.matches("LuaSec", starttls.library)
    assert.matches("Prosody 0.12", starttls.software)
    assert.same({ "tlsv1_3", "tlsv1_2" }, starttls.hello.protocols)
    assert.is_nil(starttls.hello.server_name)
    assert.equal("example.net", direct.hello.server_name)
    local tls12 = {}
    for _, id in ipairs(direct.hello.suites) do
      local s = wire.suite(id)
      if not s.scsv and not s.tls13 then
        assert.is_true(s.fs and s.aead, s.name)
        tls12[#tls12 + 1] = s.name
      end
    end
    assert.same(tlsharden.profile("intermediate").ciphers, tls12)
  end)

  it("Java 17 (SunJSSE): TLS 1.3 and 1.2 only, FFDHE groups, key shares for x25519 and secp256r1", function()
    for _, name in ipairs { "java-c2s-starttls", "java-c2s-direct", "java-s2s-starttls", "java-s2s-direct" } do
      local h = by_name[name].hello
      assert.same({ "tlsv1_3", "tlsv1_2" }, h.protocols, name)
      assert.truthy(set(h.group_names).ffdhe2048, name)
      assert.same({ 29, 23 }, h.key_share_groups, name)
    end
    assert.matches("17%.", by_name["java-c2s-direct"].version)
  end)

  it("NSS and Chromium, two browsers' stacks, send different hellos", function()
    local nss, chromium = by_name["nss-c2s-direct"].hello, by_name["chromium-c2s-direct"].hello
    assert.are_not.same(nss.suites, chromium.suites)
    assert.are_not.same(set(ext_types(nss)), set(ext_types(chromium)))
    assert.is_false(nss.grease)
    assert.is_true(chromium.grease)
    -- Chromium: a post-quantum hybrid key share, HTTP's ALPN
    assert.truthy(set(chromium.group_names).X25519MLKEM768 or set(chromium.group_names).X25519Kyber768Draft00)
    assert.same({ "h2", "http/1.1" }, chromium.alpn)
    assert.matches("Conscrypt", by_name["chromium-c2s-direct"].software .. by_name["chromium-c2s-direct"].note)
    -- NSS: FFDHE groups, TLS 1.3 down to 1.0 by default
    assert.truthy(set(nss.group_names).ffdhe2048)
  end)

  it("GnuTLS and GIO (its GnuTLS backend here) offer the same suites, with two key shares", function()
    local gnutls, gio = by_name["gnutls-c2s-direct"].hello, by_name["gio-c2s-direct"].hello
    assert.same(gnutls.suites, gio.suites)
    assert.same(gnutls.groups, gio.groups)
    assert.same({ 23, 29 }, gnutls.key_share_groups)
  end)

  it("the OpenSSL family: s_client and Python's default context offer the same suites; Go and Erlang their own", function()
    assert.same(by_name["openssl-c2s-direct"].hello.suites, by_name["python-c2s-direct"].hello.suites)
    local go, erlang = by_name["go-c2s-direct"].hello, by_name["erlang-c2s-direct"].hello
    assert.same({ "tlsv1_3", "tlsv1_2" }, go.protocols)
    assert.is_nil(set(go.group_names).ffdhe2048)
    assert.same({ "tlsv1_3", "tlsv1_2" }, erlang.protocols)
    assert.are_not.same(go.suites, erlang.suites)
    assert.matches("MongooseIM", by_name["erlang-s2s-starttls"].software)
    assert.matches("ejabberd", by_name["openssl-s2s-starttls"].software)
  end)

  it("are all named in the index, and the rockspec installs each with the index", function()
    local files = {}
    for _, f in ipairs(sh.lines("ls " .. sh.quote(clients.dir()))) do
      local name = f:match("^(.+)%.hello$")
      if name then files[#files + 1] = name end
    end
    table.sort(files)
    local names = clients.names()
    table.sort(names)
    assert.same(files, names)
    local env = {}
    assert(load(read("tlsharden-scm-1.rockspec"), "rockspec", "t", env))()
    local installed = {}
    for key, path in pairs(env.build.install.lua) do
      assert.equal("tlsharden.clients.", key:sub(1, 18))
      installed[path] = true
    end
    assert.is_true(installed["lua/tlsharden/clients/index"])
    for _, name in ipairs(files) do
      assert.is_true(installed["lua/tlsharden/clients/" .. name .. ".hello"] == true, name .. " is not installed")
    end
  end)
end)

describe("the recorder", function()
  local tmp
  before_each(function() tmp = sh.run("mktemp -d"):gsub("%s+$", "") end)
  after_each(function() sh.run("rm -rf " .. sh.quote(tmp)) end)

  -- the recorder run by this Lua, with this checkout's modules and core
  local function record(args)
    local v = _VERSION:match("%d+%.%d+")
    local vu = v:gsub("%.", "_")
    local build = v == "5.4" and "./build" or "./build/" .. v
    return sh.exec(("LUA_PATH_%s='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_%s='%s/?.so;;' timeout 120 lua%s"
      .. " scripts/record-hellos.lua --out %s %s"):format(vu, vu, build, v, sh.quote(tmp), args))
  end

  it("captures a real openssl s_client over loopback (STARTTLS and direct), stops it and closes the listener", function()
    local ok, out = record("--timeout 20 --verbose openssl-c2s-starttls openssl-c2s-direct")
    assert.is_true(ok, out)
    assert.matches("recorded openssl%-c2s%-starttls", out)
    assert.matches("recorded openssl%-c2s%-direct", out)
    local got = clients.all(tmp)
    assert.equal(2, #got)
    for _, r in ipairs(got) do
      assert.equal("client_hello", r.hello.outcome)
      assert.equal("example.org", r.hello.server_name)
      assert.matches("^OpenSSL ", r.version)
    end
    assert.same({ "xmpp-client" }, clients.load("openssl-c2s-direct", tmp).hello.alpn)
    -- each run's client is gone and its listener closed
    local runs = 0
    for pid, port in out:gmatch("client pid (%d+) on port (%d+)") do
      runs = runs + 1
      assert.is_false(os.execute("kill -0 " .. pid .. " 2>/dev/null") == true, "client " .. pid .. " still runs")
      local socket = require "socket"
      local c = socket.tcp()
      c:settimeout(2)
      assert.is_nil(c:connect("127.0.0.1", tonumber(port)), "the listener on " .. port .. " still accepts")
      c:close()
    end
    assert.equal(2, runs)
    -- the same machine's hello as the one in the repository, where the versions agree
    local kept = clients.load("openssl-c2s-starttls")
    local fresh = clients.load("openssl-c2s-starttls", tmp)
    if kept.version == fresh.version then
      assert.same(kept.hello.suites, fresh.hello.suites)
      assert.same(ext_types(kept.hello), ext_types(fresh.hello))
    end
  end)

  it("refuses a name it does not know, and lists the ones it knows", function()
    local ok, out = record("no-such-client")
    assert.is_false(ok)
    assert.matches("no client no%-such%-client", out)
    ok, out = record("--list")
    assert.is_true(ok, out)
    for _, name in ipairs(clients.names()) do assert.matches(name:gsub("%p", "%%%0"), out) end
  end)
end)

describe("recordings that are not right", function()
  local tmp, good
  setup(function()
    tmp = sh.run("mktemp -d"):gsub("%s+$", "")
    good = read(clients.dir() .. "/openssl-c2s-direct.hello")
  end)
  teardown(function() sh.run("rm -rf " .. sh.quote(tmp)) end)

  local function refused(text, pattern, name)
    name = name or "openssl-c2s-direct"
    local path = tmp .. "/" .. name .. ".hello"
    write(path, text)
    local ok, err = pcall(clients.load, name, tmp)
    assert.is_false(ok)
    assert.is_true(errors.is(err, "input"), tostring(err))
    assert.matches(path, tostring(err), 1, true)
    if pattern then assert.matches(pattern, tostring(err), 1, true) end
    return err
  end

  it("are refused with an error naming the file", function()
    refused(good:gsub("\nhello: (%x%x)", "\nhello: zz", 1), "not hex")
    refused(good:gsub("\nlibrary: [^\n]*", ""), "names no library")
    refused(good:gsub("\nversion: [^\n]*", "\nversion:"), "names no version")
    refused(good:gsub("\nhello: [^\n]*", ""), "holds no ClientHello")
    refused(good:gsub("\nkind: c2s", "\nkind: both"), "kind 'both'")
    refused(good .. "what is this\n", "not a 'key: value' line")
    refused(good .. "colour: blue\n", "unknown key 'colour'")
    refused(good .. "library: again\n", "library appears twice")
    refused(good, "it names itself 'openssl-c2s-direct'", "another-name")
    refused("\0\1\2\255", "not a 'key: value' line")
    refused(good:gsub("\nmin_dh_bits: [^\n]*", "\nmin_dh_bits: lots"), "min_dh_bits 'lots' is neither a number of bits nor 'none'")
    refused(good:gsub("\nmin_rsa_bits: [^\n]*", "\nmin_rsa_bits: -1"), "min_rsa_bits '-1' is neither")
    refused(good:gsub("\nmin_protocol: [^\n]*", "\nmin_protocol: tls2"), "min_protocol 'tls2' is none of")
  end)

  it("are refused when the hello is cut short or is no hello, naming the file", function()
    local hex = {}
    for v in good:gmatch("\nhello: (%x+)") do hex[#hex + 1] = v end
    local all_hex = table.concat(hex)
    local head = good:gsub("\nhello: [^\n]*", "")
    refused(head .. "hello: " .. all_hex:sub(1, 200) .. "\n", "does not parse (incomplete")
    refused(head .. "hello: 474554202f20485454502f312e310d0a\n", "does not parse (not_tls")
  end)

  it("the parser names what it found instead of a hello: another record, another message, SSLv2", function()
    local h = wire.parse_client_hello("\22\3\1\0\2\1\0" .. "\23\3\3\0\1\0")
    assert.equal("malformed", h.outcome)
    assert.matches("record #2: type 23, version 0x0303", h.problems[1].message, 1, true)
    h = wire.parse_client_hello("\22\3\3\0\4\2\0\0\0")
    assert.same({ "malformed", "UNEXPECTED_MESSAGE" }, { h.outcome, h.problems[1].code })
    h = wire.parse_client_hello("\128\46\1\0\2")
    assert.same({ "sslv2", "SSLV2_HELLO" }, { h.outcome, h.problems[1].code })
    -- one hello over two records, as a large hello comes
    local r = clients.load("chromium-c2s-direct")
    local msg = r.bytes:sub(6)
    local split = "\22\3\1\0\100" .. msg:sub(1, 100)
      .. "\22\3\1" .. string.char(math.floor((#msg - 100) / 256), (#msg - 100) % 256) .. msg:sub(101)
    h = wire.parse_client_hello(split)
    assert.same({ "client_hello", 2, #split }, { h.outcome, h.records, h.consumed })
    assert.same(r.hello.suites, h.suites)
  end)

  it("the parser reads every prefix and every corruption of each recording as data, never raising", function()
    for _, r in ipairs(clients.all()) do
      for i = 0, #r.bytes - 1, 7 do
        local h = wire.parse_client_hello(r.bytes:sub(1, i))
        assert.equal("incomplete", h.outcome)
        assert.is_true(h.need > 0)
      end
      for i = 6, #r.bytes, 11 do
        local b = r.bytes:sub(1, i - 1) .. string.char((r.bytes:byte(i) + 97) % 256) .. r.bytes:sub(i + 1)
        local h = wire.parse_client_hello(b)
        assert.is_string(h.outcome)
      end
    end
  end)

  it("are refused where the folder has no index, or asked for by a name that is no name", function()
    local ok, err = pcall(clients.names, tmp .. "/nowhere")
    assert.is_false(ok)
    assert.is_true(errors.is(err, "input"))
    assert.matches(tmp .. "/nowhere/index", tostring(err), 1, true)
    ok, err = pcall(clients.load, "../secrets")
    assert.is_false(ok)
    assert.is_true(errors.is(err, "argument"), tostring(err))
    ok, err = pcall(clients.read, 42)
    assert.is_true(errors.is(err, "argument"), tostring(err))
  end)
end)
