/* Context hardening: change the SSL_CTX inside a LuaSec context in place
 * (what LuaSec cannot: clear options, set the minimum version, groups,
 * security level) and fail closed: a context whose hardening failed half
 * way is made unusable. The policy and its defaults (the rules of the
 * `hardened` profile) are owned here; tlsharden.harden_defaults() shows
 * them. What a context has in force is read back in inspect.c. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "core/tlsharden.h"

#define EXDATA_KEY "tlsharden.context.exdata"

static void report_free(struct th_report *r);

static void state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  if (ptr) report_free(((th_ctx_state *)ptr)->report);
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

th_ctx_state *th_ctx_state_get(lua_State *L, SSL_CTX *ctx, int create) {
  int idx = exdata_index(L);
  th_ctx_state *st = (th_ctx_state *)SSL_CTX_get_ex_data(ctx, idx);
  if (!st && create) {
    st = (th_ctx_state *)calloc(1, sizeof *st);
    if (!st || !SSL_CTX_set_ex_data(ctx, idx, st)) {
      free(st);
      th_error(L, "harden", "out of memory");
    }
  }
  return st;
}

/* --- the policy, validated before anything is touched ------------------- */

enum { DHE_AUTO, DHE_DROP, DHE_KEEP, DHE_ON };
static const char *const dhe_names[] = {"auto", "drop", "keep", "on", NULL};

typedef struct policy {
  int min_version;      /* index into th_versions, or -1 to leave */
  int tls13;            /* 1 ensure on, 0 leave */
  int compression;      /* 0 switch off, 1 leave */
  int renegotiation;    /* 0 switch off, 1 leave */
  int security_level;   /* minimum, or -1 */
  int filter_ciphers;   /* keep FS, non-weak TLS 1.2 suites */
  int aead_only;        /* ...and only AEAD ones */
  const char *ciphersuites;  /* TLS 1.3 allowed set, or NULL */
  const char *groups;        /* or NULL */
  int depth, depth_min, depth_max;  /* depth -1: leave */
  int server_preference;     /* 1 set, 0 clear */
  int num_tickets;           /* TLS 1.3 tickets per full handshake, or -1 */
  int dhe;                   /* DHE_* */
} policy;

/* The defaults: the rules of the `hardened` profile. */
static const policy defaults = {
  TH_V_TLS12, 1, 0, 0, 2, 1, 0,
  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  "X25519:P-256:P-384",
  9, 1, 16, 1, 1, DHE_AUTO
};

static const char *const rule_names[] = {
  "min_version", "tls13", "compression", "renegotiation", "security_level", "filter_ciphers",
  "aead_only", "ciphersuites", "groups", "depth", "depth_min", "depth_max",
  "server_preference", "num_tickets", "dhe", NULL
};

/* The string rules are tried by OpenSSL first (values.c, remembered per
 * state), so that a bad value is an error before the context is touched. */
