/* Certificate chain checks: depth, trust, expiry, key and signature
 * strength, order, missing intermediates and XMPP identity of the chain a
 * server serves or a peer sent. Where the chain comes from is in
 * chain_source.c, how names are matched in identity.c. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/tlsharden.h"

#define FN "chain"
#define MAX_VERIFY_ERRORS 32
#define STORE_CACHE "tlsharden.chain.stores"
#define DEFAULT_DEPTH 9
#define DEFAULT_WARN_DAYS 30

typedef struct chain_opts {
  int depth, warn_days;
  const char *cafile, *capath, *host, *service, *keyfile;
  time_t at;
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

static void read_opts(lua_State *L, chain_opts *o) {
  static const char *const known[] = {
    "depth", "cafile", "capath", "host", "service", "at", "warn_days", "key", NULL
  };
  static const char *const services[] = {"xmpp-client", "xmpp-server", NULL};
  th_opts r;
  int svc;
  memset(o, 0, sizeof *o);
  th_opts_open(L, &r, 2, FN, "opts", "option", known);
  o->depth = th_opt_int(&r, "depth", 0, 100, DEFAULT_DEPTH, TH_NO_FALSE);
  o->warn_days = th_opt_int(&r, "warn_days", 0, 3650, DEFAULT_WARN_DAYS, TH_NO_FALSE);
  o->cafile = th_opt_string(&r, "cafile", 0, NULL);
  o->capath = th_opt_string(&r, "capath", 0, NULL);
  o->host = th_opt_string(&r, "host", 0, NULL);
  o->keyfile = th_opt_string(&r, "key", 0, NULL);
  svc = th_opt_enum(&r, "service", services, -1);
  o->service = svc >= 0 ? services[svc] : NULL;
  o->at = time(NULL);
  if (th_opt_get(&r, "at") != LUA_TNIL) {
    lua_Integer at = 0;
    if (!th_integer(L, -1, &at) || at < 0)
      th_opt_error(&r, "at", "expected a time in seconds since the epoch, got %s", th_quote(L, -1));
    o->at = (time_t)at;
  }
  lua_pop(L, 1);
}

/* --- problems --------------------------------------------------------------- */

typedef struct out {
  lua_State *L;
  int problems, n, errors;
} out;

/* Every code is an error except these. */
static const char *severity_of(const char *code) {
  return strcmp(code, "EXPIRES_SOON") == 0 ? "warning" : "error";
}

static void problem(out *o, const char *code, int cert, const char *fmt, ...) {
  lua_State *L = o->L;
  const char *severity = severity_of(code);
  va_list ap;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, severity);
  lua_setfield(L, -2, "severity");
  if (cert > 0) {
    lua_pushinteger(L, cert);
    lua_setfield(L, -2, "cert");
  }
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, o->problems, ++o->n);
  if (severity[0] == 'e') o->errors++;
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

static void push_sha256(lua_State *L, X509 *x) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  char hex[EVP_MAX_MD_SIZE * 3 + 1];
  if (!X509_digest(x, EVP_sha256(), md, &mdlen)) {
    lua_pushnil(L);
    return;
  }
  for (i = 0; i < mdlen; i++) snprintf(hex + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
  lua_pushstring(L, hex);
}

/* The SHA-256 of the DER SubjectPublicKeyInfo, in the form of push_sha256
 * (nil when it cannot be encoded): the same key under any certificate. */
static void push_spki_sha256(lua_State *L, X509 *x) {
  unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  char hex[EVP_MAX_MD_SIZE * 3 + 1];
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  if (n <= 0 || !EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL)) {
    OPENSSL_free(der);
    lua_pushnil(L);
    return;
  }
  OPENSSL_free(der);
  for (i = 0; i < mdlen; i++) snprintf(hex + i * 3, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
  lua_pushstring(L, hex);
}

