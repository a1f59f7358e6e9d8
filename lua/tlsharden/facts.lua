--- The grading facts (docs/reference/grading.md), built in one place: from a live
-- context (what inspect, forward_secrecy and chain found; the audit, the
-- plugin and new_context) or from what a scanner observed on the wire.
-- The grade itself never knows which of the two it was given.
local grade = require "tlsharden.grade"

local facts = {}

-- OpenSSL's names of the groups it knows, by the registry's (IANA) name;
-- the registry (core.wire.groups) owns their sizes.
local OPENSSL_NAMES = {
  X25519 = "x25519", X448 = "x448",
  ["P-256"] = "secp256r1", prime256v1 = "secp256r1",
  ["P-384"] = "secp384r1", ["P-521"] = "secp521r1",
}

-- The registry's elliptic-curve and finite-field groups by IANA name
-- (x25519, brainpoolP256r1, ffdhe2048, ...), as a scanner names what it saw.
local REGISTRY_GROUPS
local function registry_group(name)
  if not REGISTRY_GROUPS then
    REGISTRY_GROUPS = {}
    for _, g in ipairs(require("tlsharden.core").wire.groups()) do
      if g.kind == "ec" or g.kind == "ecx" or g.kind == "ffdhe" then REGISTRY_GROUPS[g.name] = g end
    end
  end
  return REGISTRY_GROUPS[OPENSSL_NAMES[name] or name]
end

--- The RSA-equivalent strength of a group name (OpenSSL's or IANA's), or
-- nil for a group without one (post-quantum and hybrid groups).
local function group_strength(name)
  local g = registry_group(name)
  if not g then return nil end
  if g.kind == "ffdhe" then return g.bits end
  return grade.rsa_equivalent("EC", g.bits)
end

facts.group_strength = group_strength

-- The weakest group in a ':'-separated list.
local function weakest_group(list)
  local weakest
  for g in (list or ""):gmatch("[^:]+") do
    local eq = group_strength(g)
    if eq and (not weakest or eq < weakest) then weakest = eq end
  end
  return weakest
end

-- OpenSSL's groups when nothing narrowed them.
local OPENSSL_DEFAULT_GROUPS = "X25519:P-256:X448:P-521:P-384"

local function problem_set(chain)
  local set = {}
  for _, p in ipairs(chain and chain.problems or {}) do set[p.code] = true end
  return set
end

--- The certificate part of the facts from a tlsharden.chain result.
function facts.cert(chain)
  if not chain then return nil end
  local leaf = chain.certs[1]
  local problems = problem_set(chain)
  return {
    trusted = chain.trusted,
    self_signed = problems.SELF_SIGNED or (leaf and leaf.self_signed) or false,
    expired = problems.EXPIRED or false,
    host_match = not problems.HOST_MISMATCH,
    signature_digest = leaf and leaf.signature_digest,
  }
end

-- The authentication a certificate's key can do in TLS 1.2 and older.
local AUTH_OF_KEY = { RSA = "RSA", ["RSA-PSS"] = "RSA", EC = "ECDSA", ED25519 = "ECDSA", ED448 = "ECDSA",
  DSA = "DSS" }

local RANK = { sslv3 = 1, tlsv1 = 2, tlsv1_1 = 3, tlsv1_2 = 4, tlsv1_3 = 5 }

--- The versions a client can get from a context: inspect's served (a
-- real handshake per version, when inspected with probe), else the ones
-- the context enables.
function facts.served_versions(inspect)
  return inspect.served or inspect.versions
end