static void check_policy_list(th_opts *o, const char *rule, const char *value, int groups) {
  lua_State *L = o->L;
  if (!value) return;
  lua_pushstring(L, value);
  if (!th_list_check(L, lua_gettop(L), groups))
    th_opt_error(o, rule, "%s (the context was not changed)", lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* The index of a wire version a context can use, or -1 (SSLv2's too). */
static int context_version(int wire) {
  int v = th_version_index(wire);
  return v >= 0 && th_versions[v].context ? v : -1;
}

/* min_version: a version name ("tlsv1_2"), its wire number (0x0303) or
 * false. */
static int read_min_version(th_opts *o, int dflt) {
  lua_State *L = o->L;
  int t = th_opt_get(o, "min_version"), value = lua_gettop(L), v = dflt;
  th_range r;
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = -1;
  else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) v = context_version((int)lua_tointeger(L, -1));
  else if (t == LUA_TSTRING) v = th_protocol_parse(L, value, &r) && strcmp(r.form, "exact") == 0 ? r.lo : -2;
  else if (t != LUA_TNIL) v = -2;
  if (v == -2 || (t == LUA_TNUMBER && v < 0))
    th_opt_error(o, "min_version", "expected a version name such as \"tlsv1_2\", its wire"
                 " number or false, got %s", th_quote(L, value));
  lua_settop(L, value - 1);
  return v;
}

static void read_policy(lua_State *L, int argn, policy *p) {
  th_opts o;
  *p = defaults;
  th_opts_open(L, &o, argn, "harden", "policy", "policy", rule_names);
  if (!o.idx) return;
  p->min_version = read_min_version(&o, p->min_version);
  p->tls13 = th_opt_bool(&o, "tls13", p->tls13);
  p->compression = th_opt_bool(&o, "compression", p->compression);
  p->renegotiation = th_opt_bool(&o, "renegotiation", p->renegotiation);
  p->security_level = th_opt_int(&o, "security_level", 0, 5, p->security_level, -1);
  p->filter_ciphers = th_opt_bool(&o, "filter_ciphers", p->filter_ciphers);
  p->aead_only = th_opt_bool(&o, "aead_only", p->aead_only);
  p->ciphersuites = th_opt_string(&o, "ciphersuites", TH_OPT_FALSE, p->ciphersuites);
  p->groups = th_opt_string(&o, "groups", TH_OPT_FALSE, p->groups);
  p->depth = th_opt_int(&o, "depth", 0, 100, p->depth, -1);
  p->depth_min = th_opt_int(&o, "depth_min", 0, 100, p->depth_min, TH_NO_FALSE);
  p->depth_max = th_opt_int(&o, "depth_max", 0, 100, p->depth_max, TH_NO_FALSE);
  if (p->depth >= 0 && (p->depth < p->depth_min || p->depth > p->depth_max))
    th_opt_error(&o, "depth", "%d is outside depth_min..depth_max (%d..%d)", p->depth,
                 p->depth_min, p->depth_max);
  p->server_preference = th_opt_bool(&o, "server_preference", p->server_preference);
  p->num_tickets = th_opt_int(&o, "num_tickets", 0, 16, p->num_tickets, -1);
  p->dhe = th_opt_enum(&o, "dhe", dhe_names, p->dhe);
  check_policy_list(&o, "ciphersuites", p->ciphersuites, 0);
  check_policy_list(&o, "groups", p->groups, 1);
}

/* Push the complete policy p as the table a caller could pass back. */
static void push_policy(lua_State *L, const policy *p) {
  lua_createtable(L, 0, 15);
  if (p->min_version >= 0) lua_pushstring(L, th_versions[p->min_version].name);
  else lua_pushboolean(L, 0);
  lua_setfield(L, -2, "min_version");
  th_set_bool(L, "tls13", p->tls13);
  th_set_bool(L, "compression", p->compression);
  th_set_bool(L, "renegotiation", p->renegotiation);
  th_set_int_or_false(L, "security_level", p->security_level);
  th_set_bool(L, "filter_ciphers", p->filter_ciphers);
  th_set_bool(L, "aead_only", p->aead_only);
  th_set_string_or_false(L, "ciphersuites", p->ciphersuites);
  th_set_string_or_false(L, "groups", p->groups);
  th_set_int_or_false(L, "depth", p->depth);
  th_set_int_or_false(L, "depth_min", p->depth_min);
  th_set_int_or_false(L, "depth_max", p->depth_max);
  th_set_bool(L, "server_preference", p->server_preference);
  th_set_int_or_false(L, "num_tickets", p->num_tickets);
  lua_pushstring(L, dhe_names[p->dhe]);
  lua_setfield(L, -2, "dhe");
}

/* tlsharden.harden_defaults(): a fresh table of the default policy. */
int th_harden_defaults(lua_State *L) {
  push_policy(L, &defaults);
  return 1;
}

/* --- the report ------------------------------------------------------------ */

/* What a hardening changed is kept in C, on the context, until somebody
 * asks for it: harden pushes it at once unless told { report = false },
 * and harden_report(ctx) pushes it later. A caller that hardens many
 * contexts and judges them afterwards (mod_tlsharden) so allocates nothing
 * in Lua's heap while it hardens. */
typedef struct value {
  int type;       /* LUA_TBOOLEAN, LUA_TNUMBER (an integer) or LUA_TSTRING */
  lua_Integer i;
  const char *s;  /* static, or owned (malloc) when own is set */
  int own;
} value;

#define MAX_CHANGES 16  /* more than there are rules */

struct th_report {
  int n;
  struct { const char *setting; value before, after; } c[MAX_CHANGES];
  policy p;                       /* its strings are the copies below */
  char *ciphersuites, *groups;
};

static void value_free(value *v) {
  if (v->own) free((char *)v->s);
  v->own = 0;
  v->s = NULL;
}

static void report_free(struct th_report *r) {
  int i;
  if (!r) return;
  for (i = 0; i < r->n; i++) {
    value_free(&r->c[i].before);
    value_free(&r->c[i].after);
  }
  free(r->ciphersuites);
  free(r->groups);
  free(r);
}

static value v_bool(int b) { value v = {LUA_TBOOLEAN, 0, NULL, 0}; v.i = b != 0; return v; }
static value v_int(lua_Integer i) { value v = {LUA_TNUMBER, 0, NULL, 0}; v.i = i; return v; }
static value v_static(const char *s) { value v = {LUA_TSTRING, 0, NULL, 0}; v.s = s; return v; }

static void push_value(lua_State *L, const value *v) {
  if (v->type == LUA_TBOOLEAN) lua_pushboolean(L, (int)v->i);
  else if (v->type == LUA_TNUMBER) lua_pushinteger(L, v->i);
  else lua_pushstring(L, v->s);
}

static int value_equal(const value *a, const value *b) {
  if (a->type != b->type) return 0;
  if (a->type == LUA_TSTRING) return strcmp(a->s, b->s) == 0;
  return a->i == b->i;
}

static char *copy_string(const char *s) {
  size_t n;
  char *c;
  if (!s) return NULL;
  n = strlen(s) + 1;
  c = (char *)malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

/* A report for policy p, with copies of its strings; NULL when out of
 * memory. */
static struct th_report *report_new(const policy *p) {
  struct th_report *r = (struct th_report *)calloc(1, sizeof *r);
  if (!r) return NULL;
  r->p = *p;
  r->ciphersuites = copy_string(p->ciphersuites);
  r->groups = copy_string(p->groups);
  if ((p->ciphersuites && !r->ciphersuites) || (p->groups && !r->groups)) {
    report_free(r);
    return NULL;
  }
  r->p.ciphersuites = r->ciphersuites;
  r->p.groups = r->groups;
  return r;
}

static void push_report(lua_State *L, const struct th_report *r) {
  int i;
  lua_createtable(L, 0, 2);
  lua_createtable(L, r->n, 0);
  for (i = 0; i < r->n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->c[i].setting);
    lua_setfield(L, -2, "setting");
    push_value(L, &r->c[i].before);
    lua_setfield(L, -2, "before");
    push_value(L, &r->c[i].after);
    lua_setfield(L, -2, "after");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "changes");
  push_policy(L, &r->p);
  lua_setfield(L, -2, "policy");
}

typedef struct hardener {
  lua_State *L;
  SSL_CTX *ctx;
  th_ctx_state *st;
  struct th_report *r;  /* st->report: what this hardening changed */
  char *unowned[2];     /* strings made for a change that no record owns yet */
  const char *step;
  const char *why;  /* reason when OpenSSL has none to give */
} hardener;

static void free_unowned(hardener *h) {
  free(h->unowned[0]);
  free(h->unowned[1]);
  h->unowned[0] = h->unowned[1] = NULL;
}

/* Record a change (nothing when before equals after); the report owns
 * the unowned strings from now on. */
static void changed(hardener *h, const char *setting, value before, value after) {
  struct th_report *r = h->r;
  if (value_equal(&before, &after) || r->n >= MAX_CHANGES) {
    value_free(&before);
    value_free(&after);
  } else {
    r->c[r->n].setting = setting;
    r->c[r->n].before = before;
    r->c[r->n].after = after;
    r->n++;
  }
  h->unowned[0] = h->unowned[1] = NULL;
}

/* Fail closed: switch every protocol version off, so that no handshake can
 * succeed with this context, remember why, and raise. */
static int fail_closed(hardener *h) {
  lua_State *L = h->L;
  free_unowned(h);
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

static value version_value(long v) {
  int i = th_version_index((int)v);
  if (v == 0) return v_static("any");
  if (i >= 0) return v_static(th_versions[i].name);
  return v_int(v);
}

/* A growing C string, kept in unowned slot k until a change record owns
 * it; a failed allocation fails the hardening closed. */
typedef struct cbuf {
  hardener *h;
  int k;
  char *s;
  size_t len, cap;
} cbuf;

static void cbuf_add(cbuf *b, const char *text) {
  size_t n = strlen(text);
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *s = (char *)realloc(b->s, cap);
    if (!s) {
      b->h->why = "out of memory";
      fail_closed(b->h);
    }
    b->s = b->h->unowned[b->k] = s;
    b->cap = cap;
  }
  memcpy(b->s + b->len, text, n + 1);
  b->len += n;
}

static void cbuf_start(cbuf *b, hardener *h, int k) {
  b->h = h;
  b->k = k;
  b->s = h->unowned[k] = NULL;
  b->len = b->cap = 0;
  cbuf_add(b, "");
}

/* Add a name to a colon-separated list of *n names. */
static void cbuf_name(cbuf *b, int *n, const char *name) {
  if ((*n)++) cbuf_add(b, ":");
  cbuf_add(b, name);
}

static value owned(char *s) { value v = {LUA_TSTRING, 0, NULL, 1}; v.s = s; return v; }

/* The context's TLS 1.2 (tls13 = 0) or TLS 1.3 suites as a list, into
 * unowned slot k. */
static char *cipher_names(hardener *h, int k, int tls13) {
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(h->ctx);
  cbuf b;
  int i, n = 0;
  cbuf_start(&b, h, k);
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if ((SSL_CIPHER_get_kx_nid(c) == NID_kx_any) != tls13) continue;
    cbuf_name(&b, &n, SSL_CIPHER_get_name(c));
  }
  return b.s;
}

/* --- the rules ------------------------------------------------------------- */

static void rule_versions(hardener *h, const policy *p) {
  SSL_CTX *ctx = h->ctx;
  if (p->min_version >= 0) {
    long before = SSL_CTX_get_min_proto_version(ctx);
    int want = th_versions[p->min_version].wire;
    h->step = "minimum version";
    if (before == 0 || before < want) {
      if (!SSL_CTX_set_min_proto_version(ctx, want)) fail_closed(h);
      changed(h, "min_version", version_value(before), version_value(want));
    }
  }
  if (p->tls13) {
    long max = SSL_CTX_get_max_proto_version(ctx);
    h->step = "TLS 1.3";
    if (max != 0 && max < TLS1_3_VERSION) {
      if (!SSL_CTX_set_max_proto_version(ctx, 0)) fail_closed(h);
      changed(h, "max_version", version_value(max), version_value(0));
    }
    if (SSL_CTX_get_options(ctx) & SSL_OP_NO_TLSv1_3) {
      SSL_CTX_clear_options(ctx, SSL_OP_NO_TLSv1_3);
      changed(h, "options.no_tlsv1_3", v_bool(1), v_bool(0));
    }
  }
}

static void rule_option(hardener *h, uint64_t flag, int want_set, const char *name) {
  int is_set = (SSL_CTX_get_options(h->ctx) & flag) != 0;
  if (is_set == want_set) return;
  if (want_set) SSL_CTX_set_options(h->ctx, flag);
  else SSL_CTX_clear_options(h->ctx, flag);
  changed(h, name, v_bool(is_set), v_bool(want_set));
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
  SSL_CTX *ctx = h->ctx;
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
  cbuf b;
  char *before;
  int i, kept = 0, dhe = 0, drop_dhe = 0;
  if (p->dhe == DHE_DROP) drop_dhe = 1;
  else if ((p->dhe == DHE_AUTO || p->dhe == DHE_ON) && mode == TH_MODE_SERVER) {
    /* DHE needs DH parameters; test whether the context has them (on: the
     * caller knows it has none). */
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++)
      if (is_dhe(sk_SSL_CIPHER_value(sk, i))) dhe = 1;
    if (dhe && !h->st->dh_auto && SSL_CTX_get0_certificate(ctx) &&
        (p->dhe == DHE_ON || !th_probe_handshake(h->L, ctx, TH_PROBE_DHE))) {
      h->step = "automatic DH parameters";
      if (!SSL_CTX_set_dh_auto(ctx, 1)) fail_closed(h);
      h->st->dh_auto = 1;
      changed(h, "dh_parameters", v_static("none"), v_static("auto"));
    }
  }
  if (!p->filter_ciphers && !drop_dhe) return;
  h->step = "cipher list";
  /* Nothing to do when every TLS 1.2 suite stays (no strings made then). */
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;
    if ((p->filter_ciphers && !keep_suite(c, p)) || (drop_dhe && is_dhe(c))) {
      kept = -1;
      break;
    }
    kept++;
  }
  if (kept > 0) return;
  kept = 0;
  before = cipher_names(h, 0, 0);
  cbuf_start(&b, h, 1);
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;
    if (p->filter_ciphers && !keep_suite(c, p)) continue;
    if (drop_dhe && is_dhe(c)) continue;
    cbuf_name(&b, &kept, SSL_CIPHER_get_name(c));
  }
  if (kept == 0) {
    /* Nothing forward secret is left for TLS 1.2: refuse, failing closed. */
    h->why = "no forward-secret TLS 1.2 suite without a weakness is left";
    fail_closed(h);
  }
  if (strcmp(b.s, before) != 0 && !SSL_CTX_set_cipher_list(ctx, b.s)) fail_closed(h);
  changed(h, "ciphers", owned(before), owned(b.s));
}

