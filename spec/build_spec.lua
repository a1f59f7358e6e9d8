-- The Makefile and the rockspecs must build the same C sources; the
-- rockspecs (tlsharden-scm-1 and the release's tlsharden-VERSION-1) differ
-- only in their version and source.
local sh = require "spec.helpers.sh"
local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

-- Every rockspec of the checkout, by file name, each loaded into a table.
local function rockspecs()
  local list = {}
  for _, file in ipairs(sh.lines("ls tlsharden-*.rockspec")) do
    local env = {}
    assert(load(read(file), "@" .. file, "t", env))()
    list[#list + 1] = { file = file, spec = env }
  end
  assert.is_true(#list >= 2, "the scm rockspec and the release's")
  return list
end

-- A variable of the Makefile (SRCS, HDRS), its continuation lines joined,
-- as a list.
local function make_list(name)
  local make = read("Makefile"):gsub("\\\n", " ")
  local list = {}
  for src in make:match("\n" .. name .. "%s*=%s*([^\n]*)"):gmatch("%S+") do list[#list + 1] = src end
  return list
end

describe("build files", function()
  it("list the same C sources in the Makefile and in each rockspec", function()
    local from_make = make_list("SRCS")
    assert.is_true(#from_make > 20)
    table.sort(from_make)
    for _, r in ipairs(rockspecs()) do
      local rock = {}
      for _, src in ipairs(r.spec.build.modules["tlsharden.core"].sources) do rock[#rock + 1] = src end
      table.sort(rock)
      assert.same(from_make, rock, r.file)
    end
  end)

  it("keep the rockspecs the same but for their version and source", function()
    local list = rockspecs()
    local names = {}
    for _, r in ipairs(list) do names[r.file] = true end
    assert.is_true(names["tlsharden-scm-1.rockspec"], "tlsharden-scm-1.rockspec")
    local scm
    for _, r in ipairs(list) do
      if r.file == "tlsharden-scm-1.rockspec" then scm = r.spec end
    end
    for _, r in ipairs(list) do
      assert.equal("tlsharden", r.spec.package, r.file)
      assert.equal("tlsharden-" .. r.spec.version .. ".rockspec", r.file)
      -- the build table first, so that a difference there is named as such
      assert.same(scm.build, r.spec.build, r.file .. ": build differs from tlsharden-scm-1.rockspec")
      for key, value in pairs(scm) do
        if key ~= "version" and key ~= "source" then assert.same(value, r.spec[key], r.file .. ": " .. key) end
      end
      for key in pairs(r.spec) do
        assert.is_true(scm[key] ~= nil, r.file .. ": " .. key .. " is not in tlsharden-scm-1.rockspec")
      end
    end
  end)

  it("list every C file under src/, in its folders", function()
    local files = sh.lines("find src -name '*.c' | sort")
    assert.is_true(#files > 20)
    local listed = {}
    for _, src in ipairs(make_list("SRCS")) do listed[src] = true end
    for _, f in ipairs(files) do
      assert.is_true(listed[f] == true, f .. " is not in SRCS")
    end
  end)

  it("name every header under src/ in HDRS, so that a change to one rebuilds the core", function()
    local listed = {}
    for _, h in ipairs(make_list("HDRS")) do listed[h] = true end
    for _, f in ipairs(sh.lines("find src -name '*.h' | sort")) do
      assert.is_true(listed[f] == true, f .. " is not in HDRS")
    end
  end)

  it("name every C file and header under src/ in docs/architecture.md, by its folder", function()
    local page = read("docs/architecture.md")
    local files = sh.lines("find src -name '*.c' -o -name '*.h' | sort")
    assert.is_true(#files > 30)
    for _, f in ipairs(files) do
      local name = f:gsub("^src/", "")
      assert.truthy(page:find("`" .. name .. "`", 1, true), f .. " is not named in docs/architecture.md")
    end
  end)

  it("keep the calls between C files one way: no two files, nor any circle of them, call each other", function()
    -- where each th_* function is defined, and which files call it (the
    -- module table, core/core.c, names every function and is left out)
    local defined, calls = {}, {}
    local files = sh.lines("find src -name '*.c' | sort")
    for _, f in ipairs(files) do
      for line in read(f):gmatch("[^\n]+") do
        local name = line:match("^[%a_][^;(]-%f[%w_](th_[%w_]+)%s*%b()%s*{?%s*$")
        if name and not line:find("^static") then defined[name] = f end
      end
    end
    for _, f in ipairs(files) do
      calls[f] = {}
      if f ~= "src/core/core.c" then
        for name in read(f):gmatch("%f[%w_](th_[%w_]+)%s*%(") do
          local g = defined[name]
          if g and g ~= f and g ~= "src/core/core.c" then calls[f][g] = true end
        end
      end
    end
    assert.is_true(defined.th_harden ~= nil and defined.th_report_free ~= nil, "definitions found")
    -- a depth-first walk finds any circle
    local state = {}
    local function walk(f, path)
      state[f] = "open"
      path[#path + 1] = f
      for g in pairs(calls[f]) do
        assert.is_true(state[g] ~= "open", "a circle of calls: " .. table.concat(path, " -> ") .. " -> " .. g)
        if not state[g] then walk(g, path) end
      end
      path[#path] = nil
      state[f] = "done"
    end
    for _, f in ipairs(files) do if not state[f] then walk(f, {}) end end
  end)

  it("keep the Lua modules' requires free of circles", function()
    local requires = {}
    for _, f in ipairs(sh.lines("cd lua && find . -name '*.lua' | sort")) do
      local name = f:gsub("^%./", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      requires[name] = {}
      -- the requires a module makes when it loads (top level, not indented)
      for dep in ("\n" .. read("lua/" .. f:sub(3))):gmatch("\nlocal [%w_]+ = require[ (]*\"([%w_.]+)\"") do
        requires[name][#requires[name] + 1] = dep
      end
    end
    assert.is_true(#requires["tlsharden.scan"] > 5)
    local state = {}
    local function walk(m, path)
      state[m] = "open"
      path[#path + 1] = m
      for _, dep in ipairs(requires[m] or {}) do
        assert.is_true(state[dep] ~= "open", "a circle of requires: " .. table.concat(path, " -> ") .. " -> " .. dep)
        if requires[dep] and not state[dep] then walk(dep, path) end
      end
      path[#path] = nil
      state[m] = "done"
    end
    for m in pairs(requires) do if not state[m] then walk(m, {}) end end
  end)

  it("name every Lua module, script, benchmark and fuzz driver in docs/architecture.md", function()
    local page = read("docs/architecture.md")
    local function named(path) return page:find("`" .. path .. "`", 1, true) ~= nil end
    local files = sh.lines("find lua scripts bench bin fuzz examples -type f -not -path 'fuzz/corpus/*' -not -path 'fuzz/out/*' -not -path 'bench/out/*' | sort")
    assert.is_true(#files > 80)
    for _, f in ipairs(files) do
      local short = f:gsub("^lua/tlsharden/", ""):gsub("^lua/", "")
      local dir = f:match("^(.*)/[^/]*$")
      -- a whole folder of one kind may be named by its pattern (bench/*.lua)
      local ext = f:match("(%.%w+)$") or ""
      local ok = named(short) or named(f) or (dir and named(dir .. "/*" .. ext)) or (dir and named(dir .. "/"))
      assert.is_true(ok, f .. " is not named in docs/architecture.md")
    end
  end)

  it("ship every Lua module under lua/ in each rockspec", function()
    local files = sh.lines("cd lua && find . -name '*.lua' | sort")
    assert.is_true(#files > 50)
    for _, r in ipairs(rockspecs()) do
      local env = r.spec
      for _, line in ipairs(files) do
        local found = false
        for _, v in pairs(env.build.modules) do
          if v == "lua/" .. line:sub(3) then found = true end
        end
        for _, v in pairs(env.build.install and env.build.install.lua or {}) do
          if v == "lua/" .. line:sub(3) then found = true end
        end
        assert.is_true(found, line .. " is not installed by " .. r.file)
      end
    end
  end)
end)

describe("test harness", function()
  it("loads the core built for this Lua, and its sanitizer build in the sanitizer suite", function()
    local path = package.searchpath("tlsharden.core", package.cpath)
    local version = _VERSION:match("%d+%.%d+")
    local build = version == "5.4" and "/build/" or "/build/" .. version .. "/"
    if os.getenv("TLSHARDEN_SANITIZED") then
      assert.matches(build .. "asan/tlsharden/core.so", path, 1, true)
    else
      assert.matches(build .. "tlsharden/core.so", path, 1, true)
    end
  end)
end)

describe("Lua versions", function()

  it("every Lua file of the repository compiles on this Lua (" .. _VERSION .. ")", function()
    local files = sh.lines("find lua spec bench fuzz scripts examples -name '*.lua' | sort")
    files[#files + 1] = "bin/tlsharden"
    assert.is_true(#files > 50)
    for _, path in ipairs(files) do
      local ok, err = loadfile(path)
      assert(ok, err)
    end
  end)

  it("the rockspecs ask for a Lua from 5.2 to 5.4, which includes this one", function()
    for _, r in ipairs(rockspecs()) do
      assert.same({ "lua >= 5.2, < 5.5", "luasec" }, r.spec.dependencies, r.file)
    end
    local version = tonumber(_VERSION:match("%d+%.%d+"))
    assert.is_true(version >= 5.2 and version < 5.5)
  end)
end)
