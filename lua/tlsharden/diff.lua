--- Unified diffs of two texts, as `diff -u` writes them (three lines of
-- context, hunks merged where their context meets), for tlsharden fix.
-- The common head and tail are set aside first; what is left between
-- them is compared line by line (longest common subsequence), which keeps
-- the work small for the few-line edits a fix makes.
local M = {}

local function lines(text)
  local t = {}
  for line in text:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  local last = text:match("([^\n]+)$")
  if last then t[#t + 1] = last end
  return t, last ~= nil  -- whether the last line has no newline
end

-- The edit script of a and b: a list of { op = " "|"-"|"+", line, ai, bi }.
local function script(a, b)
  local na, nb = #a, #b
  local head = 0
  while head < na and head < nb and a[head + 1] == b[head + 1] do head = head + 1 end
  local tail = 0
  while tail < na - head and tail < nb - head and a[na - tail] == b[nb - tail] do tail = tail + 1 end
  local ma, mb = na - head - tail, nb - head - tail
  local out = {}
  for k = 1, head do out[#out + 1] = { op = " ", line = a[k], ai = k, bi = k } end
  if ma * mb <= 250000 then
    -- LCS lengths of the middles, from the end
    local len = {}
    for i = ma + 1, 1, -1 do
      local row, below = {}, len[i + 1]
      for j = mb + 1, 1, -1 do
        if i > ma or j > mb then row[j] = 0
        elseif a[head + i] == b[head + j] then row[j] = below[j + 1] + 1
        else
          local x, y = below[j], row[j + 1]
          row[j] = x > y and x or y
        end
      end
      len[i] = row
    end
    local i, j = 1, 1
    while i <= ma or j <= mb do
      if i <= ma and j <= mb and a[head + i] == b[head + j] then
        out[#out + 1] = { op = " ", line = a[head + i], ai = head + i, bi = head + j }
        i, j = i + 1, j + 1
      elseif i <= ma and (j > mb or len[i + 1][j] >= len[i][j + 1]) then
        out[#out + 1] = { op = "-", line = a[head + i], ai = head + i }
        i = i + 1
      else
        out[#out + 1] = { op = "+", line = b[head + j], bi = head + j }
        j = j + 1
      end
    end
  else
    -- long middles: where two lines differ, the nearest point (within a
    -- window) where both texts agree again for two lines
    local i, j, ea, eb = head + 1, head + 1, na - tail, nb - tail
    local function agree(x, y)
      return a[x] == b[y] and (x + 1 > ea or y + 1 > eb or a[x + 1] == b[y + 1])
    end
    while i <= ea or j <= eb do
      if i <= ea and j <= eb and a[i] == b[j] then
        out[#out + 1] = { op = " ", line = a[i], ai = i, bi = j }
        i, j = i + 1, j + 1
      else
        local si, sj
        for d = 1, 400 do
          for x = 0, d do
            local y = d - x
            if i + x <= ea and j + y <= eb and agree(i + x, j + y) then si, sj = i + x, j + y break end
          end
          if si then break end
        end
        si, sj = si or ea + 1, sj or eb + 1
        while i < si do out[#out + 1] = { op = "-", line = a[i], ai = i } i = i + 1 end
        while j < sj do out[#out + 1] = { op = "+", line = b[j], bi = j } j = j + 1 end
      end
    end
  end
  for k = 1, tail do
    out[#out + 1] = { op = " ", line = a[na - tail + k], ai = na - tail + k, bi = nb - tail + k }
  end
  return out
end

--- The unified diff of texts a and b, with the names `name_a` and `name_b`
-- in its header; "" when they are equal. `context`: lines around each
-- change (default 3).
function M.unified(a, b, name_a, name_b, context)
  if a == b then return "" end
  context = context or 3
  local la, a_open = lines(a)
  local lb, b_open = lines(b)
  local ops = script(la, lb)
  local out = { ("--- %s\n+++ %s\n"):format(name_a, name_b) }
  local n, k = #ops, 1
  while k <= n do
    while k <= n and ops[k].op == " " do k = k + 1 end
    if k > n then break end
    local first = math.max(1, k - context)
    -- extend while the next change is within 2 * context lines
    local last, m = k, k
    while m <= n do
      if ops[m].op ~= " " then last = m
      elseif m - last > 2 * context then break end
      m = m + 1
    end
    local stop = math.min(n, last + context)
    local a_start, b_start, a_count, b_count = nil, nil, 0, 0
    local body = {}
    for x = first, stop do
      local o = ops[x]
      if o.op ~= "+" then a_count = a_count + 1; a_start = a_start or o.ai end
      if o.op ~= "-" then b_count = b_count + 1; b_start = b_start or o.bi end
      body[#body + 1] = o.op .. o.line .. "\n"
      local is_last_a = o.ai == #la and a_open and o.op ~= "+"
      local is_last_b = o.bi == #lb and b_open and o.op ~= "-"
      if is_last_a or is_last_b then body[#body + 1] = "\\ No newline at end of file\n" end
    end
    -- an empty side starts at the line before the hunk
    if not a_start then
      a_start = 0
      for x = first, 1, -1 do if ops[x].ai then a_start = ops[x].ai break end end
    end
    if not b_start then
      b_start = 0
      for x = first, 1, -1 do if ops[x].bi then b_start = ops[x].bi break end end
    end
    out[#out + 1] = ("@@ -%d,%d +%d,%d @@\n"):format(a_start, a_count, b_start, b_count)
    out[#out + 1] = table.concat(body)
    k = stop + 1
  end
  return table.concat(out)
end

return M