/* Whether name is one of the suites of a colon-separated list. */
static int in_list(const char *list, const char *name) {
  size_t len = strlen(name);
  const char *at = list;
  while ((at = strstr(at, name)) != NULL) {
    if ((at == list || at[-1] == ':') && (at[len] == '\0' || at[len] == ':')) return 1;
    at += len;
  }
  return 0;
}

static void rule_ciphersuites(hardener *h, const policy *p) {
  STACK_OF(SSL_CIPHER) *sk;
  cbuf b;
  char *before;
  int i, kept = 0;
  if (!p->ciphersuites) return;
  h->step = "TLS 1.3 suites";
  sk = SSL_CTX_get_ciphers(h->ctx);
  /* Nothing to do when the context has TLS 1.3 suites, all of them allowed. */
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if (SSL_CIPHER_get_kx_nid(c) != NID_kx_any) continue;
    if (!in_list(p->ciphersuites, SSL_CIPHER_get_name(c))) {
      kept = -1;
      break;
    }
    kept++;
  }
  if (kept > 0) return;
  kept = 0;
  before = cipher_names(h, 0, 1);
  cbuf_start(&b, h, 1);
  /* The current TLS 1.3 suites that are in the allowed set, in order. */
  for (i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    const char *name = SSL_CIPHER_get_name(c);
    if (SSL_CIPHER_get_kx_nid(c) != NID_kx_any) continue;
    if (!in_list(p->ciphersuites, name)) continue;
    cbuf_name(&b, &kept, name);
  }
  if (kept == 0) cbuf_name(&b, &kept, p->ciphersuites);
  if (strcmp(b.s, before) != 0 && !SSL_CTX_set_ciphersuites(h->ctx, b.s)) fail_closed(h);
  changed(h, "ciphersuites", owned(before), owned(b.s));
}

