--- A grade in the manner of SSL Labs' SSL Server Rating Guide, applied to
-- what applies to XMPP (no HSTS). The rules are data: `guides` holds each
-- guide version, so a caller can ask for either and the result says which
-- was used. See docs/reference/grading.md.
local errors = require "tlsharden.errors"

local grade = {}

--- Every grade, best first. T (untrusted certificate) and M (name
-- mismatch) rank below F: a trust failure outweighs any score.
grade.ORDER = { "A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M" }
local RANK = {}
for i, g in ipairs(grade.ORDER) do RANK[g] = i end

--- The rank of a grade (1 for A+), or nil for anything that is not one.
function grade.rank(g) return RANK[g] end

--- Whether grade a is worse than grade b (unknown values count as worst).
function grade.worse(a, b)
  return (RANK[a] or math.huge) > (RANK[b] or math.huge)
end

--- Whether grade g is below the minimum min (T and M count as failing).
function grade.below(g, min)
  return (RANK[g] or math.huge) > RANK[min]
end

-- Protocol scores.
local PROTOCOL_SCORE = { sslv2 = 0, sslv3 = 80, tlsv1 = 90, tlsv1_1 = 95, tlsv1_2 = 100, tlsv1_3 = 100 }

-- Key exchange: RSA-equivalent bits to score (the first limit the strength
-- is below gives the score).
local KX_STEPS = { { 512, 20 }, { 1024, 40 }, { 2048, 80 }, { 4096, 90 } }

-- Cipher strength: bits to score.
local CIPHER_STEPS = { { 1, 0 }, { 128, 20 }, { 256, 80 } }

-- Score to letter.
local LETTER_STEPS = { { 80, "A" }, { 65, "B" }, { 50, "C" }, { 35, "D" }, { 20, "E" } }

--- Guide versions. 2009r keeps 2009q's rules and caps a server without
-- TLS 1.3 at A- (a warning).
grade.guides = {
  ["2009q"] = { no_tls13_warning = false },
  ["2009r"] = { no_tls13_warning = true },
}
grade.default_guide = "2009q"

-- The guide names, sorted.
local function guide_names()
  local t = {}
  for name in pairs(grade.guides) do t[#t + 1] = name end
  table.sort(t)
  return t
end

--- Raise "tlsharden.<fn>: bad option 'guide': ..." unless name is nil or
-- a guide.
function grade.check_guide(fn, name)
  if name ~= nil and not grade.guides[name] then
    errors.option(fn, "guide", "unknown guide %s (known: %s)", errors.quote(name),
      table.concat(guide_names(), ", "))
  end
end

--- RSA-equivalent strength of a key (NIST SP 800-57 comparable strengths).
function grade.rsa_equivalent(key_type, bits)
  if not bits then return nil end
  local t = key_type and key_type:upper() or "RSA"
  if t == "EC" or t == "ECDSA" or t == "ECDH" or t == "X25519" or t == "X448" or t == "ED25519" or t == "ED448" then
    if bits >= 512 then return 15360 end
    if bits >= 384 then return 7680 end
    if bits >= 253 then return 3072 end
    if bits >= 224 then return 2048 end
    if bits >= 160 then return 1024 end
    return 512
  end
  return bits  -- RSA, DSA, DH
end

local function step_score(value, steps, top)
  for _, s in ipairs(steps) do
    if value < s[1] then return s[2] end
  end
  return top
end

local function protocol_score(protocols)
  local best, worst
  for _, p in ipairs(protocols) do
    local s = PROTOCOL_SCORE[p]
    if s then
      best = math.max(best or s, s)
      worst = math.min(worst or s, s)
    end
  end
  if not best then return 0 end
  return (best + worst) / 2
end

--- The key exchange score (0-100) of an RSA-equivalent strength in bits.
function grade.kx_step(bits) return step_score(bits, KX_STEPS, 100) end

local function kx_score(facts)
  if facts.anonymous then return 0, 0 end
  local cert = grade.rsa_equivalent(facts.key_type, facts.key_bits)
  local eph = facts.kx_bits
  local weakest = cert
  if eph and (not weakest or eph < weakest) then weakest = eph end
  if not weakest then return 0, 0 end
  return step_score(weakest, KX_STEPS, 100), weakest
end

local function cipher_score(suites)
  local best, worst
  for _, s in ipairs(suites) do
    local v = step_score(s.bits or 0, CIPHER_STEPS, 100)
    best = math.max(best or v, v)
    worst = math.min(worst or v, v)
  end
  if not best then return 0 end
  return (best + worst) / 2
end

local function letter_of(score)
  for _, s in ipairs(LETTER_STEPS) do
    if score >= s[1] then return s[2] end
  end
  return "F"
end
--- The letter a score earns before any cap.
grade.letter = letter_of

local function has(list, value)
  for _, v in ipairs(list or {}) do if v == value then return true end end
  return false
end

local function has_weak(suite, reason)
  return has(suite.weak, reason)
end

-- The caps of the scan's vulnerability checks (SSL Labs' guide and
-- testssl.sh's set_grade_cap): name, cap, what the reason calls it. The
-- derived ones (RC4, 64-bit blocks, EXPORT, SSLv2, compression) are
-- capped from the suites and protocols as well.
local VULN_CAPS = {
  { "heartbleed", "F", "Heartbleed (CVE-2014-0160)" },
  { "ccs_injection", "F", "CCS injection (CVE-2014-0224)" },
  { "robot", "F", "ROBOT (CVE-2017-13099)" },
  { "ticketbleed", "F", "Ticketbleed (CVE-2016-9244)" },
  { "drown", "F", "DROWN (CVE-2016-0800)" },
  { "crime", "C", "CRIME (CVE-2012-4929)" },
  { "poodle", "C", "POODLE (CVE-2014-3566)" },
  { "starttls_injection", "F", "STARTTLS command injection (CVE-2011-0411 class)" },
}

local FACTS = { "protocols", "suites", "key_type", "key_bits", "kx_bits", "anonymous", "cert",
  "compression", "secure_renegotiation", "fallback_scsv", "starttls", "vulnerabilities" }
local FACT_SET = {}
for _, k in ipairs(FACTS) do FACT_SET[k] = true end

--- A grade result as people read it: "A+", "T (B if trusted)", "T (A+
-- without the STARTTLS cap)", "M (A if the name matched)"; "-" for nil.
function grade.label(g)
  if not g then return "-" end
  if not g.grade_if_trusted then return g.grade end
  local why = " if trusted"
  if g.grade == "M" then why = " if the name matched"
  elseif g.t_cause == "starttls" then why = " without the STARTTLS cap" end
  return ("%s (%s%s)"):format(g.grade, g.grade_if_trusted, why)
