-- mod_tlsharden's metrics in a real Prosody, 0.12 and 13, served by
-- Prosody's own mod_http_openmetrics on 127.0.0.1: two hosts with
-- certificates made here (one valid for ten days, with a weak ssl block),
-- /metrics read over HTTP once the judging is done, each value compared
-- with the audit of the same configuration; then the module reloaded (the
-- same series, no error) and a host deactivated (its series gone).
-- Tagged #truth: a real server compared with the audit; the release suite
-- runs it.
local http = require "socket.http"
local socket = require "socket"
local ssl = require "ssl"
local tlsharden = require "tlsharden"
local pipeline = require "tlsharden.pipeline"
local prosody = require "spec.helpers.prosody"
local pki = require "spec.helpers.pki"
local sh = require "spec.helpers.sh"

local repo = sh.run("pwd"):gsub("%s+$", "")
-- Prosody loads the checkout's modules and core (the normal build).
local env = ("LUA_PATH_5_4='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH_5_4='%s/build/?.so;;'"):format(repo, repo, repo)

local GOOD, WEAK = "good.example", "weak.example"
local PREFIX = "prosody_mod_tlsharden__"
-- The grade as the metric says it (docs/guide/prosody.md).
local GRADE_VALUE = { ["A+"] = 9, A = 8, ["A-"] = 7, B = 6, C = 5, D = 4, E = 3, F = 2, T = 1, M = 0 }