static void rule_groups(hardener *h, const policy *p) {
  value before = v_static("(not known: set by LuaSec or OpenSSL's default)");
  if (!p->groups) return;
  h->step = "groups";
  if (!SSL_CTX_set1_groups_list(h->ctx, p->groups)) fail_closed(h);
  if (h->st->groups[0]) {
    h->unowned[0] = copy_string(h->st->groups);
    if (!h->unowned[0]) {
      h->why = "out of memory";
      fail_closed(h);
    }
    before = owned(h->unowned[0]);
  }
  snprintf(h->st->groups, sizeof h->st->groups, "%s", p->groups);
  /* the policy's copy of the groups lives as long as the report */
  changed(h, "groups", before, v_static(h->r->groups));
}

static void rule_security_level(hardener *h, const policy *p) {
  int before = SSL_CTX_get_security_level(h->ctx);
  if (p->security_level < 0 || before >= p->security_level) return;
  SSL_CTX_set_security_level(h->ctx, p->security_level);
  h->step = "security level";
  if (SSL_CTX_get_security_level(h->ctx) != p->security_level) fail_closed(h);
  changed(h, "security_level", v_int(before), v_int(p->security_level));
}

/* OpenSSL sends two TLS 1.3 tickets after every full handshake; one is
 * enough for a client to resume and halves the cost of issuing them. */
