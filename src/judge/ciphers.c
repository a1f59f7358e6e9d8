/* Cipher suites: expand an OpenSSL cipher string the way a context would,
 * classify every suite from OpenSSL's own cipher data, and judge forward
 * secrecy of strings, contexts and live connections. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "core/tlsharden.h"

typedef struct nid_name { int nid; const char *name; } nid_name;

static const nid_name kx_names[] = {
  {NID_kx_ecdhe, "ECDHE"}, {NID_kx_dhe, "DHE"}, {NID_kx_rsa, "RSA"},
  {NID_kx_psk, "PSK"}, {NID_kx_ecdhe_psk, "ECDHE-PSK"}, {NID_kx_dhe_psk, "DHE-PSK"},
  {NID_kx_rsa_psk, "RSA-PSK"}, {NID_kx_srp, "SRP"}, {NID_kx_gost, "GOST"},
  {NID_kx_gost18, "GOST18"}, {NID_kx_any, "any"}, {NID_undef, NULL}
};

static const nid_name auth_names[] = {
  {NID_auth_rsa, "RSA"}, {NID_auth_ecdsa, "ECDSA"}, {NID_auth_dss, "DSS"},
  {NID_auth_psk, "PSK"}, {NID_auth_srp, "SRP"}, {NID_auth_null, "None"},
  {NID_auth_gost01, "GOST01"}, {NID_auth_gost12, "GOST12"}, {NID_auth_any, "any"},
  {NID_undef, NULL}
};

static const char *const weak_names[] = {
  "NULL", "EXPORT", "anon", "RC4", "DES", "MD5", "BITS<128", "CBC"
};

static void free_bytes(void *p) { OPENSSL_free(p); }

static const char *nid_lookup(const nid_name *t, int nid) {
  for (; t->name; t++)
    if (t->nid == nid) return t->name;
  return "unknown";
}

/* Key exchange name: "ECDHE", "DHE", "RSA", "PSK", ..., "any" (TLS 1.3). */
static const char *cipher_kx(const SSL_CIPHER *c) {
  return nid_lookup(kx_names, SSL_CIPHER_get_kx_nid(c));
}

int th_cipher_is_fs(const SSL_CIPHER *c) {
  switch (SSL_CIPHER_get_kx_nid(c)) {
    case NID_kx_ecdhe: case NID_kx_dhe: case NID_kx_ecdhe_psk: case NID_kx_dhe_psk:
    case NID_kx_any:  /* TLS 1.3: always (EC)DHE for a full handshake */
      return 1;
    default:
      return 0;
  }
}

static int cipher_is_dhe(const SSL_CIPHER *c) {
  int kx = SSL_CIPHER_get_kx_nid(c);
  return kx == NID_kx_dhe || kx == NID_kx_dhe_psk;
}

static int cipher_is_ecdhe(const SSL_CIPHER *c) {
  int kx = SSL_CIPHER_get_kx_nid(c);
  return kx == NID_kx_ecdhe || kx == NID_kx_ecdhe_psk;
}

unsigned th_cipher_weakness(const SSL_CIPHER *c, int strict) {
  unsigned w = 0;
  int alg_bits = 0, bits = SSL_CIPHER_get_bits(c, &alg_bits);
  int enc = SSL_CIPHER_get_cipher_nid(c);
  if (enc == NID_undef) w |= TH_WEAK_NULL;
  /* Export grade: strength deliberately cut below the algorithm's size. */
  if (bits > 0 && bits <= 56 && alg_bits > bits) w |= TH_WEAK_EXPORT;
  if (SSL_CIPHER_get_auth_nid(c) == NID_auth_null) w |= TH_WEAK_ANON;
  if (enc == NID_rc4 || enc == NID_rc4_40 || enc == NID_rc4_hmac_md5) w |= TH_WEAK_RC4;
  if (enc == NID_des_cbc || enc == NID_des_ede3_cbc || enc == NID_des_ede_cbc)
    w |= TH_WEAK_DES;
  if (SSL_CIPHER_get_digest_nid(c) == NID_md5) w |= TH_WEAK_MD5;
  if (bits < 128) w |= TH_WEAK_BITS;
  if (strict && !SSL_CIPHER_is_aead(c)) w |= TH_WEAK_CBC;
  return w;
}

