#!/bin/sh
# The main job on the bundled example.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;"
export LUA_CPATH_5_4="./build/?.so;;"
exec "${LUA:-lua5.4}" examples/protocols.lua
