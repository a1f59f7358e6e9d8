/* Option merging: layered LuaSec configurations merged with Prosody 0.12's
 * util.sslconfig semantics, validated, with a record of where every value
 * came from, what later layers overrode, and what lowered security.
 *
 * The merge runs once per TLS context a server builds, so it is kept cheap:
 * settings are told apart by their spelling in C, the option and verifyext
 * sets are C arrays until the result is built, report lists are only made
 * when something goes into them, and what OpenSSL says about a value
 * (values.c) is remembered per Lua state. */
#include <stdio.h>
#include <string.h>

#include "tlsharden.h"

static const char *const verifyext_names[] = {  /* sorted */
  "crl_check", "crl_check_chain", "lsec_continue", "lsec_ignore_purpose", NULL
};
#define NVERIFYEXT 4
static const char *const verify_names[] = {
  "none", "peer", "client_once", "fail_if_no_peer_cert", NULL
};

/* The settings the merge treats specially; everything else is copied. */
enum {
  K_OTHER, K_PROTOCOL, K_OPTIONS, K_VERIFYEXT, K_CIPHERS, K_CIPHERSUITES, K_CURVESLIST,
  K_DEPTH, K_VERIFY, K_MODE, K_KEY, K_CERTIFICATE, K_CAFILE, K_CAPATH, K_DHPARAM,
  K_NAME, K_PROFILE
};

static int key_id(const char *k, size_t len) {
#define IS(s) (memcmp(k, s, sizeof s - 1) == 0)
  switch (len) {
    case 3: return IS("key") ? K_KEY : K_OTHER;
    case 4: return IS("mode") ? K_MODE : IS("name") ? K_NAME : K_OTHER;
    case 5: return IS("depth") ? K_DEPTH : K_OTHER;
    case 6: return IS("verify") ? K_VERIFY : IS("cafile") ? K_CAFILE :
                   IS("capath") ? K_CAPATH : K_OTHER;
    case 7: return IS("options") ? K_OPTIONS : IS("ciphers") ? K_CIPHERS :
                   IS("dhparam") ? K_DHPARAM : K_OTHER;
    case 8: return IS("protocol") ? K_PROTOCOL : IS("_profile") ? K_PROFILE : K_OTHER;
    case 9: return IS("verifyext") ? K_VERIFYEXT : K_OTHER;
    case 10: return IS("curveslist") ? K_CURVESLIST : K_OTHER;
    case 11: return IS("certificate") ? K_CERTIFICATE : K_OTHER;
    case 12: return IS("ciphersuites") ? K_CIPHERSUITES : K_OTHER;
    default: return K_OTHER;
  }
#undef IS
}

typedef struct merger {
  lua_State *L;
  const char *fn;          /* the public function, for messages */
  /* stack slots, fixed for the whole call; a list slot holds nil until
   * its first entry */
  int cfg, origin, changes, warnings, ignored;
  int ids;                 /* slot of layer 1's id; layer k's is ids + k - 1 */
  int nchanges, nwarnings, nignored;
  int layer;               /* position of the layer being applied */
  int strict, floor, mode;
  int have_range;
  th_range range;          /* the current protocol value, parsed */
  int protocol_from;       /* the layer that set it */
  int ciphers_from_profile;
  int has_options, has_verifyext;
  signed char opt[TH_NOPTIONS];    /* -1 unset, 0 off, 1 on */
  int opt_from[TH_NOPTIONS];       /* the layer that set it last */
  int opt_off[TH_NOPTIONS];        /* the layer that switched it off, 0 if on */
  signed char vx[NVERIFYEXT];
} merger;

/* "layer 3" or "layer 'host ssl'" for messages. */
static const char *layer_label(merger *m) {
  lua_State *L = m->L;
  int id = m->ids + m->layer - 1;
  if (lua_type(L, id) == LUA_TSTRING)
    return lua_pushfstring(L, "layer '%s'", lua_tostring(L, id));
  return lua_pushfstring(L, "layer %d", m->layer);
}

static int layer_error(merger *m, const char *key, const char *fmt, const char *detail) {
  lua_State *L = m->L;
  const char *label = layer_label(m);
  return th_error(L, m->fn, "%s: bad %s: %s%s", label, key, fmt, detail ? detail : "");
}

