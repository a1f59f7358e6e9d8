#!/bin/sh
# Run build/threads (spec/threads/threads.c) under ThreadSanitizer: two
# threads, each with its own Lua state, using tlsharden at once. Makes its
# own test certificates; exits non-zero on a data race or a disagreement.
set -eu
cd "$(dirname "$0")/.."
threads=${TLSHARDEN_THREADS:-2}
rounds=${TLSHARDEN_THREAD_ROUNDS:-40}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=tlsharden threads CA" -addext basicConstraints=critical,CA:TRUE \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=example.com" -keyout "$dir/leaf.key" -out "$dir/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:example.com\n' > "$dir/ext"
openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 365 -extfile "$dir/ext" -out "$dir/leaf.crt" 2>/dev/null
LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;./?.lua;;" \
TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1" \
  build/threads spec/threads/work.lua "$dir/leaf.crt" "$dir/leaf.key" "$dir/ca.crt" "$threads" "$rounds"
