--- Shell commands from specs. Under the sanitizer suite the Lua process runs
-- with the ASan runtime preloaded; child processes (openssl, prosody) must
-- not inherit that, so every command goes through here.
local sh = {}

local prefix = ""
if os.getenv("TLSHARDEN_SANITIZED") then
  prefix = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u TLSHARDEN_SANITIZED "
end

function sh.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The command line as it will run (with the sanitizer variables removed).
function sh.command(cmd)
  return prefix .. "sh -c " .. sh.quote(cmd)
end

--- Run cmd; return ok, output (stdout and stderr together), exit code.
function sh.exec(cmd)
  local p = assert(io.popen(sh.command(cmd) .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  return ok == true, out, code
end

--- Run cmd; raise with its output when it fails; return the output.
function sh.run(cmd)
  local ok, out, code = sh.exec(cmd)
  if not ok then error(("command failed (%s): %s\n%s"):format(tostring(code), cmd, out), 2) end
  return out
end

--- Lines printed by cmd (stdout only).
function sh.lines(cmd)
  local p = assert(io.popen(sh.command(cmd)))
  local t = {}
  for line in p:lines() do t[#t + 1] = line end
  p:close()
  return t
end

return sh
