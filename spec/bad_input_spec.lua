-- Every public function of tlsharden and its submodules, called with every
-- kind of bad argument: a Lua error that names the function, never a
-- crash (the sanitizer and valgrind suites run this too), and never a
-- changed context.
local wire = require "tlsharden.wire"
local context = require "tlsharden.context"
local ssl = require "ssl"
local socket = require "socket"
local tlsharden = require "tlsharden"
local core = require "tlsharden.core"
local pki = require "spec.helpers.pki"

local cyclic = {}
cyclic.self = cyclic
cyclic[1] = cyclic
local raising = setmetatable({}, {
  __index = function() error("metatable __index raised") end,
  __len = function() error("metatable __len raised") end,
  __pairs = function() error("metatable __pairs raised") end,
})

local BAD = {
  { "nil", nil },
  { "false", false },
  { "true", true },
  { "a number", 42 },
  { "a float", 0.5 },
  { "an empty string", "" },
  { "a 1 MiB string", string.rep("x", 1024 * 1024) },
  { "a string with NUL", "tls\0v1_2" },
  { "a function", function() end },
  { "a coroutine", coroutine.create(function() end) },
  { "another library's userdata", io.stdout },
  { "an empty table", {} },
  { "a cyclic table", cyclic },
  { "a table whose metatable raises", raising },
}

-- Functions that take one main argument: the name the message gives, and
-- the function.
local FUNCTIONS = {
  { "protocol", tlsharden.protocol },
  { "versions", tlsharden.versions },
  { "ciphers", tlsharden.ciphers },
  { "forward_secrecy", tlsharden.forward_secrecy },
  { "merge", tlsharden.merge },
  { "harden", tlsharden.harden },
  { "inspect", tlsharden.inspect },
  { "chain", tlsharden.chain },
  { "grade", tlsharden.grade },
  { "audit", tlsharden.audit },
  { "fix", tlsharden.fix },
  { "new_context", tlsharden.new_context },
  { "profile", tlsharden.profile },
  { "layer", tlsharden.layer },
  { "scan", tlsharden.scan },
  { "context.harden_report", context.harden_report },
  { "context.key_kind", context.key_kind },
  { "context.load_key", context.load_key },
  { "wire.dns_query", wire.dns_query },
  { "wire.dns_parse", wire.dns_parse },
  { "wire.dns_rdata", wire.dns_rdata },
  { "wire.suites", wire.suites },
  { "wire.suite", wire.suite },
  { "wire.groups", wire.groups },
  { "wire.client_hello", wire.client_hello },
  { "wire.parse_server_flight", wire.parse_server_flight },
  { "wire.parse_client_hello", wire.parse_client_hello },
  { "wire.replay_hello", wire.replay_hello },
  { "wire.record", wire.record },
  { "wire.heartbeat_request", wire.heartbeat_request },
  { "wire.parse_records", wire.parse_records },
  { "wire.robot_key_exchange", wire.robot_key_exchange },
  { "wire.parse_session", wire.parse_session },
  { "context.session", context.session },
  { "context.answer_hello", context.answer_hello },
}

-- Arguments a function accepts, so the call is not an error.
local ACCEPTS = {
  protocol = { ["an empty table"] = false },
  grade = { ["an empty table"] = true },
  merge = { ["an empty table"] = true },
}

