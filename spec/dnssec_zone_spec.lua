-- The DNSSEC fixture (spec/helpers/dnssec_zone.lua): a zone signed here and
-- served by nsd on loopback, and three validators of their own make
-- (unbound-host, delv, lua-unbound) that must agree on each of its cases:
-- secure, insecure (an unsigned child), bogus (signatures changed after
-- signing) and bogus (a child whose signatures have expired).
local zone = require "spec.helpers.dnssec_zone"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"

local TOOLS = { "unbound-host", "delv", "lunbound" }

-- A different TLSA digest per case, so that an answer shows where it came from.
local DIGEST = { secure = ("11"):rep(32), insecure = ("22"):rep(32), tampered = ("33"):rep(32),
  expired = ("44"):rep(32) }

local function missing()
  local ok, why = zone.available()
  if not ok then return why end
  for _, tool in ipairs(TOOLS) do
    if not zone.have_validator(tool) then return tool .. " is not installed" end
  end
end

describe("dnssec zone fixture", function()
  local why = missing()
  if why then
    pending(why .. " (scripts/install-deps.sh installs nsd, ldnsutils, unbound-host, bind9-dnsutils, lua-unbound)")
    return
  end

  local z
  setup(function()
    z = zone.start { client_port = 5222, server_port = 5269, tlsa = function(case)
      return { { port = 5222, usage = 3, selector = 1, mtype = 1, data = DIGEST[case] } }
    end }
  end)
  teardown(function()
    if z then z.stop() end
  end)

  it("serves the zone on loopback with its anchors", function()
    assert.equals("127.0.0.1", z.address)
    assert.equals("xmpp.test.", z.zone)
    local soa = sh.run(("timeout 5 dig +short +time=1 +tries=1 @127.0.0.1 -p %d SOA xmpp.test."):format(z.port))
    assert.matches("^ns%.xmpp%.test%. hostmaster%.xmpp%.test%. ", soa)
    assert.matches("^xmpp%.test%.%s+IN%s+DS%s+%d+ 13 2 %x+$", z.anchor)
    assert.matches("^xmpp%.test%.%s+IN%s+DNSKEY%s+257 3 13 ", z.dnskey)
    assert.equals(z.anchor .. "\n", pki.read(z.anchor_file))
    assert.matches('trust%-anchors {\n  xmpp%.test%. static%-ds %d+ 13 2 "%x+";\n};',
      pki.read(z.delv_anchor_file))
    assert.equals("_5222._tcp.host.secure.xmpp.test.", z.names.secure.tlsa[1])
  end)

  for _, case in ipairs(zone.cases) do
    it("has unbound-host, delv and lua-unbound agree: " .. case .. " is " .. zone.expected[case], function()
      local n = z.names[case]
      for _, q in ipairs({ { n.client_srv, "SRV" }, { n.server_srv, "SRV" }, { n.host, "A" },
          { n.tlsa[1], "TLSA" } }) do
        for _, tool in ipairs(TOOLS) do
          local verdict, out = zone.validate_with(tool, z, q[1], q[2])
          assert.equals(zone.expected[case], verdict, tool .. " " .. q[1] .. " " .. q[2] .. ":\n" .. out)
        end
      end
    end)
  end

  it("gives lua-unbound's fields per case, data even when bogus", function()
    for _, case in ipairs(zone.cases) do
      local n = z.names[case]
      local _, out, r = zone.validate_with("lunbound", z, n.tlsa[1], "TLSA")
      assert.equals(0, r.rcode, out)
      assert.is_true(r.havedata, out)
      assert.is_false(r.nxdomain, out)
      assert.equals(1, r.n, out)
      assert.same({ "030101" .. DIGEST[case] }, r.data, out)
      assert.equals(case == "secure", r.secure, out)
      assert.is_true(r.time < 5, out)
      if case == "tampered" then
        assert.matches("^validation failure <" .. n.tlsa[1]:gsub("%p", "%%%0") .. " TLSA IN>: "
          .. "ECDSA signature verification failed", r.bogus, out)
      elseif case == "expired" then
        assert.matches("signature expired .* for key expired%.xmpp%.test%.", r.bogus, out)
      else
        assert.is_nil(r.bogus, out)
      end
    end
    -- the SRV record's wire form: priority 0, weight 5, port 5222, target
    local _, out, r = zone.validate_with("lunbound", z, z.names.secure.client_srv, "SRV")
    assert.same({ "00000005146604686f73740673656375726504786d7070047465737400" }, r.data, out)
  end)

  it("validates negative answers the same way", function()
    for _, c in ipairs({ { "nope.secure.xmpp.test.", "secure", 3 }, { "secure.xmpp.test.", "secure", 0, "AAAA" },
        { "nope.insecure.xmpp.test.", "insecure", 3 }, { "nope.tampered.xmpp.test.", "bogus", 3 } }) do
      for _, tool in ipairs(TOOLS) do
        local verdict, out, r = zone.validate_with(tool, z, c[1], c[4] or "A")
        assert.equals(c[2], verdict, tool .. " " .. c[1] .. ":\n" .. out)
        if r then
          assert.equals(c[3], r.rcode, out)
          assert.is_false(r.havedata, out)
        end
      end
    end
  end)

  it("validates under the DNSKEY as anchor too", function()
    local by_key = setmetatable({ anchor_file = z.dnskey_file }, { __index = z })
    for _, case in ipairs(zone.cases) do
      local verdict, out = zone.validate_with("lunbound", by_key, z.names[case].client_srv, "SRV")
      assert.equals(zone.expected[case], verdict, out)
    end
  end)

  it("is bogus everywhere under a wrong anchor", function()
    local other = pki.write(z.dir .. "/wrong.ds", (z.anchor:gsub("%x+$", ("00"):rep(32))) .. "\n")
    local wrong = setmetatable({ anchor_file = other }, { __index = z })
    local verdict, out = zone.validate_with("lunbound", wrong, z.names.secure.client_srv, "SRV")
    assert.equals("bogus", verdict, out)
    verdict, out = zone.validate_with("unbound-host", wrong, z.names.secure.client_srv, "SRV")
    assert.equals("bogus", verdict, out)
  end)
end)

