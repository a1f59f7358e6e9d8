/* Context inspection: what the SSL_CTX inside a LuaSec context really has
 * in force, read back from OpenSSL (and, for what OpenSSL 3.0 cannot tell,
 * from what harden.c recorded on the context). */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/tlsharden.h"

/* A key's type name and size in bits, as two values. */
static void push_key(lua_State *L, EVP_PKEY *key) {
  const char *type = EVP_PKEY_get0_type_name(key);
  lua_pushstring(L, type ? type : "unknown");
  lua_pushinteger(L, EVP_PKEY_get_bits(key));
}

static void push_certificate(lua_State *L, X509 *cert) {
  EVP_PKEY *key = X509_get0_pubkey(cert);
  lua_createtable(L, 0, 5);
  th_push_x509_name(L, X509_get_subject_name(cert));
  lua_setfield(L, -2, "subject");
  th_push_asn1_time(L, X509_get0_notAfter(cert));
  lua_setfield(L, -2, "not_after");
  if (key) {
    push_key(L, key);
    lua_setfield(L, -3, "key_bits");
    lua_setfield(L, -2, "key_type");
  }
}

static void push_verify_mode(lua_State *L, int mode) {
  int n = 0;
  lua_createtable(L, 3, 0);
  if (mode == SSL_VERIFY_NONE) {
    lua_pushliteral(L, "none");
    lua_rawseti(L, -2, ++n);
  }
  if (mode & SSL_VERIFY_PEER) { lua_pushliteral(L, "peer"); lua_rawseti(L, -2, ++n); }
  if (mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) {
    lua_pushliteral(L, "fail_if_no_peer_cert");
    lua_rawseti(L, -2, ++n);
  }
  if (mode & SSL_VERIFY_CLIENT_ONCE) { lua_pushliteral(L, "client_once"); lua_rawseti(L, -2, ++n); }
}

static void push_suite_list(lua_State *L, SSL_CTX *ctx, int tls13) {
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
  int i, n = 0;
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++)
    n += (SSL_CIPHER_get_kx_nid(sk_SSL_CIPHER_value(sk, i)) == NID_kx_any) == tls13;
  lua_createtable(L, n, 0);
  n = 0;
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    const char *iana = SSL_CIPHER_standard_name(c);
    if ((SSL_CIPHER_get_kx_nid(c) == NID_kx_any) != tls13) continue;
    lua_createtable(L, 0, 2);
    lua_pushstring(L, SSL_CIPHER_get_name(c));
    lua_setfield(L, -2, "name");
    lua_pushstring(L, iana ? iana : SSL_CIPHER_get_name(c));
    lua_setfield(L, -2, "iana");
    lua_rawseti(L, -2, ++n);
  }
}

/* tlsharden.context.key_kind(ctx): the type name and size in bits of the loaded
 * certificate's key ("EC", 256), or nil without a certificate. Puts
 * nothing in Lua's heap after the first call (both values are short
 * strings and integers): a caller that decides per key on every context
 * can ask before the context serves. */
int th_key_kind(lua_State *L) {
  SSL_CTX *ctx = th_check_context(L, 1, "context.key_kind", NULL);
  X509 *cert = SSL_CTX_get0_certificate(ctx);
  EVP_PKEY *key = cert ? X509_get0_pubkey(cert) : NULL;
  if (!key) {
    lua_pushnil(L);
    return 1;
  }
  push_key(L, key);
  return 2;
}

/* tlsharden.inspect(ctx [, opts]): what the SSL_CTX really has in force.
 * opts.only = "certificate": the mode and the certificate alone (what a
 * caller deciding per certificate needs, without the suite lists). */
/* served: of the versions the context enables (the list at versions of
 * the table on top), those a client gets in a real handshake: OpenSSL 3
 * refuses the ones below TLS 1.2 at security level 1 and above, whatever
 * the context's range says. */