/* "TLSv1.2" -> "tlsv1_2": the version a suite first appeared in. */
static const char *min_protocol(const SSL_CIPHER *c) {
  const char *v = SSL_CIPHER_get_version(c);
  if (strcmp(v, "TLSv1.3") == 0) return "tlsv1_3";
  if (strcmp(v, "TLSv1.2") == 0) return "tlsv1_2";
  if (strcmp(v, "TLSv1.0") == 0) return "tlsv1";
  if (strcmp(v, "SSLv3") == 0) return "sslv3";
  return v;
}

void th_push_weak_list(lua_State *L, unsigned w) {
  unsigned i;
  int n = 0;
  lua_newtable(L);
  for (i = 0; i < sizeof weak_names / sizeof weak_names[0]; i++) {
    if (w & (1u << i)) {
      lua_pushstring(L, weak_names[i]);
      lua_rawseti(L, -2, ++n);
    }
  }
}

/* Push a table describing one suite. */
static void push_cipher_info(lua_State *L, const SSL_CIPHER *c, int strict) {
  int alg_bits = 0, bits = SSL_CIPHER_get_bits(c, &alg_bits);
  int enc = SSL_CIPHER_get_cipher_nid(c), md = SSL_CIPHER_get_digest_nid(c);
  unsigned id = SSL_CIPHER_get_protocol_id(c);
  const char *iana = SSL_CIPHER_standard_name(c);
  char hex[16];
  lua_createtable(L, 0, 16);
  lua_pushstring(L, SSL_CIPHER_get_name(c));
  lua_setfield(L, -2, "name");
  lua_pushstring(L, iana ? iana : SSL_CIPHER_get_name(c));
  lua_setfield(L, -2, "iana");
  lua_pushinteger(L, (lua_Integer)id);
  lua_setfield(L, -2, "id");
  snprintf(hex, sizeof hex, "0x%02X,0x%02X", (id >> 8) & 0xFF, id & 0xFF);
  lua_pushstring(L, hex);
  lua_setfield(L, -2, "hex");
  lua_pushstring(L, min_protocol(c));
  lua_setfield(L, -2, "protocol");
  lua_pushstring(L, cipher_kx(c));
  lua_setfield(L, -2, "kx");
  lua_pushstring(L, nid_lookup(auth_names, SSL_CIPHER_get_auth_nid(c)));
  lua_setfield(L, -2, "auth");
  lua_pushstring(L, enc == NID_undef ? "NULL" : OBJ_nid2ln(enc));
  lua_setfield(L, -2, "encryption");
  lua_pushinteger(L, bits);
  lua_setfield(L, -2, "bits");
  lua_pushinteger(L, alg_bits);
  lua_setfield(L, -2, "alg_bits");
  lua_pushboolean(L, SSL_CIPHER_is_aead(c));
  lua_setfield(L, -2, "aead");
  lua_pushstring(L, SSL_CIPHER_is_aead(c) ? "AEAD" : md == NID_undef ? "NULL" : OBJ_nid2sn(md));
  lua_setfield(L, -2, "mac");
  lua_pushboolean(L, th_cipher_is_fs(c));
  lua_setfield(L, -2, "fs");
  th_push_weak_list(L, th_cipher_weakness(c, strict));
  lua_setfield(L, -2, "weak");
}

/* Push the summary of a suite list: the result table of ciphers(). Each
 * suite table gets a "usable" flag when usable[] is given. */
