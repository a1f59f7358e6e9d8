/* The report of a merge: every change record (the shape of every change
 * record of tlsharden), warning and ignored key goes into it through here,
 * as do the errors that name a layer. merge.c (layers, option sets) and
 * settings.c (single settings) both write to it; it calls neither. */
#include "merge/merge.h"

const char *th_merge_layer_label(merger *m) {
  lua_State *L = m->L;
  int id = m->ids + m->layer - 1;
  if (lua_type(L, id) == LUA_TSTRING) {
    lua_pushfstring(L, "layer %s", th_quote(L, id));
    lua_remove(L, -2);
    return lua_tostring(L, -1);
  }
  return lua_pushfstring(L, "layer %d", m->layer);
}

int th_merge_error(merger *m, const char *key, const char *message) {
  lua_State *L = m->L;
  const char *label = th_merge_layer_label(m);
  /* a layer is an item of argument #1, the list of layers */
  return th_argument_error(L, m->fn, 1, NULL, "%s: bad %s: %s", label, key, message);
}

void th_merge_push_layer_id(merger *m) {
  lua_pushvalue(m->L, m->ids + m->layer - 1);
}

/* Append the table on top of the stack to the list in slot, creating the
 * list on first use. */
static void append(merger *m, int slot, int *count) {
  lua_State *L = m->L;
  if (*count == 0) {
    lua_createtable(L, 4, 0);
    lua_replace(L, slot);
  }
  lua_rawseti(L, slot, ++*count);
}

/* Push a change record { setting, before, after, layer } (the shape of
 * every change record of tlsharden), with room for `extra` more fields;
 * before at -2 and after at -1 are popped. */
static void push_record(merger *m, const char *key, int extra) {
  lua_State *L = m->L;
  lua_createtable(L, 0, 4 + extra);
  lua_insert(L, -3);
  lua_setfield(L, -3, "after");
  lua_setfield(L, -2, "before");
  lua_pushstring(L, key);
  lua_setfield(L, -2, "setting");
  th_merge_push_layer_id(m);
  lua_setfield(L, -2, "layer");
}

void th_merge_record_change(merger *m, const char *key) {
  push_record(m, key, 0);
  append(m, m->changes, &m->nchanges);
}

void th_merge_lowering(merger *m, const char *key, int lowers, const char *message) {
  lua_State *L = m->L;
  if (lowers && m->strict) {
    const char *label, *old, *new;
    old = th_quote(L, -2);
    new = th_quote(L, -2);
    label = th_merge_layer_label(m);
    th_raise(L, "refused", m->fn, "%s lowers security: %s %s -> %s: %s (policy strict)", label, key,
             old, new, message);
  }
  push_record(m, key, 2);
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, lowers);
  lua_setfield(L, -2, "lowers");
  append(m, m->warnings, &m->nwarnings);
}

void th_merge_ignore(merger *m, int key, const char *reason) {
  lua_State *L = m->L;
  lua_createtable(L, 0, 3);
  th_merge_push_layer_id(m);
  lua_setfield(L, -2, "layer");
  if (key) {
    lua_pushvalue(L, key);
    lua_setfield(L, -2, "key");
  }
  lua_pushstring(L, reason);
  lua_setfield(L, -2, "reason");
  append(m, m->ignored, &m->nignored);
}
