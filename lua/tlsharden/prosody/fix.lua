--- tlsharden fix: the smallest edit of a Prosody configuration after which
-- the audit finds no error a setting can cause. The audit is the judge:
-- each round audits the current texts, turns what it blames on a layer the
-- admin wrote (the merge's warnings that lower security, their origins,
-- the policy options) into edits of that layer's table in the file where
-- Prosody reads it, applies them in memory and audits again, until
-- nothing is left to change. Paths, cafile/capath, a dhparam the audit
-- does not blame and settings stricter than the profile stay as written.
-- Nothing is written here: the command line writes (cli/fix.lua).
local errors = require "tlsharden.errors"
local grade = require "tlsharden.grade"
local audit = require "tlsharden.prosody.audit"
local prosody_config = require "tlsharden.prosody.config"
local source = require "tlsharden.prosody.source"

local fix = {}

local FIX_OPTIONS = { "profile", "prosody", "env", "cafile", "capath", "guide", "at", "starttls_cap" }

--- The profiles fix can aim for, and the settings each writes where it
-- differs from what Prosody serves anyway.
fix.PROFILES = {
  intermediate = { tls_profile = "intermediate", protocol = "tlsv1_2+" },
  modern = { tls_profile = "modern", protocol = "tlsv1_3" },
  hardened = { protocol = "tlsv1_2+", global_ssl = {
    { "protocol", '"tlsv1_2+"' },
    { "ciphers", '"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:'
      .. 'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"' },
    { "curveslist", '{ "X25519", "prime256v1", "secp384r1" }' },
  } },
}

local MAX_ROUNDS = 8

-- f(...), its errors (the audit's, the loader's) reported as fix's own.
local function as_fix(f, ...)
  local ok, r = pcall(f, ...)
  if not ok then errors.reraise(r, "fix") end
  return r
end

-- Where the table of an admin's layer lives, from the layer's name:
-- { section, key [, sub] } ("global ssl", "global c2s_direct_tls_ssl [5223]",
-- "VirtualHost example.org ssl", "tls_profile old").
local function layer_place(name)
  name = tostring(name)
  local key, sub = name:match("^global (%S+) %[(%d+)%]$")
  if key then return { section = "*", key = key, sub = tonumber(sub) } end
  key = name:match("^global (%S+)$")
  if key then return { section = "*", key = key } end
  if name:match("^tls_profile %S+$") then return { section = "*", key = "tls_profile", profile = true } end
  local kind, host, k = name:match("^(%a+) (%S+) (%S+)$")
  if kind == "VirtualHost" or kind == "Component" then return { section = host, key = k } end
end

local function cannot_place(what, why)
  errors.input("fix", "cannot place the change of %s: %s", what, why)
end