static void rule_tickets(hardener *h, const policy *p) {
  size_t before = SSL_CTX_get_num_tickets(h->ctx);
  if (p->num_tickets < 0 || before == (size_t)p->num_tickets) return;
  h->step = "TLS 1.3 tickets";
  if (!SSL_CTX_set_num_tickets(h->ctx, (size_t)p->num_tickets)) fail_closed(h);
  changed(h, "num_tickets", v_int((lua_Integer)before), v_int(p->num_tickets));
}

static void rule_depth(hardener *h, const policy *p) {
  int before = SSL_CTX_get_verify_depth(h->ctx);
  if (p->depth < 0 || (before >= p->depth_min && before <= p->depth_max)) return;
  SSL_CTX_set_verify_depth(h->ctx, p->depth);
  changed(h, "depth", v_int(before), v_int(p->depth));
}

/* tlsharden.harden(ctx [, policy [, opts]]): the rules not given keep their
 * defaults. Returns { changes = {...}, policy = <the complete policy> },
 * or with opts.report = false the number of changes (the report stays on
 * the context, for harden_report). */
int th_harden(lua_State *L) {
  static const char *const known[] = {"report", NULL};
  int mode = 0, report;
  SSL_CTX *ctx = th_check_context(L, 1, "harden", &mode);
  policy p;
  hardener h;
  th_opts o;
  lua_settop(L, 3);
  read_policy(L, 2, &p);
  th_opts_open(L, &o, 3, "harden", "opts", "option", known);
  report = th_opt_bool(&o, "report", 1);
  h.L = L;
  h.why = NULL;
  h.ctx = ctx;
  h.unowned[0] = h.unowned[1] = NULL;
  h.st = th_ctx_state_get(L, ctx, 1);
  if (h.st->unusable)
    return th_arg_error(L, "harden", 1, NULL, "the context was made unusable by a failed"
                        " hardening (step '%s'); build a new one", h.st->failed_step);
  h.r = report_new(&p);
  if (!h.r) return th_error(L, "harden", "out of memory (the context was not changed)");
  report_free(h.st->report);
  h.st->report = h.r;
  ERR_clear_error();
  h.step = "start";
  rule_versions(&h, &p);
  if (!p.compression) rule_option(&h, SSL_OP_NO_COMPRESSION, 1, "options.no_compression");
  if (!p.renegotiation) rule_option(&h, SSL_OP_NO_RENEGOTIATION, 1, "options.no_renegotiation");
  rule_option(&h, SSL_OP_CIPHER_SERVER_PREFERENCE, p.server_preference,
              "options.cipher_server_preference");
  rule_security_level(&h, &p);
  rule_ciphers(&h, &p, mode);
  rule_ciphersuites(&h, &p);
  rule_groups(&h, &p);
  rule_tickets(&h, &p);
  rule_depth(&h, &p);
  ERR_clear_error();
  if (!report) {
    lua_pushinteger(L, h.r->n);
    return 1;
  }
  push_report(L, h.r);
  return 1;
}

/* tlsharden.harden_report(ctx): the report of the context's latest
 * hardening, as harden returned it or would have; nil if it was never
 * hardened. */
int th_harden_report(lua_State *L) {
  SSL_CTX *ctx = th_check_context(L, 1, "harden_report", NULL);
  th_ctx_state *st = th_ctx_state_get(L, ctx, 0);
  if (!st || !st->report) {
    lua_pushnil(L);
    return 1;
  }
  push_report(L, st->report);
  return 1;
}
