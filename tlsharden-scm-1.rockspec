rockspec_format = "3.0"
package = "tlsharden"
version = "scm-1"

source = {
  url = "file://.",
}

description = {
  summary = "Hard-to-get-wrong TLS for LuaSec servers such as Prosody",
  detailed = [[
tlsharden parses protocol floors, merges layered TLS options the way Prosody
does, hardens and inspects real LuaSec contexts, checks certificate chains
and forward secrecy, and grades the result.
]],
  license = "MIT",
}

dependencies = {
  "lua >= 5.2, < 5.5",
  "luasec",
}

external_dependencies = {
  OPENSSL = {
    header = "openssl/ssl.h",
    library = "ssl",
  },
  CRYPTO = {
    library = "crypto",
  },
}

build = {
  type = "builtin",
  modules = {
    ["tlsharden.core"] = {
      sources = { "src/core.c", "src/args.c", "src/protocol.c", "src/luasec.c", "src/options.c", "src/ciphers.c", "src/values.c", "src/merge.c", "src/settings.c", "src/harden.c", "src/inspect.c", "src/chain.c", "src/chain_source.c", "src/identity.c", "src/keys.c", "src/dns.c", "src/dns_parse.c", "src/dane.c", "src/suites.c", "src/groups.c", "src/hello.c", "src/hello_opts.c", "src/flight.c", "src/flight_messages.c" },
      libraries = { "ssl", "crypto" },
      incdirs = { "$(OPENSSL_INCDIR)" },
      libdirs = { "$(OPENSSL_LIBDIR)", "$(CRYPTO_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L", "OPENSSL_API_COMPAT=30000", "OPENSSL_NO_DEPRECATED" },
    },
    ["tlsharden"] = "lua/tlsharden/init.lua",
    ["tlsharden.cli"] = "lua/tlsharden/cli.lua",
    ["tlsharden.json"] = "lua/tlsharden/json.lua",
    ["tlsharden.errors"] = "lua/tlsharden/errors.lua",
    ["tlsharden.compat"] = "lua/tlsharden/compat.lua",
    ["tlsharden.profiles"] = "lua/tlsharden/profiles.lua",
    ["tlsharden.pipeline"] = "lua/tlsharden/pipeline.lua",
    ["tlsharden.facts"] = "lua/tlsharden/facts.lua",
    ["tlsharden.grade"] = "lua/tlsharden/grade.lua",
    ["tlsharden.audit"] = "lua/tlsharden/audit.lua",
    ["tlsharden.prosodycfg"] = "lua/tlsharden/prosodycfg.lua",
    ["tlsharden.certmanager"] = "lua/tlsharden/certmanager.lua",
    ["tlsharden.commands.protocol"] = "lua/tlsharden/commands/protocol.lua",
    ["tlsharden.commands.ciphers"] = "lua/tlsharden/commands/ciphers.lua",
    ["tlsharden.commands.chain"] = "lua/tlsharden/commands/chain.lua",
    ["tlsharden.commands.audit"] = "lua/tlsharden/commands/audit.lua",
    ["tlsharden.commands.survey"] = "lua/tlsharden/commands/survey.lua",
    ["tlsharden.commands.report"] = "lua/tlsharden/commands/report.lua",
    ["tlsharden.dns"] = "lua/tlsharden/dns.lua",
    ["tlsharden.dane"] = "lua/tlsharden/dane.lua",
    ["tlsharden.xmpp"] = "lua/tlsharden/xmpp.lua",
    ["tlsharden.scan.net"] = "lua/tlsharden/scan/net.lua",
    ["tlsharden.scan.probe"] = "lua/tlsharden/scan/probe.lua",
    ["tlsharden.scan.sock"] = "lua/tlsharden/scan/sock.lua",
    ["tlsharden.scan.observe"] = "lua/tlsharden/scan/observe.lua",
    ["tlsharden.scan.endpoint"] = "lua/tlsharden/scan/endpoint.lua",
    ["tlsharden.scan"] = "lua/tlsharden/scan.lua",
    ["tlsharden.commands.scan"] = "lua/tlsharden/commands/scan.lua",
    ["tlsharden.survey"] = "lua/tlsharden/survey.lua",
    ["tlsharden.survey.list"] = "lua/tlsharden/survey/list.lua",
    ["tlsharden.survey.results"] = "lua/tlsharden/survey/results.lua",
    ["tlsharden.survey.progress"] = "lua/tlsharden/survey/progress.lua",
    ["tlsharden.report"] = "lua/tlsharden/report.lua",
    ["tlsharden.report.markdown"] = "lua/tlsharden/report/markdown.lua",
    ["tlsharden.report.html"] = "lua/tlsharden/report/html.lua",
    ["tlsharden.report.svg"] = "lua/tlsharden/report/svg.lua",
    ["tlsharden.report.assets"] = "lua/tlsharden/report/assets.lua",
    ["tlsharden.prosody.plugin_layers"] = "lua/tlsharden/prosody/plugin_layers.lua",
    ["tlsharden.prosody.plugin_dh"] = "lua/tlsharden/prosody/plugin_dh.lua",
    ["tlsharden.prosody.plugin_judging"] = "lua/tlsharden/prosody/plugin_judging.lua",
    ["mod_tlsharden"] = "lua/mod_tlsharden.lua",
  },
  install = {
    bin = { tlsharden = "bin/tlsharden" },
  },
}
