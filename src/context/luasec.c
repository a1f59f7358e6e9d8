/* Access to the objects LuaSec 1.x creates. LuaSec exports no C API, so its
 * userdata are reached through their metatable names and a mirror of their
 * layout, which is validated against pointers LuaSec itself stores before
 * anything is read from it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/tlsharden.h"

/* LuaSec's context userdata (src/context.h, v0.9 to 1.3). */
typedef struct lsec_context {
  SSL_CTX *context;
  lua_State *L;
  void *dh_param;
  void *alpn;
  int mode;
} lsec_context;

/* LuaSec's bundled LuaSocket pieces and its connection userdata (src/ssl.h). */
typedef struct lsec_io { void *ctx; void *send, *recv, *error; } lsec_io;
typedef struct lsec_timeout { double block, total, start; } lsec_timeout;
typedef struct lsec_buffer {
  double birthday;
  size_t sent, received;
  lsec_io *io;
  lsec_timeout *tm;
  size_t first, last;
  char data[8192];
} lsec_buffer;
typedef struct lsec_connection {
  int sock;
  lsec_io io;
  lsec_buffer buf;
  lsec_timeout tm;
  SSL *ssl;
  int state;
  int error;
} lsec_connection;

/* The LuaSec context userdata at idx, or inside a Prosody 13 context
 * object (a table whose _inner field is the LuaSec context, read raw);
 * NULL when there is none. */
static lsec_context *find_context(lua_State *L, int idx) {
  lsec_context *c;
  if (lua_type(L, idx) != LUA_TTABLE)
    return (lsec_context *)luaL_testudata(L, idx, TH_LUASEC_CONTEXT);
  idx = lua_absindex(L, idx);
  lua_pushliteral(L, "_inner");
  lua_rawget(L, idx);
  /* the table keeps the userdata alive once it is popped */
  c = (lsec_context *)luaL_testudata(L, -1, TH_LUASEC_CONTEXT);
  lua_pop(L, 1);
  return c;
}

SSL_CTX *th_test_context(lua_State *L, int idx, int *mode) {
  lsec_context *c = find_context(L, idx);
  if (c == NULL || c->context == NULL) return NULL;
  if (SSL_CTX_get_app_data(c->context) != (void *)c) return NULL;
  if (mode) *mode = c->mode;
  return c->context;
}

int th_is_context(lua_State *L, int idx) {
  return find_context(L, idx) != NULL;
}

SSL_CTX *th_check_context(lua_State *L, int idx, const char *fn, int *mode) {
  lsec_context *c = find_context(L, idx);
  if (c == NULL) {
    th_arg_error(L, fn, idx, NULL, "expected a LuaSec context (ssl.newcontext) or a Prosody 13"
                 " context object, got %s", th_quote(L, idx));
    return NULL;
  }
  if (c->context == NULL) {
    th_arg_error(L, fn, idx, NULL, "the LuaSec context is closed");
    return NULL;
  }
  /* LuaSec keeps its own userdata as the SSL_CTX app data: if that does not
   * hold, the layout is not the one mirrored here and nothing is read. */
  if (SSL_CTX_get_app_data(c->context) != (void *)c) {
    th_arg_error(L, fn, idx, NULL, "unknown LuaSec context layout; this LuaSec version is not"
                 " supported");
    return NULL;
  }
  if (mode) *mode = c->mode;
  return c->context;
}

SSL *th_check_connection(lua_State *L, int idx, const char *fn) {
  lsec_connection *c = (lsec_connection *)luaL_testudata(L, idx, TH_LUASEC_CONNECTION);
  if (c == NULL) {
    th_arg_error(L, fn, idx, NULL, "expected a LuaSec connection (ssl.wrap), got %s",
                 th_quote(L, idx));
    return NULL;
  }
  /* The connection points into itself; a different layout breaks this. */
  if (c->io.ctx != (void *)c || c->buf.io != &c->io || c->buf.tm != &c->tm) {
    th_arg_error(L, fn, idx, NULL, "unknown LuaSec connection layout; this LuaSec version is"
                 " not supported");
    return NULL;
  }
  if (c->ssl == NULL) {
    th_arg_error(L, fn, idx, NULL, "the LuaSec connection is closed");
    return NULL;
  }
  return c->ssl;
}

/* OpenSSL's own rule: the enabled versions are the first contiguous run of
 * versions that lie within min/max and are not switched off by an option. */
