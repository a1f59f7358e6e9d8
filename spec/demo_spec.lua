-- make demo's script: the audit of the bundled example, then the same
-- configuration served by a real Prosody on 127.0.0.1 and scanned from
-- outside, with the vulnerability checks and the recorded clients; Prosody
-- is gone afterwards; then tlsharden fix's diff and the fixed copy's audit.
local sh = require "spec.helpers.sh"
local prosody = require "spec.helpers.prosody"

describe("make demo", function()
  if not prosody.installed() then
    pending("needs Debian's prosody (scripts/install-deps.sh installs it)")
    return
  end

  it("audits the example, serves it, scans both hosts and stops Prosody", function()
    local lua = "lua" .. _VERSION:match("%d+%.%d+")
    local ok, out = sh.exec(("cd %s && LUA=%s sh scripts/demo.sh 2>&1"):format(sh.quote(prosody.root), lua))
    assert(ok, out)
    assert.matches("$ tlsharden audit examples/prosody.cfg.lua", out, 1, true)
    assert.matches("legacy.example.net  grade B", out, 1, true)
    -- the audit answers offline which recorded clients each service serves
    assert.matches("recorded clients %(c2s STARTTLS%): all %d+ connect", out)
    for _, host in ipairs { "chat.example.org", "legacy.example.net" } do
      assert.matches("c2s STARTTLS " .. host .. " 127.0.0.1:%d+\n  status ok, grade A%+", out)
    end
    assert.matches("vulnerabilities:", out, 1, true)
    assert.matches("clients (recorded hellos replayed):", out, 1, true)
    assert.matches("java%-c2s%-starttls .- TLS 1%.3 TLS_", out)
    -- the demo's Prosody runs with a configuration of its own: none is left
    -- then the fix: the diff, written, and the fixed file audited again
    local fix_at = assert(out:find("$ tlsharden fix examples/prosody.cfg.lua", 1, true))
    local after = out:sub(fix_at)
    assert.matches('\n%-\t\tprotocol = "sslv23";\n%+\t\tprotocol = "tlsv1_2%+";\n', after)
    assert.matches("5 changes, grade B %-> A%+", after)
    assert.matches("written: prosody.cfg.lua (backup prosody.cfg.lua.bak)", after, 1, true)
    assert.matches("legacy.example.net  grade A+", after, 1, true)
    assert.matches("overall grade A+", after, 1, true)
    local left = select(2, sh.exec("pgrep -f '[p]rosody --config .*/serve[.]cfg[.]lua' || true")):gsub("%s", "")
    assert.equal("", left, "a Prosody was left running")
  end)
end)
