/* Context hardening and inspection: change the SSL_CTX inside a LuaSec
 * context in place (what LuaSec cannot: clear options, set the minimum
 * version, groups, security level), read back what is really in force, and
 * fail closed: a context whose hardening failed half way is made unusable. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tlsharden.h"

#define EXDATA_KEY "tlsharden.context.exdata"
#define TLS13_AEAD "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* What tlsharden knows about a context that OpenSSL cannot tell back. */
typedef struct ctx_state {
  int unusable;
  int dh_auto;
  char failed_step[64];
  char groups[256];
} ctx_state;

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  free(ptr);
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
  if (idx < 0) th_error(L, "harden", "cannot allocate OpenSSL ex_data");
  lua_pushinteger(L, idx);
  lua_setfield(L, LUA_REGISTRYINDEX, EXDATA_KEY);
  return idx;
}

static ctx_state *get_state(lua_State *L, SSL_CTX *ctx, int create) {
  int idx = exdata_index(L);
  ctx_state *st = (ctx_state *)SSL_CTX_get_ex_data(ctx, idx);
  if (!st && create) {
    st = (ctx_state *)calloc(1, sizeof *st);
    if (!st || !SSL_CTX_set_ex_data(ctx, idx, st)) {
      free(st);
      th_error(L, "harden", "out of memory");
    }
  }
  return st;
}

/* --- the policy, validated before anything is touched ------------------- */

typedef struct policy {
  int min_version;      /* index, or -1 to leave */
  int tls13;            /* 1 ensure on, 0 leave */
  int compression;      /* 0 switch off, 1 leave */
  int renegotiation;    /* 0 switch off, 1 leave */
  int security_level;   /* minimum, or -1 */
  int filter_ciphers;   /* keep FS, non-weak TLS 1.2 suites */
  int aead_only;        /* ...and only AEAD ones */
  const char *ciphersuites;  /* TLS 1.3 allowed set, or NULL */
  const char *groups;        /* or NULL */
  int depth_min, depth_max, depth;  /* depth 0: leave */
  int server_preference;     /* 1 set, 0 clear, -1 leave */
  const char *dhe;           /* "auto", "drop", "keep" */
  int num_tickets;           /* TLS 1.3 tickets per full handshake, or -1 */
} policy;

static int opt_field(lua_State *L, int t, const char *name) {
  return lua_getfield(L, t, name);
}