describe("bad input", function()
  for _, f in ipairs(FUNCTIONS) do
    local name, fn = f[1], f[2]
    local label = "tlsharden." .. name
    for _, bad in ipairs(BAD) do
      local ok_expected = ACCEPTS[name] and ACCEPTS[name][bad[1]]
      it(("%s with %s raises an error naming it"):format(label, bad[1]), function()
        local ok, err = pcall(fn, bad[2])
        if ok_expected then
          assert.is_true(ok, tostring(err))
          return
        end
        -- a string is a valid path or spec for some functions; what
        -- matters is that nothing crashes and failures name the function
        if ok then return end
        -- every failure is an error object a program can test
        assert.is_true(core.is_error(err), tostring(err))
        assert.is_string(err.kind)
        assert.equal(err.message, tostring(err))
        if bad[2] == raising then
          -- Either the function refuses the table by its type, or the
          -- metamethod runs and its error is reported as the function's,
          -- naming the argument.
          assert.matches(label .. ": bad argument #1", tostring(err), 1, true)
          assert.same({ "argument", 1 }, { err.kind, err.argument })
        else
          -- new_context names the step that refused (merge, LuaSec ...)
          assert.matches(name == "new_context" and "tlsharden." or label, tostring(err), 1, true)
        end
      end)
    end
  end

  it("reports a raising metamethod as an error of the function, naming the argument", function()
    local cases = {
      { "merge", "tlsharden.merge: bad argument #1: a metamethod of the argument raised", raising },
      { "merge", "tlsharden.merge: bad argument #2: a metamethod of the argument raised", {}, raising },
      { "ciphers", "tlsharden.ciphers: bad argument #2: a metamethod of the argument raised", "HIGH", raising },
      { "new_context", "tlsharden.new_context: bad argument #1: a metamethod of the argument raised", raising },
      { "grade", "tlsharden.grade: bad argument #1: a metamethod of the argument raised", raising },
      { "layer", "tlsharden.layer: bad argument #2: a metamethod of the argument raised", "x", raising },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(tlsharden[c[1]], table.unpack(c, 3))
      assert.is_false(ok, c[1])
      assert.matches(c[2], tostring(err), 1, true)
      assert.matches("metatable __%a+ raised", tostring(err))
      assert.equal("argument", err.kind)
    end
    -- an error object that is not a string is described, not lost
    local odd = setmetatable({}, { __pairs = function() error({ code = 1 }) end })
    local ok, err = pcall(tlsharden.merge, { { protocol = "tlsv1_2+" }, odd })
    assert.is_false(ok)
    assert.matches("tlsharden.merge: bad argument #1: .*an error object of type table", tostring(err))
    -- a proxy layer is read the way Prosody reads it, through __pairs
    local inner = { protocol = "tlsv1_3", options = { "no_ticket" } }
    local proxy = setmetatable({}, { __pairs = function() return next, inner, nil end })
    local cfg = tlsharden.merge({ proxy })
    assert.equals("tlsv1_3", cfg.protocol)
    assert.same({ "no_ticket" }, cfg.options)
    -- keys a layer only inherits through __index are not read (Prosody's
    -- pairs() does not see them either), and the report says so
    local report
    cfg, report = tlsharden.merge({ setmetatable({ depth = 3 }, { __index = { protocol = "tlsv1_3" } }) })
    assert.is_nil(cfg.protocol)
    assert.equals(3, cfg.depth)
    assert.matches("__index but no __pairs", report.ignored[1].reason, 1, true)
  end)

  for _, order in ipairs { "later", "prosody" } do
    it(("tlsharden.merge (order %s) survives every bad layer"):format(order), function()
      local opts = { order = order }
      for _, bad in ipairs(BAD) do
        local expect = "tlsharden%.merge"
        local ok, err = pcall(tlsharden.merge, { { options = bad[2] } }, opts)
        if not ok then assert.matches(expect, tostring(err)) end
        ok, err = pcall(tlsharden.merge, { { ciphers = bad[2], protocol = "tlsv1_2+" } }, opts)
        if not ok then assert.matches(expect, tostring(err)) end
        ok, err = pcall(tlsharden.merge, { bad[2] }, opts)
        if not ok then assert.matches(expect, tostring(err)) end
      end
    end)
  end

  it("tlsharden.merge refuses bad options", function()
    for _, bad in ipairs(BAD) do
      local ok, err = pcall(tlsharden.merge, { {} }, bad[2])
      if not ok then assert.matches("tlsharden.merge", tostring(err), 1, true) end
    end
  end)

  it("every core function is covered here or by its own spec", function()
    local covered = { protocol = 1, versions = 1, ciphers = 1, forward_secrecy = 1, harden = 1, inspect = 1,
      chain = 1, merge = 1, quote = 1,
      -- the core's own helpers for the Lua modules: spec/errors_spec.lua
      guard = 1, error_new = 1, is_error = 1,
      context = { option_names = 1, load_key = 1, harden_defaults = 1, harden_report = 1, key_kind = 1, session = 1,
        answer_hello = 1 },
      wire = { dns_query = 1, dns_parse = 1, dns_rdata = 1, dane_match = 1,  -- dane_match: spec/dane_spec.lua
        suites = 1, suite = 1, groups = 1, client_hello = 1, parse_server_flight = 1, parse_client_hello = 1, replay_hello = 1,
        record = 1, heartbeat_request = 1, parse_records = 1, robot_key_exchange = 1, parse_session = 1 } }
    for name, v in pairs(core) do
      if type(v) == "function" then assert.truthy(covered[name], "tlsharden.core." .. name .. " is not covered") end
    end
    for _, sub in ipairs { "context", "wire" } do
      for name, v in pairs(core[sub]) do
        if type(v) == "function" then
          assert.truthy(covered[sub][name], ("tlsharden.%s.%s is not covered"):format(sub, name))
        end
      end
    end
  end)

  describe("with LuaSec objects", function()
    local dir, leaf
    setup(function()
      dir = pki.tmpdir()
      leaf = pki.simple(dir, "localhost", "ec256")
    end)
    teardown(function() pki.cleanup(dir) end)

    it("refuses a closed context everywhere, by name", function()
      local ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = leaf.key, certificate = leaf.cert })
      getmetatable(ctx).__close(ctx)
      for _, fn in ipairs { "versions", "harden", "context.harden_report", "inspect", "context.key_kind",
        "forward_secrecy", "chain", "context.load_key" } do
        local f = fn:find("^context%.") and context[fn:sub(9)] or tlsharden[fn]
        local ok, err = pcall(f, ctx, fn == "context.load_key" and leaf.key or nil)
        assert.is_false(ok)
        assert.matches("tlsharden." .. fn, tostring(err), 1, true)
        assert.matches("closed", tostring(err), 1, true)
        assert.equal("argument", err.kind)
      end
    end)

    it("refuses an unconnected connection without touching it", function()
      local ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = leaf.key, certificate = leaf.cert })
      local conn = assert(ssl.wrap(assert(socket.tcp()), ctx))
      for _, f in ipairs { tlsharden.versions, tlsharden.harden, context.harden_report, tlsharden.inspect,
          context.key_kind } do
        local ok, err = pcall(f, conn)
        assert.is_false(ok)
        assert.matches("expected a LuaSec context", tostring(err), 1, true)
      end
      local ok, err = pcall(tlsharden.chain, conn)
      assert.is_false(ok)
      assert.matches("tlsharden.chain", tostring(err), 1, true)
      conn:close()
    end)

    it("context.load_key refuses every bad path, naming it", function()
      local ctx = assert(ssl.newcontext { mode = "server", protocol = "any", certificate = leaf.cert })
      for _, bad in ipairs(BAD) do
        local ok, err = pcall(context.load_key, ctx, bad[2])
        if not ok then
          assert.matches("tlsharden.context.load_key: bad argument #2 'path'", tostring(err), 1, true)
        else
          assert.is_false(err)  -- a string that names no key: left to LuaSec
        end
      end
    end)

    it("leaves a context unchanged when harden refuses its policy", function()
      local ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = leaf.key, certificate = leaf.cert })
      local before = tlsharden.inspect(ctx)
      for _, bad in ipairs(BAD) do
        if bad[2] ~= nil and type(bad[2]) ~= "table" then
          assert.has_error(function() tlsharden.harden(ctx, bad[2]) end)
        end
        pcall(tlsharden.harden, ctx, { min_version = bad[2], groups = "P-999" })
      end
      assert.same(before, tlsharden.inspect(ctx))
    end)
  end)
