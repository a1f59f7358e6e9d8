-- The release: one version everywhere (the core's TH_VERSION, the release's
-- rockspec, CHANGELOG.md's newest release, tlsharden.VERSION and
-- `tlsharden --version`), and its source rock, made offline from the
-- checkout (scripts/make-rock.sh), installed by luarocks into a fresh tree
-- and run from there. Building the core in that tree takes a while: that
-- half is tagged #truth, which runs in the release suite only.
local sh = require "spec.helpers.sh"
local run = require("spec.helpers.cli").run
local tlsharden = require "tlsharden"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local VERSION = tlsharden.VERSION
local LUA_VERSION = _VERSION:match("%d+%.%d+")
local LUA = "lua" .. LUA_VERSION
-- The children see none of the checkout's module paths: what they load
-- comes from the tree they are told about, or from the system.
local CLEAN_ENV = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_2 -u LUA_CPATH_5_2 -u LUA_PATH_5_3"
  .. " -u LUA_CPATH_5_3 -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "

-- The release's rockspec: the one tlsharden-*.rockspec besides scm's.
local function release_rockspec()
  local files = {}
  for _, f in ipairs(sh.lines("ls tlsharden-*.rockspec")) do
    if f ~= "tlsharden-scm-1.rockspec" then files[#files + 1] = f end
  end
  assert.same({ "tlsharden-" .. VERSION .. "-1.rockspec" }, files)
  local env = {}
  assert(load(read(files[1]), "@" .. files[1], "t", env))()
  return files[1], env
end

describe("the version", function()
  it("is the core's, as tlsharden.VERSION and tlsharden._VERSION", function()
    assert.matches("^%d+%.%d+%.%d+$", VERSION)
    assert.equal(VERSION, tlsharden._VERSION)
    assert.equal(VERSION, require("tlsharden.core")._VERSION)
    assert.equal('#define TH_VERSION "' .. VERSION .. '"',
      read("src/core/tlsharden.h"):match('#define TH_VERSION "[^"\n]*"'))
  end)

  it("names the release's rockspec, its source archive and its folder", function()
    local file, spec = release_rockspec()
    assert.equal("tlsharden-" .. VERSION .. "-1.rockspec", file)
    assert.equal(VERSION .. "-1", spec.version)
    assert.equal("tlsharden", spec.package)
    assert.matches("^https://[^/]+/.*/tlsharden%-" .. VERSION:gsub("%.", "%%.") .. "%.tar%.gz$", spec.source.url)
    assert.equal("tlsharden-" .. VERSION, spec.source.dir)
  end)

  it("is CHANGELOG.md's newest release, with its date", function()
    local newest
    for heading in read("CHANGELOG.md"):gmatch("\n## ([^\n]*)") do
      local v, date = heading:match("^(%d+%.%d+%.%d+) %((%d%d%d%d%-%d%d%-%d%d)%)$")
      if v then
        newest = v
        break
      end
      -- above the newest release, only a section for what is not released yet
      assert.matches("unreleased", heading:lower(), 1, true)
    end
    assert.equal(VERSION, newest)
  end)

  it("is what tlsharden --version prints, with Lua's, LuaSec's and OpenSSL's", function()
    local code, out, err = run("--version")
    assert.equal(0, code)
    assert.equal("", err)
    local ssl = require "ssl"
    assert.equal(("tlsharden %s\n%s\nLuaSec %s\n%s\n"):format(VERSION, _VERSION, ssl._VERSION,
      tlsharden.openssl_version), out)
    code, out = run("--version", "--json")
    assert.equal(0, code)
    assert.same({ tlsharden = VERSION, lua = _VERSION, luasec = ssl._VERSION, openssl = tlsharden.openssl_version },
      require("tlsharden.json").decode(out))
  end)
end)

describe("the source rock #truth", function()
  -- tmp holds the rock (out/) and the tree (tree/); rock and tree are set
  -- once the step that makes them passed
  local tmp, rock, tree
  local lua_dir, lib_dir

  setup(function()
    tmp = sh.run("mktemp -d"):gsub("%s+$", "")
    assert.matches("^/", tmp)
    lua_dir = tmp .. "/tree/share/lua/" .. LUA_VERSION
    lib_dir = tmp .. "/tree/lib/lua/" .. LUA_VERSION
  end)

  teardown(function()
    if tmp and tmp:find("^/") then sh.exec("rm -rf " .. sh.quote(tmp)) end
  end)

  -- Each step needs the one before; a failed step leaves rock or tree nil.
  local function need(what, value)
    assert(value, "an earlier step failed: no " .. what)
    return value
  end

  it("is made offline from the checkout: the rockspec and the archive it names", function()
    local out = sh.run(CLEAN_ENV .. "LUA=" .. LUA .. " timeout 120 sh scripts/make-rock.sh " .. sh.quote(tmp .. "/out"))
    local path = tmp .. "/out/tlsharden-" .. VERSION .. "-1.src.rock"
    assert.equal(path .. "\n", out)
    local listing = sh.run("unzip -Z1 " .. sh.quote(path))
    assert.equal(("tlsharden-%s-1.rockspec\ntlsharden-%s.tar.gz\n"):format(VERSION, VERSION), listing)
    -- the archive's one top folder is source.dir, and it holds the build's files
    local files = sh.run("unzip -p " .. sh.quote(path) .. " tlsharden-" .. VERSION .. ".tar.gz | tar tzf -")
    local tops = {}
    for top in files:gmatch("([^/\n]+)/[^\n]*\n") do tops[top] = true end
    assert.same({ ["tlsharden-" .. VERSION] = true }, tops)
    for _, f in ipairs { "src/core/core.c", "lua/tlsharden/init.lua", "lua/mod_tlsharden.lua", "bin/tlsharden",
        "tlsharden-" .. VERSION .. "-1.rockspec", "CHANGELOG.md" } do
      assert.truthy(("\n" .. files):find("\ntlsharden-" .. VERSION .. "/" .. f .. "\n", 1, true), f)
    end
    rock = path
  end)

  it("installs with luarocks into a fresh tree, LuaSec from the system", function()
    local ok, out = sh.exec(CLEAN_ENV .. "LUA=" .. LUA .. " timeout 600 sh scripts/luarocks.sh install --tree "
      .. sh.quote(tmp .. "/tree") .. " " .. sh.quote(need("rock", rock)))
    assert(ok, out)
    assert.matches("tlsharden " .. VERSION .. "-1 is now installed", out, 1, true)
    assert.is_true(sh.exec("test -x " .. sh.quote(tmp .. "/tree/bin/tlsharden")))
    assert.is_true(sh.exec("test -f " .. sh.quote(lib_dir .. "/tlsharden/core.so")))
    tree = tmp .. "/tree"
  end)

  it("runs tlsharden --version from the tree", function()
    local bin = need("tree", tree) .. "/bin/tlsharden"
    local ok, out = sh.exec("cd " .. sh.quote(tmp) .. " && " .. CLEAN_ENV .. sh.quote(bin) .. " --version")
    assert(ok, out)
    local _, here = run("--version")
    assert.equal(here, out)
    assert.matches("^tlsharden " .. VERSION:gsub("%.", "%%.") .. "\n", out)
  end)

  it("loads tlsharden, its core and its recorded clients from the tree", function()
    need("tree", tree)
    local script = ([[
      package.path = %q .. package.path
      package.cpath = %q .. package.cpath
      local t = require "tlsharden"
      local clients = require "tlsharden.scan.clients"
      print(t.VERSION)
      print(package.searchpath("tlsharden", package.path))
      print(package.searchpath("tlsharden.core", package.cpath))
      print(clients.dir())
      print(#clients.all())
      print(t.protocol("tlsv1_2+").min)
    ]]):format(lua_dir .. "/?.lua;" .. lua_dir .. "/?/init.lua;", lib_dir .. "/?.so;")
    local ok, out = sh.exec("cd " .. sh.quote(tmp) .. " && " .. CLEAN_ENV .. LUA .. " -e " .. sh.quote(script))
    assert(ok, out)
    local recorded = #sh.lines("ls lua/tlsharden/clients/*.hello")
    assert.is_true(recorded > 10)
    assert.equal(table.concat({
      VERSION,
      lua_dir .. "/tlsharden/init.lua",
      lib_dir .. "/tlsharden/core.so",
      lua_dir .. "/tlsharden/clients",
      tostring(recorded),
      "tlsv1_2",
    }, "\n") .. "\n", out)
  end)

  it("installs the Prosody plugin and every recording with its index", function()
    need("tree", tree)
    assert.equal(read("lua/mod_tlsharden.lua"), read(lua_dir .. "/mod_tlsharden.lua"))
    assert.equal(read("lua/tlsharden/clients/index"), read(lua_dir .. "/tlsharden/clients/index"))
    for _, f in ipairs(sh.lines("cd lua/tlsharden/clients && ls *.hello")) do
      assert.equal(read("lua/tlsharden/clients/" .. f), read(lua_dir .. "/tlsharden/clients/" .. f), f)
    end
  end)
end)