static void push_layer_id(merger *m) {
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

/* Push {key, old, new, layer}, with room for `extra` more fields; old at -2
 * and new at -1 are popped. */
static void push_record(merger *m, const char *key, int extra) {
  lua_State *L = m->L;
  lua_createtable(L, 0, 4 + extra);
  lua_insert(L, -3);
  lua_setfield(L, -3, "new");
  lua_setfield(L, -2, "old");
  lua_pushstring(L, key);
  lua_setfield(L, -2, "key");
  push_layer_id(m);
  lua_setfield(L, -2, "layer");
}

static void record_change(merger *m, const char *key) {
  push_record(m, key, 0);
  append(m, m->changes, &m->nchanges);
}

/* A change worth a warning: old (at -2) and new (at -1) are popped. With
 * lowers set and policy strict it is an error instead. */
static void lowering(merger *m, const char *key, int lowers, const char *message) {
  lua_State *L = m->L;
  if (lowers && m->strict) {
    const char *label, *old, *new;
    old = luaL_tolstring(L, -2, NULL);
    new = luaL_tolstring(L, -2, NULL);
    label = layer_label(m);
    th_error(L, m->fn, "%s lowers security: %s %s -> %s: %s (policy strict)", label, key,
             old, new, message);
  }
  push_record(m, key, 2);
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, lowers);
  lua_setfield(L, -2, "lowers");
  append(m, m->warnings, &m->nwarnings);
}

/* Note in report.ignored: { layer, reason [, key] }. */
static void ignore(merger *m, int key, const char *reason) {
  lua_State *L = m->L;
  lua_createtable(L, 0, 3);
  push_layer_id(m);
  lua_setfield(L, -2, "layer");
  if (key) {
    lua_pushvalue(L, key);
    lua_setfield(L, -2, "key");
  }
  lua_pushstring(L, reason);
  lua_setfield(L, -2, "reason");
  append(m, m->ignored, &m->nignored);
}

/* --- iterating tables as pairs() does ---------------------------------------
 * A table whose metatable has __pairs is read through it, as Prosody's own
 * merge reads it; any other table is read raw. pairs_begin pushes the
 * iterator state (the function and its state, or nothing) and the first
 * key; pairs_next is then used like lua_next. */

static int pairs_begin(lua_State *L, int t) {
  int meta = 0;
  if (lua_getmetatable(L, t)) {
    if (lua_getfield(L, -1, "__pairs") != LUA_TNIL) {
      lua_remove(L, -2);
      lua_pushvalue(L, t);
      lua_call(L, 1, 3);
      meta = lua_absindex(L, -3);
      return meta;
    }
    lua_pop(L, 2);
  }
  lua_pushnil(L);
  return 0;
}

static int pairs_next(lua_State *L, int t, int meta) {
  if (!meta) return lua_next(L, t);
  lua_pushvalue(L, meta);
  lua_pushvalue(L, meta + 1);
  lua_pushvalue(L, -3);
  lua_call(L, 2, 2);
  lua_remove(L, -3);
  if (lua_isnil(L, -2)) {
    lua_pop(L, 2);
    return 0;
  }
  return 1;
}

/* Drop what pairs_begin pushed, after the loop ended. */
static void pairs_end(lua_State *L, int meta) {
  if (meta) lua_settop(L, meta - 1);
}

/* Push t[name] without metamethods; returns its type. */
static int raw_field(lua_State *L, int t, const char *name) {
  lua_pushstring(L, name);
  return lua_rawget(L, t);
}

/* A layer whose metatable has __pairs is read once through it into a plain
 * table, which replaces it at idx: the merge then sees what pairs() sees,
 * as in Prosody. */
static void snapshot_layer(lua_State *L, int idx) {
  int meta;
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return;
  meta = lua_getfield(L, -1, "__pairs") != LUA_TNIL;
  lua_pop(L, 2);
  if (!meta) return;
  lua_newtable(L);
  meta = pairs_begin(L, idx);
  while (pairs_next(L, idx, meta)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, meta ? meta - 1 : -4);
  }
  pairs_end(L, meta);
  lua_replace(L, idx);
}

/* --- options and verifyext: sets ------------------------------------------ */