static void push_served(lua_State *L, SSL_CTX *ctx) {
  int i, n = 0, t = lua_gettop(L);
  lua_getfield(L, t, "versions");
  lua_createtable(L, TH_NVERSIONS, 0);
  for (i = 1; lua_rawgeti(L, t + 1, i) == LUA_TSTRING; i++) {
    const char *name = lua_tostring(L, -1);
    int v;
    for (v = 0; v < TH_NVERSIONS && strcmp(th_versions[v].name, name) != 0; v++) {}
    if (v < TH_NVERSIONS && th_probe_version(L, ctx, th_versions[v].wire)) {
      lua_rawseti(L, t + 2, ++n);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_setfield(L, t, "served");
  lua_pop(L, 1);
}

int th_inspect(lua_State *L) {
  static const char *const known[] = {"probe", "only", NULL};
  static const char *const parts[] = {"all", "certificate", NULL};
  int mode = 0, probe, only;
  SSL_CTX *ctx = th_check_context(L, 1, "inspect", &mode);
  th_ctx_state *st = th_ctx_state_get(L, ctx, 0);
  X509 *cert = SSL_CTX_get0_certificate(ctx);
  uint64_t opts = SSL_CTX_get_options(ctx);
  th_opts o;
  lua_settop(L, 2);
  th_opts_open(L, &o, 2, "inspect", "opts", "option", known);
  probe = th_opt_bool(&o, "probe", 0);
  only = th_opt_enum(&o, "only", parts, 0);
  lua_settop(L, 1);
  if (only == 1) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, th_mode_name(mode));
    lua_setfield(L, -2, "mode");
    if (cert) {
      push_certificate(L, cert);
      lua_setfield(L, -2, "certificate");
    }
    return 1;
  }
  th_push_ctx_versions(L, ctx);
  if (probe && mode == TH_MODE_SERVER && cert) push_served(L, ctx);
  lua_pushstring(L, th_mode_name(mode));
  lua_setfield(L, -2, "mode");
  th_push_option_names(L, opts);
  lua_setfield(L, -2, "options");
  push_suite_list(L, ctx, 0);
  lua_setfield(L, -2, "tls12_suites");
  push_suite_list(L, ctx, 1);
  lua_setfield(L, -2, "tls13_suites");
  if (st && st->groups[0]) {
    lua_pushstring(L, st->groups);
    lua_setfield(L, -2, "groups");
    lua_pushliteral(L, "set by tlsharden.harden");
  } else {
    lua_pushliteral(L, "unknown: set by LuaSec's curveslist or OpenSSL's default;"
                    " OpenSSL 3.0 cannot read it back");
  }
  lua_setfield(L, -2, "groups_source");
  lua_pushinteger(L, SSL_CTX_get_security_level(ctx));
  lua_setfield(L, -2, "security_level");
  push_verify_mode(L, SSL_CTX_get_verify_mode(ctx));
  lua_setfield(L, -2, "verify");
  lua_pushinteger(L, SSL_CTX_get_verify_depth(ctx));
  lua_setfield(L, -2, "depth");
  lua_pushinteger(L, (lua_Integer)SSL_CTX_get_num_tickets(ctx));
  lua_setfield(L, -2, "num_tickets");
  lua_pushboolean(L, (opts & SSL_OP_NO_TICKET) == 0);
  lua_setfield(L, -2, "tickets");
  lua_pushboolean(L, (opts & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
  lua_setfield(L, -2, "server_preference");
  if (st && st->dh_auto) lua_pushliteral(L, "auto");
  else if (probe && mode == TH_MODE_SERVER && cert)
    lua_pushstring(L, th_probe_handshake(L, ctx, TH_PROBE_DHE) ? "usable" : "none");
  else lua_pushliteral(L, "unknown");
  lua_setfield(L, -2, "dh");
  if (probe && mode == TH_MODE_SERVER && cert) {
    lua_pushboolean(L, th_probe_handshake(L, ctx, TH_PROBE_ECDHE));
    lua_setfield(L, -2, "ecdhe_usable");
  }
  lua_pushboolean(L, st && st->unusable);
  lua_setfield(L, -2, "unusable");
  if (st && st->unusable) {
    lua_pushstring(L, st->failed_step);
    lua_setfield(L, -2, "failed_step");
  }
  if (cert) {
    push_certificate(L, cert);
    lua_setfield(L, -2, "certificate");
  }
  return 1;
}
