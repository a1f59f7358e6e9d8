#!/bin/sh
# Unpack Prosody 13 from Debian's bookworm-backports suite into
# build/prosody-13/, next to the system's Prosody 0.12 (which stays as it
# is), and write launchers for it: build/prosody-13/bin/prosody and
# build/prosody-13/bin/prosodyctl.
#
# The package is fetched with a throwaway apt state (its own sources list,
# lists, cache and an empty status file) that names only the backports
# suite on the mirror this machine's apt sources already use; nothing is
# installed and the system's apt state is not touched. Root is not needed
# for that. Prosody 13's Depends are checked against the installed
# packages; whatever is missing is installed as root, or the command is
# printed (as scripts/install-deps.sh does).
#
# Quick when already done. TLSHARDEN_PROSODY13=0 skips it.
set -eu

WANT=13.0.1
SUITE=bookworm-backports
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/build/prosody-13"
STAMP="$DEST/.unpacked"

[ "${TLSHARDEN_PROSODY13:-1}" = 0 ] && exit 0

say() { echo "tlsharden: prosody 13: $*" >&2; }

# dep_missing DEPENDS: the names in a Depends field that no installed
# package is or provides (an alternative "a | b" counts when either is
# there; version constraints are left to dpkg, bookworm meets them).
dep_missing() {
  have=$(dpkg-query -W -f='${db:Status-Status} ${Package} ${Provides}\n' 2>/dev/null |
    awk '$1 == "installed" { $1 = ""; print }' | sed 's/([^)]*)//g; s/,/ /g; s/:[a-z0-9]*//g' |
    tr -s ' ' '\n' | sort -u)
  echo "$1" | sed 's/([^)]*)//g; s/ //g' | tr ',' '\n' | while read -r group; do
    [ -z "$group" ] && continue
    found=""
    for alt in $(echo "$group" | tr '|' ' '); do
      if echo "$have" | grep -qx "$alt"; then found=1; break; fi
    done
    [ -z "$found" ] && echo "${group%%|*}"
  done | tr '\n' ' '
}

# ensure_deps DEB: install (as root) or name the packages Prosody 13 needs.
ensure_deps() {
  missing=$(dep_missing "$(dpkg-deb -f "$1" Depends)")
  [ -z "${missing% }" ] && return 0
  cmd="apt-get install -y --no-install-recommends $missing"
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: $missing"
    say "run as root:  apt-get update && $cmd"
    exit 1
  fi
  say "installing $missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT $DEST" ] &&
   [ -x "$DEST/bin/prosody" ] && [ -x "$DEST/bin/prosodyctl" ]; then
  ensure_deps "$DEST/prosody.deb"
  exit 0
fi

# The mirror: the URI of the machine's apt sources that serves the release
# itself (one-line sources.list entries and deb822 .sources stanzas), with
# the keyring its entry names, if any.
. /etc/os-release
CODENAME=${VERSION_CODENAME:-}
if [ "$CODENAME" != bookworm ]; then
  say "this is not Debian 12 (bookworm); Prosody $WANT comes from $SUITE, not fetched"
  exit 1
fi
mirror=""
keyring=""
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  line=$(awk -v s="$CODENAME" '
    $1 == "deb" {
      opts = ""; i = 2
      if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ } opts = opts " " $i; i++ }
      if ($(i + 1) == s && $i ~ /^(https?|file):/) { print $i " " opts; exit }
    }' "$f")
  if [ -n "$line" ]; then
    mirror=${line%% *}
    keyring=$(echo "$line" | tr ' []' '\n\n\n' | sed -n 's/^signed-by=//p' | head -n 1)
    break
  fi
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    line=$(awk -v s="$CODENAME" '
      function flush() {
        if (deb && uri != "" && (" " suites " ") ~ (" " s " ")) { print uri " " key; found = 1; exit }
        deb = 0; uri = ""; suites = ""; key = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { uri = $i; break } }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "signed-by:" { key = $2 }
      END { if (!found) flush() }' "$f")
    if [ -n "$line" ]; then
      mirror=${line%% *}
      keyring=$(echo "$line" | awk '{ print $2 }')
      break
    fi
  done
fi
if [ -z "$mirror" ]; then
  say "no apt source for $CODENAME found in /etc/apt/sources.list{,.d}; cannot fetch $SUITE"
  exit 1
fi

mkdir -p "$ROOT/build"
work=$(mktemp -d "$ROOT/build/prosody-13.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/dl"
: > "$work/apt/status"
if [ -n "$keyring" ] && [ -f "$keyring" ]; then
  echo "deb [signed-by=$keyring] $mirror $SUITE main" > "$work/apt/sources.list"
else
  echo "deb $mirror $SUITE main" > "$work/apt/sources.list"
fi
APT_OPTS="-o Dir::State=$work/apt -o Dir::State::Lists=$work/apt/lists
  -o Dir::State::status=$work/apt/status -o Dir::Etc::SourceList=$work/apt/sources.list
  -o Dir::Etc::SourceParts=$work/apt/none -o Dir::Cache=$work/apt/cache
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root"
[ "$(id -u)" -ne 0 ] && APT_OPTS=$(echo "$APT_OPTS" | sed 's/-o APT::Sandbox::User=root//')
say "fetching prosody=$WANT* from $SUITE"
# shellcheck disable=SC2086
apt-get -qq $APT_OPTS update >&2
# shellcheck disable=SC2086
(cd "$work/dl" && apt-get -qq $APT_OPTS download "prosody=$WANT*" >&2)
deb=$(ls "$work"/dl/prosody_*.deb)
version=$(dpkg-deb -f "$deb" Version)
case "$version" in
  "$WANT"*) ;;
  *) say "downloaded version $version, wanted $WANT"; exit 1 ;;
esac
ensure_deps "$deb"

rm -rf "$work/tree"
dpkg-deb -x "$deb" "$work/tree"
cp "$deb" "$work/tree/prosody.deb"
mkdir -p "$work/tree/bin" "$work/tree/var/lib/prosody"
src="$DEST/usr/lib/prosody"
# The launchers: Debian's own scripts with their paths pointed into the
# unpacked tree; they run with lua5.4 and the system's LuaSec, LuaSocket,
# lua-expat and lua-filesystem.
for prog in prosody prosodyctl; do
  sed -e "s|^CFG_SOURCEDIR=.*|CFG_SOURCEDIR='$src';|" \
      -e "s|^CFG_CONFIGDIR=.*|CFG_CONFIGDIR='$DEST/etc/prosody';|" \
      -e "s|^CFG_PLUGINDIR=.*|CFG_PLUGINDIR='$src/modules/';|" \
      -e "s|^CFG_DATADIR=.*|CFG_DATADIR='$DEST/var/lib/prosody';|" \
      -e '1s|^#!.*|#!/usr/bin/env lua5.4|' \
      "$work/tree/usr/bin/$prog" > "$work/tree/bin/$prog"
  chmod 755 "$work/tree/bin/$prog"
  grep -q "^CFG_SOURCEDIR='$src';" "$work/tree/bin/$prog" || { say "could not rewrite $prog"; exit 1; }
done
echo "$WANT $DEST" > "$work/tree/.unpacked"
rm -rf "$DEST"
mv "$work/tree" "$DEST"
say "unpacked $version into build/prosody-13 (bin/prosody, bin/prosodyctl)"