end

--- grade.grade(facts [, opts]): see docs/reference/grading.md for the facts table.
function grade.grade(facts, opts)
  errors.table("grade", 1, "facts", facts)
  opts = errors.options("grade", 2, "opts", opts, { "guide", "starttls_cap" })
  for k in next, facts do
    if not FACT_SET[k] then
      errors.argument("grade", 1, "facts", "unknown fact %s (known: %s)", errors.quote(k),
        table.concat(FACTS, ", "))
    end
  end
  grade.check_guide("grade", opts.guide)
  local guide_name = opts.guide or grade.default_guide
  local guide = grade.guides[guide_name]
  local protocols = facts.protocols or {}
  local suites = facts.suites or {}
  local cert = facts.cert or {}
  local vulns = facts.vulnerabilities or {}

  local caps, warnings, reasons = {}, {}, {}
  local function cap(g, reason) caps[#caps + 1] = { grade = g, reason = reason } end
  local function warn(reason) warnings[#warnings + 1] = reason end

  local p_score = protocol_score(protocols)
  local k_score, k_bits = kx_score(facts)
  local c_score = cipher_score(suites)
  reasons[#reasons + 1] = ("protocol score %g (best and worst of %s)"):format(p_score,
    #protocols > 0 and table.concat(protocols, ", ") or "none")
  reasons[#reasons + 1] = k_bits and k_bits > 0 and
    ("key exchange score %g (weakest key %d bits RSA-equivalent)"):format(k_score, k_bits) or
    ("key exchange score %g"):format(k_score)
  reasons[#reasons + 1] = ("cipher strength score %g"):format(c_score)

  local score = 0.3 * p_score + 0.3 * k_score + 0.4 * c_score
  if p_score == 0 or k_score == 0 or c_score == 0 then
    score = 0
    reasons[#reasons + 1] = "a category scores 0, so the score is 0"
  end
  score = math.floor(score + 0.5)

  -- protocol caps
  if has(protocols, "sslv2") then cap("F", "SSL 2.0 is offered") end
  if has(protocols, "sslv3") then
    local best = 0
    for _, pr in ipairs(protocols) do best = math.max(best, PROTOCOL_SCORE[pr] or 0) end
    if best <= 80 then cap("F", "SSL 3.0 is the best protocol offered")
    else cap("B", "SSL 3.0 is offered") end
  end
  if has(protocols, "tlsv1") or has(protocols, "tlsv1_1") then cap("B", "TLS 1.0 or TLS 1.1 is offered") end
  if #protocols > 0 and not has(protocols, "tlsv1_2") and not has(protocols, "tlsv1_3") then
    cap("C", "neither TLS 1.2 nor TLS 1.3 is offered")
  end
  if guide.no_tls13_warning and not has(protocols, "tlsv1_3") then
    cap("A-", "TLS 1.3 is not offered (guide 2009r)")
  end

  -- key exchange caps
  if k_bits and k_bits > 0 then
    if k_score <= 40 then cap("F", ("key exchange of %d bits RSA-equivalent"):format(k_bits))
    elseif k_score <= 80 then cap("B", ("key exchange of %d bits RSA-equivalent"):format(k_bits)) end
  end
  if facts.anonymous then cap("F", "anonymous key exchange") end

  -- cipher caps
  local any_aead, any_fs = false, false
  local modern = has(protocols, "tlsv1_1") or has(protocols, "tlsv1_2") or has(protocols, "tlsv1_3")
  for _, s in ipairs(suites) do
    if s.aead then any_aead = true end
    if s.fs then any_fs = true end
    if (s.bits or 0) < 112 then cap("F", ("%s has fewer than 112 bits"):format(s.name or "a suite")) end
    if has_weak(s, "EXPORT") then cap("F", ("%s is an EXPORT suite"):format(s.name or "a suite")) end
    if has_weak(s, "RC4") then
      cap(modern and "C" or "B", ("%s uses RC4%s"):format(s.name or "a suite", modern and " with TLS 1.1 or later" or ""))
    end
    if (s.block_bits == 64 or has_weak(s, "DES")) and modern then
      cap("C", ("%s uses a 64-bit block cipher with TLS 1.1 or later"):format(s.name or "a suite"))
    end
  end
  if #suites > 0 and not any_aead then cap("B", "no AEAD suite is offered") end
  if #suites > 0 and not any_fs then cap("B", "no suite with forward secrecy is offered") end

  -- other server features
  if facts.compression then cap("C", "TLS compression is on (CRIME)") end
  -- the scan's checks: { status, ... } per name (or true for vulnerable)
  local function vulnerable(name)
    local v = vulns[name]
    return v == true or (type(v) == "table" and v.status == "vulnerable")
  end
  for _, v in ipairs(VULN_CAPS) do
    if vulnerable(v[1]) and not (v[1] == "crime" and facts.compression) then
      cap(v[2], ("vulnerable to %s"):format(v[3]))
    end
  end
  if facts.fallback_scsv == false then cap("A", "TLS_FALLBACK_SCSV is not supported") end
  if facts.secure_renegotiation == false then warn("secure renegotiation is not supported") end

  -- certificate caps
  local trust = {}
  if cert.trusted == false then trust[#trust + 1] = "the certificate chain is not trusted" end
  if cert.self_signed then trust[#trust + 1] = "the certificate is self-signed" end
  if cert.expired then trust[#trust + 1] = "the certificate has expired" end
  local digest = cert.signature_digest and cert.signature_digest:upper():gsub("%-", "")
  if digest == "SHA1" then trust[#trust + 1] = "the certificate is signed with SHA-1" end
  for _, r in ipairs(trust) do cap("T", r) end
  if digest == "MD5" or digest == "MD2" then cap("F", "the certificate is signed with " .. digest) end
  if cert.host_match == false then cap("M", "the certificate does not name the host") end
  local starttls_t = opts.starttls_cap and facts.starttls
  if starttls_t then cap("T", "STARTTLS rather than direct TLS (testssl.sh rule)") end

  -- the letter: score, then the lowest letter cap
  local letter = letter_of(score)
  for _, c in ipairs(caps) do
    -- T and M are not letters of the score: they replace it below
    if c.grade ~= "T" and c.grade ~= "M" and RANK[c.grade] > RANK[letter] then letter = c.grade end
  end
  if letter == "A" then
    local capped = false
    for _, c in ipairs(caps) do if c.grade == "A" then capped = true end end
    if #warnings > 0 then letter = "A-"
    elseif not capped then letter = "A+" end
  end
  local final = letter
  local has_t, has_m = false, false
  for _, c in ipairs(caps) do
    if c.grade == "T" then has_t = true end
    if c.grade == "M" then has_m = true end
  end
  if has_m then final = "M" elseif has_t then final = "T" end

  -- what the T stands for: the chain, the STARTTLS cap, or both
  local t_cause
  if final == "T" then
    t_cause = #trust > 0 and (starttls_t and "trust and starttls" or "trust") or "starttls"
  end
  return {
    grade = final,
    grade_if_trusted = final ~= letter and letter or nil,
    t_cause = t_cause,
    score = score,
    protocol_score = p_score,
    kx_score = k_score,
    cipher_score = c_score,
    caps = caps,
    warnings = warnings,
    reasons = reasons,
    guide = guide_name,
  }
end

return grade
