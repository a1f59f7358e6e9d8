--- The vulnerability checks as data, with no I/O: every check's name,
-- CVE and severity, the verdicts that follow from the wire probe's facts
-- alone (POODLE, SWEET32, FREAK, DROWN, LOGJAM, BEAST, LUCKY13, RC4, CRIME,
-- secure renegotiation, TLS_FALLBACK_SCSV), and the names found
-- vulnerable. tlsharden.scan.vulns makes the checks on the wire with it;
-- reports read it without loading the scanner. Every verdict is
-- { status, cve, evidence [, severity] [, suites] }. See
-- docs/reference/vulnerabilities.md.
local json = require "tlsharden.json"
local observe = require "tlsharden.scan.observe"
local protocols = require "tlsharden.protocols"

local M = {}

--- Every check, in the order the report lists them, with its CVE (or
-- nil) and the severity of a "vulnerable" verdict.
M.checks = {
  { name = "heartbleed", cve = "CVE-2014-0160", severity = "critical" },
  { name = "ccs_injection", cve = "CVE-2014-0224", severity = "high" },
  { name = "robot", cve = "CVE-2017-13099", severity = "high" },
  { name = "ticketbleed", cve = "CVE-2016-9244", severity = "high" },
  { name = "secure_renegotiation", cve = "CVE-2009-3555", severity = "medium" },
  { name = "client_renegotiation", cve = "CVE-2011-1473", severity = "medium" },
  { name = "crime", cve = "CVE-2012-4929", severity = "high" },
  { name = "poodle", cve = "CVE-2014-3566", severity = "medium" },
  { name = "sweet32", cve = "CVE-2016-2183", severity = "low" },
  { name = "freak", cve = "CVE-2015-0204", severity = "high" },
  { name = "drown", cve = "CVE-2016-0800", severity = "high" },
  { name = "logjam", cve = "CVE-2015-4000", severity = "high" },
  { name = "beast", cve = "CVE-2011-3389", severity = "low" },
  { name = "lucky13", cve = "CVE-2013-0169", severity = "low" },
  { name = "rc4", cve = "CVE-2013-2566", severity = "medium" },
  { name = "fallback_scsv", severity = "low" },
  { name = "early_data", severity = "medium" },
  { name = "grease", severity = "low" },
  { name = "starttls_injection", cve = "CVE-2011-0411", severity = "high" },
}
local BY_NAME = {}
for _, c in ipairs(M.checks) do BY_NAME[c.name] = c end

--- A verdict of the check name: { status, cve, evidence [, severity] }
-- and the fields of extra.
local function verdict(name, status, evidence, extra)
  local c = BY_NAME[name]
  local v = { status = status, cve = c.cve, evidence = evidence }
  if status == "vulnerable" then v.severity = c.severity end
  for k, x in pairs(extra or {}) do v[k] = x end
  return v
end

-- ---- what the probe saw ----

--- The probe's entry of protocol p where p was accepted, else nil.
local function accepted(pr, p)
  local st = pr.protocols and pr.protocols[p]
  return st and st.accepted and st or nil
end

local function probed(pr, p)
  return pr.protocols and pr.protocols[p] ~= nil
end

local function is_cbc(s) return (s.encryption or ""):find("%-cbc$") ~= nil end
local function is_rc4(s) return (s.encryption or ""):find("^rc4") ~= nil end
local function block64(s) return observe.block_bits(s) == 64 end

