/* What each setting of a merge layer may hold, and when a value lowers
 * security: cipher strings (judged by OpenSSL, values.c), lists joined
 * with ':', verify modes, protocols, depth, mode and paths. The merge
 * itself (layers, option sets, the report) is in merge.c. */
#include <string.h>

#include "merge/merge.h"

static const char *const verify_names[] = {
  "none", "peer", "client_once", "fail_if_no_peer_cert", NULL
};

/* --- values OpenSSL judges (values.c) -------------------------------------- */

/* The new cipher string is on top of the stack: validate it, warn when it
 * adds weak or non-forward-secret suites, and note when a layer that is
 * not a profile replaces a profile's list. */
static void check_ciphers(merger *m, int is_profile) {
  lua_State *L = m->L;
  int new = lua_gettop(L), old;
  int tls13_only = m->have_range && th_versions[m->range.lo].wire >= TLS1_3_VERSION;
  lua_pushliteral(L, "ciphers");
  lua_rawget(L, m->cfg);
  old = lua_isnil(L, -1) ? 0 : new + 1;
  /* A TLS 1.3-only range never uses the TLS 1.2 list; it must still be valid. */
  if (!(tls13_only ? th_cipher_check(L, new) : th_cipher_verdict(L, old, new)))
    th_merge_error(m, "ciphers", lua_tostring(L, -1));
  if (!tls13_only) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *msg = lua_tostring(L, -1);
      lua_pushvalue(L, new + 1);
      lua_pushvalue(L, new);
      th_merge_lowering(m, "ciphers", 1, msg);
    }
    lua_pop(L, 1);
  }
  if (m->ciphers_from_profile && !is_profile && !(old && lua_rawequal(L, old, new))) {
    lua_pushvalue(L, new + 1);
    lua_pushvalue(L, new);
    th_merge_lowering(m, "ciphers", 0, "replaces the profile's cipher list wholesale");
  }
  m->ciphers_from_profile = is_profile;
  lua_settop(L, new);
}

/* --- scalar settings -------------------------------------------------------- */

/* Push a list of strings (the value at idx) joined with ':', or the string
 * itself. */
static void push_joined(merger *m, const char *key, int value) {
  lua_State *L = m->L;
  size_t len;
  const char *s;
  if (lua_type(L, value) == LUA_TSTRING) {
    lua_pushvalue(L, value);
  } else if (lua_istable(L, value)) {
    luaL_Buffer b;
    int raw = !lua_getmetatable(L, value);
    lua_Integer i, n;
    if (!raw) lua_pop(L, 1);
    n = raw ? (lua_Integer)lua_rawlen(L, value) : luaL_len(L, value);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      if ((raw ? lua_rawgeti(L, value, i) : lua_geti(L, value, i)) != LUA_TSTRING) {
        lua_pushfstring(L, "item %d is a %s, expected a string", (int)i, luaL_typename(L, -1));
        th_merge_error(m, key, lua_tostring(L, -1));
      }
      if (i > 1) luaL_addchar(&b, ':');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
  } else {
    lua_pushfstring(L, "expected a string or a list of strings, got %s", luaL_typename(L, value));
    th_merge_error(m, key, lua_tostring(L, -1));
  }
  s = lua_tolstring(L, -1, &len);
  if (strlen(s) != len) th_merge_error(m, key, "contains a NUL byte");
}

static int verify_name(const char *s) {
  int i;
  for (i = 0; verify_names[i]; i++)
    if (strcmp(verify_names[i], s) == 0) return i;
  return -1;
}

static void check_verify(merger *m, int key, int value) {
  lua_State *L = m->L;
  int none = 0, peer = 0;
  if (lua_type(L, value) == LUA_TSTRING) {
    int v = verify_name(lua_tostring(L, value));
    if (v < 0) {
      lua_pushfstring(L, "unknown verify mode %s (none, peer, client_once,"
                      " fail_if_no_peer_cert)", th_quote(L, value));
      th_merge_error(m, "verify", lua_tostring(L, -1));
    }
    none = v == 0;
    peer = v == 1;
  } else if (lua_istable(L, value)) {
    lua_Integer i, n = luaL_len(L, value);
    for (i = 1; i <= n; i++) {
      int v = lua_geti(L, value, i) == LUA_TSTRING ? verify_name(lua_tostring(L, -1)) : -1;
      if (v < 0) {
        lua_pushfstring(L, "unknown verify mode %s (none, peer, client_once,"
                        " fail_if_no_peer_cert)", th_quote(L, -1));
        th_merge_error(m, "verify", lua_tostring(L, -1));
      }
      if (v == 0) none = 1;
      if (v == 1) peer = 1;
      lua_pop(L, 1);
    }
    if (n == 0) none = 1;
  } else {
    lua_pushfstring(L, "expected a mode or a list of modes, got %s", luaL_typename(L, value));
    th_merge_error(m, "verify", lua_tostring(L, -1));
  }
  if (none && !peer && m->mode == TH_MODE_CLIENT) {
    lua_pushvalue(L, key);
    lua_rawget(L, m->cfg);
    lua_pushvalue(L, value);
    th_merge_lowering(m, "verify", 1, "a client context that does not verify its peer"
             " accepts any certificate");
  }
}

/* Whether the layer's own options (a name, a list, or a map, read raw)
 * switch the option name on. */
static int layer_sets_option(lua_State *L, int layer, const char *name) {
  int on = 0, t;
  lua_pushliteral(L, "options");
  t = lua_rawget(L, layer);
  if (t == LUA_TSTRING) {
    on = strcmp(lua_tostring(L, -1), name) == 0;
  } else if (t == LUA_TTABLE) {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n && !on; i++) {
      lua_rawgeti(L, -1, i);
      on = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), name) == 0;
      lua_pop(L, 1);
    }
    if (!on) {
      lua_getfield(L, -1, name);
      on = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return on;
}

