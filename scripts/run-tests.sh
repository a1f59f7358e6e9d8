#!/bin/sh
# Run every test suite of tlsharden and print one closing line with the
# totals of all suites: "tests: N passed, N failed". LUA names the Lua
# (lua5.4 by default, lua5.3 or lua5.2; make test LUA=5.3 sets it) that runs
# the specs, each against the core built for it (build/ for 5.4, build/5.3/
# for 5.3, ...); Prosody and the peers the specs start run on their own Lua.
#   release     the specs against the normal build of tlsharden.core
#   asan+ubsan  the same specs against the AddressSanitizer+UBSan build,
#               but the comparisons with real peers (tag #truth)
#   valgrind    the same specs under valgrind memcheck (normal build),
#               but #truth;
#               skipped with TLSHARDEN_VALGRIND=0
#   memory      spec/memory_spec.lua (tag #memory): every function in a
#               long loop, heap and RSS must stay flat; runs alongside the
#               other suites on the second core; skipped with
#               TLSHARDEN_MEMORY=0
#   threads     two Lua states in two threads under ThreadSanitizer
#               (counts as one test)
#   bench-smoke every benchmark run briefly (counts as one test);
#               skipped with TLSHARDEN_BENCH_SMOKE=0
#   fuzz        every fuzz target for TLSHARDEN_FUZZ_SECONDS (default 20)
#               seconds (one test each), in the background while the
#               asan+ubsan suite runs; skipped with TLSHARDEN_FUZZ_SECONDS=0
#   release-5.3, release-5.2
#               on Lua 5.4 only: the release suite again (but #truth) on
#               each Lua in TLSHARDEN_OTHER_LUA (default "5.3 5.2"; empty
#               skips them),
#               in the background while valgrind runs, reported at the end
# On Lua 5.2 or 5.3, valgrind, threads and fuzz are left out: their
# programs link Lua 5.4 (make test runs them).
# A suite that dies before busted prints its summary, or that exits non-zero
# with no failing spec (a sanitizer or valgrind report), counts as one
# failure, so a run that executed nothing cannot pass.
set -u
cd "$(dirname "$0")/.."
LUA="${LUA:-lua5.4}"
version=$("$LUA" -e 'io.write((_VERSION:gsub("^Lua ", "")))') || exit 1
BUSTED="${BUSTED:-$(command -v busted)}"
SPECS="${SPECS:-spec}"
CC="${CC:-cc}"
passed=0
failed=0
# The suites' logs live under build/, out of reach of whatever tidies /tmp.
mkdir -p build
tmp=$(mktemp -d "$PWD/build/tests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

LPATH="./lua/?.lua;./lua/?/init.lua;./?.lua;;"
# build_dir V: where the core for Lua V is built.
build_dir() { if [ "$1" = 5.4 ]; then echo build; else echo "build/$1"; fi; }
# the Lua 5.4 processes specs start (helpers, Prosody's plugin) see 5.4's paths
export LUA_PATH_5_4="$LPATH"
vu=$(echo "$version" | tr . _)
export "LUA_PATH_$vu=$LPATH"
BUILD=$(build_dir "$version")

# busted NAME LOG TAGS CPATH [env VAR=value ...] [wrapper ...]: runs busted
# in-process on $lua (default $LUA) under the given wrapper (busted's own
# re-exec is switched off), output to LOG, exit status to LOG.rc.
lua=$LUA
busted_to() {
  name=$1; out=$2; tags=$3; cpath=$4; shift 4
  { "$@" "$lua" "$BUSTED" --ignore-lua --cpath="$cpath" --output=utfTerminal $tags $SPECS \
      > "$out" 2>&1
    echo $? > "$out.rc"; }
}

# count NAME LOG: add busted's summary in LOG to the totals.
count() {
  name=$1; out=$2
  rc=$(cat "$out.rc" 2>/dev/null || echo 1)
  # busted: "N successes / N failures / N errors / N pending : T seconds"
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
  if [ -z "$summary" ]; then
    echo "suite $name: no summary from busted (exit $rc)"
    echo "failed: $name: no summary from busted (exit $rc)" >> "$tmp/failures"
    failed=$((failed + 1))
    return
  fi
  # the failing specs by name, for the list printed before the totals
  sed 's/\x1b\[[0-9;]*m//g' "$out" | awk -v s="$name" \
    '/^(Failure|Error) (→|->) /{ where = $0; getline what; print "failed: " s ": " what " (" where ")" }' \
    >> "$tmp/failures"
  set -- $summary
  passed=$((passed + $1))
  failed=$((failed + $4 + $7))
  if [ "$rc" -ne 0 ] && [ $(($4 + $7)) -eq 0 ]; then
    echo "suite $name: exit $rc with no failing spec (sanitizer or valgrind report above)"
    echo "failed: $name: exit $rc with no failing spec (sanitizer or valgrind report)" >> "$tmp/failures"
    failed=$((failed + 1))
  fi
}

# run_suite NAME TAGS CPATH ...: a busted suite in the foreground.
run_suite() {
  name=$1
  echo "== suite: $name"
  busted_to "$@" &
  pid=$!
  # show the output as it comes
  tail -n +1 -f "$tmp/$name.log" --pid=$pid 2>/dev/null &
  wait $pid
  sleep 0.2
  count "$name" "$tmp/$name.log"
}

RELEASE_ENV="env LUA_CPATH_$vu=./$BUILD/?.so;;"
NOT_MEMORY="--exclude-tags=memory"
# the comparisons with real peers (tag #truth: the audit against what
# Prosody serves, the simulation against real clients, the real clients'
# limits) and the source rock installed into a fresh tree run in the
# release suite: what they check is behaviour, and the code they run is the
# same the other specs run under the sanitizers
NOT_MEMORY_TRUTH="--exclude-tags=memory,truth"
echo "== Lua $version, core from $BUILD/"

if [ -z "${TLSHARDEN_ONLY_VALGRIND:-}" ] && [ "${TLSHARDEN_MEMORY:-1}" != 0 ]; then
  : > "$tmp/memory.log"
  busted_to memory "$tmp/memory.log" "--tags=memory" "./$BUILD/?.so" $RELEASE_ENV &
  memory_pid=$!
fi

if [ -z "${TLSHARDEN_ONLY_VALGRIND:-}" ]; then
  : > "$tmp/release.log"
  run_suite release "$tmp/release.log" "$NOT_MEMORY" "./$BUILD/?.so" $RELEASE_ENV

  # every fuzz target in the background while the sanitizer suite runs on
  # the other core (the memory suite is done by then, or nearly)
  fuzz_seconds=${TLSHARDEN_FUZZ_SECONDS:-20}
  [ "$version" = 5.4 ] || fuzz_seconds=0
  if [ "$fuzz_seconds" != 0 ]; then
    sh scripts/fuzz.sh "$fuzz_seconds" $(ls fuzz/drivers | sed 's/\.lua$//') > "$tmp/fuzz.log" 2>&1 &
    fuzz_pid=$!
    echo "== fuzz (${fuzz_seconds}s per target): in the background, reported after the benchmarks"
  fi

  asan_rt=$($CC -print-file-name=libasan.so)
  : > "$tmp/asan.log"
  run_suite asan "$tmp/asan.log" "$NOT_MEMORY_TRUTH" "./$BUILD/asan/?.so" \
    env "LUA_CPATH_$vu=./$BUILD/asan/?.so;;" \
    LD_PRELOAD="$asan_rt" TLSHARDEN_SANITIZED=1 \
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

# The release suite on the older Lua versions, each against its own core,
# one after the other in the background while valgrind runs on one core.
older=""
if [ -z "${TLSHARDEN_ONLY_VALGRIND:-}" ] && [ "$version" = 5.4 ]; then
  older=${TLSHARDEN_OTHER_LUA-5.3 5.2}
fi
if [ -n "$older" ]; then
  (
    for v in $older; do
      vv=$(echo "$v" | tr . _)
      lua=lua$v
      : > "$tmp/release-$v.log"
      busted_to "release-$v" "$tmp/release-$v.log" "$NOT_MEMORY_TRUTH" "./build/$v/?.so" \
        env "LUA_PATH_$vv=$LPATH" "LUA_CPATH_$vv=./build/$v/?.so;;"
    done
  ) &
  older_pid=$!
  echo "== release suites on Lua $older: in the background, reported at the end"
fi

if [ "$version" != 5.4 ]; then
  echo "== valgrind, threads and fuzz run on Lua 5.4 only (make test)"
elif [ "${TLSHARDEN_VALGRIND:-1}" != 0 ]; then
  : > "$tmp/valgrind.log"
  run_suite valgrind "$tmp/valgrind.log" "$NOT_MEMORY_TRUTH" ./build/?.so \
    env LUA_CPATH_5_4="./build/?.so;;" TLSHARDEN_VALGRIND_RUN=1 \
    valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --suppressions=scripts/valgrind.supp
fi

# one_test NAME COMMAND...: a command that passes or fails as a whole.
one_test() {
  name=$1; shift
  echo "== suite: $name"
  if "$@"; then passed=$((passed + 1)); else
    echo "suite $name: failed"; echo "failed: $name" >> "$tmp/failures"; failed=$((failed + 1)); fi
}

if [ -z "${TLSHARDEN_ONLY_VALGRIND:-}" ]; then
  [ "$version" = 5.4 ] && one_test threads sh scripts/threads.sh
  # The benchmarks, briefly, so that a broken one shows (no timing is judged).
  if [ "${TLSHARDEN_BENCH_SMOKE:-1}" != 0 ]; then
    one_test bench-smoke make --no-print-directory bench-smoke LUA="$version"
  fi
  if [ -n "${fuzz_pid:-}" ]; then
    echo "== suite: fuzz (${fuzz_seconds}s per target)"
    wait "$fuzz_pid"
    cat "$tmp/fuzz.log"
    ok=$(grep -c '^fuzz: .*: ok,' "$tmp/fuzz.log")
    bad=$(grep -c '^fuzz: .*: FAILED,' "$tmp/fuzz.log")
    [ $((ok + bad)) -gt 0 ] || bad=1
    grep '^fuzz: .*: FAILED,' "$tmp/fuzz.log" | sed 's/^/failed: /' >> "$tmp/failures"
    passed=$((passed + ok)); failed=$((failed + bad))
  fi
fi

# The release suites on the older Lua versions: started above beside
# valgrind, which keeps one core busy; reported here.
if [ -n "${older_pid:-}" ]; then
  wait "$older_pid"
  for v in $older; do
    echo "== suite: release-$v"
    cat "$tmp/release-$v.log"
    count "release-$v" "$tmp/release-$v.log"
  done
fi

if [ -n "${memory_pid:-}" ]; then
  echo "== suite: memory"
  wait "$memory_pid"
  cat "$tmp/memory.log"
  count memory "$tmp/memory.log"
fi

# what failed, by name, just above the totals (where a log's tail shows it)
if [ -s "$tmp/failures" ]; then
  head -n 20 "$tmp/failures" | cut -c1-300
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