-- The accepted suites (once each) that pass keep, of the protocols in ps
-- (default all), and the names.
local function suites_where(pr, keep, ps)
  local seen, names = {}, json.list()
  for _, p in ipairs(ps or protocols.names) do
    local st = accepted(pr, p)
    for _, s in ipairs(st and st.suites or {}) do
      if keep(s, p) and not seen[s.name] then
        seen[s.name] = true
        names[#names + 1] = s.name
      end
    end
  end
  return names
end

local function list_text(names, limit)
  limit = limit or 4
  local shown = {}
  for i = 1, math.min(#names, limit) do shown[i] = names[i] end
  local text = table.concat(shown, ", ")
  if #names > limit then text = text .. (" and %d more"):format(#names - limit) end
  return text
end

--- The TLS versions below 1.3 the probe saw accepted, best first.
local function tls_below_13(pr)
  local out = {}
  for _, p in ipairs { "tlsv1_2", "tlsv1_1", "tlsv1" } do
    if accepted(pr, p) then out[#out + 1] = p end
  end
  return out
end

M.verdict, M.accepted, M.suites_where, M.tls_below_13 = verdict, accepted, suites_where, tls_below_13

--- The verdicts that follow from the probe's result alone. Returns a
-- table keyed by check name.
function M.derive(pr)
  local v = {}
  local any_tls = #(pr.versions or {}) > 0
  -- POODLE: SSL 3.0 with a CBC suite
  if not probed(pr, "sslv3") then
    v.poodle = verdict("poodle", "unknown", "SSL 3.0 was not probed")
  elseif not accepted(pr, "sslv3") then
    v.poodle = verdict("poodle", "not_vulnerable", "SSL 3.0 is not accepted")
  else
    local cbc = suites_where(pr, is_cbc, { "sslv3" })
    v.poodle = #cbc > 0 and verdict("poodle", "vulnerable", "SSL 3.0 with CBC suites: " .. list_text(cbc), { suites = cbc })
      or verdict("poodle", "not_vulnerable", "SSL 3.0 is accepted, but with no CBC suite")
  end
  -- SWEET32: 64-bit block ciphers
  local b64 = suites_where(pr, block64)
  v.sweet32 = #b64 > 0 and verdict("sweet32", "vulnerable", "64-bit block suites: " .. list_text(b64), { suites = b64 })
    or verdict("sweet32", "not_vulnerable", "no suite with a 64-bit block cipher")
  -- FREAK: EXPORT suites with RSA key exchange
  local freak = suites_where(pr, function(s) return s.export and s.kx == "RSA" end)
  v.freak = #freak > 0 and verdict("freak", "vulnerable", "EXPORT RSA suites: " .. list_text(freak), { suites = freak })
    or verdict("freak", "not_vulnerable", "no EXPORT RSA suite")
  -- DROWN: SSLv2 on this endpoint (a survey adds the same key elsewhere)
  if not probed(pr, "sslv2") then
    v.drown = verdict("drown", "unknown", "SSL 2.0 was not probed")
  elseif accepted(pr, "sslv2") then
    v.drown = verdict("drown", "vulnerable", "SSL 2.0 is accepted")
  else
    v.drown = verdict("drown", "not_vulnerable", "SSL 2.0 is not accepted here")
  end
  -- LOGJAM: EXPORT DH suites, or DH parameters of 1024 bits or fewer
  local dh_export = suites_where(pr, function(s) return s.export and (s.kx == "DHE" or s.kx == "DH") end)
  local small = suites_where(pr, function(s) return s.dh_bits ~= nil and s.dh_bits <= 1024 end)
  if #dh_export > 0 then
    v.logjam = verdict("logjam", "vulnerable", "EXPORT DH suites: " .. list_text(dh_export), { suites = dh_export })
  elseif #small > 0 then
    v.logjam = verdict("logjam", "vulnerable", ("DH parameters of %d bits: %s"):format(pr.dh_bits or 0,
      list_text(small)), { suites = small })
  elseif pr.dh_bits and pr.dh_bits <= 1024 then
    v.logjam = verdict("logjam", "vulnerable", ("DH parameters of %d bits"):format(pr.dh_bits))
  else
    local dhe = suites_where(pr, function(s) return s.kx == "DHE" or s.kx == "DH" end)
    v.logjam = #dhe == 0 and verdict("logjam", "not_applicable", "no DH key exchange")
      or verdict("logjam", "not_vulnerable", ("DH parameters of %d bits, no EXPORT DH suite"):format(pr.dh_bits or 0))
  end
  -- BEAST: CBC in SSL 3.0 or TLS 1.0
  local beast = suites_where(pr, is_cbc, { "sslv3", "tlsv1" })
  if #beast > 0 then
    v.beast = verdict("beast", "vulnerable", "CBC suites in SSL 3.0 or TLS 1.0: " .. list_text(beast), { suites = beast })
  elseif not accepted(pr, "sslv3") and not accepted(pr, "tlsv1") then
    v.beast = verdict("beast", "not_applicable", "neither SSL 3.0 nor TLS 1.0 is accepted")
  else
    v.beast = verdict("beast", "not_vulnerable", "no CBC suite in SSL 3.0 or TLS 1.0")
  end
  -- LUCKY13: CBC suites in TLS (any version before 1.3)
  local lucky = suites_where(pr, is_cbc, { "tlsv1", "tlsv1_1", "tlsv1_2" })
  v.lucky13 = #lucky > 0 and verdict("lucky13", "vulnerable", "CBC suites in TLS: " .. list_text(lucky), { suites = lucky })
    or verdict("lucky13", "not_vulnerable", "no CBC suite in TLS")
  -- RC4
  local rc4 = suites_where(pr, is_rc4)
  v.rc4 = #rc4 > 0 and verdict("rc4", "vulnerable", "RC4 suites: " .. list_text(rc4), { suites = rc4 })
    or verdict("rc4", "not_vulnerable", "no RC4 suite")
  -- CRIME: TLS compression
  if pr.compression == nil then
    v.crime = verdict("crime", any_tls and #tls_below_13(pr) == 0 and "not_applicable" or "unknown",
      any_tls and #tls_below_13(pr) == 0 and "TLS 1.3 has no compression" or "compression was not tried")
  elseif pr.compression ~= "null" and pr.compression ~= 0 then
    v.crime = verdict("crime", "vulnerable", ("TLS compression is accepted (%s)"):format(tostring(pr.compression)))
  else
    v.crime = verdict("crime", "not_vulnerable", "TLS compression is refused")
  end
  -- secure renegotiation (RFC 5746)
  if pr.secure_renegotiation == true then
    v.secure_renegotiation = verdict("secure_renegotiation", "not_vulnerable", "RFC 5746 renegotiation_info is answered")
  elseif pr.secure_renegotiation == false then
    v.secure_renegotiation = verdict("secure_renegotiation", "vulnerable", "no RFC 5746 renegotiation_info in the ServerHello")
  elseif any_tls and #tls_below_13(pr) == 0 and not accepted(pr, "sslv3") then
    v.secure_renegotiation = verdict("secure_renegotiation", "not_applicable", "TLS 1.3 has no renegotiation")
  else
    v.secure_renegotiation = verdict("secure_renegotiation", "unknown", "no ServerHello below TLS 1.3 to read it from")
  end
  -- TLS_FALLBACK_SCSV
  if pr.fallback_scsv == true then
    v.fallback_scsv = verdict("fallback_scsv", "not_vulnerable", ("a fallback to %s is refused (%s)"):format(
      protocols.label[pr.fallback_protocol] or tostring(pr.fallback_protocol),
      pr.fallback_answer == "closed" and "the connection closed without an alert, where the same hello without the SCSV was accepted"
        or "inappropriate_fallback"))
  elseif pr.fallback_scsv == false then
    v.fallback_scsv = verdict("fallback_scsv", "vulnerable", ("a fallback to %s is accepted despite TLS_FALLBACK_SCSV")
      :format(protocols.label[pr.fallback_protocol] or tostring(pr.fallback_protocol)))
  elseif any_tls and #(pr.versions or {}) < 2 then
    v.fallback_scsv = verdict("fallback_scsv", "not_applicable", "one protocol version only: nothing to fall back to")
  else
    v.fallback_scsv = verdict("fallback_scsv", "unknown", "the fallback attempt was not answered")
  end
  return v
end

--- The names of the vulnerable checks, most severe first.
local SEVERITY_RANK = { critical = 1, high = 2, medium = 3, low = 4 }
function M.vulnerable(checks)
  local out = {}
  for _, c in ipairs(M.checks) do
    local v = checks and checks[c.name]
    if v and v.status == "vulnerable" then out[#out + 1] = c.name end
  end
  table.sort(out, function(a, b)
    local ra, rb = SEVERITY_RANK[BY_NAME[a].severity], SEVERITY_RANK[BY_NAME[b].severity]
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  return out
end

return M
