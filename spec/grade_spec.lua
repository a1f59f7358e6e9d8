local tlsharden = require "tlsharden"

-- A strong server: TLS 1.2 and 1.3, forward-secret AEAD suites, EC P-256.
local function strong(over)
  local f = {
    protocols = { "tlsv1_2", "tlsv1_3" },
    suites = {
      { name = "TLS_AES_256_GCM_SHA384", bits = 256, aead = true, fs = true, weak = {} },
      { name = "ECDHE-ECDSA-AES128-GCM-SHA256", bits = 128, aead = true, fs = true, weak = {} },
    },
    key_type = "EC", key_bits = 256,
    kx_bits = 3072,
    cert = { trusted = true, self_signed = false, expired = false, host_match = true, signature_digest = "SHA256" },
    compression = false, secure_renegotiation = true, fallback_scsv = true,
  }
  for k, v in pairs(over or {}) do f[k] = v end
  return f
end

local function caps_of(r)
  local t = {}
  for _, c in ipairs(r.caps) do t[#t + 1] = c.grade .. ": " .. c.reason end
  return table.concat(t, "; ")
end

describe("tlsharden.grade", function()
  it("gives A+ to a strong server, with every score", function()
    local r = tlsharden.grade(strong())
    assert.equal("A+", r.grade)
    assert.equal(100, r.protocol_score)
    assert.equal(90, r.kx_score)
    assert.equal(90, r.cipher_score)
    assert.equal(93, r.score)
    assert.same({}, r.caps)
    assert.equal("2009q", r.guide)
  end)

  describe("score steps", function()
    it("averages the best and worst protocol", function()
      assert.equal(95, tlsharden.grade(strong { protocols = { "tlsv1", "tlsv1_2" } }).protocol_score)
      assert.equal(97.5, tlsharden.grade(strong { protocols = { "tlsv1_1", "tlsv1_3" } }).protocol_score)
      assert.equal(90, tlsharden.grade(strong { protocols = { "sslv3", "tlsv1_2" } }).protocol_score)
      assert.equal(50, tlsharden.grade(strong { protocols = { "sslv2", "tlsv1_2" } }).protocol_score)
    end)

    for _, case in ipairs {
      { 384, 20 }, { 512, 40 }, { 1024, 80 }, { 2048, 90 }, { 3072, 90 }, { 4096, 100 }, { 7680, 100 },
    } do
      it(("scores a %d-bit key exchange %d"):format(case[1], case[2]), function()
        local r = tlsharden.grade(strong { key_type = "RSA", key_bits = 8192, kx_bits = case[1] })
        assert.equal(case[2], r.kx_score)
      end)
    end

    it("takes the weaker of the certificate key and the ephemeral key, RSA-equivalent", function()
      assert.equal(80, tlsharden.grade(strong { key_type = "RSA", key_bits = 1024 }).kx_score)
      assert.equal(100, tlsharden.grade(strong { key_type = "EC", key_bits = 384, kx_bits = 7680 }).kx_score)
    end)

    for _, case in ipairs { { 0, 0 }, { 56, 20 }, { 112, 20 }, { 128, 80 }, { 256, 100 } } do
      it(("scores %d-bit ciphers %d"):format(case[1], case[2]), function()
        local r = tlsharden.grade(strong { suites = { { name = "X", bits = case[1], aead = true, fs = true, weak = {} } } })
        assert.equal(case[2], r.cipher_score)
      end)
    end

    it("gives each letter its score range", function()
      local grade = require "tlsharden.grade"
      for _, case in ipairs { { 100, "A" }, { 80, "A" }, { 79, "B" }, { 65, "B" }, { 64, "C" }, { 50, "C" },
        { 49, "D" }, { 35, "D" }, { 34, "E" }, { 20, "E" }, { 19, "F" }, { 0, "F" } } do
        assert.equal(case[2], grade.letter(case[1]), "score " .. case[1])
      end
      -- and the weighting: 0.3 protocol + 0.3 key exchange + 0.4 cipher
      local r = tlsharden.grade(strong { key_type = "RSA", key_bits = 8192, kx_bits = 1024,
        suites = { { name = "X", bits = 128, aead = true, fs = true, weak = {} } } })
      assert.equal(86, r.score)  -- 0.3*100 + 0.3*80 + 0.4*80
      assert.equal("B", r.grade) -- capped by the key exchange
    end)

    it("scores 0 when a category is 0", function()
      local r = tlsharden.grade(strong { suites = { { name = "NULL-SHA", bits = 0, aead = false, fs = false, weak = { "NULL" } } } })
      assert.equal(0, r.score)
      assert.equal("F", r.grade)
      assert.equal(0, tlsharden.grade(strong { anonymous = true }).score)
    end)
  end)

  describe("caps", function()
    local cases = {
      { "SSL 2.0 offered", { protocols = { "sslv2", "tlsv1_2" } }, "F" },
      { "SSL 3.0 offered", { protocols = { "sslv3", "tlsv1_2" } }, "B" },
      { "SSL 3.0 the best", { protocols = { "sslv3" } }, "F" },
      { "TLS 1.0 offered", { protocols = { "tlsv1", "tlsv1_2" } }, "B" },
      { "TLS 1.1 offered", { protocols = { "tlsv1_1", "tlsv1_2" } }, "B" },
      { "no TLS 1.2 or 1.3", { protocols = { "tlsv1", "tlsv1_1" } }, "C" },
      { "a suite under 112 bits", { suites = { { name = "W", bits = 56, aead = true, fs = true, weak = {} },
          { name = "S", bits = 256, aead = true, fs = true, weak = {} } } }, "F" },
      { "EXPORT", { suites = { { name = "EXP", bits = 128, aead = true, fs = true, weak = { "EXPORT" } } } }, "F" },
      { "no AEAD", { suites = { { name = "CBC", bits = 256, aead = false, fs = true, weak = {} } } }, "B" },
      { "no forward secrecy", { suites = { { name = "RSA", bits = 256, aead = true, fs = false, weak = {} } } }, "B" },
      { "RC4 before TLS 1.1", { protocols = { "tlsv1" }, suites = { { name = "RC4", bits = 128, aead = true, fs = true, weak = { "RC4" } } } }, "C" },
      { "RC4 with TLS 1.1+", { suites = { { name = "RC4", bits = 128, aead = true, fs = true, weak = { "RC4" } } } }, "C" },
      { "64-bit block cipher on TLS 1.1+", { suites = { { name = "3DES", bits = 128, aead = true, fs = true, weak = { "DES" } } } }, "C" },
      { "compression", { compression = true }, "C" },
      { "POODLE", { vulnerabilities = { poodle = true } }, "C" },
      { "Heartbleed", { vulnerabilities = { heartbleed = true } }, "F" },
      { "CCS injection", { vulnerabilities = { ccs_injection = true } }, "F" },
      { "ROBOT", { vulnerabilities = { robot = true } }, "F" },
      { "DROWN", { vulnerabilities = { drown = true } }, "F" },
      { "no TLS_FALLBACK_SCSV", { fallback_scsv = false }, "A" },
      { "key exchange <= 80", { kx_bits = 1024 }, "B" },
      { "key exchange <= 40", { kx_bits = 1000 - 600 }, "F" },
      { "anonymous", { anonymous = true }, "F" },
      { "untrusted", { cert = { trusted = false, host_match = true } }, "T" },
      { "self-signed", { cert = { trusted = true, self_signed = true, host_match = true } }, "T" },
      { "expired", { cert = { trusted = true, expired = true, host_match = true } }, "T" },
      { "SHA-1 leaf", { cert = { trusted = true, host_match = true, signature_digest = "SHA1" } }, "T" },
      { "MD5 signature", { cert = { trusted = true, host_match = true, signature_digest = "MD5" } }, "F" },
      { "name mismatch", { cert = { trusted = true, host_match = false } }, "M" },
    }
    for _, case in ipairs(cases) do
      it(("caps at %s for %s"):format(case[3], case[1]), function()
        local r = tlsharden.grade(strong(case[2]))
        local found = false
        for _, c in ipairs(r.caps) do if c.grade == case[3] then found = true end end
        assert.is_true(found, caps_of(r))
        if case[3] == "T" or case[3] == "M" then
          assert.equal(case[3], r.grade)
          assert.is_string(r.grade_if_trusted)
        else
          assert.is_false(({ ["A+"] = true })[r.grade] == true)
        end
      end)
    end

    it("applies the lowest cap", function()
      local r = tlsharden.grade(strong { protocols = { "tlsv1", "tlsv1_2" }, compression = true })
      assert.equal("C", r.grade)
    end)

    it("turns A into A- with a warning (no secure renegotiation)", function()
      local r = tlsharden.grade(strong { secure_renegotiation = false })
      assert.equal("A-", r.grade)
      assert.equal(1, #r.warnings)
    end)

    it("gives A, not A+, without TLS_FALLBACK_SCSV", function()
      assert.equal("A", tlsharden.grade(strong { fallback_scsv = false }).grade)
    end)

    it("caps at A- without TLS 1.3 under guide 2009r only", function()
      local f = strong { protocols = { "tlsv1_2" } }
      assert.equal("A+", tlsharden.grade(f).grade)
      local r = tlsharden.grade(f, { guide = "2009r" })
      assert.equal("A-", r.grade)
      assert.equal("2009r", r.guide)
    end)

    it("caps STARTTLS at T only when asked (testssl.sh's rule)", function()
      local f = strong { starttls = true }
      assert.equal("A+", tlsharden.grade(f).grade)
      assert.equal("T", tlsharden.grade(f, { starttls_cap = true }).grade)
    end)

    it("says what a T stands for: a trusted chain under the STARTTLS cap is not 'if trusted'", function()
      local label = require("tlsharden.grade").label
      local r = tlsharden.grade(strong { starttls = true }, { starttls_cap = true })
      assert.same({ "T", "starttls", "T (A+ without the STARTTLS cap)" }, { r.grade, r.t_cause, label(r) })
      r = tlsharden.grade(strong { starttls = true, cert = { trusted = false, host_match = true } }, { starttls_cap = true })
      assert.same({ "trust and starttls", "T (A+ if trusted)" }, { r.t_cause, label(r) })
      r = tlsharden.grade(strong { cert = { trusted = false, host_match = true } })
      assert.same({ "trust", "T (A+ if trusted)" }, { r.t_cause, label(r) })
      assert.equal("A+", label(tlsharden.grade(strong {})))
      assert.equal("M (A+ if the name matched)", label(tlsharden.grade(strong { cert = { trusted = true, host_match = false } })))
      assert.equal("-", label(nil))
    end)

    it("prefers M over T", function()
      assert.equal("M", tlsharden.grade(strong { cert = { trusted = false, host_match = false } }).grade)
    end)
  end)

  it("refuses bad input", function()
    assert.has_error(function() tlsharden.grade(nil) end)
    assert.has_error(function() tlsharden.grade({}, "x") end)
    local ok, err = pcall(tlsharden.grade, {}, { guide = "2012" })
    assert.is_false(ok)
    assert.matches("unknown guide '2012'", err, 1, true)
  end)
end)
