--- The list a survey reads: one target a line, a domain ("example.org")
-- or a host name and port ("xmpp.example.org:5223", which is also the
-- XMPP domain); "#" starts a comment, blank lines are skipped.
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

local ADDRESS = "an address is no XMPP domain: give the host's name (HOST:PORT)"

--- Parse one entry (a line without its comment, trimmed). Returns a
-- target { target, host, port (or nil) }, or nil and why not.
function M.entry(s)
  if s:find("^%[") then return nil, ADDRESS end
  local host, port = s, nil
  if s:find(":", 1, true) then
    host, port = s:match("^([^:]+):(%d+)$")
    if not host then
      if s:find("^[%x:%.]+$") then return nil, ADDRESS end
      return nil, "expected a domain or HOST:PORT"
    end
  end
  host = host:gsub("%.$", ""):lower()
  -- the stream's 'to' and the certificate's name are the XMPP domain
  if host:match("^%d+%.%d+%.%d+%.%d+$") then return nil, ADDRESS end
  if not valid_name(host) then return nil, "not a domain name" end
  if port then
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "the port must be from 1 to 65535" end
  end
  return { target = port and (host .. ":" .. port) or host, host = host, port = port }
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
