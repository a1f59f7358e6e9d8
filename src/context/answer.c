/* What a LuaSec server context answers to a client's first flight, found
 * in memory: the recorded ClientHello goes into a connection of the
 * context through memory BIOs, and what the server writes back (its first
 * flight, or an alert) comes out, as bytes for wire.parse_server_flight.
 * A second flight of the client (the hello after a HelloRetryRequest) may
 * follow on the same connection. This is the offline half of client
 * simulation: the audit asks the contexts Prosody would build what each
 * recorded client gets, with OpenSSL itself deciding. */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/tlsharden.h"

#define FN "context.answer_hello"
#define ANSWER_MAX (256 * 1024)  /* bytes of a server's answer kept, at most */
#define INPUT_MAX (64 * 1024)    /* bytes of a client flight, at most */

/* Feed bytes to the server connection, step its handshake and push what it
 * wrote (at most ANSWER_MAX bytes). */
static void feed(lua_State *L, SSL *s, BIO *in, BIO *out, const char *bytes, size_t n) {
  char buf[4096];
  luaL_Buffer b;
  size_t kept = 0;
  int i, r;
  if (n > 0) BIO_write(in, bytes, (int)n);
  for (i = 0; i < 8; i++) {
    r = SSL_do_handshake(s);
    if (r == 1) break;
    r = SSL_get_error(s, r);
    if (r != SSL_ERROR_WANT_WRITE) break;
  }
  luaL_buffinit(L, &b);
  while ((r = BIO_read(out, buf, (int)sizeof buf)) > 0) {
    if (kept + (size_t)r > ANSWER_MAX) break;
    luaL_addlstring(&b, buf, (size_t)r);
    kept += (size_t)r;
  }
  luaL_pushresult(&b);
  ERR_clear_error();
}

/* tlsharden.context.answer_hello(ctx, first [, second]): the bytes the
 * server context writes in answer to the client bytes first, and (with
 * second) to second on the same connection. */
int th_context_answer_hello(lua_State *L) {
  int mode = 0;
  SSL_CTX *ctx = th_check_context(L, 1, FN, &mode);
  size_t n1, n2 = 0;
  const char *first, *second = NULL;
  SSL *s;
  BIO *in, *out;
  th_owned *os;
  if (mode != TH_MODE_SERVER)
    return th_arg_error(L, FN, 1, "ctx", "expected a server context, got a client one");
  if (lua_type(L, 2) != LUA_TSTRING)
    return th_arg_error(L, FN, 2, "first", "expected the bytes of a client's first flight, got %s", th_quote(L, 2));
  first = lua_tolstring(L, 2, &n1);
  if (n1 > INPUT_MAX) return th_arg_error(L, FN, 2, "first", "expected at most %d bytes, got %d", INPUT_MAX, (int)n1);
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TSTRING)
      return th_arg_error(L, FN, 3, "second", "expected the bytes of the client's second flight, got %s",
                          th_quote(L, 3));
    second = lua_tolstring(L, 3, &n2);
    if (n2 > INPUT_MAX)
      return th_arg_error(L, FN, 3, "second", "expected at most %d bytes, got %d", INPUT_MAX, (int)n2);
  }
  lua_settop(L, 3);
  s = SSL_new(ctx);
  in = BIO_new(BIO_s_mem());
  out = BIO_new(BIO_s_mem());
  if (!s || !in || !out) {
    SSL_free(s);
    BIO_free(in);
    BIO_free(out);
    th_push_ssl_errors(L, "out of memory");
    return th_raise(L, "failed", FN, "cannot make a connection of the context: %s", lua_tostring(L, -1));
  }
  /* the mem BIOs say "retry" rather than EOF when empty */
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(s, in, out);
  th_luasec_probe_dh(L, ctx, s);
  SSL_set_verify(s, SSL_VERIFY_NONE, NULL);  /* a recorded hello has no certificate to send */
  SSL_set_accept_state(s);
  /* a Lua error (memory) while the answers are pushed frees the
   * connection with the owned userdata; then it is released here */
  os = th_own(L, s, th_free_ssl);
  feed(L, s, in, out, first, n1);
  if (second) feed(L, s, in, out, second, n2);
  th_release(os);
  ERR_clear_error();
  return second ? 2 : 1;
}