static void push_cert(lua_State *L, X509 *x, time_t at) {
  EVP_PKEY *key = X509_get0_pubkey(x);
  BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  char *serial_hex = serial ? BN_bn2hex(serial) : NULL;
  int mdnid = NID_undef, bits = 0;
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
  X509_get_signature_info(x, &mdnid, NULL, NULL, NULL);
  lua_pushstring(L, OBJ_nid2ln(X509_get_signature_nid(x)));
  lua_setfield(L, -2, "signature");
  lua_pushstring(L, mdnid == NID_undef ? "none" : OBJ_nid2sn(mdnid));
  lua_setfield(L, -2, "signature_digest");
  lua_pushboolean(L, X509_check_ca(x) > 0);
  lua_setfield(L, -2, "is_ca");
  lua_pushboolean(L, X509_self_signed(x, 0) == 1);
  lua_setfield(L, -2, "self_signed");
  push_sha256(L, x);
  lua_setfield(L, -2, "sha256");
  push_spki_sha256(L, x);
  lua_setfield(L, -2, "spki_sha256");
  th_push_names(L, x, TH_NAMES_DNS);
  lua_setfield(L, -2, "dns_names");
  th_push_names(L, x, TH_NAMES_SRV);
  lua_setfield(L, -2, "srv_ids");
  th_push_names(L, x, TH_NAMES_XMPP);
  lua_setfield(L, -2, "xmpp_addrs");
  ERR_clear_error();
}

/* --- the trust store ------------------------------------------------------ */

static void free_store(void *p) { X509_STORE_free((X509_STORE *)p); }

/* The trust store for cafile/capath (or the system store), loaded once per
 * Lua state and kept in its registry: parsing the system bundle costs far
 * more than a verification. Returns a new reference. */
static X509_STORE *cached_store(lua_State *L, const chain_opts *o) {
  X509_STORE *store;
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
  } else {
    lua_pop(L, 1);
    ERR_clear_error();
    store = X509_STORE_new();
    th_own(L, store, free_store);
    if (!store) th_raise(L, "failed", FN, "out of memory");
    if (o->cafile || o->capath) {
      if (!X509_STORE_load_locations(store, o->cafile, o->capath)) {
        th_push_ssl_errors(L, "cannot load");
        th_option_error(L, FN, o->cafile ? "cafile" : "capath", "cannot load the trust anchors: %s",
                        lua_tostring(L, -1));
      }
    } else if (!X509_STORE_set_default_paths(store)) {
      th_push_ssl_errors(L, "cannot load the system store");
      th_raise(L, "failed", FN, "cannot load the system trust store: %s", lua_tostring(L, -1));
    }
    lua_rawset(L, -3);  /* cache[key] = owner */
    lua_pop(L, 1);
  }
  if (!X509_STORE_up_ref(store)) th_raise(L, "failed", FN, "cannot reference the trust store");
  return store;
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

/* OpenSSL's verification of the chain; every error is collected. */
static void verify(lua_State *L, chain_job *j, const chain_opts *o) {
  STACK_OF(X509) *untrusted;
  X509_VERIFY_PARAM *param;
  int i;
  j->store = cached_store(L, o);  /* may raise: nothing of this call's yet */
  j->sctx = X509_STORE_CTX_new();
  untrusted = sk_X509_new_null();
  for (i = 1; untrusted && i < sk_X509_num(j->certs); i++)
    sk_X509_push(untrusted, sk_X509_value(j->certs, i));
  if (!j->sctx || !untrusted ||
      !X509_STORE_CTX_init(j->sctx, j->store, sk_X509_value(j->certs, 0), untrusted)) {
    sk_X509_free(untrusted);
    th_raise(L, "failed", FN, "cannot set up verification");
  }
  X509_STORE_CTX_set_app_data(j->sctx, j);
  X509_STORE_CTX_set_verify_cb(j->sctx, verify_cb);
  param = X509_STORE_CTX_get0_param(j->sctx);
  X509_VERIFY_PARAM_set_depth(param, o->depth);
  X509_VERIFY_PARAM_set_time(param, o->at);
  X509_verify_cert(j->sctx);
  sk_X509_free(untrusted);  /* the certificates belong to j->certs */
  ERR_clear_error();
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

/* The first caIssuers URI of x's Authority Information Access, pushed
 * (and returned), or NULL when it names none. */
static const char *push_ca_issuers(lua_State *L, X509 *x) {
  AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
  const char *uri = NULL;
  int i;
  for (i = 0; aia && !uri && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
    ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
    if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers && ad->location->type == GEN_URI) {
      const ASN1_IA5STRING *u = ad->location->d.uniformResourceIdentifier;
      uri = lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(u), (size_t)ASN1_STRING_length(u));
    }
  }
  AUTHORITY_INFO_ACCESS_free(aia);
  return uri;
}

