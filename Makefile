# tlsharden: build in place, test, demo, install.
# LUA picks the Lua: 5.4 (the default), 5.3 or 5.2, also spelt lua5.3.
LUA         ?= 5.4
LUA_V       := $(patsubst lua%,%,$(notdir $(LUA)))
LUA_BIN     := lua$(LUA_V)
LUA_PC      ?= lua$(LUA_V)
PKG_CONFIG  ?= pkg-config
CC          ?= cc

# The C sources of tlsharden.core, one folder per job (docs/architecture.md);
# the rockspec lists the same files (spec/build_spec.lua checks that they
# agree). Every file includes its headers by their path under src/.
SRCS = src/core/core.c src/core/args.c src/core/error.c src/core/owned.c src/core/push.c src/core/versions.c \
       src/context/protocol.c src/context/luasec.c src/context/options.c src/context/harden.c \
       src/context/harden_state.c src/context/harden_policy.c src/context/harden_report.c \
       src/context/inspect.c src/context/keys.c src/context/answer.c \
       src/merge/merge.c src/merge/settings.c src/merge/report.c \
       src/judge/ciphers.c src/judge/values.c src/judge/chain.c src/judge/chain_source.c \
       src/judge/identity.c \
       src/wire/suites.c src/wire/groups.c src/wire/hello.c src/wire/hello_opts.c src/wire/flight.c \
       src/wire/flight_messages.c src/wire/flight_result.c src/wire/records.c src/wire/session.c \
       src/wire/hello_parse.c \
       src/dns/dns.c src/dns/dns_parse.c src/dns/dane.c
HDRS = src/core/tlsharden.h src/core/compat.h src/context/harden.h src/merge/merge.h \
       src/wire/hello.h src/wire/flight.h src/wire/reader.h \
       src/dns/dns.h

WARN      = -std=c99 -Wall -Wextra -Werror -pedantic
DEFS      = -D_POSIX_C_SOURCE=200809L -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
INCS      = -Isrc
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null)
CFLAGS    ?= -O2 -g
SAN_FLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

# One core per Lua: 5.4's in build/, 5.3's and 5.2's in build/5.3/ and
# build/5.2/, each with its sanitizer build in asan/ below it.
OLDER_LUA = 5.2 5.3
BUILD     = $(if $(filter $(OLDER_LUA),$(LUA_V)),build/$(LUA_V),build)
CORE      = $(BUILD)/tlsharden/core.so
CORE_ASAN = $(BUILD)/asan/tlsharden/core.so
OLDER_CORES = $(OLDER_LUA:%=build/%/tlsharden/core.so)
OLDER_ASAN  = $(OLDER_LUA:%=build/%/asan/tlsharden/core.so)
# The compiler flags for Lua $(1) and OpenSSL (LUA_PC names the chosen Lua's
# pkg-config module).
lua_pc     = $(if $(filter $(1),$(LUA_V)),$(LUA_PC),lua$(1))
lua_cflags = $(shell $(PKG_CONFIG) --cflags $(call lua_pc,$(1)) openssl 2>/dev/null)
# The modules and this Lua's core from the checkout, for commands run here.
LUA_VU   = $(subst .,_,$(LUA_V))
IN_PLACE = LUA_PATH_$(LUA_VU)="./lua/?.lua;./lua/?/init.lua;./?.lua;;" LUA_CPATH_$(LUA_VU)="./$(BUILD)/?.so;;"

# The version, as the core has it (TH_VERSION); the release's rockspec and
# source rock carry it in their names.
VERSION := $(shell sed -n 's/^\#define TH_VERSION "\(.*\)"$$/\1/p' src/core/tlsharden.h)
ROCK     = build/tlsharden-$(VERSION)-1.src.rock

.PHONY: all deps asan test valgrind demo install rock install-rock clean bench bench-smoke soak record-hellos

all: $(CORE)

build/tlsharden/core.so: $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(INCS) $(call lua_cflags,5.4) $(CFLAGS) -fPIC -shared -o $@ $(SRCS) $(PKG_LIBS)

build/asan/tlsharden/core.so: $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(INCS) $(call lua_cflags,5.4) $(SAN_FLAGS) -fPIC -shared -o $@ $(SRCS) $(PKG_LIBS)

$(OLDER_CORES): build/%/tlsharden/core.so: $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(INCS) $(call lua_cflags,$*) $(CFLAGS) -fPIC -shared -o $@ $(SRCS) $(PKG_LIBS)

