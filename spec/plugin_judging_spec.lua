-- mod_tlsharden's judging and logging (tlsharden.prosody.plugin_judging)
-- without a Prosody: the waiting records come back out as they went in,
-- real contexts hardened as the plugin hardens them are judged from the
-- timer once no context was queued for a while, one info line per host
-- and change with the worst grade, warnings once each.
local ssl = require "ssl"
local pki = require "spec.helpers.pki"
local pipeline = require "tlsharden.pipeline"
local profiles = require "tlsharden.profiles"

-- The module loaded afresh where Prosody's globals raise when touched.
local load_without_prosody = require "spec.helpers.no_prosody"

local plugin_judging = load_without_prosody "tlsharden.prosody.plugin_judging"
local plugin_layers = load_without_prosody "tlsharden.prosody.plugin_layers"
local plugin_dh = load_without_prosody "tlsharden.prosody.plugin_dh"

describe("plugin_judging", function()
  local global_ssl, tree, config, layers, logs, timers, J

  before_each(function()
    global_ssl = { protocol = "tlsv1+" }
    tree = { ["*"] = { ssl = global_ssl } }
    config = {
      get = function(scope, option) return (tree[scope] or {})[option] end,
      getconfig = function() return tree end,
    }
    layers = plugin_layers.new { config = config, services = function() return function() end end,
      profile = profiles.shared("hardened") }
    logs, timers = {}, {}
    J = plugin_judging.new {
      log = function(level, format, ...) logs[#logs + 1] = level .. " " .. format:format(...) end,
      add_timer = function(delay, fn) timers[#timers + 1] = { delay = delay, fn = fn } end,
      config = config, layers = layers, merge = plugin_layers.merge_options("enforce", false),
    }
    J.start()
  end)

  -- The log lines of a level that contain text.
  local function lines(level, text)
    local out = {}
    for _, l in ipairs(logs) do
      if l:sub(1, #level + 1) == level .. " " and l:find(text or "", 1, true) then out[#out + 1] = l end
    end
    return out
  end

  -- Runs the timer until it stops; how many times it ran.
  local function drain(timer)
    local runs = 0
    repeat
      runs = runs + 1
      local again = timer.fn()
    until again == nil or runs > 1e6
    return runs
  end

  describe("waiting records", function()
    local memo, a, b, c
    before_each(function()
      memo = plugin_layers.new_memo()
      a, b, c = { "a" }, { "b" }, { "c" }
    end)

    local function job(host, service, n, args, extra)
      local j = { host = host, service = service, mode = "server", owner = host, cache = memo, n = n }
      for i = 1, n do j[i] = args[i] end
      for k, v in pairs(extra or {}) do j[k] = v end
      return j
    end

    -- What take must give back for ctx queued from j.
    local function expected(ctx, j)
      local args = { n = j.n }
      for i = 1, j.n do args[i] = j[i] end
      return { ctx = ctx, host = j.host, service = j.service, mode = j.mode, cfg = j.cfg, cert_file = j.cert_file,
        sources = j.sources, cache = j.cache, report = { merge = j.merge_report, harden = false }, args = args,
        label = j.port_label or (j.host .. " " .. j.service),
        owner = (j.port_label or j.host:find(" ", 1, true)) and "*" or j.host }
    end

    it("come back out exactly as they went in, nil and false arguments included", function()
      local jobs = {
        job("example.org", "c2s", 3, { a, nil, c }, { cfg = a, cert_file = "/c.crt", sources = { b } }),
        job("example.org", "s2s_in", 0, {}),
        job("c2s_direct_tls port 5223", "c2s_direct_tls", 2, { nil, nil },
          { port_label = "c2s_direct_tls port 5223", owner = "*", merge_report = c }),
        job("example.net", "s2s_out", 5, { false, "text", 7, nil, b }, { mode = "client" }),
        job("example.net", "other", 1, { nil }),
      }
      local ctxs = { "ctx 1", "ctx 2", "ctx 3", "ctx 4", "ctx 5" }
      for i, j in ipairs(jobs) do J.enqueue(ctxs[i], j) end
      for i, j in ipairs(jobs) do assert.same(expected(ctxs[i], j), J.take()) end
      assert.is_nil(J.take())
      assert.equal(2, J.waiting("example.org"))
      assert.equal(1, J.waiting("*"))
      assert.equal(0, J.waiting("nobody"))
    end)

    it("come back out right when the array is reused, emptied or not, with longer and shorter records", function()
      local rounds = {
        { job("one.example", "c2s", 4, { a, b, c, a }), job("two.example", "c2s", 0, {}) },
        { job("three.example", "s2s_in", 1, { nil }), job("four.example", "s2s_out", 6, { a, nil, b, nil, c, nil }) },
        { job("five.example", "c2s", 2, { c, c }) },
      }
      local n = 0
      for _, round in ipairs(rounds) do
        -- half queued, one taken, the rest queued behind what still waits
        local pending = {}
        for i, j in ipairs(round) do
          n = n + 1
          J.enqueue("ctx " .. n, j)
          pending[#pending + 1] = expected("ctx " .. n, j)
          if i == 1 then assert.same(table.remove(pending, 1), J.take()) end
        end
        for _, want in ipairs(pending) do assert.same(want, J.take()) end
        assert.is_nil(J.take())
      end
    end)

    it("are dropped when judging stops", function()
      J.enqueue("ctx", job("example.org", "c2s", 1, { a }))
      J.stop()
      assert.is_nil(J.take())
      assert.equal(0, J.waiting("example.org"))
    end)
  end)

  describe("with real contexts", function()
    local dir, good, other, gc_mode
    setup(function()
      -- Lua's collector in incremental mode, as Prosody sets it (lua5.4's
      -- own is generational, whose steps never end a cycle)
      local ok, previous = pcall(collectgarbage, "incremental")
      gc_mode = ok and previous
      dir = pki.tmpdir()
      good = pki.simple(dir, "example.org")  -- its CA is not trusted: grade T
      other = pki.cert(dir, "other", { cn = "other.test", san = { "DNS:other.test" } })  -- another name: grade M
    end)
    teardown(function()
      pki.cleanup(dir)
      if gc_mode == "generational" then collectgarbage("generational") end
    end)

    -- A context as mod_tlsharden makes one for host and service: built
    -- from the global ssl and the certificate Prosody found, hardened in
    -- place by pipeline.prepare, then queued for judging.
    local function serve(memo, host, service, cert, port_label)
      local dh = plugin_dh.new(false)
      local found = { certificate = cert.cert, key = cert.key }
      local j = { report = {}, host = host, service = service, mode = "server", port_label = port_label,
        owner = (port_label or host:find(" ", 1, true)) and "*" or host, cache = memo, harden = dh.harden,
        later = true, n = 1, found }
      j.build = function(_, job)
        job.cfg = { mode = "server", protocol = "any", certificate = cert.cert, key = cert.key }
        return ssl.newcontext(job.cfg)
      end
      local ctx, report = pipeline.prepare(j)
      assert(ctx, report)
      j.merge_report, j.cert_file = report.merge, cert.cert
      J.later(ctx, j)
    end

    it("judges once no context was queued for a while, and logs one line per host with the worst grade", function()
      local memo = plugin_layers.new_memo()
      serve(memo, "example.org", "c2s", good)
      serve(memo, "example.org", "s2s_in", other)
      serve(memo, "c2s_direct_tls port 5223", "c2s_direct_tls", good, "c2s_direct_tls port 5223")
      assert.equal(1, #timers)
      assert.equal(1, timers[1].fn())  -- contexts came after the timer was set: it waits again
      assert.same({}, logs)
      drain(timers[1])
      assert.same({ "info tlsharden: example.org: worst grade M (c2s T, s2s_in M); changed: TLS floor 1.2,"
        .. " weak suites out, groups, automatic DH, server order, no renegotiation, one ticket, depth 9" },
        lines("info", "example.org"))
      assert.same({ "info tlsharden: ports and clients: grade A+ (c2s_direct_tls port 5223); changed: TLS floor 1.2,"
        .. " weak suites out, groups, automatic DH, server order, no renegotiation, one ticket, depth 9" },
        lines("info", "ports and clients"))
      assert.equal(3, #lines("debug"))
      assert.equal(1, #lines("debug", "tlsharden: example.org s2s_in: grade M, tlsv1_2+tlsv1_3, forward secrecy all;"))
      assert.equal(3, #lines("debug", "; layers: global ssl, the certificate Prosody found (from Prosody)"))

      -- the same again (mod_tlsharden's own rebuild): nothing new to say
      logs = {}
      serve(memo, "example.org", "c2s", good)
      serve(memo, "example.org", "s2s_in", other)
      assert.equal(2, #timers)
      drain(timers[2])
      assert.same({}, lines("info"))
      assert.same({}, lines("warn"))

      -- a reload that fixes the certificate: the host's line changes, once
      logs = {}
      memo = plugin_layers.new_memo()
      serve(memo, "example.org", "c2s", good)
      serve(memo, "example.org", "s2s_in", good)
      serve(memo, "example.org", "s2s_in", good)
      drain(timers[3])
      assert.same({ "info tlsharden: example.org: grade T (c2s, s2s_in); changed: TLS floor 1.2,"
        .. " weak suites out, groups, automatic DH, server order, no renegotiation, one ticket, depth 9" },
        lines("info"))
    end)

    it("warns once for each setting of the admin that asks for less and each certificate problem", function()
      local memo = plugin_layers.new_memo()
      for _ = 1, 2 do
        serve(memo, "example.org", "c2s", other)
        serve(memo, "example.org", "s2s_in", other)
        drain(timers[#timers])
      end
      local warnings = lines("warn")
      assert.same({ "warn tlsharden: global ssl sets protocol: lowers the minimum version from TLS 1.2 to TLS 1.0"
        .. " (tlsharden kept the floor)" }, lines("warn", "global ssl"))
      assert.equal(1, #lines("warn", "tlsharden: example.org: certificate SELF_SIGNED: "))
      assert.equal(1, #lines("warn", "tlsharden: example.org: certificate HOST_MISMATCH: the certificate does not"
        .. " name 'example.org' for xmpp-client"))
      assert.equal(1, #lines("warn", "tlsharden: example.org: certificate HOST_MISMATCH: the certificate does not"
        .. " name 'example.org' for xmpp-server"))
      assert.equal(4, #warnings)
      local seen = {}
      for _, w in ipairs(warnings) do
        assert.is_nil(seen[w], w)
        seen[w] = true
      end
    end)

    it("warns about a context it cannot judge and goes on", function()
      local memo = plugin_layers.new_memo()
      J.later({}, { host = "broken.example", service = "c2s", mode = "server", owner = "broken.example",
        cache = memo, n = 0 })
      serve(memo, "example.org", "c2s", good)
      drain(timers[1])
      assert.equal(1, #lines("warn", "tlsharden: broken.example c2s: not judged: "))
      assert.equal(1, #lines("info", "tlsharden: example.org: grade T (c2s)"))
    end)

    it("judges nothing once stopped", function()
      serve(plugin_layers.new_memo(), "example.org", "c2s", good)
      J.stop()
      assert.is_nil(timers[1].fn())
      assert.same({}, logs)
    end)
  end)

  it("logs a refused context as an error and hands Prosody the reason", function()
    local ctx, err = J.refuse("example.org", "c2s", "tlsharden.merge: lowers security", "; a hint")
    assert.is_nil(ctx)
    assert.equal("tlsharden: tlsharden.merge: lowers security", err)
    assert.same({ "error tlsharden: no TLS for example.org (c2s): tlsharden.merge: lowers security; a hint" },
      logs)
  end)
end)
