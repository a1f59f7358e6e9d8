--- The list a survey reads: one target a line, a domain ("example.org")
-- or a host and port ("xmpp.example.org:5223", "192.0.2.1:5222",
-- "[2001:db8::1]:5269"); "#" starts a comment, blank lines are skipped.
-- Pure: text in, targets out. See docs/survey.md.
local errors = require "tlsharden.errors"

local M = {}

local FN = "survey.parse_list"

-- A DNS name as a survey takes it: letters, digits, "-", "_" and dots,
-- labels of 1 to 63 bytes, at most 253 bytes.
local function valid_name(s)
  if #s == 0 or #s > 253 or s:find("[^%w%.%-_]") then return false end
  for label in (s .. "."):gmatch("([^%.]*)%.") do
    if #label == 0 or #label > 63 then return false end
  end
  return true
end

local function valid_ipv6(s)
  return #s >= 2 and #s <= 45 and not s:find("[^%x:%.]") and s:find(":") ~= nil
end

--- Parse one entry (a line without its comment, trimmed). Returns a
-- target { target, host, port (or nil), ip (boolean) }, or nil and why not.
function M.entry(s)
  local host, port
  local v6, p6 = s:match("^%[([^%]]*)%]:(%d+)$")
  if v6 then
    if not valid_ipv6(v6) then return nil, "not an IPv6 address in brackets" end
    host, port = v6:lower(), p6
  elseif s:find(":", 1, true) then
    host, port = s:match("^([^:]+):(%d+)$")
    if not host then
      if valid_ipv6(s) then return nil, "an IPv6 address needs brackets and a port: [addr]:port" end
      return nil, "expected a domain or HOST:PORT"
    end
  else
    host = s
  end
  host = host:gsub("%.$", ""):lower()
  local ip = v6 ~= nil or host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
  if not v6 and not valid_name(host) then return nil, "not a domain name" end
  if port then
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "the port must be from 1 to 65535" end
  elseif ip then
    return nil, "an address needs a port (HOST:PORT)"
  end
  local target = port and ((v6 and ("[" .. host .. "]") or host) .. ":" .. port) or host
  return { target = target, host = host, port = port, ip = ip }
end

--- Parse a list. text: the file's contents; name: how to call it in
-- messages (default "the list"). Returns targets (each with `line`, its
-- line number) in order, without repeats, and `duplicates` (the line
-- numbers of repeated targets). A line that is no target raises, naming
-- the line.
function M.parse(text, name)
  if type(text) ~= "string" then errors.argument(FN, 1, "text", "expected a string, got %s", errors.quote(text)) end
  if name ~= nil and type(name) ~= "string" then
    errors.argument(FN, 2, "name", "expected a string, got %s", errors.quote(name))
  end
  name = name or "the list"
  local targets, seen, duplicates = {}, {}, {}
  local n = 0
  for line in (text:gsub("\r\n", "\n") .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
    n = n + 1
    local entry = line:gsub("#.*$", ""):match("^%s*(.-)%s*$")
    if entry ~= "" then
      local t, why = M.entry(entry)
      if not t then
        errors.raise(FN, "%s, line %d: %s: %s", name, n, why, errors.quote(entry))
      end
      if seen[t.target] then
        duplicates[#duplicates + 1] = n
      else
        seen[t.target] = true
        t.line = n
        targets[#targets + 1] = t
      end
    end
  end
  return targets, duplicates
end

return M
