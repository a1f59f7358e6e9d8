/* libFuzzer entry point shared by every tlsharden fuzz target. The target is
 * a Lua driver (fuzz/drivers/NAME.lua) that returns a function taking the
 * input bytes as a string and calling the real tlsharden.core functions;
 * the C core is compiled into this binary with the fuzzer's coverage and
 * sanitizers. A Lua error is an expected outcome (bad input must raise);
 * a crash, a sanitizer report or a leak is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_tlsharden_core(lua_State *L);

/* One interpreter for the whole run: the harness's own state, not the
 * core's (the core keeps none). */
static lua_State *fuzz_L;
static int fuzz_driver = LUA_NOREF;
static unsigned long fuzz_runs;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *driver = getenv("TLSHARDEN_FUZZ_DRIVER");
  (void)argc;
  (void)argv;
  if (!driver) driver = FUZZ_DRIVER;
  fuzz_L = luaL_newstate();
  luaL_openlibs(fuzz_L);
  luaL_requiref(fuzz_L, "tlsharden.core", luaopen_tlsharden_core, 0);
  lua_pop(fuzz_L, 1);
  if (luaL_dofile(fuzz_L, driver) != LUA_OK || !lua_isfunction(fuzz_L, -1)) {
    fprintf(stderr, "fuzz: cannot load driver %s: %s\n", driver, lua_tostring(fuzz_L, -1));
    exit(2);
  }
  fuzz_driver = luaL_ref(fuzz_L, LUA_REGISTRYINDEX);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_rawgeti(fuzz_L, LUA_REGISTRYINDEX, fuzz_driver);
  lua_pushlstring(fuzz_L, (const char *)data, size);
  if (lua_pcall(fuzz_L, 1, 0, 0) != LUA_OK) {
    /* The driver catches the errors it expects; anything else is a bug in
     * the driver or an error that escaped: report it loudly. */
    fprintf(stderr, "fuzz: driver error: %s\n", lua_tostring(fuzz_L, -1));
    abort();
  }
  lua_settop(fuzz_L, 0);
  /* Collect now and then, so objects' __gc runs under the sanitizers. */
  if (++fuzz_runs % 256 == 0) lua_gc(fuzz_L, LUA_GCCOLLECT, 0);
  return 0;
}