$(OLDER_ASAN): build/%/asan/tlsharden/core.so: $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(INCS) $(call lua_cflags,$*) $(SAN_FLAGS) -fPIC -shared -o $@ $(SRCS) $(PKG_LIBS)

asan: $(CORE_ASAN)

deps:
	@sh scripts/install-deps.sh

# make test on 5.4 also builds the cores for 5.2 and 5.3 (their release
# suites run too), the ThreadSanitizer program and the fuzz targets (clang
# and its libFuzzer runtime come from Debian). On 5.2 or 5.3 it builds that
# Lua's cores and 5.4's, which Prosody loads in the Prosody specs. NSS's
# tools, GIO's Python bindings and Java (Erlang comes with ejabberd) serve
# the real clients of spec/real_clients_spec.lua and spec/truth_spec.lua;
# its Go and Node.js clients are pending where those are missing (make
# record-hellos installs them). nsd serves the signed zone of
# spec/helpers/dnssec_zone.lua, which unbound-host, delv and dig (from
# bind9-dnsutils) and the scanner (lua-unbound, which scripts/install-deps.sh
# installs for every run) validate. The observatory's specs store through
# Prosody's mod_storage_sql on SQLite (lua-dbi-sqlite3); the scheduler's
# benchmark runs a cqueues backend beside it (lua-cqueues).
TEST_PACKAGES = clang libclang-rt-14-dev gnutls-bin chromium ejabberd libnss3-tools python3-gi gir1.2-glib-2.0 glib-networking openjdk-17-jdk-headless \
  nsd unbound-host bind9-dnsutils lua-dbi-sqlite3 lua-cqueues
TEST_BUILDS = $(if $(filter $(OLDER_LUA),$(LUA_V)),build/tlsharden/core.so,$(OLDER_CORES) build/threads fuzz-build)

test:
	@sh scripts/install-deps.sh $(TEST_PACKAGES)
	@$(MAKE) --no-print-directory all asan $(TEST_BUILDS)
	@LUA=$(LUA_BIN) sh scripts/run-tests.sh

# The memory spec at full length for every function, the slow ones included
# (about half an hour); figures in docs/internals/reliability.md.
soak: deps
	@$(MAKE) --no-print-directory all
	@$(IN_PLACE) TLSHARDEN_MEMORY_ITERATIONS=100000 TLSHARDEN_MEMORY_SLOW=100000 \
		busted --lua=$(LUA_BIN) --tags=memory spec/memory_spec.lua

# The specs under valgrind memcheck only.
valgrind: deps
	@$(MAKE) --no-print-directory all asan
	@LUA=$(LUA_BIN) TLSHARDEN_ONLY_VALGRIND=1 sh scripts/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@LUA=$(LUA_BIN) sh scripts/demo.sh

install: deps
	@LUA=$(LUA_BIN) sh scripts/luarocks.sh make $(LUAROCKS_FLAGS) tlsharden-scm-1.rockspec

# The source rock of the release (tlsharden-$(VERSION)-1.rockspec and the
# source archive it names) into build/, offline; install-rock builds and
# installs it with luarocks, as a user of the rock would.
rock:
	@LUA=$(LUA_BIN) sh scripts/make-rock.sh build

install-rock: deps rock
	@LUA=$(LUA_BIN) sh scripts/luarocks.sh install $(LUAROCKS_FLAGS) $(ROCK)

build/bench/hsload: bench/handshake/hsload.c
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(shell $(PKG_CONFIG) --cflags openssl) -O2 -o $@ bench/handshake/hsload.c $(PKG_LIBS)

# Every benchmark, briefly: a smoke test that they run (no timing is judged).
bench-smoke: deps
	@$(MAKE) --no-print-directory all build/bench/hsload
	@$(LUA_BIN) bench/ciphers.lua 0.2 > /dev/null
	@$(LUA_BIN) bench/merge.lua 0.2 > /dev/null
	@$(LUA_BIN) bench/context.lua 0.3 > /dev/null
	@$(LUA_BIN) bench/audit.lua 10 > /dev/null
	@$(LUA_BIN) bench/fix.lua 10 > /dev/null
	@$(LUA_BIN) bench/wire.lua 0.2 > /dev/null
	@$(LUA_BIN) bench/scan.lua 1 > /dev/null
	@$(LUA_BIN) bench/dnssec.lua 1 > /dev/null
	@$(LUA_BIN) bench/survey.lua 20 8 --timeout 1 > /dev/null
	@$(LUA_BIN) bench/handshake/run.lua 50 2 > /dev/null
	@$(LUA_BIN) bench/prosody_startup.lua 5 1 0.12 > /dev/null
	@$(LUA_BIN) bench/scheduler.lua --smoke > /dev/null
	@$(LUA_BIN) bench/observatory.lua --smoke > /dev/null
	@echo "bench-smoke: every benchmark ran"

