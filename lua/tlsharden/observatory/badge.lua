--- The observatory's badge: a small self-contained SVG in the manner of a
-- flat shields.io badge, "XMPP TLS" on the left and the grade on the
-- right in the grade's colour. Pure: a string in, a string out, no I/O.
-- The colours per grade are the ones the pages use too (badge.colour).
local svg = require "tlsharden.report.svg"

local M = {}

local esc = svg.escape

-- The colour of each grade, as the survey report paints them.
local COLOURS = { ["A+"] = "#1a7f37", A = "#2f9e44", ["A-"] = "#66a80f", B = "#e8a317",
  C = "#e67700", D = "#d9480f", E = "#c92a2a", F = "#a61e1e", T = "#6c757d", M = "#495057" }
local SCANNING, NONE = "#3b6ea8", "#9f9f9f"

--- The colour of a grade ("A+" ... "M"), of "scanning", and grey for
-- anything else (nil, "none", "?").
function M.colour(g)
  if g == "scanning" then return SCANNING end
  return COLOURS[g] or NONE
end

-- Rough advance widths in pixels of 11px Verdana, enough to size the
-- badge from its text: narrow letters, wide letters, the rest.
local NARROW = "[%.,:;'|!ilIjft%(%)%[%] ]"
local WIDE = "[MWmw@%%]"
local function text_width(s)
  local w = 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    if ch:find("^" .. NARROW .. "$") then w = w + 3.7
    elseif ch:find("^" .. WIDE .. "$") then w = w + 10
    elseif ch:find("^[A-Z+%-]$") then w = w + 7.5
    else w = w + 6.6 end
  end
  return math.floor(w + 0.5)
end
M.text_width = text_width

local LABEL = "XMPP TLS"

--- The value a badge shows for a grade: the grade itself, "scanning",
-- "none", or "?" for anything else.
function M.value(g)
  if type(g) ~= "string" or g == "" then return "?" end
  if COLOURS[g] or g == "scanning" or g == "none" then return g end
  return "?"
end

--- The badge of domain's grade as an SVG document. g: a grade, "scanning",
-- "none" or nil ("?"). opts.inline: for an SVG inside an HTML page (no
-- XML namespace attribute, no XML declaration).
function M.svg(domain, g, opts)
  opts = opts or {}
  local value = M.value(g)
  local lw, vw = text_width(LABEL) + 12, text_width(value) + 12
  local w = lw + vw
  local title = ("XMPP TLS grade of %s: %s"):format(domain ~= nil and tostring(domain) or "?", value)
  local out = {
    ('<svg%s width="%d" height="20" viewBox="0 0 %d 20" role="img" aria-label="%s" class="tlsbadge">'):format(
      opts.inline and "" or ' xmlns="http://www.w3.org/2000/svg"', w, w, esc(title)),
    "<title>" .. esc(title) .. "</title>",
    ('<rect width="%d" height="20" rx="3" fill="%s"/>'):format(w, M.colour(value)),
    ('<rect width="%d" height="20" rx="3" fill="#555"/>'):format(lw),
    ('<rect x="%d" width="4" height="20" fill="#555"/>'):format(lw - 4),
    '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">',
    ('<text x="%.1f" y="15" fill="#010101" fill-opacity=".3">%s</text>'):format(lw / 2, esc(LABEL)),
    ('<text x="%.1f" y="14">%s</text>'):format(lw / 2, esc(LABEL)),
    ('<text x="%.1f" y="15" fill="#010101" fill-opacity=".3">%s</text>'):format(lw + vw / 2, esc(value)),
    ('<text x="%.1f" y="14">%s</text>'):format(lw + vw / 2, esc(value)),
    "</g></svg>",
  }
  return table.concat(out)
end

return M
