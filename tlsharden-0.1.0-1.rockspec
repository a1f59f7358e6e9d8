rockspec_format = "3.0"
package = "tlsharden"
version = "0.1.0-1"

-- The release archive. The source rock (make rock) carries it beside this
-- file, so installing tlsharden-0.1.0-1.src.rock fetches nothing; only
-- `luarocks install` of this rockspec alone downloads it.
source = {
  url = "https://tlsharden.example/releases/tlsharden-0.1.0.tar.gz",
  dir = "tlsharden-0.1.0",
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
      sources = {
        "src/core/core.c", "src/core/args.c", "src/core/error.c", "src/core/owned.c", "src/core/push.c", "src/core/versions.c",
        "src/context/protocol.c", "src/context/luasec.c", "src/context/options.c", "src/context/harden.c",
        "src/context/harden_state.c", "src/context/harden_policy.c", "src/context/harden_report.c",
        "src/context/inspect.c", "src/context/keys.c", "src/context/answer.c",
        "src/merge/merge.c", "src/merge/settings.c", "src/merge/report.c",
        "src/judge/ciphers.c", "src/judge/values.c", "src/judge/chain.c", "src/judge/chain_source.c",
        "src/judge/identity.c",
        "src/wire/suites.c", "src/wire/groups.c", "src/wire/hello.c", "src/wire/hello_opts.c", "src/wire/flight.c",
        "src/wire/flight_messages.c", "src/wire/flight_result.c", "src/wire/records.c", "src/wire/session.c",
        "src/wire/hello_parse.c",
        "src/dns/dns.c", "src/dns/dns_parse.c", "src/dns/dane.c",
      },
      libraries = { "ssl", "crypto" },
      incdirs = { "$(OPENSSL_INCDIR)", "src" },
      libdirs = { "$(OPENSSL_LIBDIR)", "$(CRYPTO_LIBDIR)" },
      defines = { "_POSIX_C_SOURCE=200809L", "OPENSSL_API_COMPAT=30000", "OPENSSL_NO_DEPRECATED" },
    },
    ["tlsharden"] = "lua/tlsharden/init.lua",
    ["tlsharden.cli"] = "lua/tlsharden/cli.lua",
    ["tlsharden.json"] = "lua/tlsharden/json.lua",
    ["tlsharden.diff"] = "lua/tlsharden/diff.lua",
    ["tlsharden.errors"] = "lua/tlsharden/errors.lua",
    ["tlsharden.problems"] = "lua/tlsharden/problems.lua",
    ["tlsharden.context"] = "lua/tlsharden/context.lua",
    ["tlsharden.wire"] = "lua/tlsharden/wire.lua",
    ["tlsharden.protocols"] = "lua/tlsharden/protocols.lua",
    ["tlsharden.compat"] = "lua/tlsharden/compat.lua",
    ["tlsharden.profiles"] = "lua/tlsharden/profiles.lua",
    ["tlsharden.pipeline"] = "lua/tlsharden/pipeline.lua",
    ["tlsharden.facts"] = "lua/tlsharden/facts.lua",
    ["tlsharden.grade"] = "lua/tlsharden/grade.lua",
    ["tlsharden.prosody.audit"] = "lua/tlsharden/prosody/audit.lua",
    ["tlsharden.prosody.fix"] = "lua/tlsharden/prosody/fix.lua",
    ["tlsharden.prosody.source"] = "lua/tlsharden/prosody/source.lua",
    ["tlsharden.prosody.config"] = "lua/tlsharden/prosody/config.lua",
    ["tlsharden.prosody.model"] = "lua/tlsharden/prosody/model.lua",
    ["tlsharden.prosody.modules"] = "lua/tlsharden/prosody/modules.lua",
    ["tlsharden.cli.protocol"] = "lua/tlsharden/cli/protocol.lua",
    ["tlsharden.cli.ciphers"] = "lua/tlsharden/cli/ciphers.lua",
    ["tlsharden.cli.chain"] = "lua/tlsharden/cli/chain.lua",
    ["tlsharden.cli.audit"] = "lua/tlsharden/cli/audit.lua",
    ["tlsharden.cli.fix"] = "lua/tlsharden/cli/fix.lua",
    ["tlsharden.cli.survey"] = "lua/tlsharden/cli/survey.lua",
    ["tlsharden.cli.report"] = "lua/tlsharden/cli/report.lua",
    ["tlsharden.scan.dns"] = "lua/tlsharden/scan/dns.lua",
    ["tlsharden.scan.dnssec"] = "lua/tlsharden/scan/dnssec.lua",
    ["tlsharden.scan.dane"] = "lua/tlsharden/scan/dane.lua",
    ["tlsharden.scan.xmpp"] = "lua/tlsharden/scan/xmpp.lua",
    ["tlsharden.scan.net"] = "lua/tlsharden/scan/net.lua",
    ["tlsharden.scan.target"] = "lua/tlsharden/scan/target.lua",
    ["tlsharden.scan.discovery"] = "lua/tlsharden/scan/discovery.lua",
    ["tlsharden.scan.probe"] = "lua/tlsharden/scan/probe.lua",
    ["tlsharden.scan.vulns"] = "lua/tlsharden/scan/vulns.lua",
    ["tlsharden.scan.attacks"] = "lua/tlsharden/scan/attacks.lua",
    ["tlsharden.scan.sock"] = "lua/tlsharden/scan/sock.lua",
    ["tlsharden.scan.observe"] = "lua/tlsharden/scan/observe.lua",
    ["tlsharden.scan.endpoint"] = "lua/tlsharden/scan/endpoint.lua",
    ["tlsharden.scan.clients"] = "lua/tlsharden/scan/clients.lua",
    ["tlsharden.scan.simulate"] = "lua/tlsharden/scan/simulate.lua",
    ["tlsharden.scan"] = "lua/tlsharden/scan.lua",
    ["tlsharden.cli.scan"] = "lua/tlsharden/cli/scan.lua",
    ["tlsharden.survey"] = "lua/tlsharden/survey.lua",
    ["tlsharden.survey.list"] = "lua/tlsharden/survey/list.lua",
    ["tlsharden.survey.results"] = "lua/tlsharden/survey/results.lua",
    ["tlsharden.survey.progress"] = "lua/tlsharden/survey/progress.lua",
    ["tlsharden.observatory.badge"] = "lua/tlsharden/observatory/badge.lua",
    ["tlsharden.observatory.pages"] = "lua/tlsharden/observatory/pages.lua",
    ["tlsharden.observatory.policy"] = "lua/tlsharden/observatory/policy.lua",
    ["tlsharden.observatory.report"] = "lua/tlsharden/observatory/report.lua",
    ["tlsharden.observatory.service"] = "lua/tlsharden/observatory/service.lua",
    ["tlsharden.observatory.web"] = "lua/tlsharden/observatory/web.lua",
    ["tlsharden.report"] = "lua/tlsharden/report.lua",
    ["tlsharden.report.markdown"] = "lua/tlsharden/report/markdown.lua",
    ["tlsharden.report.html"] = "lua/tlsharden/report/html.lua",
    ["tlsharden.report.svg"] = "lua/tlsharden/report/svg.lua",
    ["tlsharden.report.assets"] = "lua/tlsharden/report/assets.lua",
    ["tlsharden.prosody.plugin_layers"] = "lua/tlsharden/prosody/plugin_layers.lua",
    ["tlsharden.prosody.plugin_dh"] = "lua/tlsharden/prosody/plugin_dh.lua",
    ["tlsharden.prosody.plugin_judging"] = "lua/tlsharden/prosody/plugin_judging.lua",
    ["tlsharden.prosody.plugin_metrics"] = "lua/tlsharden/prosody/plugin_metrics.lua",
    ["mod_tlsharden"] = "lua/mod_tlsharden.lua",
    ["mod_tlsharden_observatory"] = "lua/mod_tlsharden_observatory.lua",
  },
  install = {
    bin = { tlsharden = "bin/tlsharden" },
    -- the recorded ClientHellos (make record-hellos), beside tlsharden.scan.clients
    lua = {
      ["tlsharden.clients.index"] = "lua/tlsharden/clients/index",
      ["tlsharden.clients.chromium-c2s-direct"] = "lua/tlsharden/clients/chromium-c2s-direct.hello",
      ["tlsharden.clients.erlang-c2s-direct"] = "lua/tlsharden/clients/erlang-c2s-direct.hello",
      ["tlsharden.clients.erlang-c2s-starttls"] = "lua/tlsharden/clients/erlang-c2s-starttls.hello",
      ["tlsharden.clients.erlang-s2s-direct"] = "lua/tlsharden/clients/erlang-s2s-direct.hello",
      ["tlsharden.clients.erlang-s2s-starttls"] = "lua/tlsharden/clients/erlang-s2s-starttls.hello",
      ["tlsharden.clients.gio-c2s-direct"] = "lua/tlsharden/clients/gio-c2s-direct.hello",
      ["tlsharden.clients.gio-c2s-starttls"] = "lua/tlsharden/clients/gio-c2s-starttls.hello",
      ["tlsharden.clients.gnutls-c2s-direct"] = "lua/tlsharden/clients/gnutls-c2s-direct.hello",
      ["tlsharden.clients.gnutls-c2s-starttls"] = "lua/tlsharden/clients/gnutls-c2s-starttls.hello",
      ["tlsharden.clients.go-c2s-direct"] = "lua/tlsharden/clients/go-c2s-direct.hello",
      ["tlsharden.clients.go-c2s-starttls"] = "lua/tlsharden/clients/go-c2s-starttls.hello",
      ["tlsharden.clients.java-c2s-direct"] = "lua/tlsharden/clients/java-c2s-direct.hello",
      ["tlsharden.clients.java-c2s-starttls"] = "lua/tlsharden/clients/java-c2s-starttls.hello",
      ["tlsharden.clients.java-s2s-direct"] = "lua/tlsharden/clients/java-s2s-direct.hello",
      ["tlsharden.clients.java-s2s-starttls"] = "lua/tlsharden/clients/java-s2s-starttls.hello",
      ["tlsharden.clients.luasec-s2s-direct"] = "lua/tlsharden/clients/luasec-s2s-direct.hello",
      ["tlsharden.clients.luasec-s2s-starttls"] = "lua/tlsharden/clients/luasec-s2s-starttls.hello",
      ["tlsharden.clients.node-c2s-direct"] = "lua/tlsharden/clients/node-c2s-direct.hello",
      ["tlsharden.clients.node-c2s-starttls"] = "lua/tlsharden/clients/node-c2s-starttls.hello",
      ["tlsharden.clients.nss-c2s-direct"] = "lua/tlsharden/clients/nss-c2s-direct.hello",
      ["tlsharden.clients.openssl-c2s-direct"] = "lua/tlsharden/clients/openssl-c2s-direct.hello",
      ["tlsharden.clients.openssl-c2s-starttls"] = "lua/tlsharden/clients/openssl-c2s-starttls.hello",
      ["tlsharden.clients.openssl-s2s-direct"] = "lua/tlsharden/clients/openssl-s2s-direct.hello",
      ["tlsharden.clients.openssl-s2s-starttls"] = "lua/tlsharden/clients/openssl-s2s-starttls.hello",
      ["tlsharden.clients.python-c2s-direct"] = "lua/tlsharden/clients/python-c2s-direct.hello",
      ["tlsharden.clients.python-c2s-starttls"] = "lua/tlsharden/clients/python-c2s-starttls.hello",
    },
  },
}
