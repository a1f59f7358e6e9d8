/* Option merging: layered LuaSec configurations merged with Prosody 0.12's
 * util.sslconfig semantics, validated, with a record of where every value
 * came from, what later layers overrode, and what lowered security.
 *
 * The merge runs once per TLS context a server builds, so it is kept cheap:
 * settings are told apart by their spelling in C, the option and verifyext
 * sets are C arrays until the result is built, report lists are only made
 * when something goes into them, and what OpenSSL says about a value
 * (values.c) is remembered per Lua state. Single settings are checked in
 * settings.c; what the merge records goes into its report through
 * report.c. */
#include <string.h>

#include "merge/merge.h"

static const char *const verifyext_names[] = {  /* sorted */
  "crl_check", "crl_check_chain", "lsec_continue", "lsec_ignore_purpose", NULL
};

/* The setting a key names, told apart by its spelling (the merge runs for
 * every key of every layer). */
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
    lua_pushfstring(L, "unknown option %s (see tlsharden.context.option_names())",
                    th_quote_lstring(L, name, strlen(name)));
    th_merge_error(m, "options", lua_tostring(L, -1));
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
    th_merge_record_change(m, item);
    lua_pop(L, 1);
  }
  if ((was == 1) != on && th_options[i].risk == (on ? TH_OPT_RISKY : TH_OPT_PROTECTS)) {
    const char *item = lua_pushfstring(L, "options.%s", name);
    const char *msg = lua_pushfstring(L, "%s option %s", on ? "sets" : "removes", name);
    lua_pushboolean(L, was == 1);
    lua_pushboolean(L, on);
    th_merge_lowering(m, item, 1, msg);
    lua_pop(L, 2);
  }
}

static void set_verifyext(merger *m, const char *name, int on) {
  lua_State *L = m->L;
  int i, was;
  for (i = 0; verifyext_names[i]; i++)
    if (strcmp(verifyext_names[i], name) == 0) break;
  if (!verifyext_names[i]) {
    lua_pushfstring(L, "unknown verifyext %s (lsec_continue, lsec_ignore_purpose,"
                    " crl_check, crl_check_chain)", th_quote_lstring(L, name, strlen(name)));
    th_merge_error(m, "verifyext", lua_tostring(L, -1));
  }
  was = m->vx[i];
  m->vx[i] = (signed char)on;
  if (was >= 0 && was != on) {
    const char *item = lua_pushfstring(L, "verifyext.%s", name);
    lua_pushboolean(L, was);
    lua_pushboolean(L, on);
    th_merge_record_change(m, item);
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
                        th_quote(L, -2), th_quote(L, -2));
        th_merge_error(m, what, lua_tostring(L, -1));
      }
      lua_pop(L, 1);
    }
    pairs_end(L, meta);
  } else {
    lua_pushfstring(L, "expected a name or a table, got %s", luaL_typename(L, value));
    th_merge_error(m, what, lua_tostring(L, -1));
  }
  if (id == K_VERIFYEXT) {
    lua_pushvalue(L, key);
    th_merge_push_layer_id(m);
    lua_rawset(L, m->origin);
  }
}

/* Apply one setting: the key at stack index key, its value at value. */
static void apply_key(merger *m, int id, int key, int value, int is_profile) {
  if (id == K_OPTIONS || id == K_VERIFYEXT) apply_set(m, id, key, value);
  else th_merge_setting(m, id, key, value, is_profile);
}

