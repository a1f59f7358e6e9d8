#!/bin/sh
# luarocks for a Debian system: `sh scripts/luarocks.sh COMMAND ARGS...`
# runs `luarocks --lua-version V COMMAND ARGS...` (make install: `make` of
# tlsharden-scm-1.rockspec; make install-rock: `install` of the source rock).
# LuaSec comes from the lua-sec package, which luarocks cannot see, so it is
# declared as provided at the version the installed LuaSec reports: the
# rockspec's dependencies are still checked, against what is installed.
# LUA names the Lua to install for (lua5.4 by default, lua5.3, lua5.2).
set -eu
cd "$(dirname "$0")/.."
LUA="${LUA:-lua5.4}"
if [ $# -eq 0 ]; then
  echo "usage: sh scripts/luarocks.sh COMMAND [ARGS...]" >&2
  exit 2
fi
if ! version=$("$LUA" -e 'io.write((require "ssl")._VERSION)' 2>/dev/null); then
  echo "scripts/luarocks.sh: $LUA cannot load LuaSec (Debian: apt-get install lua-sec)" >&2
  exit 1
fi
lua_version=$("$LUA" -e 'io.write((_VERSION:gsub("^Lua ", "")))')
config=$(mktemp)
# luarocks make builds in the checkout: its objects go with the config
trap 'rm -rf "$config" src/*/*.o tlsharden' EXIT
printf 'rocks_provided = { luasec = "%s-1" }\n' "$version" > "$config"
LUAROCKS_CONFIG="$config" luarocks --lua-version "$lua_version" "$@"
