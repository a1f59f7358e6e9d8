#!/bin/sh
# Run every test suite of tlsharden and print one closing line with the
# totals of all suites: "tests: N passed, N failed".
#   suite 1: the specs against the release build of tlsharden.core
#   suite 2: the same specs against the AddressSanitizer+UBSan build
# A suite that dies before busted prints its summary counts as one failure,
# so a run that executed nothing cannot pass.
set -u
cd "$(dirname "$0")/.."
LUA="${LUA:-lua5.4}"
BUSTED="${BUSTED:-busted}"
SPECS="${SPECS:-spec}"
CC="${CC:-cc}"
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;./?.lua;;"

run_suite() {
  name=$1; cpath=$2; shift 2
  echo "== suite: $name"
  "$@" "$BUSTED" --lua="$LUA" --cpath="$cpath" --output=utfTerminal $SPECS 2>&1 | tee "$log"
  # busted: "N successes / N failures / N errors / N pending : T seconds"
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
  if [ -z "$summary" ]; then
    echo "suite $name: no summary from busted (crashed?)"
    failed=$((failed + 1))
    return
  fi
  set -- $summary
  passed=$((passed + $1))
  failed=$((failed + $4 + $7))
}

run_suite release ./build/?.so env LUA_CPATH_5_4="./build/?.so;;"

asan_rt=$($CC -print-file-name=libasan.so)
run_suite asan+ubsan ./build/asan/?.so env LUA_CPATH_5_4="./build/asan/?.so;;" \
  LD_PRELOAD="$asan_rt" TLSHARDEN_SANITIZED=1 \
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
