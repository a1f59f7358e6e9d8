/* Where a chain to check comes from: a PEM file or string, a list of LuaSec
 * certificates or DER strings (what a scanner reads off the wire), a LuaSec
 * context (the chain it serves) or a connection (the chain the peer sent).
 * Every certificate ends up referenced in one stack, leaf first. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/tlsharden.h"

#define FN "chain"

/* LuaSec's certificate userdata: { X509 *cert; int encode; } */
typedef struct lsec_cert { X509 *cert; int encode; } lsec_cert;

static void add_pem(lua_State *L, STACK_OF(X509) *certs, const char *data, size_t len,
                    const char *what) {
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  X509 *x;
  if (!bio) th_raise(L, "failed", FN, "out of memory");
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (!sk_X509_push(certs, x)) {
      X509_free(x);
      break;
    }
  }
  BIO_free(bio);
  ERR_clear_error();  /* the end of the data reads as an error */
  if (sk_X509_num(certs) == 0) th_arg_error(L, FN, 1, "source", "%s holds no PEM certificate", what);
}

static void add_file(lua_State *L, STACK_OF(X509) *certs, int path) {
  BIO *bio = BIO_new_file(lua_tostring(L, path), "r");
  BUF_MEM *mem;
  BIO *out;
  char buf[4096];
  int n;
  if (!bio) {
    ERR_clear_error();
    th_input_error(L, FN, 1, "source", "cannot read the file %s", th_quote(L, path));
  }
  out = BIO_new(BIO_s_mem());
  if (!out) {
    BIO_free(bio);
    th_raise(L, "failed", FN, "out of memory");
  }
  while ((n = BIO_read(bio, buf, sizeof buf)) > 0) BIO_write(out, buf, n);
  BIO_free(bio);
  BIO_get_mem_ptr(out, &mem);
  lua_pushfstring(L, "the file %s", th_quote(L, path));
  lua_pushlstring(L, mem->data, mem->length);
  BIO_free(out);
  add_pem(L, certs, lua_tostring(L, -1), lua_rawlen(L, -1), lua_tostring(L, -2));
  lua_pop(L, 3);
}

static void add_x509(lua_State *L, STACK_OF(X509) *certs, X509 *x) {
  if (!X509_up_ref(x)) th_raise(L, "failed", FN, "cannot reference a certificate");
  if (!sk_X509_push(certs, x)) {
    X509_free(x);
    th_raise(L, "failed", FN, "out of memory");
  }
}

static void add_der(lua_State *L, STACK_OF(X509) *certs, int item, lua_Integer i) {
  size_t len;
  const unsigned char *der = (const unsigned char *)lua_tolstring(L, item, &len);
  const unsigned char *p = der;
  X509 *x = len <= 0x7fffffff ? d2i_X509(NULL, &p, (long)len) : NULL;
  ERR_clear_error();
  if (x && p != der + len) {
    X509_free(x);
    x = NULL;
  }
  if (!x) th_arg_error(L, FN, 1, "source", "item %d is not one DER certificate", (int)i);
  if (!sk_X509_push(certs, x)) {
    X509_free(x);
    th_raise(L, "failed", FN, "out of memory");
  }
}

static void add_list(lua_State *L, STACK_OF(X509) *certs) {
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, 1);
  if (n == 0) th_arg_error(L, FN, 1, "source", "empty certificate list");
  for (i = 1; i <= n; i++) {
    lsec_cert *c;
    lua_rawgeti(L, 1, i);
    if (lua_type(L, -1) == LUA_TSTRING) {
      add_der(L, certs, lua_gettop(L), i);
    } else {
      c = (lsec_cert *)luaL_testudata(L, -1, "SSL:Certificate");
      if (!c || !c->cert)
        th_arg_error(L, FN, 1, "source", "item %d is %s, expected a LuaSec certificate or a DER"
                     " string", (int)i, th_quote(L, -1));
      add_x509(L, certs, c->cert);
    }
    lua_pop(L, 1);
  }
}

static void add_context(lua_State *L, STACK_OF(X509) *certs, SSL_CTX *ctx) {
  STACK_OF(X509) *extra = NULL;
  X509 *leaf = SSL_CTX_get0_certificate(ctx);
  int i;
  if (!leaf) th_arg_error(L, FN, 1, "source", "the context has no certificate");
  add_x509(L, certs, leaf);
  SSL_CTX_get0_chain_certs(ctx, &extra);
  if (!extra || sk_X509_num(extra) == 0) SSL_CTX_get_extra_chain_certs(ctx, &extra);
  for (i = 0; extra && i < sk_X509_num(extra); i++) add_x509(L, certs, sk_X509_value(extra, i));
}

static void add_connection(lua_State *L, STACK_OF(X509) *certs, SSL *ssl) {
  STACK_OF(X509) *peer = SSL_get_peer_cert_chain(ssl);
  int i;
  /* A server's view of the client chain lacks the client's leaf. */
  if (SSL_is_server(ssl) && SSL_get0_peer_certificate(ssl))
    add_x509(L, certs, SSL_get0_peer_certificate(ssl));
  for (i = 0; peer && i < sk_X509_num(peer); i++) add_x509(L, certs, sk_X509_value(peer, i));
  if (sk_X509_num(certs) == 0) th_arg_error(L, FN, 1, "source", "the peer sent no certificate");
}

SSL_CTX *th_chain_source(lua_State *L, STACK_OF(X509) *certs, int *mode) {
  SSL_CTX *ctx;
  *mode = TH_MODE_INVALID;
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (strstr(s, "-----BEGIN") != NULL) add_pem(L, certs, s, len, "the PEM string");
    else if (strlen(s) != len) th_arg_error(L, FN, 1, "source", "the path contains a NUL byte");
    else if (len == 0) th_arg_error(L, FN, 1, "source", "empty path");
    else add_file(L, certs, 1);
  } else if ((ctx = th_test_context(L, 1, mode)) != NULL) {
    add_context(L, certs, ctx);
    return ctx;
  } else if (th_is_context(L, 1)) {
    th_check_context(L, 1, FN, NULL);  /* raises: closed or unknown layout */
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    add_list(L, certs);
  } else if (luaL_testudata(L, 1, TH_LUASEC_CONNECTION)) {
    add_connection(L, certs, th_check_connection(L, 1, FN));
  } else {
    th_arg_error(L, FN, 1, "source", "expected a PEM file path, a PEM string, a list of LuaSec"
                 " certificates or DER strings, a LuaSec connection or a LuaSec context, got %s",
                 th_quote(L, 1));
  }
  return NULL;
}