static void set_option(merger *m, const char *name, int on) {
  lua_State *L = m->L;
  int i = th_option_index(name), was;
  if (i < 0) {
    lua_pushfstring(L, "unknown option '%s' (see tlsharden.option_names())", name);
    layer_error(m, "options", lua_tostring(L, -1), NULL);
  }
  was = m->opt[i];
  m->opt[i] = (signed char)on;
  m->opt_from[i] = m->layer;
  m->opt_off[i] = on ? 0 : m->layer;
  /* Only a value an earlier layer set counts as overridden; an option no
   * layer set is off. */
  if (was >= 0 && was != on) {
    const char *item = lua_pushfstring(L, "options.%s", name);
    lua_pushboolean(L, was);
    lua_pushboolean(L, on);
    record_change(m, item);
    lua_pop(L, 1);
  }
  if ((was == 1) != on && th_options[i].risk == (on ? TH_OPT_RISKY : TH_OPT_PROTECTS)) {
    const char *item = lua_pushfstring(L, "options.%s", name);
    const char *msg = lua_pushfstring(L, "%s option %s", on ? "sets" : "removes", name);
    lua_pushboolean(L, was == 1);
    lua_pushboolean(L, on);
    lowering(m, item, 1, msg);
    lua_pop(L, 2);
  }
}

static void set_verifyext(merger *m, const char *name, int on) {
  lua_State *L = m->L;
  int i, was;
  for (i = 0; verifyext_names[i]; i++)
    if (strcmp(verifyext_names[i], name) == 0) break;
  if (!verifyext_names[i]) {
    lua_pushfstring(L, "unknown verifyext '%s' (lsec_continue, lsec_ignore_purpose,"
                    " crl_check, crl_check_chain)", name);
    layer_error(m, "verifyext", lua_tostring(L, -1), NULL);
  }
  was = m->vx[i];
  m->vx[i] = (signed char)on;
  if (was >= 0 && was != on) {
    const char *item = lua_pushfstring(L, "verifyext.%s", name);
    lua_pushboolean(L, was);
    lua_pushboolean(L, on);
    record_change(m, item);
    lua_pop(L, 1);
  }
}

/* A list adds names, a map {name = true/false} sets or removes them, a
 * bare string is a one-item list. */
static void apply_set(merger *m, int id, int key, int value) {
  lua_State *L = m->L;
  const char *what = id == K_OPTIONS ? "options" : "verifyext";
  void (*set)(merger *, const char *, int) = id == K_OPTIONS ? set_option : set_verifyext;
  if (id == K_OPTIONS) m->has_options = 1; else m->has_verifyext = 1;
  if (lua_type(L, value) == LUA_TSTRING) {
    set(m, lua_tostring(L, value), 1);
  } else if (lua_istable(L, value)) {
    int meta = pairs_begin(L, value);
    while (pairs_next(L, value, meta)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isboolean(L, -1)) {
        set(m, lua_tostring(L, -2), lua_toboolean(L, -1));
      } else if (lua_isinteger(L, -2) && lua_type(L, -1) == LUA_TSTRING) {
        set(m, lua_tostring(L, -1), 1);
      } else {
        lua_pushfstring(L, "expected names in a list or name = true/false, got [%s] = %s",
                        luaL_tolstring(L, -2, NULL), luaL_typename(L, -2));
        layer_error(m, what, lua_tostring(L, -1), NULL);
      }
      lua_pop(L, 1);
    }
    pairs_end(L, meta);
  } else {
    lua_pushfstring(L, "expected a name or a table, got %s", luaL_typename(L, value));
    layer_error(m, what, lua_tostring(L, -1), NULL);
  }
  if (id == K_VERIFYEXT) {
    lua_pushvalue(L, key);
    push_layer_id(m);
    lua_rawset(L, m->origin);
  }
}

/* --- values OpenSSL judges (values.c) -------------------------------------- */

/* The new cipher string is on top of the stack: validate it, warn when it
 * adds weak or non-forward-secret suites, and note when a layer that is
 * not a profile replaces a profile's list. */