-- One round's view of the texts: tokens per file, edits per file.
local function new_round(state, config)
  local round = { config = config, edits = {}, seen = {}, changes = {} }
  function round.tokens(file)
    if not state.tokens[file] then
      local toks, err = source.tokens(state.text(file))
      if not toks then cannot_place(file, err) end
      state.tokens[file] = toks
    end
    return state.tokens[file]
  end
  function round.edit(file, s, e, text, change)
    local id = file .. ":" .. s .. ":" .. e .. ":" .. text
    if round.seen[id] then return end
    round.seen[id] = true
    round.edits[file] = round.edits[file] or {}
    local list = round.edits[file]
    list[#list + 1] = { s = s, e = e, text = text }
    change.file = file
    change.line = source.line_of(state.text(file), s)
    round.changes[#round.changes + 1] = change
  end
  return round
end

-- The origin of option key in section (the file and line that set it last).
local function origin_of(round, section, key)
  local o = round.config.origins[section]
  return o and o[key]
end

-- The token of the assignment the origin at reports: before the end of
-- its line, or, for a table of options given to VirtualHost or Component,
-- from the line where that section begins.
local function find_assignment(round, text, toks, at, section, key)
  if at.how == "options" then
    local from = at.line
    for _, sec in ipairs(round.config.sections) do
      if sec.host == section and sec.file == at.file and sec.line <= at.line then from = sec.line end
    end
    return source.find_assignment(text, toks, from, key, true)
  end
  return source.find_assignment(text, toks, at.line, key)
end

-- The table an admin's layer is written as: { file, text, toks, fields,
-- open, close }; raises where it cannot be found.
local function locate_table(state, round, place, what)
  local at = origin_of(round, place.section, place.key)
  if not at then cannot_place(what, ("%s is not set in any file the configuration reads"):format(place.key)) end
  if at.how == "append" then
    cannot_place(what, ("%s:%d adds to %s with :append; change it there by hand"):format(at.file, at.line, place.key))
  end
  local text, toks = state.text(at.file), round.tokens(at.file)
  local idx = find_assignment(round, text, toks, at, place.section, place.key)
  if not idx then
    cannot_place(what, ("%s:%d does not assign %s = { ... }"):format(at.file, at.line, place.key))
  end
  local open = idx + 2
  local function as_table(i, label)
    if not (toks[i] and toks[i].value == "{" and toks[i].type == "symbol") then
      cannot_place(what, ("%s at %s:%d is not written as a table"):format(label, at.file,
        source.line_of(text, toks[idx].s)))
    end
    local fields, close = source.fields(toks, i)
    if not fields then
      cannot_place(what, ("the table of %s at %s:%d could not be read"):format(label, at.file,
        source.line_of(text, toks[i].s)))
    end
    return fields, close
  end
  local fields, close = as_table(open, place.key)
  if place.sub then
    local found
    for _, f in ipairs(fields) do if f.key == place.sub then found = f end end
    if not found then cannot_place(what, ("%s has no block [%d]"):format(place.key, place.sub)) end
    open = found.value_first
    fields, close = as_table(open, ("%s[%d]"):format(place.key, place.sub))
  end
  return { file = at.file, text = text, toks = toks, fields = fields, open = open, close = close, at = at }
end

-- The byte range that removes field f of table t: its separator and the
-- blanks after it, and its whole line where nothing else is on it.
local function field_range(t, f)
  local toks, text = t.toks, t.text
  local s, e = toks[f.first].s, toks[f.sep or f.value_last].e
  local line_start = source.line_start(text, s)
  local before = text:sub(line_start, s - 1)
  local after_e = text:find("\n", e + 1, true) or (#text + 1)
  local rest = text:sub(e + 1, after_e - 1)
  if before:find("^[ \t]*$") and rest:find("^[ \t\r]*$") then
    return line_start, math.min(after_e, #text)
  end
  local blanks = text:match("^[ \t]*", e + 1)
  return s, e + #blanks
end

local function field_text(t, f)
  return t.text:sub(t.toks[f.first].s, t.toks[f.value_last].e)
end

local function value_text(t, f)
  return t.text:sub(t.toks[f.value_first].s, t.toks[f.value_last].e)
end

local function find_field(t, key)
  for _, f in ipairs(t.fields) do
    if f.key == key and f.key_kind ~= "item" then return f end
  end
end

local function remove_field(round, t, f, change)
  local s, e = field_range(t, f)
  change.before, change.after = field_text(t, f), nil
  round.edit(t.file, s, e, "", change)
end

local function replace_value(round, t, f, literal, change)
  change.before, change.after = field_text(t, f), f.key .. " = " .. literal
  round.edit(t.file, t.toks[f.value_first].s, t.toks[f.value_last].e, literal, change)
end

-- A new field key = literal at the end of table t, in the table's style.
local function add_field(round, t, key, literal, change)
  local toks, text = t.toks, t.text
  local last = t.fields[#t.fields]
  local sep = ";"
  for _, f in ipairs(t.fields) do if f.sep then sep = toks[f.sep].value break end end
  local field = key .. " = " .. literal
  change.before, change.after = nil, field
  if not last then
    round.edit(t.file, toks[t.open].e + 1, toks[t.close].s - 1, " " .. field .. " ", change)
    return
  end
  local last_tok = toks[last.sep or last.value_last]
  local same_line = source.line_of(text, last_tok.e) == source.line_of(text, toks[t.close].s)
  if same_line then
    round.edit(t.file, last_tok.e + 1, last_tok.e, (last.sep and " " or sep .. " ") .. field, change)
  else
    local _, indent = source.line_start(text, toks[last.first].s)
    round.edit(t.file, last_tok.e + 1, last_tok.e, (last.sep and "" or sep) .. "\n" .. indent .. field .. sep,
      change)
  end
end

-- What a setting the audit blames becomes, in the layer's table.
local function fix_setting(state, round, layer, setting, reason, where)
  local place = layer_place(layer)
  local what = ("%s in %s"):format(setting, tostring(layer))
  if not place then cannot_place(what, "tlsharden does not know where that layer is written") end
  local change = { layer = tostring(layer), setting = setting, reason = reason, where = where }
  if place.profile then
    local at = origin_of(round, "*", "tls_profile")
    if not at then cannot_place(what, "tls_profile is not set in any file") end
    local text, toks = state.text(at.file), round.tokens(at.file)
    local idx = find_assignment(round, text, toks, at, "*", "tls_profile")
    if not idx then cannot_place(what, ("%s:%d does not assign tls_profile"):format(at.file, at.line)) end
    local last = source.expression(toks, idx + 2)
    local target = state.profile.tls_profile or "intermediate"
    change.setting = "tls_profile"
    change.before = text:sub(toks[idx].s, toks[last].e)
    change.after = ('tls_profile = "%s"'):format(target)
    round.edit(at.file, toks[idx + 2].s, toks[last].e, ('"%s"'):format(target), change)
    return
  end
  local t = locate_table(state, round, place, what)
  local item = setting:match("^options%.(.+)$") or setting:match("^verifyext%.(.+)$")
  if item then
    local list_key = setting:match("^(%a+)%.")
    local list = find_field(t, list_key)
    if not list or t.toks[list.value_first].value ~= "{" then
      cannot_place(what, ("%s has no %s table at %s:%d"):format(tostring(layer), list_key, t.file, t.at.line))
    end
    local fields = source.fields(t.toks, list.value_first)
    local inner = { file = t.file, text = t.text, toks = t.toks, fields = fields or {} }
    for _, f in ipairs(inner.fields) do
      local tok = t.toks[f.value_first]
      if (f.key_kind == "item" and tok.type == "string" and source.string_value(tok.value) == item
          and f.value_last == f.value_first) or f.key == item then
        remove_field(round, inner, f, change)
        return
      end
    end
    cannot_place(what, ("%s does not name %s in its %s"):format(tostring(layer), item, list_key))
  end
  local f = find_field(t, setting)
  if not f then
    cannot_place(what, ("%s at %s:%d has no field %s"):format(tostring(layer), t.file, t.at.line, setting))
  end
  if setting == "protocol" then
    replace_value(round, t, f, ('"%s"'):format(state.profile.protocol), change)
  else
    remove_field(round, t, f, change)
  end
end

-- The policy options the audit blames, and the value each should have.
local POLICY = {
  C2S_ENCRYPTION_OPTIONAL = { "c2s_require_encryption", "true", alias = "require_encryption",
    reason = "clients must not log in without TLS" },
  S2S_ENCRYPTION_OPTIONAL = { "s2s_require_encryption", "true", reason = "servers must not federate without TLS" },
  S2S_NOT_AUTHENTICATED = { "s2s_secure_auth", "true",
    reason = "remote servers must present a valid certificate (s2s_insecure_domains lists exceptions)" },
  PLAIN_AUTH_UNENCRYPTED = { "allow_unencrypted_plain_auth", "false",
    reason = "passwords must not be sent without TLS" },
}
local POLICY_KEYS = { "c2s_require_encryption", "require_encryption", "s2s_require_encryption", "s2s_secure_auth",
  "allow_unencrypted_plain_auth" }

-- A new global statement key = literal: after the last global policy
-- option of the main file, else before its first section, else at its end.
local function add_global(state, round, key, literal, change)
  local main = state.main
  local text = state.text(main)
  local pos, after_line
  for _, k in ipairs(POLICY_KEYS) do
    local at = origin_of(round, "*", k)
    if at and at.file == main and at.how == "assign" and (not after_line or at.line > after_line) then
      after_line = at.line
    end
  end
  local line = key .. " = " .. literal .. "\n"
  if after_line then
    local toks = round.tokens(main)
    local idx = source.first_on_line(text, toks, after_line)
    local last = idx and source.expression(toks, idx + 2)
    if last then
      local nl = text:find("\n", toks[last].e, true)
      pos = nl and nl + 1 or #text + 1
      if not nl then line = "\n" .. line end
    end
  end
  if not pos then
    for _, sec in ipairs(round.config.sections) do
      if sec.file == main then
        pos = source.line_start(text, (source.first_on_line(text, round.tokens(main), sec.line)
          and round.tokens(main)[source.first_on_line(text, round.tokens(main), sec.line)].s) or 1)
        line = line .. "\n"
        break
      end
    end
  end
  if not pos then
    pos = #text + 1
    if text ~= "" and text:sub(-1) ~= "\n" then line = "\n" .. line end
  end
  change.before, change.after = nil, key .. " = " .. literal
  round.edit(main, pos, pos - 1, line, change)
end

local function fix_policy(state, round, host, code)
  local p = POLICY[code]
  local key, literal = p[1], p[2]
  local change = { setting = key, reason = p.reason, where = host }
  local section = origin_of(round, host, key) and host or origin_of(round, "*", key) and "*"
  if not section and p.alias then
    key = p.alias
    change.setting = key
    section = origin_of(round, host, key) and host or origin_of(round, "*", key) and "*"
  end
  if not section then
    if code == "C2S_ENCRYPTION_OPTIONAL" or code == "S2S_ENCRYPTION_OPTIONAL" then
      cannot_place(key, "it is not set in any file, yet the audit finds it off")
    end
    add_global(state, round, p[1], literal, change)
    return
  end
  local at = origin_of(round, section, key)
  if at.how == "append" then cannot_place(key, ("%s:%d sets it with :append"):format(at.file, at.line)) end
  local text, toks = state.text(at.file), round.tokens(at.file)
  local idx = find_assignment(round, text, toks, at, section, key)
  local last = idx and source.expression(toks, idx + 2)
  if not last then cannot_place(key, ("%s:%d does not assign %s"):format(at.file, at.line, key)) end
  change.before = text:sub(toks[idx].s, toks[last].e)
  change.after = key .. " = " .. literal
  change.layer = section == "*" and "global" or host
  round.edit(at.file, toks[idx + 2].s, toks[last].e, literal, change)
end

-- The caps a setting can lift, and the setting that lifts each.
local function cap_settings(svc)
  local g = svc.grade
  local out = {}
  if not g then return out end
  for _, c in ipairs(g.caps or {}) do
    local r = c.reason or ""
    if c.grade ~= "T" and c.grade ~= "M" then
      if r:find("TLS 1%.0") or r:find("TLS 1%.1") or r:find("SSL") then out[#out + 1] = { "protocol", r }
      elseif r:find("DH") or r:find("key exchange") or r:find("group") then
        out[#out + 1] = { "dhparam", r }
        out[#out + 1] = { "curveslist", r }
        out[#out + 1] = { "curve", r }
      else
        out[#out + 1] = { "ciphers", r }
      end
    end
  end
  return out
end

-- Every change the audit asks for in this round.
local function plan(state, round, report)
  local function service(svc, where)
    local m = svc.merge
    if not m then return end
    local asked = {}
    local function ask(layer, setting, reason)
      if not layer or not state.model:admin_layer(layer) then return end
      local id = tostring(layer) .. "\0" .. setting
      if asked[id] then return end
      asked[id] = true
      fix_setting(state, round, layer, setting, reason, where)
    end
    for _, w in ipairs(m.warnings or {}) do
      local origin = m.origin[w.setting]
      local item = w.setting:match("^options%.(.*)$")
      if item then origin = m.origin.options and m.origin.options[item] end
      if w.lowers and origin == w.layer then ask(w.layer, w.setting, w.message) end
    end
    for _, p in ipairs(svc.problems or {}) do
      if p.code == "OLD_PROTOCOL" then ask(m.origin.protocol, "protocol", p.message)
      elseif p.code == "NO_FORWARD_SECRECY" then ask(m.origin.ciphers, "ciphers", p.message) end
    end
    if svc.reached ~= false and svc.grade and grade.rank(svc.grade.grade_if_trusted or svc.grade.grade) ~= 1 then
      for _, s in ipairs(cap_settings(svc)) do ask(m.origin[s[1]], s[1], s[2]) end
    end
  end
  for _, h in ipairs(report.hosts) do
    for _, svc in ipairs(h.services) do service(svc, ("%s %s"):format(h.host, svc.label)) end
    for _, p in ipairs(h.problems) do
      if POLICY[p.code] then fix_policy(state, round, h.host, p.code) end
    end
  end
  for _, svc in ipairs(report.ports or {}) do service(svc, svc.label) end
end

-- What the audit still finds that no setting fix makes can change.
local function leftovers(report)
  local left = {}
  local function add(where, p) left[#left + 1] = { where = where, severity = p.severity, code = p.code,
    message = p.message } end
  for _, p in ipairs(report.problems or {}) do if p.severity == "error" then add("configuration", p) end end
  local function service(svc, where)
    for _, p in ipairs(svc.problems or {}) do if p.severity == "error" then add(where, p) end end
    local g = svc.grade
    if svc.reached ~= false and g and g.grade ~= "A+" then
      local why = {}
      for _, c in ipairs(g.caps or {}) do why[#why + 1] = c.reason end
      for _, w in ipairs(g.warnings or {}) do why[#why + 1] = w end
      add(where, { severity = "error", code = "GRADE_BELOW_A_PLUS",
        message = ("grade %s: %s"):format(grade.label and grade.label(g) or g.grade,
          #why > 0 and table.concat(why, "; ") or "the score") })
    end
  end
  for _, h in ipairs(report.hosts) do
    for _, p in ipairs(h.problems) do if p.severity == "error" then add(h.host, p) end end
    for _, svc in ipairs(h.services) do service(svc, ("%s %s"):format(h.host, svc.label)) end
  end
  for _, svc in ipairs(report.ports or {}) do service(svc, svc.label) end
  return left
end

-- The profile's own settings, where it asks for more than Prosody's
-- defaults: tls_profile, or tlsharden's hardened values in the global ssl.
local function apply_profile(state, round)
  local p = state.profile
  if p.tls_profile then
    local at = origin_of(round, "*", "tls_profile")
    local current = round.config.config["*"].tls_profile
    if current == p.tls_profile or (current == nil and p.tls_profile == "intermediate") then return end
    local change = { setting = "tls_profile", reason = ("the profile %s"):format(state.profile_name) }
    if at then
      fix_setting(state, round, "tls_profile " .. tostring(current), "tls_profile", change.reason)
    else
      add_global(state, round, "tls_profile", ('"%s"'):format(p.tls_profile), change)
    end
    return
  end
  if p.global_ssl then
    local reason = ("the profile %s"):format(state.profile_name)
    if not origin_of(round, "*", "ssl") then
      local parts = {}
      for _, kv in ipairs(p.global_ssl) do parts[#parts + 1] = "\t" .. kv[1] .. " = " .. kv[2] .. ";\n" end
      add_global(state, round, "ssl", "{\n" .. table.concat(parts) .. "}", { setting = "ssl", reason = reason })
      return
    end
    local t = locate_table(state, round, { section = "*", key = "ssl" }, "global ssl")
    for _, kv in ipairs(p.global_ssl) do
      local f = find_field(t, kv[1])
      local change = { layer = "global ssl", setting = kv[1], reason = reason }
      if not f then add_field(round, t, kv[1], kv[2], change)
      elseif value_text(t, f) ~= kv[2] and not (kv[1] == "protocol" and state.stricter(t, f)) then
        replace_value(round, t, f, kv[2], change)
      end
    end
  end
end

--- tlsharden.fix(path [, opts]): see docs/reference/fix.md. Returns
-- { file, files = { { path, before, after } }, changes, left, grade =
-- { before, after }, rounds, audit }.
function fix.fix(path, opts)
  if type(path) ~= "string" or path == "" then
    errors.argument("fix", 1, "path", "expected the path of a Prosody configuration, got %s", errors.quote(path))
  end
  opts = errors.options("fix", 2, "opts", opts, FIX_OPTIONS)
  local profile_name = opts.profile or "intermediate"
  local profile = fix.PROFILES[profile_name]
  if not profile then
    local names = {}
    for n in pairs(fix.PROFILES) do names[#names + 1] = n end
    table.sort(names)
    errors.option("fix", "profile", "%s is not a profile fix can aim for (%s; the others serve TLS 1.0, which"
      .. " the audit counts as an error)", errors.quote(profile_name), table.concat(names, ", "))
  end
  local originals, texts = {}, {}
  local state = { main = path, profile = profile, profile_name = opts.profile or "intermediate", tokens = {} }
  function state.text(file)
    if not texts[file] then
      local f, err = io.open(file, "rb")
      if not f then
        errors.input("fix", "cannot read %s: %s", errors.quote(file), errors.shorten((err or ""):gsub("^.-: ", "")))
      end
      texts[file] = f:read("*a")
      f:close()
      originals[file] = texts[file]
    end
    return texts[file]
  end
  function state.stricter(t, f)
    local lit = source.string_value(t.toks[f.value_first].value)
    return lit == "tlsv1_3" or lit == "tlsv1_2+" and profile.protocol ~= "tlsv1_3"
  end
  state.text(path)
  local aopts = { prosody = opts.prosody, env = opts.env, cafile = opts.cafile, capath = opts.capath,
    guide = opts.guide, at = opts.at, starttls_cap = opts.starttls_cap, clients = false, files = texts }
  local first, report, rounds = nil, nil, 0
  local all_changes = {}
  for round_no = 1, MAX_ROUNDS do
    rounds = round_no
    report = as_fix(audit.audit, path, aopts)
    first = first or report
    local config = as_fix(prosody_config.load, path, { env = opts.env, files = texts, origins = true })
    state.model = require("tlsharden.prosody.model").model(config, report.prosody)
    local round = new_round(state, config)
    if round_no == 1 then apply_profile(state, round) end
    plan(state, round, report)
    if #round.changes == 0 then break end
    for file, edits in pairs(round.edits) do
      local new, err = source.apply(texts[file], edits)
      if not new then cannot_place(file, err) end
      texts[file] = new
      state.tokens[file] = nil
    end
    table.sort(round.changes, function(a, b)
      if a.file ~= b.file then return a.file < b.file end
      return a.line < b.line
    end)
    for _, c in ipairs(round.changes) do all_changes[#all_changes + 1] = c end
    if round_no == MAX_ROUNDS then report = as_fix(audit.audit, path, aopts) end
  end
  local files = {}
  local names = {}
  for file in pairs(texts) do names[#names + 1] = file end
  table.sort(names, function(a, b) if a == path then return true elseif b == path then return false end return a < b end)
  for _, file in ipairs(names) do
    if texts[file] ~= originals[file] then
      files[#files + 1] = { path = file, before = originals[file], after = texts[file] }
    end
  end
  return {
    file = path, profile = state.profile_name, prosody = report.prosody, files = files, changes = all_changes,
    left = leftovers(report), grade = { before = first.grade, after = report.grade }, rounds = rounds,
    audit = report,
  }
end

return fix