/* The lowest version a layer really allows: its protocol together with the
 * no_* options it sets itself, as OpenSSL reads them (Prosody's own port
 * contexts say protocol = "sslv23" with no_sslv3 ... no_tlsv1_1). */
static int layer_floor(merger *m, const th_range *r) {
  int lo = r->lo;
  while (lo < r->hi && layer_sets_option(m->L, m->layer_table, th_versions[lo].no_option)) lo++;
  return lo;
}

static void check_protocol(merger *m, int value) {
  lua_State *L = m->L;
  th_range r;
  const char *msg = NULL;
  int lo;
  if (!th_protocol_parse_cached(L, value, &r))
    th_merge_error(m, "protocol", lua_tostring(L, -1));
  lo = layer_floor(m, &r);
  if (m->have_range && lo < m->range.lo)
    msg = lua_pushfstring(L, "lowers the minimum version from %s to %s",
                          th_versions[m->range.lo].label, th_versions[lo].label);
  else if (m->floor >= 0 && lo < m->floor)
    msg = lua_pushfstring(L, "minimum version %s is below the floor %s",
                          th_versions[lo].label, th_versions[m->floor].label);
  else if (m->have_range && r.hi < m->range.hi && r.hi < TH_NVERSIONS - 1)
    msg = lua_pushfstring(L, "lowers the maximum version to %s", th_versions[r.hi].label);
  if (msg) {
    lua_pushliteral(L, "protocol");
    lua_rawget(L, m->cfg);
    lua_pushvalue(L, value);
    th_merge_lowering(m, "protocol", 1, msg);
    lua_pop(L, 1);
  }
  m->range = r;
  m->have_range = 1;
  m->protocol_from = m->layer;
}

static int is_path(lua_State *L, int value) {
  size_t len;
  const char *s;
  if (lua_type(L, value) != LUA_TSTRING) return 0;
  s = lua_tolstring(L, value, &len);
  return len > 0 && strlen(s) == len;
}

/* Set cfg[key] to the value on top of the stack (popped), recording an
 * override and the origin. */
static void replace_value(merger *m, int key) {
  lua_State *L = m->L;
  lua_pushvalue(L, key);
  if (lua_rawget(L, m->cfg) != LUA_TNIL && !lua_rawequal(L, -1, -2)) {
    lua_pushvalue(L, -2);
    th_merge_record_change(m, lua_tostring(L, key));
  } else {
    lua_pop(L, 1);
  }
  lua_pushvalue(L, key);
  lua_insert(L, -2);
  lua_rawset(L, m->cfg);
  lua_pushvalue(L, key);
  th_merge_push_layer_id(m);
  lua_rawset(L, m->origin);
}

/* Apply one setting: the key at stack index key, its value at value. */
void th_merge_setting(merger *m, int id, int key, int value, int is_profile) {
  lua_State *L = m->L;
  switch (id) {
    case K_CIPHERS:
    case K_CIPHERSUITES:
    case K_CURVESLIST:
      push_joined(m, lua_tostring(L, key), value);
      if (id == K_CIPHERS) {
        check_ciphers(m, is_profile);
      } else if (!th_list_check(L, lua_gettop(L), id == K_CURVESLIST)) {
        th_merge_error(m, lua_tostring(L, key), lua_tostring(L, -1));
      }
      replace_value(m, key);
      return;
    case K_PROTOCOL:
      check_protocol(m, value);
      break;
    case K_DEPTH: {
      lua_Integer d = 0;
      if (!th_integer(L, value, &d) || d < 0) {
        lua_pushfstring(L, "expected a non-negative integer, got %s",
                        th_quote(L, value));
        th_merge_error(m, "depth", lua_tostring(L, -1));
      }
      if (d < 2 || d > 16) {
        lua_pushvalue(L, key);
        lua_rawget(L, m->cfg);
        lua_pushvalue(L, value);
        th_merge_lowering(m, "depth", 1, d < 2 ? "depth below 2 rejects ordinary chains with an"
                 " intermediate, or invites turning verification off" :
                 "depth above 16 accepts absurdly long chains");
      }
      break;
    }
    case K_VERIFY:
      check_verify(m, key, value);
      break;
    case K_MODE: {
      const char *s = lua_tostring(L, value);
      if (lua_type(L, value) != LUA_TSTRING || (strcmp(s, "server") && strcmp(s, "client")))
        th_merge_error(m, "mode", "expected \"server\" or \"client\"");
      break;
    }
    case K_DHPARAM:
      /* LuaSec's own form: a function returning PEM; nothing to check. */
      if (lua_type(L, value) == LUA_TFUNCTION) break;
      /* fall through */
    case K_KEY:
    case K_CERTIFICATE:
    case K_CAFILE:
    case K_CAPATH:
      if (!is_path(L, value)) {
        lua_pushfstring(L, "expected a file path, got %s", th_quote(L, value));
        th_merge_error(m, lua_tostring(L, key), lua_tostring(L, -1));
      }
      if (id == K_DHPARAM) {
        int bits = th_dhparam_bits(lua_tostring(L, value));
        if (bits > 0 && bits < TH_DH_MIN_BITS) {
          const char *msg = lua_pushfstring(L, "DH parameters of %d bits (under %d)", bits,
                                            TH_DH_MIN_BITS);
          lua_pushvalue(L, key);
          lua_rawget(L, m->cfg);
          lua_pushvalue(L, value);
          th_merge_lowering(m, "dhparam", 1, msg);
          lua_pop(L, 1);
        }
      }
      break;
    default:
      break;
  }
  lua_pushvalue(L, value);
  replace_value(m, key);
}