static void push_suites(lua_State *L, STACK_OF(SSL_CIPHER) *sk, int strict,
                        const signed char *usable) {
  int i, n = sk ? sk_SSL_CIPHER_num(sk) : 0, fs = 0, nonfs = 0, weak = 0, tls13 = 0, unusable = 0;
  lua_createtable(L, 0, 10);
  lua_newtable(L);           /* unusable */
  lua_createtable(L, n, 0);  /* suites */
  lua_newtable(L);           /* non_fs */
  lua_newtable(L);           /* weak */
  for (i = 0; i < n; i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    unsigned w = th_cipher_weakness(c, strict);
    int is_fs = th_cipher_is_fs(c);
    if (usable && usable[i] == 0) is_fs = 0;
    push_cipher_info(L, c, strict);
    if (usable) {
      lua_pushboolean(L, usable[i] != 0);
      lua_setfield(L, -2, "usable");
      if (usable[i] == 0) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "fs");
      }
    }
    lua_rawseti(L, -4, i + 1);
    if (usable && usable[i] == 0) {
      /* never negotiated: counted neither way, listed apart */
      lua_pushstring(L, SSL_CIPHER_get_name(c));
      lua_rawseti(L, -5, ++unusable);
      continue;
    }
    if (is_fs) fs++;
    else {
      lua_pushstring(L, SSL_CIPHER_get_name(c));
      lua_rawseti(L, -3, ++nonfs);
    }
    if (w) {
      lua_createtable(L, 0, 2);
      lua_pushstring(L, SSL_CIPHER_get_name(c));
      lua_setfield(L, -2, "name");
      th_push_weak_list(L, w);
      lua_setfield(L, -2, "reasons");
      lua_rawseti(L, -2, ++weak);
    }
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) tls13++;
  }
  lua_setfield(L, -5, "weak");
  lua_setfield(L, -4, "non_fs");
  lua_setfield(L, -3, "suites");
  lua_setfield(L, -2, "unusable");
  n -= unusable;
  /* the verdict (each suite's fs is a boolean) */
  th_set_string(L, "forward_secrecy", n == 0 || fs == 0 ? "none" : fs == n ? "all" : "some");
  th_set_int(L, "count", n);
  th_set_int(L, "unusable_count", unusable);
  th_set_int(L, "fs_count", fs);
  th_set_int(L, "non_fs_count", nonfs);
  th_set_int(L, "weak_count", weak);
  th_set_int(L, "tls13_count", tls13);
}

static const char *check_plain_string(lua_State *L, int idx, const char *fn, const char *name) {
  size_t len;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) {
    th_arg_error(L, fn, idx, name, "expected a string, got %s", th_quote(L, idx));
    return NULL;
  }
  s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len) th_arg_error(L, fn, idx, name, "contains a NUL byte: %s", th_quote(L, idx));
  return s;
}

typedef struct cipher_opts {
  const char *ciphersuites;  /* NULL: OpenSSL's default */
  th_range range;
  int has_range, seclevel, strict;
} cipher_opts;

static void check_cipher_opts(lua_State *L, int idx, const char *fn, cipher_opts *o) {
  static const char *const known[] = {"ciphersuites", "protocol", "seclevel", "strict", NULL};
  th_opts r;
  memset(o, 0, sizeof *o);
  th_opts_open(L, &r, idx, fn, "opts", "option", known);
  o->ciphersuites = th_opt_string(&r, "ciphersuites", TH_OPT_EMPTY, NULL);
  if (th_opt_get(&r, "protocol") != LUA_TNIL) {
    if (!th_protocol_parse(L, -1, &o->range))
      th_opt_error(&r, "protocol", "%s", lua_tostring(L, -1));
    o->has_range = 1;
  }
  lua_pop(L, 1);
  o->seclevel = th_opt_int(&r, "seclevel", 0, 5, -1, TH_NO_FALSE);
  o->strict = th_opt_bool(&r, "strict", 0);
}

/* Raise with OpenSSL's errors, releasing the context first (owned may be
 * NULL): refused specs must not leave their contexts to the collector,
 * which does not see their size. */
/* Raise what OpenSSL refused of value: an error of argument argn (or of
 * option, when not NULL), or one of OpenSSL failing (argn 0, no option). */
static int fail_ssl(lua_State *L, const char *fn, int argn, const char *option, const char *what,
                    const char *value, th_owned *owned) {
  th_quote_lstring(L, value, strlen(value));
  th_push_ssl_errors(L, "unknown OpenSSL error");
  if (owned) th_release(owned);
  if (option) return th_option_error(L, fn, option, "%s %s: %s", what, lua_tostring(L, -2), lua_tostring(L, -1));
  if (argn > 0)
    return th_arg_error(L, fn, argn, "spec", "%s %s: %s", what, lua_tostring(L, -2), lua_tostring(L, -1));
  return th_raise(L, "failed", fn, "%s %s: %s", what, lua_tostring(L, -2), lua_tostring(L, -1));
}

