/* The report of a hardening: what it changed, as change records
 * { setting, before, after }, and the complete policy it applied. It is
 * kept in C, on the context (harden_state.c), until somebody asks for it:
 * harden pushes it at once unless told { report = false }, and
 * harden_report(ctx) pushes it later. A caller that hardens many contexts
 * and judges them afterwards (mod_tlsharden) so allocates nothing in Lua's
 * heap while it hardens. */
#include <stdlib.h>
#include <string.h>

#include "context/harden.h"

#define MAX_CHANGES 16  /* more than there are rules */

struct th_report {
  int n;
  struct { const char *setting; th_value before, after; } c[MAX_CHANGES];
  th_policy p;                    /* its strings are the copies below */
  char *ciphersuites, *groups;
};

th_value th_value_bool(int b) {
  th_value v = {LUA_TBOOLEAN, 0, NULL, 0};
  v.i = b != 0;
  return v;
}

th_value th_value_int(lua_Integer i) {
  th_value v = {LUA_TNUMBER, 0, NULL, 0};
  v.i = i;
  return v;
}

th_value th_value_static(const char *s) {
  th_value v = {LUA_TSTRING, 0, NULL, 0};
  v.s = s;
  return v;
}

th_value th_value_owned(char *s) {
  th_value v = {LUA_TSTRING, 0, NULL, 1};
  v.s = s;
  return v;
}

static void value_free(th_value *v) {
  if (v->own) free((char *)v->s);
  v->own = 0;
  v->s = NULL;
}

static void push_value(lua_State *L, const th_value *v) {
  if (v->type == LUA_TBOOLEAN) lua_pushboolean(L, (int)v->i);
  else if (v->type == LUA_TNUMBER) lua_pushinteger(L, v->i);
  else lua_pushstring(L, v->s);
}

static int value_equal(const th_value *a, const th_value *b) {
  if (a->type != b->type) return 0;
  if (a->type == LUA_TSTRING) return strcmp(a->s, b->s) == 0;
  return a->i == b->i;
}

char *th_copy_string(const char *s) {
  size_t n;
  char *c;
  if (!s) return NULL;
  n = strlen(s) + 1;
  c = (char *)malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

struct th_report *th_report_new(const th_policy *p) {
  struct th_report *r = (struct th_report *)calloc(1, sizeof *r);
  if (!r) return NULL;
  r->p = *p;
  r->ciphersuites = th_copy_string(p->ciphersuites);
  r->groups = th_copy_string(p->groups);
  if ((p->ciphersuites && !r->ciphersuites) || (p->groups && !r->groups)) {
    th_report_free(r);
    return NULL;
  }
  r->p.ciphersuites = r->ciphersuites;
  r->p.groups = r->groups;
  return r;
}

void th_report_free(struct th_report *r) {
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

void th_report_change(struct th_report *r, const char *setting, th_value before, th_value after) {
  if (value_equal(&before, &after) || r->n >= MAX_CHANGES) {
    value_free(&before);
    value_free(&after);
    return;
  }
  r->c[r->n].setting = setting;
  r->c[r->n].before = before;
  r->c[r->n].after = after;
  r->n++;
}

int th_report_count(const struct th_report *r) {
  return r->n;
}

const char *th_report_groups(const struct th_report *r) {
  return r->groups;
}

void th_report_push(lua_State *L, const struct th_report *r) {
  int i;
  lua_createtable(L, 0, 2);
  lua_createtable(L, r->n, 0);
  for (i = 0; i < r->n; i++) {
    lua_createtable(L, 0, 3);
    th_set_string(L, "setting", r->c[i].setting);
    push_value(L, &r->c[i].before);
    lua_setfield(L, -2, "before");
    push_value(L, &r->c[i].after);
    lua_setfield(L, -2, "after");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "changes");
  th_policy_push(L, &r->p);
  lua_setfield(L, -2, "policy");
}

/* tlsharden.context.harden_report(ctx): the report of the context's latest
 * hardening, as harden returned it or would have; nil if it was never
 * hardened. */
int th_harden_report(lua_State *L) {
  SSL_CTX *ctx = th_check_context(L, 1, "context.harden_report", NULL);
  th_ctx_state *st = th_ctx_state_get(L, ctx, 0);
  if (!st || !st->report) {
    lua_pushnil(L);
    return 1;
  }
  th_report_push(L, st->report);
  return 1;
}
