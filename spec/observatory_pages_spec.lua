-- The observatory's pages, badge and report (lua/tlsharden/observatory/):
-- rendered from the results of real scans of a loopback Prosody that
-- serves a certificate with hostile names, checked for what users rely on
-- (the grade, every endpoint, the order of suites), for escaping, for
-- every state of a scan, for the directory's order, for missing or
-- mistyped fields; then opened in a real browser at a desktop's and a
-- phone's width. Tagged #truth (a real Prosody and a real browser): the
-- release suite runs it.
local json = require "tlsharden.json"
local tlsharden = require "tlsharden"
local grade = require "tlsharden.grade"
local pages = require "tlsharden.observatory.pages"
local badge = require "tlsharden.observatory.badge"
local obs_report = require "tlsharden.observatory.report"
local survey_report = require "tlsharden.report"
local svg = require "tlsharden.report.svg"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local prosody = require "spec.helpers.prosody"
local browser = require "spec.helpers.browser"

local HOSTILE = [[<script>alert(1)</script>"'&]]
local esc = svg.escape

-- Whether html lets no hostile markup through: no script element at all
-- (the pages have none of their own) and none of the raw characters.
local function assert_clean(html, what)
  assert.is_nil(html:find("<script", 1, true), what)
  assert.is_nil(html:find([["'&]], 1, true), what)
  assert.is_nil(html:find("alert(1)</", 1, true), what)
end

local function copy(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = copy(v) end
  return out
end

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

-- The positions of the rows (data-domain) of the directory page, in order.
local function row_domains(html)
  local out = {}
  for d in html:gmatch('<tr data%-domain="([^"]*)"') do out[#out + 1] = d end
  return out
end

describe("observatory pages #truth", function()
  local version = prosody.version("0.12")
  if not version.ok then
    pending("needs Debian's prosody 0.12: " .. tostring(version.reason))
    return
  end

  local dir, server
  local results = {}   -- starttls, direct, closed: real scan results
  local records = {}   -- the same as the module's scan records

  setup(function()
    dir = pki.tmpdir()
    -- a self-signed certificate whose names a hostile server chose
    local key = dir .. "/hostile.key"
    local cert = dir .. "/hostile.crt"
    local conf = dir .. "/hostile.cnf"
    pki.write(conf, "[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:FALSE\n"
      .. "subjectAltName=DNS:localhost,DNS:<script>alert(1)</script>'&.example\n")
    pki.run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " .. sh.quote(key))
    pki.run(("openssl req -x509 -new -key %s -subj %s -days 30 -extensions v3 -config %s -out %s"):format(
      sh.quote(key), sh.quote("/CN=<script>alert(1)<\\/script>\"'&"), sh.quote(conf), sh.quote(cert)))
    server = prosody.start { certs = { localhost = { cert = cert, key = key } } }
    local ok, err = pcall(function()
      local opts = { xmpphost = "localhost", starttls = "c2s", kind = "c2s", timeout = 5 }
      results.starttls = tlsharden.scan("127.0.0.1:" .. server.ports.c2s, opts)
      opts.starttls = "none"
      results.direct = tlsharden.scan("127.0.0.1:" .. server.ports.c2s_direct_tls, opts)
      opts.starttls = "c2s"
      results.closed = tlsharden.scan("127.0.0.1:" .. prosody.free_port(), opts)
    end)
    if not ok then
      server.stop()
      server = nil
      error(err, 0)
    end
    -- the results as the module keeps them: through JSON and back
    for name, r in pairs(results) do
      r = json.decode(json.encode(r))
      results[name] = r
      records[name] = { id = "scan-" .. name, target = r.target, kind = "c2s",
        starttls = name == "direct" and "none" or "c2s", xmpphost = "localhost", domain = "localhost",
        state = "done", queued = r.started - 2, started = r.started, finished = r.started + r.elapsed,
        grade = r.grade, result = r }
    end
  end)

  teardown(function()
    if server then server.stop() end
    pki.cleanup(dir)
  end)

  describe("the page of a scan that is done", function()
    it("shows the overall grade and each endpoint's address, port and transport", function()
      for _, name in ipairs { "starttls", "direct" } do
        local r = results[name]
        assert.is_string(r.grade, name)
        local html = pages.scan(records[name], { now = r.started + 60 })
        assert.truthy(html:find(('<span class="grade g-%s big">%s</span>'):format(
          r.grade:gsub("%+", "p"):gsub("%-", "m"), esc(r.grade)), 1, true), name)
        for i, e in ipairs(r.endpoints) do
          assert.truthy(html:find(('id="ep-%d"'):format(i), 1, true))
          assert.truthy(html:find(("<td>%s</td><td>%d</td><td>%s</td>"):format(e.address, e.port,
            e.tls == "starttls" and "STARTTLS" or "direct TLS"), 1, true), name)
          -- the grade per endpoint, with why (the caps' reasons)
          assert.truthy(html:find(esc(grade.label(e.grade)), 1, true))
          for _, cap in ipairs(e.grade.caps) do assert.truthy(html:find(esc(cap.reason), 1, true)) end
          -- the certificate's names, escaped
          local leaf = e.chain.certs[1]
          assert.truthy(html:find(esc(leaf.subject), 1, true))
          for _, n in ipairs(leaf.dns_names) do assert.truthy(html:find(esc(n), 1, true), n) end
          -- the suites in the order the probe lists them
          for _, p in ipairs { "tlsv1_2", "tlsv1_3" } do
            local at = 1
            for _, s in ipairs(e.probe.protocols[p].suites) do
              local found = html:find("<td>" .. esc(s.name) .. "</td>", at, true)
              assert.truthy(found, s.name)
              at = found + 1
            end
          end
          for _, c in ipairs(e.clients) do assert.truthy(html:find(esc(c.name), 1, true)) end
          for name_ in pairs(e.vulnerabilities) do assert.truthy(html:find("<td>" .. name_ .. "</td>", 1, true)) end
          for _, m in ipairs(e.xmpp.mechanisms_after_tls) do assert.truthy(html:find(m, 1, true)) end
        end
        assert_clean(html, name)
        assert.is_nil(html:find('http-equiv="refresh"', 1, true))
      end
    end)

    it("shows the certificate's hostile names escaped, and STARTTLS as the server offers it", function()
      local html = pages.scan(records.starttls)
      local san = html:match("<dt>DNS names %(SAN%)</dt><dd>([^<]*)</dd>")
      assert.equal(1, (san:find("localhost, &lt;script&gt;alert(1)&lt;/script&gt;", 1, true)))
      assert.truthy(san:find("&amp;.example", 1, true))
      assert.truthy(html:find("<dt>subject</dt><dd>CN=\\&lt;script\\&gt;alert(1)", 1, true))
      assert.truthy(html:find("offered and required", 1, true))
      assert_clean(html)
    end)

    it("says why an endpoint has no grade", function()
      local e = results.closed.endpoints[1]
      assert.equal("refused", e.status)
      local html = pages.scan(records.closed)
      assert.truthy(html:find("No grade: no endpoint could be graded.", 1, true))
      assert.truthy(html:find("no grade: refused (" .. esc(e.reason) .. ")", 1, true))
      assert.truthy(html:find(("<td>%s</td><td>%d</td>"):format(e.address, e.port), 1, true))
    end)

    it("lists the domain's history at the bottom, each scan linked by its encoded id", function()
      local html = pages.scan(records.starttls, { base = "/obs/", history = {
        { id = "scan-starttls", grade = "T", finished = 1700000000, kind = "c2s" },
        { id = "old/1?x=" .. HOSTILE, grade = "A", finished = 1600000000, kind = "both" } } })
      local history = html:sub((html:find('<section id="history">', 1, true)))
      assert.truthy(history:find("this scan", 1, true))
      assert.truthy(history:find('href="/obs/scan/old%2F1%3Fx%3D%3Cscript%3E', 1, true))
      assert.truthy(history:find("2023-11-14 22:13 UTC", 1, true))
      assert.truthy(html:find('action="/obs/scan"', 1, true))
      assert_clean(html)
    end)
  end)

  describe("the states of a scan", function()
    local base = { id = "q1", target = "example.org", kind = "both", queued = 1000 }
    local function with(t)
      local r = copy(base)
      for k, v in pairs(t) do r[k] = v end
      return r
    end

    it("queued: its place in the queue, and a page that reloads itself", function()
      local html = pages.scan(with { state = "queued", position = 3 }, { now = 1010 })
      assert.truthy(html:find('<meta http-equiv="refresh" content="2">', 1, true))
      assert.truthy(html:find("number 3 in the queue", 1, true))
      assert.truthy(html:find("<progress", 1, true))
      assert.truthy(html:find("10 s ago", 1, true))
    end)

    it("running: the progress as a bar and its message", function()
      local html = pages.scan(with { state = "running", started = 1005,
        progress = { message = "c2s STARTTLS " .. HOSTILE, done = 3, total = 12 } }, { now = 1010 })
      assert.truthy(html:find('<meta http-equiv="refresh" content="2">', 1, true))
      assert.truthy(html:find('<progress value="25" max="100"', 1, true))
      assert.truthy(html:find("3 of 12 steps", 1, true))
      assert.truthy(html:find("c2s STARTTLS " .. esc(HOSTILE), 1, true))
      assert_clean(html)
    end)

    it("failed and cut off: why, and a form to scan again with the same settings", function()
      for _, state in ipairs { "failed", "cut_off" } do
        local html = pages.scan(with { state = state, target = HOSTILE, error = "resolver said " .. HOSTILE,
          starttls = "s2s", xmpphost = HOSTILE }, { base = "/o" })
        assert.is_nil(html:find("http-equiv", 1, true))
        assert.truthy(html:find(state == "failed" and "The scan failed" or "The scan was cut off", 1, true))
        assert.truthy(html:find("resolver said " .. esc(HOSTILE), 1, true))
        assert.truthy(html:find('<form class="scan" method="post" action="/o/scan">', 1, true))
        assert.truthy(html:find('<input type="hidden" name="target" value="' .. esc(HOSTILE) .. '">', 1, true))
        assert.truthy(html:find('<input type="hidden" name="starttls" value="s2s">', 1, true))
        assert_clean(html, state)
      end
    end)
  end)

  describe("escaping", function()
    it("lets no hostile string through on any page", function()
      local hostile_result = copy(results.starttls)
      hostile_result.target = HOSTILE
      local e = hostile_result.endpoints[1]
      e.reason, e.host, e.address = HOSTILE, HOSTILE, HOSTILE
      e.xmpp.mechanisms_after_tls = { HOSTILE }
      e.xmpp.stream_error = { condition = HOSTILE, text = HOSTILE }
      e.problems[#e.problems + 1] = { severity = HOSTILE, code = HOSTILE, message = HOSTILE }
      e.grade.caps[#e.grade.caps + 1] = { grade = HOSTILE, reason = HOSTILE }
      e.grade.warnings = { HOSTILE }
      e.clients[1].name, e.clients[1].software = HOSTILE, HOSTILE
      e.probe.protocols.tlsv1_3.suites[1].name = HOSTILE
      e.vulnerabilities[HOSTILE] = { status = HOSTILE, evidence = HOSTILE }
      e.dane = { status = HOSTILE, name = HOSTILE, problems = { { code = HOSTILE, message = HOSTILE } } }
      hostile_result.dns = { source = HOSTILE, resolver = { HOSTILE }, dnssec = { validated = false, why = HOSTILE },
        srv = { [HOSTILE] = { name = HOSTILE, records = { { target = HOSTILE, port = 5222 } } } },
        addresses = { [HOSTILE] = { name = HOSTILE, addresses = { { address = HOSTILE } } } },
        tlsa = { [HOSTILE] = { name = HOSTILE, failure = { code = HOSTILE, message = HOSTILE } } } }
      local rec = { id = HOSTILE, target = HOSTILE, domain = HOSTILE, kind = HOSTILE, state = "done", grade = HOSTILE,
        starttls = HOSTILE, xmpphost = HOSTILE, result = hostile_result }
      local entries = { { domain = HOSTILE, id = HOSTILE, kind = HOSTILE, grade = HOSTILE, state = HOSTILE,
        endpoints = HOSTILE, history = { { id = HOSTILE } } } }
      local opts = { base = HOSTILE, history = entries[1].history, recent = entries, message = HOSTILE,
        values = { target = HOSTILE, kind = HOSTILE, starttls = HOSTILE, xmpphost = HOSTILE }, badge_url = HOSTILE,
        sort = HOSTILE, order = HOSTILE }
      local all = {
        home = pages.home(opts), scan = pages.scan(rec, opts), directory = pages.directory(entries, opts),
        error = pages.error(400, HOSTILE, opts), badge = badge.svg(HOSTILE, HOSTILE),
      }
      for name, html in pairs(all) do assert_clean(html, name) end
      -- shown, escaped
      assert.truthy(all.home:find('value="' .. esc(HOSTILE) .. '"', 1, true))
      assert.truthy(all.home:find('<p class="message error" role="alert" id="form-error">' .. esc(HOSTILE), 1, true))
      assert.truthy(all.scan:find("<h1>" .. esc(HOSTILE), 1, true))
      assert.truthy(all.directory:find('/scan/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%26"', 1, true))
      assert.truthy(all.error:find(esc(HOSTILE), 1, true))
    end)
  end)

  describe("missing and mistyped fields", function()
    it("never raise", function()
      local weird = { "x", 7, true, {}, { "x" } }
      -- every field of an endpoint and of the result removed, then of another type
      for _, name in ipairs { "starttls", "direct", "closed" } do
        local r = results[name]
        local keys = {}
        for k in pairs(r.endpoints[1]) do keys[#keys + 1] = k end
        for _, k in ipairs(keys) do
          for _, v in ipairs { false, "x", 7, {}, { "x" } } do
            local rec = copy(records[name])
            rec.result.endpoints[1][k] = v
            assert(pcall(pages.scan, rec), name .. " endpoint " .. k)
            if v == false then
              rec.result.endpoints[1][k] = nil
              assert(pcall(pages.scan, rec), name .. " endpoint without " .. k)
            end
          end
          -- one level down
          if type(r.endpoints[1][k]) == "table" then
            for k2 in pairs(r.endpoints[1][k]) do
              for _, v in ipairs(weird) do
                local rec = copy(records[name])
                rec.result.endpoints[1][k][k2] = v
                local ok, err = pcall(pages.scan, rec)
                assert(ok, ("%s endpoint %s.%s: %s"):format(name, k, tostring(k2), tostring(err)))
              end
            end
          end
        end
        for k in pairs(r) do
          for _, v in ipairs(weird) do
            local rec = copy(records[name])
            rec.result[k] = v
            assert(pcall(pages.scan, rec), name .. " result " .. k)
          end
        end
      end
      assert.is_string(pages.scan(nil))
      assert.is_string(pages.scan({}))
      assert.is_string(pages.scan({ state = "done" }))
      assert.is_string(pages.scan({ state = "running", progress = "x", queued = 1e300 }))
      assert.is_string(pages.scan({ state = "queued", position = "x", queued = -5 }))
      assert.is_string(pages.home())
      assert.is_string(pages.home({ recent = { {}, "x", { history = "x" } }, values = "x" }))
      assert.is_string(pages.directory(nil))
      assert.is_string(pages.directory({ {}, "x", { domain = 5, history = "x", finished = "x" } }))
      assert.is_string(pages.error())
      assert.is_string(pages.error("x", {}))
      assert.same({}, (pages.sort_entries(nil)))
      assert.is_string(badge.svg(nil, nil))
    end)
  end)

  describe("the directory", function()
    local entries = {
      { domain = "b.example", grade = "B", finished = 300, kind = "both", id = "b", endpoints = 4 },
      { domain = "A.example", grade = "A+", finished = 100, kind = "c2s", id = "a", endpoints = 2 },
      { domain = "c.example", grade = "T", finished = 200, kind = "s2s", id = "c", endpoints = 1 },
      { domain = "d.example", grade = nil, finished = nil, state = "running", kind = "both", id = "d" },
      { domain = "e.example", grade = "F", finished = 400, kind = "both", id = "e", endpoints = 1 },
    }
    local function domains(list)
      local out = {}
      for i, e in ipairs(list) do out[i] = e.domain end
      return out
    end

    it("sorts by domain, grade and date, each way; the unknown ones last", function()
      local cases = {
        { "domain", "asc", { "A.example", "b.example", "c.example", "d.example", "e.example" } },
        { "domain", "desc", { "e.example", "d.example", "c.example", "b.example", "A.example" } },
        { "grade", "asc", { "A.example", "b.example", "e.example", "c.example", "d.example" } },
        { "grade", "desc", { "c.example", "e.example", "b.example", "A.example", "d.example" } },
        { "date", "asc", { "A.example", "c.example", "b.example", "e.example", "d.example" } },
        { "date", "desc", { "e.example", "b.example", "c.example", "A.example", "d.example" } },
        { "nonsense", "desc", { "A.example", "b.example", "c.example", "d.example", "e.example" } },
        { nil, nil, { "A.example", "b.example", "c.example", "d.example", "e.example" } },
      }
      local before = domains(entries)
      for _, c in ipairs(cases) do
        local sorted, sort, order = pages.sort_entries(entries, c[1], c[2])
        assert.same(c[3], domains(sorted), tostring(c[1]) .. " " .. tostring(c[2]))
        if c[1] == "nonsense" or c[1] == nil then assert.same({ "domain", "asc" }, { sort, order }) end
      end
      assert.same(before, domains(entries))   -- the list given is left as it was
      -- grade asc follows grade.ORDER
      local all = {}
      for i, g in ipairs(grade.ORDER) do all[#all + 1] = { domain = ("%02d"):format(#grade.ORDER - i), grade = g } end
      local sorted = pages.sort_entries(all, "grade", "asc")
      for i, e in ipairs(sorted) do assert.equal(grade.ORDER[i], e.grade) end
    end)

    it("is a table in that order, its heads links that sort without a script", function()
      local html = pages.directory(entries, { sort = "grade", order = "asc" })
      assert.same({ "A.example", "b.example", "e.example", "c.example", "d.example" }, row_domains(html))
      assert.truthy(html:find('<th scope="col" aria-sort="ascending"><a href="?sort=grade&amp;order=desc">', 1, true))
      assert.truthy(html:find('<a href="?sort=domain&amp;order=asc">', 1, true))
      assert.truthy(html:find('<a href="?sort=date&amp;order=desc">', 1, true))
      html = pages.directory(entries, { sort = "date", order = "desc" })
      assert.same({ "e.example", "b.example", "c.example", "A.example", "d.example" }, row_domains(html))
      assert.truthy(html:find('aria-sort="descending"><a href="?sort=date&amp;order=asc">', 1, true))
      -- each domain links to its latest scan and has its badge inline
      assert.truthy(html:find('<a href="/observatory/scan/b">b.example</a>', 1, true))
      assert.equal(#entries, count(html, "<svg "))
      assert.truthy(html:find("XMPP TLS grade of d.example: scanning", 1, true))
    end)
  end)

  describe("the badge", function()
    it("is a small balanced SVG with the grade, its colour and an escaped title", function()
      for _, g in ipairs(grade.ORDER) do
        local s = badge.svg("example.org", g)
        assert.equal(1, count(s, "<svg[ >]"))
        assert.equal(1, count(s, "</svg>"))
        assert.equal(count(s, "<text"), count(s, "</text>"))
        assert.equal(count(s, "<g[ >]"), count(s, "</g>"))
        assert.equal(1, count(s, "<title>"))
        assert.truthy(s:find(">" .. esc(g) .. "</text>", 1, true))
        assert.truthy(s:find('fill="' .. badge.colour(g) .. '"', 1, true))
        assert.truthy(s:find('xmlns="http://www.w3.org/2000/svg"', 1, true))
      end
      assert.are_not.equal(badge.colour("A+"), badge.colour("F"))
      assert.equal(badge.colour(nil), badge.colour("none"))
      assert.equal("?", badge.value("Z"))
      local s = badge.svg(HOSTILE, "A")
      assert.truthy(s:find("<title>XMPP TLS grade of " .. esc(HOSTILE) .. ": A</title>", 1, true))
      assert_clean(s)
      assert.is_nil(badge.svg("x", "A", { inline = true }):find("xmlns", 1, true))
    end)

    it("grows with its text", function()
      local function width(s) return tonumber(s:match('width="(%d+)"')) end
      assert.is_true(width(badge.svg("x", "A+")) > width(badge.svg("x", "A")))
      assert.is_true(width(badge.svg("x", "scanning")) > width(badge.svg("x", "none")))
      assert.is_true(width(badge.svg("x", "none")) > width(badge.svg("x", "?")))
    end)
  end)

  describe("the report", function()
    local function recs()
      return { copy(records.starttls), copy(records.direct), copy(records.closed),
        { id = "q", target = "queued.example", state = "queued" } }
    end

    it("makes a survey's lines of the records: one per endpoint, one per kind without any", function()
      local list = recs()
      list[1].kind = "both"   -- asked for both kinds: s2s gave no endpoint
      local lines = obs_report.lines(list)
      assert.equal(4, #lines)
      assert.same({ "c2s", "s2s", "c2s", "c2s" }, { lines[1].kind, lines[2].kind, lines[3].kind, lines[4].kind })
      assert.equal(results.starttls.endpoints[1].port, lines[1].port)
      assert.same({ "dns", "no endpoint found" }, { lines[2].status, lines[2].reason })
      assert.equal("refused", lines[4].status)
      assert.equal(records.starttls.target, lines[1].survey.target)
    end)

    it("renders the survey report of the records, with no script, and its counts", function()
      local html = obs_report.html(recs(), { base = "/o" })
      assert_clean(html)
      assert.not_matches("https?://", html)
      assert.truthy(html:find('<a href="/o/">XMPP TLS observatory</a>', 1, true))
      for _, name in ipairs { "starttls", "direct", "closed" } do
        local e = results[name].endpoints[1]
        assert.truthy(html:find(esc(e.target), 1, true), name)
        assert.truthy(html:find(("%s:%d"):format(e.address, e.port), 1, true), name)
      end
      local data = obs_report.json(recs())
      assert.same({ 3, 3 }, { data.targets, data.endpoints })
      assert.equal(2, survey_report.count(data.counts, "status", "ok"))
      assert.equal(1, survey_report.count(data.counts, "status", "refused"))
      local expect = 0
      for _, name in ipairs { "starttls", "direct" } do
        if results[name].grade == results.starttls.grade then expect = expect + 1 end
      end
      assert.equal(expect, survey_report.count(data.counts, "grades", results.starttls.grade))
    end)

    it("always removes its temporary file, also when the report fails", function()
      local made = {}
      local tmpname, build = os.tmpname, survey_report.build
      os.tmpname = function()
        local p = tmpname()
        made[#made + 1] = p
        return p
      end
      local ok, err = pcall(function()
        assert.is_string(obs_report.html(recs()))
        survey_report.build = function() error("the report broke", 0) end
        return obs_report.html(recs())
      end)
      os.tmpname, survey_report.build = tmpname, build
      assert.is_false(ok)
      assert.equal("the report broke", err)
      assert.equal(2, #made)
      for _, p in ipairs(made) do assert.is_nil(io.open(p)) end
      assert.has_error(function() obs_report.lines("x") end)
    end)
  end)

  describe("in a real browser", function()
    local ok_browser, why = browser.available()
    if not ok_browser then
      pending("chromium cannot run here: " .. why)
      return
    end
    local b, pagedir
    local out = prosody.root .. "/build/observatory"
    local files = {}

    setup(function()
      pagedir = pki.tmpdir()
      sh.run("mkdir -p " .. sh.quote(out))
      local history = { { id = "scan-starttls", grade = records.starttls.grade, finished = records.starttls.finished,
        kind = "c2s" }, { id = "older", grade = "A", finished = records.starttls.finished - 86400 * 30, kind = "both" } }
      local entries = {}
      for _, name in ipairs { "starttls", "direct", "closed" } do
        local r = records[name]
        entries[#entries + 1] = { domain = name .. ".example", kind = r.kind, grade = r.grade, state = "done", id = r.id,
          finished = r.finished, endpoints = #r.result.endpoints, history = history }
      end
      local pages_ = {
        home = pages.home { recent = entries, message = "give a domain or host:port", values = { target = "exa mple" } },
        scan = pages.scan(records.starttls, { history = history }),
        ["scan-direct"] = pages.scan(records.direct, { history = history }),
        ["scan-failed"] = pages.scan({ id = "f", target = "example.org", kind = "both", state = "failed",
          queued = 1, error = "no endpoint found: _xmpp-client._tcp.example.org NXDOMAIN" }),
        directory = pages.directory(entries, { sort = "grade" }),
        error = pages.error(404, "No scan has this id."),
        report = obs_report.html({ records.starttls, records.direct, records.closed }),
      }
      for name, html in pairs(pages_) do files[name] = pki.write(pagedir .. "/" .. name .. ".html", html) end
      local err
      b, err = browser.start { width = 1280, height = 900 }
      assert(b, err)
    end)

    teardown(function()
      if b then b:stop() end
      pki.cleanup(pagedir)
    end)

    local DESKTOP = { width = 1280, height = 900 }
    local PHONE = { width = 390, height = 844, scale = 2, mobile = true }

    for _, name in ipairs { "home", "scan", "scan-direct", "scan-failed", "directory", "error", "report" } do
      it(name .. ": no console error, nothing fetched, no wider than a desktop or a phone", function()
        for _, vp in ipairs { { "desktop", DESKTOP }, { "phone", PHONE } } do
          local text = pki.read(files[name])
          assert.not_matches("https?://", text)
          assert.is_nil(text:find("<script", 1, true))
          local page = b:open("file://" .. files[name], vp[2])
          assert.same({}, page:errors())
          assert.equal(0, page:evaluate("performance.getEntriesByType('resource').length"))
          assert.is_true(page:evaluate("document.documentElement.scrollWidth") <= vp[2].width, vp[1])
          assert.is_true(page:evaluate("document.scripts.length") == 0)
          page:screenshot(("%s/%s-%s.png"):format(out, name, vp[1]), true)
        end
      end)
    end

    it("keeps wide tables in their scrolling box on a phone", function()
      local page = b:open("file://" .. files.scan, PHONE)
      assert.is_true(page:evaluate("document.querySelectorAll('.scroll table').length") >= 5)
      assert.equal("auto", page:evaluate("getComputedStyle(document.querySelector('.scroll')).overflowX"))
      -- the suites' table is wider than the phone, its box is not
      assert.is_true(page:evaluate("document.querySelector('table.suites').scrollWidth") > 390)
      assert.is_true(page:evaluate("document.querySelector('table.suites').parentNode.clientWidth") <= 390)
    end)

    it("runs under the Content-Security-Policy the module sends, which would refuse a script", function()
      local csp = [[<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:">]]
      for _, name in ipairs { "scan", "directory", "home", "report" } do
        local text = pki.read(files[name]):gsub("<head>", "<head>" .. csp, 1)
        local path = pki.write(pagedir .. "/csp-" .. name .. ".html", text)
        local page = b:open("file://" .. path, DESKTOP)
        assert.same({}, page:errors(), name)
        assert.equal("rgb(255, 255, 255)", page:evaluate("getComputedStyle(document.body).backgroundColor"))
      end
      -- the check can fail: the same page with a script is refused, and says so
      local text = pki.read(files.error):gsub("<head>", "<head>" .. csp, 1):gsub("</main>", "<script>1</script></main>", 1)
      local page = b:open("file://" .. pki.write(pagedir .. "/csp-script.html", text), DESKTOP)
      assert.equal(1, #page:errors())
    end)

    it("parses the badge as well-formed SVG", function()
      local page = b:open("file://" .. files.error, DESKTOP)
      for _, g in ipairs { "A+", "T", "scanning", "none" } do
        local s = badge.svg("example.org & co", g)
        local expr = ([[(function () {
          var d = new DOMParser().parseFromString(%s, "image/svg+xml");
          return [d.getElementsByTagName("parsererror").length, d.documentElement.nodeName,
            d.querySelector("title").textContent];
        })()]]):format(require("cjson").encode(s))
        assert.same({ 0, "svg", "XMPP TLS grade of example.org & co: " .. g }, page:evaluate(expr))
      end
    end)
  end)
end)
