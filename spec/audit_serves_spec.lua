-- The audit says what Prosody serves: a matrix of configurations, each
-- served by a real Prosody 0.12 and 13; every service of the host is
-- scanned from outside with tlsharden.scan, the same file is audited, and
-- the grade, the protocols, the suites and what each recorded client gets
-- must agree. Tagged #truth: a verdict compared with a real peer's; the
-- release suite runs it.
local tlsharden = require "tlsharden"
local prosody = require "spec.helpers.prosody"
local pki = require "spec.helpers.pki"

-- Where a configuration names the admin's DH parameter file: RFC 7919's
-- ffdhe2048, written for each run.
local DHPARAM = {}

-- The audit's service of each port, and how a scan reaches the port.
local PORTS = {
  { service = "c2s", port = "c2s", starttls = "c2s" },
  { service = "s2s_in", port = "s2s", starttls = "s2s" },
  { service = "c2s_direct_tls", port = "c2s_direct_tls", starttls = "none" },
}

-- Each configuration: its name, Prosody's settings (the certificate's key,
-- global settings, a host's own, Components), the versions of Prosody it
-- is not yet modelled for, and which host (or Component) and services to
-- compare (default: localhost, every port).
-- Prosody 13 does not start with a block by port (util.sslconfig cannot
-- apply a number key): the audit must say so.
local NOT_ON_13 = { ["13"] = { fails = "attempt to index a number value" } }