-- The samples of an OpenMetrics text: { name, labels = { k = v }, value }.
local function parse(text)
  local samples = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local name, labels, value = line:match("^([%w_:]+){(.-)} (%S+)$")
      if not name then
        name, value = line:match("^([%w_:]+) (%S+)$")
        labels = ""
      end
      local s = { name = name, labels = {}, value = tonumber(value) }
      for k, v in (labels or ""):gmatch('([%w_]+)="(.-)"') do s.labels[k] = v end
      samples[#samples + 1] = s
    end
  end
  return samples
end

-- GET /metrics: the samples of tlsharden's metrics by name, host and
-- service ({ [name] = { ["host service"] = sample or { [extra label] = sample } } }),
-- and the times before and after.
local function scrape(port)
  local t0 = os.time()
  local body, code = http.request(("http://127.0.0.1:%d/metrics"):format(port))
  local t1 = os.time()
  assert.equal(200, code, tostring(body))
  local by = {}
  for _, s in ipairs(parse(body)) do
    if s.name and s.name:sub(1, #PREFIX) == PREFIX then
      local name = s.name:sub(#PREFIX + 1)
      by[name] = by[name] or {}
      local k = s.labels.host .. " " .. s.labels.service
      local extra = s.labels.severity or s.labels.grade
      if extra then
        by[name][k] = by[name][k] or {}
        by[name][k][extra] = s
      else
        by[name][k] = s
      end
    end
  end
  return by, t0, t1, body
end

-- The certificate's notAfter in seconds since the epoch, as openssl and
-- date read it.
local function not_after(cert)
  local line = sh.run("openssl x509 -noout -enddate -in " .. sh.quote(cert)):match("notAfter=([^\n]+)")
  return tonumber((sh.run("date -u -d " .. sh.quote(line) .. " +%s"):gsub("%s+$", "")))
end

-- The audit's configuration of one service, hardened as mod_tlsharden
-- hardens the context Prosody builds from it, and judged: the judgement.
local function hardened(r, host, cafile)
  local cfg = {}
  for k, v in pairs(r.config) do cfg[k] = v end
  if type(cfg.dhparam) == "string" then
    local pem = cfg.dhparam
    if pem:sub(1, 10) ~= "-----BEGIN" then pem = pki.read(pem) end
    cfg.dhparam = function() return pem end
  end
  local ctx = assert(ssl.newcontext(cfg))
  local report = pipeline.finish(ctx, { harden = tlsharden.harden(ctx) },
    { host = host, service = r.service, cafile = cafile })
  return report.judgement, report.harden
end

-- The plugin's name of an audited service: "(SNI)" for a host's context on
-- a direct TLS port.
local function plugin_service(r)
  if r.port then return r.service .. " (SNI)" end
  return r.service
end

-- Polls /metrics until every key is there (or the deadline passes).
local function wait_for(port, keys, gone)
  local deadline = socket.gettime() + 60
  local by
  repeat
    by = scrape(port)
    local ready = by.grade ~= nil
    for _, k in ipairs(keys) do ready = ready and by.grade[k] ~= nil end
    for _, k in ipairs(gone or {}) do ready = ready and by.grade[k] == nil end
    if ready then return by end
    socket.sleep(0.25)
  until socket.gettime() > deadline
  return by
end

prosody.each_version(describe, pending, "#truth mod_tlsharden's metrics", function(v)
  local server, dir, ca, certs, http_port, report

  setup(function()
    dir = pki.tmpdir()
    ca = pki.cert(dir, "ca", { ca = true, cn = "tlsharden metrics test CA" })
    certs = {
      [GOOD] = pki.cert(dir, GOOD, { issuer = ca, san = { "DNS:" .. GOOD, "DNS:*." .. GOOD } }),
      [WEAK] = pki.cert(dir, WEAK, { issuer = ca, key_kind = "rsa2048", days = 10,
        san = { "DNS:" .. WEAK, "DNS:*." .. WEAK } }),
    }
    http_port = prosody.free_port()
    server = prosody.start {
      version = v.name, hosts = { GOOD, WEAK }, certs = certs,
      plugin_paths = { repo .. "/lua" },
      env = env .. " SSL_CERT_FILE=" .. sh.quote(ca.cert),
      modules = { "tlsharden", "http_openmetrics", "admin_shell" },
      global = { statistics = "internal", statistics_interval = "manual", http_ports = { http_port },
        http_interfaces = { "127.0.0.1" } },
      host_settings = { [WEAK] = { ssl = { protocol = "tlsv1+", ciphers = "HIGH:MEDIUM:!aNULL:@SECLEVEL=0" } } },
    }
    report = tlsharden.audit(server.config, { cafile = ca.cert, prosody = v.name, clients = false })
  end)

  teardown(function()
    if server then server.stop() end
    pki.cleanup(dir)
  end)

  -- The audited services of the two hosts: { host, service (the
  -- plugin's name), result }.
  local function audited()
    local list = {}
    for _, h in ipairs(report.hosts) do
      for _, r in ipairs(h.services) do
        if r.config then list[#list + 1] = { host = h.host, service = plugin_service(r), r = r } end
      end
    end
    return list
  end

  local function keys_of(list, host)
    local keys = {}
    for _, a in ipairs(list) do
      if not host or a.host == host then keys[#keys + 1] = a.host .. " " .. a.service end
    end
    return keys
  end

  it("publishes what the audit says of each host and service", function()
    local list = audited()
    assert.is_true(#list >= 8, "the audit has " .. #list .. " services")
    wait_for(http_port, keys_of(list))
    local by, t0, t1, body = scrape(http_port)
    local expiry = { [GOOD] = not_after(certs[GOOD].cert), [WEAK] = not_after(certs[WEAK].cert) }
    for _, a in ipairs(list) do
      local k = a.host .. " " .. a.service
      local label = ("Prosody %s: %s"):format(v.release, k)
      local j, h = hardened(a.r, a.host, ca.cert)
      -- the grade, as a number and as a label
      assert(by.grade[k], label .. ": no grade in\n" .. body)
      assert.equal(GRADE_VALUE[j.grade.grade], by.grade[k].value, label .. ": grade " .. j.grade.grade)
      assert.same({ [j.grade.grade] = 1 }, { [next(by.grade_info[k])] = by.grade_info[k][j.grade.grade].value },
        label .. ": grade_info")
      -- what harden changed: as many settings as the audit says it would
      assert.equal(#a.r.tlsharden_would_change, by.hardening_changes[k].value, label .. ": changes")
      assert.equal(#h.changes, by.hardening_changes[k].value, label .. ": changes")
      -- the certificate's problems, by severity
      local expected = { error = 0, warning = 0, info = 0 }
      for _, p in ipairs(a.r.chain and a.r.chain.problems or {}) do expected[p.severity] = expected[p.severity] + 1 end
      for severity, n in pairs(expected) do
        assert.equal(n, by.problems[k][severity].value, label .. ": " .. severity .. " problems")
      end
      if a.r.mode == "server" then
        -- the certificate's expiry: its notAfter, and the seconds left when scraped
        assert.equal(expiry[a.host], by.certificate_not_after_timestamp_seconds[k].value, label)
        local left = by.certificate_expiry_seconds[k].value
        assert.is_true(left >= expiry[a.host] - t1 - 1 and left <= expiry[a.host] - t0 + 1,
          ("%s: %d seconds left, expected %d"):format(label, left, expiry[a.host] - t0))
      end
    end
    -- the weak host: its certificate expires within 30 days, its block asks for less
    assert.equal(1, by.problems[WEAK .. " c2s"].warning.value)
    assert.equal(0, by.problems[GOOD .. " c2s"].warning.value)
    assert.is_true(by.insecure_settings[WEAK .. " c2s"].value > 0)
    assert.equal(0, by.insecure_settings[GOOD .. " c2s"].value)
    assert.is_true(by.hardening_changes[WEAK .. " c2s"].value > by.hardening_changes[GOOD .. " c2s"].value)
    assert.is_true(by.certificate_expiry_seconds[WEAK .. " c2s"].value < 10 * 86400)
  end)

  it("keeps every series through a reload (SIGHUP), the HTTPS client's too", function()
    local list = audited()
    local function judged(k) return select(2, server.log():gsub("tlsharden: " .. k:gsub("%p", "%%%0") .. ": grade", "")) end
    local before = {}
    for _, k in ipairs(keys_of(list)) do before[k] = judged(k) end
    sh.run("kill -HUP " .. server.pid())
    -- judged again: a debug line per context; the batch's end sweeps
    local deadline, done = socket.gettime() + 60, false
    repeat
      socket.sleep(0.25)
      done = true
      for k, n in pairs(before) do done = done and judged(k) > n end
    until done or socket.gettime() > deadline
    assert.is_true(done, "not judged again after SIGHUP")
    local by = scrape(http_port)
    for _, k in ipairs(keys_of(list)) do assert(by.grade[k], k .. " gone after the reload") end
    assert(by.grade["* client_https"], "the HTTPS client's series gone after the reload")
    local ports = 0
    for k in pairs(by.grade) do if k:find("^%* %S+ port %d+$") then ports = ports + 1 end end
    assert.equal(2, ports)
  end)

  it("registers the same series again when the module is reloaded", function()
    local list = audited()
    local before = scrape(http_port)
    local ok, out = server.prosodyctl("shell 'module:reload(\"tlsharden\")'")
    assert.is_true(ok, out)
    -- the unload removed every series: wait until the judging brings them back
    local by = wait_for(http_port, keys_of(list))
    for _, k in ipairs(keys_of(list)) do
      assert.equal(before.grade[k].value, by.grade[k].value, k)
      assert.equal(before.hardening_changes[k].value, by.hardening_changes[k].value, k)
    end
    assert.is_nil(server.log():find("conflicting", 1, true))
    assert.is_nil(server.log():find("metrics not published", 1, true))
  end)

  it("removes the series of a host that is deactivated", function()
    local list = audited()
    local ok, out = server.prosodyctl(("shell 'host:deactivate(\"%s\")'"):format(WEAK))
    assert.is_true(ok, out)
    local by = wait_for(http_port, keys_of(list, GOOD), keys_of(list, WEAK))
    for _, k in ipairs(keys_of(list, WEAK)) do
      for name, series in pairs(by) do assert.is_nil(series[k], name .. " of " .. k) end
    end
    for _, k in ipairs(keys_of(list, GOOD)) do assert(by.grade[k], k) end
  end)
end)
