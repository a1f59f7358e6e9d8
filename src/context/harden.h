/* What the files of the harden step share: the policy and its defaults
 * (harden_policy.c) and the report a hardening leaves on the context
 * (harden_report.c), both used by the rules (harden.c). The state kept on
 * a context (harden_state.c) is declared in tlsharden.h, since inspect.c
 * reads it too. Calls run one way: harden.c uses the other three,
 * harden_state.c frees reports, harden_report.c pushes policies. Internal
 * to the harden files. */
#ifndef TLSHARDEN_HARDEN_H
#define TLSHARDEN_HARDEN_H

#include "core/tlsharden.h"

/* --- the policy (harden_policy.c) ------------------------------------------ */

/* What the dhe rule asks for. */
enum { TH_DHE_AUTO, TH_DHE_DROP, TH_DHE_KEEP, TH_DHE_ON };

typedef struct th_policy {
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
  int dhe;                   /* TH_DHE_* */
} th_policy;

/* Read the policy at argument argn (nil: the defaults) into p, raising for
 * a bad rule before anything is touched; its strings stay owned by Lua. */
void th_policy_read(lua_State *L, int argn, th_policy *p);
/* Push the complete policy p as the table a caller could pass back. */
void th_policy_push(lua_State *L, const th_policy *p);

/* --- the report (harden_report.c) ------------------------------------------ */

/* A setting's value before or after a change. */
typedef struct th_value {
  int type;       /* LUA_TBOOLEAN, LUA_TNUMBER (an integer) or LUA_TSTRING */
  lua_Integer i;
  const char *s;  /* static, or owned (malloc) when own is set */
  int own;
} th_value;
th_value th_value_bool(int b);
th_value th_value_int(lua_Integer i);
th_value th_value_static(const char *s);
/* A string made with malloc, owned by the value from now on. */
th_value th_value_owned(char *s);
/* A copy made with malloc, or NULL (also when out of memory). */
char *th_copy_string(const char *s);

/* A report for policy p, with copies of its strings; NULL when out of
 * memory. */
struct th_report *th_report_new(const th_policy *p);
void th_report_free(struct th_report *r);
/* Record a change of setting (a static string); nothing when before equals
 * after. The report owns the values' strings from now on. */
void th_report_change(struct th_report *r, const char *setting, th_value before, th_value after);
int th_report_count(const struct th_report *r);
/* The report's copy of the policy's groups (lives as long as the report). */
const char *th_report_groups(const struct th_report *r);
/* Push { changes = {...}, policy = <the complete policy> }. */
void th_report_push(lua_State *L, const struct th_report *r);

#endif
