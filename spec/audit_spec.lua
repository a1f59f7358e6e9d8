local cjson = require "cjson"
local problem_walk = require "spec.helpers.problem_walk"
local tlsharden = require "tlsharden"
local audit = require "tlsharden.prosody.audit"
local prosody_config = require "tlsharden.prosody.config"
local prosody_model = require "tlsharden.prosody.model"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"
local prosody = require "spec.helpers.prosody"
local cli_run = require("spec.helpers.cli").run

-- The hosts whose certificates have an RSA key (the others: EC P-256).
local RSA_HOSTS = { ["weak.test"] = true }

-- A configuration directory with a CA, certificates for hosts, and files.
local function setup_dir(hosts, config)
  local dir = pki.tmpdir()
  sh.run("mkdir -p " .. pki.quote(dir .. "/certs"))
  local ca = pki.cert(dir, "ca", { ca = true })
  for _, h in ipairs(hosts) do
    local c = pki.cert(dir, h, { issuer = ca, san = { "DNS:" .. h }, key_kind = RSA_HOSTS[h] and "rsa2048" or nil })
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
  ssl = { protocol = "tlsv1+", ciphers = "HIGH:!aNULL:@SECLEVEL=0", options = { no_compression = false } }
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

  it("audits every host and every TLS service, Components included", function()
    assert.equal(3, #report.hosts)
    local names = {}
    for _, s in ipairs(report.hosts[1].services) do names[#names + 1] = s.service end
    assert.same({ "c2s", "s2s_in", "s2s_out", "c2s_direct_tls" }, names)
    assert.same({ "conference.good.test" }, report.components)
    -- a Component without mod_tls (no modules_enabled takes it over) has
    -- no STARTTLS context; portmanager builds it a c2s direct TLS SNI
    -- context that no client reaches: listed, not graded
    local c = report.hosts[3]
    assert.same({ "conference.good.test", "muc", 1 }, { c.host, c.component, #c.services })
    assert.same({ "c2s_direct_tls", false }, { c.services[1].service, c.services[1].reached })
    assert.is_nil(c.grade)
  end)

  it("models a Component's own contexts: its ssl block, or the global one, for s2s", function()
    local d, ca2 = setup_dir({ "h.test", "muc.h.test", "up.h.test" }, 'certificates = "certs"\n'
      .. 'modules_enabled = { "tls", "dialback", "roster" }\ns2s_secure_auth = true\n'
      .. 'VirtualHost "h.test"\n'
      .. 'Component "muc.h.test" "muc"\n  ssl = { protocol = "tlsv1_3" }\n'
      .. 'Component "up.h.test" "http_file_share"\n  modules_disabled = { "tls" }\n'
      .. 'Component "plain.h.test" "muc"\n')
    local r = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = ca2.cert })
    local byname = {}
    for _, h in ipairs(r.hosts) do byname[h.host] = h end
    local muc = byname["muc.h.test"]
    local services, reached = {}, {}
    for _, s in ipairs(muc.services) do
      services[#services + 1] = s.service
      reached[#reached + 1] = s.reached
    end
    -- mod_tls builds its c2s context too; no client stream reaches it
    assert.same({ "c2s", "s2s_in", "s2s_out" }, services)
    assert.same({ false, true, true }, reached)
    local s2s_in = muc.services[2]
    assert.same({ "tlsv1_3" }, s2s_in.context.served)
    assert.matches("Component muc.h.test ssl", table.concat(s2s_in.layers, "; "), 1, true)
    assert.same({}, byname["up.h.test"].services)
    -- without a block of its own: the global one, the parent's certificate
    local plain = byname["plain.h.test"]
    assert.same({ "tlsv1_2", "tlsv1_3" }, plain.services[2].context.served)
    assert.is_nil(codes(plain.problems).C2S_ENCRYPTION_OPTIONAL)
    pki.cleanup(d)
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
    -- at security level 0 (the cipher string asks for it) OpenSSL serves them all
    assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, s.context.served)
    local lowers = {}
    for _, p in ipairs(s.problems) do if p.code == "LOWERS_SECURITY" then lowers[#lowers + 1] = p.message end end
    assert.matches("VirtualHost weak.test ssl sets", table.concat(lowers, "\n"), 1, true)
  end)

  it("grades what is served and says apart what the configuration asks for beyond it", function()
    -- tlsv1+ at the default security level with an EC key: OpenSSL 3 serves
    -- neither TLS 1.0 and 1.1 nor a suite the key cannot sign
    local d, c = setup_dir({ "asks.test" }, 'certificates = "certs"\ns2s_secure_auth = true\n'
      .. 'VirtualHost "asks.test"\n  ssl = { protocol = "tlsv1+", ciphers = "HIGH:!aNULL" }\n')
    local r = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert })
    local s = service(r, "asks.test", "c2s")
    assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, s.context.versions)
    assert.same({ "tlsv1_2", "tlsv1_3" }, s.context.served)
    assert.same({ 2, 2 }, { s.context.security_level, #s.context.served })
    local codes_of = codes(s.problems)
    assert.is_nil(codes_of.OLD_PROTOCOL)
    assert.is_nil(codes_of.NO_FORWARD_SECRECY)
    assert.equal("warning", codes_of.ASKS_FOR_OLD_PROTOCOL.severity)
    assert.matches("not served: OpenSSL refuses it at security level 2", codes_of.ASKS_FOR_OLD_PROTOCOL.message, 1, true)
    assert.equal("A+", s.grade.grade)
    assert.equal("all", s.forward_secrecy)
    for _, name in ipairs(s.suites) do assert.is_nil(name:find("^AES"), name) end
    pki.cleanup(d)
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
    local cfg = prosody_config.load('a = FileContents("secret.txt")\nb = FileLine("secret.txt")\nc = FileLines("secret.txt")\nd = ENV_HOME\ne = ENV_X\n',
      { text = true, dir = d, name = d .. "/prosody.cfg.lua", env = { X = "from caller" } })
    assert.equal("first line\nsecond\n", cfg:get("*", "a"))
    assert.equal("first line", cfg:get("*", "b"))
    assert.same({ "first line", "second" }, cfg:get("*", "c"))
    assert.is_nil(cfg:get("*", "d"))
    assert.equal("from caller", cfg:get("*", "e"))
    pki.cleanup(d)
  end)

  it("knows Prosody 13's Credential and Lua.x, within the sandbox", function()
    local d = pki.tmpdir()
    pki.write(d .. "/password", "s3cret")
    local text = 'a = Credential("password")\nb = Lua.string.format("%d", 7)\n'
    local cfg = prosody_config.load(text, { text = true, env = { CREDENTIALS_DIRECTORY = d } })
    assert.equal("s3cret", cfg:get("*", "a"))
    assert.equal("7", cfg:get("*", "b"))
    cfg = prosody_config.load(text, { text = true })  -- no credentials directory: unset, as in 13
    assert.is_nil(cfg:get("*", "a"))
    for _, code in ipairs { 'a = Credential("../etc/passwd")', 'a = Credential("missing")' } do
      local ok, err = pcall(prosody_config.load, code, { text = true, env = { CREDENTIALS_DIRECTORY = d } })
      assert.is_false(ok, code)
      assert.matches("tlsharden.audit: prosody.cfg.lua:1: ", err, 1, true)
    end
    pki.cleanup(d)
  end)

  it("models the installed Prosody by default and says which", function()
    local ok, deb = sh.exec("dpkg-query -W -f='${Version}' prosody 2>/dev/null")
    local release = ok and deb:match("^(%d[%d.]*%d)")
    assert.is_truthy(release, "Debian's prosody package is installed for the specs")
    assert.equal(prosody_model.version_of(release), report.prosody)
    assert.matches("installed Prosody " .. release, report.prosody_from, 1, true)
    local r = tlsharden.audit(BASIC, { text = true, dir = dir, prosody = "13" })
    assert.equal("13", r.prosody)
    assert.equal("as asked (the prosody option)", r.prosody_from)
  end)

  it("refuses an unknown Prosody version, naming the known ones", function()
    for _, v in ipairs { "0.11", "14", 13, "" } do
      local ok, err = pcall(tlsharden.audit, BASIC, { text = true, dir = dir, prosody = v })
      assert.is_false(ok)
      assert.matches("tlsharden.audit: bad option 'prosody': unknown Prosody version", err, 1, true)
      assert.matches("(known: 0.12, 13)", err, 1, true)
    end
  end)

  it("tells release strings apart", function()
    assert.same({ "0.12", true }, { prosody_model.version_of("0.12.3") })
    assert.same({ "13", true }, { prosody_model.version_of("13.0.1") })
    assert.same({ "0.12", false }, { prosody_model.version_of("0.11.9") })
    assert.same({ "13", false }, { prosody_model.version_of("14.2") })
    assert.is_nil(prosody_model.version_of("hg:0123456789ab"))
  end)

  it("treats an unknown tls_profile as each version does", function()
    local text = 'certificates = "certs"\ntls_profile = "intermedate"\nVirtualHost "good.test"\n'
    local known = "unknown tls_profile 'intermedate' (known: intermediate, legacy, modern, old)"
    -- 0.12 applies no profile, as legacy: the core defaults' cipher list
    local r12 = tlsharden.audit(text, { text = true, dir = dir, cafile = ca.cert, prosody = "0.12" })
    assert.equal("warning", r12.problems[1].severity)
    assert.equal("UNKNOWN_TLS_PROFILE", r12.problems[1].code)
    assert.matches(known, r12.problems[1].message, 1, true)
    local s12 = service(r12, "good.test", "c2s")
    assert.truthy(s12.grade)
    for _, l in ipairs(s12.layers) do assert.not_matches("^tls_profile", l) end
    assert.equal("HIGH+kEECDH:HIGH+kEDH:HIGH:!PSK:!SRP:!3DES:!aNULL", s12.config.ciphers)
    -- 13 builds no context at all
    local r13 = tlsharden.audit(text, { text = true, dir = dir, cafile = ca.cert, prosody = "13" })
    assert.equal("error", r13.problems[1].severity)
    for _, s in ipairs(r13.hosts[1].services) do
      assert.is_nil(s.grade)
      assert.is_nil(s.context)
      assert.truthy(codes(s.problems).UNKNOWN_TLS_PROFILE)
      assert.matches(known, codes(s.problems).UNKNOWN_TLS_PROFILE.message, 1, true)
    end
  end)

  it("models the layers of each version: 13's DH parameters, suites and s2s verification", function()
    local d, c = setup_dir({}, 'certificates = "certs"\nVirtualHost "rsa.test"\n')
    local leaf = pki.cert(d, "rsa.test", { issuer = c, san = { "DNS:rsa.test" }, key_kind = "rsa2048" })
    sh.run(("mv %s %s/certs/rsa.test.crt && mv %s %s/certs/rsa.test.key"):format(pki.quote(leaf.cert),
      pki.quote(d), pki.quote(leaf.key), pki.quote(d)))
    local r12 = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "0.12" })
    local r13 = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "13" })
    local c12, c13 = service(r12, "rsa.test", "c2s"), service(r13, "rsa.test", "c2s")
    assert.is_nil(c12.config.dhparam)
    assert.equal(prosody_model.FFDHE2048, c13.config.dhparam)
    local function set(list) local t = {} for _, n in ipairs(list) do t[n] = true end return t end
    local s12, s13 = set(c12.suites), set(c13.suites)
    assert.is_nil(s12["DHE-RSA-AES128-GCM-SHA256"])  -- listed, but no DH parameters
    assert.is_true(s13["DHE-RSA-AES128-GCM-SHA256"])
    assert.is_true(s13["DHE-RSA-CHACHA20-POLY1305"])
    assert.is_true(s12["ECDHE-RSA-AES128-GCM-SHA256"] and s13["ECDHE-RSA-AES128-GCM-SHA256"])
    assert.is_nil(s12["ECDHE-ECDSA-AES128-GCM-SHA256"])  -- the certificate is RSA
    assert.is_true(s12["TLS_AES_256_GCM_SHA384"] and s13["TLS_AES_256_GCM_SHA384"])
    assert.same({ "peer", "client_once" }, service(r12, "rsa.test", "s2s_out").config.verify)
    assert.equal("none", service(r13, "rsa.test", "s2s_out").config.verify)
    assert.is_nil(c13.config.verifyext)
    assert.same({ "lsec_continue", "lsec_ignore_purpose" }, service(r13, "rsa.test", "s2s_in").config.verifyext)
    pki.cleanup(d)
  end)

  it("reads DH parameters from a file, as Prosody does", function()
    local d, c = setup_dir({}, 'certificates = "certs"\ntls_profile = "legacy"\nssl = { dhparam = "dh.pem" }\n'
      .. 'VirtualHost "rsa.test"\n')
    local leaf = pki.cert(d, "rsa.test", { issuer = c, san = { "DNS:rsa.test" }, key_kind = "rsa2048" })
    sh.run(("mv %s %s/certs/rsa.test.crt && mv %s %s/certs/rsa.test.key"):format(pki.quote(leaf.cert),
      pki.quote(d), pki.quote(leaf.key), pki.quote(d)))
    pki.write(d .. "/dh.pem", prosody_model.FFDHE2048)
    for _, v in ipairs { "0.12", "13" } do
      local s = service(tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = v }), "rsa.test", "c2s")
      assert.equal(d .. "/dh.pem", s.config.dhparam)
      assert.is_true(#s.suites > 0, v)
      local dhe = false
      for _, n in ipairs(s.suites) do dhe = dhe or n:find("^DHE%-RSA") ~= nil end
      assert.is_true(dhe, v)
    end
    sh.run("rm " .. pki.quote(d .. "/dh.pem"))
    local s = service(tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "0.12" }), "rsa.test", "c2s")
    assert.matches("Could not open DH parameters", codes(s.problems).CONTEXT_ERROR.message, 1, true)
    pki.cleanup(d)
  end)

  it("says which direct TLS settings of a host Prosody 13 ignores", function()
    local text = BASIC .. 'VirtualHost "direct.test"\n  c2s_direct_tls_ssl = { protocol = "tlsv1_3" }\n'
    local d, c = setup_dir({ "good.test", "weak.test", "direct.test" }, text)
    local r12 = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "0.12" })
    local r13 = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "13" })
    local s12 = service(r12, "direct.test", "c2s_direct_tls")
    local s13 = service(r13, "direct.test", "c2s_direct_tls")
    assert.same({ "tlsv1_3" }, s12.context.versions)
    assert.same({ "tlsv1_2", "tlsv1_3" }, s13.context.versions)
    assert.is_nil(codes(s12.problems).IGNORED_SETTING)
    assert.matches("direct.test c2s_direct_tls_ssl sets protocol: Prosody 13 takes only the certificate and key",
      codes(s13.problems).IGNORED_SETTING.message, 1, true)
    pki.cleanup(d)
  end)

  it("lists each direct TLS port's own context, for clients that send no SNI, in the report, its JSON and text", function()
    local text = 'c2s_direct_tls_ssl = { [5223] = { protocol = "tlsv1_3" } }\n' .. BASIC
    local d, c = setup_dir({ "good.test", "weak.test" }, text)
    for _, v in ipairs { "0.12", "13" } do
      local r = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = v })
      assert.equal(1, #r.ports, v)
      local p = r.ports[1]
      assert.same({ "c2s_direct_tls", 5223, "c2s_direct_tls port 5223", "c2s direct TLS port 5223" },
        { p.service, p.port, p.name, p.label }, v)
      -- the block for port 5223 applies to the port and to every SNI context on it
      assert.same({ "tlsv1_3" }, p.context.versions, v)
      assert.same({ "tlsv1_3" }, service(r, "good.test", "c2s_direct_tls").context.versions, v)
      assert.same(5223, service(r, "good.test", "c2s_direct_tls").port, v)
      -- STARTTLS contexts do not take it
      assert.same({ "tlsv1_2", "tlsv1_3" }, service(r, "good.test", "c2s").context.versions, v)
      -- no name to check: the chain's trust is judged, not its name
      assert.is_truthy(p.chain, v)
      assert.is_nil(codes(p.chain.problems).HOST_MISMATCH, v)
      local _, out = cli_run("--json", "audit", d .. "/prosody.cfg.lua", "--prosody", v, "--cafile", c.cert)
      local doc = cjson.decode(out)
      assert.same({ "c2s_direct_tls", 5223, { "tlsv1_3" } }, { doc.ports[1].service, doc.ports[1].port,
        doc.ports[1].served }, v)
      local _, txt = cli_run("--no-color", "audit", d .. "/prosody.cfg.lua", "--prosody", v, "--cafile", c.cert)
      assert.matches("direct TLS ports, to clients without SNI", txt, 1, true)
      assert.matches("c2s direct TLS port 5223", txt, 1, true)
      -- 13 stops at startup on a block by port; 0.12 takes it
      local stop = codes(r.problems).PROSODY_WILL_NOT_START
      if v == "13" then
        assert.matches("c2s_direct_tls_ssl has a block for port 5223: Prosody 13 does not start", stop.message, 1, true)
      else
        assert.is_nil(stop)
      end
    end
    pki.cleanup(d)
  end)

  it("says that Prosody 0.12 serves no DHE to SNI clients of a direct TLS port when dhparam is set", function()
    local d, c = setup_dir({ "weak.test" }, 'certificates = "certs"\nc2s_direct_tls_ports = { 5223 }\n'
      .. 'ssl = { dhparam = "dh.pem" }\nVirtualHost "weak.test"\n')
    pki.write(d .. "/dh.pem", prosody_model.FFDHE2048)
    local function dhe(list)
      for _, n in ipairs(list or {}) do if n:find("^DHE%-") then return true end end
      return false
    end
    local r12 = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "0.12" })
    local sni = service(r12, "weak.test", "c2s_direct_tls")
    assert.is_false(dhe(sni.suites))
    assert.matches("without DH parameters", codes(sni.problems).DHPARAM_DROPPED.message, 1, true)
    assert.is_true(dhe(r12.ports[1].suites))
    assert.is_true(dhe(service(r12, "weak.test", "c2s").suites))
    local r13 = tlsharden.audit(d .. "/prosody.cfg.lua", { cafile = c.cert, prosody = "13" })
    assert.is_true(dhe(service(r13, "weak.test", "c2s_direct_tls").suites))
    assert.is_nil(codes(service(r13, "weak.test", "c2s_direct_tls").problems).DHPARAM_DROPPED)
    pki.cleanup(d)
  end)

  -- Found by the prosody_config fuzz target: the comment after `certificate =`
  -- swallowed the rest of the line, so the host's certificate became the
  -- function that `VirtualHost "..."` returns.
  it("refuses a certificate or certificates option that is not a path, naming it", function()
    local fuzzed = '-- A5222 }\n\ncertificate =' .. string.rep("-", 79) .. '" scerts"\n\n'
      .. 'VirtualHost "cha\255\255\255\255\255\255\253\255\255\255\255"\n\t--3 dlu '
    local cfg = prosody_config.load(fuzzed, { text = true, dir = "/nonexistent" })
    local model = prosody_model.model(cfg)
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
      'x = dofile("/etc/passwd")', 'x = Lua.os.getenv("HOME")', 'x = Lua.io.open("/etc/passwd")',
      'x = Lua.require("os")',
    } do
      local ok, err = pcall(prosody_config.load, code, { text = true })
      assert.is_false(ok, code)
      assert.matches("tlsharden.audit:", err, 1, true)
    end
    local ok, err = pcall(prosody_config.load, "while true do end", { text = true })
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

