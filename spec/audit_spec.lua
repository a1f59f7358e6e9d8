local cjson = require "cjson"
local tlsharden = require "tlsharden"
local audit = require "tlsharden.audit"
local prosodycfg = require "tlsharden.prosodycfg"
local certmanager = require "tlsharden.certmanager"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local prosody = require "spec.helpers.prosody"

-- A configuration directory with a CA, certificates for hosts, and files.
local function setup_dir(hosts, config)
  local dir = pki.tmpdir()
  sh.run("mkdir -p " .. pki.quote(dir .. "/certs"))
  local ca = pki.cert(dir, "ca", { ca = true })
  for _, h in ipairs(hosts) do
    local c = pki.cert(dir, h, { issuer = ca, san = { "DNS:" .. h } })
    sh.run(("mv %s %s/certs/%s.crt && mv %s %s/certs/%s.key"):format(pki.quote(c.cert), pki.quote(dir), h,
      pki.quote(c.key), pki.quote(dir), h))
  end
  pki.write(dir .. "/prosody.cfg.lua", config)
  return dir, ca
end

local function service(report, host, name)
  for _, h in ipairs(report.hosts) do
    if h.host == host then
      for _, s in ipairs(h.services) do if s.service == name then return s, h end end
    end
  end
end

local function codes(list)
  local t = {}
  for _, p in ipairs(list) do t[p.code] = p end
  return t
end

local BASIC = [[
certificates = "certs"
c2s_direct_tls_ports = { 5223 }
VirtualHost "good.test"
VirtualHost "weak.test"
  ssl = { protocol = "tlsv1+", ciphers = "HIGH:!aNULL", options = { no_compression = false } }
  c2s_require_encryption = false
Component "conference.good.test" "muc"
]]

