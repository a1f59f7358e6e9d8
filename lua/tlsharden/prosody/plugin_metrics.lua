--- mod_tlsharden's metrics: what the judging found for each host and
-- service, as gauges in Prosody's metrics registry (which
-- mod_http_openmetrics serves at /metrics): the grade as a number and as a
-- label, the seconds until the certificate expires and its notAfter, how
-- many settings harden changed, the certificate's problems by severity,
-- and the admin's settings that ask for less than the profile.
--
-- A series lives as long as what it describes: series that the judging of
-- a newer configuration did not set again are removed once that judging is
-- done, and a deactivated host's at once.
--
-- Nothing here touches Prosody: plugin_metrics.new takes the function that
-- makes a metric family (module:metric without the module).
local grade = require "tlsharden.grade"
local problems = require "tlsharden.problems"

local plugin_metrics = {}

--- The grade as a number, from grade.ORDER: the better the grade, the
-- higher the number (A+ 9, A 8, A- 7, B 6, C 5, D 4, E 3, F 2, T 1, M 0),
-- so that an alert rule can say "below A" as `< 8`.
plugin_metrics.GRADE_VALUE = {}
for i, g in ipairs(grade.ORDER) do plugin_metrics.GRADE_VALUE[g] = #grade.ORDER - i end
local GRADE_VALUE = plugin_metrics.GRADE_VALUE

--- Seconds since the epoch of an ISO 8601 UTC time as tlsharden writes it
-- ("2027-01-31T12:00:00Z"), or nil for anything else. Independent of the
-- local time zone (os.time is not).
function plugin_metrics.epoch(iso)
  if type(iso) ~= "string" then return nil end
  local y, mo, d, h, mi, s = iso:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- days from 1970-01-01 to the date, in the proleptic Gregorian calendar
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (mo > 2 and mo - 3 or mo + 9) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end
local epoch = plugin_metrics.epoch

-- The families: name, unit, description, label keys after host and service.
local FAMILIES = {
  { "grade", "", "tlsharden's grade of the context as a number: A+ 9, A 8, A- 7, B 6, C 5, D 4, E 3, F 2, T 1, M 0" },
  { "grade_info", "", "tlsharden's grade of the context as the label grade (always 1)", { "grade" } },
  { "certificate_expiry", "seconds", "seconds until the context's certificate expires (negative: expired)" },
  { "certificate_not_after_timestamp", "seconds", "when the context's certificate expires, in seconds since the epoch" },
  { "hardening_changes", "", "how many settings tlsharden's hardening changed in the context" },
  { "problems", "", "the problems of the context's certificate, by severity", { "severity" } },
  { "insecure_settings", "", "settings of the admin that ask for less than the profile (tlsharden kept the floor)" },
}

--- The labels of a judged context (an entry as plugin_judging takes it):
-- its host and its service; "*" and the context's name (such as
-- "c2s_direct_tls port 5223", "client_https") for ports and clients.
function plugin_metrics.labels(entry)
  if entry.owner == "*" then return "*", tostring(entry.label) end
  return tostring(entry.host), tostring(entry.service)
end
local labels_of = plugin_metrics.labels

--- The values to publish for one judged context (report as
-- pipeline.finish filled it): grade, changes, not_after (seconds since
-- the epoch, or nil without a certificate), problems by severity,
-- insecure settings.
function plugin_metrics.values(report)
  local j = report.judgement
  local v = { grade = j.grade.grade, changes = #(report.harden and report.harden.changes or {}),
    problems = {}, insecure = 0 }
  for _, s in ipairs(problems.SEVERITIES) do v.problems[s] = 0 end
  for _, p in ipairs(j.chain and j.chain.problems or {}) do
    v.problems[p.severity] = (v.problems[p.severity] or 0) + 1
  end
  if j.chain_error then v.problems.error = v.problems.error + 1 end
  for _, w in ipairs(report.merge and report.merge.warnings or {}) do
    if w.lowers then v.insecure = v.insecure + 1 end
  end
  local cert = report.context and report.context.certificate
  v.not_after = cert and epoch(cert.not_after)
  return v
end
local values_of = plugin_metrics.values