describe("dnssec zone fixture, expired as a whole", function()
  if missing() then
    pending(missing())
    return
  end

  it("is bogus once the parent's signatures have expired, and stops", function()
    local now = os.time()
    local z = zone.start { inception = now - 40 * 86400, expiration = now - 2 * 86400 }
    local pid, dir = z.pid, z.dir
    assert.is_true(zone.running(pid))
    local ok, err = pcall(function()
      for _, tool in ipairs(TOOLS) do
        local verdict, out = zone.validate_with(tool, z, z.names.secure.client_srv, "SRV")
        assert.equals("bogus", verdict, tool .. ":\n" .. out)
      end
    end)
    z.stop()
    if not ok then error(err, 0) end
    assert.is_nil(z.pid)
    assert.is_false(zone.running(pid))
    assert.is_false((sh.exec("test -e " .. sh.quote(dir))))
  end)

  it("changes the signatures of the chosen types only (tamper_types)", function()
    zone.with({ tamper_types = { "TLSA" } }, function(z)
      local n = z.names.tampered
      for _, tool in ipairs(TOOLS) do
        local verdict, out = zone.validate_with(tool, z, n.client_srv, "SRV")
        assert.equals("secure", verdict, tool .. ":\n" .. out)
        verdict, out = zone.validate_with(tool, z, n.tlsa[1], "TLSA")
        assert.equals("bogus", verdict, tool .. ":\n" .. out)
      end
    end)
  end)

  it("stops nsd when fn raises (with)", function()
    local pid
    local ok, err = pcall(zone.with, {}, function(z)
      pid = z.pid
      error("raised inside")
    end)
    assert.is_false(ok)
    assert.matches("raised inside", err)
    assert.is_false(zone.running(pid))
  end)
end)