static int version_disabled(SSL_CTX *ctx, int i) {
  static const uint64_t no_flags[TH_NVERSIONS] = {
    [TH_V_SSL3] = SSL_OP_NO_SSLv3, [TH_V_TLS1] = SSL_OP_NO_TLSv1,
    [TH_V_TLS11] = SSL_OP_NO_TLSv1_1, [TH_V_TLS12] = SSL_OP_NO_TLSv1_2,
    [TH_V_TLS13] = SSL_OP_NO_TLSv1_3
  };
  long min = SSL_CTX_get_min_proto_version(ctx);
  long max = SSL_CTX_get_max_proto_version(ctx);
  int v = th_versions[i].wire;
  if (!th_versions[i].context) return 1;
  if ((SSL_CTX_get_options(ctx) & no_flags[i]) != 0) return 1;
  if (min != 0 && v < min) return 1;
  if (max != 0 && v > max) return 1;
#ifdef OPENSSL_NO_SSL3
  if (v == SSL3_VERSION) return 1;
#endif
  return 0;
}

static int ctx_versions(SSL_CTX *ctx, int *lo, int *hi) {
  int i = 0;
  while (i < TH_NVERSIONS && version_disabled(ctx, i)) i++;
  if (i == TH_NVERSIONS) return 0;
  *lo = i;
  while (i + 1 < TH_NVERSIONS && !version_disabled(ctx, i + 1)) i++;
  *hi = i;
  return 1;
}

void th_push_ctx_versions(lua_State *L, SSL_CTX *ctx) {
  int lo, hi, i, n = 0;
  long max = SSL_CTX_get_max_proto_version(ctx);
  lua_createtable(L, 0, 8);
  /* wire numbers as tlsharden.protocol names them (0: no bound) */
  th_set_int(L, "min_version", SSL_CTX_get_min_proto_version(ctx));
  th_set_int(L, "max_version", max);
  lua_createtable(L, TH_NVERSIONS, 0);
  if (ctx_versions(ctx, &lo, &hi)) {
    for (i = lo; i <= hi; i++) {
      lua_pushstring(L, th_versions[i].name);
      lua_rawseti(L, -2, ++n);
    }
    lua_pushstring(L, th_versions[lo].name);
    lua_setfield(L, -3, "min");
    /* Open ended only when nothing caps the top version. */
    if (hi < TH_NVERSIONS - 1 || max != 0) {
      lua_pushstring(L, th_versions[hi].name);
      lua_setfield(L, -3, "max");
    }
  }
  lua_setfield(L, -2, "versions");
}

/* tlsharden.versions(ctx): the protocol versions a context really allows. */
int th_versions_in_force(lua_State *L) {
  SSL_CTX *ctx = th_check_context(L, 1, "versions", NULL);
  th_push_ctx_versions(L, ctx);
  return 1;
}

/* LuaSec's set_dhparam keeps the Lua function in this registry table, by
 * the SSL_CTX's address; its C callback runs it and stores what it parsed
 * on the context, freed only by LuaSec's own handshake. So the function
 * is asked here, the same way, and the parameters go onto the probe
 * connection, which OpenSSL prefers to the callback. */
void th_luasec_probe_dh(lua_State *L, SSL_CTX *ctx, SSL *s) {
  lsec_context *c = (lsec_context *)SSL_CTX_get_app_data(ctx);
  int top = lua_gettop(L);
  EVP_PKEY *pkey = NULL;
  if (!c || c->context != ctx) return;
  luaL_getmetatable(L, "SSL:DH:Registry");
  if (lua_istable(L, -1)) {
    lua_pushlightuserdata(L, (void *)ctx);
    lua_rawget(L, -2);
    if (lua_isfunction(L, -1)) {
      lua_pushboolean(L, 0);
      lua_pushinteger(L, 1024);
      if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *pem = lua_tolstring(L, -1, &n);
        BIO *bio = n <= 0x7fffffff ? BIO_new_mem_buf(pem, (int)n) : NULL;
        if (bio) pkey = PEM_read_bio_Parameters(bio, NULL);
        BIO_free(bio);
      }
    }
  }
  lua_settop(L, top);
  if (pkey && !SSL_set0_tmp_dh_pkey(s, pkey)) EVP_PKEY_free(pkey);
  ERR_clear_error();
}