static int policy_int(lua_State *L, int t, const char *name, int lo, int hi, int dflt) {
  int v = dflt;
  int type = opt_field(L, t, name);
  if (type == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = -1;
  else if (type != LUA_TNIL) {
    int isint;
    lua_Integer x = lua_tointegerx(L, -1, &isint);
    if (!isint || x < lo || x > hi)
      th_error(L, "harden", "bad policy '%s': expected an integer from %d to %d or false, got %s",
               name, lo, hi, luaL_tolstring(L, -1, NULL));
    v = (int)x;
  }
  lua_pop(L, 1);
  return v;
}

static int policy_bool(lua_State *L, int t, const char *name, int dflt) {
  int v = dflt;
  int type = opt_field(L, t, name);
  if (type == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (type != LUA_TNIL)
    th_error(L, "harden", "bad policy '%s': expected a boolean, got %s", name, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static const char *policy_string(lua_State *L, int t, const char *name, const char *dflt) {
  const char *v = dflt;
  int type = opt_field(L, t, name);
  if (type == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = NULL;
  else if (type == LUA_TSTRING) {
    size_t len;
    v = lua_tolstring(L, -1, &len);
    if (strlen(v) != len) th_error(L, "harden", "bad policy '%s': contains a NUL byte", name);
  } else if (type != LUA_TNIL)
    th_error(L, "harden", "bad policy '%s': expected a string or false, got %s", name,
             luaL_typename(L, -1));
  lua_pop(L, 1);  /* the string stays alive in the policy table */
  return v;
}

/* The string rules are tried by OpenSSL first (values.c, remembered per
 * state), so that a bad value is an error before the context is touched. */
static void check_policy_list(lua_State *L, const char *rule, const char *value, int groups) {
  if (!value) return;
  lua_pushstring(L, value);
  if (!th_list_check(L, lua_gettop(L), groups))
    th_error(L, "harden", "bad policy '%s' '%s': %s (the context was not changed)", rule, value,
             lua_tostring(L, -1));
  lua_pop(L, 1);
}

static void read_policy(lua_State *L, int t, policy *p) {
  static const char *const known[] = {  /* sorted, for the binary search */
    "aead_only", "ciphersuites", "compression", "depth", "depth_max", "depth_min", "dhe",
    "filter_ciphers", "groups", "min_version", "num_tickets", "renegotiation",
    "security_level", "server_preference", "tls13"
  };
  int type;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int lo = 0, hi = (int)(sizeof known / sizeof known[0]), found = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *name = lua_tostring(L, -2);
      while (lo < hi && !found) {
        int mid = (lo + hi) / 2, c = strcmp(name, known[mid]);
        if (c == 0) found = 1;
        else if (c < 0) hi = mid;
        else lo = mid + 1;
      }
    }
    if (!found) th_error(L, "harden", "bad policy: unknown rule %s", luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  type = opt_field(L, t, "min_version");
  p->min_version = -1;
  if (type == LUA_TSTRING) {
    th_range r;
    if (!th_protocol_parse(L, -1, &r) || strcmp(r.form, "exact") != 0)
      th_error(L, "harden", "bad policy 'min_version': expected a version name such as"
               " \"tlsv1_2\", got %s", luaL_tolstring(L, -2, NULL));
    p->min_version = r.lo;
  } else if (!(type == LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, -1)))) {
    th_error(L, "harden", "bad policy 'min_version': expected a version name or false");
  }
  lua_settop(L, t);
  p->tls13 = policy_bool(L, t, "tls13", 0);
  p->compression = policy_bool(L, t, "compression", 1);
  p->renegotiation = policy_bool(L, t, "renegotiation", 1);
  p->security_level = policy_int(L, t, "security_level", 0, 5, -1);
  p->filter_ciphers = policy_bool(L, t, "filter_ciphers", 0);
  p->aead_only = policy_bool(L, t, "aead_only", 0);
  p->ciphersuites = policy_string(L, t, "ciphersuites", NULL);
  p->groups = policy_string(L, t, "groups", NULL);
  p->depth = policy_int(L, t, "depth", 0, 100, 0);
  p->depth_min = policy_int(L, t, "depth_min", 0, 100, 1);
  p->depth_max = policy_int(L, t, "depth_max", 0, 100, 16);
  if (p->depth < 0) p->depth = 0;
  if (p->depth && (p->depth < p->depth_min || p->depth > p->depth_max))
    th_error(L, "harden", "bad policy 'depth': %d is outside depth_min..depth_max (%d..%d)",
             p->depth, p->depth_min, p->depth_max);
  if (opt_field(L, t, "server_preference") == LUA_TNIL) p->server_preference = -1;
  else if (lua_isboolean(L, -1)) p->server_preference = lua_toboolean(L, -1);
  else th_error(L, "harden", "bad policy 'server_preference': expected a boolean");
  lua_pop(L, 1);
  p->num_tickets = policy_int(L, t, "num_tickets", 0, 16, -1);
  p->dhe = policy_string(L, t, "dhe", "keep");
  if (!p->dhe || (strcmp(p->dhe, "auto") && strcmp(p->dhe, "drop") && strcmp(p->dhe, "keep")))
    th_error(L, "harden", "bad policy 'dhe': expected \"auto\", \"drop\" or \"keep\"");
  check_policy_list(L, "ciphersuites", p->ciphersuites, 0);
  check_policy_list(L, "groups", p->groups, 1);
}

/* --- the report ------------------------------------------------------------ */

typedef struct hardener {
  lua_State *L;
  SSL_CTX *ctx;
  ctx_state *st;
  int report;   /* stack index of the changes list */
  int n;
  const char *step;
  const char *why;  /* reason when OpenSSL has none to give */
} hardener;

/* Record a change: before and after are on the stack (popped). */
static void changed(hardener *h, const char *setting) {
  lua_State *L = h->L;
  if (lua_rawequal(L, -1, -2)) {
    lua_pop(L, 2);
    return;
  }
  lua_createtable(L, 0, 3);
  lua_insert(L, -3);
  lua_setfield(L, -3, "after");
  lua_setfield(L, -2, "before");
  lua_pushstring(L, setting);
  lua_setfield(L, -2, "setting");
  lua_rawseti(L, h->report, ++h->n);
}

/* Fail closed: switch every protocol version off, so that no handshake can
 * succeed with this context, remember why, and raise. */
static int fail_closed(hardener *h) {
  lua_State *L = h->L;
  th_push_ssl_errors(L, h->why ? h->why : "OpenSSL reported no error");
  SSL_CTX_set_options(h->ctx, SSL_OP_NO_SSL_MASK);
  SSL_CTX_set_max_proto_version(h->ctx, TLS1_VERSION);
  SSL_CTX_set_min_proto_version(h->ctx, TLS1_3_VERSION);
  h->st->unusable = 1;
  snprintf(h->st->failed_step, sizeof h->st->failed_step, "%s", h->step);
  ERR_clear_error();
  return th_error(L, "harden", "step '%s' failed: %s; the context has been made unusable"
                  " (every protocol version is off)", h->step, lua_tostring(L, -1));
}

static void push_version(lua_State *L, long v) {
  int i = th_version_index((int)v);
  if (v == 0) lua_pushliteral(L, "any");
  else if (i >= 0) lua_pushstring(L, th_versions[i].name);
  else lua_pushinteger(L, v);
}

static void push_cipher_names(lua_State *L, SSL_CTX *ctx, int tls13) {
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
  luaL_Buffer b;
  int i, n = 0;
  luaL_buffinit(L, &b);
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if ((SSL_CIPHER_get_kx_nid(c) == NID_kx_any) != tls13) continue;
    if (n++) luaL_addchar(&b, ':');
    luaL_addstring(&b, SSL_CIPHER_get_name(c));
  }
  luaL_pushresult(&b);
}

/* --- the rules ------------------------------------------------------------- */

static void rule_versions(hardener *h, const policy *p) {
  lua_State *L = h->L;
  SSL_CTX *ctx = h->ctx;
  if (p->min_version >= 0) {
    long before = SSL_CTX_get_min_proto_version(ctx);
    int want = th_versions[p->min_version].number;
    h->step = "minimum version";
    if (before == 0 || before < want) {
      if (!SSL_CTX_set_min_proto_version(ctx, want)) fail_closed(h);
      push_version(L, before);
      push_version(L, want);
      changed(h, "min_version");
    }
  }
  if (p->tls13) {
    long max = SSL_CTX_get_max_proto_version(ctx);
    h->step = "TLS 1.3";
    if (max != 0 && max < TLS1_3_VERSION) {
      if (!SSL_CTX_set_max_proto_version(ctx, 0)) fail_closed(h);
      push_version(L, max);
      push_version(L, 0);
      changed(h, "max_version");
    }
    if (SSL_CTX_get_options(ctx) & SSL_OP_NO_TLSv1_3) {
      SSL_CTX_clear_options(ctx, SSL_OP_NO_TLSv1_3);
      lua_pushboolean(L, 1);
      lua_pushboolean(L, 0);
      changed(h, "options.no_tlsv1_3");
    }
  }
}

static void rule_option(hardener *h, uint64_t flag, int want_set, const char *name) {
  lua_State *L = h->L;
  int is_set = (SSL_CTX_get_options(h->ctx) & flag) != 0;
  if (is_set == want_set) return;
  if (want_set) SSL_CTX_set_options(h->ctx, flag);
  else SSL_CTX_clear_options(h->ctx, flag);
  lua_pushboolean(L, is_set);
  lua_pushboolean(L, want_set);
  changed(h, name);
}

/* Forward secret and none of NULL, EXPORT, anon, RC4, DES, MD5, < 128 bits. */
static int keep_suite(const SSL_CIPHER *c, const policy *p) {
  int kx = SSL_CIPHER_get_kx_nid(c);
  if (!th_cipher_is_fs(c) || th_cipher_weakness(c, 0)) return 0;
  /* PSK suites need a pre-shared key callback a server never has here. */
  if (kx == NID_kx_ecdhe_psk || kx == NID_kx_dhe_psk) return 0;
  if (p->aead_only && !SSL_CIPHER_is_aead(c)) return 0;
  return 1;
}

static int is_dhe(const SSL_CIPHER *c) {
  int kx = SSL_CIPHER_get_kx_nid(c);
  return kx == NID_kx_dhe || kx == NID_kx_dhe_psk;
}

static void rule_ciphers(hardener *h, const policy *p, int mode) {
  lua_State *L = h->L;
  SSL_CTX *ctx = h->ctx;
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
  luaL_Buffer b;
  int i, kept = 0, dhe = 0, drop_dhe = 0;
  if (strcmp(p->dhe, "drop") == 0) drop_dhe = 1;
  else if (strcmp(p->dhe, "auto") == 0 && mode == 1) {
    /* DHE needs DH parameters; test whether the context has them. */
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++)
      if (is_dhe(sk_SSL_CIPHER_value(sk, i))) dhe = 1;
    if (dhe && !h->st->dh_auto && SSL_CTX_get0_certificate(ctx) &&
        !th_probe_handshake(ctx, TH_PROBE_DHE)) {
      h->step = "automatic DH parameters";
      if (!SSL_CTX_set_dh_auto(ctx, 1)) fail_closed(h);
      h->st->dh_auto = 1;
      lua_pushliteral(L, "none");
      lua_pushliteral(L, "auto");
      changed(h, "dh_parameters");
    }
  }
  if (!p->filter_ciphers && !drop_dhe) return;
  h->step = "cipher list";
  push_cipher_names(L, ctx, 0);  /* before */
  luaL_buffinit(L, &b);
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;
    if (p->filter_ciphers && !keep_suite(c, p)) continue;
    if (drop_dhe && is_dhe(c)) continue;
    if (kept++) luaL_addchar(&b, ':');
    luaL_addstring(&b, SSL_CIPHER_get_name(c));
  }
  luaL_pushresult(&b);
  if (kept == 0) {
    /* Nothing forward secret is left for TLS 1.2: refuse, failing closed. */
    h->why = "no forward-secret TLS 1.2 suite without a weakness is left";
    fail_closed(h);
  }
  if (strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) != 0) {
    if (!SSL_CTX_set_cipher_list(ctx, lua_tostring(L, -1))) fail_closed(h);
    changed(h, "ciphers");
  } else {
    lua_pop(L, 2);
  }
}

