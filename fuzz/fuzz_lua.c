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

/* Coverage of the Lua code: the interpreter is the system's, so libFuzzer
 * sees no edges inside it. A line hook feeds each (previous line, line)
 * pair of Lua code into libFuzzer's extra counters instead, so that inputs
 * reaching new lines of the Lua modules (the config sandbox, the drivers)
 * are kept in the corpus. */
#define LUA_EDGES 65536
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t lua_edges[LUA_EDGES];
static uintptr_t lua_prev;

static void line_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t here;
  if (!lua_getinfo(L, "S", ar)) return;
  here = ((uintptr_t)ar->source * 31u) ^ (uintptr_t)ar->currentline * 2654435761u;
  lua_edges[(here ^ (lua_prev >> 1)) % LUA_EDGES]++;
  lua_prev = here;
}

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
  lua_sethook(fuzz_L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_prev = 0;
  lua_rawgeti(fuzz_L, LUA_REGISTRYINDEX, fuzz_driver);
  lua_pushlstring(fuzz_L, (const char *)data, size);
  if (lua_pcall(fuzz_L, 1, 0, 0) != LUA_OK) {
    /* The driver catches the errors it expects; anything else is a bug in
     * the driver or an error that escaped: report it loudly. */
    fprintf(stderr, "fuzz: driver error: %s\n", lua_tostring(fuzz_L, -1));
    abort();
  }
  lua_settop(fuzz_L, 0);
  /* Collect after every input: every object's __gc runs under the
   * sanitizers, and an input leaves the heap as it found it, so libFuzzer's
   * leak check (which rescans the heap whenever an input allocated more
   * than it freed) only runs for real leaks. */
  lua_gc(fuzz_L, LUA_GCCOLLECT, 0);
  return 0;
}
