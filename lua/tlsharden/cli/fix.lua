--- tlsharden fix: the edit of a Prosody configuration that the audit asks
-- for, as a unified diff, or written (with a backup) once the new file
-- loads in the installed Prosody and audits clean.
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"
local diff = require "tlsharden.diff"
local errors = require "tlsharden.errors"

return function(cli)
  local usage_error = cli.usage_error
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  local function shorten(s, n)
    s = tostring(s or ""):gsub("%s+", " ")
    if #s > n then s = s:sub(1, n - 3) .. "..." end
    return s
  end

  local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

  local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local data = f:read("*a")
    f:close()
    return data
  end

  local function write(path, data)
    local f, err = io.open(path, "wb")
    if not f then return nil, err end
    local ok, werr = f:write(data)
    local cok, cerr = f:close()
    if not ok then return nil, werr end
    if not cok then return nil, cerr end
    return true
  end

  -- The first free backup name: FILE.bak, else FILE.bak.1, FILE.bak.2, ...
  local function backup_name(path)
    local name = path .. ".bak"
    local n = 0
    while read(name) ~= nil do
      n = n + 1
      name = ("%s.bak.%d"):format(path, n)
    end
    return name
  end

  -- The installed Prosody's own check of the configuration: ok, how, output.
  local function prosody_check(path, prosodyctl)
    local cmd = prosodyctl
    if not cmd then
      local p = io.popen("command -v prosodyctl 2>/dev/null")
      cmd = p and p:read("*l")
      if p then p:close() end
      if not cmd or cmd == "" then
        return true, "prosodyctl was not found: checked by tlsharden's own loader only"
      end
    end
    -- prosodyctl changes its directory: the path must be absolute
    if path:sub(1, 1) ~= "/" then
      local pwd = io.popen("pwd")
      local dir = pwd and pwd:read("*l")
      if pwd then pwd:close() end
      if dir then path = dir .. "/" .. path end
    end
    local p = io.popen(("timeout 60 %s --config %s check config 2>&1; echo \"exit $?\""):format(
      shell_quote(cmd), shell_quote(path)))
    local out = p and p:read("*a") or ""
    if p then p:close() end
    local code = tonumber(out:match("exit (%d+)%s*$"))
    out = out:gsub("exit %d+%s*$", "")
    return code == 0, ("%s --config %s check config"):format(cmd, path), out
  end

  local function fail(fmt, ...)
    error(errors.new("input", "fix", "", fmt:format(...)), 0)
  end

  -- The lines of a check's output that another output lacks (blank lines
  -- and spacing aside).
  local function new_lines(out, before)
    local seen, list = {}, {}
    for line in (before or ""):gmatch("[^\n]+") do seen[(line:gsub("%s+", " "))] = true end
    for line in out:gmatch("[^\n]+") do
      local l = line:gsub("%s+", " ")
      if l:find("%S") and not seen[l] then list[#list + 1] = (l:gsub("^ ", "")) end
    end
    return list
  end

  -- Write the fixed files (each after a backup), check them with Prosody,
  -- and audit them again; anything wrong puts every original back. The
  -- check must pass, or find nothing the original did not (Prosody's
  -- check also speaks of things no TLS setting touches).
  local function write_fix(result, opts, prosodyctl)
    local ok0, _, out0 = prosody_check(result.file, prosodyctl)
    for _, f in ipairs(result.files) do
      local h = io.open(f.path, "ab")
      if not h then fail("cannot write %s: nothing written", errors.quote(f.path)) end
      h:close()
      if read(f.path) ~= f.before then fail("%s changed while it was being fixed: nothing written", f.path) end
    end
    local written, backups = {}, {}
    local function undo()
      for _, f in ipairs(written) do write(f.path, f.before) end
      for _, b in ipairs(backups) do os.remove(b) end
    end
    for _, f in ipairs(result.files) do
      local b = backup_name(f.path)
      local ok, err = write(b, f.before)
      if not ok then undo() fail("cannot write the backup %s: %s; nothing written", b, tostring(err)) end
      backups[#backups + 1] = b
      f.backup = b
    end
    for _, f in ipairs(result.files) do
      local ok, err = write(f.path, f.after)
      written[#written + 1] = f
      if not ok then undo() fail("cannot write %s: %s; nothing written", f.path, tostring(err)) end
    end
    local ok, how, out = prosody_check(result.file, prosodyctl)
    result.checked_by = how
    if not ok then
      local fresh = new_lines(out, out0)
      if ok0 or #fresh > 0 then
        undo()
        fail("the fixed configuration does not pass %s; nothing written: %s", how,
          shorten(table.concat(#fresh > 0 and fresh or { out }, " / "), 400))
      end
      result.checked_by = how .. " (it finds what it found before the fix, nothing new)"
    end
    local again_ok, again = pcall(tlsharden.fix, result.file, opts)
    if not again_ok or #again.files > 0 then
      undo()
      fail("the written configuration does not audit clean (%s); nothing written",
        again_ok and "fix would change it again" or shorten(errors.is(again) and again.message or again, 200))
    end
    result.written = true
  end

  cli.command("fix", {
    summary = "the smallest edit of a Prosody configuration after which the audit finds no error",
    usage = "fix CONFIG [--profile intermediate|modern|hardened] [--write] [--prosody 0.12|13]"
      .. " [--prosodyctl PATH] [--cafile F] [--capath D] [--with-env]",
    options = { profile = "value", write = "flag", prosody = "value", prosodyctl = "value", cafile = "value",
      capath = "value", ["with-env"] = "flag", guide = "value" },
    help = [[Audits CONFIG (docs/reference/audit.md), changes what the audit blames on a
  setting the admin wrote (an ssl table at any level, the policy options) and
  audits again until nothing is left to change; everything else stays byte for
  byte. Prints the change as a unified diff on stdout and why on stderr.
  --write writes it, after a backup (FILE.bak), once `prosodyctl check config`
  (PATH from --prosodyctl, else the one installed) passes and the written file
  audits clean; otherwise nothing is written. Exit 0: nothing to change (or
  written) and nothing left; 1: a change to make, or problems no setting can
  solve (a certificate); 2: an error, nothing written.]],
    run = function(c)
      if #c.args ~= 1 then usage_error("fix takes one CONFIG file") end
      local env
      if c.opts["with-env"] then
        env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })
      end
      local opts = { profile = c.opts.profile, prosody = c.opts.prosody, cafile = c.opts.cafile,
        capath = c.opts.capath, guide = c.opts.guide, env = env }
      local result = cli.input(tlsharden.fix, c.args[1], opts)
      if c.opts.write and #result.files > 0 then write_fix(result, opts, c.opts.prosodyctl) end
      local changed = #result.files > 0 and not result.written
      local code = (changed or #result.left > 0) and EXIT_FINDING or EXIT_OK
      if c.json then
        local files = json.list()
        for _, f in ipairs(result.files) do
          files[#files + 1] = { path = f.path, diff = diff.unified(f.before, f.after, f.path, f.path),
            backup = f.backup }
        end
        c.out.line(json.encode {
          command = "fix", file = result.file, profile = result.profile, prosody = result.prosody,
          grade = result.grade, changes = json.list(result.changes), left = json.list(result.left),
          files = files, written = result.written == true, checked_by = result.checked_by,
        })
        return code
      end
      if not result.written then
        for _, f in ipairs(result.files) do c.out.stream:write(diff.unified(f.before, f.after, f.path, f.path)) end
        -- the diff before the summary where both reach one terminal
        if c.out.stream.flush then c.out.stream:flush() end
      end
      local e = c.err
      e.line(("tlsharden fix of %s (Prosody %s, profile %s): %d change%s, grade %s -> %s"):format(
        result.file, result.prosody, result.profile, #result.changes, #result.changes == 1 and "" or "s",
        result.grade.before or "-", result.grade.after or "-"))
      for _, ch in ipairs(result.changes) do
        local what = ch.before and ch.after and (ch.before .. " -> " .. ch.after)
          or ch.before and ("removes " .. ch.before) or ("adds " .. tostring(ch.after))
        e.line(("  %s:%d  %s%s"):format(ch.file, ch.line, ch.layer and (ch.layer .. ": ") or "", shorten(what, 120)))
        e.line("      " .. shorten(ch.reason, 150))
      end
      if #result.left > 0 then
        e.line("left (no setting fix can change solves these):")
        for _, l in ipairs(result.left) do
          e.line(("  %s: %s %s: %s"):format(l.where, l.severity, l.code, shorten(l.message, 150)))
        end
      end
      if result.written then
        for _, f in ipairs(result.files) do e.line(("written: %s (backup %s)"):format(f.path, f.backup)) end
        e.line("checked by " .. result.checked_by)
      elseif #result.files > 0 then
        e.line("nothing written: run again with --write to write it (a backup is kept)")
      end
      return code
    end,
  })
end
