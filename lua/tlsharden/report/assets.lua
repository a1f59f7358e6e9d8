--- The style sheet and the script of the HTML report, inlined into the
-- page (it must work offline and from a file).
local M = {}

M.css = [[
:root { --fg: #1d2330; --muted: #5a6275; --line: #d8dce4; --bg: #fff; --card: #f6f7f9; --accent: #3b6ea8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 14px; }
header { padding-top: 14px; }
h1 { font-size: 1.6em; margin: 0.4em 0; }
h2 { font-size: 1.3em; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 1.6em; }
h3 { font-size: 1.1em; margin: 0.2em 0 0.4em; word-break: break-word; }
h3 small { color: var(--muted); font-weight: normal; }
h4 { margin: 0.8em 0 0.3em; font-size: 1em; }
a { color: var(--accent); }
nav a { margin: 0 2px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin: 0; padding: 10px 12px; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 6px; }
svg.chart { width: 100%; height: auto; max-width: 100%; display: block; margin: 4px 0 8px; }
.card.wide svg.chart { max-width: 640px; }
svg .label { font-size: 13px; fill: var(--fg); }
svg .value { font-size: 12px; fill: var(--muted); }
svg .small { font-size: 11px; }
svg .track { fill: #e6e9ef; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .light { fill-opacity: 0.45; }
.pair { display: flex; flex-wrap: wrap; gap: 12px; }
.pair table { flex: 1 1 260px; }
table { border-collapse: collapse; font-size: 0.92em; }
table.counts { width: 100%; }
th, td { padding: 3px 6px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.counts td { text-align: right; white-space: nowrap; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
details summary { cursor: pointer; color: var(--accent); font-size: 0.9em; }
.pct { color: var(--muted); font-size: 0.9em; }
.note { color: var(--muted); font-size: 0.85em; margin: 4px 0 0; }
.controls { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: center; margin: 8px 0; }
.controls input, .controls select { font: inherit; padding: 4px 6px; max-width: 100%; }
.controls input { min-width: 14em; }
#shown { color: var(--muted); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
#servers-table { width: 100%; }
#servers-table th { cursor: pointer; user-select: none; white-space: nowrap; position: sticky; top: 0; background: var(--bg); }
#servers-table th[aria-sort="ascending"]::after { content: " \25B2"; }
#servers-table th[aria-sort="descending"]::after { content: " \25BC"; }
#servers-table td { white-space: nowrap; }
#servers-table tr:hover td { background: #f0f4fa; }
.badge { display: inline-block; min-width: 2.2em; text-align: center; color: #fff; border-radius: 4px; padding: 0 4px; font-weight: 600; }
.status.failed { color: #a61e1e; }
.detail { border-top: 1px solid var(--line); padding: 8px 0 4px; }
.detail:target { background: #fff8e1; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; word-break: break-word; }
ul.problems { margin: 4px 0; padding-left: 1.2em; }
ul.problems li.error b { color: #a61e1e; }
ul.problems li.warning b { color: #b35c00; }
table.small { font-size: 0.85em; }
@media (max-width: 600px) {
  body { font-size: 14px; }
  .grid { grid-template-columns: 1fr; }
  .controls input { min-width: 0; width: 100%; }
  dl { grid-template-columns: 1fr; }
  dt { font-weight: 600; }
}
]]

-- Sorting (click or Enter on a column head; again to reverse) and
-- filtering (free text and the three selections) of the servers table.
M.script = [[
(function () {
  "use strict";
  var table = document.getElementById("servers-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  var rows = Array.prototype.slice.call(body.rows);
  var keyOf = function (row, col, type) {
    var cell = row.cells[col];
    var v = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
    return type === "num" ? parseFloat(v) : v.toLowerCase();
  };
  var sortBy = function (col) {
    var th = heads[col];
    var type = th.getAttribute("data-type");
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    for (var i = 0; i < heads.length; i++) { heads[i].setAttribute("aria-sort", "none"); }
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var sorted = rows.slice().sort(function (a, b) {
      var x = keyOf(a, col, type), y = keyOf(b, col, type);
      if (x < y) { return -dir; }
      if (x > y) { return dir; }
      return rows.indexOf(a) - rows.indexOf(b);
    });
    var frag = document.createDocumentFragment();
    sorted.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
  };
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () { sortBy(col); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(col); }
    });
  });
  var text = document.getElementById("filter");
  var kind = document.getElementById("f-kind");
  var status = document.getElementById("f-status");
  var grade = document.getElementById("f-grade");
  var shown = document.getElementById("shown");
  var filter = function () {
    var q = text.value.trim().toLowerCase();
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!kind.value || r.getAttribute("data-kind") === kind.value) &&
        (!status.value || r.getAttribute("data-status") === status.value) &&
        (!grade.value || r.getAttribute("data-grade") === grade.value) &&
        (!q || r.textContent.toLowerCase().indexOf(q) !== -1);
      r.hidden = !ok;
      if (ok) { n++; }
    });
    shown.textContent = n + " of " + rows.length + " shown";
  };
  [text, kind, status, grade].forEach(function (el) {
    el.addEventListener("input", filter);
    el.addEventListener("change", filter);
  });
})();
]]

return M