static void apply_layer(merger *m, int layer, int position) {
  lua_State *L = m->L;
  int is_profile, top = lua_gettop(L);
  m->layer = position;
  m->layer_table = layer;
  if (!lua_istable(L, layer)) {
    lua_pushfstring(L, "not a table (%s)", luaL_typename(L, layer));
    th_merge_ignore(m, 0, lua_tostring(L, -1));
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
      th_merge_ignore(m, 0, "the layer's metatable has __index but no __pairs: only its own keys"
             " are read, as Prosody reads them");
  }
  lua_pushnil(L);
  while (lua_next(L, layer)) {
    size_t len;
    const char *key;
    int id;
    if (lua_type(L, -2) != LUA_TSTRING) {
      const char *bad = th_quote(L, -2);
      const char *label = th_merge_layer_label(m);
      th_argument_error(L, m->fn, 1, NULL, "%s: bad key %s: expected a setting name", label, bad);
    }
    key = lua_tolstring(L, -2, &len);
    id = key_id(key, len);
    if (id == K_NAME || id == K_PROFILE || id == K_PROTOCOL) {
      /* the layer's name and marker; the protocol was applied above */
    } else if (key[0] == '_') {
      /* a profile's own notes (_source ...) are not the user's settings */
      if (!is_profile) th_merge_ignore(m, lua_gettop(L) - 1, "keys starting with '_' are ignored");
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
  const char *no[TH_NVERSIONS];
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
      th_merge_lowering(m, key, 0, msg);
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
      th_merge_push_layer_id(m);
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

/* "server" -> TH_MODE_SERVER, "client" -> TH_MODE_CLIENT, else
 * TH_MODE_INVALID. */
static int mode_number(lua_State *L, int idx) {
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return TH_MODE_INVALID;
  s = lua_tostring(L, idx);
  return strcmp(s, "server") == 0 ? TH_MODE_SERVER : strcmp(s, "client") == 0 ? TH_MODE_CLIENT
                                                                               : TH_MODE_INVALID;
}

/* What merge's options ask for. */
typedef struct merge_opts {
  int prosody_order, strict, mode, floor;
} merge_opts;

static void read_opts(lua_State *L, merge_opts *mo) {
  static const char *const known[] = {"order", "policy", "mode", "floor", NULL};
  static const char *const orders[] = {"later", "prosody", NULL};
  static const char *const policies[] = {"warn", "strict", NULL};
  static const char *const modes[] = {"server", "client", NULL};
  th_opts o;
  int mode, t;
  th_opts_open(L, &o, 2, "merge", "opts", "option", known);
  mo->prosody_order = th_opt_enum(&o, "order", orders, 0) == 1;
  mo->strict = th_opt_enum(&o, "policy", policies, 0) == 1;
  mode = th_opt_enum(&o, "mode", modes, -1);
  mo->mode = mode < 0 ? TH_MODE_INVALID : mode == 0 ? TH_MODE_SERVER : TH_MODE_CLIENT;
  t = th_opt_get(&o, "floor");
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    mo->floor = -1;
  } else if (t != LUA_TNIL) {
    th_range r;
    int value = lua_gettop(L);
    if (t != LUA_TSTRING || !th_protocol_parse(L, value, &r) || strcmp(r.form, "exact") != 0)
      th_opt_error(&o, "floor", "expected a version name such as \"tlsv1_2\", or false, got %s",
                   th_quote(L, value));
    mo->floor = r.lo;
  }
  lua_pop(L, 1);
}

/* Merge the layers at stack indices first..last (later ones win, or with
 * prosody_order the first one wins, as in Prosody's create_context), as
 * mo asks. Returns cfg, report. */
static int merge_layers(lua_State *L, const char *fn, int first, int last, const merge_opts *mo) {
  merger m;
  int i, n = last - first + 1, base, prosody_order = mo->prosody_order;
  memset(&m, 0, sizeof m);
  memset(m.opt, -1, sizeof m.opt);
  memset(m.vx, -1, sizeof m.vx);
  m.L = L;
  m.fn = fn;
  m.floor = mo->floor;
  m.strict = mo->strict;
  m.mode = mo->mode;
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
        th_argument_error(L, fn, 1, NULL, "layer %d: bad name: expected a string, got %s", i + 1, th_quote(L, -1));
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

static const merge_opts default_opts = {0, 0, TH_MODE_INVALID, TH_V_TLS12};

/* The most layers one merge takes: more is a caller's mistake, not a
 * configuration. */
#define MAX_LAYERS 1000

/* tlsharden.merge(layers [, opts]): the layers of the list (layers.n of
 * them when given, which may hold nil), later ones winning unless
 * opts.order is "prosody". */
int th_merge(lua_State *L) {
  merge_opts mo = default_opts;
  lua_Integer n, i;
  int first;
  if (!lua_istable(L, 1))
    return th_arg_error(L, "merge", 1, "layers", "expected a list of layers, got %s", th_quote(L, 1));
  read_opts(L, &mo);
  lua_settop(L, 2);
  if (lua_getfield(L, 1, "n") == LUA_TNUMBER) {
    if (!th_integer(L, -1, &n) || n < 0)
      return th_arg_error(L, "merge", 1, "layers", "n: expected a count, got %s", th_quote(L, -1));
  } else {
    n = luaL_len(L, 1);
  }
  lua_pop(L, 1);
  if (n > MAX_LAYERS)
    return th_arg_error(L, "merge", 1, "layers", "more than %d layers", MAX_LAYERS);
  luaL_checkstack(L, (int)n + 40, "too many layers");
  first = lua_gettop(L) + 1;
  for (i = 1; i <= n; i++) lua_geti(L, 1, i);
  return merge_layers(L, "merge", first, first + (int)n - 1, &mo);
}
