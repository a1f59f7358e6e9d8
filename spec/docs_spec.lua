-- The documentation holds together: every relative link of README.md,
-- bench/README.md and docs/**/*.md points to a file that exists, and its
-- anchor (if any) to a heading of that file; no page is over 600 lines;
-- every public function of tlsharden, tlsharden.context and tlsharden.wire
-- is documented in docs/reference/ (named in a heading or in the first
-- cell of a table row).
local tlsharden = require "tlsharden"
local context = require "tlsharden.context"
local wire = require "tlsharden.wire"

local MAX_LINES = 600

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return os.execute("test -e '" .. path:gsub("'", "'\\''") .. "'") == true
end

local function lines_of(text)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  if out[#out] == "" then out[#out] = nil end
  return out
end

-- Every Markdown file of the documentation, sorted.
local function doc_files()
  local files = { "README.md", "bench/README.md" }
  local p = assert(io.popen("find docs -name '*.md' | sort"))
  for path in p:lines() do files[#files + 1] = path end
  p:close()
  return files
end

local function dir_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- "a/b/../c/./d" -> "a/c/d"
local function normalise(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." and #parts > 0 and parts[#parts] ~= ".." then
      parts[#parts] = nil
    elseif part ~= "." then
      parts[#parts + 1] = part
    end
  end
  return table.concat(parts, "/")
end

-- The lines of a Markdown text outside fenced code blocks, each with its
-- number.
local function prose_lines(text)
  local out, fenced = {}, false
  for n, line in ipairs(lines_of(text)) do
    if line:find("^%s*```") or line:find("^%s*~~~") then
      fenced = not fenced
    elseif not fenced then
      out[#out + 1] = { n = n, line = line }
    end
  end
  return out
end

-- The anchor GitHub gives a heading: formatting dropped, lower case,
-- everything but letters, digits, spaces, '-' and '_' removed, spaces as
-- '-'; a repeated anchor gets -1, -2, ...
local function slug(heading)
  local s = heading:gsub("%[([^%]]*)%]%([^)]*%)", "%1"):gsub("[`*]", "")
  s = s:lower():gsub("[^%w%s%-_\128-\255]", ""):gsub("%s", "-")
  return s
end

local anchors_cache = {}
local function anchors_of(path)
  if anchors_cache[path] then return anchors_cache[path] end
  local set, seen = {}, {}
  for _, l in ipairs(prose_lines(read(path))) do
    local heading = l.line:match("^#+%s+(.-)%s*#*%s*$")
    if heading then
      local s = slug(heading)
      if seen[s] then
        seen[s] = seen[s] + 1
        set[s .. "-" .. seen[s]] = true
      else
        seen[s] = 0
        set[s] = true
      end
    end
  end
  anchors_cache[path] = set
  return set
end

-- The relative links of a page: { n, target } for every [text](target)
-- and ![alt](target) outside code.
local function links_of(text)
  local out = {}
  for _, l in ipairs(prose_lines(text)) do
    local line = l.line:gsub("`[^`]*`", "")
    for target in line:gmatch("%]%(([^)%s]+)[^)]*%)") do
      if not target:find("^%a[%w+.-]*:") then out[#out + 1] = { n = l.n, target = target } end
    end
  end
  return out
end

--- The broken links of the page at path: a list of "path:line: why".
local function broken_links(path)
  local bad = {}
  for _, link in ipairs(links_of(read(path))) do
    local file, anchor = link.target:match("^([^#]*)#?(.*)$")
    local where = ("%s:%d: %s"):format(path, link.n, link.target)
    local resolved = file == "" and path or normalise(dir_of(path) .. "/" .. file)
    if not exists(resolved) then
      bad[#bad + 1] = where .. ": no such file " .. resolved
    elseif anchor ~= "" then
      if not resolved:find("%.md$") then
        bad[#bad + 1] = where .. ": an anchor into a file that is not Markdown"
      elseif not anchors_of(resolved)[anchor] then
        bad[#bad + 1] = where .. ": no heading #" .. anchor .. " in " .. resolved
      end
    end
  end
  return bad
end

-- Where the reference names things: its headings, and the first cell of
-- every table row.
local function reference_entries()
  local entries = {}
  local p = assert(io.popen("find docs/reference -name '*.md' | sort"))
  for path in p:lines() do
    for _, l in ipairs(prose_lines(read(path))) do
      local entry = l.line:match("^#+%s+(.*)$") or l.line:match("^|([^|]*)|")
      if entry then entries[#entries + 1] = entry end
    end
  end
  p:close()
  return entries
end

local function public_functions(module)
  local names = {}
  for name, value in pairs(module) do
    if type(value) == "function" then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

describe("the documentation", function()
  it("has links that lead somewhere: the file, and the heading of an anchor", function()
    local bad = {}
    for _, path in ipairs(doc_files()) do
      for _, b in ipairs(broken_links(path)) do bad[#bad + 1] = b end
    end
    assert.same({}, bad)
  end)

  it("is where the code, the help texts and the scripts say it is", function()
    local p = assert(io.popen("grep -rhoE 'docs/[A-Za-z0-9_/.-]+\\.md' lua src bin scripts bench Makefile CHANGELOG.md"
      .. " | sort -u"))
    local named = 0
    for path in p:lines() do
      named = named + 1
      assert.is_true(exists(path), path .. " is named in the code but does not exist")
    end
    p:close()
    assert.is_true(named > 10, "docs paths found: " .. named)
  end)

  it("has no page over " .. MAX_LINES .. " lines", function()
    local long = {}
    for _, path in ipairs(doc_files()) do
      local n = #lines_of(read(path))
      if n > MAX_LINES then long[#long + 1] = ("%s: %d lines"):format(path, n) end
    end
    assert.same({}, long)
  end)

  it("documents every public function of tlsharden, tlsharden.context and tlsharden.wire in docs/reference/", function()
    local entries = reference_entries()
    local function documented(prefixes, name)
      for _, entry in ipairs(entries) do
        for _, prefix in ipairs(prefixes) do
          local at = 1
          while true do
            local s, e = entry:find(prefix .. name, at, true)
            if not s then break end
            -- the whole name: not a part of a longer one
            if not entry:sub(e + 1, e + 1):find("^[%w_]") and not entry:sub(s - 1, s - 1):find("^[%w_]") then
              return true
            end
            at = e + 1
          end
        end
      end
      return false
    end
    local missing = {}
    local modules = {
      { "tlsharden", tlsharden, { "tlsharden." } },
      { "tlsharden.context", context, { "tlsharden.context.", "context." } },
      { "tlsharden.wire", wire, { "tlsharden.wire.", "wire." } },
    }
    for _, m in ipairs(modules) do
      local names = public_functions(m[2])
      assert.is_true(#names > 0, m[1] .. " has no function")
      for _, name in ipairs(names) do
        if not documented(m[3], name) then missing[#missing + 1] = m[1] .. "." .. name end
      end
    end
    assert.same({}, missing)
  end)

  it("reads its own rules right: slugs, relative paths and code left out", function()
    assert.equal("the-error-rule", slug("The error rule"))
    assert.equal("tlshardenversions", slug("tlsharden.versions"))
    assert.equal("contexts-luasecs-and-prosody-13s-context-objects",
      slug("Contexts: LuaSec's, and Prosody 13's context objects"))
    assert.equal("dns_query-and-dns_parse", slug("`dns_query` and dns_parse"))
    assert.equal("docs/guide/x.md", normalise("docs/reference/../guide/./x.md"))
    local links = links_of("[a](b.md#c) `[x](code.md)` [web](https://example.org)\n```\n[y](in-a-block.md)\n```\n")
    assert.same({ { n = 1, target = "b.md#c" } }, links)
  end)
end)