static void check_ciphers(merger *m, int is_profile) {
  lua_State *L = m->L;
  int new = lua_gettop(L), old;
  int tls13_only = m->have_range && th_versions[m->range.lo].number >= TLS1_3_VERSION;
  lua_pushliteral(L, "ciphers");
  lua_rawget(L, m->cfg);
  old = lua_isnil(L, -1) ? 0 : new + 1;
  /* A TLS 1.3-only range never uses the TLS 1.2 list; it must still be valid. */
  if (!(tls13_only ? th_cipher_check(L, new) : th_cipher_verdict(L, old, new)))
    layer_error(m, "ciphers", lua_tostring(L, -1), NULL);
  if (!tls13_only) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *msg = lua_tostring(L, -1);
      lua_pushvalue(L, new + 1);
      lua_pushvalue(L, new);
      lowering(m, "ciphers", 1, msg);
    }
    lua_pop(L, 1);
  }
  if (m->ciphers_from_profile && !is_profile && !(old && lua_rawequal(L, old, new))) {
    lua_pushvalue(L, new + 1);
    lua_pushvalue(L, new);
    lowering(m, "ciphers", 0, "replaces the profile's cipher list wholesale");
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
        layer_error(m, key, lua_tostring(L, -1), NULL);
      }
      if (i > 1) luaL_addchar(&b, ':');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
  } else {
    lua_pushfstring(L, "expected a string or a list of strings, got %s", luaL_typename(L, value));
    layer_error(m, key, lua_tostring(L, -1), NULL);
  }
  s = lua_tolstring(L, -1, &len);
  if (strlen(s) != len) layer_error(m, key, "contains a NUL byte", NULL);
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
      lua_pushfstring(L, "unknown verify mode '%s' (none, peer, client_once,"
                      " fail_if_no_peer_cert)", lua_tostring(L, value));
      layer_error(m, "verify", lua_tostring(L, -1), NULL);
    }
    none = v == 0;
    peer = v == 1;
  } else if (lua_istable(L, value)) {
    lua_Integer i, n = luaL_len(L, value);
    for (i = 1; i <= n; i++) {
      int v = lua_geti(L, value, i) == LUA_TSTRING ? verify_name(lua_tostring(L, -1)) : -1;
      if (v < 0) {
        lua_pushfstring(L, "unknown verify mode %s (none, peer, client_once,"
                        " fail_if_no_peer_cert)", luaL_tolstring(L, -1, NULL));
        layer_error(m, "verify", lua_tostring(L, -1), NULL);
      }
      if (v == 0) none = 1;
      if (v == 1) peer = 1;
      lua_pop(L, 1);
    }
    if (n == 0) none = 1;
  } else {
    lua_pushfstring(L, "expected a mode or a list of modes, got %s", luaL_typename(L, value));
    layer_error(m, "verify", lua_tostring(L, -1), NULL);
  }
  if (none && !peer && m->mode == 2) {
    lua_pushvalue(L, key);
    lua_rawget(L, m->cfg);
    lua_pushvalue(L, value);
    lowering(m, "verify", 1, "a client context that does not verify its peer"
             " accepts any certificate");
  }
}

static void check_protocol(merger *m, int value) {
  lua_State *L = m->L;
  th_range r;
  const char *msg = NULL;
  if (!th_protocol_parse_cached(L, value, &r))
    layer_error(m, "protocol", lua_tostring(L, -1), NULL);
  if (m->have_range && r.lo < m->range.lo)
    msg = lua_pushfstring(L, "lowers the minimum version from %s to %s",
                          th_versions[m->range.lo].label, th_versions[r.lo].label);
  else if (m->floor >= 0 && r.lo < m->floor)
    msg = lua_pushfstring(L, "minimum version %s is below the floor %s",
                          th_versions[r.lo].label, th_versions[m->floor].label);
  else if (m->have_range && r.hi < m->range.hi && r.hi < TH_NVERSIONS - 1)
    msg = lua_pushfstring(L, "lowers the maximum version to %s", th_versions[r.hi].label);
  if (msg) {
    lua_pushliteral(L, "protocol");
    lua_rawget(L, m->cfg);
    lua_pushvalue(L, value);
    lowering(m, "protocol", 1, msg);
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
    record_change(m, lua_tostring(L, key));
  } else {
    lua_pop(L, 1);
  }
  lua_pushvalue(L, key);
  lua_insert(L, -2);
  lua_rawset(L, m->cfg);
  lua_pushvalue(L, key);
  push_layer_id(m);
  lua_rawset(L, m->origin);
}