/* Expand spec into the suites a server context with opts would offer.
 * Leaves the result table on the stack. */
static void expand(lua_State *L, const char *fn, const char *spec, const cipher_opts *o) {
  SSL_CTX *ctx;
  SSL *ssl;
  th_owned *octx, *ossl, *osk;
  STACK_OF(SSL_CIPHER) *sk;
  ERR_clear_error();
  ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) fail_ssl(L, fn, 0, NULL, "cannot create a context for", spec, NULL);
  octx = th_own(L, ctx, th_free_ssl_ctx);
  if (o->seclevel >= 0) SSL_CTX_set_security_level(ctx, o->seclevel);
  if (o->has_range) {
    if (!o->range.open_lo &&
        !SSL_CTX_set_min_proto_version(ctx, th_versions[o->range.lo].wire))
      fail_ssl(L, fn, 0, "protocol", "cannot set the minimum version", th_versions[o->range.lo].name, octx);
    if (!o->range.open_hi &&
        !SSL_CTX_set_max_proto_version(ctx, th_versions[o->range.hi].wire))
      fail_ssl(L, fn, 0, "protocol", "cannot set the maximum version", th_versions[o->range.hi].name, octx);
  }
  if (!SSL_CTX_set_cipher_list(ctx, spec))
    fail_ssl(L, fn, 1, NULL, "no cipher suite matches", spec, octx);
  if (o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites))
    fail_ssl(L, fn, 0, "ciphersuites", "OpenSSL refuses", o->ciphersuites, octx);
  ssl = SSL_new(ctx);
  if (!ssl) fail_ssl(L, fn, 0, NULL, "cannot create a connection for", spec, octx);
  ossl = th_own(L, ssl, th_free_ssl);
  sk = SSL_get1_supported_ciphers(ssl);
  osk = th_own(L, sk, th_free_cipher_stack);
  push_suites(L, sk, o->strict, NULL);
  lua_pushinteger(L, SSL_get_security_level(ssl));
  lua_setfield(L, -2, "seclevel");
  th_release(osk);
  th_release(ossl);
  th_release(octx);
  lua_replace(L, -4);
  lua_pop(L, 2);
  ERR_clear_error();
}

/* tlsharden.ciphers(spec [, opts]) */
int th_ciphers(lua_State *L) {
  cipher_opts o;
  const char *spec = check_plain_string(L, 1, "ciphers", "spec");
  check_cipher_opts(L, 2, "ciphers", &o);
  lua_settop(L, 2);
  expand(L, "ciphers", spec, &o);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "spec");
  return 1;
}

/* One in-memory TLS 1.2 handshake between a throwaway client offering only
 * client_ciphers and the server context: whether the server can complete
 * it. This is how a context's DH parameters and groups are put to the test,
 * since OpenSSL 3.0 has no getter for them. */
/* Whether one of the server's certificates has an RSA or DSA key: DHE
 * suites authenticate with those only (OpenSSL has no DHE-ECDSA). The
 * certificates are visited through the context's current one, which is put
 * back; a current certificate without its key cannot be put back, so then
 * the answer is yes and the handshake decides. */
static int dhe_can_authenticate(SSL_CTX *ctx) {
  X509 *current = SSL_CTX_get0_certificate(ctx);
  int found = 0, more;
  if (!current || !SSL_CTX_get0_privatekey(ctx)) return 1;
  for (more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); more && !found;
       more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
    X509 *x = SSL_CTX_get0_certificate(ctx);
    int id = x && X509_get0_pubkey(x) ? EVP_PKEY_get_base_id(X509_get0_pubkey(x)) : 0;
    found = id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS || id == EVP_PKEY_DSA;
  }
  for (more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
       more && SSL_CTX_get0_certificate(ctx) != current;
       more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {}
  ERR_clear_error();
  return found;
}

