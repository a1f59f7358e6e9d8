/* Certificate chain checks: depth, trust, expiry, key and signature
 * strength, order, missing intermediates and XMPP identity (RFC 6125,
 * RFC 6120 and RFC 7590 names) of the chain a server serves or a peer sent. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tlsharden.h"

#define FN "chain"
#define MAX_VERIFY_ERRORS 32
#define STORE_CACHE "tlsharden.chain.stores"

typedef struct chain_opts {
  int depth;
  const char *cafile, *capath, *host, *service, *keyfile;
  time_t at;
  int has_at;
  int warn_days;
} chain_opts;

/* Everything allocated for one call, freed in __gc if a Lua error unwinds. */
typedef struct chain_job {
  STACK_OF(X509) *certs;
  X509_STORE *store;
  X509_STORE_CTX *sctx;
  EVP_PKEY *key;
  int nerr;
  int err_code[MAX_VERIFY_ERRORS];
  int err_depth[MAX_VERIFY_ERRORS];
} chain_job;

static void job_free(void *p) {
  chain_job *j = (chain_job *)p;
  sk_X509_pop_free(j->certs, X509_free);
  X509_STORE_CTX_free(j->sctx);
  X509_STORE_free(j->store);
  EVP_PKEY_free(j->key);
  OPENSSL_free(j);
}

/* --- input ---------------------------------------------------------------- */

static void add_pem(lua_State *L, chain_job *j, const char *data, size_t len, const char *what) {
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  X509 *x;
  if (!bio) th_error(L, FN, "out of memory");
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if (!sk_X509_push(j->certs, x)) {
      X509_free(x);
      break;
    }
  }
  BIO_free(bio);
  ERR_clear_error();  /* the end of the data reads as an error */
  if (sk_X509_num(j->certs) == 0)
    th_error(L, FN, "bad argument #1: %s holds no PEM certificate", what);
}

static void add_file(lua_State *L, chain_job *j, const char *path) {
  BIO *bio = BIO_new_file(path, "r");
  BUF_MEM *mem;
  BIO *out;
  char buf[4096];
  int n;
  if (!bio) {
    ERR_clear_error();
    th_error(L, FN, "bad argument #1: cannot read '%s'", path);
  }
  out = BIO_new(BIO_s_mem());
  if (!out) {
    BIO_free(bio);
    th_error(L, FN, "out of memory");
  }
  while ((n = BIO_read(bio, buf, sizeof buf)) > 0) BIO_write(out, buf, n);
  BIO_free(bio);
  BIO_get_mem_ptr(out, &mem);
  lua_pushfstring(L, "file '%s'", path);
  lua_pushlstring(L, mem->data, mem->length);
  BIO_free(out);
  add_pem(L, j, lua_tostring(L, -1), lua_rawlen(L, -1), lua_tostring(L, -2));
  lua_pop(L, 2);
}

static void add_x509(lua_State *L, chain_job *j, X509 *x) {
  if (!X509_up_ref(x)) th_error(L, FN, "cannot reference a certificate");
  if (!sk_X509_push(j->certs, x)) {
    X509_free(x);
    th_error(L, FN, "out of memory");
  }
}

/* LuaSec's certificate userdata: { X509 *cert; int encode; } */
typedef struct lsec_cert { X509 *cert; int encode; } lsec_cert;

