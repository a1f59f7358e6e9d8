--- A small XMPP world on loopback for the survey specs: one real Prosody
-- with a few dozen virtual hosts, each served a known fault (expired,
-- self-signed, a self-signed root in the chain, wrong host, unknown CA,
-- missing intermediate, a 1024-bit RSA key, TLS 1.0, suites without
-- forward secrecy, SASL PLAIN before TLS, no certificate at all), DANE
-- records for two of them, the spec responder as an export-grade TLS
-- server and as an HTTP server, a refused port and a silent peer, all
-- found through SRV records of a DNSSEC-signed zone that a validating
-- unbound serves. `describe` lists what each endpoint was served, so a
-- spec can count what a report must say.
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local prosody = require "spec.helpers.prosody"
local servers = require "spec.helpers.servers"
local dns_servers = require "spec.helpers.dns_servers"

local M = {}

M.ZONE = "survey.test"

-- fault: what the certificate is; key: its key; the flags change the
-- host's TLS or XMPP settings. Every host has a c2s and an s2s STARTTLS
-- endpoint; direct adds a direct TLS c2s one.
M.HOSTS = {
  { name = "good1", fault = "good", key = "ec256", dane = "valid" },
  { name = "good2", fault = "good", key = "ec256", dane = "invalid" },
  { name = "good3", fault = "good", key = "ec256", direct = true },
  { name = "good4", fault = "good", key = "rsa2048" },
  { name = "good5", fault = "good", key = "rsa4096" },
  { name = "chain1", fault = "good_chain", key = "ec256" },
  { name = "weak1", fault = "good", key = "rsa1024" },
  { name = "weak2", fault = "good", key = "rsa1024" },
  { name = "expired1", fault = "expired", key = "ec256" },
  { name = "expired2", fault = "expired", key = "rsa2048" },
  { name = "selfsigned1", fault = "self_signed", key = "ec256" },
  { name = "selfsigned2", fault = "self_signed", key = "rsa2048" },
  { name = "rogue1", fault = "self_signed_chain", key = "ec256" },
  { name = "rogue2", fault = "self_signed_chain", key = "ec256" },
  { name = "wronghost1", fault = "wrong_host", key = "ec256" },
  { name = "wronghost2", fault = "wrong_host", key = "rsa2048" },
  { name = "unknownca1", fault = "untrusted", key = "ec256" },
  { name = "nointer1", fault = "missing_intermediate", key = "ec256" },
  { name = "plain1", fault = "good", key = "ec256", plain = true },
  { name = "tls10", fault = "good", key = "rsa2048", tls10 = true },
  { name = "nofs1", fault = "good", key = "rsa2048", nofs = true },
  { name = "nocert1", fault = "none" },
}

local function fqdn(name) return name .. "." .. M.ZONE end
M.fqdn = fqdn

-- The SHA-256 of a certificate's SubjectPublicKeyInfo, in hex (TLSA 3 1 1).
local function spki_sha256(cert)
  return sh.run(("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"):format(
    sh.quote(cert))):match("^(%x+)")
end

local function concat_files(out, paths)
  local parts = {}
  for i, p in ipairs(paths) do parts[i] = pki.read(p) end
  pki.write(out, table.concat(parts))
  return out
end

-- The certificate files of one host for its fault.
local function host_cert(dir, h, cas)
  local name = fqdn(h.name)
  local base = { cn = name, san = { "DNS:" .. name }, key_kind = h.key, issuer = cas.ca }
  local f = h.fault
  if f == "none" then return false end
  if f == "expired" then
    base.not_before, base.not_after = "20200101000000Z", "20210101000000Z"
  elseif f == "self_signed" then
    base.issuer = nil
  elseif f == "self_signed_chain" or f == "untrusted" then
    base.issuer = cas.rogue
  elseif f == "wrong_host" then
    base.cn, base.san = "elsewhere.test", { "DNS:elsewhere.test" }
  elseif f == "missing_intermediate" or f == "good_chain" then
    base.issuer = cas.inter
  end
  local c = pki.cert(dir, h.name, base)
  if f == "self_signed_chain" then
    c.cert = concat_files(dir .. "/" .. h.name .. ".chain.crt", { c.cert, cas.rogue.cert })
  elseif f == "good_chain" then
    c.cert = concat_files(dir .. "/" .. h.name .. ".chain.crt", { c.cert, cas.inter.cert })
  end
  return c
end