/* An in-memory handshake between a client of security level 0 offering
 * versions min..max and client_ciphers (TLS 1.2 and older; TLS 1.3 suites
 * are OpenSSL's defaults) and a connection of the server context: whether
 * it completes. */
static int probe(lua_State *L, SSL_CTX *server, int min, int max, const char *client_ciphers) {
  SSL_CTX *cctx;
  SSL *c = NULL, *s = NULL;
  BIO *cb = NULL, *sb = NULL;
  int ok = 0, i;
  cctx = SSL_CTX_new(TLS_client_method());
  if (!cctx) goto done;
  SSL_CTX_set_security_level(cctx, 0);
  SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
  if (!SSL_CTX_set_min_proto_version(cctx, min) || !SSL_CTX_set_max_proto_version(cctx, max) ||
      !SSL_CTX_set_cipher_list(cctx, client_ciphers))
    goto done;
  c = SSL_new(cctx);
  s = SSL_new(server);
  if (!c || !s || !BIO_new_bio_pair(&cb, 0, &sb, 0)) goto done;
  SSL_set_bio(c, cb, cb);
  SSL_set_bio(s, sb, sb);
  th_luasec_probe_dh(L, server, s);
  /* The probe client has no certificate: do not ask it for one. */
  SSL_set_verify(s, SSL_VERIFY_NONE, NULL);
  cb = sb = NULL;
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  for (i = 0; i < 64; i++) {
    int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
    int ec = rc == 1 ? 0 : SSL_get_error(c, rc), es = rs == 1 ? 0 : SSL_get_error(s, rs);
    if (rc == 1 && rs == 1) { ok = 1; break; }
    if ((ec && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE) ||
        (es && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE))
      break;
  }
done:
  BIO_free(cb);
  BIO_free(sb);
  SSL_free(c);
  SSL_free(s);
  SSL_CTX_free(cctx);
  ERR_clear_error();
  return ok;
}

int th_probe_handshake(lua_State *L, SSL_CTX *server, const char *client_ciphers) {
  /* No handshake can tell more than the key type does. */
  if (strcmp(client_ciphers, TH_PROBE_DHE) == 0 && !dhe_can_authenticate(server)) return 0;
  return probe(L, server, 0, TLS1_2_VERSION, client_ciphers);
}

int th_probe_version(lua_State *L, SSL_CTX *server, int wire) {
  /* every suite OpenSSL has, the weak ones included: the server chooses */
  return probe(L, server, wire, wire, "ALL:COMPLEMENTOFALL:@SECLEVEL=0");
}

/* The suites of a LuaSec context, with DHE and ECDHE suites tested for
 * usability when the context can serve (server mode with a certificate). */
static void context_suites(lua_State *L, SSL_CTX *ctx, int mode) {
  SSL *ssl;
  STACK_OF(SSL_CIPHER) *sk;
  th_owned *ossl, *osk, *ousable;
  signed char *usable;
  int i, n, can_probe, dhe_ok = -1, ecdhe_ok = -1;
  ERR_clear_error();
  ssl = SSL_new(ctx);
  if (!ssl) {
    th_push_ssl_errors(L, "SSL_new failed");
    th_raise(L, "failed", "forward_secrecy", "cannot use the context: %s", lua_tostring(L, -1));
  }
  ossl = th_own(L, ssl, th_free_ssl);
  sk = SSL_get1_supported_ciphers(ssl);
  osk = th_own(L, sk, th_free_cipher_stack);
  n = sk ? sk_SSL_CIPHER_num(sk) : 0;
  usable = n > 0 ? (signed char *)OPENSSL_zalloc((size_t)n) : NULL;
  ousable = th_own(L, usable, free_bytes);
  can_probe = mode == TH_MODE_SERVER && SSL_CTX_get0_certificate(ctx) != NULL;
  for (i = 0; i < n; i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    usable[i] = 1;
    if (!can_probe) continue;
    if (cipher_is_dhe(c)) {
      if (dhe_ok < 0) dhe_ok = th_probe_handshake(L, ctx, TH_PROBE_DHE);
      usable[i] = (signed char)dhe_ok;
    } else if (cipher_is_ecdhe(c)) {
      if (ecdhe_ok < 0) ecdhe_ok = th_probe_handshake(L, ctx, TH_PROBE_ECDHE);
      usable[i] = (signed char)ecdhe_ok;
    }
  }
  push_suites(L, sk, 0, usable);
  lua_pushboolean(L, can_probe);
  lua_setfield(L, -2, "probed");
  if (dhe_ok >= 0) {
    lua_pushboolean(L, dhe_ok);
    lua_setfield(L, -2, "dhe_usable");
  }
  if (ecdhe_ok >= 0) {
    lua_pushboolean(L, ecdhe_ok);
    lua_setfield(L, -2, "ecdhe_usable");
  }
  lua_pushstring(L, "context");
  lua_setfield(L, -2, "source");
  th_release(ousable);
  th_release(osk);
  th_release(ossl);
  lua_replace(L, -4);
  lua_pop(L, 2);
}

