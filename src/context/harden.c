/* Context hardening: the rules of a harden policy applied to the SSL_CTX
 * inside a LuaSec context, in place (what LuaSec cannot: clear options,
 * set the minimum version, groups, security level), failing closed: a
 * context whose hardening failed half way is made unusable. The policy and
 * its defaults are in harden_policy.c, the report in harden_report.c, what
 * is kept on the context in harden_state.c; inspect.c reads back what a
 * context has in force. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "context/harden.h"

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
static void changed(hardener *h, const char *setting, th_value before, th_value after) {
  th_report_change(h->r, setting, before, after);
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
  return th_raise(L, "failed", "harden", "step '%s' failed: %s; the context has been made unusable"
                  " (every protocol version is off)", h->step, lua_tostring(L, -1));
}

static th_value version_value(long v) {
  int i = th_version_index((int)v);
  if (v == 0) return th_value_static("any");
  if (i >= 0) return th_value_static(th_versions[i].name);
  return th_value_int(v);
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

static void rule_versions(hardener *h, const th_policy *p) {
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
      changed(h, "options.no_tlsv1_3", th_value_bool(1), th_value_bool(0));
    }
  }
}

static void rule_option(hardener *h, uint64_t flag, int want_set, const char *name) {
  int is_set = (SSL_CTX_get_options(h->ctx) & flag) != 0;
  if (is_set == want_set) return;
  if (want_set) SSL_CTX_set_options(h->ctx, flag);
  else SSL_CTX_clear_options(h->ctx, flag);
  changed(h, name, th_value_bool(is_set), th_value_bool(want_set));
}

/* Forward secret and none of NULL, EXPORT, anon, RC4, DES, MD5, < 128 bits. */
static int keep_suite(const SSL_CIPHER *c, const th_policy *p) {
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

static void rule_ciphers(hardener *h, const th_policy *p, int mode) {
  SSL_CTX *ctx = h->ctx;
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
  cbuf b;
  char *before;
  int i, kept = 0, dhe = 0, drop_dhe = 0;
  if (p->dhe == TH_DHE_DROP) drop_dhe = 1;
  else if ((p->dhe == TH_DHE_AUTO || p->dhe == TH_DHE_ON) && mode == TH_MODE_SERVER) {
    /* DHE needs DH parameters; test whether the context has them (on: the
     * caller knows it has none). */
    for (i = 0; i < sk_SSL_CIPHER_num(sk); i++)
      if (is_dhe(sk_SSL_CIPHER_value(sk, i))) dhe = 1;
    if (dhe && !h->st->dh_auto && SSL_CTX_get0_certificate(ctx) &&
        (p->dhe == TH_DHE_ON || !th_probe_handshake(h->L, ctx, TH_PROBE_DHE))) {
      h->step = "automatic DH parameters";
      if (!SSL_CTX_set_dh_auto(ctx, 1)) fail_closed(h);
      h->st->dh_auto = 1;
      changed(h, "dh_parameters", th_value_static("none"), th_value_static("auto"));
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
  changed(h, "ciphers", th_value_owned(before), th_value_owned(b.s));
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

static void rule_ciphersuites(hardener *h, const th_policy *p) {
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
  changed(h, "ciphersuites", th_value_owned(before), th_value_owned(b.s));
}

static void rule_groups(hardener *h, const th_policy *p) {
  th_value before = th_value_static("(not known: set by LuaSec or OpenSSL's default)");
  if (!p->groups) return;
  h->step = "groups";
  if (!SSL_CTX_set1_groups_list(h->ctx, p->groups)) fail_closed(h);
  if (h->st->groups[0]) {
    h->unowned[0] = th_copy_string(h->st->groups);
    if (!h->unowned[0]) {
      h->why = "out of memory";
      fail_closed(h);
    }
    before = th_value_owned(h->unowned[0]);
  }
  snprintf(h->st->groups, sizeof h->st->groups, "%s", p->groups);
  /* the policy's copy of the groups lives as long as the report */
  changed(h, "groups", before, th_value_static(th_report_groups(h->r)));
}

static void rule_security_level(hardener *h, const th_policy *p) {
  int before = SSL_CTX_get_security_level(h->ctx);
  if (p->security_level < 0 || before >= p->security_level) return;
  SSL_CTX_set_security_level(h->ctx, p->security_level);
  h->step = "security level";
  if (SSL_CTX_get_security_level(h->ctx) != p->security_level) fail_closed(h);
  changed(h, "security_level", th_value_int(before), th_value_int(p->security_level));
}

/* OpenSSL sends two TLS 1.3 tickets after every full handshake; one is
 * enough for a client to resume and halves the cost of issuing them. */
static void rule_tickets(hardener *h, const th_policy *p) {
  size_t before = SSL_CTX_get_num_tickets(h->ctx);
  if (p->num_tickets < 0 || before == (size_t)p->num_tickets) return;
  h->step = "TLS 1.3 tickets";
  if (!SSL_CTX_set_num_tickets(h->ctx, (size_t)p->num_tickets)) fail_closed(h);
  changed(h, "num_tickets", th_value_int((lua_Integer)before), th_value_int(p->num_tickets));
}

static void rule_depth(hardener *h, const th_policy *p) {
  int before = SSL_CTX_get_verify_depth(h->ctx);
  if (p->depth < 0 || (before >= p->depth_min && before <= p->depth_max)) return;
  SSL_CTX_set_verify_depth(h->ctx, p->depth);
  changed(h, "depth", th_value_int(before), th_value_int(p->depth));
}

/* tlsharden.harden(ctx [, policy [, opts]]): the rules not given keep their
 * defaults. Returns { changes = {...}, policy = <the complete policy> },
 * or with opts.report = false the number of changes (the report stays on
 * the context, for harden_report). */
int th_harden(lua_State *L) {
  static const char *const known[] = {"report", NULL};
  int mode = 0, report;
  SSL_CTX *ctx = th_check_context(L, 1, "harden", &mode);
  th_policy p;
  hardener h;
  th_opts o;
  lua_settop(L, 3);
  th_policy_read(L, 2, &p);
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
  h.r = th_report_new(&p);
  if (!h.r) return th_raise(L, "failed", "harden", "out of memory (the context was not changed)");
  th_report_free(h.st->report);
  h.st->report = h.r;
  h.st->report_free = th_report_free;
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
    lua_pushinteger(L, th_report_count(h.r));
    return 1;
  }
  th_report_push(L, h.r);
  return 1;
}