local OPENSSL_CONF = [[
openssl_conf = init
[init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
CipherString = DEFAULT:@SECLEVEL=0
]]

--- Start it all. Returns the fixture: list (the survey's list text),
-- resolver ("127.0.0.1:PORT"), cafile, prosody, endpoints (describe()),
-- stop(). Everything started is stopped by stop(), also when starting
-- fails half way.
function M.start()
  local fx = { started = {} }
  local function keep(s) fx.started[#fx.started + 1] = s return s end
  function fx.stop()
    for i = #fx.started, 1, -1 do pcall(fx.started[i].stop) end
    fx.started = {}
    pki.cleanup(fx.dir)
  end
  local ok, err = pcall(function()
    local dir = pki.tmpdir()
    fx.dir = dir
    local cas = {}
    cas.ca = pki.cert(dir, "ca", { ca = true, cn = "survey test CA" })
    cas.inter = pki.cert(dir, "inter", { ca = true, cn = "survey test intermediate", issuer = cas.ca })
    cas.rogue = pki.cert(dir, "rogue", { ca = true, cn = "survey rogue root" })
    fx.cafile = cas.ca.cert
    local hosts, certs, host_settings = {}, {}, {}
    for _, h in ipairs(M.HOSTS) do
      local name = fqdn(h.name)
      hosts[#hosts + 1] = name
      local c = host_cert(dir, h, cas)
      certs[name] = c
      h.cert = c and c.cert or nil
      local s = {}
      if h.plain then s.c2s_require_encryption, s.allow_unencrypted_plain_auth = false, true end
      if h.tls10 then
        -- the floor, the profile's own no_tlsv1* options and its cipher list
        s.ssl = { protocol = "tlsv1+", options = { no_tlsv1 = false, no_tlsv1_1 = false }, ciphers = "HIGH:!aNULL" }
      end
      if h.nofs then s.ssl = { ciphers = "AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256" } end
      if next(s) then host_settings[name] = s end
    end
    -- a 1024-bit key and TLS 1.0 need OpenSSL's security level 0, as on any
    -- server that still serves them
    local conf = pki.write(dir .. "/openssl.cnf", OPENSSL_CONF)
    fx.prosody = keep(prosody.start { hosts = hosts, certs = certs, host_settings = host_settings,
      env = "OPENSSL_CONF=" .. conf })
    local ports = fx.prosody.ports
    -- the responder: export-grade TLS and HTTP; a silent peer; a refused port
    local export_cert = pki.cert(dir, "export", { cn = fqdn("export"), san = { "DNS:" .. fqdn("export") },
      key_kind = "rsa2048", issuer = cas.ca })
    local der = dir .. "/export.der"
    sh.run(("openssl x509 -in %s -outform DER -out %s"):format(sh.quote(export_cert.cert), sh.quote(der)))
    local responder = "lua5.4 spec/helpers/responder.lua {port} "
    fx.export = keep(servers.start(responder .. sh.quote(([[{ versions = { "sslv3", "tlsv1" }, cert = %q,
      suites = { { 0x0003, "rsa_export" }, { 0x0006, "rsa_export" }, { 0x0004, "rsa" }, { 0x002F, "rsa" } } }]]):format(der)), dir))
    fx.http = keep(servers.start(responder .. sh.quote('{ mode = "http" }'), dir))
    fx.silent = keep(servers.start(responder .. sh.quote('{ mode = "silent" }'), dir))
    fx.refused_port = servers.free_port()
    -- the zone
    local records = {}
    local function add(fmt, ...) records[#records + 1] = fmt:format(...) end
    local spki = {}
    for _, h in ipairs(M.HOSTS) do
      add("%s IN A 127.0.0.1", h.name)
      add("_xmpp-client._tcp.%s IN SRV 0 5 %d %s.", h.name, ports.c2s, fqdn(h.name))
      add("_xmpp-server._tcp.%s IN SRV 0 5 %d %s.", h.name, ports.s2s, fqdn(h.name))
      if h.direct then add("_xmpps-client._tcp.%s IN SRV 0 5 %d %s.", h.name, ports.c2s_direct_tls, fqdn(h.name)) end
      if h.cert then spki[h.name] = spki_sha256(h.cert) end
    end
    for _, h in ipairs(M.HOSTS) do
      if h.dane then
        -- "invalid": the digest of another host's key
        local digest = h.dane == "valid" and spki[h.name] or spki.good1
        for _, port in ipairs { ports.c2s, ports.s2s } do add("_%d._tcp.%s IN TLSA 3 1 1 %s", port, h.name, digest) end
      end
    end
    add("export IN A 127.0.0.1")
    add("_xmpps-client._tcp.export IN SRV 0 5 %d %s.", fx.export.port, fqdn("export"))
    add("_xmpp-server._tcp.export IN SRV 0 0 0 .")
    add("http IN A 127.0.0.1")
    add("_xmpp-client._tcp.http IN SRV 0 5 %d %s.", fx.http.port, fqdn("http"))
    add("_xmpp-server._tcp.http IN SRV 0 0 0 .")
    add("refused IN A 127.0.0.1")
    add("silent IN A 127.0.0.1")
    fx.dns = keep(dns_servers.unbound { zone = M.ZONE, records = records })
    fx.resolver = fx.dns.address
    -- the zone's own trust anchor, from which the scanner validates
    fx.trust_anchor = pki.write(dir .. "/anchor.ds", fx.dns.ds)
    local lines = { "# a loopback Prosody and its neighbours (spec/helpers/survey_fixture.lua)" }
    for _, h in ipairs(M.HOSTS) do lines[#lines + 1] = fqdn(h.name) end
    lines[#lines + 1] = fqdn("export") .. "   # export-grade TLS"
    lines[#lines + 1] = fqdn("http")
    lines[#lines + 1] = fqdn("missing") .. "  # not in the zone"
    lines[#lines + 1] = ("%s:%d"):format(fqdn("refused"), fx.refused_port)
    lines[#lines + 1] = ("%s:%d"):format(fqdn("silent"), fx.silent.port)
    fx.list = table.concat(lines, "\n") .. "\n"
    fx.endpoints = M.describe(fx)
  end)
  if not ok then
    fx.stop()
    error(err, 0)
  end
  return fx
end

local KEYS = { ec256 = "EC 256", rsa1024 = "RSA 1024", rsa2048 = "RSA 2048", rsa4096 = "RSA 4096" }

--- What every endpoint was served: a list of { target, kind, tls,
-- status, protocols (set), key, cert (the fault), fs ("all", "some",
-- "none"), weak, export, starttls, required, plain (nil where there is no
-- stream before TLS), dane }.
function M.describe(fx)
  local out = {}
  local function ep(t) out[#out + 1] = t return t end
  for _, h in ipairs(M.HOSTS) do
    local protocols = { tlsv1_2 = true, tlsv1_3 = true }
    if h.tls10 then protocols.tlsv1, protocols.tlsv1_1 = true, true end
    local kinds = { { "c2s", "starttls" }, { "s2s", "starttls" } }
    if h.direct then kinds[#kinds + 1] = { "c2s", "direct" } end
    for _, k in ipairs(kinds) do
      local e = { target = fqdn(h.name), kind = k[1], tls = k[2] }
      if h.fault == "none" then
        -- Prosody offers STARTTLS with a context that has no certificate:
        -- every handshake fails
        e.status, e.starttls, e.required = "tls_failed", true, true
        if k[1] == "c2s" then e.plain = false end
      else
        e.status, e.protocols, e.key, e.cert = "ok", protocols, KEYS[h.key], h.fault
        -- RSA key exchange is in the two cipher lists of nofs1 and tls10
        e.fs, e.weak, e.export = (h.nofs or h.tls10) and "some" or "all", false, false
        if k[2] == "starttls" then
          e.starttls, e.required = true, not (h.plain and k[1] == "c2s")
          if k[1] == "c2s" then e.plain = h.plain == true end
          e.dane = h.dane or "none"
        else
          e.dane = "none"
        end
      end
      ep(e)
    end
  end
  -- SSL 3.0 and TLS 1.0 with export and RC4 suites only: no handshake
  -- here can finish it, so what follows TLS is not seen (tls_only)
  ep { target = fqdn("export"), kind = "c2s", tls = "direct", status = "tls_only", protocols = { sslv3 = true, tlsv1 = true },
    key = "RSA 2048", cert = "good", fs = "none", weak = true, export = true, dane = "none" }
  ep { target = fqdn("export"), kind = "s2s", status = "dns" }
  ep { target = fqdn("http"), kind = "c2s", tls = "starttls", status = "not_xmpp" }
  ep { target = fqdn("http"), kind = "s2s", status = "dns" }
  ep { target = fqdn("missing"), kind = "c2s", status = "dns" }
  ep { target = fqdn("missing"), kind = "s2s", status = "dns" }
  -- HOST:PORT is one service, as a scan of it is: c2s
  ep { target = ("%s:%d"):format(fqdn("refused"), fx.refused_port), kind = "c2s", tls = "starttls", status = "refused" }
  ep { target = ("%s:%d"):format(fqdn("silent"), fx.silent.port), kind = "c2s", tls = "starttls", status = "timeout" }
  return out
end

return M