static void add_source(lua_State *L, chain_job *j, int *mode_ctx, SSL_CTX **ctx_out) {
  int mode = 0;
  SSL_CTX *ctx;
  *ctx_out = NULL;
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    if (strstr(s, "-----BEGIN") != NULL) add_pem(L, j, s, len, "the PEM string");
    else if (strlen(s) != len) th_error(L, FN, "bad argument #1: path contains a NUL byte");
    else if (len == 0) th_error(L, FN, "bad argument #1: empty path");
    else add_file(L, j, s);
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    lua_Integer i, n = luaL_len(L, 1);
    if (n == 0) th_error(L, FN, "bad argument #1: empty certificate list");
    for (i = 1; i <= n; i++) {
      lsec_cert *c;
      lua_geti(L, 1, i);
      c = (lsec_cert *)luaL_testudata(L, -1, "SSL:Certificate");
      if (!c || !c->cert)
        th_error(L, FN, "bad argument #1: item %d is a %s, expected a LuaSec certificate",
                 (int)i, luaL_typename(L, -1));
      add_x509(L, j, c->cert);
      lua_pop(L, 1);
    }
  } else if ((ctx = th_test_context(L, 1, &mode)) != NULL) {
    STACK_OF(X509) *extra = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    int i;
    if (!leaf) th_error(L, FN, "bad argument #1: the context has no certificate");
    add_x509(L, j, leaf);
    SSL_CTX_get0_chain_certs(ctx, &extra);
    if (!extra || sk_X509_num(extra) == 0) SSL_CTX_get_extra_chain_certs(ctx, &extra);
    for (i = 0; extra && i < sk_X509_num(extra); i++) add_x509(L, j, sk_X509_value(extra, i));
    *mode_ctx = mode;
    *ctx_out = ctx;
  } else if (luaL_testudata(L, 1, TH_LUASEC_CONNECTION)) {
    SSL *ssl = th_check_connection(L, 1, FN);
    STACK_OF(X509) *peer = SSL_get_peer_cert_chain(ssl);
    int i;
    /* A server's view of the client chain lacks the client's leaf. */
    if (SSL_is_server(ssl) && SSL_get0_peer_certificate(ssl))
      add_x509(L, j, SSL_get0_peer_certificate(ssl));
    for (i = 0; peer && i < sk_X509_num(peer); i++) add_x509(L, j, sk_X509_value(peer, i));
    if (sk_X509_num(j->certs) == 0)
      th_error(L, FN, "bad argument #1: the peer sent no certificate");
  } else if (luaL_testudata(L, 1, TH_LUASEC_CONTEXT)) {
    th_check_context(L, 1, FN, NULL);  /* raises: closed or unknown layout */
  } else {
    th_error(L, FN, "bad argument #1: expected a PEM file path, a PEM string, a list of"
             " LuaSec certificates, a LuaSec connection or a LuaSec context, got %s",
             luaL_typename(L, 1));
  }
}

static const char *opt_string(lua_State *L, int t, const char *name) {
  const char *v = NULL;
  int type = lua_getfield(L, t, name);
  if (type == LUA_TSTRING) {
    size_t len;
    v = lua_tolstring(L, -1, &len);
    if (strlen(v) != len || len == 0)
      th_error(L, FN, "bad option '%s': expected a non-empty string without NUL bytes", name);
  } else if (type != LUA_TNIL) {
    th_error(L, FN, "bad option '%s': expected a string, got %s", name, luaL_typename(L, -1));
  }
  lua_pop(L, 1);  /* the string stays alive in the options table */
  return v;
}

static int opt_int(lua_State *L, int t, const char *name, int lo, int hi, int dflt) {
  int v = dflt, isint;
  if (lua_getfield(L, t, name) != LUA_TNIL) {
    lua_Integer x = lua_tointegerx(L, -1, &isint);
    if (!isint || x < lo || x > hi)
      th_error(L, FN, "bad option '%s': expected an integer from %d to %d, got %s", name, lo, hi,
               luaL_tolstring(L, -1, NULL));
    v = (int)x;
  }
  lua_pop(L, 1);
  return v;
}

static void read_opts(lua_State *L, chain_opts *o) {
  static const char *const known[] = {
    "depth", "cafile", "capath", "host", "service", "at", "warn_days", "key", NULL
  };
  memset(o, 0, sizeof *o);
  o->depth = 9;
  o->warn_days = 30;
  if (lua_isnoneornil(L, 2)) return;
  if (!lua_istable(L, 2))
    th_error(L, FN, "bad argument #2 'opts': expected a table, got %s", luaL_typename(L, 2));
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    int i, ok = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (i = 0; known[i]; i++) ok |= strcmp(lua_tostring(L, -2), known[i]) == 0;
    if (!ok)
      th_error(L, FN, "bad argument #2 'opts': unknown option %s (known: depth, cafile,"
               " capath, host, service, at, warn_days, key)", luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  o->depth = opt_int(L, 2, "depth", 0, 100, 9);
  o->warn_days = opt_int(L, 2, "warn_days", 0, 3650, 30);
  o->cafile = opt_string(L, 2, "cafile");
  o->capath = opt_string(L, 2, "capath");
  o->host = opt_string(L, 2, "host");
  o->service = opt_string(L, 2, "service");
  o->keyfile = opt_string(L, 2, "key");
  if (o->service && strcmp(o->service, "xmpp-client") && strcmp(o->service, "xmpp-server"))
    th_error(L, FN, "bad option 'service': expected \"xmpp-client\" or \"xmpp-server\", got '%s'",
             o->service);
  if (lua_getfield(L, 2, "at") != LUA_TNIL) {
    int isint;
    lua_Integer at = lua_tointegerx(L, -1, &isint);
    if (!isint || at < 0)
      th_error(L, FN, "bad option 'at': expected a time in seconds since the epoch, got %s",
               luaL_tolstring(L, -1, NULL));
    o->at = (time_t)at;
    o->has_at = 1;
  }
  lua_pop(L, 1);
}

/* --- problems --------------------------------------------------------------- */

typedef struct out {
  lua_State *L;
  int problems, n;
} out;

static void problem(out *o, const char *code, int cert, const char *fmt, ...) {
  lua_State *L = o->L;
  va_list ap;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  if (cert > 0) {
    lua_pushinteger(L, cert);
    lua_setfield(L, -2, "cert");
  }
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, o->problems, ++o->n);
}

