--- tlsharden protocol SPEC: a protocol setting and the versions it allows.
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"

return function(cli)
  local usage_error, integer_option = cli.usage_error, cli.integer_option
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  cli.command("protocol", {
    summary = "parse a protocol setting and show the version range it allows",
    usage = "protocol SPEC [--floor VERSION|none]",
    options = { floor = "value" },
    help = [[SPEC is any form Prosody, LuaSec, fast_tls or OTP use: "tlsv1_2+", "tlsv1_2",
  "sslv23", "TLSv1.2:TLSv1.3", "tlsv1_2-tlsv1_3". A range below the floor
  (default tlsv1_2) is reported as an error-severity problem (exit 1).]],
    run = function(c)
      if #c.args ~= 1 then usage_error("protocol needs exactly one SPEC (see tlsharden protocol --help)") end
      local floor = c.opts.floor
      if floor == "none" then floor = false end
      local p = cli.input(tlsharden.protocol, c.args[1], { floor = floor, allow_insecure = true })
      local problems = json.list()
      if p.insecure then
        problems[1] = { severity = "error", code = "PROTOCOL_BELOW_FLOOR", message = p.warning }
      end
      if c.json then
        c.out.line(json.encode {
          command = "protocol", spec = c.args[1], min = p.min, max = p.max,
          versions = json.list(p.versions), unavailable = json.list(p.unavailable),
          luasec = { protocol = p.luasec.protocol, options = json.list(p.luasec.options) },
          floor = p.floor, insecure = p.insecure, problems = problems,
        })
      else
        local o = c.out
        o.columns {
          { "spec", c.args[1] },
          { "form", p.form },
          { "range", p.min .. " .. " .. (p.max or "newest") },
          { "versions", table.concat(p.versions, ", ") },
          { "unavailable", #p.unavailable > 0 and table.concat(p.unavailable, ", ") .. " (not in this OpenSSL)" or "-" },
          { "LuaSec", ("protocol = %q, options = { %s }"):format(p.luasec.protocol,
            table.concat(p.luasec.options, ", ")) },
        }
        o.line()
        if p.insecure then
          o.line(o.paint("red", "error: " .. p.warning))
        else
          o.line(o.paint("green", "ok: nothing below " .. (p.floor or "any floor")))
        end
      end
      return p.insecure and EXIT_FINDING or EXIT_OK
    end,
  })
end
