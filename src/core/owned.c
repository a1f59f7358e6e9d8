/* Owned objects: a userdata that owns one C object (an SSL_CTX, an SSL, a
 * cipher stack...) and frees it in __gc and __close, so that nothing leaks
 * when a Lua error unwinds the stack half way through a call. */
#include <openssl/ssl.h>

#include "core/tlsharden.h"

#define TH_OWNED "tlsharden.owned"

static int owned_gc(lua_State *L) {
  th_release((th_owned *)luaL_checkudata(L, 1, TH_OWNED));
  return 0;
}

void th_owned_register(lua_State *L) {
  if (luaL_newmetatable(L, TH_OWNED)) {
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, owned_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
}

th_owned *th_own(lua_State *L, void *ptr, void (*free_fn)(void *)) {
  th_owned *o = (th_owned *)lua_newuserdatauv(L, sizeof *o, 0);
  o->ptr = NULL;
  o->free_fn = free_fn;
  luaL_setmetatable(L, TH_OWNED);
  o->ptr = ptr;
  return o;
}

void th_release(th_owned *o) {
  if (o->ptr && o->free_fn) o->free_fn(o->ptr);
  o->ptr = NULL;
}

void th_free_ssl_ctx(void *p) { SSL_CTX_free((SSL_CTX *)p); }
void th_free_ssl(void *p) { SSL_free((SSL *)p); }
void th_free_cipher_stack(void *p) { sk_SSL_CIPHER_free((STACK_OF(SSL_CIPHER) *)p); }