/* The issuer of the top of the built chain is neither sent nor trusted.
 * Which of the two causes it is: a served intermediate on top means the
 * chain is whole up to a root this store does not know (UNKNOWN_CA); a
 * certificate that publishes its issuer (caIssuers) belongs to a
 * hierarchy whose intermediate the server should send
 * (MISSING_INTERMEDIATE); a leaf issued by a CA that publishes nothing is
 * most likely a private CA's (UNKNOWN_CA). */
static void missing_issuer(out *res, STACK_OF(X509) *built, int d, int idx, int code) {
  lua_State *L = res->L;
  X509 *top = built && d < sk_X509_num(built) ? sk_X509_value(built, d) : NULL;
  char issuer[256] = "?";
  const char *uri;
  if (!top) {
    problem(res, "MISSING_INTERMEDIATE", idx, "%s", X509_verify_cert_error_string(code));
    return;
  }
  X509_NAME_oneline(X509_get_issuer_name(top), issuer, sizeof issuer);
  uri = push_ca_issuers(L, top);
  if (uri)
    problem(res, "MISSING_INTERMEDIATE", idx, "the issuer of certificate %d (%s) is not in the chain and"
            " not a trust anchor; the certificate publishes it at %s: the server should send it",
            idx, issuer, uri);
  else if (X509_check_ca(top) != 0 && d > 0)
    problem(res, "UNKNOWN_CA", idx, "the chain ends in certificate %d, an intermediate issued by %s,"
            " which is no trust anchor here: a CA this trust store does not know", idx, issuer);
  else
    problem(res, "UNKNOWN_CA", idx, "certificate %d is issued by %s, which is neither in the chain nor a"
            " trust anchor, and names no place to fetch it from: a CA this trust store does not know"
            " (a private CA: check with its certificate as cafile), or a missing intermediate", idx, issuer);
  if (uri) lua_pop(L, 1);
}

/* OpenSSL's findings as problems (expiry is checked for every certificate
 * apart). */
static void report_verification(out *res, chain_job *j, const chain_opts *o) {
  STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(j->sctx);
  int i, seen_missing = 0;
  for (i = 0; i < j->nerr; i++) {
    int code = j->err_code[i], d = j->err_depth[i], idx = given_index(j, built, d);
    switch (code) {
      case X509_V_ERR_CERT_HAS_EXPIRED: case X509_V_ERR_CERT_NOT_YET_VALID:
      case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD: case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        break;
      case X509_V_ERR_INVALID_CA:
        problem(res, "NOT_CA", idx, "certificate %d issues others but is not a CA", idx);
        break;
      case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        problem(res, "DEPTH_EXCEEDED", idx, "the chain needs more than %d intermediate"
                " certificate%s (depth %d); OpenSSL refuses it", o->depth,
                o->depth == 1 ? "" : "s", o->depth);
        break;
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        problem(res, "SELF_SIGNED", 1, "the certificate is self-signed and not trusted");
        break;
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        problem(res, "UNTRUSTED", idx, "the chain ends in a self-signed root that is not"
                " a trust anchor");
        break;
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        if (!seen_missing) missing_issuer(res, built, d, idx, code);
        seen_missing = 1;
        break;
      case X509_V_ERR_CERT_UNTRUSTED: case X509_V_ERR_CERT_REJECTED:
        problem(res, "UNTRUSTED", idx, "%s", X509_verify_cert_error_string(code));
        break;
      default:
        problem(res, "VERIFY_ERROR", idx, "%s", X509_verify_cert_error_string(code));
    }
  }
}

