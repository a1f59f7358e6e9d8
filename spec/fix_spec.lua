-- tlsharden fix: the smallest edit after which the audit of a Prosody
-- configuration finds no error a setting causes, placed in the file and
-- table where Prosody reads the setting, every other byte kept. The fixed
-- texts are audited again here; spec/fix_serves_spec.lua serves them with
-- a real Prosody and scans them.
local tlsharden = require "tlsharden"
local diff = require "tlsharden.diff"
local source = require "tlsharden.prosody.source"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local cli = require "spec.helpers.cli"

local dir, ca

-- A configuration file in a directory of its own, with certificates for
-- its hosts in certs/ (signed by the run's CA).
local function config(text, files)
  files = files or {}
  local d = pki.tmpdir()
  sh.run("mkdir -p " .. sh.quote(d .. "/certs"))
  for _, host in ipairs { "example.org", "chat.example.org", "legacy.example.net", "conference.example.org" } do
    local leaf = pki.cert(dir, host .. "-" .. tostring(math.random(1, 1e9)), { issuer = ca, cn = host,
      san = { "DNS:" .. host } })
    sh.run(("cp %s %s/certs/%s.crt && cp %s %s/certs/%s.key"):format(sh.quote(leaf.cert), sh.quote(d), host,
      sh.quote(leaf.key), sh.quote(d), host))
  end
  for name, t in pairs(files or {}) do pki.write(d .. "/" .. name, t) end
  pki.write(d .. "/prosody.cfg.lua", text)
  return d, d .. "/prosody.cfg.lua"
end

local HEAD = [[
-- The server's own settings.
admins = { "admin@example.org" }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping" }
certificates = "certs"
]]

-- Every error the audit finds in a report, as "CODE" strings.
local function errors_of(report)
  local out = {}
  local function add(list) for _, p in ipairs(list or {}) do if p.severity == "error" then out[#out + 1] = p.code end end end
  add(report.problems)
  for _, h in ipairs(report.hosts) do
    add(h.problems)
    for _, s in ipairs(h.services) do add(s.problems) end
  end
  for _, s in ipairs(report.ports or {}) do add(s.problems) end
  return out
end

-- The grades of every reached service.
local function grades(report)
  local out = {}
  for _, h in ipairs(report.hosts) do
    for _, s in ipairs(h.services) do
      if s.reached ~= false then out[h.host .. " " .. s.label] = s.grade and s.grade.grade end
    end
  end
  for _, s in ipairs(report.ports or {}) do out[s.label] = s.grade and s.grade.grade end
  return out
end

-- The fixed text of the one file a fix changed.
local function fixed(result, path)
  for _, f in ipairs(result.files) do if f.path == path then return f.after end end
end

-- Whether every line of a that the diff does not remove is in b, in order.
local function kept(a, b)
  local d = diff.unified(a, b, "a", "b")
  local removed = {}
  for line in d:gmatch("([^\n]*)\n") do
    if line:sub(1, 1) == "-" and line:sub(1, 3) ~= "---" then removed[line:sub(2)] = true end
  end
  local bl = {}
  for line in (b .. "\n"):gmatch("([^\n]*)\n") do bl[#bl + 1] = line end
  local j = 1
  for line in (a .. "\n"):gmatch("([^\n]*)\n") do
    if not removed[line] then
      while j <= #bl and bl[j] ~= line do j = j + 1 end
      if j > #bl then return false, line end
      j = j + 1
    end
  end
  return true
end

local function fix(path, opts)
  opts = opts or {}
  opts.cafile = opts.cafile or ca.cert
  opts.prosody = opts.prosody or "0.12"
  return tlsharden.fix(path, opts)
end

local function audit(path, text, version)
  return tlsharden.audit(text, { text = true, name = path, cafile = ca.cert, prosody = version or "0.12",
    clients = false })
end

describe("tlsharden.fix", function()
  setup(function()
    dir = pki.tmpdir()
    ca = pki.cert(dir, "ca", { ca = true, cn = "tlsharden fix test CA" })
  end)
  teardown(function() pki.cleanup(dir) end)

  it("fixes the bundled example: the blog post's block and the policy options, comments and layout kept", function()
    local f = assert(io.open("examples/prosody.cfg.lua"))
    local text = f:read("*a")
    f:close()
    local d, path = config(text)
    local r = fix(path)
    assert.equal(1, #r.files)
    local after = fixed(r, path)
    assert.truthy(after:find('protocol = "tlsv1_2+";', 1, true))
    assert.falsy(after:find("ciphers =", 1, true))
    assert.falsy(after:find("depth = 1", 1, true))
    assert.truthy(after:find('options = { "no_sslv2" };', 1, true))
    assert.truthy(after:find("\tallow_unencrypted_plain_auth = false", 1, true))
    assert.truthy(after:find("\ns2s_secure_auth = true\n", 1, true))
    assert.truthy(after:find("-- Copied from an old blog post.", 1, true))
    assert.is_true((kept(text, after)))
    -- the old file has errors, the fixed one none, and every service A+
    assert.is_true(#errors_of(audit(path, text)) > 0)
    local report = audit(path, after)
    assert.same({}, errors_of(report))
    for label, g in pairs(grades(report)) do assert.equal("A+", g, label) end
    assert.equal("B", r.grade.before)
    assert.equal("A+", r.grade.after)
    assert.same({}, r.left)
    -- each change says where, what and why
    for _, c in ipairs(r.changes) do
      assert.equal(path, c.file)
      assert.is_number(c.line)
      assert.is_string(c.reason)
      assert.is_true(c.before ~= nil or c.after ~= nil)
    end
    pki.cleanup(d)
  end)

  it("changes nothing where the audit finds nothing", function()
    local d, path = config(HEAD .. 'VirtualHost "example.org"\n')
    local r = fix(path)
    -- only s2s_secure_auth (a warning of the audit, an exception list away)
    assert.equal(1, #r.changes)
    assert.equal("s2s_secure_auth", r.changes[1].setting)
    local again = fix(path, {})
    assert.equal(1, #again.files)
    pki.write(path, fixed(r, path))
    local third = fix(path)
    assert.same({}, third.files)
    assert.same({}, third.changes)
    pki.cleanup(d)
  end)

  it("puts a new policy option after the others, before the first VirtualHost", function()
    local text = HEAD .. "c2s_require_encryption = true\n\n-- hosts\nVirtualHost \"example.org\"\n"
    local d, path = config(text)
    local after = fixed(fix(path), path)
    assert.truthy(after:find("c2s_require_encryption = true\ns2s_secure_auth = true\n\n-- hosts\n", 1, true))
    pki.cleanup(d)
  end)

  it("edits a global block, removes a risky option from its list and keeps paths", function()
    local text = HEAD .. table.concat({
      "s2s_secure_auth = true",
      "ssl = {",
      "  protocol = \"tlsv1_2+\"; -- the profile's floor",
      "  options = { \"no_ticket\", \"no_tlsv1_3\", \"no_compression\" },",
      "  ciphers = \"HIGH:MEDIUM:!aNULL:@SECLEVEL=0\",",
      "  cafile = \"/etc/ssl/certs/ca-certificates.crt\",",
      "}",
      "VirtualHost \"example.org\"",
    }, "\n") .. "\n"
    local d, path = config(text)
    local r = fix(path)
    local after = fixed(r, path)
    assert.truthy(after:find('protocol = "tlsv1_2+"; -- the profile\'s floor', 1, true))
    assert.truthy(after:find('options = { "no_ticket", "no_compression" },', 1, true))
    assert.falsy(after:find("ciphers", 1, true))
    assert.truthy(after:find('cafile = "/etc/ssl/certs/ca-certificates.crt",', 1, true))
    assert.same({}, errors_of(audit(path, after)))
    pki.cleanup(d)
  end)

  it("keeps a setting stricter than the profile, and what it makes harmless", function()
    -- TLS 1.3 only: the weak TLS 1.2 suites can never be served
    local text = HEAD .. "s2s_secure_auth = true\nssl = { protocol = \"tlsv1_3\", ciphers = \"HIGH:MEDIUM\" }\n"
      .. "VirtualHost \"example.org\"\n"
    local d, path = config(text)
    local r = fix(path)
    assert.same({}, r.files)
    assert.same({}, r.left)
    pki.cleanup(d)
  end)

  it("edits the Included file where the setting lives, and leaves the main file alone", function()
    local inc = "-- TLS from an old tutorial\nssl = { protocol = \"tlsv1+\"; ciphers = \"HIGH:MEDIUM:!aNULL:@SECLEVEL=0\" }\n"
    local text = HEAD .. "s2s_secure_auth = true\nInclude \"tls.cfg.lua\"\nVirtualHost \"example.org\"\n"
    local d, path = config(text, { ["tls.cfg.lua"] = inc })
    local r = fix(path)
    assert.equal(1, #r.files)
    assert.equal(d .. "/tls.cfg.lua", r.files[1].path)
    assert.equal("-- TLS from an old tutorial\nssl = { protocol = \"tlsv1_2+\"; }\n", r.files[1].after)
    for _, c in ipairs(r.changes) do assert.equal(d .. "/tls.cfg.lua", c.file) end
    pki.cleanup(d)
  end)

  it("fixes a VirtualHost's own block, a Component's, a port's block and the policy of one host", function()
    local text = HEAD .. table.concat({
      "s2s_secure_auth = true",
      "c2s_direct_tls_ports = { 5223 }",
      "c2s_direct_tls_ssl = {",
      "\t[5223] = { protocol = \"tlsv1_1+\", ciphers = \"HIGH:!aNULL:@SECLEVEL=0\" };",
      "}",
      "VirtualHost \"example.org\"",
      "\tc2s_require_encryption = false",
      "\tssl = { options = { no_compression = false } }",
      "Component \"conference.example.org\" \"muc\"",
      "\tssl = {",
      "\t\tprotocol = \"tlsv1+\",",
      "\t\tciphers = \"ALL:@SECLEVEL=0\"",
      "\t}",
    }, "\n") .. "\n"
    local d, path = config(text)
    local r = fix(path)
    local after = fixed(r, path)
    assert.truthy(after:find('\t[5223] = { protocol = "tlsv1_2+", };\n', 1, true))
    assert.truthy(after:find("\tc2s_require_encryption = true\n", 1, true))
    assert.truthy(after:find("\tssl = { options = { } }\n", 1, true))
    assert.truthy(after:find('\tssl = {\n\t\tprotocol = "tlsv1_2+",\n\t}\n', 1, true))
    local report = audit(path, after)
    assert.same({}, errors_of(report))
    for label, g in pairs(grades(report)) do assert.equal("A+", g, label) end
    assert.is_true((kept(text, after)))
    pki.cleanup(d)
  end)

  it("sets an old tls_profile to the one it aims for (intermediate, or --profile modern)", function()
    local text = HEAD .. "s2s_secure_auth = true\ntls_profile = \"old\"\nVirtualHost \"example.org\"\n"
    local d, path = config(text)
    local after = fixed(fix(path), path)
    assert.truthy(after:find('\ntls_profile = "intermediate"\n', 1, true))
    assert.same({}, errors_of(audit(path, after)))
    local modern = fixed(fix(path, { profile = "modern" }), path)
    assert.truthy(modern:find('\ntls_profile = "modern"\n', 1, true))
    local report = audit(path, modern)
    for _, h in ipairs(report.hosts) do
      for _, s in ipairs(h.services) do
        if s.context then assert.same({ "tlsv1_3" }, s.context.served or s.context.versions) end
      end
    end
    pki.cleanup(d)
  end)

  it("writes the hardened profile into the global block (--profile hardened)", function()
    local text = HEAD .. "s2s_secure_auth = true\nssl = {\n\tprotocol = \"tlsv1+\";\n}\nVirtualHost \"example.org\"\n"
    local d, path = config(text)
    local r = fix(path, { profile = "hardened" })
    local after = fixed(r, path)
    assert.truthy(after:find('\tprotocol = "tlsv1_2+";\n', 1, true))
    assert.truthy(after:find('\tciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:', 1, true))
    assert.truthy(after:find('\tcurveslist = { "X25519", "prime256v1", "secp384r1" };\n}', 1, true))
    local report = audit(path, after)
    assert.same({}, errors_of(report))
    for label, g in pairs(grades(report)) do assert.equal("A+", g, label) end
    -- without a global block it writes one
    local d2, path2 = config(HEAD .. "s2s_secure_auth = true\nVirtualHost \"example.org\"\n")
    local after2 = fixed(fix(path2, { profile = "hardened" }), path2)
    assert.truthy(after2:find('\nssl = {\n\tprotocol = "tlsv1_2+";\n\tciphers = "ECDHE', 1, true))
    assert.same({}, errors_of(audit(path2, after2)))
    pki.cleanup(d)
    pki.cleanup(d2)
  end)

  it("keeps Windows line ends and removes whole lines cleanly", function()
    local text = (HEAD .. "s2s_secure_auth = true\nssl = {\n\tprotocol = \"tlsv1+\";\n\tdepth = 0;\n}\n"
      .. "VirtualHost \"example.org\"\n"):gsub("\n", "\r\n")
    local d, path = config(text)
    local after = fixed(fix(path), path)
    assert.truthy(after:find('\r\nssl = {\r\n\tprotocol = "tlsv1_2+";\r\n}\r\n', 1, true))
    assert.falsy(after:find("\n", 1, true) and after:gsub("\r\n", ""):find("\n", 1, true))
    pki.cleanup(d)
  end)

  it("lists what no setting can solve (a host without a certificate) and changes nothing for it", function()
    local d, path = config(HEAD .. "s2s_secure_auth = true\nVirtualHost \"nocert.example.com\"\n")
    local r = fix(path)
    assert.same({}, r.files)
    local codes = {}
    for _, l in ipairs(r.left) do codes[l.code] = true end
    assert.is_true(codes.NO_CERTIFICATE)
    pki.cleanup(d)
  end)

  it("refuses, naming the place, what it cannot edit: a block that is not a table, Prosody 13's :append", function()
    local d, path = config(HEAD .. "s2s_secure_auth = true\nlocal weak = { protocol = \"tlsv1+\" }\nssl = weak\n"
      .. "VirtualHost \"example.org\"\n")
    local ok, err = pcall(fix, path)
    assert.is_false(ok)
    assert.equal("input", err.kind)
    assert.truthy(err.message:find("cannot place the change of protocol in global ssl", 1, true))
    assert.truthy(err.message:find("is not written as a table", 1, true))
    local d2, path2 = config(HEAD .. "s2s_secure_auth = true\nssl = { }\nssl:append { protocol = \"tlsv1+\" }\n"
      .. "VirtualHost \"example.org\"\n")
    ok, err = pcall(fix, path2, { prosody = "13" })
    assert.is_false(ok)
    assert.truthy(err.message:find(":append", 1, true))
    pki.cleanup(d)
    pki.cleanup(d2)
  end)

  it("rejects bad input with a clear error", function()
    local ok, err = pcall(tlsharden.fix, 42)
    assert.is_false(ok)
    assert.truthy(err.message:find("tlsharden.fix: bad argument #1 'path'", 1, true))
    ok, err = pcall(tlsharden.fix, "/nonexistent/prosody.cfg.lua")
    assert.is_false(ok)
    assert.truthy(err.message:find("cannot read", 1, true))
    ok, err = pcall(tlsharden.fix, "examples/prosody.cfg.lua", { profile = "old" })
    assert.is_false(ok)
    assert.truthy(err.message:find("profile", 1, true))
    assert.truthy(err.message:find("TLS 1.0", 1, true))
    ok, err = pcall(tlsharden.fix, "examples/prosody.cfg.lua", { bogus = true })
    assert.is_false(ok)
    assert.truthy(err.message:find("bogus", 1, true))
  end)
end)

describe("tlsharden fix (the command)", function()
  setup(function()
    dir = pki.tmpdir()
    ca = pki.cert(dir, "ca", { ca = true, cn = "tlsharden fix test CA" })
  end)
  teardown(function() pki.cleanup(dir) end)

  it("prints a unified diff that patch applies, and why on stderr; exit 1", function()
    local f = assert(io.open("examples/prosody.cfg.lua"))
    local text = f:read("*a")
    f:close()
    local d, path = config(text)
    local code, out, err = cli.run("fix", path, "--cafile", ca.cert, "--prosody", "0.12")
    assert.equal(1, code)
    assert.truthy(out:find("--- " .. path .. "\n+++ " .. path .. "\n@@ ", 1, true))
    assert.truthy(err:find("grade B -> A+", 1, true))
    assert.truthy(err:find("lowers the minimum version from TLS 1.2 to SSL 3.0", 1, true))
    assert.truthy(err:find("nothing written", 1, true))
    assert.equal(text, pki.read(path))
    pki.write(d .. "/fix.diff", out)
    sh.run(("cd %s && patch -s prosody.cfg.lua < fix.diff"):format(sh.quote(d)))
    local r = fix(path)
    assert.same({}, r.files)
    pki.cleanup(d)
  end)

  it("prints JSON with the changes, what is left and each file's diff", function()
    local d, path = config(HEAD .. 'VirtualHost "example.org"\n\tssl = { protocol = "sslv23" }\n')
    local code, out = cli.run("--json", "fix", path, "--cafile", ca.cert, "--prosody", "0.12")
    assert.equal(1, code)
    local doc = require("cjson").decode(out)
    assert.equal("fix", doc.command)
    assert.equal(path, doc.files[1].path)
    assert.truthy(doc.files[1].diff:find('+\tssl = { protocol = "tlsv1_2+" }', 1, true))
    assert.is_false(doc.written)
    local settings = {}
    for _, c in ipairs(doc.changes) do settings[c.setting] = c end
    assert.truthy(settings.protocol)
    assert.equal("VirtualHost example.org ssl", settings.protocol.layer)
    pki.cleanup(d)
  end)

  it("exits 2 and writes nothing on a file that does not load", function()
    local d, path = config(HEAD .. "ssl = { protocol = \n")
    local code, _, err = cli.run("fix", path, "--write")
    assert.equal(2, code)
    assert.truthy(err:find("prosody.cfg.lua", 1, true))
    pki.cleanup(d)
  end)
end)

describe("the configuration source reader", function()
  it("finds the span of an assignment's value and a table's fields", function()
    local text = 'a = 1\nssl = { protocol = "x"; [5223] = { y = f(1, {2}) }, "item", k = a .. "b" }\n'
    local toks = assert(source.tokens(text))
    local idx = source.find_assignment(text, toks, 2, "ssl")
    assert.equal("ssl", toks[idx].value)
    local fields, close = source.fields(toks, idx + 2)
    assert.equal("}", toks[close].value)
    assert.equal(4, #fields)
    assert.equal("protocol", fields[1].key)
    assert.equal(5223, fields[2].key)
    assert.equal(1, fields[3].key)
    assert.equal("k", fields[4].key)
    assert.equal('a .. "b"', text:sub(toks[fields[4].value_first].s, toks[fields[4].value_last].e))
    -- strings, comments and long brackets are single tokens or skipped
    local t2 = assert(source.tokens('x = [==[ a ]] ]==] -- c\n--[[ long\n]] y = "q\\"" '))
    assert.equal(6, #t2)
    assert.is_nil(source.tokens('x = "open'))
  end)

  it("diffs as diff -u does", function()
    local a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
    local b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n12\n13"
    local da, db = pki.tmpdir(), nil
    pki.write(da .. "/a", a)
    pki.write(da .. "/b", b)
    local _, want = sh.exec(("cd %s && diff -u a b | tail -n +3"):format(sh.quote(da)))
    local got = diff.unified(a, b, "a", "b"):gsub("^[^\n]*\n[^\n]*\n", "")
    assert.equal(want, got)
    assert.equal("", diff.unified(a, a, "a", "a"))
    pki.cleanup(da)
    db = nil
  end)
end)
