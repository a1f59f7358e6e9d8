-- tlsharden survey and tlsharden report: the list, the results file and
-- the progress lines on their own; then a real survey of a loopback
-- Prosody whose hosts were each served a known fault
-- (spec/helpers/survey_fixture.lua), every count of its report checked
-- against what was served, a survey killed midway and resumed, two
-- surveys compared, and the HTML page in a real browser.
local json = require "tlsharden.json"
local problem_walk = require "spec.helpers.problem_walk"
local survey = require "tlsharden.survey"
local results = require "tlsharden.survey.results"
local progress = require "tlsharden.survey.progress"
local report = require "tlsharden.report"
local markdown = require "tlsharden.report.markdown"
local html = require "tlsharden.report.html"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local prosody = require "spec.helpers.prosody"
local dns_servers = require "spec.helpers.dns_servers"
local fixture = require "spec.helpers.survey_fixture"
local browser = require "spec.helpers.browser"
local socket = require "socket"

-- A stream that keeps what is written to it.
local buffer = require("spec.helpers.cli").buffer

local function lines_of(path)
  local t = {}
  for line in pki.read(path):gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

describe("survey list", function()
  it("takes domains and HOST:PORT, comments and blank lines, and counts repeats", function()
    local targets, dups = survey.parse_list("# servers\nExample.ORG.\n\n  xmpp.example.net:5223  # direct\n"
      .. "example.org\r\nother.example\n")
    assert.same({ "example.org", "xmpp.example.net:5223", "other.example" },
      { targets[1].target, targets[2].target, targets[3].target })
    assert.same({ 2, 4, 6 }, { targets[1].line, targets[2].line, targets[3].line })
    assert.same({ "xmpp.example.net", 5223 }, { targets[2].host, targets[2].port })
    assert.same({ 5 }, dups)
  end)

  it("takes what tlsharden scan takes: an address with --xmpphost, --starttls and --kind", function()
    local targets, dups = survey.parse_list("192.0.2.10:5222 --xmpphost Example.ORG\n"
      .. "[2001:db8::1]:5223 --starttls none --xmpphost example.org --kind s2s\n"
      .. "192.0.2.10:5269 --starttls=s2s --xmpphost example.org\n"
      .. "example.net --kind c2s\n"
      .. "192.0.2.10:5222 --xmpphost example.org\n")
    assert.equal(4, #targets)
    assert.same({ 5 }, dups)
    assert.same({ "192.0.2.10:5222", "example.org", { xmpphost = "Example.ORG" } },
      { targets[1].target, targets[1].domain, targets[1].options })
    assert.same({ "s2s", "none", "example.org" }, { targets[2].kind, targets[2].options.starttls, targets[2].domain })
    assert.equal("s2s", targets[3].kind)   -- an s2s STARTTLS port is scanned as s2s only
    assert.same({ "example.net", "c2s" }, { targets[4].target, targets[4].kind })
    -- what a scan of the same arguments would see
    local scan = require "tlsharden.scan"
    for _, t in ipairs(targets) do assert.is_table(scan.parse_target(t.target)) end
  end)

  it("refuses a line that is no target, naming the file and the line", function()
    for _, c in ipairs {
      { "a.org\nnot a name\n", "list.txt, line 2: expected an option such as --xmpphost NAME, got 'a'" },
      { "a.org\nnot_a/name\n", "list.txt, line 2: expected DOMAIN or HOST:PORT, without spaces, '/' or '@'" },
      { "192.0.2.1:5222", "list.txt, line 1: '192.0.2.1:5222' is an address: the XMPP domain" },
      { "[2001:db8::1]:5222", "is an address: the XMPP domain (the stream's 'to') must be given as xmpphost" },
      { "a.org:70000", "port out of range (1-65535)" },
      { "a.org:x", "expected a port number after ':'" },
      { "a.org --starttls none", "option --starttls is for HOST:PORT targets" },
      { "h.org:5222 --starttls tls", "option --starttls expected 'c2s', 's2s' or 'none', got 'tls'" },
      { "h.org:5222 --colour red", "unknown option --colour" },
      { "h.org:5222 --xmpphost", "option --xmpphost needs a value" },
      { "h.org:5222 --kind c2s --kind s2s", "option --kind given twice" },
    } do
      local ok, err = pcall(survey.parse_list, c[1], "list.txt")
      assert.is_false(ok)
      assert.matches("^tlsharden%.survey%.parse_list: ", tostring(err))
      assert.matches(c[2], tostring(err), 1, true)
    end
    assert.has_error(function() survey.parse_list(42) end,
      "tlsharden.survey.parse_list: bad argument #1 'text': expected a string, got 42")
  end)
end)

describe("survey results file", function()
  local dir
  before_each(function() dir = pki.tmpdir() end)
  after_each(function() pki.cleanup(dir) end)

  it("reads whole lines, reports others, and cuts a half-written last line off before appending", function()
    local path = dir .. "/r.jsonl"
    local a = json.encode { target = "a.org", kind = "c2s", tls = "starttls", host = "a.org", address = "127.0.0.1",
      port = 5222, status = "ok", survey = { key = "a.org|c2s|x", target = "a.org", of = 2 } }
    pki.write(path, a .. "\nnot json\n" .. '{"target": "b.org", "ki')
    local seen = {}
    local file = results.read(path, function(rec) seen[#seen + 1] = rec end)
    assert.same({ 1, "a.org", 1 }, { #seen, seen[1].target, seen[1]._line })
    assert.same({ { line = 2 } }, { { line = file.bad[1].line } })
    assert.equal('{"target": "b.org", "ki', file.tail)
    local p = results.progress_of(path)
    assert.same({ count = 1, of = 2 }, p.groups["a.org|c2s"])
    assert.is_true(p.done["a.org|c2s|x"])
    local f = results.open_append(path, p.file)
    results.writer(f)({ target = "c.org", status = "refused" })
    f:close()
    assert.same({ a, "not json", '{"status":"refused","target":"c.org"}' }, lines_of(path))
  end)

  it("raises for a file that cannot be read", function()
    assert.has_error(function() results.read(dir .. "/none.jsonl", function() end) end)
  end)
end)

describe("a report's grade labels", function()
  it("says what a T stands for: an untrusted certificate, or the STARTTLS cap over a trusted one", function()
    local report = require "tlsharden.report"
    local function row(t_cause)
      return report.row({ target = "a.test", kind = "c2s", status = "ok",
        grade = { grade = "T", grade_if_trusted = "A+", t_cause = t_cause, score = 95, caps = {} } }, 1)
    end
    assert.equal("T (A+ without the STARTTLS cap)", row("starttls").grade_label)
    assert.equal("T (A+ if trusted)", row("trust").grade_label)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(json.encode({ target = "a.test", domain = "a.test", kind = "c2s", status = "ok", address = "127.0.0.1",
      port = 5222, tls = "starttls", grade = { grade = "T", grade_if_trusted = "A+", t_cause = "starttls", score = 95,
        caps = {} } }), "\n")
    f:close()
    local page = html.render(report.build(path))
    os.remove(path)
    assert.matches("T (A+ without the STARTTLS cap), score 95", page, 1, true)
    assert.is_nil(page:find("if trusted", 1, true))
  end)
end)

describe("survey progress", function()
  local function state(done, found)
    return { entries = 10, lookups = 10, resolved = 10, found = found, scanned = done, resumed = 0,
      ok = done, failed = 0, statuses = { ok = done }, started = 0 }
  end

  it("writes a line at every 5 % when stderr is not a terminal, and a last line", function()
    local out, t = buffer(), 0
    local r = progress.reporter(out, { terminal = false, now = function() return t end })
    for i = 1, 40 do
      t = i / 4
      r.update(state(i, 40))
    end
    r.finish(state(40, 40))
    local lines = {}
    for l in out:text():gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal(21, #lines)
    assert.equal("survey: 2/40 endpoints (5%), ok 2, failed 0, 4.0/s, 0:01 elapsed, ETA 0:10", lines[1])
    assert.matches("^survey: 40/40 endpoints %(100%%%)", lines[20])
    assert.equal("survey: 40 endpoints of 10 targets in 10.0 s: ok 40, failed 0", lines[21])
  end)

  it("redraws one bar in place on a terminal", function()
    local out, t = buffer(), 0
    local r = progress.reporter(out, { terminal = true, width = 10, now = function() return t end })
    t = 1
    r.update(state(5, 20))
    assert.equal("\r\27[K[##........] 5/20 endpoints (25%), ok 5, failed 0, 5.0/s, 0:01 elapsed, ETA 0:03", out:text())
    r.update(state(6, 20))  -- within 0.1 s: not drawn again
    assert.equal(1, select(2, out:text():gsub("\r", "")))
  end)
end)

-- ---- a real survey ----

local have_dns = dns_servers.have("unbound") and dns_servers.have("ldns-signzone")

describe("a survey of a loopback Prosody with hosts of known faults", function()
  if not prosody.installed() or not have_dns then
    pending("needs Debian's prosody, unbound and ldnsutils (scripts/install-deps.sh installs them)")
    return
  end

  local fx, dir, rep, first
  local served = {}   -- "target kind tls" -> what was served

  -- Run the command line in a child process; returns ok, stdout+stderr.
  local function tlsharden(args, stdin)
    local input = "/dev/null"
    if stdin then input = pki.write(dir .. "/stdin.txt", stdin) end
    return sh.exec(("cd %s && ./bin/tlsharden %s < %s"):format(sh.quote(prosody.root), args, sh.quote(input)))
  end

  local function survey_args(out, extra)
    return ("survey %s --out %s --resolver %s --trust-anchor %s --cafile %s --timeout 10 --per-server 32 %s"):format(
      sh.quote(dir .. "/list.txt"), sh.quote(out), fx.resolver, sh.quote(fx.trust_anchor), sh.quote(fx.cafile),
      extra or "")
  end

  setup(function()
    fx = fixture.start()
    dir = pki.tmpdir()
    pki.write(dir .. "/list.txt", fx.list)
    for _, e in ipairs(fx.endpoints) do served[e.target .. " " .. e.kind .. " " .. tostring(e.tls)] = e end
    first = dir .. "/first.jsonl"
    local ok, out = tlsharden(survey_args(first))
    assert(ok, out)
    first = { path = first, stderr = out }
    rep = report.build(first.path)
  end)

  teardown(function()
    if fx then fx.stop() end
    pki.cleanup(dir)
  end)

  -- The key of a result line: which endpoint of the fixture it is.
  local function served_key(rec)
    local tls = rec.status == "dns" and "nil" or tostring(rec.tls)
    return rec.survey.target .. " " .. rec.kind .. " " .. tls
  end

  it("writes one line per endpoint, each exactly once, every failure with its status and reason", function()
    local seen = {}
    for _, line in ipairs(lines_of(first.path)) do
      local rec = json.decode(line)
      local key = served_key(rec)
      assert.is_nil(seen[key], "twice: " .. key)
      seen[key] = true
      local want = served[key]
      assert.is_not_nil(want, "not served: " .. key)
      assert.equal(want.status, rec.status, key)
      if rec.status ~= "ok" then assert.is_string(rec.reason, key) end
    end
    for key in pairs(served) do assert.is_true(seen[key], "missing: " .. key) end
    assert.equal(#fx.endpoints, #rep.rows)
  end)

  it("counts, per recorded client, the endpoints it cannot reach and why", function()
    local t = report.find(rep.counts, "clients")
    assert.truthy(t, "no clients table")
    local with, fails = 0, {}
    for _, line in ipairs(lines_of(first.path)) do
      local rec = json.decode(line)
      if rec.clients then
        with = with + 1
        for _, c in ipairs(rec.clients) do
          assert.equal(rec.kind, c.kind)
          if not c.result.ok then
            assert.is_string(c.result.cause, c.name)
            fails[c.name] = (fails[c.name] or 0) + 1
            -- a well configured host is reached by every client
            assert.is_nil(rec.survey.target:find("^good"), c.name .. " fails on " .. rec.survey.target .. ": "
              .. c.result.reason)
          end
        end
      end
    end
    assert.is_true(with > 0)
    assert.equal(with, t.base.all)
    for _, row in ipairs(t.rows) do
      if not row.key:find(":", 1, true) then assert.equal(fails[row.key] or 0, row.all, row.key) end
    end
  end)

  it("surveys lines said as a scan's arguments: an address with --xmpphost, --starttls, --kind", function()
    local ports = fx.prosody.ports
    local host = fixture.fqdn("good3")
    local lines = {
      ("127.0.0.1:%d --xmpphost %s"):format(ports.c2s, host),
      ("127.0.0.1:%d --starttls s2s --xmpphost %s"):format(ports.s2s, host),
      ("127.0.0.1:%d --starttls none --xmpphost %s --kind c2s"):format(ports.c2s_direct_tls, host),
    }
    pki.write(dir .. "/addresses.txt", table.concat(lines, "\n") .. "\n")
    local out = dir .. "/addresses.jsonl"
    local ok, text = tlsharden(("survey %s --out %s --cafile %s --timeout 2 --quiet"):format(
      sh.quote(dir .. "/addresses.txt"), sh.quote(out), sh.quote(fx.cafile)))
    assert(ok, text)
    local seen = {}
    for _, line in ipairs(lines_of(out)) do
      local rec = json.decode(line)
      seen[#seen + 1] = ("%s %s %s %s"):format(rec.kind, rec.tls, rec.domain, rec.status)
      -- the same arguments given to a scan grade the endpoint the same
      local words = {}
      for w in rec.survey.target:gmatch("%S+") do words[#words + 1] = w end
      local opts = { cafile = fx.cafile, timeout = 2 }
      for i = 2, #words, 2 do opts[words[i]:sub(3)] = words[i + 1] end
      local scanned = require("tlsharden").scan(words[1], opts)
      assert.equal(scanned.endpoints[1].grade.grade, rec.grade.grade, rec.survey.target)
    end
    table.sort(seen)
    assert.same({
      ("c2s direct %s ok"):format(host),
      ("c2s starttls %s ok"):format(host),
      ("s2s starttls %s ok"):format(host),
    }, seen)
  end)

  it("uses one problem record in every line and in the report", function()
    local records = 0
    for i, line in ipairs(lines_of(first.path)) do
      local bad, seen = problem_walk.walk(line)
      assert.same({}, bad, "line " .. i)
      records = records + seen
    end
    assert.is_true(records > #fx.endpoints, tostring(records))
    local bad, seen = problem_walk.walk(json.encode(rep.rows))
    assert.same({}, bad)
    assert.is_true(seen > #fx.endpoints, tostring(seen))
  end)

  it("shows its progress on stderr, a line per 5 % off a terminal", function()
    local steps = 0
    for line in first.stderr:gmatch("[^\n]+") do
      if line:match("^survey: %d+/%d+ endpoints %(%d+%%%)") then steps = steps + 1 end
    end
    assert.is_true(steps >= 5 and steps <= 21, first.stderr)
    assert.matches(("survey: %d endpoints of 27 targets in [%%d.]+ s: ok %d, failed %d"):format(#fx.endpoints,
      report.count(rep.counts, "status", "ok"), #fx.endpoints - report.count(rep.counts, "status", "ok")),
      first.stderr)
  end)

  -- Count fixture endpoints: { all, c2s, s2s } of those for which pred holds.
  local function expected(pred)
    local t = { all = 0, c2s = 0, s2s = 0 }
    for _, e in ipairs(fx.endpoints) do
      if pred(e) then
        t.all = t.all + 1
        t[e.kind] = t[e.kind] + 1
      end
    end
    return t
  end

  local function row_of(id, key)
    local t = report.find(rep.counts, id)
    for _, r in ipairs(t.rows) do
      if r.key == key then return { all = r.all, c2s = r.c2s, s2s = r.s2s } end
    end
    return { all = 0, c2s = 0, s2s = 0 }
  end

  local function check(id, base, rows)
    local t = report.find(rep.counts, id)
    assert.same(expected(base), t.base, id .. ": base")
    for key, pred in pairs(rows) do
      assert.same(expected(function(e) return base(e) and pred(e) end), row_of(id, key), id .. ": " .. key)
    end
  end

  -- TLS was seen: scanned (ok), or graded without the stream after TLS (tls_only)
  local ok = function(e) return e.status == "ok" or e.status == "tls_only" end
  local TRUST = { expired = true, self_signed = true, self_signed_chain = true, untrusted = true,
    missing_intermediate = true }

  it("counts the outcomes", function()
    local rows = {}
    for _, s in ipairs { "ok", "dns", "refused", "timeout", "not_xmpp", "tls_failed", "tls_only" } do
      rows[s] = function(e) return e.status == s end
    end
    check("status", function() return true end, rows)
  end)

  -- graded: an XMPP stream was seen (a STARTTLS port that lets no client
  -- into TLS is graded F, docs/reference/scan.md)
  local graded = function(e)
    return e.status == "ok" or e.status == "tls_only" or (e.status == "tls_failed" and e.tls == "starttls")
  end

  it("counts grades with and without certificate problems", function()
    check("grades", graded, {
      T = function(e) return TRUST[e.cert] == true end,
      M = function(e) return e.cert == "wrong_host" end,
    })
    -- every other grade is a letter; the letter a host would have if
    -- trusted is its twin's: the good host with the same key and settings
    local letter = {}
    for _, r in ipairs(rep.rows) do letter[r.target .. " " .. r.kind .. " " .. tostring(r.tls)] = r.grade end
    local twin = { ec256 = "good1", rsa2048 = "good4" }
    local function if_trusted(e)
      local key = e.target .. " " .. e.kind .. " " .. e.tls
      if e.status == "tls_failed" then return "F" end
      if e.cert == "good" or e.cert == "good_chain" then return letter[key] end
      local h = e.target:match("^[^.]+")
      for _, host in ipairs(fixture.HOSTS) do
        if host.name == h then return letter[fixture.fqdn(twin[host.key]) .. " " .. e.kind .. " " .. e.tls] end
      end
    end
    local rows = {}
    for _, g in ipairs { "A+", "A", "A-", "B", "C", "D", "E", "F" } do
      rows[g] = function(e) return if_trusted(e) == g end
    end
    check("grades_if_trusted", graded, rows)
  end)

  it("counts why certificates fail", function()
    local has_chain = function(e) return e.status == "ok" or e.status == "tls_only" end
    check("certificates", has_chain, {
      any = function(e) return e.cert ~= "good" and e.cert ~= "good_chain" end,
      expired = function(e) return e.cert == "expired" end,
      self_signed = function(e) return e.cert == "self_signed" end,
      self_signed_chain = function(e) return e.cert == "self_signed_chain" end,
      wrong_host = function(e) return e.cert == "wrong_host" end,
      untrusted = function(e) return e.cert == "untrusted" or e.cert == "missing_intermediate" end,
    })
  end)

  it("counts protocols, keys and suites", function()
    local rows = {}
    for _, p in ipairs(require("tlsharden.protocols").names) do rows[p] = function(e) return e.protocols[p] == true end end
    check("protocols", ok, rows)
    check("keys", ok, {
      ["EC 256"] = function(e) return e.key == "EC 256" end,
      ["RSA 1024"] = function(e) return e.key == "RSA 1024" end,
      ["RSA 2048"] = function(e) return e.key == "RSA 2048" end,
      ["RSA 4096"] = function(e) return e.key == "RSA 4096" end,
    })
    assert.equal(4, #report.find(rep.counts, "keys").rows)
    check("suites", ok, {
      weak = function(e) return e.weak end,
      export = function(e) return e.export end,
      fs_all = function(e) return e.fs == "all" end,
      fs_some = function(e) return e.fs == "some" end,
      fs_none = function(e) return e.fs == "none" end,
    })
  end)

  it("counts STARTTLS, SASL PLAIN before TLS and DANE", function()
    check("starttls", function(e) return e.starttls ~= nil end, {
      offered = function(e) return e.starttls end,
      required = function(e) return e.required end,
      optional = function(e) return e.starttls and not e.required end,
      missing = function(e) return not e.starttls end,
    })
    check("plain", function(e) return e.plain ~= nil end, {
      plain = function(e) return e.plain end,
      any = function(e) return e.plain end,
    })
    check("dane", ok, {
      valid = function(e) return e.dane == "valid" end,
      invalid = function(e) return e.dane == "invalid" end,
      none = function(e) return e.dane == "none" end,
      ["-"] = function(e) return e.dane == nil end,
    })
  end)

  it("prints the same counts as text, JSON and Markdown", function()
    local okc, out = tlsharden("report " .. sh.quote(first.path) .. " --json")
    assert(okc, out)
    local doc = json.decode(out)
    assert.same({ "report", #fx.endpoints, 27 }, { doc.command, doc.endpoints, doc.servers })
    for i, t in ipairs(rep.counts) do
      assert.equal(t.id, doc.counts[i].id)
      for j, r in ipairs(t.rows) do assert.same({ r.all, r.c2s, r.s2s }, { doc.counts[i].rows[j].all,
        doc.counts[i].rows[j].c2s, doc.counts[i].rows[j].s2s }) end
    end
    local md = markdown.render(rep)
    local certs = report.find(rep.counts, "certificates")
    assert.matches(("| self-signed | %d (%s) |"):format(row_of("certificates", "self_signed").all,
      report.percent(row_of("certificates", "self_signed").all, certs.base.all)), md, 1, true)
    assert.matches(("| PLAIN offered before TLS (a password in clear text) | 1 (%s) |"):format(
      report.percent(1, report.find(rep.counts, "plain").base.all)), md, 1, true)
    okc, out = tlsharden("report " .. sh.quote(first.path) .. " --markdown -")
    assert(okc, out)
    assert.equal(md .. "\n", out)
    okc, out = tlsharden("report " .. sh.quote(first.path) .. " --no-color")
    assert(okc, out)
    assert.matches("Certificates", out, 1, true)
    assert.matches(("%d endpoints of 27 servers"):format(#fx.endpoints), out, 1, true)
  end)

  it("resumes a survey killed midway and ends with every endpoint exactly once", function()
    local path = dir .. "/resumed.jsonl"
    local pid = tonumber(sh.run(("cd %s && exec ./bin/tlsharden %s > %s 2>&1 & echo $!"):format(
      sh.quote(prosody.root), survey_args(path), sh.quote(dir .. "/killed.log"))):match("%d+"))
    local deadline, n = socket.gettime() + 60, 0
    repeat
      socket.sleep(0.02)
      local f = io.open(path, "rb")
      local text = f and f:read("*a") or ""
      if f then f:close() end
      n = select(2, text:gsub("\n", ""))
    until n >= 12 or socket.gettime() > deadline
    sh.exec("kill -9 " .. pid)
    socket.sleep(0.2)
    local before = pki.read(path)
    local whole = before:match("^(.*\n)") or ""
    local kept = select(2, whole:gsub("\n", ""))
    assert.is_true(kept >= 12 and kept < #fx.endpoints, "lines before the kill: " .. kept)
    local okc, out = tlsharden(survey_args(path, "--resume"))
    assert(okc, out)
    assert.matches(("survey: %d endpoints of 27 targets in [%%d.]+ s %%(%d from an earlier run%%)"):format(
      #fx.endpoints, kept), out)
    local after = pki.read(path)
    assert.equal(whole, after:sub(1, #whole))
    local seen, count = {}, 0
    for _, line in ipairs(lines_of(path)) do
      local rec = json.decode(line)
      local key = served_key(rec)
      assert.is_nil(seen[key], "twice: " .. key)
      seen[key] = true
      count = count + 1
    end
    assert.equal(#fx.endpoints, count)
    -- a survey that is done has nothing left to scan
    okc, out = tlsharden(survey_args(path, "--resume"))
    assert(okc, out)
    assert.matches(("survey: %d endpoints of 27 targets in [%%d.]+ s %%(%d from an earlier run%%)"):format(
      #fx.endpoints, #fx.endpoints), out)
    assert.equal(after, pki.read(path))
  end)

  it("never has more than --per-server connections open to one address, however many jobs", function()
    local scan = require "tlsharden.scan"
    local open, max = 0, 0
    local targets = {}
    for i = 1, 8 do targets[i] = survey.parse_list(fixture.fqdn(fixture.HOSTS[i].name))[1] end
    local n = 0
    survey.run(targets, { jobs = 32, per_server = 4, timeout = 2, write = function() n = n + 1 end,
      scan_options = { resolver = fx.resolver, cafile = fx.cafile, trust_anchor = fx.trust_anchor },
      scan = function(ep, ctx)
        local sched = ctx.sched
        if not sched.counted then
          -- count the connections the scans open through the scheduler
          sched.counted = true
          local connect = sched.connect
          function sched.connect(self, host, port, timeout)
            local conn, err = connect(self, host, port, timeout)
            if conn then
              open = open + 1
              if open > max then max = open end
              local close = conn.close
              function conn.close(c)
                if c.tcp then open = open - 1 end
                return close(c)
              end
            end
            return conn, err
          end
        end
        return scan.endpoint(ep, ctx)
      end })
    assert.equal(17, n)  -- good3 has a direct TLS endpoint too
    assert.is_true(max <= 4 and max >= 2, "at most " .. max .. " connections at once")
  end)

  it("refuses to overwrite a results file, and reads a list from stdin", function()
    local okc, out = tlsharden(survey_args(first.path))
    assert.is_false(okc)
    assert.matches("exists: --resume goes on with that survey", out, 1, true)
    okc, out = tlsharden(("survey - --resolver %s --cafile %s --timeout 2 --kind c2s --quiet"):format(
      fx.resolver, sh.quote(fx.cafile)), fixture.fqdn("good1") .. "\n" .. fixture.fqdn("missing") .. "\n")
    assert(okc, out)
    local recs = {}
    for line in out:gmatch("[^\n]+") do recs[#recs + 1] = json.decode(line) end
    table.sort(recs, function(a, b) return a.survey.target < b.survey.target end)
    assert.same({ "ok", "dns" }, { recs[1].status, recs[2].status })
    assert.matches("NXDOMAIN", recs[2].reason, 1, true)
  end)

  it("compares two surveys: which servers got better or worse", function()
    -- the same servers judged two years on: every certificate has expired
    local later = dir .. "/later.jsonl"
    local okc, out = tlsharden(survey_args(later, "--quiet --at " .. (os.time() + 2 * 366 * 86400)))
    assert(okc, out)
    local cmp = report.compare(rep, report.build(later))
    -- servers are judged by their worst endpoint: those not yet T or M get worse
    local worst = {}
    for _, r in ipairs(rep.rows) do
      local id = r.target .. " " .. r.kind
      -- (an F without any TLS has no certificate to expire)
      if r.grade and (r.status == "ok" or r.status == "tls_only") and (worst[id] == nil or require("tlsharden.grade").worse(r.grade, worst[id])) then worst[id] = r.grade end
    end
    local n = 0
    for _, g in pairs(worst) do if g ~= "T" and g ~= "M" then n = n + 1 end end
    assert.equal(n, #cmp.worse)
    assert.same({ 0, 0, 0 }, { #cmp.better, #cmp.added, #cmp.removed })
    for _, it in ipairs(cmp.worse) do assert.equal("T", it.after) end
    local code
    okc, out, code = tlsharden(("report %s %s --no-color"):format(sh.quote(first.path), sh.quote(later)))
    assert.is_false(okc)
    assert.equal(1, code)
    assert.matches(("%d better, %d worse"):format(0, n), out, 1, true)
    okc, out = tlsharden(("report %s %s --no-color"):format(sh.quote(later), sh.quote(first.path)))
    assert(okc, out)
    assert.matches(("%d better, 0 worse"):format(n), out, 1, true)
  end)

  describe("the HTML page in a real browser", function()
    local ok_browser, why = browser.available()
    if not ok_browser then
      pending("chromium cannot run here: " .. why)
      return
    end
    local b, page, page_path
    setup(function()
      page_path = dir .. "/report.html"
      pki.write(page_path, html.render(rep))
      local err
      b, err = browser.start { width = 1280, height = 1000 }
      assert(b, err)
      page = b:open("file://" .. page_path)
    end)
    teardown(function() if b then b:stop() end end)

    it("is one file that asks for nothing else", function()
      local text = pki.read(page_path)
      assert.not_matches("<script[^>]+src=", text)
      assert.not_matches("<link[^>]+stylesheet", text)
      assert.not_matches("https?://", text)
      assert.not_matches("@import", text)
    end)

    it("renders with no console error, with every chart and every server", function()
      assert.same({}, page:errors())
      assert.equal(#rep.counts - 1, page:evaluate("document.querySelectorAll('svg.chart').length"))
      for _, t in ipairs(rep.counts) do
        if t.id ~= "grades_if_trusted" then
          assert.is_true(page:evaluate(("!!document.getElementById('chart-%s')"):format(t.id)), t.id)
        end
      end
      assert.equal(#report.find(rep.counts, "protocols").rows,
        page:evaluate("document.querySelectorAll('#chart-protocols rect.bar').length"))
      assert.equal(#rep.rows, page:evaluate("document.querySelectorAll('#servers-table tbody tr').length"))
      -- every server links to its details
      assert.equal(#rep.rows, page:evaluate([[Array.prototype.filter.call(
        document.querySelectorAll('#servers-table tbody tr td:first-child a'),
        function (a) { return document.getElementById(a.getAttribute('href').slice(1)) !== null; }).length]]))
    end)

    it("sorts by a column when its head is clicked, and again the other way", function()
      local function column(i)
        return page:evaluate(("Array.prototype.map.call(document.querySelectorAll('#servers-table tbody tr'),"
          .. " function (r) { return r.cells[%d].getAttribute('data-v') || r.cells[%d].textContent; })"):format(i, i))
      end
      page:click("#servers-table th[data-col='5']")
      local grades = column(5)
      for i = 2, #grades do assert.is_true(tonumber(grades[i - 1]) <= tonumber(grades[i]), "ascending") end
      assert.equal("ascending", page:evaluate("document.querySelector(\"th[data-col='5']\").getAttribute('aria-sort')"))
      page:click("#servers-table th[data-col='5']")
      grades = column(5)
      assert.is_true(tonumber(grades[1]) > tonumber(grades[#grades]))
      for i = 2, #grades do assert.is_true(tonumber(grades[i - 1]) >= tonumber(grades[i]), "descending") end
      page:click("#servers-table th[data-col='0']")
      local names = column(0)
      for i = 2, #names do assert.is_true(names[i - 1]:lower() <= names[i]:lower()) end
      assert.same({}, page:errors())
    end)

    it("filters the servers by text and by kind", function()
      page:type("#filter", "wronghost")
      assert.equal("4 of " .. #rep.rows .. " shown", page:evaluate("document.getElementById('shown').textContent"))
      page:evaluate("var s = document.getElementById('f-kind'); s.value = 's2s'; s.dispatchEvent(new Event('change'))")
      assert.equal("2 of " .. #rep.rows .. " shown", page:evaluate("document.getElementById('shown').textContent"))
      assert.same({}, page:errors())
      page:screenshot(prosody.root .. "/build/survey-report.png", true)
      assert.equal("\137PNG", pki.read(prosody.root .. "/build/survey-report.png"):sub(1, 4))
    end)

    it("fits a phone's width, the table scrolling in its box", function()
      local phone = b:open("file://" .. page_path, { width = 390, height = 844, scale = 2, mobile = true })
      assert.same({}, phone:errors())
      assert.is_true(phone:evaluate("document.documentElement.scrollWidth") <= 390)
      assert.equal("auto", phone:evaluate("getComputedStyle(document.querySelector('#servers .scroll')).overflowX"))
      phone:screenshot(prosody.root .. "/build/survey-report-phone.png")
      -- and the check for errors can fail
      phone:evaluate("console.error('a test error')")
      assert.equal(1, #phone:errors())
    end)
  end)
end)
