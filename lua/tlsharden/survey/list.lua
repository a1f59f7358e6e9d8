--- The list a survey reads: one target a line, said as `tlsharden scan`'s
-- arguments say it: a domain ("example.org"), or HOST:PORT with its own
-- target options --starttls c2s|s2s|none, --xmpphost NAME (required for an
-- address: "192.0.2.10:5222 --xmpphost example.org") and --kind
-- c2s|s2s|both; "#" starts a comment, blank lines are skipped. Pure: text
-- in, targets out (tlsharden.scan.target reads each one). See
-- docs/reference/survey.md.
local errors = require "tlsharden.errors"
local scan_target = require "tlsharden.scan.target"

local M = {}

local FN = "survey.parse_list"

-- The options a line may give, as the command line spells them.
local LINE_OPTIONS = { starttls = "starttls", xmpphost = "xmpphost", kind = "kind" }

--- Parse one entry (a line without its comment, trimmed). Returns a
-- target { target, host, port (or nil), domain, kind (or nil: the
-- survey's), options (the target options for tlsharden.scan), key (what
-- tells repeats apart) }, or nil and why not.
function M.entry(s)
  local words = {}
  for w in s:gmatch("%S+") do words[#words + 1] = w end
  local target, opts = words[1], {}
  local i = 2
  while i <= #words do
    local w = words[i]
    local name, value = w:match("^%-%-([%w-]+)=(.*)$")
    if not name then
      name = w:match("^%-%-([%w-]+)$")
      if not name then return nil, ("expected an option such as --xmpphost NAME, got %s"):format(errors.quote(w)) end
      i = i + 1
      value = words[i]
      if value == nil then return nil, ("option --%s needs a value"):format(name) end
    end
    local key = LINE_OPTIONS[name]
    if not key then
      return nil, ("unknown option --%s (a line takes --starttls, --xmpphost and --kind)"):format(name)
    end
    if opts[key] ~= nil then return nil, ("option --%s given twice"):format(name) end
    opts[key] = value
    i = i + 1
  end
  local o, what, why = scan_target.resolve(target, opts)
  if not o then return nil, what == "target" and why or ("option --%s %s"):format(what, why) end
  local t = { target = target:lower(), options = opts, domain = o.domain, kind = o.kind }
  if o.port then
    t.host, t.port = o.host:lower(), o.port
    -- a STARTTLS port serves the kind it says
    if opts.starttls == "c2s" or opts.starttls == "s2s" then t.kind = t.kind or opts.starttls end
  else
    t.target = o.domain
    t.host = o.domain
  end
  local parts = { t.target }
  for _, k in ipairs { "starttls", "xmpphost", "kind" } do
    if opts[k] then parts[#parts + 1] = "--" .. k .. " " .. (k == "xmpphost" and o.domain or opts[k]) end
  end
  t.key = table.concat(parts, " ")
  return t
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
        errors.input(FN, "%s, line %d: %s", name, n, why)
      end
      if seen[t.key] then
        duplicates[#duplicates + 1] = n
      else
        seen[t.key] = true
        t.line = n
        targets[#targets + 1] = t
      end
    end
  end
  return targets, duplicates
end

return M
