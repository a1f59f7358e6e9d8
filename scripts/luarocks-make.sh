#!/bin/sh
# `luarocks make` for a Debian system: LuaSec comes from the lua-sec package,
# which luarocks cannot see, so it is declared as provided at its real version.
# LUA names the Lua to install for (lua5.4 by default, lua5.3, lua5.2).
set -eu
cd "$(dirname "$0")/.."
LUA="${LUA:-lua5.4}"
version=$("$LUA" -e 'io.write((require "ssl")._VERSION)')
lua_version=$("$LUA" -e 'io.write((_VERSION:gsub("^Lua ", "")))')
config=$(mktemp)
trap 'rm -rf "$config" src/*/*.o tlsharden' EXIT
printf 'rocks_provided = { luasec = "%s-1" }\n' "$version" > "$config"
LUAROCKS_CONFIG="$config" luarocks --lua-version "$lua_version" make "$@" tlsharden-scm-1.rockspec