describe("tlsharden.audit", function()
  local dir, ca, report
  setup(function()
    dir, ca = setup_dir({ "good.test", "weak.test" }, BASIC)
    report = tlsharden.audit(dir .. "/prosody.cfg.lua", { cafile = ca.cert })
  end)
  teardown(function() pki.cleanup(dir) end)

  it("audits every host and every TLS service", function()
    assert.equal(2, #report.hosts)
    local names = {}
    for _, s in ipairs(report.hosts[1].services) do names[#names + 1] = s.service end
    assert.same({ "c2s", "s2s_in", "s2s_out", "c2s_direct_tls" }, names)
    assert.same({ "conference.good.test" }, report.components)
  end)

  it("gives Prosody's defaults with a trusted certificate A+", function()
    local s = service(report, "good.test", "c2s")
    assert.equal("A+", s.grade.grade)
    assert.same({ "tlsv1_2", "tlsv1_3" }, s.context.versions)
    assert.equal("all", s.forward_secrecy)
    assert.is_true(s.chain.ok)
  end)

  it("finds what the weak host's ssl block lowers, and grades it down", function()
    local s = service(report, "weak.test", "c2s")
    local c = codes(s.problems)
    assert.truthy(c.LOWERS_SECURITY)
    assert.truthy(c.OLD_PROTOCOL)
    assert.truthy(c.NO_FORWARD_SECRECY)
    assert.equal("B", s.grade.grade)
    assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, s.context.versions)
    local lowers = {}
    for _, p in ipairs(s.problems) do if p.code == "LOWERS_SECURITY" then lowers[#lowers + 1] = p.message end end
    assert.matches("VirtualHost weak.test ssl sets", table.concat(lowers, "\n"), 1, true)
  end)

  it("checks the policy options", function()
    local _, h = service(report, "weak.test", "c2s")
    local c = codes(h.problems)
    assert.truthy(c.C2S_ENCRYPTION_OPTIONAL)
    assert.truthy(c.S2S_NOT_AUTHENTICATED)
    assert.is_false(h.policy.c2s_require_encryption)
    assert.is_true(h.policy.s2s_require_encryption)
  end)

  it("says what mod_tlsharden would change", function()
    local s = service(report, "weak.test", "c2s")
    local settings = {}
    for _, ch in ipairs(s.tlsharden_would_change) do settings[ch.setting] = ch end
    assert.equal("tlsv1_2", settings.min_version.after)
    assert.truthy(settings.ciphers)
  end)

  it("finds a host mismatch with the certificate of another host", function()
    local d, c = setup_dir({ "a.test" }, 'certificates = "certs"\nVirtualHost "b.test"\n  ssl = { certificate = "certs/a.test.crt", key = "certs/a.test.key" }\n')
    local r = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert })
    local s = service(r, "b.test", "c2s")
    assert.truthy(codes(s.problems).HOST_MISMATCH)
    assert.equal("M", s.grade.grade)
    pki.cleanup(d)
  end)

  it("audits HTTPS when an HTTP module is loaded", function()
    local d, c = setup_dir({ "web.test" }, 'certificates = "certs"\nmodules_enabled = { "bosh" }\nVirtualHost "web.test"\n')
    local r = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert })
    local s = service(r, "web.test", "https")
    assert.truthy(s)
    assert.equal("A+", s.grade.grade)
    pki.cleanup(d)
  end)

  it("finds certificates by the names inside them, as Prosody's index does", function()
    local d, c = setup_dir({}, 'certificates = "certs"\nVirtualHost "chat.wild.test"\n')
    local leaf = pki.cert(d, "wild", { issuer = c, san = { "DNS:*.wild.test" } })
    sh.run(("mkdir -p %s/certs/le && mv %s %s/certs/le/fullchain.pem && mv %s %s/certs/le/privkey.pem"):format(
      pki.quote(d), pki.quote(leaf.cert), pki.quote(d), pki.quote(leaf.key), pki.quote(d)))
    local r = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert })
    local s = service(r, "chat.wild.test", "c2s")
    assert.matches("/certs/le/fullchain.pem$", s.config.certificate)
    assert.equal("A+", s.grade.grade)
    pki.cleanup(d)
  end)

  it("reports a missing certificate as a problem, not a crash", function()
    local r = tlsharden.audit('VirtualHost "nocert.test"\n', { text = true, dir = "/nonexistent" })
    local s = service(r, "nocert.test", "c2s")
    assert.truthy(codes(s.problems).NO_CERTIFICATE)
    assert.is_nil(s.grade)
  end)

  it("follows Include, with globs, relative to the configuration", function()
    local d = setup_dir({ "inc.test" }, 'certificates = "certs"\nInclude "conf.d/*.cfg.lua"\n')
    sh.run("mkdir -p " .. pki.quote(d .. "/conf.d"))
    pki.write(d .. "/conf.d/a.cfg.lua", 'VirtualHost "inc.test"\n  ssl = { depth = 4 }\n')
    pki.write(d .. "/conf.d/b.txt", 'VirtualHost "ignored.test"\n')
    local r = tlsharden.audit(d .. "/prosody.cfg.lua")
    assert.equal(1, #r.hosts)
    assert.equal("inc.test", r.hosts[1].host)
    assert.equal(4, service(r, "inc.test", "c2s").config.depth)
    assert.equal(2, #r.files)
    pki.cleanup(d)
  end)

  it("reads FileContents, FileLine and ENV_ values from the caller only", function()
    local d = pki.tmpdir()
    pki.write(d .. "/secret.txt", "first line\nsecond\n")
    local cfg = prosodycfg.load('a = FileContents("secret.txt")\nb = FileLine("secret.txt")\nc = FileLines("secret.txt")\nd = ENV_HOME\ne = ENV_X\n',
      { text = true, dir = d, name = d .. "/prosody.cfg.lua", env = { X = "from caller" } })
    assert.equal("first line\nsecond\n", cfg:get("*", "a"))
    assert.equal("first line", cfg:get("*", "b"))
    assert.same({ "first line", "second" }, cfg:get("*", "c"))
    assert.is_nil(cfg:get("*", "d"))
    assert.equal("from caller", cfg:get("*", "e"))
    pki.cleanup(d)
  end)

  it("refuses an unknown tls_profile, naming the known ones", function()
    local ok, err = pcall(tlsharden.audit, 'tls_profile = "intermedate"\nVirtualHost "x.test"\n', { text = true })
    assert.is_false(ok)
    assert.matches("unknown tls_profile 'intermedate' (known: intermediate, legacy, modern, old)", err, 1, true)
  end)

  -- Found by the prosodycfg fuzz target: the comment after `certificate =`
  -- swallowed the rest of the line, so the host's certificate became the
  -- function that `VirtualHost "..."` returns.
  it("refuses a certificate or certificates option that is not a path, naming it", function()
    local fuzzed = '-- A5222 }\n\ncertificate =' .. string.rep("-", 79) .. '" scerts"\n\n'
      .. 'VirtualHost "cha\255\255\255\255\255\255\253\255\255\255\255"\n\t--3 dlu '
    local cfg = prosodycfg.load(fuzzed, { text = true, dir = "/nonexistent" })
    local model = certmanager.model(cfg)
    local ok, err = pcall(model.services, model, cfg.hosts[1])
    assert.is_false(ok)
    assert.matches("tlsharden.audit: option 'certificate' of cha.* must be a file or folder path, got function", err)
    for _, c in ipairs {
      { 'VirtualHost "x.test"\ncertificate = 42\n', "option 'certificate' of x.test must be a file or folder path, got number" },
      { 'certificates = { "certs" }\nVirtualHost "x.test"\n', "option 'certificates' must be a file or folder path, got table" },
    } do
      ok, err = pcall(tlsharden.audit, c[1], { text = true, dir = "/nonexistent" })
      assert.is_false(ok)
      assert.matches(c[2], err, 1, true)
    end
  end)

  it("reports a syntax error with file and line", function()
    local ok, err = pcall(tlsharden.audit, 'VirtualHost "x.test"\nssl = {\n  protocol = "tlsv1_2+"\n  depth = 9\n}\n',
      { text = true, name = "/etc/prosody/prosody.cfg.lua" })
    assert.is_false(ok)
    assert.matches("tlsharden.audit: /etc/prosody/prosody.cfg.lua:4:", err, 1, true)
  end)

  it("keeps the configuration away from the real environment", function()
    for _, code in ipairs {
      'x = os.getenv("HOME")', 'x = io.open("/etc/passwd")', 'x = require("os")', 'x = load("return 1")',
      'x = debug.getinfo(1)', 'RunScript("x.lua")', 'x = string.dump(print)', 'x = getmetatable("")',
      'x = dofile("/etc/passwd")',
    } do
      local ok, err = pcall(prosodycfg.load, code, { text = true })
      assert.is_false(ok, code)
      assert.matches("tlsharden.audit:", err, 1, true)
    end
    local ok, err = pcall(prosodycfg.load, "while true do end", { text = true })
    assert.is_false(ok)
    assert.matches("runs too long", err, 1, true)
  end)

  it("refuses bad arguments", function()
    assert.has_error(function() tlsharden.audit(nil) end)
    assert.has_error(function() tlsharden.audit("x", "y") end)
    local ok, err = pcall(tlsharden.audit, "/nonexistent/prosody.cfg.lua")
    assert.is_false(ok)
    assert.matches("cannot read the configuration", err, 1, true)
  end)
end)

-- The audit's effective configuration equals what Prosody 0.12 itself
-- builds: Prosody's real certmanager runs with the same configuration.
local describe_prosody = prosody.installed() and describe or pending
describe_prosody("compatibility with Prosody's certmanager", function()
  local layered = [[
certificates = "certs"
tls_profile = "old"
ssl = { options = { "no_ticket" }, depth = 7 }
c2s_ssl = { ciphers = "ECDHE+AESGCM" }
s2s_ssl = { protocol = "tlsv1_2+" }
VirtualHost "one.test"
  ssl = { protocol = "tlsv1_1+", options = { no_compression = false } }
  s2s_ssl = { depth = 5 }
VirtualHost "two.test"
  c2s_ssl = { ciphers = { "ECDHE+CHACHA20", "ECDHE+AESGCM" }, verifyext = { lsec_continue = false } }
VirtualHost "sub.one.test"
]]
  for _, case in ipairs { { "default configuration", BASIC, { "good.test", "weak.test" } },
                          { "every layer", layered, { "one.test", "two.test", "sub.one.test" } } } do
    it("agrees for the " .. case[1], function()
      local dir = setup_dir(case[3], case[2])
      local path = dir .. "/prosody.cfg.lua"
      local out = sh.run(("lua5.4 spec/helpers/prosody_contexts.lua %s %s"):format(pki.quote(path),
        table.concat(case[3], " ")))
      local theirs = cjson.decode(out)
      local config = prosodycfg.load(path)
      local model = certmanager.model(config)
      for _, host in ipairs(case[3]) do
        for _, svc in ipairs(model:services(host)) do
          if theirs[host][svc.service] then
            local ours = audit.effective(config, svc)
            if ours.options and #ours.options == 0 then ours.options = nil end
            assert.same(theirs[host][svc.service], cjson.decode(cjson.encode(ours)), host .. " " .. svc.service)
          end
        end
      end
      pki.cleanup(dir)
    end)
  end
end)

describe("tlsharden audit and grade commands", function()
  local dir, ca
  setup(function() dir, ca = setup_dir({ "good.test", "weak.test" }, BASIC) end)
  teardown(function() pki.cleanup(dir) end)

  local run = require("spec.helpers.cli").run

  it("prints every host with its grade and exits 1 for the weak one", function()
    local code, out = run("audit", dir .. "/prosody.cfg.lua", "--cafile", ca.cert)
    assert.equal(1, code)
    assert.matches("good.test  grade A+", out, 1, true)
    assert.matches("weak.test  grade B", out, 1, true)
    assert.matches("mod_tlsharden would change", out, 1, true)
    assert.matches("overall grade B", out, 1, true)
  end)

  it("exits 0 when everything passes", function()
    local d, c = setup_dir({ "only.test" }, 'certificates = "certs"\ns2s_secure_auth = true\nVirtualHost "only.test"\n')
    local code, out = run("audit", d .. "/prosody.cfg.lua", "--cafile", c.cert)
    assert.equal(0, code, out)
    pki.cleanup(d)
  end)

  it("prints the documented JSON schema", function()
    local code, out = run("--json", "audit", dir .. "/prosody.cfg.lua", "--cafile", ca.cert)
    assert.equal(1, code)
    local doc = cjson.decode(out)
    assert.equal("audit", doc.command)
    assert.equal("B", doc.grade)
    assert.equal("good.test", doc.hosts[1].host)
    local s = doc.hosts[1].services[1]
    assert.equal("c2s", s.service)
    assert.equal("A+", s.grade)
    assert.is_table(s.layers)
    assert.is_table(s.problems)
  end)

  it("grade prints scores, caps and reasons", function()
    local code, out = run("grade", dir .. "/prosody.cfg.lua", "--cafile", ca.cert, "--min-grade", "C")
    assert.equal(0, code)
    assert.matches("weak.test c2s STARTTLS: B %(score %d+", out)
    assert.matches("cap B: TLS 1.0 or TLS 1.1 is offered", out, 1, true)
    local _, out2 = run("grade", dir .. "/prosody.cfg.lua", "--cafile", ca.cert, "--guide", "2009r")
    assert.matches("guide 2009r", out2, 1, true)
    code = run("grade", dir .. "/prosody.cfg.lua", "--cafile", ca.cert, "--min-grade", "A")
    assert.equal(1, code)
  end)

  it("exits 2 for a configuration it cannot read", function()
    local code, _, err = run("audit", dir .. "/missing.cfg.lua")
    assert.equal(2, code)
    assert.matches("cannot read the configuration", err, 1, true)
  end)
end)
