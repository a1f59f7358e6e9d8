# tlsharden: build in place, test, demo, install.
LUA         ?= lua5.4
LUA_PC      ?= lua5.4
PKG_CONFIG  ?= pkg-config
CC          ?= cc

# The C sources of tlsharden.core; the rockspec lists the same files
# (spec/build_spec.lua checks that they agree).
SRCS = src/core.c src/args.c src/protocol.c src/luasec.c src/options.c src/ciphers.c src/values.c src/merge.c src/settings.c src/harden.c src/inspect.c src/chain.c src/chain_source.c src/identity.c src/keys.c src/dns.c src/dns_parse.c src/dane.c src/suites.c src/groups.c src/hello.c src/hello_opts.c src/flight.c src/flight_messages.c
HDRS = src/tlsharden.h src/merge.h src/dns.h src/hello.h src/flight.h

WARN      = -std=c99 -Wall -Wextra -Werror -pedantic
DEFS      = -D_POSIX_C_SOURCE=200809L -DOPENSSL_API_COMPAT=30000 -DOPENSSL_NO_DEPRECATED
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LUA_PC) openssl 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null)
CFLAGS    ?= -O2 -g
ALL_CFLAGS = $(WARN) $(DEFS) $(PKG_CFLAGS) $(CFLAGS) -fPIC
SAN_FLAGS  = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

CORE      = build/tlsharden/core.so
CORE_ASAN = build/asan/tlsharden/core.so

.PHONY: all deps asan test valgrind demo install clean bench bench-smoke soak

all: $(CORE)

$(CORE): $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(ALL_CFLAGS) -shared -o $@ $(SRCS) $(PKG_LIBS)

asan: $(CORE_ASAN)

$(CORE_ASAN): $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(PKG_CFLAGS) $(SAN_FLAGS) -fPIC -shared -o $@ $(SRCS) $(PKG_LIBS)

deps:
	@sh scripts/install-deps.sh

# make test also builds the ThreadSanitizer program and the fuzz targets
# (clang and its libFuzzer runtime come from Debian).
TEST_PACKAGES = clang libclang-rt-14-dev

test:
	@sh scripts/install-deps.sh $(TEST_PACKAGES)
	@$(MAKE) --no-print-directory all asan build/threads fuzz-build
	@sh scripts/run-tests.sh

# The memory spec at full length for every function, the slow ones included
# (about half an hour); figures in docs/reliability.md.
soak: deps
	@$(MAKE) --no-print-directory all
	@LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;./?.lua;;" LUA_CPATH_5_4="./build/?.so;;" \
		TLSHARDEN_MEMORY_ITERATIONS=100000 TLSHARDEN_MEMORY_SLOW=100000 \
		busted --lua=$(LUA) --tags=memory spec/memory_spec.lua

# The specs under valgrind memcheck only.
valgrind: deps
	@$(MAKE) --no-print-directory all asan
	@TLSHARDEN_ONLY_VALGRIND=1 sh scripts/run-tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

install: deps
	@sh scripts/luarocks-make.sh $(LUAROCKS_FLAGS)

build/bench/hsload: bench/handshake/hsload.c
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(PKG_CFLAGS) -O2 -o $@ bench/handshake/hsload.c $(PKG_LIBS)

# Every benchmark, briefly: a smoke test that they run (no timing is judged).
bench-smoke: deps
	@$(MAKE) --no-print-directory all build/bench/hsload
	@$(LUA) bench/ciphers.lua 0.2 > /dev/null
	@$(LUA) bench/merge.lua 0.2 > /dev/null
	@$(LUA) bench/context.lua 0.3 > /dev/null
	@$(LUA) bench/audit.lua 10 > /dev/null
	@$(LUA) bench/wire.lua 0.2 > /dev/null
	@$(LUA) bench/scan.lua 1 > /dev/null
	@$(LUA) bench/survey.lua 20 8 --timeout 1 > /dev/null
	@$(LUA) bench/handshake/run.lua 50 2 > /dev/null
	@echo "bench-smoke: every benchmark ran"

# The full set; each one's output goes into docs/performance.md as its
# latest run (scripts/bench-doc.lua).
BENCH_DOC = $(LUA) scripts/bench-doc.lua
bench: deps
	@$(MAKE) --no-print-directory all build/bench/hsload
	$(LUA) bench/handshake/run.lua 3000 10 | $(BENCH_DOC) handshake docs/performance.md
	$(LUA) bench/ciphers.lua 3 | $(BENCH_DOC) ciphers docs/performance.md
	$(LUA) bench/merge.lua 3 | $(BENCH_DOC) merge docs/performance.md
	$(LUA) bench/context.lua 6 | $(BENCH_DOC) context docs/performance.md
	$(LUA) bench/audit.lua 1000 | $(BENCH_DOC) audit docs/performance.md
	$(LUA) bench/wire.lua 3 | $(BENCH_DOC) wire docs/performance.md
	$(LUA) bench/scan.lua 5 | $(BENCH_DOC) scan docs/performance.md
	$(LUA) bench/survey.lua 1000 32 | $(BENCH_DOC) survey docs/performance.md

clean:
	rm -rf build

# Fuzzing (clang + libFuzzer): one binary per driver in fuzz/drivers/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_TARGETS  = $(basename $(notdir $(wildcard fuzz/drivers/*.lua)))
FUZZ_FLAGS    = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: fuzz fuzz-build
fuzz-build: $(addprefix build/fuzz/,$(FUZZ_TARGETS))

build/fuzz/%: fuzz/fuzz_lua.c fuzz/drivers/%.lua $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(DEFS) $(PKG_CFLAGS) $(FUZZ_FLAGS) -DFUZZ_DRIVER='"fuzz/drivers/$*.lua"' \
		-o $@ fuzz/fuzz_lua.c $(SRCS) $(shell $(PKG_CONFIG) --libs $(LUA_PC)) $(PKG_LIBS)

fuzz:
	@sh scripts/install-deps.sh clang libclang-rt-14-dev
	@$(MAKE) --no-print-directory fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Two Lua states in two threads under ThreadSanitizer (spec/threads/).
THREADS_FLAGS = -g -O1 -fsanitize=thread
build/threads: spec/threads/threads.c $(SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	@$(CC) $(WARN) $(DEFS) $(PKG_CFLAGS) $(THREADS_FLAGS) -pthread -o $@ spec/threads/threads.c \
		$(SRCS) $(shell $(PKG_CONFIG) --libs $(LUA_PC)) $(PKG_LIBS)

.PHONY: threads
threads: build/threads
	@sh scripts/threads.sh
