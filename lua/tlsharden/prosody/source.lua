--- The text of a Prosody configuration file as tlsharden fix edits it:
-- Lua tokens with their byte positions, the span of an option's value, the
-- fields of a table constructor, and edits (byte ranges replaced) applied
-- so that every byte outside them stays as it was. It reads text only and
-- runs nothing; where an option is set (file and line) comes from the
-- sandboxed loader (prosody/config.lua's origins).
local M = {}

local KEYWORDS = {}
for w in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while")
    :gmatch("%a+") do
  KEYWORDS[w] = true
end

-- The length of a long bracket's opening ("[[", "[==[") at i, and its level.
local function long_open(text, i)
  local eq = text:match("^%[(=*)%[", i)
  if eq then return #eq + 2, #eq end
end

--- The tokens of text: { type, value, s, e } with type "name", "keyword",
-- "string", "number" or "symbol" (s and e: first and last byte). Comments
-- and white space are skipped. Returns the list, or nil and a message.
function M.tokens(text)
  local list, i, n = {}, 1, #text
  local function add(kind, s, e, value)
    list[#list + 1] = { type = kind, s = s, e = e, value = value or text:sub(s, e) }
  end
  if text:sub(1, 1) == "#" then i = (text:find("\n", 1, true) or n) + 1 end
  while i <= n do
    local c = text:sub(i, i)
    if c:find("%s") then
      i = i + 1
    elseif text:sub(i, i + 1) == "--" then
      local len, level = long_open(text, i + 2)
      if len then
        local close = text:find("]" .. ("="):rep(level) .. "]", i + 2 + len, true)
        if not close then return nil, ("unfinished long comment at byte %d"):format(i) end
        i = close + level + 2
      else
        i = (text:find("\n", i, true) or n) + 1
      end
    elseif c:find("[%a_]") then
      local s, e = text:find("^[%w_]+", i)
      local word = text:sub(s, e)
      add(KEYWORDS[word] and "keyword" or "name", s, e)
      i = e + 1
    elseif c:find("%d") or (c == "." and text:sub(i + 1, i + 1):find("%d")) then
      local s, e = text:find("^0[xX][%x%.]+[pP][%+%-]?%d+", i)
      if not s then s, e = text:find("^0[xX][%x%.]+", i) end
      if not s then s, e = text:find("^[%d%.]+[eE][%+%-]?%d+", i) end
      if not s then s, e = text:find("^[%d%.]+", i) end
      add("number", s, e)
      i = e + 1
    elseif c == '"' or c == "'" then
      local j = i + 1
      while true do
        local d = text:sub(j, j)
        if d == "" or d == "\n" then return nil, ("unfinished string at byte %d"):format(i) end
        if d == "\\" then j = j + 2
        elseif d == c then break
        else j = j + 1 end
      end
      add("string", i, j)
      i = j + 1
    elseif c == "[" and long_open(text, i) then
      local len, level = long_open(text, i)
      local close = text:find("]" .. ("="):rep(level) .. "]", i + len, true)
      if not close then return nil, ("unfinished long string at byte %d"):format(i) end
      add("string", i, close + level + 1)
      i = close + level + 2
    else
      local three, two = text:sub(i, i + 2), text:sub(i, i + 1)
      if three == "..." then add("symbol", i, i + 2) i = i + 3
      elseif two == "==" or two == "~=" or two == "<=" or two == ">=" or two == ".." or two == "::"
        or two == "//" or two == "<<" or two == ">>" then
        add("symbol", i, i + 1) i = i + 2
      else
        add("symbol", i, i) i = i + 1
      end
    end
  end
  return list
end

local BINARY = { ["+"] = true, ["-"] = true, ["*"] = true, ["/"] = true, ["//"] = true, ["%"] = true,
  ["^"] = true, [".."] = true, ["=="] = true, ["~="] = true, ["<"] = true, ["<="] = true, [">"] = true,
  [">="] = true, ["and"] = true, ["or"] = true, ["&"] = true, ["|"] = true, ["~"] = true,
  ["<<"] = true, [">>"] = true }

local function is(tok, value) return tok ~= nil and tok.value == value and tok.type ~= "string" end

-- The index of the token that closes the bracket opened at i.
local function matching(toks, i)
  local open = toks[i].value
  local close = ({ ["("] = ")", ["["] = "]", ["{"] = "}" })[open]
  local depth = 0
  for j = i, #toks do
    local t = toks[j]
    if t.type == "symbol" then
      if t.value == "(" or t.value == "[" or t.value == "{" then depth = depth + 1
      elseif t.value == ")" or t.value == "]" or t.value == "}" then
        depth = depth - 1
        if depth == 0 then
          if t.value ~= close then return nil end
          return j
        end
      end
    end
  end
end

-- The last token of a `function ... end` starting at i.
local function function_end(toks, i)
  local depth = 0
  for j = i, #toks do
    local t = toks[j]
    if t.type == "keyword" then
      if t.value == "function" or t.value == "if" or t.value == "do" then depth = depth + 1
      elseif t.value == "repeat" then depth = depth + 1
      elseif t.value == "end" or t.value == "until" then
        depth = depth - 1
        if depth == 0 then return j end
      end
    end
  end
end

local expression

-- A simple expression or a prefix expression with its suffixes, from i:
-- the index of its last token.
local function operand(toks, i)
  local t = toks[i]
  if not t then return nil end
  if t.type == "keyword" and (t.value == "not") or is(t, "-") or is(t, "#") or is(t, "~") then
    return operand(toks, i + 1)
  end
  local last
  if t.type == "string" or t.type == "number" or t.type == "keyword" and (t.value == "nil" or t.value == "true"
      or t.value == "false") or is(t, "...") then
    return i
  elseif t.type == "keyword" and t.value == "function" then
    return function_end(toks, i)
  elseif is(t, "{") then
    return matching(toks, i)
  elseif is(t, "(") then
    last = matching(toks, i)
  elseif t.type == "name" then
    last = i
  else
    return nil
  end
  -- suffixes: .name [exp] :name args, calls (args) {table} "string"
  while last do
    local nx = toks[last + 1]
    if is(nx, ".") or is(nx, ":") then
      last = last + 2
      if not (toks[last] and toks[last].type == "name") then return nil end
    elseif is(nx, "[") or is(nx, "(") or is(nx, "{") then
      last = matching(toks, last + 1)
    elseif nx and nx.type == "string" then
      last = last + 1
    else
      break
    end
  end
  return last
end

--- The index of the last token of the expression that starts at token i,
-- or nil where there is none.
function expression(toks, i)
  local last = operand(toks, i)
  while last do
    local nx = toks[last + 1]
    if nx and BINARY[nx.value] and nx.type ~= "string" and (nx.type == "symbol" or nx.type == "keyword") then
      last = operand(toks, last + 2)
    else
      break
    end
  end
  return last
end
M.expression = expression

--- The fields of the table constructor whose "{" is token i: a list of
-- { key, key_kind ("name", "bracket", "item"), first, value_first,
-- value_last, sep } (token indexes; sep: the "," or ";" after it, or nil),
-- and the index of the closing "}". key is the name, the bracket's
-- literal value (a string's or a number's), or the item's position.
function M.fields(toks, i)
  local close = matching(toks, i)
  if not close then return nil end
  local list, j, pos = {}, i + 1, 0
  while j < close do
    local f = { first = j }
    local t = toks[j]
    if t.type == "name" and is(toks[j + 1], "=") then
      f.key, f.key_kind, f.value_first = t.value, "name", j + 2
    elseif is(t, "[") then
      local kclose = matching(toks, j)
      if not kclose or not is(toks[kclose + 1], "=") then return nil end
      local k = toks[j + 1]
      if kclose == j + 2 and k.type == "number" then f.key = tonumber(k.value)
      elseif kclose == j + 2 and k.type == "string" then f.key = M.string_value(k.value)
      else f.key = false end
      f.key_kind, f.value_first = "bracket", kclose + 2
    else
      pos = pos + 1
      f.key, f.key_kind, f.value_first = pos, "item", j
    end
    f.value_last = expression(toks, f.value_first)
    if not f.value_last or f.value_last >= close then return nil end
    j = f.value_last + 1
    if is(toks[j], ",") or is(toks[j], ";") then
      f.sep = j
      j = j + 1
    elseif j ~= close then
      return nil
    end
    list[#list + 1] = f
  end
  return list, close
end

--- The value of a string token's literal (short strings with the common
-- escapes, long strings), or nil.
function M.string_value(literal)
  local q = literal:sub(1, 1)
  if q == '"' or q == "'" then
    local body = literal:sub(2, -2)
    if not body:find("\\", 1, true) then return body end
    local ok, v = pcall(load("return " .. literal, "=string", "t", {}))
    if ok then return v end
    return nil
  end
  local eq = literal:match("^%[(=*)%[")
  if eq then
    local body = literal:sub(#eq + 3, -(#eq + 3))
    return (body:gsub("^\r?\n", ""))
  end
end

-- The byte offset where each line of text starts, for the last text asked
-- about (fix asks about one file many times in a row).
local last_text, last_starts
local function line_starts(text)
  if text ~= last_text then
    local starts, pos = { 1 }, 1
    while true do
      local nl = text:find("\n", pos, true)
      if not nl then break end
      starts[#starts + 1] = nl + 1
      pos = nl + 1
    end
    last_text, last_starts = text, starts
  end
  return last_starts
end

--- The first token on line `line` of text (1-based) and after.
function M.first_on_line(text, toks, line)
  local offset = line_starts(text)[line]
  if not offset then return nil end
  -- the first token that starts at or after offset
  local lo, hi = 1, #toks + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if toks[mid].s >= offset then hi = mid else lo = mid + 1 end
  end
  if lo <= #toks then return lo end
end

--- Where option `key` is assigned by the statement Lua reports at line
-- `line` (the line its assignment runs on, which is the statement's last
-- line or one within it): the index of the token of its name, with "="
-- after it (not "=="), nearest before the end of that line. With
-- `forward`, the first one at or after the start of that line instead (a
-- table of options passed to a VirtualHost call).
function M.find_assignment(text, toks, line, key, forward)
  local function matches(idx)
    local t = toks[idx]
    return t.type == "name" and t.value == key and is(toks[idx + 1], "=") and not is(toks[idx - 1], ".")
      and not is(toks[idx - 1], ":")
  end
  if forward then
    local from = M.first_on_line(text, toks, line)
    if not from then return nil end
    for idx = from, #toks do
      if matches(idx) then return idx end
    end
    return nil
  end
  local next_line = M.first_on_line(text, toks, line + 1) or (#toks + 1)
  for idx = next_line - 1, 1, -1 do
    if matches(idx) then
      -- the statement must reach the reported line
      local last = expression(toks, idx + 2)
      if last and M.line_of(text, toks[last].e) >= line then return idx end
      return nil
    end
  end
end

--- The line (1-based) of byte position s.
function M.line_of(text, s)
  local starts = line_starts(text)
  local lo, hi = 1, #starts
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if starts[mid] <= s then lo = mid else hi = mid - 1 end
  end
  return lo
end

--- The start of the line that holds byte s, and its indentation.
function M.line_start(text, s)
  local start = s
  while start > 1 and text:sub(start - 1, start - 1) ~= "\n" do start = start - 1 end
  return start, text:match("^[ \t]*", start)
end

--- text with the edits applied: each { s, e, text } replaces bytes s..e
-- (e = s - 1 inserts before s). Edits must not overlap; returns nil and a
-- message where they do.
function M.apply(text, edits)
  for i, ed in ipairs(edits) do ed.seq = ed.seq or i end
  -- from the end; of two insertions at one place, the later first, so
  -- that the text keeps the order they were made in
  table.sort(edits, function(a, b)
    if a.s ~= b.s then return a.s > b.s end
    if a.e ~= b.e then return a.e > b.e end
    return a.seq > b.seq
  end)
  local limit = #text + 1
  for _, ed in ipairs(edits) do
    if ed.e >= limit then return nil, "two changes overlap" end
    text = text:sub(1, ed.s - 1) .. ed.text .. text:sub(ed.e + 1)
    limit = ed.s
  end
  return text
end

return M
