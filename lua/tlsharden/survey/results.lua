--- A survey's results file: one JSON object a line, one line per endpoint
-- (or per target and kind that gave no endpoint). Reading it back for a
-- report or to resume, appending to it as results come in.
local json = require "tlsharden.json"
local errors = require "tlsharden.errors"

local M = {}

--- The identity of an endpoint result within a survey: the list entry, the
-- kind and where it was reached. A line the survey wrote carries it in
-- survey.key; for other lines it is made from the fields.
function M.key(rec)
  local s = type(rec.survey) == "table" and rec.survey
  if s and type(s.key) == "string" then return s.key end
  return M.endpoint_key(rec.target or rec.domain, rec.kind, rec)
end

--- The key of endpoint ep found for target and kind; an ep without an
-- address or port (a target that gave no endpoint) is keyed by its status.
function M.endpoint_key(target, kind, ep)
  if ep and ep.port and (ep.address or ep.host) then
    return table.concat({ tostring(target), tostring(kind), tostring(ep.tls or "?"),
      tostring(ep.host or ""), tostring(ep.address or ""), tostring(ep.port) }, "|")
  end
  return tostring(target) .. "|" .. tostring(kind) .. "|-"
end

--- The group of a result: its list entry and kind.
function M.group(rec)
  local s = type(rec.survey) == "table" and rec.survey or {}
  return tostring(s.target or rec.target or rec.domain) .. "|" .. tostring(rec.kind)
end

--- Read a results file line by line, handing each decoded line to
-- each(rec) (with `_line`, its line number) as it is read, so a large
-- file is never held whole. Returns a summary: count (records), bad (the
-- lines that are not a JSON object: { line, reason }), tail (bytes after
-- the last newline that do not decode: a line cut short when a survey was
-- stopped), good_bytes (the length up to the last whole line),
-- unterminated (the last line is whole but has no newline). A file that
-- cannot be opened raises.
function M.read(path, each)
  if type(path) ~= "string" then errors.argument("survey.read", 1, "path", "expected a string, got %s", errors.quote(path)) end
  if type(each) ~= "function" then errors.argument("survey.read", 2, "each", "expected a function, got %s", errors.quote(each)) end
  local f, err = io.open(path, "rb")
  if not f then errors.input("survey.read", "cannot read %s: %s", errors.quote(path), errors.shorten(err)) end
  local out = { count = 0, bad = {}, tail = "", good_bytes = 0 }
  local n, offset, pending = 0, 0, ""
  local function line_of(line)
    n = n + 1
    line = line:gsub("\r$", "")
    if not line:find("%S") then return end
    local ok, rec = pcall(json.decode, line)
    if ok and type(rec) == "table" then
      rec._line = n
      out.count = out.count + 1
      each(rec)
    else
      out.bad[#out.bad + 1] = { line = n, reason = ok and "not a JSON object" or errors.shorten(rec) }
    end
  end
  while true do
    local chunk = f:read(65536)
    if not chunk then break end
    local pos = 1
    while true do
      local nl = chunk:find("\n", pos, true)
      if not nl then break end
      local line = pending .. chunk:sub(pos, nl - 1)
      pending = ""
      out.good_bytes = offset + nl
      line_of(line)
      pos = nl + 1
    end
    pending = pending .. chunk:sub(pos)
    offset = offset + #chunk
  end
  f:close()
  if pending ~= "" then
    local ok, rec = pcall(json.decode, pending)
    if ok and type(rec) == "table" then
      line_of(pending)
      out.good_bytes = offset
      out.unterminated = true
    else
      out.tail = pending
    end
  end
  return out
end

--- What a resumed survey need not do again: done (keys seen), groups
-- (group -> { count, of }: endpoints written and found for a list entry
-- and kind), statuses (status -> endpoints), file (what M.read returned)
-- and count (lines read).
function M.progress_of(path)
  local done, groups, statuses = {}, {}, {}
  local file = M.read(path, function(rec)
    local key = M.key(rec)
    if not done[key] then
      done[key] = true
      local status = type(rec.status) == "string" and rec.status or "error"
      statuses[status] = (statuses[status] or 0) + 1
      local g = M.group(rec)
      groups[g] = groups[g] or { count = 0 }
      groups[g].count = groups[g].count + 1
      local of = type(rec.survey) == "table" and tonumber(rec.survey.of)
      if of then groups[g].of = of end
    end
  end)
  return { done = done, groups = groups, statuses = statuses, file = file, count = file.count }
end

--- Open path to append results, after cutting off a line a stopped survey
-- left half written (the file is rewritten without it). Returns the file.
function M.open_append(path, file)
  if file and (file.tail ~= "" or file.unterminated) then
    local tmp = path .. ".tmp"
    local src, dst = assert(io.open(path, "rb")), assert(io.open(tmp, "wb"))
    local left = file.good_bytes
    while left > 0 do
      local chunk = src:read(math.min(left, 65536))
      if not chunk then break end
      dst:write(chunk)
      left = left - #chunk
    end
    if file.unterminated then dst:write("\n") end
    src:close()
    dst:close()
    assert(os.rename(tmp, path))
  end
  local f, err = io.open(path, "ab")
  if not f then errors.input("survey.run", "cannot write %s: %s", errors.quote(path), tostring(err)) end
  return f
end

--- A writer of result lines to an open file: write(rec) encodes one line
-- and flushes it, so that what is in the file is whole lines.
function M.writer(f)
  return function(rec)
    f:write(json.encode(rec), "\n")
    f:flush()
  end
end

return M