/* --- identity (RFC 6125, RFC 6120 section 13.7.1.2, RFC 7590) ------------- */

static int label_eq(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
  return 1;
}

/* A DNS-ID against a domain: exact (case-insensitive, trailing dot
 * ignored), or a wildcard as the whole left-most label matching exactly one
 * label of the domain. */
static int dns_id_matches(const char *pattern, size_t plen, const char *host) {
  size_t hlen = strlen(host);
  const char *dot;
  if (plen && pattern[plen - 1] == '.') plen--;
  if (hlen && host[hlen - 1] == '.') hlen--;
  if (plen == hlen && label_eq(pattern, host, hlen)) return 1;
  if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
    dot = memchr(host, '.', hlen);
    if (!dot || dot == host) return 0;
    /* the rest must have at least two labels: no "*.com" */
    if (!memchr(pattern + 2, '.', plen - 2)) return 0;
    return (size_t)(host + hlen - dot) == plen - 1 && label_eq(pattern + 1, dot, plen - 1);
  }
  return 0;
}

static void push_names(lua_State *L, X509 *x, int kind) {
  GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  int i, n = 0;
  lua_newtable(L);
  for (i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    const ASN1_STRING *s = NULL;
    if (kind == 0 && g->type == GEN_DNS) s = g->d.dNSName;
    else if (g->type == GEN_OTHERNAME) {
      int nid = OBJ_obj2nid(g->d.otherName->type_id);
      ASN1_TYPE *v = g->d.otherName->value;
      if (kind == 1 && nid == NID_SRVName && v->type == V_ASN1_IA5STRING) s = v->value.ia5string;
      if (kind == 2 && nid == NID_XmppAddr && v->type == V_ASN1_UTF8STRING) s = v->value.utf8string;
    }
    if (s) {
      lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
      lua_rawseti(L, -2, ++n);
    }
  }
  GENERAL_NAMES_free(names);
}

/* Whether the leaf names host for service. The name lists are on the
 * stack at dns, srv, xmpp; cn is the subject CN or NULL. */
static int identity_matches(lua_State *L, int dns, int srv, int xmpp, const char *cn,
                            const char *host, const char *service) {
  lua_Integer i;
  int any_san = lua_rawlen(L, dns) + lua_rawlen(L, srv) + lua_rawlen(L, xmpp) > 0;
  for (i = 1; i <= (lua_Integer)lua_rawlen(L, dns); i++) {
    size_t len;
    const char *p;
    lua_rawgeti(L, dns, i);
    p = lua_tolstring(L, -1, &len);
    lua_pop(L, 1);
    if (dns_id_matches(p, len, host)) return 1;
  }
  for (i = 1; i <= (lua_Integer)lua_rawlen(L, srv); i++) {
    /* "_xmpp-client.example.com": the service must match when given */
    const char *p;
    lua_rawgeti(L, srv, i);
    p = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (p[0] == '_') {
      const char *dot = strchr(p, '.');
      size_t slen = dot ? (size_t)(dot - p - 1) : 0;
      if (dot && (!service || (strlen(service) == slen && strncmp(p + 1, service, slen) == 0)) &&
          dns_id_matches(dot + 1, strlen(dot + 1), host))
        return 1;
    }
  }
  for (i = 1; i <= (lua_Integer)lua_rawlen(L, xmpp); i++) {
    const char *p;
    lua_rawgeti(L, xmpp, i);
    p = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (strlen(p) == strlen(host) && label_eq(p, host, strlen(host))) return 1;
  }
  if (!any_san && cn) return dns_id_matches(cn, strlen(cn), host);
  return 0;
}