# The full set; each one's output is kept as its latest run in
# build/bench/NAME.txt (scripts/bench-doc.lua). docs/performance.md holds
# the table of figures the documentation quotes; bench/README.md says how
# each benchmark measures.
BENCH_OUT = build/bench
BENCH_DOC = $(LUA_BIN) scripts/bench-doc.lua
bench: deps
	@$(MAKE) --no-print-directory all build/bench/hsload
	$(LUA_BIN) bench/handshake/run.lua 3000 10 | $(BENCH_DOC) handshake $(BENCH_OUT)
	$(LUA_BIN) bench/ciphers.lua 3 | $(BENCH_DOC) ciphers $(BENCH_OUT)
	$(LUA_BIN) bench/scheduler.lua 5 | $(BENCH_DOC) scheduler $(BENCH_OUT)
	$(LUA_BIN) bench/observatory.lua 15 100 | $(BENCH_DOC) observatory $(BENCH_OUT)
	$(LUA_BIN) bench/merge.lua 3 | $(BENCH_DOC) merge $(BENCH_OUT)
	$(LUA_BIN) bench/context.lua 6 | $(BENCH_DOC) context $(BENCH_OUT)
	$(LUA_BIN) bench/audit.lua 1000 | $(BENCH_DOC) audit $(BENCH_OUT)
	$(LUA_BIN) bench/fix.lua 1000 | $(BENCH_DOC) fix $(BENCH_OUT)
	$(LUA_BIN) bench/wire.lua 3 | $(BENCH_DOC) wire $(BENCH_OUT)
	$(LUA_BIN) bench/scan.lua 5 | $(BENCH_DOC) scan $(BENCH_OUT)
	$(LUA_BIN) bench/dnssec.lua 9 | $(BENCH_DOC) dnssec $(BENCH_OUT)
	$(LUA_BIN) bench/prosody_startup.lua 1000 3 | $(BENCH_DOC) prosody_startup $(BENCH_OUT)
	$(LUA_BIN) bench/survey.lua 1000 32 | $(BENCH_DOC) survey $(BENCH_OUT)

clean:
	rm -rf build

# The ClientHellos of real TLS stacks, recorded again over loopback into
# lua/tlsharden/clients/ (docs/reference/clients.md); the clients' packages
# are installed first where missing (as root).
RECORD_PACKAGES = openssl gnutls-bin libnss3-tools python3 python3-gi gir1.2-glib-2.0 glib-networking \
                  openjdk-17-jdk-headless erlang-base erlang-ssl chromium golang-go nodejs
record-hellos:
	@TLSHARDEN_PROSODY13=0 sh scripts/install-deps.sh $(RECORD_PACKAGES)
	@$(MAKE) --no-print-directory all
	@$(IN_PLACE) $(LUA_BIN) scripts/record-hellos.lua $(RECORD_FLAGS)

# Fuzzing (clang + libFuzzer): one binary per driver in fuzz/drivers/, on
# Lua 5.4, as the ThreadSanitizer program below.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_TARGETS  = $(basename $(notdir $(wildcard fuzz/drivers/*.lua)))
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: fuzz fuzz-build
fuzz-build: $(addprefix build/fuzz/,$(FUZZ_TARGETS))

build/fuzz/%: fuzz/fuzz_lua.c fuzz/drivers/%.lua $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(DEFS) $(INCS) $(call lua_cflags,5.4) $(FUZZ_FLAGS) -DFUZZ_DRIVER='"fuzz/drivers/$*.lua"' \
		-o $@ fuzz/fuzz_lua.c $(SRCS) $(shell $(PKG_CONFIG) --libs $(call lua_pc,5.4)) $(PKG_LIBS)

fuzz:
	@sh scripts/install-deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Two Lua states in two threads under ThreadSanitizer (spec/threads/).
THREADS_FLAGS = -g -O1 -fsanitize=thread
build/threads: spec/threads/threads.c $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(INCS) $(call lua_cflags,5.4) $(THREADS_FLAGS) -pthread -o $@ spec/threads/threads.c \
		$(SRCS) $(shell $(PKG_CONFIG) --libs $(call lua_pc,5.4)) $(PKG_LIBS)

.PHONY: threads
threads: build/threads
	@sh scripts/threads.sh