end)

-- The error rule for every argument and option of every public function:
-- a 1 MiB value (string, option name, path, layer setting) comes back
-- quoted and shortened, and an unknown option is refused by name.
describe("the error rule", function()
  local HUGE = string.rep("x", 1024 * 1024)
  local LIMIT = 1000  -- no message needs more; a quoted value is at most 45 bytes
  local dir, leaf, ctx

  setup(function()
    dir = pki.tmpdir()
    leaf = pki.simple(dir, "localhost", "ec256")
  end)
  teardown(function() pki.cleanup(dir) end)
  before_each(function()
    ctx = assert(ssl.newcontext { mode = "server", protocol = "any", key = leaf.key, certificate = leaf.cert })
  end)

  -- Raises an error naming fn, shorter than LIMIT; returns the message.
  local function refused(fn, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, fn .. " accepted the value")
    assert.is_true(core.is_error(err), tostring(err))
    err = tostring(err)
    assert.matches("^tlsharden%." .. fn:gsub("%.", "%%.") .. ": ", err)
    assert.is_true(#err < LIMIT, ("%s: a message of %d bytes: %s"):format(fn, #err, err:sub(1, 200)))
    return err
  end

  -- Every function with an options argument: its position, the options
  -- it knows, and a call with valid other arguments.
  local OPTIONS = {
    { "protocol", { "floor", "allow_insecure" }, function(o) return tlsharden.protocol("tlsv1_2+", o) end },
    { "ciphers", { "ciphersuites", "protocol", "seclevel", "strict" },
      function(o) return tlsharden.ciphers("HIGH", o) end },
    { "merge", { "order", "policy", "mode", "floor" }, function(o) return tlsharden.merge({ {} }, o) end },
    { "new_context", { "profile", "policy", "floor", "name", "harden" },
      function(o) return tlsharden.new_context({ key = leaf.key, certificate = leaf.cert }, o) end },
    { "harden", context.harden_defaults(), function(o) return tlsharden.harden(ctx, o) end },
    { "inspect", { "probe" }, function(o) return tlsharden.inspect(ctx, o) end },
    { "chain", { "depth", "cafile", "capath", "host", "service", "at", "warn_days", "key" },
      function(o) return tlsharden.chain(leaf.cert, o) end },
    { "grade", { "guide", "starttls_cap" }, function(o) return tlsharden.grade({}, o) end },
    { "audit", { "text", "env", "dir", "name", "cafile", "capath", "at", "guide", "starttls_cap" },
      function(o) return tlsharden.audit("-- empty\n", o) end },
    { "fix", { "profile", "prosody", "env", "cafile", "capath", "guide", "at", "starttls_cap" },
      function(o) return tlsharden.fix("examples/prosody.cfg.lua", o) end },
    -- an address without xmpphost: refused even when every option passes, so nothing is sent
    { "scan", { "kind", "starttls", "xmpphost", "resolver", "resolv_conf", "timeout", "connections", "cafile", "capath",
      "from", "at", "guide", "starttls_cap", "protocols", "max_suites", "order", "on_progress", "dnssec", "trust_anchor" },
      function(o) return tlsharden.scan("127.0.0.1:1", o) end },
    -- without write every call is refused before anything runs
    { "survey.run", { "kind", "jobs", "per_server", "resolvers", "timeout", "connections", "write", "resume",
      "discover", "scan", "on_progress", "scan_options", "now" },
      function(o) return require("tlsharden.survey").run({}, o) end },
  }

  for _, case in ipairs(OPTIONS) do
    local fn, known, call = case[1], case[2], case[3]
    if fn == "harden" then
      local names = {}
      for k in pairs(known) do names[#names + 1] = k end
      known = names
    end
    it(("tlsharden.%s refuses an unknown option by name"):format(fn), function()
      local err = refused(fn, call, { flor = "tlsv1" })
      assert.matches(fn == "harden" and "unknown rule 'flor'" or "unknown option 'flor'", err, 1, true)
      refused(fn, call, { [HUGE] = true })
      refused(fn, call, { [42] = true })
    end)
    it(("tlsharden.%s quotes and shortens a 1 MiB value of every option"):format(fn), function()
      for _, name in ipairs(known) do
        local ok, err = pcall(call, { [name] = HUGE })
        if not ok then
          err = tostring(err)
          assert.matches("^tlsharden%." .. fn:gsub("%.", "%%.") .. ": ", err)
          assert.is_true(#err < LIMIT, ("%s option %s: a message of %d bytes"):format(fn, name, #err))
        end
        ok, err = pcall(call, { [name] = { HUGE } })
        if not ok then assert.is_true(#tostring(err) < LIMIT, ("%s option %s (a list)"):format(fn, name)) end
      end
    end)
  end

  it("quotes and shortens a 1 MiB argument of the survey and report functions", function()
    local survey = require "tlsharden.survey"
    refused("survey.parse_list", survey.parse_list, HUGE)
    refused("survey.parse_list", survey.parse_list, "a.org\n" .. HUGE .. " x")
    refused("survey.parse_list", survey.parse_list, "a.org", { HUGE })
    refused("survey.run", survey.run, { HUGE })
    refused("survey.run", survey.run, {}, { write = print, kind = HUGE })
    refused("survey.read", survey.read, HUGE, print)
    refused("survey.read", survey.read, "/nonexistent/" .. HUGE, print)
    refused("report.build", require("tlsharden.report").build, "/nonexistent/" .. HUGE)
    refused("report.build", require("tlsharden.report").build, { HUGE })
  end)

  it("quotes and shortens a 1 MiB main argument of every function", function()
    refused("protocol", tlsharden.protocol, HUGE)
    refused("ciphers", tlsharden.ciphers, HUGE)
    refused("forward_secrecy", tlsharden.forward_secrecy, HUGE)
    refused("scan", tlsharden.scan, HUGE)                                 -- a domain
    refused("scan", tlsharden.scan, HUGE .. ":5222")                      -- a host and port
    refused("chain", tlsharden.chain, HUGE)                               -- a path
    refused("chain", tlsharden.chain, "-----BEGIN" .. HUGE)               -- a PEM string
    refused("chain", tlsharden.chain, { HUGE })                           -- a DER list
    refused("audit", tlsharden.audit, HUGE)                               -- a path
    refused("fix", tlsharden.fix, HUGE)                                   -- a path
    refused("audit", tlsharden.audit, "x = '" .. HUGE .. "\n", { text = true })  -- Lua quotes the token
    refused("audit", tlsharden.audit, "VirtualHost '" .. HUGE .. "'\ncertificate = 1\n", { text = true })
    refused("profile", tlsharden.profile, HUGE)
    refused("layer", tlsharden.layer, 42, HUGE)
    refused("context.load_key", context.load_key, ctx, HUGE .. "\0")
    refused("versions", tlsharden.versions, HUGE)
    refused("harden", tlsharden.harden, HUGE)
    refused("inspect", tlsharden.inspect, HUGE)
    refused("grade", tlsharden.grade, HUGE)
    refused("new_context", tlsharden.new_context, HUGE)
    -- a path that does not exist is not an error of load_key: false, reason
    assert.is_false((context.load_key(ctx, HUGE)))
  end)

  it("quotes and shortens a 1 MiB setting name or value in a merge layer", function()
    for _, order in ipairs { "later", "prosody" } do
      local function merge(layer) return tlsharden.merge({ layer }, { order = order }) end
      refused("merge", merge, { [HUGE] = true, protocol = 1 })
      refused("merge", merge, { name = HUGE, protocol = HUGE })
      for _, key in ipairs { "protocol", "ciphers", "ciphersuites", "curveslist", "verify", "depth",
                              "mode", "key", "certificate", "cafile", "dhparam" } do
        local ok, err = pcall(merge, { [key] = HUGE .. "\0" })
        if not ok then assert.is_true(#tostring(err) < LIMIT, ("merge setting %s: %d bytes"):format(key, #tostring(err))) end
      end
      refused("merge", merge, { options = { HUGE } })
      refused("merge", merge, { options = { [HUGE] = 1 } })
      refused("merge", merge, { verifyext = { HUGE } })
      refused("merge", merge, { verify = { HUGE } })
    end
    refused("merge", tlsharden.merge, { { protocol = "tlsv1_2+" }, { name = HUGE, protocol = "tlsv1+" } }, { policy = "strict" })
    refused("new_context", tlsharden.new_context, { key = leaf.key, certificate = leaf.cert, [HUGE] = 1,
      options = { HUGE } })
    refused("new_context", tlsharden.new_context, { key = HUGE, certificate = leaf.cert })
  end)

  it("quotes and shortens 1 MiB facts and grade names", function()
    refused("grade", tlsharden.grade, { [HUGE] = true })
    refused("grade", tlsharden.grade, {}, { guide = HUGE })
    refused("audit", tlsharden.audit, "-- empty\n", { guide = HUGE })
  end)

  it("tlsharden.harden(ctx) and tlsharden.core.harden(ctx, {}) do the same", function()
    local a = assert(ssl.newcontext { mode = "server", protocol = "any", ciphers = "ALL", key = leaf.key,
      certificate = leaf.cert })
    local b = assert(ssl.newcontext { mode = "server", protocol = "any", ciphers = "ALL", key = leaf.key,
      certificate = leaf.cert })
    local ra, rb = tlsharden.harden(a), core.harden(b, {})
    assert.is_true(#ra.changes >= 7)
    assert.same(ra, rb)
    assert.same(tlsharden.inspect(a), tlsharden.inspect(b))
    assert.same(context.harden_defaults(), ra.policy)
    -- and one wording of a bad rule, whichever door
    local ea = select(2, pcall(tlsharden.harden, a, { bogus = true }))
    local eb = select(2, pcall(core.harden, b, { bogus = true }))
    assert.equals(tostring(ea), tostring(eb))
    assert.matches("unknown rule 'bogus'", tostring(ea), 1, true)
  end)

  it("tlsharden.quote renders every kind of value the way messages do", function()
    assert.equals("'abc'", core.quote("abc"))
    assert.equals("'" .. string.rep("x", 40) .. "...'", core.quote(HUGE))
    assert.equals("'a\\0b\\10'", core.quote("a\0b\n"))
    assert.equals("42", core.quote(42))
    assert.equals("true", core.quote(true))
    assert.equals("nil", core.quote(nil))
    assert.equals("a table", core.quote({}))
    assert.equals("a table", core.quote(setmetatable({}, { __tostring = function() error("no") end })))
  end)
end)

-- The same rule for the scanner's layers: the wire writer and parser, DNS,
-- DANE, and the Lua modules around them.
describe("the error rule for the scanner's layers", function()
  local HUGE = string.rep("x", 1024 * 1024)
  local LIMIT = 1000
  local dns = require "tlsharden.scan.dns"
  local dane = require "tlsharden.scan.dane"
  local xmpp = require "tlsharden.scan.xmpp"

  local function bounded(label, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, label .. " accepted the value")
    assert.is_true(core.is_error(err), tostring(err))
    err = tostring(err)
    assert.matches("^tlsharden%.", err)
    assert.is_true(#err < LIMIT, ("%s: a message of %d bytes"):format(label, #err))
    return err
  end

  it("refuses unknown options of every scanner function by name", function()
    for _, c in ipairs {
      { "client_hello", function() return wire.client_hello { flor = 1 } end },
      { "parse_server_flight", function() return wire.parse_server_flight("", { flor = 1 }) end },
      { "dns_query", function() return wire.dns_query("x.org", "A", 1, { flor = 1 }) end },
      { "dns.resolver", function() return dns.resolver { flor = 1 } end },
      { "xmpp.stream_header", function() return xmpp.stream_header { to = "x", flor = 1 } end },
      { "dane.check", function() return dane.check({}, { "x" }, { flor = 1 }) end },
    } do
      local err = bounded(c[1], c[2])
      assert.matches("unknown option 'flor'", err, 1, true)
    end
  end)

  it("quotes and shortens 1 MiB values, names and option names", function()
    bounded("client_hello", wire.client_hello, { [HUGE] = 1 })
    bounded("client_hello", wire.client_hello, { server_name = HUGE })
    bounded("client_hello", wire.client_hello, { version = HUGE })
    bounded("client_hello", wire.client_hello, { suites = { HUGE } })
    bounded("client_hello", wire.client_hello, { alpn = { HUGE } })
    bounded("parse_server_flight", wire.parse_server_flight, HUGE, { [HUGE] = true })
    bounded("parse_client_hello", wire.parse_client_hello, "", HUGE)
    bounded("replay_hello", wire.replay_hello, "x", { server_name = HUGE })
    bounded("replay_hello", wire.replay_hello, "x", { key_share = HUGE })
    bounded("replay_hello", wire.replay_hello, "x", { cookie = HUGE })
    assert.same({ nil, "a record longer than TLS allows" }, { wire.replay_hello("\22\3\1\255\255" .. HUGE) })
    assert.same({ nil, "the records are cut short" }, { wire.replay_hello("\22\3\1\1\0" .. "x") })
    bounded("record", wire.record, HUGE, "tlsv1_2", "")
    bounded("record", wire.record, "alert", HUGE, "")
    bounded("record", wire.record, "alert", "tlsv1_2", HUGE)
    bounded("heartbeat_request", wire.heartbeat_request, 16384, HUGE:rep(1))
    bounded("heartbeat_request", wire.heartbeat_request, HUGE)
    bounded("robot_key_exchange", wire.robot_key_exchange, "x", HUGE)
    assert.same({ nil, "not a DER certificate" }, { wire.robot_key_exchange(HUGE, "valid") })
    bounded("client_hello", wire.client_hello, { session_ticket = HUGE })
    assert.is_nil(wire.parse_session(HUGE))
    bounded("dns_query", wire.dns_query, HUGE, "A")
    bounded("dns_query", wire.dns_query, "x.org", HUGE)
    bounded("dns_query", wire.dns_query, "x.org", "A", 1, { [HUGE] = true })
    bounded("dane_match", wire.dane_match, { { usage = 3, selector = 1, matching_type = 1, data = HUGE } }, { "x" })
    assert.is_nil(wire.suite(HUGE))  -- a name nothing has: not found
    bounded("dns.resolver", dns.resolver, { resolver = HUGE })
    bounded("xmpp.stream_header", xmpp.stream_header, { to = HUGE .. " " })
  end)

  it("reads a 1 MiB peer answer as problem records, not an error", function()
    local r = wire.parse_server_flight("\22\3\3\255\255" .. HUGE)
    assert.is_table(r)
    -- a client's first flight: cut short, too long, garbage
    local hello = wire.client_hello { server_name = "example.org" }
    for i = 0, #hello - 1 do
      local h = wire.parse_client_hello(hello:sub(1, i))
      assert.same({ "incomplete", false }, { h.outcome, h.done })
      assert.is_true(h.need > 0)
    end
    assert.equal("malformed", wire.parse_client_hello("\22\3\1\255\255" .. HUGE).outcome)
    assert.equal("not_tls", wire.parse_client_hello(HUGE).outcome)
    assert.equal("malformed", wire.parse_client_hello("\22\3\1\0\2\1\0" .. "\23\3\3\0\1\0").outcome)
    local chunks = {}
    for i = 1, 64 do chunks[i] = "\22\3\1\64\0" .. ("\1"):rep(16384) end
    assert.equal("malformed", wire.parse_client_hello(table.concat(chunks)).outcome)
    -- records: what a heartbeat answer of 1 MiB looks like, and garbage
    local beat = wire.record("heartbeat", "tlsv1_2", "\2\64\0" .. ("x"):rep(16381))
    local rr = wire.parse_records(beat:rep(64))
    assert.same({ 64, 16381, 64 * #beat, 0 }, { #rr.records, rr.records[1].carried, rr.consumed, rr.need })
    assert.is_nil(rr.records[1].payload)
    assert.is_true(wire.parse_records(HUGE).malformed)
    local parsed = wire.dns_parse(HUGE)
    assert.is_nil(parsed)
    assert.is_nil(wire.dns_rdata("SRV", HUGE))
    assert.is_nil(wire.dns_rdata("TXT", ("\255"):rep(70000)))
  end)
end)
