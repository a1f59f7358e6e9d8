--- The one problem record of tlsharden. Whatever finds something wrong (the
-- audit, a chain check, a scan, the wire probe, the XMPP and DNS layers, a
-- survey line, a report) says it the same way:
--
--   { severity = "error"|"warning"|"info", code = "UPPER_SNAKE", message = "...",
--     [context fields: cert, host, kind, protocol, layer, setting] }
--
-- in a list under a field named `problems`, or, where one problem ended an
-- exchange (a DNS query, an XMPP stream), under `failure`. docs/reference/api.md
-- ("Problems") is the reference; spec/problems_spec.lua walks the JSON of a
-- scan, an audit, a survey line and a report and refuses any other shape.
local json = require "tlsharden.json"

local M = {}

--- The severities, worst first.
M.SEVERITIES = { "error", "warning", "info" }
local RANK = { error = 1, warning = 2, info = 3 }

--- The context fields a record may carry beside its three own, and what
-- each holds.
M.CONTEXT = {
  cert = "the position of the certificate in its chain (1: the leaf)",
  host = "the host name the problem is about",
  kind = "c2s or s2s",
  protocol = "the protocol version it was seen with (tlsv1_2, ...)",
  layer = "the configuration layer that set it",
  setting = "the setting it concerns",
  guess = "the protocol an answer that is not TLS looks like (http, ssh, xmpp, ...)",
  preview = "the first bytes of such an answer, quoted",
}

local CODE = "^[A-Z][A-Z0-9_]*$"

--- Whether v is one of the severities.
function M.is_severity(v)
  return RANK[v] ~= nil
end

--- Whether v is a problem code: upper-case letters, digits and underscores.
function M.is_code(v)
  return type(v) == "string" and v:find(CODE) ~= nil
end

--- A code from another vocabulary ("no_address", "too-large", "NXDOMAIN")
-- in the record's spelling.
function M.code(s)
  return (tostring(s):gsub("[^%w]+", "_"):upper())
end

--- A new record; context (optional) holds context fields.
function M.new(severity, code, message, context)
  assert(RANK[severity], "problem severity")
  assert(M.is_code(code), "problem code")
  local p = { severity = severity, code = code, message = message }
  if context then
    for k, v in pairs(context) do
      assert(M.CONTEXT[k], "problem context field")
      p[k] = v
    end
  end
  return p
end

--- An empty list of records (a JSON list: [] when empty).
function M.list()
  return json.list()
end

--- Append a new record to list; returns it.
function M.add(list, severity, code, message, context)
  local p = M.new(severity, code, message, context)
  list[#list + 1] = p
  return p
end

--- A function add(severity, code, message [, context]) that appends to
-- list and drops a record equal in code, message and context to one it
-- added before.
function M.adder(list)
  local seen = {}
  return function(severity, code, message, context)
    local key = code .. "\0" .. message
    for _, k in ipairs { "cert", "host", "kind", "protocol", "layer", "setting", "guess" } do
      if context and context[k] ~= nil then key = key .. "\0" .. k .. "=" .. tostring(context[k]) end
    end
    if seen[key] then return seen[key] end
    seen[key] = M.add(list, severity, code, message, context)
    return seen[key]
  end
end

--- A copy of p (a record, or anything with code and message) with the
-- given severity when p has none.
function M.copy(p, severity)
  local out = { severity = p.severity or severity, code = M.is_code(p.code) and p.code or M.code(p.code),
    message = p.message }
  for k in pairs(M.CONTEXT) do out[k] = p[k] end
  return out
end

--- Whether p is a valid record: true, or false and why not.
function M.check(p)
  if type(p) ~= "table" then return false, "not a table" end
  if not RANK[p.severity] then return false, "severity " .. tostring(p.severity) end
  if not M.is_code(p.code) then return false, "code " .. tostring(p.code) end
  if type(p.message) ~= "string" or p.message == "" then return false, "message " .. tostring(p.message) end
  for k in pairs(p) do
    if k ~= "severity" and k ~= "code" and k ~= "message" and not M.CONTEXT[k] then
      return false, "field " .. tostring(k)
    end
  end
  return true
end

--- Whether severity a is worse than b (nil counts as none).
function M.worse(a, b)
  return (RANK[a] or 4) < (RANK[b] or 4)
end

--- The worst severity in list, or nil for an empty list.
function M.worst(list)
  local w
  for _, p in ipairs(list or {}) do
    if M.worse(p.severity, w) then w = p.severity end
  end
  return w
end

return M
