#!/bin/sh
# The main job on the bundled example: audit examples/prosody.cfg.lua, with
# certificates for its two hosts generated (by a throwaway CA) into a
# temporary directory; then serve the same configuration with Debian's
# Prosody on 127.0.0.1 (ports picked free) and scan it from outside: the
# vulnerability checks and what each recorded client gets, beside the
# audit; then tlsharden fix: the diff, and the fixed copy written and
# audited again. Prosody is stopped whatever happens.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; sleep 0.2; kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM
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

lua=${LUA:-lua5.4}

# The same configuration served by Debian's Prosody and scanned from outside.
serve_and_scan() {
  if ! command -v prosody > /dev/null 2>&1; then
    echo
    echo "(prosody is not installed: no live scan; scripts/install-deps.sh installs it)"
    return 0
  fi
  free_port() { "$lua" -e 'local s = require("socket").bind("127.0.0.1", 0); local _, p = s:getsockname(); print(p); s:close()'; }
  c2s=$(free_port); s2s=$(free_port); direct=$(free_port)
  mkdir -p "$dir/data"
  {
    echo "run_as_root = true; daemonize = false; pidfile = \"$dir/prosody.pid\"; data_path = \"$dir/data\""
    echo "interfaces = { \"127.0.0.1\" }; local_interfaces = { \"127.0.0.1\" }"
    echo "c2s_ports = { $c2s }; s2s_ports = { $s2s }; s2s_direct_tls_ports = {}; http_ports = {}; https_ports = {}"
    echo "admin_socket = \"$dir/admin.sock\"; log = { error = \"$dir/prosody.err\" }"
    sed "s/^c2s_direct_tls_ports = .*/c2s_direct_tls_ports = { $direct }/" examples/prosody.cfg.lua
  } > "$dir/serve.cfg.lua"
  (cd "$dir" && exec prosody --config "$dir/serve.cfg.lua" -F > "$dir/prosody.out" 2>&1) &
  pid=$!
  ready=
  for _ in $(seq 1 100); do
    if "$lua" -e "local c = require('socket').tcp(); c:settimeout(0.2); os.exit(c:connect('127.0.0.1', $c2s) and 0 or 1)"; then
      ready=1; break
    fi
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "Prosody did not start; its output:"; cat "$dir/prosody.out" "$dir/prosody.err" 2>/dev/null || true
    return 1
  fi
  for host in chat.example.org legacy.example.net; do
    echo
    echo "\$ tlsharden scan 127.0.0.1:$c2s --xmpphost $host --cafile demo-ca.crt   # the same configuration, served"
    echo
    "$lua" "$root/bin/tlsharden" scan "127.0.0.1:$c2s" --xmpphost "$host" --cafile "$dir/ca.crt" --timeout 3 \
      --quiet || true
  done
  kill "$pid" 2>/dev/null || true
  sleep 0.2
  kill -9 "$pid" 2>/dev/null || true
  pid=
}
serve_and_scan

# The smallest edit that clears the audit's errors: the diff, then written
# (after a backup and Prosody's own check) and audited again.
echo
echo "\$ tlsharden fix examples/prosody.cfg.lua --cafile demo-ca.crt"
echo
status=0
(cd "$dir" && "$lua" "$root/bin/tlsharden" fix prosody.cfg.lua --cafile ca.crt 2>&1) || status=$?
[ "$status" -le 1 ]
echo
echo "\$ tlsharden fix examples/prosody.cfg.lua --cafile demo-ca.crt --write && tlsharden audit examples/prosody.cfg.lua --cafile demo-ca.crt"
echo
(cd "$dir" && "$lua" "$root/bin/tlsharden" fix prosody.cfg.lua --cafile ca.crt --write 2>&1 | grep -v '^  \|^      ')
(cd "$dir" && "$lua" "$root/bin/tlsharden" audit prosody.cfg.lua --cafile ca.crt)
