#!/bin/sh
# Install the Debian packages tlsharden needs to build, test and run (Lua
# 5.4, and 5.3 and 5.2, on which make test runs the specs too; Debian's
# lua-sec, lua-socket, lua-expat and lua-cjson serve every Lua version;
# lua-unbound and dns-root-data let the scanner validate DNSSEC itself).
# As root it runs apt-get; otherwise it prints the command and stops.
# Extra package names given as arguments are installed too (make fuzz
# asks for clang and its libFuzzer runtime this way). Prosody 13 is then
# unpacked beside the system's 0.12 (scripts/fetch-prosody13.sh).
set -eu

PACKAGES="make gcc pkg-config openssl valgrind lua5.4 liblua5.4-dev libssl-dev
  lua5.3 liblua5.3-dev lua5.2 liblua5.2-dev lua-sec lua-socket lua-expat lua-busted luarocks lua-cjson prosody sslscan testssl.sh
  dnsmasq unbound ldnsutils lua-unbound dns-root-data $*"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  exec sh "$(dirname "$0")/fetch-prosody13.sh"
fi

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "tlsharden: missing Debian packages:$missing" >&2
  echo "tlsharden: run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "tlsharden: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# Installing prosody or ejabberd would start their services on some
# systems, on the default XMPP ports that some specs expect closed: no
# service starts while the packages go in (policy-rc.d, when the system
# has none of its own).
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=yes
fi
status=0
apt-get install -y -qq --no-install-recommends $missing >&2 || status=$?
[ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d
[ "$status" -eq 0 ] || exit "$status"
exec sh "$(dirname "$0")/fetch-prosody13.sh"
