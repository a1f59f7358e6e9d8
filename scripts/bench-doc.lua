-- Keep a benchmark's output as its latest run: the output is echoed and
-- written to DIR/NAME.txt (default build/bench/NAME.txt) under a line with
-- the date. The figures the documentation quotes are in one table,
-- docs/performance.md, which is changed by hand when a run is to replace
-- them; bench/README.md says how each benchmark measures.
--   lua5.4 bench/x.lua | lua5.4 scripts/bench-doc.lua NAME [DIR]
local name, dir = arg[1], arg[2] or "build/bench"
assert(name and name:find("^[%w_-]+$"), "usage: bench-doc.lua NAME [DIR] < output")
local output = io.read("*a")
io.write(output)
assert(os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'"), "cannot create " .. dir)
local path = dir .. "/" .. name .. ".txt"
local f = assert(io.open(path, "w"))
f:write(("`make bench` run of %s (%s):\n\n"):format(name, os.date("!%Y-%m-%d")), output)
f:close()
io.stderr:write(("bench: %s written\n"):format(path))