static void rule_ciphersuites(hardener *h, const policy *p) {
  lua_State *L = h->L;
  STACK_OF(SSL_CIPHER) *sk;
  luaL_Buffer b;
  int i, kept = 0;
  if (!p->ciphersuites) return;
  h->step = "TLS 1.3 suites";
  sk = SSL_CTX_get_ciphers(h->ctx);
  push_cipher_names(L, h->ctx, 1);
  luaL_buffinit(L, &b);
  /* The current TLS 1.3 suites that are in the allowed set, in order. */
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    const char *name = SSL_CIPHER_get_name(c), *at;
    size_t len = strlen(name);
    if (SSL_CIPHER_get_kx_nid(c) != NID_kx_any) continue;
    at = strstr(p->ciphersuites, name);
    if (!at || (at[len] != '\0' && at[len] != ':')) continue;
    if (kept++) luaL_addchar(&b, ':');
    luaL_addstring(&b, name);
  }
  if (kept == 0) luaL_addstring(&b, p->ciphersuites);
  luaL_pushresult(&b);
  if (strcmp(lua_tostring(L, -1), lua_tostring(L, -2)) != 0) {
    if (!SSL_CTX_set_ciphersuites(h->ctx, lua_tostring(L, -1))) fail_closed(h);
    changed(h, "ciphersuites");
  } else {
    lua_pop(L, 2);
  }
}

