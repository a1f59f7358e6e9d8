--- What a live scan observed at one endpoint, in the shapes the rest of
-- tlsharden takes: the observed facts of the grading pipeline
-- (facts.from_observation), the wire probe's result trimmed to plain data
-- (no certificate bytes, every list a JSON list) and the endpoint's
-- problem records. No I/O here. See docs/reference/scan.md, "Scan result".
local json = require "tlsharden.json"
local problems = require "tlsharden.problems"
local protocols = require "tlsharden.protocols"

-- Below this, DH parameters are weak (the one limit, kept by the core).
local DH_MIN_BITS = require("tlsharden.core").limits.dh_min_bits

local M = {}

local list = json.list

local PROTOCOLS = protocols.names

--- 64 for a suite whose cipher has a 64-bit block (SWEET32: DES, 3DES,
-- IDEA, RC2), else nil.
function M.block_bits(s)
  local e = s.encryption or ""
  if e:find("^des") or e:find("^idea") or e:find("^rc2") then return 64 end
  return nil
end

--- The key exchange real clients get, as SSL Labs rates it: where any
-- recorded client (tlsharden.scan.simulate) connected, observed.groups
-- and observed.dh_bits become the groups and the smallest DH size those
-- clients negotiated. Returns what the probe found accepted that no
-- client got and that scores lower than the weakest any client got:
-- groups (and "DH n" for a DH size) a client gets only by asking for
-- nothing better; an empty list when no client connected.
function M.kx_from_clients(observed, clients)
  local facts = require "tlsharden.facts"
  local kx_step = require("tlsharden.grade").kx_step
  local function lower(a, b) return kx_step(a) < kx_step(b) end
  local got, seen, dh, any = {}, {}, nil, false
  for _, c in ipairs(clients or {}) do
    local r = c.result
    if r and r.ok then
      any = true
      if type(r.group) == "string" and not seen[r.group] then
        seen[r.group] = true
        got[#got + 1] = r.group
      end
      if r.dh_bits and (not dh or r.dh_bits < dh) then dh = r.dh_bits end
    end
  end
  local alone = list()
  if not any then return alone end
  local weakest = dh
  for _, g in ipairs(got) do
    local eq = facts.group_strength(g)
    if eq and (not weakest or eq < weakest) then weakest = eq end
  end
  for _, g in ipairs(observed.groups or {}) do
    local eq = facts.group_strength(g)
    if not seen[g] and eq and weakest and lower(eq, weakest) then alone[#alone + 1] = g end
  end
  if observed.dh_bits and weakest and lower(observed.dh_bits, weakest) and not dh then
    alone[#alone + 1] = "DH " .. observed.dh_bits
  end
  observed.groups, observed.dh_bits = got, dh
  return alone
end

local function copy_list(t)
  local out = list()
  for i, v in ipairs(t or {}) do out[i] = v end
  return out
end

local function has(t, v)
  for _, x in ipairs(t or {}) do if x == v then return true end end
  return false
end

--- Every suite the probe saw accepted, once each (the first protocol that
-- accepted it), lowest protocol first.
local function accepted_suites(pr)
  local seen, out = {}, {}
  for _, p in ipairs(PROTOCOLS) do
    local st = pr.protocols[p]
    if st and st.accepted then
      for _, s in ipairs(st.suites) do
        if not seen[s.id] then
          seen[s.id] = true
          out[#out + 1] = s
        end
      end
    end
  end
  return out
end

--- The observed facts (facts.from_observation) from a probe result.
-- starttls: the endpoint starts TLS inside the XMPP stream.
function M.facts(pr, starttls)
  local suites, anonymous = {}, false
  for _, s in ipairs(accepted_suites(pr)) do
    suites[#suites + 1] = { name = s.name, bits = s.bits, aead = s.aead, fs = s.fs,
      weak = s.weak, block_bits = M.block_bits(s) }
    if s.auth == "None" then anonymous = true end
  end
  -- the weakest group of any version: TLS 1.3's and the best one below it
  local groups, seen = {}, {}
  for _, p in ipairs(PROTOCOLS) do
    local st = pr.protocols[p]
    for _, g in ipairs(st and st.groups or {}) do
      if not seen[g] then
        seen[g] = true
        groups[#groups + 1] = g
      end
    end
  end
  for _, s in ipairs(accepted_suites(pr)) do
    if s.group and not seen[s.group] and type(s.group) == "string" then
      seen[s.group] = true
      groups[#groups + 1] = s.group
    end
  end
  local compression
  if pr.compression ~= nil then compression = pr.compression ~= "null" and pr.compression ~= 0 end
  return {
    protocols = copy_list(pr.versions),
    suites = suites,
    groups = groups,
    dh_bits = pr.dh_bits,
    compression = compression,
    secure_renegotiation = pr.secure_renegotiation,
    fallback_scsv = pr.fallback_scsv,
    anonymous = anonymous or nil,
    starttls = starttls,
  }
end

local SUITE_FIELDS = { "id", "hex", "name", "iana", "openssl", "protocol", "kx", "auth", "encryption",
  "bits", "alg_bits", "mac", "aead", "export", "fs", "registered", "sslv2", "tls13", "dh_bits", "group",
  "rsa_bits" }

local function trim_suite(s)
  local t = {}
  for _, k in ipairs(SUITE_FIELDS) do t[k] = s[k] end
  t.weak = copy_list(s.weak)
  return t
end

local function trim_problems(ps)
  local out = problems.list()
  for i, p in ipairs(ps or {}) do out[i] = problems.copy(p) end
  return out
end

--- The probe's result as plain data: every protocol with its suites (the
-- registry fields, without certificate bytes), the server-wide answers,
-- and the chains it saw described (protocol, suite, auth, count).
function M.trim_probe(pr)
  local out = {
    versions = copy_list(pr.versions), protocols = {},
    groups = copy_list(pr.groups), group_preference = pr.group_preference, preferred_group = pr.preferred_group,
    key_share_wins = pr.key_share_wins,
    dh_bits = pr.dh_bits, secure_renegotiation = pr.secure_renegotiation,
    extended_master_secret = pr.extended_master_secret, compression = pr.compression,
    fallback_scsv = pr.fallback_scsv, fallback_protocol = pr.fallback_protocol, fallback_answer = pr.fallback_answer,
    resumption = pr.resumption and { protocol = pr.resumption.protocol, session_id = pr.resumption.session_id,
      session_ticket = pr.resumption.session_ticket } or nil,
    chains = list(), problems = trim_problems(pr.problems),
    connections = pr.connections, elapsed = pr.elapsed,
  }
  for _, p in ipairs(PROTOCOLS) do
    local st = pr.protocols[p]
    if st then
      local suites = list()
      for i, s in ipairs(st.suites) do suites[i] = trim_suite(s) end
      out.protocols[p] = {
        name = p, accepted = st.accepted, answer = st.answer, alert = st.alert, answered_with = st.answered_with,
        suites = suites, preference = st.preference, groups = st.groups and copy_list(st.groups) or nil,
        group_preference = st.group_preference, preferred_group = st.preferred_group,
        key_share_wins = st.key_share_wins,
        chunks = st.chunks, connections = st.connections,
      }
    end
  end
  for i, c in ipairs(pr.chains or {}) do
    out.chains[i] = { protocol = c.protocol, suite = c.suite, auth = c.auth, count = #c.certificates }
  end
  return out
end

--- Mark the lists of a chain, facts and grade result as JSON lists (so
-- that an empty one encodes as []); returns nothing.
function M.mark_lists(chain, facts, g)
  if chain then
    list(chain.certs)
    list(chain.problems)
    for _, c in ipairs(chain.certs) do
      list(c.dns_names)
      list(c.srv_ids)
      list(c.xmpp_addrs)
    end
  end
  if facts then
    list(facts.protocols)
    list(facts.suites)
    for _, s in ipairs(facts.suites or {}) do list(s.weak) end
  end
  if g then
    list(g.caps)
    list(g.warnings)
    list(g.reasons)
  end
end

-- ---- problems ----

local function names(suites, limit)
  local t = {}
  for i, s in ipairs(suites) do
    if i > limit then
      t[#t + 1] = ("and %d more"):format(#suites - limit)
      break
    end
    t[#t + 1] = s.name
  end
  return table.concat(t, ", ")
end

--- The endpoint's problem records from what was observed: e is the
-- endpoint record (xmpp, probe, chain, dane filled in), pr the probe's raw
-- result, j pipeline.judge_observation's result, pre and after the XMPP
-- exchanges before and after TLS.
function M.problems(e, pr, j, pre, after, hs)
  local add = problems.adder(e.problems)
  local x = e.xmpp
  -- XMPP before TLS
  if pre then
    for _, p in ipairs(pre.problems or {}) do add(p.severity, p.code, p.message) end
    if pre.starttls and not pre.starttls_required then
      add("error", e.kind == "s2s" and "S2S_ENCRYPTION_OPTIONAL" or "C2S_ENCRYPTION_OPTIONAL",
        ("STARTTLS is offered but not required: a %s may go on without TLS"):format(
          e.kind == "s2s" and "remote server" or "client"))
    end
  end
  if x.plain_before_tls then
    add("error", "PLAIN_AUTH_UNENCRYPTED", "SASL PLAIN is offered before TLS: a password in clear text")
  elseif x.mechanisms_before_tls and #x.mechanisms_before_tls > 0 then
    add("warning", "SASL_BEFORE_TLS", "SASL is offered before TLS: " .. table.concat(x.mechanisms_before_tls, ", "))
  end
  if x.compression and #x.compression > 0 then
    add("warning", "XMPP_COMPRESSION", "stream compression (XEP-0138) is offered: "
      .. table.concat(x.compression, ", ") .. " (compression under TLS leaks secrets, as CRIME did)")
  end
  -- the full handshake and the stream after TLS
  if hs and not hs.ok and pr and #pr.versions > 0 then
    add("warning", "HANDSHAKE_FAILED", "a full TLS handshake (OpenSSL) failed: " .. tostring(hs.error))
  end
  if after and after.failure then
    add("warning", "AFTER_TLS_" .. after.failure.code, "the XMPP stream after TLS: " .. after.failure.message)
  end
  if not pr then return end
  -- protocols and suites
  for _, p in ipairs(pr.versions) do
    if protocols.old[p] then add("error", "OLD_PROTOCOL", ("%s is accepted"):format(protocols.label[p])) end
  end
  local suites = accepted_suites(pr)
  local non_fs, weak = {}, {}
  for _, s in ipairs(suites) do
    if not s.fs then non_fs[#non_fs + 1] = s end
    if s.weak and #s.weak > 0 then weak[#weak + 1] = s end
  end
  if #non_fs > 0 then
    add("error", "NO_FORWARD_SECRECY", ("%d suites without forward secrecy: %s"):format(#non_fs, names(non_fs, 8)))
  end
  for _, s in ipairs(weak) do
    add("error", "WEAK_SUITE", ("%s is accepted (%s)"):format(s.name, table.concat(s.weak, ", ")))
  end
  if pr.compression and pr.compression ~= "null" then
    add("error", "TLS_COMPRESSION", ("TLS compression is accepted (%s): CRIME"):format(tostring(pr.compression)))
  end
  if pr.secure_renegotiation == false then
    add("warning", "NO_SECURE_RENEGOTIATION", "the server does not support secure renegotiation (RFC 5746)")
  end
  if pr.fallback_scsv == false then
    add("warning", "NO_FALLBACK_SCSV", ("the server accepted a fallback to %s despite TLS_FALLBACK_SCSV")
      :format(tostring(pr.fallback_protocol)))
  end
  if pr.dh_bits and pr.dh_bits < DH_MIN_BITS then
    add("error", "WEAK_DH", ("a DH group of %d bits"):format(pr.dh_bits))
  end
  -- the probe's problems, once per code with the protocols that saw it
  local by_code, order = {}, {}
  for _, f in ipairs(pr.problems) do
    local g = by_code[f.code]
    if not g then
      g = { message = f.message, severity = f.severity, protocols = {} }
      by_code[f.code] = g
      order[#order + 1] = f.code
    end
    if f.protocol then g.protocols[#g.protocols + 1] = f.protocol end
  end
  for _, code in ipairs(order) do
    local g = by_code[code]
    add(g.severity, code, #g.protocols > 0 and (table.concat(g.protocols, ", ") .. ": " .. g.message) or g.message)
  end
  -- the chain
  if j and j.chain then
    for _, p in ipairs(j.chain.problems) do add(p.severity, p.code, p.message) end
  elseif j and j.chain_error then
    add("error", "CHAIN_ERROR", j.chain_error)
  elseif #pr.versions > 0 then
    add("warning", "NO_CHAIN", "no certificate chain was seen (TLS 1.3 sends it encrypted, and the full handshake failed)")
  end
  -- DANE
  if e.dane then
    for _, p in ipairs(e.dane.problems or {}) do add(p.severity, p.code, p.message) end
  end
end

return M