--- The metrics of one loaded plugin. opts:
--   metric  function(type_, name, unit, description, label_keys), as
--           module:metric of a global module: a metric family with
--           with_labels(...) returning a gauge with set(v)
--   now     function() -> seconds since the epoch (default os.time)
--   log     function(level, format, ...), as module:log (optional)
-- Returns a table of functions (below).
function plugin_metrics.new(opts)
  if type(opts) ~= "table" or type(opts.metric) ~= "function" then
    error("plugin_metrics.new: opts.metric must be a function (module:metric), got " .. type(opts and opts.metric), 2)
  end
  local now, log = opts.now or os.time, opts.log or function() end
  local M = {}
  local families = {}
  for _, f in ipairs(FAMILIES) do
    local keys = { "host", "service" }
    for _, k in ipairs(f[4] or {}) do keys[#keys + 1] = k end
    families[f[1]] = opts.metric("gauge", f[1], f[2], f[3], keys)
  end
  local function family(name) return families[name] end
  local EXTRA_LABELS = {}
  for _, f in ipairs(FAMILIES) do EXTRA_LABELS[f[1]] = f[4] ~= nil end

  --- Whether Prosody gives real metric families: with statistics off it
  -- hands out a placeholder that takes every call and keeps nothing.
  M.enabled = type(families.grade) == "table" and type(families.grade.with_labels) == "function"

  -- The series set, by host and service: { host, service, cache, keep,
  -- grade, not_after }.
  local series = {}
  local function key(host, service) return host .. "\0" .. service end

  -- A family's series of host and service (all of its label values below
  -- them) removed, where the family can (Prosody's keeps them in a
  -- multitable); otherwise set to 0, where a family has no label below
  -- host and service.
  local warned = false
  local function drop(name, host, service)
    local f = family(name)
    local data = type(f) == "table" and rawget(f, "data")
    if type(data) == "table" and type(data.remove) == "function" then
      data:remove(host, service)
      return
    end
    if not warned then
      warned = true
      log("debug", "tlsharden: this metrics registry cannot remove a series; old ones are set to 0")
    end
    if not EXTRA_LABELS[name] then pcall(function() f:with_labels(host, service):set(0) end) end
  end

  local function set(name, v, ...)
    family(name):with_labels(...):set(v)
  end

  local function set_expiry(s)
    if s.not_after then set("certificate_expiry", s.not_after - now(), s.host, s.service) end
  end

  --- Publishes one judged context (entry and report as plugin_judging's
  -- record gets them).
  function M.publish(entry, report)
    local host, service = labels_of(entry)
    local v = values_of(report)
    local k = key(host, service)
    local s = series[k]
    if not s then
      s = { host = host, service = service }
      series[k] = s
    end
    s.cache, s.keep = entry.cache, entry.label == "client_https"
    if s.grade ~= v.grade then
      if s.grade then drop("grade_info", host, service) end
      set("grade_info", 1, host, service, v.grade)
      s.grade = v.grade
    end
    set("grade", GRADE_VALUE[v.grade] or 0, host, service)
    set("hardening_changes", v.changes, host, service)
    for severity, n in pairs(v.problems) do set("problems", n, host, service, severity) end
    set("insecure_settings", v.insecure, host, service)
    s.not_after = v.not_after
    if v.not_after then
      set("certificate_not_after_timestamp", v.not_after, host, service)
      set_expiry(s)
    else
      drop("certificate_not_after_timestamp", host, service)
      drop("certificate_expiry", host, service)
    end
  end

  local function remove(k)
    local s = series[k]
    for _, f in ipairs(FAMILIES) do drop(f[1], s.host, s.service) end
    series[k] = nil
  end

  --- The seconds until each certificate expires, again (Prosody's
  -- stats-update, before its metrics are collected).
  function M.refresh()
    for _, s in pairs(series) do set_expiry(s) end
  end

  --- Once the judging is done: the series of contexts judged with an
  -- older configuration than current (a memo of plugin_layers) are
  -- removed; what Prosody builds only at start-up (the HTTPS client's
  -- context) stays.
  function M.sweep(current)
    for k, s in pairs(series) do
      if s.cache ~= current and not s.keep then remove(k) end
    end
  end

  --- A host is gone (deactivated): its series are removed.
  function M.forget_host(host)
    for k, s in pairs(series) do
      if s.host == host then remove(k) end
    end
  end

  --- Every series this plugin set is removed (unload: the registry
  -- outlives the module, and a reload registers the same families again).
  function M.clear()
    for k in pairs(series) do remove(k) end
  end

  --- The series set, by "host\0service" (for specs).
  function M.series() return series end

  return M
end

return plugin_metrics