static void rule_groups(hardener *h, const policy *p) {
  lua_State *L = h->L;
  if (!p->groups) return;
  h->step = "groups";
  if (!SSL_CTX_set1_groups_list(h->ctx, p->groups)) fail_closed(h);
  if (h->st->groups[0]) lua_pushstring(L, h->st->groups);
  else lua_pushliteral(L, "(not known: set by LuaSec or OpenSSL's default)");
  lua_pushstring(L, p->groups);
  snprintf(h->st->groups, sizeof h->st->groups, "%s", p->groups);
  changed(h, "groups");
}

static void rule_security_level(hardener *h, const policy *p) {
  lua_State *L = h->L;
  int before = SSL_CTX_get_security_level(h->ctx);
  if (p->security_level < 0 || before >= p->security_level) return;
  SSL_CTX_set_security_level(h->ctx, p->security_level);
  h->step = "security level";
  if (SSL_CTX_get_security_level(h->ctx) != p->security_level) fail_closed(h);
  lua_pushinteger(L, before);
  lua_pushinteger(L, p->security_level);
  changed(h, "security_level");
}

/* OpenSSL sends two TLS 1.3 tickets after every full handshake; one is
 * enough for a client to resume and halves the cost of issuing them. */
static void rule_tickets(hardener *h, const policy *p) {
  lua_State *L = h->L;
  size_t before = SSL_CTX_get_num_tickets(h->ctx);
  if (p->num_tickets < 0 || before == (size_t)p->num_tickets) return;
  h->step = "TLS 1.3 tickets";
  if (!SSL_CTX_set_num_tickets(h->ctx, (size_t)p->num_tickets)) fail_closed(h);
  lua_pushinteger(L, (lua_Integer)before);
  lua_pushinteger(L, p->num_tickets);
  changed(h, "num_tickets");
}