/* Each certificate should be issued by the next one given. */
static void check_order(out *res, STACK_OF(X509) *certs) {
  int i, k, n = sk_X509_num(certs);
  for (i = 0; i + 1 < n; i++) {
    X509 *x = sk_X509_value(certs, i), *next = sk_X509_value(certs, i + 1);
    if (X509_check_issued(next, x) == X509_V_OK) continue;
    if (X509_check_issued(x, next) == X509_V_OK) {
      problem(res, "WRONG_ORDER", i + 1, "certificate %d issues certificate %d: the issuer"
              " comes before the certificate it issued", i + 1, i + 2);
      continue;
    }
    for (k = 0; k < n; k++) {
      if (k != i && k != i + 1 && X509_check_issued(sk_X509_value(certs, k), x) == X509_V_OK &&
          X509_self_signed(x, 0) != 1) {
        problem(res, "WRONG_ORDER", i + 2, "certificate %d does not issue certificate %d;"
                " certificate %d does: the chain is out of order", i + 2, i + 1, k + 1);
        break;
      }
    }
  }
}

/* Per certificate: its facts into the list on top of the stack, and the
 * CA flag, validity, key and signature strength as problems. */
static void check_certs(out *res, STACK_OF(X509) *certs, const chain_opts *o) {
  lua_State *L = res->L;
  int i, n = sk_X509_num(certs);
  for (i = 0; i < n; i++) {
    X509 *x = sk_X509_value(certs, i);
    EVP_PKEY *key = X509_get0_pubkey(x);
    int bits = 0, mdnid = NID_undef, top;
    long long left = seconds_until(X509_get0_notAfter(x), o->at);
    push_cert(L, x, o->at);
    lua_rawseti(L, -2, i + 1);
    top = lua_gettop(L);
    if (i > 0 && X509_check_ca(x) == 0)
      problem(res, "NOT_CA", i + 1, "certificate %d is in the chain but has no CA basic"
              " constraint", i + 1);
    if (seconds_until(X509_get0_notBefore(x), o->at) > 0) {
      th_push_asn1_time(L, X509_get0_notBefore(x));
      problem(res, "NOT_YET_VALID", i + 1, "certificate %d is not valid before %s", i + 1,
              lua_tostring(L, -1));
    } else if (left < 0) {
      th_push_asn1_time(L, X509_get0_notAfter(x));
      problem(res, "EXPIRED", i + 1, "certificate %d expired on %s", i + 1, lua_tostring(L, -1));
    } else if (left < (long long)o->warn_days * 86400) {
      th_push_asn1_time(L, X509_get0_notAfter(x));
      problem(res, "EXPIRES_SOON", i + 1, "certificate %d expires in %d days (%s)", i + 1,
              (int)(left / 86400), lua_tostring(L, -1));
    }
    lua_settop(L, top);
    if (key && key_is_weak(key, &bits))
      problem(res, "WEAK_KEY", i + 1, "certificate %d has a %d-bit %s key", i + 1, bits,
              EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "");
    X509_get_signature_info(x, &mdnid, NULL, NULL, NULL);
    if (X509_self_signed(x, 0) != 1 && (mdnid == NID_md5 || mdnid == NID_sha1 ||
        mdnid == NID_md2 || mdnid == NID_md4))
      problem(res, "WEAK_SIGNATURE", i + 1, "certificate %d is signed with %s", i + 1,
              OBJ_nid2sn(mdnid));
  }
}