static void connection_details(lua_State *L, SSL *ssl) {
  const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
  EVP_PKEY *key = NULL;
  int group, fs;
  if (!c) th_arg_error(L, "forward_secrecy", 1, NULL, "the connection has not"
                   " completed its handshake");
  group = (int)SSL_get_negotiated_group(ssl);
  fs = th_cipher_is_fs(c);
  /* A TLS 1.3 resumption without (EC)DHE (psk_ke) is not forward secret. */
  if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any && group == 0) fs = 0;
  lua_createtable(L, 0, 8);
  lua_pushstring(L, "connection");
  lua_setfield(L, -2, "source");
  push_cipher_info(L, c, 0);
  lua_pushboolean(L, fs);
  lua_setfield(L, -2, "fs");
  lua_setfield(L, -2, "cipher");
  lua_pushstring(L, SSL_get_version(ssl));
  lua_setfield(L, -2, "protocol");
  lua_pushboolean(L, SSL_session_reused(ssl));
  lua_setfield(L, -2, "resumed");
  if (group != 0) {
    const char *name = SSL_group_to_name(ssl, group);
    lua_pushstring(L, name ? name : OBJ_nid2sn(group));
    lua_setfield(L, -2, "group");
  }
  if (SSL_is_server(ssl) ? SSL_get_tmp_key(ssl, &key) : SSL_get_peer_tmp_key(ssl, &key)) {
    lua_pushinteger(L, EVP_PKEY_get_bits(key));
    lua_setfield(L, -2, "group_bits");
    EVP_PKEY_free(key);
  }
  th_set_string(L, "forward_secrecy", fs ? "all" : "none");
  ERR_clear_error();
}

/* tlsharden.forward_secrecy(x): x a cipher string, a LuaSec context or a
 * LuaSec connection after its handshake. Returns verdict, details. */
int th_forward_secrecy(lua_State *L) {
  int mode = 0;
  SSL_CTX *ctx;
  if (lua_type(L, 1) == LUA_TSTRING) {
    cipher_opts o;
    const char *spec = check_plain_string(L, 1, "forward_secrecy", NULL);
    memset(&o, 0, sizeof o);
    o.seclevel = -1;
    lua_settop(L, 1);
    expand(L, "forward_secrecy", spec, &o);
    lua_pushstring(L, "string");
    lua_setfield(L, -2, "source");
  } else if ((ctx = th_test_context(L, 1, &mode)) != NULL) {
    lua_settop(L, 1);
    context_suites(L, ctx, mode);
  } else if (luaL_testudata(L, 1, TH_LUASEC_CONNECTION)) {
    SSL *ssl = th_check_connection(L, 1, "forward_secrecy");
    lua_settop(L, 1);
    connection_details(L, ssl);
  } else if (th_is_context(L, 1)) {
    th_check_context(L, 1, "forward_secrecy", NULL);  /* raises: closed or unknown */
    return 0;
  } else {
    return th_arg_error(L, "forward_secrecy", 1, NULL, "expected a cipher string, a LuaSec"
                        " context or a LuaSec connection, got %s", th_quote(L, 1));
  }
  lua_getfield(L, -1, "forward_secrecy");
  lua_insert(L, -2);
  return 2;
}