static void rule_depth(hardener *h, const policy *p) {
  lua_State *L = h->L;
  int before = SSL_CTX_get_verify_depth(h->ctx);
  if (!p->depth || (before >= p->depth_min && before <= p->depth_max)) return;
  SSL_CTX_set_verify_depth(h->ctx, p->depth);
  lua_pushinteger(L, before);
  lua_pushinteger(L, p->depth);
  changed(h, "depth");
}

/* tlsharden.core.harden(ctx, policy): the policy is complete (Lua fills in
 * the defaults). Returns the list of changes. */
int th_harden(lua_State *L) {
  int mode = 0;
  SSL_CTX *ctx = th_check_context(L, 1, "harden", &mode);
  policy p;
  hardener h;
  if (!lua_istable(L, 2))
    th_error(L, "harden", "bad argument #2 'policy': expected a table, got %s",
             luaL_typename(L, 2));
  lua_settop(L, 2);
  memset(&p, 0, sizeof p);
  read_policy(L, 2, &p);
  h.L = L;
  h.why = NULL;
  h.ctx = ctx;
  h.st = get_state(L, ctx, 1);
  if (h.st->unusable)
    return th_error(L, "harden", "bad argument #1: the context was made unusable by a failed"
                    " hardening (step '%s'); build a new one", h.st->failed_step);
  ERR_clear_error();
  lua_createtable(L, 8, 0);
  h.report = lua_gettop(L);
  h.n = 0;
  h.step = "start";
  rule_versions(&h, &p);
  if (!p.compression) rule_option(&h, SSL_OP_NO_COMPRESSION, 1, "options.no_compression");
  if (!p.renegotiation) rule_option(&h, SSL_OP_NO_RENEGOTIATION, 1, "options.no_renegotiation");
  if (p.server_preference >= 0)
    rule_option(&h, SSL_OP_CIPHER_SERVER_PREFERENCE, p.server_preference,
                "options.cipher_server_preference");
  rule_security_level(&h, &p);
  rule_ciphers(&h, &p, mode);
  rule_ciphersuites(&h, &p);
  rule_groups(&h, &p);
  rule_tickets(&h, &p);
  rule_depth(&h, &p);
  ERR_clear_error();
  return 1;
}

/* --- inspection ------------------------------------------------------------ */

static void push_certificate(lua_State *L, X509 *cert) {
  EVP_PKEY *key = X509_get0_pubkey(cert);
  lua_createtable(L, 0, 5);
  th_push_x509_name(L, X509_get_subject_name(cert));
  lua_setfield(L, -2, "subject");
  th_push_asn1_time(L, X509_get0_notAfter(cert));
  lua_setfield(L, -2, "not_after");
  if (key) {
    const char *type = EVP_PKEY_get0_type_name(key);
    lua_pushstring(L, type ? type : "unknown");
    lua_setfield(L, -2, "key_type");
    lua_pushinteger(L, EVP_PKEY_get_bits(key));
    lua_setfield(L, -2, "key_bits");
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

/* tlsharden.inspect(ctx): what the SSL_CTX really has in force. */
int th_inspect(lua_State *L) {
  int mode = 0;
  SSL_CTX *ctx = th_check_context(L, 1, "inspect", &mode);
  ctx_state *st = get_state(L, ctx, 0);
  X509 *cert = SSL_CTX_get0_certificate(ctx);
  uint64_t opts = SSL_CTX_get_options(ctx);
  int probe = 0;
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2))
      return th_error(L, "inspect", "bad argument #2 'opts': expected a table, got %s",
                      luaL_typename(L, 2));
    lua_getfield(L, 2, "probe");
    probe = lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  th_push_ctx_versions(L, ctx);
  lua_pushstring(L, mode == 1 ? "server" : mode == 2 ? "client" : "unknown");
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
  else if (probe && mode == 1 && cert)
    lua_pushstring(L, th_probe_handshake(ctx, TH_PROBE_DHE) ? "usable" : "none");
  else lua_pushliteral(L, "unknown");
  lua_setfield(L, -2, "dh");
  if (probe && mode == 1 && cert) {
    lua_pushboolean(L, th_probe_handshake(ctx, TH_PROBE_ECDHE));
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