/* --- per-certificate facts ------------------------------------------------ */

static int key_is_weak(EVP_PKEY *key, int *bits) {
  int id = EVP_PKEY_get_base_id(key);
  *bits = EVP_PKEY_get_bits(key);
  if (id == EVP_PKEY_RSA || id == EVP_PKEY_DSA || id == EVP_PKEY_DH) return *bits < 2048;
  if (id == EVP_PKEY_EC) return *bits < 256;
  return 0;
}

/* Seconds from at to t (negative when t is earlier). */
static long long seconds_until(const ASN1_TIME *t, time_t at) {
  struct tm tm;
  int days = 0, secs = 0;
  ASN1_TIME *now = ASN1_TIME_set(NULL, at);
  if (!now) return 0;
  if (!t || !ASN1_TIME_to_tm(t, &tm) || !ASN1_TIME_diff(&days, &secs, now, t)) days = secs = 0;
  ASN1_TIME_free(now);
  return (long long)days * 86400 + secs;
}

static void push_cert(lua_State *L, X509 *x, time_t at) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  char hex[EVP_MAX_MD_SIZE * 3 + 1];
  EVP_PKEY *key = X509_get0_pubkey(x);
  BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *serial_hex = serial ? BN_bn2hex(serial) : NULL;
  int mdnid = NID_undef, pknid = NID_undef, secbits = 0, bits = 0;
  lua_createtable(L, 0, 18);
  th_push_x509_name(L, X509_get_subject_name(x));
  lua_setfield(L, -2, "subject");
  th_push_x509_name(L, X509_get_issuer_name(x));
  lua_setfield(L, -2, "issuer");
  lua_pushstring(L, serial_hex ? serial_hex : "");
  lua_setfield(L, -2, "serial");
  OPENSSL_free(serial_hex);
  BN_free(serial);
  th_push_asn1_time(L, X509_get0_notBefore(x));
  lua_setfield(L, -2, "not_before");
  th_push_asn1_time(L, X509_get0_notAfter(x));
  lua_setfield(L, -2, "not_after");
  lua_pushinteger(L, (lua_Integer)(seconds_until(X509_get0_notAfter(x), at) / 86400));
  lua_setfield(L, -2, "days_left");
  if (key) {
    const char *type = EVP_PKEY_get0_type_name(key);
    lua_pushstring(L, type ? type : "unknown");
    lua_setfield(L, -2, "key_type");
    key_is_weak(key, &bits);
    lua_pushinteger(L, bits);
    lua_setfield(L, -2, "key_bits");
  }
  X509_get_signature_info(x, &mdnid, &pknid, &secbits, NULL);
  lua_pushstring(L, OBJ_nid2ln(X509_get_signature_nid(x)));
  lua_setfield(L, -2, "signature");
  lua_pushstring(L, mdnid == NID_undef ? "none" : OBJ_nid2sn(mdnid));
  lua_setfield(L, -2, "signature_digest");
  lua_pushboolean(L, X509_check_ca(x) > 0);
  lua_setfield(L, -2, "is_ca");
  lua_pushboolean(L, X509_self_signed(x, 0) == 1);
  lua_setfield(L, -2, "self_signed");
  if (X509_digest(x, EVP_sha256(), md, &mdlen)) {
    for (i = 0; i < mdlen; i++) snprintf(hex + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "sha256");
  }
  push_names(L, x, 0);
  lua_setfield(L, -2, "dns_names");
  push_names(L, x, 1);
  lua_setfield(L, -2, "srv_ids");
  push_names(L, x, 2);
  lua_setfield(L, -2, "xmpp_addrs");
  ERR_clear_error();
}

/* --- verification ----------------------------------------------------------- */

static int verify_cb(int ok, X509_STORE_CTX *sctx) {
  chain_job *j = (chain_job *)X509_STORE_CTX_get_app_data(sctx);
  if (!ok && j && j->nerr < MAX_VERIFY_ERRORS) {
    j->err_code[j->nerr] = X509_STORE_CTX_get_error(sctx);
    j->err_depth[j->nerr] = X509_STORE_CTX_get_error_depth(sctx);
    j->nerr++;
  }
  return 1;  /* go on, so that every problem is found */
}

