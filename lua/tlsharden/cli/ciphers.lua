--- tlsharden ciphers STRING: a cipher string expanded by OpenSSL and classified.
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"

return function(cli)
  local usage_error, integer_option = cli.usage_error, cli.integer_option
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  local function suite_rows(suites)
    local rows = { { "suite", "IANA", "min", "kx", "auth", "encryption", "bits", "mac", "FS", "weak" } }
    for _, su in ipairs(suites) do
      rows[#rows + 1] = { su.name, su.iana, su.protocol, su.kx, su.auth, su.encryption,
        tostring(su.bits), su.mac, su.fs and "yes" or "NO", table.concat(su.weak, ",") }
    end
    return rows
  end
  cli.suite_rows = suite_rows

  cli.command("ciphers", {
    summary = "expand a cipher string with OpenSSL and classify every suite",
    usage = "ciphers STRING [--ciphersuites S] [--protocol P] [--seclevel N] [--strict]",
    options = { ciphersuites = "value", protocol = "value", seclevel = "value", strict = "flag" },
    help = [[Lists the suites a server with these settings would offer, in preference
  order, with key exchange, forward secrecy and weaknesses. Suites without
  forward secrecy or with a weakness are problems of severity error (exit 1).]],
    run = function(c)
      if #c.args ~= 1 then usage_error("ciphers needs exactly one STRING (see tlsharden ciphers --help)") end
      local r = cli.input(tlsharden.ciphers, c.args[1], {
        ciphersuites = c.opts.ciphersuites, protocol = c.opts.protocol,
        seclevel = integer_option(c.opts, "seclevel"), strict = c.opts.strict or nil,
      })
      local problems = json.list()
      if r.non_fs_count > 0 then
        problems[#problems + 1] = { severity = "error", code = "NO_FORWARD_SECRECY",
          message = ("%d of %d suites have no forward secrecy: %s"):format(r.non_fs_count, r.count,
            table.concat(r.non_fs, ", ")) }
      end
      for _, w in ipairs(r.weak) do
        problems[#problems + 1] = { severity = "error", code = "WEAK_SUITE",
          message = ("%s: %s"):format(w.name, table.concat(w.reasons, ", ")) }
      end
      if c.json then
        for _, su in ipairs(r.suites) do json.list(su.weak) end
        c.out.line(json.encode {
          command = "ciphers", spec = r.spec, forward_secrecy = r.forward_secrecy, count = r.count, fs_count = r.fs_count,
          seclevel = r.seclevel, suites = json.list(r.suites), non_fs = json.list(r.non_fs),
          problems = problems,
        })
      else
        local o = c.out
        o.columns(suite_rows(r.suites), function(row, col, cell)
          if row == 1 then return o.paint("bold", cell) end
          if col == 9 and cell == "NO" then return o.paint("red", cell) end
          if col == 10 and cell ~= "" then return o.paint("red", cell) end
          return cell
        end)
        o.line()
        o.line(("%d suites, forward secrecy: %s (%d of %d), security level %d"):format(
          r.count, r.forward_secrecy, r.fs_count, r.count, r.seclevel))
        for _, p in ipairs(problems) do o.line(o.paint("red", "error: " .. p.message)) end
      end
      return #problems > 0 and EXIT_FINDING or EXIT_OK
    end,
  })
end
