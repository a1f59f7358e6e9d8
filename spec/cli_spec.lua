local cli = require "tlsharden.cli"
local json = require "tlsharden.json"
local sh = require "spec.helpers.sh"

-- A stream that keeps what is written to it.
local function buffer()
  local b = { parts = {} }
  function b:write(...)
    for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function b:text() return table.concat(self.parts) end
  return b
end

local function run(...)
  local out, err = buffer(), buffer()
  local code = cli.main({ ... }, out, err)
  return code, out:text(), err:text()
end

describe("tlsharden CLI", function()
  it("prints help with every command and exits 0", function()
    local code, out = run("--help")
    assert.equal(0, code)
    assert.matches("usage: tlsharden", out, 1, true)
    assert.matches("protocol", out, 1, true)
    assert.matches("exit codes", out, 1, true)
  end)

  it("prints a command's help", function()
    local code, out = run("protocol", "--help")
    assert.equal(0, code)
    assert.matches("usage: tlsharden protocol SPEC", out, 1, true)
  end)

  it("exits 2 with one line for an unknown command or option", function()
    local code, out, err = run("frobnicate")
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("tlsharden: unknown command 'frobnicate' (see tlsharden --help)\n", err)
    code, _, err = run("protocol", "tlsv1_2+", "--bogus")
    assert.equal(2, code)
    assert.equal("tlsharden: unknown option --bogus\n", err)
  end)

  it("refuses a bad --min-grade", function()
    local code, _, err = run("--min-grade", "Z", "protocol", "tlsv1_2+")
    assert.equal(2, code)
    assert.matches("--min-grade needs a grade", err, 1, true)
  end)

  describe("protocol", function()
    it("exits 0 for a range at the floor and shows it", function()
      local code, out = run("protocol", "tlsv1_2+", "--no-color")
      assert.equal(0, code)
      assert.matches("range%s+tlsv1_2 %.%. newest", out)
      assert.matches('protocol = "sslv23", options = { no_sslv2, no_sslv3, no_tlsv1, no_tlsv1_1 }', out, 1, true)
      assert.not_matches("\27%[", out)
    end)

    it("exits 1 for a range below the floor", function()
      local code, out = run("protocol", "tlsv1+")
      assert.equal(1, code)
      assert.matches("error: insecure protocol range: enables TLS 1.0, TLS 1.1", out, 1, true)
    end)

    it("takes another floor, or none", function()
      assert.equal(0, (run("protocol", "tlsv1+", "--floor", "tlsv1")))
      assert.equal(0, (run("protocol", "any", "--floor=none")))
      assert.equal(1, (run("protocol", "tlsv1_2+", "--floor", "tlsv1_3")))
    end)

    it("exits 2 for a malformed spec, with the parser's message on one line", function()
      local code, out, err = run("protocol", "tlsv1_4")
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("^tlsharden: tlsharden.protocol: bad argument #1 'spec' 'tlsv1_4'", err)
      assert.equal(1, select(2, err:gsub("\n", "")))
    end)

    it("exits 2 without a spec", function()
      assert.equal(2, (run("protocol")))
    end)

    it("prints the documented JSON schema", function()
      local code, out = run("--json", "protocol", "tlsv1+")
      assert.equal(1, code)
      local doc = json.decode(out)
      assert.equal("protocol", doc.command)
      assert.equal("tlsv1", doc.min)
      assert.is_nil(doc.max)
      assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, doc.versions)
      assert.same({ "no_sslv2", "no_sslv3" }, doc.luasec.options)
      assert.equal("PROTOCOL_BELOW_FLOOR", doc.problems[1].code)
      assert.equal("error", doc.problems[1].severity)
      -- empty lists stay lists
      local _, ok_out = run("--json", "protocol", "tlsv1_2")
      assert.matches('"problems":[]', ok_out, 1, true)
      assert.matches('"options":[]', ok_out, 1, true)
    end)
  end)

  describe("ciphers", function()
    it("exits 0 for an all-forward-secret list and prints every suite", function()
      local code, out = run("ciphers", "ECDHE+AESGCM", "--protocol", "tlsv1_2")
      assert.equal(0, code)
      assert.matches("ECDHE-RSA-AES128-GCM-SHA256", out, 1, true)
      assert.matches("forward secrecy: all (4 of 4)", out, 1, true)
    end)

    it("exits 1 when suites lack forward secrecy", function()
      local code, out = run("ciphers", "kRSA", "--ciphersuites", "")
      assert.equal(1, code)
      assert.matches("error: 16 of 16 suites have no forward secrecy", out, 1, true)
    end)

    it("reports weak suites with --strict", function()
      local code, out = run("ciphers", "ECDHE-RSA-AES128-SHA", "--ciphersuites=", "--strict")
      assert.equal(1, code)
      assert.matches("error: ECDHE-RSA-AES128-SHA: CBC", out, 1, true)
    end)

    it("exits 2 for a string that matches nothing or a bad --seclevel", function()
      local code, _, err = run("ciphers", "NOPE")
      assert.equal(2, code)
      assert.matches("no cipher suite matches 'NOPE'", err, 1, true)
      code, _, err = run("ciphers", "ALL", "--seclevel", "high")
      assert.equal(2, code)
      assert.matches("--seclevel needs a whole number, got 'high'", err, 1, true)
    end)

    it("prints the documented JSON schema", function()
      local code, out = run("--json", "ciphers", "ECDHE+AESGCM:kRSA", "--protocol", "tlsv1_2")
      assert.equal(1, code)
      local doc = json.decode(out)
      assert.equal("ciphers", doc.command)
      assert.equal("some", doc.fs)
      assert.equal(doc.count, #doc.suites)
      assert.equal("ECDHE", doc.suites[1].kx)
      assert.same({}, doc.suites[1].weak)
      assert.equal("NO_FORWARD_SECRECY", doc.problems[1].code)
    end)
  end)

  describe("bin/tlsharden", function()
    it("runs from the checkout and returns the exit codes", function()
      local ok, out, code = sh.exec("./bin/tlsharden protocol tlsv1_3+")
      assert.is_true(ok, out)
      assert.equal(0, code)
      assert.matches("tlsv1_3 .. newest", out, 1, true)
      ok, _, code = sh.exec("./bin/tlsharden protocol sslv23")
      assert.is_false(ok)
      assert.equal(1, code)
      ok, _, code = sh.exec("./bin/tlsharden protocol ''")
      assert.equal(2, code)
    end)
  end)
end)

describe("tlsharden.json", function()
  it("encodes lists as arrays, maps with sorted keys, and refuses cycles", function()
    assert.equal('{"a":[1,2],"b":{},"c":[]}', json.encode { b = {}, a = { 1, 2 }, c = json.list() })
    local t = {}
    t.self = t
    assert.has_error(function() json.encode(t) end)
  end)
end)
