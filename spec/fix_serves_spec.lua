-- What tlsharden fix writes is what Prosody then serves: a weak
-- configuration served by a real Prosody 0.12 and 13 is scanned, fixed
-- with `tlsharden fix --write` (checked by that version's own prosodyctl),
-- served again and scanned again; every service then grades A+ and serves
-- TLS 1.2 and 1.3 only, as the audit of the fixed file says. Tagged #truth:
-- a verdict compared with a real peer's; the release suite runs it.
local tlsharden = require "tlsharden"
local prosody = require "spec.helpers.prosody"
local pki = require "spec.helpers.pki"
local cli = require "spec.helpers.cli"

-- The weak settings, as an admin keeps them in a file of their own.
local WEAK = table.concat({
  "-- TLS settings from an old tutorial, for old clients",
  "ssl = {",
  "\tprotocol = \"tlsv1+\"; -- TLS 1.0 and later",
  "\tciphers = \"HIGH:MEDIUM:!aNULL:@SECLEVEL=0\";",
  "\toptions = { \"no_ticket\" };",
  "}",
  "c2s_require_encryption = false",
  "allow_unencrypted_plain_auth = true",
}, "\n") .. "\n"

local PORTS = {
  { service = "c2s", port = "c2s", starttls = "c2s" },
  { service = "s2s_in", port = "s2s", starttls = "s2s" },
  { service = "c2s_direct_tls", port = "c2s_direct_tls", starttls = "none" },
}

local function scan(server, p)
  local r = tlsharden.scan("127.0.0.1:" .. server.ports[p.port], { starttls = p.starttls, xmpphost = "localhost",
    cafile = server.ca, timeout = 5, clients = false })
  local e = r.endpoints[1]
  assert.equal("ok", e.status, p.service .. ": " .. tostring(e.reason))
  return e
end

prosody.each_version(describe, pending, "#truth tlsharden fix --write, then served by Prosody", function(v)
  it("serves A+ with TLS 1.2 and 1.3 only, as the audit of the fixed file says", function()
    local server = prosody.start { version = v.name, key_kind = "rsa2048", include = WEAK }
    local ok, err = pcall(function()
      -- before: TLS 1.0 served
      local before = scan(server, PORTS[1])
      assert.truthy(before.probe.versions[1] == "tlsv1", "TLS 1.0 served before the fix")
      local code, _, stderr = cli.run("fix", server.config, "--write", "--prosody", v.name, "--cafile", server.ca,
        "--prosodyctl", v.prosodyctl)
      assert.equal(0, code, stderr)
      assert.truthy(stderr:find("written: " .. server.dir .. "/included.cfg.lua", 1, true), stderr)
      assert.truthy(stderr:find("checked by " .. v.prosodyctl, 1, true), stderr)
      -- the included file was edited in place, a backup kept, comments kept
      local text = pki.read(server.dir .. "/included.cfg.lua")
      assert.equal(WEAK, pki.read(server.dir .. "/included.cfg.lua.bak"))
      assert.truthy(text:find("-- TLS settings from an old tutorial, for old clients\n", 1, true))
      assert.truthy(text:find('\tprotocol = "tlsv1_2+"; -- TLS 1.0 and later\n', 1, true))
      assert.truthy(text:find("c2s_require_encryption = true\n", 1, true))
      assert.truthy(text:find("allow_unencrypted_plain_auth = false\n", 1, true))
      assert.falsy(text:find("ciphers", 1, true))
      server.restart()
      local report = tlsharden.audit(server.config, { cafile = server.ca, prosody = v.name, clients = false })
      local audited = {}
      for _, h in ipairs(report.hosts) do
        if h.host == "localhost" then
          for _, s in ipairs(h.services) do audited[s.service] = s end
        end
      end
      for _, p in ipairs(PORTS) do
        local e = scan(server, p)
        local a = assert(audited[p.service], p.service)
        assert.same({ "tlsv1_2", "tlsv1_3" }, e.probe.versions, p.service)
        assert.same(e.probe.versions, a.context.served, p.service)
        assert.equal("A+", e.grade.grade, p.service)
        assert.equal(e.grade.grade, a.grade.grade, p.service)
      end
      -- and a second fix finds nothing to change
      local again = tlsharden.fix(server.config, { cafile = server.ca, prosody = v.name })
      assert.same({}, again.files)
    end)
    server.stop()
    assert(ok, err)
  end)
end)

-- The rollback of --write: the programs it runs (prosodyctl, or a checker
-- given as --prosodyctl) are processes of their own, which the sanitizer
-- suites' preloaded runtime must not reach; so this runs in the release
-- suite with the comparisons above.
describe("#truth tlsharden fix --write", function()
  local dir, ca
  setup(function()
    dir = pki.tmpdir()
    ca = pki.cert(dir, "ca", { ca = true, cn = "tlsharden fix test CA" })
  end)
  teardown(function() pki.cleanup(dir) end)

  local function config(text)
    local d = pki.tmpdir()
    pki.write(d .. "/prosody.cfg.lua", text)
    return d, d .. "/prosody.cfg.lua"
  end

  it("writes nothing when it cannot keep a backup, or when the check fails on the new file", function()
    local text = 'certificates = "certs"\nVirtualHost "example.org"\n\tssl = { protocol = "sslv23" }\n'
    local d, path = config(text)
    local sh = require "spec.helpers.sh"
    -- FILE.bak and FILE.bak.1 are folders: no backup can be written
    sh.run("mkdir " .. sh.quote(path .. ".bak") .. " && touch " .. sh.quote(path .. ".bak/x"))
    sh.run("mkdir " .. sh.quote(path .. ".bak.1") .. " && touch " .. sh.quote(path .. ".bak.1/x"))
    local code, _, err = cli.run("fix", path, "--write", "--cafile", ca.cert, "--prosody", "0.12",
      "--prosodyctl", "/bin/true")
    assert.equal(2, code)
    assert.truthy(err:find("nothing written", 1, true))
    assert.equal(text, pki.read(path))
    -- a check that passed before and fails on the new file puts the
    -- original back and removes the backup (a checker that rejects what
    -- the fix wrote: the rollback is tlsharden's own)
    sh.run("rm -rf " .. sh.quote(path .. ".bak") .. " " .. sh.quote(path .. ".bak.1"))
    local checker = pki.write(d .. "/check.sh",
      "#!/bin/sh\nif grep -q tlsv1_2 \"$2\"; then echo 'rejected: new protocol'; exit 1; fi\necho ok\n")
    sh.run("chmod +x " .. sh.quote(checker))
    code, _, err = cli.run("fix", path, "--write", "--cafile", ca.cert, "--prosody", "0.12",
      "--prosodyctl", checker)
    assert.equal(2, code)
    assert.truthy(err:find("does not pass", 1, true))
    assert.truthy(err:find("rejected: new protocol", 1, true))
    assert.equal(text, pki.read(path))
    assert.is_nil(io.open(path .. ".bak"))
    -- and a check that finds nothing new lets it write, keeping a backup
    code, _, err = cli.run("fix", path, "--write", "--cafile", ca.cert, "--prosody", "0.12",
      "--prosodyctl", "/bin/true")
    assert.equal(1, code, err)  -- written, but the host has no certificate: left
    assert.equal(text, pki.read(path .. ".bak"))
    assert.truthy(pki.read(path):find('ssl = { protocol = "tlsv1_2+" }', 1, true))
    pki.cleanup(d)
  end)
end)
