--- The progress of a survey on stderr: on a terminal a bar redrawn in
-- place (counts, rate, ETA), otherwise a plain line at every 5 % and a
-- last line at the end.
local M = {}

local function clock_text(seconds)
  if not seconds or seconds ~= seconds or seconds == math.huge then return "?" end
  seconds = math.floor(seconds + 0.5)
  local h, m, s = math.floor(seconds / 3600), math.floor(seconds / 60) % 60, seconds % 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s) end
  return ("%d:%02d"):format(m, s)
end

--- The figures of a survey's state: done (endpoints finished in all,
-- resumed ones included), total (done + known to do + an estimate for the
-- lookups (list entry and kind) not resolved yet), percent, rate (endpoints per second in this
-- run), eta (seconds).
local function figures(st, now)
  local per_lookup = st.resolved > 0 and (st.found + st.resumed) / st.resolved or 1
  local unresolved = math.max(0, st.lookups - st.resolved)
  local total = st.resumed + st.found + math.floor(unresolved * per_lookup + 0.5)
  local done = st.resumed + st.scanned
  if total < done then total = done end
  local elapsed = now - st.started
  local rate = elapsed > 0 and st.scanned / elapsed or 0
  local eta = rate > 0 and (total - done) / rate or nil
  return { done = done, total = total, percent = total > 0 and 100 * done / total or 100,
    rate = rate, eta = eta, elapsed = elapsed, failed = st.failed, ok = st.ok }
end

local function failures_text(st)
  local names = {}
  for status in pairs(st.statuses) do
    if status ~= "ok" then names[#names + 1] = status end
  end
  table.sort(names)
  local parts = {}
  for i, status in ipairs(names) do parts[i] = ("%s %d"):format(status, st.statuses[status]) end
  return table.concat(parts, ", ")
end

--- A reporter writing to stream. opts: terminal (redraw a bar in place),
-- now (a clock), width (of the bar, default 24). Returns an object with
-- update(st) (call it whenever the state changes; draws at most 10
-- times a second on a terminal) and finish(st).
function M.reporter(stream, opts)
  opts = opts or {}
  local now = opts.now or require("socket").gettime
  local width = opts.width or 24
  local r = { last_draw = -math.huge, last_step = 0, drawn = false }

  local function line_text(st, f)
    return ("%d/%d endpoints (%d%%), ok %d, failed %d, %.1f/s, %s elapsed, ETA %s"):format(
      f.done, f.total, math.floor(f.percent), f.ok, f.failed, f.rate, clock_text(f.elapsed),
      f.done >= f.total and "0:00" or clock_text(f.eta)) ..
      (st.resolved < st.lookups and (", %d/%d lookups"):format(st.resolved, st.lookups) or "")
  end

  function r.update(st, force)
    local t = now()
    local f = figures(st, t)
    if opts.terminal then
      if not force and t - r.last_draw < 0.1 then return end
      r.last_draw = t
      local filled = math.floor(width * math.min(f.percent, 100) / 100)
      stream:write("\r\27[K[", ("#"):rep(filled), ("."):rep(width - filled), "] ", line_text(st, f))
      r.drawn = true
    else
      local step = math.floor(math.min(f.percent, 100) / 5)
      if step > r.last_step then
        r.last_step = step
        stream:write("survey: ", line_text(st, f), "\n")
      end
    end
    if stream.flush then stream:flush() end
  end

  function r.finish(st)
    local f = figures(st, now())
    if opts.terminal and r.drawn then stream:write("\r\27[K") end
    local failures = failures_text(st)
    stream:write(("survey: %d endpoints of %d targets in %.1f s%s: ok %d, failed %d%s\n"):format(
      f.done, st.entries, f.elapsed, st.resumed > 0 and (" (%d from an earlier run)"):format(st.resumed) or "",
      f.ok, f.failed, failures ~= "" and (" (" .. failures .. ")") or ""))
    if stream.flush then stream:flush() end
  end

  return r
end

return M