/* Apply one setting: the key at stack index key, its value at value. */
static void apply_key(merger *m, int id, int key, int value, int is_profile) {
  lua_State *L = m->L;
  switch (id) {
    case K_OPTIONS:
    case K_VERIFYEXT:
      apply_set(m, id, key, value);
      return;
    case K_CIPHERS:
    case K_CIPHERSUITES:
    case K_CURVESLIST:
      push_joined(m, lua_tostring(L, key), value);
      if (id == K_CIPHERS) {
        check_ciphers(m, is_profile);
      } else if (!th_list_check(L, lua_gettop(L), id == K_CURVESLIST)) {
        layer_error(m, lua_tostring(L, key), lua_tostring(L, -1), NULL);
      }
      replace_value(m, key);
      return;
    case K_PROTOCOL:
      check_protocol(m, value);
      break;
    case K_DEPTH: {
      int isint;
      lua_Integer d = lua_tointegerx(L, value, &isint);
      if (!isint || d < 0 || lua_type(L, value) != LUA_TNUMBER) {
        lua_pushfstring(L, "expected a non-negative integer, got %s",
                        luaL_tolstring(L, value, NULL));
        layer_error(m, "depth", lua_tostring(L, -1), NULL);
      }
      if (d < 2 || d > 16) {
        lua_pushvalue(L, key);
        lua_rawget(L, m->cfg);
        lua_pushvalue(L, value);
        lowering(m, "depth", 1, d < 2 ? "depth below 2 rejects ordinary chains with an"
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
        layer_error(m, "mode", "expected \"server\" or \"client\"", NULL);
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
        lua_pushfstring(L, "expected a file path, got %s", luaL_tolstring(L, value, NULL));
        layer_error(m, lua_tostring(L, key), lua_tostring(L, -1), NULL);
      }
      if (id == K_DHPARAM) {
        int bits = th_dhparam_bits(lua_tostring(L, value));
        if (bits > 0 && bits < 2048) {
          const char *msg = lua_pushfstring(L, "DH parameters of %d bits (under 2048)", bits);
          lua_pushvalue(L, key);
          lua_rawget(L, m->cfg);
          lua_pushvalue(L, value);
          lowering(m, "dhparam", 1, msg);
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

static void apply_layer(merger *m, int layer, int position) {
  lua_State *L = m->L;
  int is_profile, top = lua_gettop(L);
  m->layer = position;
  if (!lua_istable(L, layer)) {
    lua_pushfstring(L, "not a table (%s)", luaL_typename(L, layer));
    ignore(m, 0, lua_tostring(L, -1));
    lua_pop(L, 1);
    return;
  }
  is_profile = raw_field(L, layer, "_profile") != LUA_TNIL;
  /* The protocol first: it decides whether TLS 1.2 suites matter. */
  if (raw_field(L, layer, "protocol") != LUA_TNIL) {
    lua_pushliteral(L, "protocol");
    apply_key(m, K_PROTOCOL, top + 3, top + 2, is_profile);
  }
  lua_settop(L, top);
  if (lua_getmetatable(L, layer)) {
    int inherits = lua_getfield(L, -1, "__index") != LUA_TNIL;
    lua_pop(L, 2);
    if (inherits)
      ignore(m, 0, "the layer's metatable has __index but no __pairs: only its own keys"
             " are read, as Prosody reads them");
  }
  lua_pushnil(L);
  while (lua_next(L, layer)) {
    size_t len;
    const char *key;
    int id;
    if (lua_type(L, -2) != LUA_TSTRING) {
      const char *label = layer_label(m);
      th_error(L, m->fn, "%s: bad key %s: expected a setting name", label,
               luaL_tolstring(L, -3, NULL));
    }
    key = lua_tolstring(L, -2, &len);
    id = key_id(key, len);
    if (id == K_NAME || id == K_PROFILE || id == K_PROTOCOL) {
      /* the layer's name and marker; the protocol was applied above */
    } else if (key[0] == '_') {
      /* a profile's own notes (_source ...) are not the user's settings */
      if (!is_profile) ignore(m, lua_gettop(L) - 1, "keys starting with '_' are ignored");
    } else {
      int v = lua_gettop(L);
      apply_key(m, id, v - 1, v, is_profile);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/* Floors become "sslv23" + no_* options after the options merge, so a
 * layer's {no_tlsv1 = false} cannot undo them: that conflict is reported. */
static void finish_protocol(merger *m) {
  lua_State *L = m->L;
  const char *no[TH_NVERSIONS + 1];
  int n, i;
  const char *protocol;
  if (!m->have_range) return;
  protocol = th_range_luasec(&m->range, no, &n);
  for (i = 0; i < n; i++) {
    int o = th_option_index(no[i]);
    if (m->opt_off[o]) {
      const char *key, *msg;
      m->layer = m->opt_off[o];
      key = lua_pushfstring(L, "options.%s", no[i]);
      msg = lua_pushfstring(L, "the layer switches %s off, but the protocol floor switches"
                            " it back on; the floor wins", no[i]);
      lua_pushboolean(L, 0);
      lua_pushboolean(L, 1);
      lowering(m, key, 0, msg);
      lua_pop(L, 2);
    }
    if (m->opt[o] < 0) m->opt_from[o] = m->protocol_from;
    m->opt[o] = 1;
    m->opt_off[o] = 0;
    m->has_options = 1;
  }
  lua_pushstring(L, protocol);
  lua_setfield(L, m->cfg, "protocol");
}

/* cfg.options and cfg.verifyext as sorted lists (the name tables are
 * sorted), and report.origin.options. */
static void finish_sets(merger *m) {
  lua_State *L = m->L;
  int i, n = 0;
  if (m->has_options) {
    lua_createtable(L, 12, 0);
    lua_createtable(L, 0, 12);
    for (i = 0; i < TH_NOPTIONS; i++) {
      if (m->opt[i] < 0) continue;
      m->layer = m->opt_from[i];
      lua_pushstring(L, th_options[i].name);
      if (m->opt[i]) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, -4, ++n);
      }
      push_layer_id(m);
      lua_rawset(L, -3);
    }
    lua_setfield(L, m->origin, "options");
    lua_setfield(L, m->cfg, "options");
  } else {
    lua_newtable(L);
    lua_setfield(L, m->origin, "options");
  }
  if (m->has_verifyext) {
    lua_createtable(L, NVERIFYEXT, 0);
    for (i = 0, n = 0; i < NVERIFYEXT; i++) {
      if (m->vx[i] != 1) continue;
      lua_pushstring(L, verifyext_names[i]);
      lua_rawseti(L, -2, ++n);
    }
    lua_setfield(L, m->cfg, "verifyext");
  }
}

/* "server" -> 1, "client" -> 2, anything else -> 0. */
static int mode_number(lua_State *L, int idx) {
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  s = lua_tostring(L, idx);
  return strcmp(s, "server") == 0 ? 1 : strcmp(s, "client") == 0 ? 2 : 0;
}

static void read_opts(merger *m, int opts) {
  lua_State *L = m->L;
  if (lua_getfield(L, opts, "policy") != LUA_TNIL) {
    const char *p = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING || (strcmp(p, "warn") && strcmp(p, "strict")))
      th_error(L, m->fn, "bad option 'policy': expected \"warn\" or \"strict\", got %s",
               luaL_tolstring(L, -1, NULL));
    m->strict = strcmp(p, "strict") == 0;
  }
  if (lua_getfield(L, opts, "mode") != LUA_TNIL) {
    m->mode = mode_number(L, -1);
    if (!m->mode) th_error(L, m->fn, "bad option 'mode': expected \"server\" or \"client\"");
  }
  if (lua_getfield(L, opts, "floor") != LUA_TNIL) {
    if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) {
      m->floor = -1;
    } else {
      th_range r;
      if (lua_type(L, -1) != LUA_TSTRING || !th_protocol_parse(L, -1, &r) ||
          strcmp(r.form, "exact") != 0)
        th_error(L, m->fn, "bad option 'floor': expected a version name such as"
                 " \"tlsv1_2\", or false");
      m->floor = r.lo;
    }
  }
  lua_pop(L, 3);
}

/* Merge the layers at stack indices first..last (later ones win, or with
 * prosody_order the first one wins, as in Prosody's create_context), with
 * the options table at opts (0 for none). Returns cfg, report. */
static int merge_layers(lua_State *L, const char *fn, int first, int last, int prosody_order,
                        int opts) {
  merger m;
  int i, n = last - first + 1, base;
  memset(&m, 0, sizeof m);
  memset(m.opt, -1, sizeof m.opt);
  memset(m.vx, -1, sizeof m.vx);
  m.L = L;
  m.fn = fn;
  m.floor = th_version_index(TLS1_2_VERSION);
  if (opts) read_opts(&m, opts);
  luaL_checkstack(L, n + 40, "too many layers");
  base = lua_gettop(L);
  lua_createtable(L, 0, 16); m.cfg = base + 1;
  lua_createtable(L, 0, 16); m.origin = base + 2;
  lua_pushnil(L); m.changes = base + 3;
  lua_pushnil(L); m.warnings = base + 4;
  lua_pushnil(L); m.ignored = base + 5;
  /* Every layer's id (its name, or its position) and the mode the context
   * will have: the last mode in merge order, else opts.mode. The mode is
   * needed before the merge, so that "verify none on a client" is seen
   * whatever the order of the layers. */
  m.ids = base + 6;
  {
    int mode = 0;
    for (i = 0; i < n; i++) {
      snapshot_layer(L, first + i);
      if (!lua_istable(L, first + i)) {
        lua_pushinteger(L, i + 1);
        continue;
      }
      if (raw_field(L, first + i, "mode") != LUA_TNIL) {
        int mm = mode_number(L, -1);
        /* later wins: the last one; Prosody's order: the first one */
        if (mm && (!prosody_order || !mode)) mode = mm;
      }
      lua_pop(L, 1);
      if (raw_field(L, first + i, "name") == LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushinteger(L, i + 1);
      } else if (lua_type(L, -1) != LUA_TSTRING) {
        th_error(L, fn, "layer %d: bad name: expected a string, got %s", i + 1,
                 luaL_typename(L, -1));
      }
    }
    if (mode) m.mode = mode;
  }
  if (prosody_order) {
    for (i = n; i >= 1; i--) apply_layer(&m, first + i - 1, i);
  } else {
    for (i = 1; i <= n; i++) apply_layer(&m, first + i - 1, i);
  }
  finish_protocol(&m);
  finish_sets(&m);
  /* report */
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, m.origin);
  lua_setfield(L, -2, "origin");
  if (!m.nchanges) lua_newtable(L); else lua_pushvalue(L, m.changes);
  lua_setfield(L, -2, "changes");
  if (!m.nwarnings) lua_newtable(L); else lua_pushvalue(L, m.warnings);
  lua_setfield(L, -2, "warnings");
  if (!m.nignored) lua_newtable(L); else lua_pushvalue(L, m.ignored);
  lua_setfield(L, -2, "ignored");
  lua_pushstring(L, m.strict ? "strict" : "warn");
  lua_setfield(L, -2, "policy");
  lua_pushvalue(L, m.cfg);
  lua_insert(L, -2);
  return 2;
}

/* tlsharden.merge(layer1, ...): later layers override earlier ones. */
int th_merge(lua_State *L) {
  return merge_layers(L, "merge", 1, lua_gettop(L), 0, 0);
}

/* tlsharden.merge_prosody(layer1, ...): the first layer wins, as in the
 * extra arguments of Prosody's certmanager.create_context. */
int th_merge_prosody(lua_State *L) {
  return merge_layers(L, "merge_prosody", 1, lua_gettop(L), 1, 0);
}

/* tlsharden.merge_with(opts, layer1, ...) */
int th_merge_with(lua_State *L) {
  static const char *const known[] = {"order", "policy", "mode", "floor", NULL};
  int prosody_order = 0;
  if (!lua_istable(L, 1))
    th_error(L, "merge_with", "bad argument #1 'opts': expected a table, got %s",
             luaL_typename(L, 1));
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int i = 0;
    if (lua_type(L, -2) == LUA_TSTRING)
      for (; known[i] && strcmp(known[i], lua_tostring(L, -2)) != 0; i++) continue;
    if (lua_type(L, -2) != LUA_TSTRING || !known[i])
      th_error(L, "merge_with", "bad argument #1 'opts': unknown option %s (known: order,"
               " policy, mode, floor)", luaL_tolstring(L, -2, NULL));
    lua_pop(L, 1);
  }
  if (lua_getfield(L, 1, "order") != LUA_TNIL) {
    const char *o = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING || (strcmp(o, "later") && strcmp(o, "prosody")))
      th_error(L, "merge_with", "bad option 'order': expected \"later\" or \"prosody\", got %s",
               luaL_tolstring(L, -1, NULL));
    prosody_order = strcmp(o, "prosody") == 0;
  }
  lua_pop(L, 1);
  return merge_layers(L, "merge_with", 2, lua_gettop(L), prosody_order, 1);
}