/* Index (1-based) in the given list of the certificate at verified-chain
 * depth d, or 0 when it came from the trust store. */
static int given_index(chain_job *j, STACK_OF(X509) *built, int d) {
  X509 *x = built && d < sk_X509_num(built) ? sk_X509_value(built, d) : NULL;
  int i;
  for (i = 0; x && i < sk_X509_num(j->certs); i++)
    if (X509_cmp(x, sk_X509_value(j->certs, i)) == 0) return i + 1;
  return 0;
}

static void free_store(void *p) { X509_STORE_free((X509_STORE *)p); }

/* The trust store for cafile/capath (or the system store), loaded once per
 * Lua state and kept in its registry: parsing the system bundle costs far
 * more than a verification. Returns a new reference. */
static X509_STORE *cached_store(lua_State *L, const chain_opts *o) {
  X509_STORE *store;
  th_owned *owned;
  lua_getfield(L, LUA_REGISTRYINDEX, STORE_CACHE);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, STORE_CACHE);
  }
  lua_pushfstring(L, "%s\n%s", o->cafile ? o->cafile : "", o->capath ? o->capath : "");
  lua_pushvalue(L, -1);
  if (lua_rawget(L, -3) == LUA_TUSERDATA) {
    store = (X509_STORE *)((th_owned *)lua_touserdata(L, -1))->ptr;
    lua_pop(L, 3);
    if (!X509_STORE_up_ref(store)) th_error(L, FN, "cannot reference the trust store");
    return store;
  }
  lua_pop(L, 1);
  ERR_clear_error();
  store = X509_STORE_new();
  owned = th_own(L, store, free_store);
  if (!store) th_error(L, FN, "out of memory");
  if (o->cafile || o->capath) {
    if (!X509_STORE_load_locations(store, o->cafile, o->capath)) {
      th_push_ssl_errors(L, "cannot load");
      th_error(L, FN, "bad option '%s': cannot load the trust anchors: %s",
               o->cafile ? "cafile" : "capath", lua_tostring(L, -1));
    }
  } else if (!X509_STORE_set_default_paths(store)) {
    th_push_ssl_errors(L, "cannot load the system store");
    th_error(L, FN, "cannot load the system trust store: %s", lua_tostring(L, -1));
  }
  (void)owned;
  lua_rawset(L, -3);  /* cache[key] = owner */
  lua_pop(L, 1);
  if (!X509_STORE_up_ref(store)) th_error(L, FN, "cannot reference the trust store");
  return store;
}