/* A context's (or a given) private key must belong to the leaf. */
static void check_key(out *res, chain_job *j, SSL_CTX *ctx, const chain_opts *o) {
  X509 *leaf = sk_X509_value(j->certs, 0);
  int top = lua_gettop(res->L);
  BIO *bio;
  if (ctx && SSL_CTX_get0_privatekey(ctx) &&
      X509_check_private_key(leaf, SSL_CTX_get0_privatekey(ctx)) != 1)
    problem(res, "KEY_MISMATCH", 1, "the context's private key does not match its certificate");
  if (!o->keyfile) return;
  bio = BIO_new_file(o->keyfile, "r");
  if (!bio) {
    ERR_clear_error();
    th_option_error(res->L, FN, "key", "cannot read %s", th_quote_lstring(res->L, o->keyfile,
                    strlen(o->keyfile)));
  }
  j->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!j->key) {
    ERR_clear_error();
    th_option_error(res->L, FN, "key", "%s holds no PEM private key",
                    th_quote_lstring(res->L, o->keyfile, strlen(o->keyfile)));
  }
  if (X509_check_private_key(leaf, j->key) != 1)
    problem(res, "KEY_MISMATCH", 1, "the private key %s does not match the certificate",
            th_quote_lstring(res->L, o->keyfile, strlen(o->keyfile)));
  lua_settop(res->L, top);
}

/* tlsharden.chain(source [, opts]) */
int th_chain(lua_State *L) {
  chain_opts o;
  chain_job *j;
  SSL_CTX *ctx;
  STACK_OF(X509) *built;
  out res;
  int mode, depth = 0;
  if (lua_isnone(L, 1)) th_arg_error(L, FN, 1, "source", "expected a value");
  lua_settop(L, 2);
  read_opts(L, &o);
  j = (chain_job *)OPENSSL_zalloc(sizeof *j);
  th_own(L, j, job_free);
  if (!j || !(j->certs = sk_X509_new_null())) th_raise(L, "failed", FN, "out of memory");
  ctx = th_chain_source(L, j->certs, &mode);
  verify(L, j, &o);
  built = X509_STORE_CTX_get0_chain(j->sctx);
  /* intermediates between the leaf and the anchor */
  if (built && sk_X509_num(built) > 2) depth = sk_X509_num(built) - 2;

  lua_createtable(L, 0, 8);  /* result */
  lua_newtable(L);
  res.L = L;
  res.problems = lua_gettop(L);
  res.n = res.errors = 0;
  report_verification(&res, j, &o);
  check_order(&res, j->certs);
  lua_createtable(L, sk_X509_num(j->certs), 0);
  check_certs(&res, j->certs, &o);
  lua_setfield(L, res.problems - 1, "certs");
  if (o.host && !th_identity_matches(sk_X509_value(j->certs, 0), o.host, o.service))
    problem(&res, "HOST_MISMATCH", 1, "the certificate does not name %s%s%s",
            th_quote_lstring(L, o.host, strlen(o.host)), o.service ? " for " : "",
            o.service ? o.service : "");
  lua_settop(L, res.problems);
  check_key(&res, j, ctx, &o);
  ERR_clear_error();

  lua_setfield(L, res.problems - 1, "problems");
  lua_pushboolean(L, res.errors == 0);
  lua_setfield(L, -2, "ok");
  /* any finding of OpenSSL's, expiry included, means not trusted */
  lua_pushboolean(L, j->nerr == 0);
  lua_setfield(L, -2, "trusted");
  lua_pushinteger(L, depth);
  lua_setfield(L, -2, "depth");
  lua_pushinteger(L, sk_X509_num(j->certs));
  lua_setfield(L, -2, "count");
  lua_pushinteger(L, (lua_Integer)o.at);
  lua_setfield(L, -2, "at");
  if (ctx) {
    lua_pushstring(L, th_mode_name(mode));
    lua_setfield(L, -2, "mode");
  }
  return 1;
}
