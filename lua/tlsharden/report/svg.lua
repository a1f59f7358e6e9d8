--- Charts as inline SVG for the HTML report: no script, no font files,
-- sized by their viewBox so that they shrink to a phone's width.
local M = {}

function M.escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end
local esc = M.escape

local function num(x) return ("%.1f"):format(x) end

--- Horizontal bars, one per item, each under its label: items = {
-- { label, value, colour } }, base: the 100 % mark. opts: title (the
-- accessible name), id.
function M.hbars(items, base, opts)
  opts = opts or {}
  local bar_w, row_h, width = 270, 34, 360
  local height = #items * row_h + 4
  local out = { ('<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d"%s>'):format(
    width, height, width, height, opts.id and (' id="' .. esc(opts.id) .. '"') or "") }
  out[#out + 1] = "<title>" .. esc(opts.title or "chart") .. "</title>"
  for i, it in ipairs(items) do
    local y = (i - 1) * row_h + 2
    local w = base > 0 and bar_w * it[2] / base or 0
    local pct = base > 0 and 100 * it[2] / base or 0
    out[#out + 1] = ('<text x="0" y="%d" class="label">%s</text>'):format(y + 12, esc(it[1]))
    out[#out + 1] = ('<rect x="0" y="%d" width="%d" height="12" class="track"/>'):format(y + 17, bar_w)
    out[#out + 1] = ('<rect x="0" y="%d" width="%s" height="12" fill="%s" class="bar"><title>%s: %d of %d</title></rect>'):format(
      y + 17, num(w), it[3] or "#3b6ea8", esc(it[1]), it[2], base)
    out[#out + 1] = ('<text x="%d" y="%d" class="value">%d (%s%%)</text>'):format(bar_w + 6, y + 28, it[2],
      pct == math.floor(pct) and ("%d"):format(pct) or ("%.1f"):format(pct))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

--- Vertical bars in groups: categories = { { label, { v1, v2, ... }, colour } },
-- series = { { name, style } } ("solid" or "light"). opts: title, id.
function M.vbars(categories, series, opts)
  opts = opts or {}
  local max = 1
  for _, c in ipairs(categories) do
    for _, v in ipairs(c[2]) do if v > max then max = v end end
  end
  local group_w, plot_h, top, left = 56, 130, 20, 10
  local bar_w = math.floor((group_w - 12) / #series)
  local width = left + #categories * group_w + 10
  local height = top + plot_h + 40
  local out = { ('<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d"%s>'):format(
    width, height, width, height, opts.id and (' id="' .. esc(opts.id) .. '"') or "") }
  out[#out + 1] = "<title>" .. esc(opts.title or "chart") .. "</title>"
  out[#out + 1] = ('<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>'):format(left, top + plot_h, width - 5, top + plot_h)
  for gi, c in ipairs(categories) do
    local x0 = left + (gi - 1) * group_w + 6
    for si, v in ipairs(c[2]) do
      local h = plot_h * v / max
      local x = x0 + (si - 1) * bar_w
      out[#out + 1] = ('<rect x="%d" y="%s" width="%d" height="%s" fill="%s" class="bar %s"><title>%s, %s: %d</title></rect>'):format(
        x, num(top + plot_h - h), bar_w - 2, num(h), c[3] or "#3b6ea8", series[si][2], esc(c[1]), esc(series[si][1]), v)
      if v > 0 then
        out[#out + 1] = ('<text x="%s" y="%s" text-anchor="middle" class="value small">%d</text>'):format(
          num(x + (bar_w - 2) / 2), num(top + plot_h - h - 4), v)
      end
    end
    out[#out + 1] = ('<text x="%s" y="%d" text-anchor="middle" class="label">%s</text>'):format(
      num(x0 + (group_w - 12) / 2), top + plot_h + 18, esc(c[1]))
  end
  -- legend
  local lx = left
  for si, s in ipairs(series) do
    out[#out + 1] = ('<rect x="%d" y="%d" width="12" height="12" fill="#777" class="bar %s"/>'):format(lx, height - 14, s[2])
    out[#out + 1] = ('<text x="%d" y="%d" class="label small">%s</text>'):format(lx + 16, height - 3, esc(s[1]))
    lx = lx + 20 + 8 * #s[1]
    if si == #series then break end
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

return M
