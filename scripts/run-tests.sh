#!/bin/sh
# Run every test suite of tlsharden and print one closing line with the
# totals of all suites: "tests: N passed, N failed".
#   release     the specs against the normal build of tlsharden.core
#   asan+ubsan  the same specs against the AddressSanitizer+UBSan build
#   valgrind    the same specs under valgrind memcheck (normal build);
#               skipped with TLSHARDEN_VALGRIND=0
#   bench-smoke every benchmark run briefly (counts as one test);
#               skipped with TLSHARDEN_BENCH_SMOKE=0
# A suite that dies before busted prints its summary, or that exits non-zero
# with no failing spec (a sanitizer or valgrind report), counts as one
# failure, so a run that executed nothing cannot pass.
set -u
cd "$(dirname "$0")/.."
LUA="${LUA:-lua5.4}"
BUSTED="${BUSTED:-$(command -v busted)}"
SPECS="${SPECS:-spec}"
CC="${CC:-cc}"
passed=0
failed=0
log=$(mktemp)
status=$(mktemp)
trap 'rm -f "$log" "$status"' EXIT

export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;./?.lua;;"

# run_suite NAME CPATH [env VAR=value ...] [wrapper ...]: runs busted in-process
# under the given wrapper (busted's own re-exec is switched off).
run_suite() {
  name=$1; cpath=$2; shift 2
  echo "== suite: $name"
  { "$@" "$LUA" "$BUSTED" --ignore-lua --cpath="$cpath" --output=utfTerminal $SPECS 2>&1
    echo $? > "$status"; } | tee "$log"
  rc=$(cat "$status")
  # busted: "N successes / N failures / N errors / N pending : T seconds"
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
  if [ -z "$summary" ]; then
    echo "suite $name: no summary from busted (exit $rc)"
    failed=$((failed + 1))
    return
  fi
  set -- $summary
  passed=$((passed + $1))
  failed=$((failed + $4 + $7))
  if [ "$rc" -ne 0 ] && [ $(($4 + $7)) -eq 0 ]; then
    echo "suite $name: exit $rc with no failing spec (sanitizer or valgrind report above)"
    failed=$((failed + 1))
  fi
}

if [ -z "${TLSHARDEN_ONLY_VALGRIND:-}" ]; then
run_suite release ./build/?.so env LUA_CPATH_5_4="./build/?.so;;"

asan_rt=$($CC -print-file-name=libasan.so)
run_suite asan+ubsan ./build/asan/?.so env LUA_CPATH_5_4="./build/asan/?.so;;" \
  LD_PRELOAD="$asan_rt" TLSHARDEN_SANITIZED=1 \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

if [ "${TLSHARDEN_VALGRIND:-1}" != 0 ]; then
  run_suite valgrind ./build/?.so env LUA_CPATH_5_4="./build/?.so;;" TLSHARDEN_VALGRIND_RUN=1 \
    valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --suppressions=scripts/valgrind.supp
fi

# The benchmarks, briefly, so that a broken one shows (no timing is judged).
if [ -z "${TLSHARDEN_ONLY_VALGRIND:-}" ] && [ "${TLSHARDEN_BENCH_SMOKE:-1}" != 0 ]; then
  echo "== suite: bench-smoke"
  if make --no-print-directory bench-smoke; then passed=$((passed + 1)); else
    echo "suite bench-smoke: a benchmark failed"; failed=$((failed + 1)); fi
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
