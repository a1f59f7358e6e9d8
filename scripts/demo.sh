#!/bin/sh
# The main job on the bundled example: audit examples/prosody.cfg.lua, with
# certificates for its two hosts generated (by a throwaway CA) into a
# temporary directory.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/certs"
cp examples/prosody.cfg.lua "$dir/"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=tlsharden demo CA" \
  -addext basicConstraints=critical,CA:TRUE -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
for host in chat.example.org legacy.example.net; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$host" \
    -keyout "$dir/certs/$host.key" -out "$dir/$host.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nbasicConstraints=critical,CA:FALSE\n' "$host" > "$dir/$host.ext"
  openssl x509 -req -in "$dir/$host.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial 1 \
    -days 90 -extfile "$dir/$host.ext" -out "$dir/certs/$host.crt" 2>/dev/null
done
echo "\$ tlsharden audit examples/prosody.cfg.lua --cafile demo-ca.crt"
echo
status=0
"${LUA:-lua5.4}" "$root/bin/tlsharden" audit "$dir/prosody.cfg.lua" --cafile "$dir/ca.crt" || status=$?
# 1 means the audit found problems (the legacy host is there to show them).
[ "$status" -le 1 ]