--- The suites a client can get from a context (inspect and fs as for
-- from_context): for a server, TLS 1.3's when it serves TLS 1.3, and those
-- of TLS 1.2 and older that it can use (DH parameters, a group), that its
-- certificate can authenticate (or anonymous ones) and that a version it
-- serves can carry; for a client, every usable suite it offers.
function facts.served_suites(inspect, fs)
  local served, top, tls13 = facts.served_versions(inspect), 0, false
  for _, v in ipairs(served) do
    if v == "tlsv1_3" then tls13 = true elseif (RANK[v] or 0) > top then top = RANK[v] end
  end
  local auth = inspect.certificate and AUTH_OF_KEY[inspect.certificate.key_type]
  local client = inspect.mode == "client"
  local list = {}
  for _, s in ipairs(fs.suites) do
    local ok = s.usable ~= false
    if s.protocol == "tlsv1_3" then
      ok = ok and tls13
    else
      ok = ok and top >= (RANK[s.protocol] or 1)
        and (client or s.auth == "None" or s.auth == auth)
    end
    if ok then list[#list + 1] = s end
  end
  return list
end

--- Facts of a context: inspect is tlsharden.inspect(ctx), fs the details
-- of tlsharden.forward_secrecy(ctx), chain a tlsharden.chain result or
-- nil. opts: curveslist (the configured groups, when harden did not set
-- them), starttls (the service starts TLS inside the XMPP stream).
function facts.from_context(inspect, fs, chain, opts)
  opts = opts or {}
  local suites = facts.served_suites(inspect, fs)
  local kx = weakest_group(inspect.groups or opts.curveslist or OPENSSL_DEFAULT_GROUPS)
  local cert = inspect.certificate
  local anonymous
  for _, s in ipairs(suites) do
    if s.kx == "DHE" and cert then
      -- automatic DH parameters follow the RSA key's size
      local dh = cert.key_type == "RSA" and cert.key_bits or 2048
      if not kx or dh < kx then kx = dh end
    end
    -- a suite without authentication, as a scan sees it served
    if s.auth == "None" and inspect.mode ~= "client" then anonymous = true end
  end
  return {
    protocols = facts.served_versions(inspect),
    anonymous = anonymous,
    suites = suites,
    key_type = cert and cert.key_type,
    key_bits = cert and cert.key_bits,
    kx_bits = kx,
    cert = facts.cert(chain),
    -- What OpenSSL 3 servers do whatever the context says: no TLS
    -- compression (Debian builds it out), RFC 5746 renegotiation and
    -- TLS_FALLBACK_SCSV are always honoured.
    compression = false,
    secure_renegotiation = true,
    fallback_scsv = true,
    starttls = opts.starttls,
  }
end

--- Facts of a server seen from outside (scan/observe.lua makes them).
-- observed: protocols (names), suites (tables with name, bits,
-- aead, fs, weak, block_bits), key_type, key_bits, groups (names the
-- server accepted), dh_bits (the smallest DH group it used), compression,
-- secure_renegotiation, fallback_scsv (each true, false or nil when not
-- tested), anonymous, starttls, vulnerabilities (the scan's checks);
-- chain a tlsharden.chain result of the
-- chain it sent. Without key_type and key_bits, the key is the served
-- leaf's (from chain).
function facts.from_observation(observed, chain)
  local leaf = chain and chain.certs and chain.certs[1]
  local key_type, key_bits = observed.key_type, observed.key_bits
  if key_type == nil and key_bits == nil and leaf then key_type, key_bits = leaf.key_type, leaf.key_bits end
  local kx
  for _, g in ipairs(observed.groups or {}) do
    local eq = group_strength(g)
    if eq and (not kx or eq < kx) then kx = eq end
  end
  if observed.dh_bits and (not kx or observed.dh_bits < kx) then kx = observed.dh_bits end
  return {
    protocols = observed.protocols or {},
    suites = observed.suites or {},
    key_type = key_type,
    key_bits = key_bits,
    kx_bits = kx,
    anonymous = observed.anonymous,
    cert = facts.cert(chain),
    compression = observed.compression,
    secure_renegotiation = observed.secure_renegotiation,
    fallback_scsv = observed.fallback_scsv,
    starttls = observed.starttls,
    vulnerabilities = observed.vulnerabilities,
  }
end

return facts
