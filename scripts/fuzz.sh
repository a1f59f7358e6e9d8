#!/bin/sh
# Run every fuzz target for SECONDS each; print one line per target with
# its execution count. Crashing inputs are kept in fuzz/out/TARGET/.
set -eu
cd "$(dirname "$0")/.."
seconds=$1; shift
sh scripts/fuzz-seeds.sh
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;"
status=0
for t in "$@"; do
  mkdir -p "fuzz/out/$t" "fuzz/corpus/$t"
  log="fuzz/out/$t/log"
  if build/fuzz/"$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="fuzz/out/$t/" "fuzz/corpus/$t" > "$log" 2>&1; then
    result=ok
  else
    result=FAILED; status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  echo "fuzz: $t: $result, $execs executions in ${seconds}s"
  [ "$result" = ok ] || tail -n 40 "$log"
done
exit $status
