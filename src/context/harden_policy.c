/* The harden policy: its rules, their defaults (the rules of the
 * `hardened` profile, shown by tlsharden.context.harden_defaults()), reading a
 * caller's policy and pushing one back. Every rule is one row of `rules`,
 * so that its name, its field and how it is read and shown cannot drift
 * apart. */
#include <stddef.h>
#include <string.h>

#include "context/harden.h"

static const th_policy defaults = {
  .min_version = TH_V_TLS12,
  .tls13 = 1,
  .compression = 0,
  .renegotiation = 0,
  .security_level = 2,
  .filter_ciphers = 1,
  .aead_only = 0,
  .ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  .groups = "X25519:P-256:P-384",
  .depth = 9,
  .depth_min = 1,
  .depth_max = 16,
  .server_preference = 1,
  .num_tickets = 1,
  .dhe = TH_DHE_AUTO,
};

static const char *const dhe_names[] = {"auto", "drop", "keep", "on", NULL};

/* How a rule is read and shown. */
enum {
  RULE_VERSION,          /* a version name or wire number, or false: -1 */
  RULE_BOOL,
  RULE_INT,              /* lo..hi */
  RULE_INT_OR_FALSE,     /* lo..hi, or false: -1 */
  RULE_STRING_OR_FALSE,  /* or false: NULL */
  RULE_DHE               /* one of dhe_names */
};

typedef struct rule {
  const char *name;
  int kind;
  size_t field;  /* offsetof(th_policy, ...) */
  int lo, hi;
  /* checked at once after the rule is read, against the rules before it */
  void (*check)(th_opts *o, const th_policy *p);
} rule;

static void check_depth(th_opts *o, const th_policy *p);

#define FIELD(f) offsetof(th_policy, f)

/* In this order the rules are read (the first bad one is reported) and
 * named in messages. */
static const rule rules[] = {
  {"min_version", RULE_VERSION, FIELD(min_version), 0, 0, NULL},
  {"tls13", RULE_BOOL, FIELD(tls13), 0, 0, NULL},
  {"compression", RULE_BOOL, FIELD(compression), 0, 0, NULL},
  {"renegotiation", RULE_BOOL, FIELD(renegotiation), 0, 0, NULL},
  {"security_level", RULE_INT_OR_FALSE, FIELD(security_level), 0, 5, NULL},
  {"filter_ciphers", RULE_BOOL, FIELD(filter_ciphers), 0, 0, NULL},
  {"aead_only", RULE_BOOL, FIELD(aead_only), 0, 0, NULL},
  {"ciphersuites", RULE_STRING_OR_FALSE, FIELD(ciphersuites), 0, 0, NULL},
  {"groups", RULE_STRING_OR_FALSE, FIELD(groups), 0, 0, NULL},
  {"depth", RULE_INT_OR_FALSE, FIELD(depth), 0, 100, NULL},
  {"depth_min", RULE_INT, FIELD(depth_min), 0, 100, NULL},
  {"depth_max", RULE_INT, FIELD(depth_max), 0, 100, check_depth},
  {"server_preference", RULE_BOOL, FIELD(server_preference), 0, 0, NULL},
  {"num_tickets", RULE_INT_OR_FALSE, FIELD(num_tickets), 0, 16, NULL},
  {"dhe", RULE_DHE, FIELD(dhe), 0, 0, NULL},
};

#define NRULES ((int)(sizeof rules / sizeof rules[0]))

/* The rule's field in p: an int, or a string for RULE_STRING_OR_FALSE. */
static int *int_field(th_policy *p, const rule *r) {
  return (int *)(void *)((char *)p + r->field);
}

static const char **string_field(th_policy *p, const rule *r) {
  return (const char **)(void *)((char *)p + r->field);
}

static int int_value(const th_policy *p, const rule *r) {
  return *(const int *)(const void *)((const char *)p + r->field);
}

static const char *string_value(const th_policy *p, const rule *r) {
  return *(const char *const *)(const void *)((const char *)p + r->field);
}

static void check_depth(th_opts *o, const th_policy *p) {
  if (p->depth >= 0 && (p->depth < p->depth_min || p->depth > p->depth_max))
    th_opt_error(o, "depth", "%d is outside depth_min..depth_max (%d..%d)", p->depth,
                 p->depth_min, p->depth_max);
}

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
static int read_min_version(th_opts *o, const char *name, int dflt) {
  lua_State *L = o->L;
  int t = th_opt_get(o, name), value = lua_gettop(L), v = dflt;
  th_range r;
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) v = -1;
  else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) v = context_version((int)lua_tointeger(L, -1));
  else if (t == LUA_TSTRING)
    v = th_protocol_parse(L, value, &r) && strcmp(r.form, "exact") == 0 ? r.lo : -2;
  else if (t != LUA_TNIL) v = -2;
  if (v == -2 || (t == LUA_TNUMBER && v < 0))
    th_opt_error(o, name, "expected a version name such as \"tlsv1_2\", its wire"
                 " number or false, got %s", th_quote(L, value));
  lua_settop(L, value - 1);
  return v;
}

void th_policy_read(lua_State *L, int argn, th_policy *p) {
  const char *known[NRULES + 1];
  th_opts o;
  int i;
  *p = defaults;
  for (i = 0; i < NRULES; i++) known[i] = rules[i].name;
  known[NRULES] = NULL;
  th_opts_open(L, &o, argn, "harden", "policy", "policy", known);
  if (!o.idx) return;
  for (i = 0; i < NRULES; i++) {
    const rule *r = &rules[i];
    int *n = int_field(p, r);
    switch (r->kind) {
      case RULE_VERSION: *n = read_min_version(&o, r->name, *n); break;
      case RULE_BOOL: *n = th_opt_bool(&o, r->name, *n); break;
      case RULE_INT: *n = th_opt_int(&o, r->name, r->lo, r->hi, *n, TH_NO_FALSE); break;
      case RULE_INT_OR_FALSE: *n = th_opt_int(&o, r->name, r->lo, r->hi, *n, -1); break;
      case RULE_STRING_OR_FALSE: {
        const char **s = string_field(p, r);
        *s = th_opt_string(&o, r->name, TH_OPT_FALSE, *s);
        break;
      }
      case RULE_DHE: *n = th_opt_enum(&o, r->name, dhe_names, *n); break;
    }
    if (r->check) r->check(&o, p);
  }
  check_policy_list(&o, "ciphersuites", p->ciphersuites, 0);
  check_policy_list(&o, "groups", p->groups, 1);
}

void th_policy_push(lua_State *L, const th_policy *p) {
  int i, v;
  lua_createtable(L, 0, NRULES);
  for (i = 0; i < NRULES; i++) {
    const rule *r = &rules[i];
    switch (r->kind) {
      case RULE_VERSION:
        v = int_value(p, r);
        th_set_string_or_false(L, r->name, v >= 0 ? th_versions[v].name : NULL);
        break;
      case RULE_BOOL: th_set_bool(L, r->name, int_value(p, r)); break;
      case RULE_INT: th_set_int(L, r->name, int_value(p, r)); break;
      case RULE_INT_OR_FALSE: th_set_int_or_false(L, r->name, int_value(p, r)); break;
      case RULE_STRING_OR_FALSE: th_set_string_or_false(L, r->name, string_value(p, r)); break;
      case RULE_DHE: th_set_string(L, r->name, dhe_names[int_value(p, r)]); break;
    }
  }
}

/* tlsharden.context.harden_defaults(): a fresh table of the default policy. */
int th_harden_defaults(lua_State *L) {
  th_policy_push(L, &defaults);
  return 1;
}
