--- DANE verdicts (RFC 6698, RFC 7671, RFC 7673): the TLSA records of a
-- service against the chain it served. The matching is tlsharden.core's
-- dane_match; this module decides what a match is worth, and a match is
-- only worth anything when the TLSA answer was DNSSEC-authenticated.
-- See docs/reference/dane.md.
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"
local problems = require "tlsharden.problems"

local M = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_VALUE = {}
for i = 1, #B64 do B64_VALUE[B64:byte(i)] = i - 1 end
local POW2 = { [0] = 1, 2, 4, 8, 16, 32, 64, 128 }

--- The DER bytes of the first certificate in a PEM text, or nil.
function M.der_from_pem(pem)
  local body = pem:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-(.-)%-%-%-%-%-END CERTIFICATE%-%-%-%-%-")
  if not body then return nil end
  local out, acc, bits = {}, 0, 0
  for c in body:gmatch("[%w+/]") do
    acc = acc * 64 + B64_VALUE[c:byte()]
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      local p = POW2[bits]
      local byte = (acc - acc % p) / p
      out[#out + 1] = string.char(byte)
      acc = acc - byte * p
    end
  end
  return table.concat(out)
end

-- A chain item as DER: a DER string, or a LuaSec certificate (its :pem()).
local function to_der(fn, i, item)
  if type(item) == "string" then
    if item:find("-----BEGIN CERTIFICATE-----", 1, true) then return M.der_from_pem(item) end
    return item
  end
  local ok, pem = pcall(function() return item:pem() end)
  local der = ok and type(pem) == "string" and M.der_from_pem(pem)
  if not der then
    errors.argument(fn, 2, "chain", "item %d is %s, expected DER, PEM or a LuaSec certificate", i, errors.quote(item))
  end
  return der
end

local USAGE = { [0] = "PKIX-TA", [1] = "PKIX-EE", [2] = "DANE-TA", [3] = "DANE-EE" }

--- Judge the TLSA records of a service against its chain. tlsa is the
-- result of a resolver's tlsa() (records, authenticated: validated as
-- secure, dnssec) or a plain list of
-- TLSA records; chain is a list of DER strings, PEM strings or LuaSec
-- certificates, the server's certificate first. opts.authenticated gives
-- the DNSSEC status for a plain list (default false).
-- Returns { status, authenticated, matched, pkix_required, matches,
-- records, certs, problems }; status is "none" (no TLSA records),
-- "unusable" (none usable: as if there were none, RFC 7671 §4.1),
-- "insecure" (not authenticated: not to be used, RFC 6698 §4.1), "valid"
-- or "invalid".
function M.check(tlsa, chain, opts)
  local fn = "scan.dane.check"
  if type(tlsa) ~= "table" then
    errors.argument(fn, 1, "tlsa", "expected a TLSA lookup result or a list of records, got %s", errors.quote(tlsa))
  end
  if type(chain) ~= "table" then
    errors.argument(fn, 2, "chain", "expected a list of certificates, got %s", errors.quote(chain))
  end
  opts = errors.options(fn, 3, "opts", opts, { authenticated = "boolean" })
  local records, authenticated = tlsa, opts.authenticated == true
  if tlsa.records ~= nil then
    records = tlsa.records
    if opts.authenticated == nil then authenticated = tlsa.authenticated == true end
  end
  local der = {}
  for i = 1, #chain do der[i] = to_der(fn, i, chain[i]) end
  local result = { authenticated = authenticated, matched = false, pkix_required = false,
    matches = {}, records = {}, certs = {}, problems = problems.list() }
  -- a chain that no usable record matches is an error; the rest warn
  local function problem(code, message)
    problems.add(result.problems, code == "DANE_MISMATCH" and "error" or "warning", code, message)
  end
  local tlsa_count = 0
  for _, r in ipairs(records) do
    if r.type == nil or r.type == "TLSA" then tlsa_count = tlsa_count + 1 end
  end
  if tlsa_count == 0 then
    result.status = "none"
    return result
  end
  if #der == 0 then errors.argument(fn, 2, "chain", "no certificate") end
  local m = core.wire.dane_match(records, der)
  result.records, result.certs = m.records, m.certs
  local usable = 0
  for i, r in ipairs(m.records) do
    if r.usable then
      usable = usable + 1
    elseif not r.skipped then
      problem("DANE_UNUSABLE_RECORD", ("TLSA record %d (%d %d %d) is unusable: %s")
        :format(i, r.usage, r.selector, r.matching_type, r.reason))
    end
  end
  for j, c in ipairs(m.certs) do
    if not c.parsed then problem("DANE_BAD_CERTIFICATE", ("certificate %d of the chain cannot be parsed"):format(j)) end
  end
  local dane_match, pkix_match = false, false
  for _, hit in ipairs(m.matches) do
    local entry = { record = hit.record, cert = hit.cert, usage = hit.usage, usage_name = USAGE[hit.usage],
      chain_ok = hit.chain_ok }
    result.matches[#result.matches + 1] = entry
    if hit.usage == 2 and not hit.chain_ok then
      problem("DANE_TA_CHAIN_BROKEN", ("TLSA record %d names certificate %d as trust anchor, but the chain below"
        .. " it is not issued and signed in order"):format(hit.record, hit.cert))
    elseif hit.usage == 2 or hit.usage == 3 then
      dane_match = true
    else
      pkix_match = true
    end
  end
  result.matched = dane_match or pkix_match
  result.pkix_required = pkix_match and not dane_match
  if usable == 0 then
    result.status = "unusable"
    problem("DANE_UNUSABLE", "no TLSA record is usable; DANE does not apply (RFC 7671 §4.1)")
  elseif not authenticated then
    result.status = "insecure"
    local status = type(tlsa.dnssec) == "table" and tlsa.dnssec.status
    problem("DANE_NOT_AUTHENTICATED", ("the TLSA answer was not validated as DNSSEC-secure%s; its records"
      .. " cannot be used (RFC 6698 §4.1)"):format(status and (" (" .. status .. ")") or ""))
  elseif result.matched then
    result.status = "valid"
  else
    result.status = "invalid"
    problem("DANE_MISMATCH", ("none of the %d usable TLSA records matches the chain served"):format(usable))
  end
  return result
end

return M
