/* What tlsharden knows about a context that OpenSSL cannot tell back (a
 * failed hardening, automatic DH parameters, the groups it set, the report
 * of the latest hardening), kept in tlsharden's own ex_data slot of the
 * SSL_CTX and freed with it (the report by the function stored with it).
 * harden.c writes it, inspect.c and harden_report.c read it. */
#include <stdlib.h>

#include "context/harden.h"

#define EXDATA_KEY "tlsharden.context.exdata"

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                       void *argp) {
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  th_ctx_state *st = (th_ctx_state *)ptr;
  if (st && st->report && st->report_free) st->report_free(st->report);
  free(st);
}

/* The ex_data index of this Lua state (allocated once per state, kept in
 * its registry: no C globals). */
static int exdata_index(lua_State *L) {
  int idx;
  if (lua_getfield(L, LUA_REGISTRYINDEX, EXDATA_KEY) == LUA_TNUMBER) {
    idx = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return idx;
  }
  lua_pop(L, 1);
  idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, state_free);
  if (idx < 0) th_raise(L, "failed", "harden", "cannot allocate OpenSSL ex_data");
  lua_pushinteger(L, idx);
  lua_setfield(L, LUA_REGISTRYINDEX, EXDATA_KEY);
  return idx;
}

th_ctx_state *th_ctx_state_get(lua_State *L, SSL_CTX *ctx, int create) {
  int idx = exdata_index(L);
  th_ctx_state *st = (th_ctx_state *)SSL_CTX_get_ex_data(ctx, idx);
  if (!st && create) {
    st = (th_ctx_state *)calloc(1, sizeof *st);
    if (!st || !SSL_CTX_set_ex_data(ctx, idx, st)) {
      free(st);
      th_raise(L, "failed", "harden", "out of memory");
    }
  }
  return st;
}
