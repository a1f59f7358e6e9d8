#!/bin/sh
# The source rock of the release: `sh scripts/make-rock.sh OUTDIR` writes
# OUTDIR/tlsharden-VERSION-1.src.rock (make rock: into build/), with no
# network. A source rock is a zip of the versioned rockspec and the source
# archive its source.url names (tlsharden-VERSION.tar.gz, every file git
# tracks, as the working tree has it, under the folder tlsharden-VERSION/
# that source.dir names); `luarocks install` of the rock unpacks that
# archive instead of fetching it. VERSION is the core's (TH_VERSION in
# src/core/tlsharden.h), and the one versioned rockspec must carry it.
set -eu
cd "$(dirname "$0")/.."
fail() { echo "scripts/make-rock.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || { echo "usage: sh scripts/make-rock.sh OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)

version=$(sed -n 's/^#define TH_VERSION "\([^"]*\)"$/\1/p' src/core/tlsharden.h)
[ -n "$version" ] || fail "no TH_VERSION in src/core/tlsharden.h"
rockspec="tlsharden-$version-1.rockspec"
[ -f "$rockspec" ] || fail "no $rockspec for version $version (TH_VERSION)"
for other in tlsharden-*.rockspec; do
  case "$other" in
    "$rockspec"|tlsharden-scm-1.rockspec) ;;
    *) fail "$other beside $rockspec: keep one versioned rockspec" ;;
  esac
done
grep -q "^version = \"$version-1\"$" "$rockspec" || fail "$rockspec does not say version = \"$version-1\""
name="tlsharden-$version"
grep -q "url = \"[^\"]*/$name\.tar\.gz\"" "$rockspec" || fail "$rockspec: source.url does not name $name.tar.gz"
grep -q "dir = \"$name\"" "$rockspec" || fail "$rockspec: source.dir is not \"$name\""

command -v git > /dev/null || fail "git is needed: the archive holds the files git tracks"
git rev-parse --is-inside-work-tree > /dev/null 2>&1 || fail "not a git checkout: the archive holds the files git tracks"
command -v zip > /dev/null || fail "zip is needed (Debian: apt-get install zip)"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# the tracked files that are there (one deleted in the working tree is left out)
git ls-files -z | xargs -0 sh -c 'for f; do [ ! -e "$f" ] || printf "%s\0" "$f"; done' sh > "$stage/files"
# every file the rockspec builds or installs must be among them
tr '\0' '\n' < "$stage/files" > "$stage/list"
LUA="${LUA:-lua5.4}"
"$LUA" -e '
  local env = {}
  assert(load(io.read("*a"), "rockspec", "t", env))()
  local function walk(v)
    if type(v) == "string" then
      if v:find("^[%w_]") and v:find("/") then print(v) end
    elseif type(v) == "table" then
      for _, w in pairs(v) do walk(w) end
    end
  end
  walk(env.build.modules)
  walk(env.build.install)' < "$rockspec" > "$stage/named" || fail "$LUA cannot read $rockspec"
[ -s "$stage/named" ] || fail "$rockspec names no file to build"
while IFS= read -r f; do
  grep -qxF "$f" "$stage/list" || fail "$rockspec names $f, which git does not track (git add it)"
done < "$stage/named"
# the same bytes for the same tree: names sorted, owner and times fixed
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
tar --null -T "$stage/files" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  --transform "s,^,$name/," -cf - | gzip -n -9 > "$stage/$name.tar.gz"
cp "$rockspec" "$stage/"
touch -d "@$mtime" "$stage/$rockspec" "$stage/$name.tar.gz"
rm -f "$out/$name-1.src.rock"
(cd "$stage" && TZ=UTC zip -q -X "$out/$name-1.src.rock" "$rockspec" "$name.tar.gz")
echo "$out/$name-1.src.rock"
