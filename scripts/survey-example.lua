-- The example image of docs/guide/survey.md: a survey of the spec's loopback
-- fixture (spec/helpers/survey_fixture.lua), its HTML report opened in
-- headless chromium, the top of the page as a PNG.
--
--   lua5.4 scripts/survey-example.lua [OUT.png] [WIDTH] [HEIGHT]
local root = debug.getinfo(1, "S").source:match("^@(.*)/scripts/[^/]*$") or "."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/?.lua;" .. package.path
package.cpath = root .. "/build/?.so;" .. package.cpath
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local fixture = require "spec.helpers.survey_fixture"
local browser = require "spec.helpers.browser"
local report = require "tlsharden.report"
local html = require "tlsharden.report.html"

local out = arg[1] or (root .. "/docs/survey-report.png")
local width, height = tonumber(arg[2]) or 1100, tonumber(arg[3]) or 1500

local fx = fixture.start()
local dir = pki.tmpdir()
local b
local ok, err = pcall(function()
  pki.write(dir .. "/list.txt", fx.list)
  sh.run(("cd %s && ./bin/tlsharden survey %s --out %s --resolver %s --trust-anchor %s --cafile %s --timeout 2"
    .. " --per-server 64 --quiet"):format(sh.quote(root), sh.quote(dir .. "/list.txt"), sh.quote(dir .. "/s.jsonl"),
    fx.resolver, sh.quote(fx.trust_anchor), sh.quote(fx.cafile)))
  pki.write(dir .. "/report.html", html.render(report.build(dir .. "/s.jsonl"),
    { title = "XMPP TLS survey of a loopback Prosody" }))
  local why
  b, why = browser.start { width = width, height = height }
  assert(b, why)
  local page = b:open("file://" .. dir .. "/report.html", { width = width, height = height })
  assert(#page:errors() == 0, table.concat(page:errors(), "\n"))
  page:screenshot(out)
end)
if b then b:stop() end
fx.stop()
pki.cleanup(dir)
if not ok then error(err, 0) end
print(out)
