--- tlsharden chain FILE: the checks of a certificate chain file.
local tlsharden = require "tlsharden"
local json = require "tlsharden.json"

return function(cli)
  local usage_error, integer_option = cli.usage_error, cli.integer_option
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  cli.command("chain", {
    summary = "check a certificate chain file: trust, expiry, strength, order, XMPP names",
    usage = "chain FILE [--host DOMAIN] [--service xmpp-client|xmpp-server] [--depth N] [--cafile F] [--key F]",
    options = { host = "value", service = "value", depth = "value", cafile = "value",
      capath = "value", key = "value", ["warn-days"] = "value" },
    help = [[FILE is a PEM file, leaf first. Problems of severity error (expired, untrusted,
  wrong host, weak key...) make the exit code 1; warnings (expires soon) do not.]],
    run = function(c)
      if #c.args ~= 1 then usage_error("chain needs exactly one FILE (see tlsharden chain --help)") end
      local r = cli.input(tlsharden.chain, c.args[1], {
        host = c.opts.host, service = c.opts.service, depth = integer_option(c.opts, "depth"),
        cafile = c.opts.cafile, capath = c.opts.capath, key = c.opts.key,
        warn_days = integer_option(c.opts, "warn-days"),
      })
      local failing = false
      for _, p in ipairs(r.problems) do failing = failing or p.severity == "error" end
      if c.json then
        for _, cert in ipairs(r.certs) do
          json.list(cert.dns_names) json.list(cert.srv_ids) json.list(cert.xmpp_addrs)
        end
        c.out.line(json.encode {
          command = "chain", file = c.args[1], ok = r.ok, trusted = r.trusted, depth = r.depth,
          count = r.count, certs = json.list(r.certs), problems = json.list(r.problems),
        })
      else
        local o = c.out
        local rows = { { "#", "subject", "issuer", "key", "signature", "not after", "days" } }
        for i, cert in ipairs(r.certs) do
          rows[#rows + 1] = { tostring(i), cert.subject or "", cert.issuer or "",
            ("%s %d"):format(cert.key_type or "?", cert.key_bits or 0), cert.signature_digest or "",
            cert.not_after or "", tostring(cert.days_left) }
        end
        o.columns(rows, function(row, _, cell) return row == 1 and o.paint("bold", cell) or cell end)
        o.line()
        o.line(("%d certificate%s, %d intermediate%s in the verified chain, %s"):format(
          r.count, r.count == 1 and "" or "s", r.depth, r.depth == 1 and "" or "s",
          r.trusted and "trusted" or "not trusted"))
        for _, p in ipairs(r.problems) do
          local colour = p.severity == "error" and "red" or "yellow"
          o.line(o.paint(colour, ("%s: %s%s: %s"):format(p.severity, p.code,
            p.cert and (" (certificate " .. p.cert .. ")") or "", p.message)))
        end
        if #r.problems == 0 then o.line(o.paint("green", "ok: no problem found")) end
      end
      return failing and EXIT_FINDING or EXIT_OK
    end,
  })
end
