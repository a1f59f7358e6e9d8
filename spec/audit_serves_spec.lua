-- The audit says what Prosody serves: a matrix of configurations, each
-- served by a real Prosody 0.12 and 13; every service of the host is
-- scanned from outside with tlsharden.scan, the same file is audited, and
-- the grade, the protocols and the suites must agree.
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
    global = { ssl = { dhparam = DHPARAM, ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384" } } },
    -- Prosody 0.12's direct TLS port refuses DHE to a client that sends
    -- SNI (openssl s_client -servername: handshake failure; without SNI:
    -- served): its port context and SNI contexts are not modelled yet
    { ["0.12"] = "0.12's direct TLS port with SNI serves no DHE; the audit does not model port and SNI contexts yet" } },
  { "DHE suites without a dhparam", { key_kind = "rsa2048",
    global = { ssl = { ciphers = "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384" } } } },
  { "an ssl block in an Included file", { key_kind = "rsa2048",
    include = 'ssl = { protocol = "tlsv1+", ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" }\n' },
    nil, { host = "localhost", grade = "B" } },
  { "a Component with its own ssl block: TLS 1.0 and anonymous suites", { key_kind = "rsa2048",
    components = { ["conference.localhost"] = "muc" },
    host_settings = { ["conference.localhost"] = { ssl = { protocol = "tlsv1+", ciphers = "ALL:@SECLEVEL=0" } } } },
    nil, { host = "conference.localhost", services = { s2s_in = true }, grade = "F" } },
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

local function sorted(t)
  local out = {}
  for i, v in ipairs(t or {}) do out[i] = v end
  table.sort(out)
  return out
end

prosody.each_version(describe, pending, "the audit says what Prosody serves", function(v)
  for _, c in ipairs(CONFIGS) do
    local not_yet = c[3] and c[3][v.name]
    if not_yet then
      pending(c[1] .. ": " .. not_yet)
    else
      it(c[1], function()
        local opts = { version = v.name }
        for k, x in pairs(c[2]) do opts[k] = x end
        local dh_dir = pki.tmpdir()
        if opts.global and opts.global.ssl and opts.global.ssl.dhparam == DHPARAM then
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
              if check.grade then assert.equal(check.grade, a.grade.grade, label .. ": the grade served") end
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