local CONFIGS = {
  { "Prosody's defaults, EC key", {} },
  { "Prosody's defaults, RSA key", { key_kind = "rsa2048" } },
  { "protocol tlsv1+ from an old tutorial, EC key", { global = { ssl = { protocol = "tlsv1+" } } } },
  { "protocol tlsv1+, RSA key", { key_kind = "rsa2048", global = { ssl = { protocol = "tlsv1+" } } } },
  { "a cipher string that lowers the security level: TLS 1.0 served", { key_kind = "rsa2048",
    global = { ssl = { protocol = "tlsv1+", ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" } } } },
  { "no forward secrecy, RSA key", { key_kind = "rsa2048",
    global = { ssl = { ciphers = "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA" } } } },
  { "suites without forward secrecy an EC key cannot sign", {
    global = { ssl = { ciphers = "AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256" } } } },
  { "TLS 1.2 only", { global = { ssl = { protocol = "tlsv1_2" } } } },
  { "a VirtualHost's own block", { key_kind = "rsa2048",
    host_settings = { localhost = { ssl = { protocol = "tlsv1+", ciphers = "HIGH:!aNULL:@SECLEVEL=0" } } } } },
  { "a per-service block (c2s_ssl) with anonymous suites", { key_kind = "rsa2048",
    global = { c2s_ssl = { protocol = "tlsv1_1+", ciphers = "ALL:@SECLEVEL=0" } } } },
  { "DHE with the admin's dhparam", { key_kind = "rsa2048",
    -- (Prosody 0.12's SNI context of a direct TLS port has no DH
    -- parameters: the port's are a function by then, which 0.12's
    -- create_context drops; the port's own context has them)
    global = { ssl = { dhparam = DHPARAM, ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384" } } } },
  { "DHE suites without a dhparam", { key_kind = "rsa2048",
    global = { ssl = { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384" } } } },
  { "an ssl block in an Included file", { key_kind = "rsa2048",
    include = 'ssl = { protocol = "tlsv1+", ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" }\n' },
    nil, { host = "localhost", grade = "B" } },
  { "Prosody 13's ssl:append adds to the global block", { key_kind = "rsa2048",
    include = 'ssl = { protocol = "tlsv1+" }\nssl:append { ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" }\n' },
    { ["0.12"] = "0.12 has no option:append (its configuration does not load)" }, { host = "localhost", grade = "B" } },
  { "a Component with its own ssl block: TLS 1.0 and anonymous suites", { key_kind = "rsa2048",
    components = { ["conference.localhost"] = "muc" },
    host_settings = { ["conference.localhost"] = { ssl = { protocol = "tlsv1+", ciphers = "ALL:@SECLEVEL=0" } } } },
    nil, { host = "conference.localhost", services = { s2s_in = true }, grade = "F" } },
  { "a block for the direct TLS port alone (c2s_direct_tls_ssl[port]): TLS 1.0 there", { key_kind = "rsa2048",
    global = function(ports)
      return { c2s_direct_tls_ssl = { [ports.c2s_direct_tls] = { protocol = "tlsv1+",
        ciphers = "HIGH:!aNULL:@SECLEVEL=0" } } }
    end }, NOT_ON_13 },
  { "a block for one port inside the global ssl (ssl[port])", { key_kind = "rsa2048",
    global = function(ports)
      return { ssl = { protocol = "tlsv1_2", [ports.c2s_direct_tls] = { ciphers = "AES128-GCM-SHA256:AES256-SHA" } } }
    end }, NOT_ON_13 },
  { "a Component without a block of its own: the global one", {
    components = { ["conference.localhost"] = "muc" }, global = { ssl = { protocol = "tlsv1_2" } } },
    nil, { host = "conference.localhost", services = { s2s_in = true } } },
}

-- The suites a scan saw accepted, by OpenSSL's name.
local function scanned_suites(e)
  local set = {}
  for _, st in pairs(e.probe and e.probe.protocols or {}) do
    if st.accepted then
      for _, s in ipairs(st.suites) do set[s.openssl or s.name] = true end
    end
  end
  local list = {}
  for name in pairs(set) do list[#list + 1] = name end
  table.sort(list)
  return list
end

-- The recorded clients' outcomes of a scan and of the audit, the same.
local function same_clients(scanned, audited, label)
  assert(scanned and audited, label .. ": clients missing")
  assert.equal(#scanned, #audited, label .. ": clients")
  for i, c in ipairs(scanned) do
    local a = audited[i]
    local l = label .. ": client " .. c.name
    assert.equal(c.name, a.name, l)
    assert.equal(c.result.ok, a.result.ok, l .. ": " .. tostring(c.result.reason or a.result.reason))
    assert.equal(c.result.cause, a.result.cause, l)
    assert.equal(c.result.protocol, a.result.protocol, l)
    assert.same(c.result.suite, a.result.suite, l)
    assert.equal(c.result.group, a.result.group, l)
    assert.equal(c.result.dh_bits, a.result.dh_bits, l)
  end
end

local function sorted(t)
  local out = {}
  for i, v in ipairs(t or {}) do out[i] = v end
  table.sort(out)
  return out
end

prosody.each_version(describe, pending, "#truth the audit says what Prosody serves", function(v)
  for _, c in ipairs(CONFIGS) do
    local not_yet = c[3] and c[3][v.name]
    if type(not_yet) == "string" then
      pending(c[1] .. ": " .. not_yet)
    elseif not_yet then
      it(c[1] .. ": Prosody does not start, and the audit says so", function()
        local opts = { version = v.name }
        for k, x in pairs(c[2]) do opts[k] = x end
        local ok, err = pcall(prosody.start, opts)
        if ok then err.stop() end
        assert.is_false(ok, "Prosody " .. v.name .. " started")
        assert.matches(not_yet.fails, tostring(err), 1, true)
        -- the audit of the same settings
        local dir = pki.tmpdir()
        local ports = { c2s = 5222, s2s = 5269, c2s_direct_tls = 5223, s2s_direct_tls = 5270 }
        local global = type(c[2].global) == "function" and c[2].global(ports) or c[2].global
        local lines = { 'VirtualHost "localhost"' }
        for k, x in pairs(global) do table.insert(lines, 1, k .. " = " .. prosody.lua_value(x)) end
        table.insert(lines, 1, "c2s_direct_tls_ports = { 5223 }")
        local report = tlsharden.audit(table.concat(lines, "\n") .. "\n", { prosody = v.name, dir = dir })
        pki.cleanup(dir)
        local codes = {}
        for _, p in ipairs(report.problems) do codes[#codes + 1] = p.code end
        assert.is_truthy(("," .. table.concat(codes, ",") .. ","):find(",PROSODY_WILL_NOT_START,", 1, true))
      end)
    else
      it(c[1], function()
        local opts = { version = v.name }
        for k, x in pairs(c[2]) do opts[k] = x end
        local dh_dir = pki.tmpdir()
        if type(opts.global) == "table" and opts.global.ssl and opts.global.ssl.dhparam == DHPARAM then
          local ssl = {}
          for k, x in pairs(opts.global.ssl) do ssl[k] = x end
          ssl.dhparam = pki.write(dh_dir .. "/dh.pem", require("tlsharden.prosody.model").FFDHE2048)
          opts.global = { ssl = ssl }
        end
        local server = prosody.start(opts)
        local ok, err = pcall(function()
          local report = tlsharden.audit(server.config, { cafile = server.ca, prosody = v.name })
          local check = c[4] or { host = "localhost" }
          local audited = {}
          for _, h in ipairs(report.hosts) do
            if h.host == check.host then
              for _, s in ipairs(h.services) do audited[s.service] = s end
            end
          end
          for _, p in ipairs(PORTS) do
            if not check.services or check.services[p.service] then
              local a = assert(audited[p.service], "the audit has no " .. p.service .. " for " .. check.host)
              local r = tlsharden.scan("127.0.0.1:" .. server.ports[p.port], { starttls = p.starttls,
                xmpphost = check.host, cafile = server.ca, timeout = 5 })
              local e = r.endpoints[1]
              assert.equal("ok", e.status, p.service .. ": " .. tostring(e.reason))
              local label = ("%s of %s (%s)"):format(p.service, check.host, c[1])
              assert.same(e.probe.versions, a.context.served, label .. ": protocols")
              assert.same(scanned_suites(e), sorted(a.suites), label .. ": suites")
              assert.equal(e.grade.grade, a.grade.grade, label .. ": grade")
              -- what each recorded client gets: the same offline as served
              same_clients(e.clients, a.clients, label)
              if check.grade then assert.equal(check.grade, a.grade.grade, label .. ": the grade served") end
              if p.starttls == "none" and check.host == "localhost" then
                -- a client that sends no SNI gets the port's own context
                local port
                for _, pc in ipairs(report.ports) do
                  if pc.service == p.service and pc.port == server.ports[p.port] then port = pc end
                end
                assert(port, "the audit has no context of the " .. p.service .. " port")
                local r2 = tlsharden.scan("127.0.0.1:" .. server.ports[p.port], { starttls = p.starttls,
                  xmpphost = check.host, cafile = server.ca, timeout = 5, sni = false })
                local e2 = r2.endpoints[1]
                assert.equal("ok", e2.status, p.service .. " without SNI: " .. tostring(e2.reason))
                local label2 = ("%s port without SNI (%s)"):format(p.service, c[1])
                assert.same(e2.probe.versions, port.context.served, label2 .. ": protocols")
                assert.same(scanned_suites(e2), sorted(port.suites), label2 .. ": suites")
                assert.equal(e2.grade.grade, port.grade.grade, label2 .. ": grade")
              end
            end
          end
        end)
        server.stop()
        pki.cleanup(dh_dir)
        assert(ok, err)
      end)
    end
  end
end)