-- The audit's effective configuration equals what each Prosody version
-- itself builds: its real certmanager runs with the same configuration.
local LAYERED = [[
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
-- Prosody 13's option:append(...), and the call form, which add to a list
-- or a table of the same scope.
local APPENDED = [[
certificates = "certs"
ssl = { options = { "no_ticket" } }
ssl:append { depth = 4 }
c2s_ssl = { ciphers = "ECDHE+AESGCM" }
c2s_ssl { protocol = "tlsv1_2+" }
VirtualHost "app.test"
  ssl = { protocol = "tlsv1_3" }
  ssl:append { options = { "no_compression" } }
]]
prosody.each_version(describe, pending, "the audit agrees with the certmanager of Prosody", function(version)
  local cases = { { "default configuration", BASIC, { "good.test", "weak.test" } },
                  { "every layer", LAYERED, { "one.test", "two.test", "sub.one.test" } } }
  -- 0.12 reads no option back: :append is 13's
  if version.name == "13" then cases[#cases + 1] = { "option:append syntax", APPENDED, { "app.test" } } end
  for _, case in ipairs(cases) do
    it("for the " .. case[1], function()
      local dir = setup_dir(case[3], case[2])
      local path = dir .. "/prosody.cfg.lua"
      local ok, err = pcall(function()
        local out = sh.run(("lua5.4 spec/helpers/prosody_contexts.lua %s %s %s %s"):format(version.name,
          pki.quote(version.source), pki.quote(path), table.concat(case[3], " ")))
        local theirs = cjson.decode(out)
        local config = prosody_config.load(path)
        local model = prosody_model.model(config, version.name)
        local compared = 0
        for _, host in ipairs(case[3]) do
          for _, svc in ipairs(model:services(host)) do
            if theirs[host][svc.service] then
              local ours = audit.effective(config, svc, nil, version.name)
              if ours.options and #ours.options == 0 then ours.options = nil end
              assert.same(theirs[host][svc.service], cjson.decode(cjson.encode(ours)), host .. " " .. svc.service)
              compared = compared + 1
            end
          end
        end
        assert.equal(3 * #case[3], compared)
      end)
      pki.cleanup(dir)
      assert(ok, err)
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
    -- one problem record everywhere in the document, and some of them
    local bad, seen = problem_walk.walk(out)
    assert.same({}, bad)
    assert.is_true(seen > 3, tostring(seen))
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

  it("models the version --prosody names, and says which", function()
    local code, out = run("audit", dir .. "/prosody.cfg.lua", "--cafile", ca.cert, "--prosody", "13")
    assert.equal(1, code)
    assert.matches("(Prosody 13, guide", out, 1, true)
    assert.matches("modelled on: as asked (the prosody option)", out, 1, true)
    local _, json_out = run("--json", "audit", dir .. "/prosody.cfg.lua", "--cafile", ca.cert, "--prosody=0.12")
    local doc = cjson.decode(json_out)
    assert.equal("0.12", doc.prosody)
    assert.is_table(doc.hosts[1].services[1].suites)
    local code2, _, err = run("audit", dir .. "/prosody.cfg.lua", "--prosody", "12")
    assert.equal(2, code2)
    assert.matches("bad option 'prosody': unknown Prosody version '12' (known: 0.12, 13)", err, 1, true)
  end)

  local v13 = prosody.version("13")
  ;(v13.ok and it or pending)("models the Prosody whose launcher comes first on PATH", function()
    local function modelled(path_prefix)
      local ok, out = sh.exec(("%s./bin/tlsharden --json audit %s"):format(path_prefix,
        pki.quote(dir .. "/prosody.cfg.lua")))
      assert.is_false(ok)  -- the weak host
      return cjson.decode(out)
    end
    local doc = modelled(("PATH=%s:\"$PATH\" "):format(pki.quote(v13.prosody:match("^(.*)/[^/]+$"))))
    assert.equal("13", doc.prosody)
    assert.matches("installed Prosody " .. v13.release, doc.prosody_from, 1, true)
    doc = modelled("")
    assert.equal("0.12", doc.prosody)
  end)

  it("prints a problem of the whole configuration: an unknown tls_profile", function()
    local d = setup_dir({ "p.test" }, 'certificates = "certs"\ntls_profile = "hardest"\nVirtualHost "p.test"\n')
    local code, out = run("audit", d .. "/prosody.cfg.lua", "--prosody", "13")
    assert.equal(1, code)
    assert.matches("error: UNKNOWN_TLS_PROFILE: unknown tls_profile 'hardest'", out, 1, true)
    assert.matches("p.test  grade F", out, 1, true)
    pki.cleanup(d)
  end)

  it("exits 2 for a configuration it cannot read", function()
    local code, _, err = run("audit", dir .. "/missing.cfg.lua")
    assert.equal(2, code)
    assert.matches("cannot read the configuration", err, 1, true)
  end)
end)
