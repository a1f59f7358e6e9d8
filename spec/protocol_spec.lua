local wire = require "tlsharden.wire"
local ssl = require "ssl"
local tlsharden = require "tlsharden"
local pki = require "spec.helpers.pki"
local tls = require "spec.helpers.tls"

local function parse(spec, opts)
  return tlsharden.protocol(spec, opts or { floor = false })
end

local function context_for(p, extra)
  local cfg = { mode = "server", protocol = p.luasec.protocol, options = p.luasec.options }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return assert(ssl.newcontext(cfg))
end

-- The versions this OpenSSL build can negotiate out of a parsed range.
local function available(p)
  local skip, out = {}, {}
  for _, v in ipairs(p.unavailable) do skip[v] = true end
  for _, v in ipairs(p.versions) do if not skip[v] then out[#out + 1] = v end end
  return out
end

describe("tlsharden.protocol", function()
  describe("LuaSec and Prosody exact names", function()
    for _, case in ipairs {
      { "tlsv1", 0x0301 }, { "tlsv1_1", 0x0302 }, { "tlsv1_2", 0x0303 }, { "tlsv1_3", 0x0304 },
    } do
      local name, number = case[1], case[2]
      it("pins " .. name .. " to one version, as LuaSec does", function()
        local p = parse(name)
        assert.equal("exact", p.form)
        assert.equal(name, p.min)
        assert.equal(name, p.max)
        assert.equal(number, p.min_version)
        assert.equal(number, p.max_version)
        assert.same({ name }, p.versions)
        assert.same({ protocol = name, options = {} }, p.luasec)
      end)
    end

    it("pins sslv3 through options, since LuaSec on OpenSSL 3 has no sslv3 method", function()
      local p = parse("sslv3")
      assert.equal("sslv3", p.min)
      assert.equal("sslv3", p.max)
      assert.same({ "sslv3" }, p.unavailable)
      assert.equal("sslv23", p.luasec.protocol)
      assert.same({ "no_sslv2", "no_tlsv1", "no_tlsv1_1", "no_tlsv1_2", "no_tlsv1_3" }, p.luasec.options)
    end)

    for _, name in ipairs { "sslv23", "any", "ANY", " SSLv23 " } do
      it("reads " .. name .. " as every version, open at both ends", function()
        local p = parse(name)
        assert.equal("any", p.form)
        assert.equal("sslv3", p.min)
        assert.is_nil(p.max)
        assert.equal(0, p.max_version)
        assert.same({ "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" }, p.versions)
        assert.same({ protocol = "sslv23", options = {} }, p.luasec)
      end)
    end
  end)

  describe("Prosody floors", function()
    local expected = {
      ["sslv3+"] = { "sslv3", { "no_sslv2" } },
      ["tlsv1+"] = { "tlsv1", { "no_sslv2", "no_sslv3" } },
      ["tlsv1_1+"] = { "tlsv1_1", { "no_sslv2", "no_sslv3", "no_tlsv1" } },
      ["tlsv1_2+"] = { "tlsv1_2", { "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } },
      ["tlsv1_3+"] = { "tlsv1_3", { "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", "no_tlsv1_2" } },
    }
    for spec, e in pairs(expected) do
      it(spec .. " sets a minimum and no maximum", function()
        local p = parse(spec)
        assert.equal("floor", p.form)
        assert.equal(e[1], p.min)
        assert.is_nil(p.max)
        assert.equal(0, p.max_version)
        assert.equal("tlsv1_3", p.versions[#p.versions])
        assert.same({ protocol = "sslv23", options = e[2] }, p.luasec)
      end)
    end

    it("accepts the dotted spelling and any case", function()
      assert.same(parse("tlsv1_2+").versions, parse("TLSv1.2+").versions)
    end)
  end)

  describe("fast_tls / OpenSSL version sets", function()
    it("reads TLSv1.2:TLSv1.3 as TLS 1.2 up to TLS 1.3", function()
      local p = parse("TLSv1.2:TLSv1.3")
      assert.equal("set", p.form)
      assert.equal("tlsv1_2", p.min)
      assert.equal("tlsv1_3", p.max)
      assert.same({ "tlsv1_2", "tlsv1_3" }, p.versions)
    end)

    it("reads a one-item set as that version", function()
      local p = parse("TLSv1.2")
      assert.equal("tlsv1_2", p.min)
      assert.equal("tlsv1_2", p.max)
      assert.same({ protocol = "tlsv1_2", options = {} }, p.luasec)
    end)

    it("does not depend on the order of the items", function()
      assert.same(parse("TLSv1.3:TLSv1.2").versions, { "tlsv1_2", "tlsv1_3" })
    end)

    it("caps a set below TLS 1.3 with no_tlsv1_3", function()
      local p = parse("TLSv1:TLSv1.1:TLSv1.2")
      assert.same({ "no_sslv2", "no_sslv3", "no_tlsv1_3" }, p.luasec.options)
    end)
  end)

  describe("OTP version lists", function()
    it("reads {'tlsv1.2', 'tlsv1.3'}", function()
      local p = parse({ "tlsv1.2", "tlsv1.3" })
      assert.equal("list", p.form)
      assert.equal("tlsv1_2", p.min)
      assert.equal("tlsv1_3", p.max)
    end)

    it("strips Erlang atom quotes and accepts tlsv1 and sslv3", function()
      assert.same({ "tlsv1_2" }, parse({ "'tlsv1.2'" }).versions)
      assert.same({ "sslv3", "tlsv1" }, parse({ "tlsv1", "sslv3" }).versions)
    end)
  end)

  describe("ranges", function()
    it("reads tlsv1_2-tlsv1_3", function()
      local p = parse("tlsv1_2-tlsv1_3")
      assert.equal("range", p.form)
      assert.same({ "tlsv1_2", "tlsv1_3" }, p.versions)
      assert.equal(0x0304, p.max_version)
    end)

    it("reads tlsv1-tlsv1_2 with both ends set", function()
      local p = parse("tlsv1-tlsv1_2")
      assert.same({ "tlsv1", "tlsv1_1", "tlsv1_2" }, p.versions)
      assert.same({ "no_sslv2", "no_sslv3", "no_tlsv1_3" }, p.luasec.options)
    end)
  end)

  describe("errors", function()
    local function fails(spec, pattern)
      local ok, err = pcall(tlsharden.protocol, spec, { floor = false })
      assert.is_false(ok)
      assert.matches(pattern, tostring(err), 1, true)
      assert.same({ "argument", 1 }, { err.kind, err.argument })
      return tostring(err)
    end

    it("names the bad token and lists the valid forms", function()
      local err = fails("tlsv1_4", "unknown protocol version 'tlsv1_4'")
      assert.matches("tlsharden.protocol", err, 1, true)
      assert.matches("valid forms", err, 1, true)
      assert.matches("TLSv1.2:TLSv1.3", err, 1, true)
    end)

    it("refuses an empty string", function() fails("", "empty protocol specification") end)
    it("refuses spaces only", function() fails("   ", "empty protocol specification") end)
    it("refuses tlsv1_2++", function() fails("tlsv1_2++", "unknown protocol version 'tlsv1_2+'") end)
    it("refuses Prosody's TLSv1_2+ typo family", function() fails("tls1_9+", "unknown protocol version") end)
    it("refuses a non-contiguous set", function()
      fails("TLSv1:TLSv1.2", "not contiguous (tlsv1_1 is missing)")
    end)
    it("refuses a non-contiguous list", function()
      fails({ "tlsv1", "tlsv1.3" }, "not contiguous")
    end)
    it("refuses a reversed range", function() fails("tlsv1_3-tlsv1_2", "range starts above its end") end)
    it("refuses an empty set item", function() fails("TLSv1.2::TLSv1.3", "unknown protocol version ''") end)
    it("refuses an embedded NUL", function() fails("tlsv1_2\0+", "NUL byte") end)
    it("refuses an empty list", function() fails({}, "empty version list") end)
    it("refuses a list with a non-string", function() fails({ "tlsv1.2", 3 }, "list item 2 is 3, expected a version name") end)
    for _, bad in ipairs { { 12, "12" }, { true, "true" }, { function() end, "a function" } } do
      it("refuses a " .. type(bad[1]), function()
        fails(bad[1], "expected a string or a list of versions, got " .. bad[2])
      end)
    end
    it("refuses a missing spec", function()
      local ok, err = pcall(tlsharden.protocol)
      assert.is_false(ok)
      assert.matches("bad argument #1", err, 1, true)
    end)
    it("refuses options that are not a table", function()
      local ok, err = pcall(tlsharden.protocol, "tlsv1_2+", "strict")
      assert.is_false(ok)
      assert.matches("bad argument #2", err, 1, true)
    end)
    it("refuses a bad floor option", function()
      local ok, err = pcall(tlsharden.protocol, "tlsv1_2+", { floor = "tlsv9" })
      assert.is_false(ok)
      assert.matches("bad option 'floor': expected a version name such as \"tlsv1_2\", or false, got 'tlsv9'", err, 1, true)
      ok, err = pcall(tlsharden.protocol, "tlsv1_2+", { floor = 12 })
      assert.matches("bad option 'floor': expected a version name or false, got 12", err, 1, true)
    end)
    it("refuses a non-boolean allow_insecure", function()
      local ok, err = pcall(tlsharden.protocol, "tlsv1+", { allow_insecure = "yes" })
      assert.is_false(ok)
      assert.matches("bad option 'allow_insecure': expected a boolean, got 'yes'", err, 1, true)
    end)
    it("shortens a huge bad value in the message", function()
      local err = fails(string.rep("x", 1024 * 1024), "...'")
      assert.is_true(#err < 1000)
    end)
  end)

  describe("the floor", function()
    it("defaults to TLS 1.2 and refuses anything lower, naming the way out", function()
      local ok, err = pcall(tlsharden.protocol, "tlsv1+")
      assert.is_false(ok)
      assert.matches("spec 'tlsv1+' enables TLS 1.0, TLS 1.1, below the floor TLS 1.2", err, 1, true)
      assert.matches("opts.allow_insecure = true", err, 1, true)
    end)

    it("refuses sslv23 and exact old versions", function()
      assert.has_error(function() tlsharden.protocol("sslv23") end)
      assert.has_error(function() tlsharden.protocol("tlsv1_1") end)
      assert.has_error(function() tlsharden.protocol({ "tlsv1.1", "tlsv1.2" }) end)
    end)

    it("accepts what is at or above it", function()
      for _, spec in ipairs { "tlsv1_2+", "tlsv1_2", "tlsv1_3", "TLSv1.2:TLSv1.3", "tlsv1_3+" } do
        local p = tlsharden.protocol(spec)
        assert.is_false(p.insecure)
        assert.is_nil(p.warning)
        assert.equal("tlsv1_2", p.floor)
      end
    end)

    it("returns an insecure range with a warning when allowed", function()
      local p = tlsharden.protocol("tlsv1+", { allow_insecure = true })
      assert.is_true(p.insecure)
      assert.matches("enables TLS 1.0, TLS 1.1, below the floor TLS 1.2", p.warning, 1, true)
      assert.equal("tlsv1", p.min)
    end)

    it("can be set to another version", function()
      assert.has_error(function() tlsharden.protocol("tlsv1_2+", { floor = "tlsv1_3" }) end)
      assert.is_false(tlsharden.protocol("tlsv1+", { floor = "tlsv1" }).insecure)
    end)

    it("can be switched off with floor = false", function()
      local p = tlsharden.protocol("any", { floor = false })
      assert.is_false(p.insecure)
      assert.is_nil(p.floor)
    end)
  end)

  describe("round trip through a real LuaSec context", function()
    local specs = {
      "tlsv1_2+", "tlsv1_3+", "tlsv1+", "tlsv1_1+", "sslv3+", "any", "sslv23",
      "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3",
      "TLSv1.2:TLSv1.3", "TLSv1:TLSv1.1", "TLSv1.1:TLSv1.2", "tlsv1-tlsv1_2", "tlsv1_1-tlsv1_3",
      { "tlsv1.2", "tlsv1.3" }, { "tlsv1" },
    }
    for _, spec in ipairs(specs) do
      local label = type(spec) == "table" and "{" .. table.concat(spec, ",") .. "}" or spec
      it("builds exactly the range of " .. label, function()
        local p = parse(spec)
        local ctx = context_for(p)
        local v = tlsharden.versions(ctx)
        assert.same(available(p), v.versions)
        -- LuaSec has no way to cap at the newest version, so only a lower
        -- cap shows in the context.
        if p.max ~= "tlsv1_3" then assert.equal(p.max, v.max) end
      end)
    end
  end)

  describe("real handshakes", function()
    local dir, leaf
    setup(function()
      dir = pki.tmpdir()
      leaf = pki.simple(dir, "localhost", "ec256")
    end)
    teardown(function() pki.cleanup(dir) end)

    local function server(spec)
      return context_for(parse(spec), { key = leaf.key, certificate = leaf.cert,
        ciphers = "DEFAULT:@SECLEVEL=0" })
    end

    it("a tlsv1_2+ server refuses a TLS 1.1 client and takes TLS 1.2 and 1.3", function()
      local srv = server("tlsv1_2+")
      local r = tls.handshake(srv, tls.client { protocol = "tlsv1_1", ciphers = "DEFAULT:@SECLEVEL=0" })
      assert.is_false(r.ok)
      r.close()
      for _, proto in ipairs { "tlsv1_2", "tlsv1_3" } do
        r = tls.handshake(srv, tls.client { protocol = proto })
        assert.is_true(r.ok, tostring(r.server_err or r.client_err))
        assert.equal(proto == "tlsv1_2" and "TLSv1.2" or "TLSv1.3", r.client:info().protocol)
        r.close()
      end
    end)

    it("a TLSv1.2 set refuses TLS 1.3 clients", function()
      local srv = server("TLSv1.2")
      local r = tls.handshake(srv, tls.client { protocol = "tlsv1_3" })
      assert.is_false(r.ok)
      r.close()
    end)
  end)
end)

describe("tlsharden.versions", function()
  it("reads what a context allows, including options that switch versions off", function()
    local ctx = assert(ssl.newcontext { mode = "server", protocol = "any",
      options = { "no_tlsv1", "no_tlsv1_1" } })
    local v = tlsharden.versions(ctx)
    assert.same({ "tlsv1_2", "tlsv1_3" }, v.versions)
    assert.equal("tlsv1_2", v.min)
    assert.is_nil(v.max)
    assert.equal(0, v.min_version)
    assert.is_nil(v.min_proto_version)
  end)

  it("follows OpenSSL in stopping at the first hole", function()
    local ctx = assert(ssl.newcontext { mode = "server", protocol = "any",
      options = { "no_tlsv1_1" } })
    assert.same({ "tlsv1" }, tlsharden.versions(ctx).versions)
  end)

  it("refuses what is not a LuaSec context", function()
    for _, bad in ipairs { 1, "ctx", {}, io.stdout } do
      local ok, err = pcall(tlsharden.versions, bad)
      assert.is_false(ok)
      assert.matches("tlsharden.versions: bad argument #1: expected a LuaSec context", err, 1, true)
    end
  end)
end)

describe("core.protocols", function()
  local core = require "tlsharden.core"

  it("lists the six versions oldest first, with their labels and wire numbers", function()
    assert.same({
      { name = "sslv2", label = "SSL 2.0", wire = 0x0002 },
      { name = "sslv3", label = "SSL 3.0", wire = 0x0300 },
      { name = "tlsv1", label = "TLS 1.0", wire = 0x0301 },
      { name = "tlsv1_1", label = "TLS 1.1", wire = 0x0302 },
      { name = "tlsv1_2", label = "TLS 1.2", wire = 0x0303 },
      { name = "tlsv1_3", label = "TLS 1.3", wire = 0x0304 },
    }, core.protocols)
    assert.same(require("tlsharden.protocols").names, { "sslv2", "sslv3", "tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3" })
  end)

  it("is the table every version name comes from", function()
    local by_name = {}
    for _, p in ipairs(core.protocols) do by_name[p.name] = p end
    -- every version but SSLv2 is a spec tlsharden.protocol takes, with the same number
    for _, p in ipairs(core.protocols) do
      if p.name == "sslv2" then
        assert.has_error(function() parse(p.name) end)
      else
        local r = parse(p.name)
        assert.equal(p.wire, r.min_version)
      end
    end
    -- the suite registry and the ClientHello writer name versions from it
    for _, s in ipairs(wire.suites()) do
      if s.protocol then assert.truthy(by_name[s.protocol], s.iana) end
    end
    local _, err = pcall(wire.client_hello, { version = "tlsv9" })
    local names = {}
    for _, p in ipairs(core.protocols) do names[#names + 1] = p.name end
    assert.matches("expected one of " .. table.concat(names, ", ") .. ", got 'tlsv9'", err, 1, true)
    -- a wire number in a parsed flight is named from it too
    local flight = wire.parse_server_flight("\22\3\3\0\46\2\0\0\38\3\2" .. ("R"):rep(32) .. "\0\192\47\0\14\0\0\0")
    assert.equal("tlsv1_1", flight.server_hello.protocol)
  end)
end)