/* tlsharden.core.chain(source [, opts]) */
int th_chain(lua_State *L) {
  chain_opts o;
  chain_job *j;
  th_owned *owned;
  SSL_CTX *ctx = NULL;
  int mode = 0, i, n, top, built_depth = 0, seen_missing = 0, trusted_ok;
  time_t at;
  out res;
  STACK_OF(X509) *built, *untrusted;
  X509_VERIFY_PARAM *param;
  if (lua_isnone(L, 1)) th_error(L, FN, "bad argument #1 'source': expected a value");
  read_opts(L, &o);
  lua_settop(L, 2);
  at = o.has_at ? o.at : time(NULL);
  j = (chain_job *)OPENSSL_zalloc(sizeof *j);
  owned = th_own(L, j, job_free);
  if (!j || !(j->certs = sk_X509_new_null())) th_error(L, FN, "out of memory");
  add_source(L, j, &mode, &ctx);
  (void)owned;
  top = lua_gettop(L);
  n = sk_X509_num(j->certs);

  /* the trust store and OpenSSL's verification */
  j->store = cached_store(L, &o);
  j->sctx = X509_STORE_CTX_new();
  untrusted = sk_X509_new_null();
  for (i = 1; untrusted && i < n; i++) sk_X509_push(untrusted, sk_X509_value(j->certs, i));
  if (!j->sctx || !untrusted ||
      !X509_STORE_CTX_init(j->sctx, j->store, sk_X509_value(j->certs, 0), untrusted)) {
    sk_X509_free(untrusted);
    th_error(L, FN, "cannot set up verification");
  }
  X509_STORE_CTX_set_app_data(j->sctx, j);
  X509_STORE_CTX_set_verify_cb(j->sctx, verify_cb);
  param = X509_STORE_CTX_get0_param(j->sctx);
  X509_VERIFY_PARAM_set_depth(param, o.depth);
  X509_VERIFY_PARAM_set_time(param, at);
  X509_verify_cert(j->sctx);
  sk_X509_free(untrusted);  /* the certificates belong to j->certs */
  ERR_clear_error();
  built = X509_STORE_CTX_get0_chain(j->sctx);
  if (built) built_depth = sk_X509_num(built) - 2;  /* intermediates between leaf and anchor */
  if (built_depth < 0) built_depth = 0;

  lua_createtable(L, 0, 6);  /* result */
  lua_newtable(L);
  res.L = L;
  res.problems = lua_gettop(L);
  res.n = 0;

  /* OpenSSL's findings (expiry is checked below, for every certificate) */
  trusted_ok = 1;
  for (i = 0; i < j->nerr; i++) {
    int code = j->err_code[i], d = j->err_depth[i], idx = given_index(j, built, d);
    const char *text = X509_verify_cert_error_string(code);
    switch (code) {
      case X509_V_ERR_CERT_HAS_EXPIRED: case X509_V_ERR_CERT_NOT_YET_VALID:
      case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD: case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        break;
      case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        problem(&res, "DEPTH_EXCEEDED", idx, "the chain needs more than %d intermediate"
                " certificate%s (depth %d); OpenSSL refuses it", o.depth, o.depth == 1 ? "" : "s",
                o.depth);
        trusted_ok = 0;
        break;
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        problem(&res, "SELF_SIGNED", 1, "the certificate is self-signed and not trusted");
        trusted_ok = 0;
        break;
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        problem(&res, "UNTRUSTED", idx, "the chain ends in a self-signed root that is not"
                " a trust anchor");
        trusted_ok = 0;
        break;
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        if (!seen_missing) {
          X509 *top_cert = built && d < sk_X509_num(built) ? sk_X509_value(built, d) : NULL;
          if (top_cert && X509_check_ca(top_cert) == 0 && d == 0)
            problem(&res, "MISSING_INTERMEDIATE", idx, "the issuer of certificate %d is not"
                    " in the chain and not a trust anchor: an intermediate is missing, or the"
                    " issuing CA is unknown", idx);
          else if (top_cert && d > 0)
            problem(&res, "MISSING_INTERMEDIATE", idx, "the issuer of certificate %d is not"
                    " in the chain and not a trust anchor: an intermediate is missing or the"
                    " root is unknown", idx);
          else
            problem(&res, "MISSING_INTERMEDIATE", idx, "%s", text);
          seen_missing = 1;
        }
        trusted_ok = 0;
        break;
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        if (!seen_missing)
          problem(&res, "MISSING_INTERMEDIATE", idx, "the issuer of the certificate is not in"
                  " the chain and not a trust anchor");
        seen_missing = 1;
        trusted_ok = 0;
        break;
      case X509_V_ERR_INVALID_CA:
        problem(&res, "NOT_CA", idx, "certificate %d issues others but is not a CA", idx);
        break;
      case X509_V_ERR_CERT_UNTRUSTED: case X509_V_ERR_CERT_REJECTED:
        problem(&res, "UNTRUSTED", idx, "%s", text);
        trusted_ok = 0;
        break;
      default:
        problem(&res, "VERIFY_ERROR", idx, "%s", text);
        trusted_ok = 0;
    }
  }

  /* order: each certificate should be issued by the next one given */
  for (i = 0; i + 1 < n; i++) {
    X509 *x = sk_X509_value(j->certs, i), *next = sk_X509_value(j->certs, i + 1);
    if (X509_check_issued(next, x) != X509_V_OK) {
      int k;
      if (X509_check_issued(x, next) == X509_V_OK) {
        problem(&res, "WRONG_ORDER", i + 1, "certificate %d issues certificate %d: the issuer"
                " comes before the certificate it issued", i + 1, i + 2);
        continue;
      }
      for (k = 0; k < n; k++) {
        if (k != i && k != i + 1 && X509_check_issued(sk_X509_value(j->certs, k), x) == X509_V_OK &&
            X509_self_signed(x, 0) != 1) {
          problem(&res, "WRONG_ORDER", i + 2, "certificate %d does not issue certificate %d;"
                  " certificate %d does: the chain is out of order", i + 2, i + 1, k + 1);
          break;
        }
      }
    }
  }

  /* per certificate: CA flag, validity, key and signature strength */
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    X509 *x = sk_X509_value(j->certs, i);
    EVP_PKEY *key = X509_get0_pubkey(x);
    int bits = 0, mdnid = NID_undef;
    long long left = seconds_until(X509_get0_notAfter(x), at);
    push_cert(L, x, at);
    lua_rawseti(L, -2, i + 1);
    if (i > 0 && X509_check_ca(x) == 0)
      problem(&res, "NOT_CA", i + 1, "certificate %d is in the chain but has no CA basic"
              " constraint", i + 1);
    if (seconds_until(X509_get0_notBefore(x), at) > 0)
      problem(&res, "NOT_YET_VALID", i + 1, "certificate %d is not valid before %s", i + 1,
              (th_push_asn1_time(L, X509_get0_notBefore(x)), lua_tostring(L, -1)));
    else if (left < 0)
      problem(&res, "EXPIRED", i + 1, "certificate %d expired on %s", i + 1,
              (th_push_asn1_time(L, X509_get0_notAfter(x)), lua_tostring(L, -1)));
    else if (left < (long long)o.warn_days * 86400)
      problem(&res, "EXPIRES_SOON", i + 1, "certificate %d expires in %d days (%s)", i + 1,
              (int)(left / 86400), (th_push_asn1_time(L, X509_get0_notAfter(x)), lua_tostring(L, -1)));
    lua_settop(L, res.problems + 1);
    if (key && key_is_weak(key, &bits))
      problem(&res, "WEAK_KEY", i + 1, "certificate %d has a %d-bit %s key", i + 1, bits,
              EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "");
    X509_get_signature_info(x, &mdnid, NULL, NULL, NULL);
    if (X509_self_signed(x, 0) != 1 && (mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_md2
        || mdnid == NID_md4))
      problem(&res, "WEAK_SIGNATURE", i + 1, "certificate %d is signed with %s", i + 1,
              OBJ_nid2sn(mdnid));
  }
  lua_setfield(L, res.problems - 1, "certs");

  /* identity */
  if (o.host) {
    X509 *leaf = sk_X509_value(j->certs, 0);
    char cn[256];
    int has_cn = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn,
                                          sizeof cn) > 0;
    int base = lua_gettop(L);
    push_names(L, leaf, 0);
    push_names(L, leaf, 1);
    push_names(L, leaf, 2);
    if (!identity_matches(L, base + 1, base + 2, base + 3, has_cn ? cn : NULL, o.host, o.service))
      problem(&res, "HOST_MISMATCH", 1, "the certificate does not name '%s'%s%s", o.host,
              o.service ? " for " : "", o.service ? o.service : "");
    lua_settop(L, base);
  }

  /* a context's (or a given) private key must belong to the leaf */
  if (ctx && SSL_CTX_get0_privatekey(ctx) &&
      X509_check_private_key(sk_X509_value(j->certs, 0), SSL_CTX_get0_privatekey(ctx)) != 1)
    problem(&res, "KEY_MISMATCH", 1, "the context's private key does not match its certificate");
  if (o.keyfile) {
    BIO *bio = BIO_new_file(o.keyfile, "r");
    if (!bio) {
      ERR_clear_error();
      th_error(L, FN, "bad option 'key': cannot read '%s'", o.keyfile);
    }
    j->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!j->key) {
      ERR_clear_error();
      th_error(L, FN, "bad option 'key': '%s' holds no PEM private key", o.keyfile);
    }
    if (X509_check_private_key(sk_X509_value(j->certs, 0), j->key) != 1)
      problem(&res, "KEY_MISMATCH", 1, "the private key '%s' does not match the certificate",
              o.keyfile);
  }
  ERR_clear_error();

  lua_setfield(L, res.problems - 1, "problems");
  lua_pushboolean(L, trusted_ok && j->nerr == 0);
  lua_setfield(L, -2, "trusted");
  lua_pushinteger(L, built_depth);
  lua_setfield(L, -2, "depth");
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)at);
  lua_setfield(L, -2, "at");
  if (ctx) {
    lua_pushstring(L, mode == 2 ? "client" : "server");
    lua_setfield(L, -2, "mode");
  }
  (void)top;
  return 1;
}
