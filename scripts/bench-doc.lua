-- Put a benchmark's output into docs/performance.md, between the markers
-- "<!-- bench:NAME -->" and "<!-- /bench:NAME -->", as the latest run.
--   lua5.4 bench/x.lua | lua5.4 scripts/bench-doc.lua NAME docs/performance.md
local name, path = arg[1], arg[2]
assert(name and path, "usage: bench-doc.lua NAME FILE < output")
local output = io.read("*a")
io.write(output)
local f = assert(io.open(path))
local doc = f:read("*a")
f:close()
local open, close = "<!-- bench:" .. name .. " -->", "<!-- /bench:" .. name .. " -->"
local s, e = doc:find(open, 1, true), doc:find(close, 1, true)
assert(s and e and e > s, "no markers for " .. name .. " in " .. path)
local block = output:find("^|") and output or ("```\n" .. output .. "```\n")
local date = os.date("!%Y-%m-%d")
doc = doc:sub(1, s + #open - 1) .. "\nLatest `make bench` run (" .. date .. "):\n\n" .. block .. "\n" .. doc:sub(e)
f = assert(io.open(path, "w"))
f:write(doc)
f:close()
