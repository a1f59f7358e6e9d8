/* Option merging: layered LuaSec configurations merged with Prosody 0.12's
 * util.sslconfig semantics, validated, with a record of where every value
 * came from, what later layers overrode, and what lowered security. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tlsharden.h"

#define CIPHER_CACHE "tlsharden.merge.ciphers"
#define CIPHER_CACHE_MAX 256

/* Options whose removal lowers security, and options whose addition does. */
static const char *const protective_options[] = {
  "no_compression", "no_renegotiation", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", NULL
};
static const char *const risky_options[] = {
  "allow_unsafe_legacy_renegotiation", "legacy_server_connect", "allow_client_renegotiation",
  "no_tlsv1_2", "no_tlsv1_3", "no_encrypt_then_mac", "no_extended_master_secret",
  "dont_insert_empty_fragments", "all", NULL
};
static const char *const verifyext_names[] = {
  "lsec_continue", "lsec_ignore_purpose", "crl_check", "crl_check_chain", NULL
};
static const char *const verify_names[] = {
  "none", "peer", "client_once", "fail_if_no_peer_cert", NULL
};
static const char *const path_keys[] = {"key", "certificate", "cafile", "capath", NULL};
static const char *const joined_keys[] = {"ciphers", "ciphersuites", "curveslist", NULL};

/* Stack slots of the working tables, fixed for the whole call. */
typedef struct merger {
  lua_State *L;
  int cfg, origin, opt_origin, changes, warnings, ignored, explicit_off;
  int nchanges, nwarnings, nignored;
  int strict, floor, mode;
  int have_range;
  th_range range;          /* the current protocol value, parsed */
  int ciphers_from_profile;
  int layer;               /* stack index of the current layer's id */
  const char *fn;          /* the public function, for messages */
} merger;

static int in_list(const char *const *list, const char *s) {
  for (; *list; list++)
    if (strcmp(*list, s) == 0) return 1;
  return 0;
}

/* "layer 3" or "layer 'host ssl'" for messages. */
static const char *layer_label(merger *m) {
  lua_State *L = m->L;
  if (lua_type(L, m->layer) == LUA_TSTRING)
    return lua_pushfstring(L, "layer '%s'", lua_tostring(L, m->layer));
  return lua_pushfstring(L, "layer %d", (int)lua_tointeger(L, m->layer));
}

static int layer_error(merger *m, const char *key, const char *fmt, const char *detail) {
  lua_State *L = m->L;
  const char *label = layer_label(m);
  return th_error(L, m->fn, "%s: bad %s: %s%s", label, key, fmt, detail ? detail : "");
}

/* Append {key, old, new, layer} to the list at slot list; values are taken
 * from the stack (old at -2, new at -1) and popped. */
static void record(merger *m, int list, int *count, const char *key) {
  lua_State *L = m->L;
  lua_createtable(L, 0, 4);
  lua_insert(L, -3);
  lua_setfield(L, -3, "new");
  lua_setfield(L, -2, "old");
  lua_pushstring(L, key);
  lua_setfield(L, -2, "key");
  lua_pushvalue(L, m->layer);
  lua_setfield(L, -2, "layer");
  lua_rawseti(L, list, ++*count);
}

/* A lowering of security: a warning, or the error under policy strict.
 * old and new are on the stack and popped; message is formatted. */
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
  record(m, m->warnings, &m->nwarnings, key);
  lua_rawgeti(L, m->warnings, m->nwarnings);
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, lowers);
  lua_setfield(L, -2, "lowers");
  lua_pop(L, 1);
}

/* --- options and verifyext: sets ----------------------------------------- */

static void set_item(merger *m, const char *key, int set, const char *name, int on) {
  lua_State *L = m->L;
  int was, seen;
  if (strcmp(key, "options") == 0) {
    if (!th_option_find(name)) {
      lua_pushfstring(L, "unknown option '%s' (see tlsharden.option_names())", name);
      layer_error(m, "options", lua_tostring(L, -1), NULL);
    }
  } else if (!in_list(verifyext_names, name)) {
    lua_pushfstring(L, "unknown verifyext '%s' (lsec_continue, lsec_ignore_purpose,"
                    " crl_check, crl_check_chain)", name);
    layer_error(m, "verifyext", lua_tostring(L, -1), NULL);
  }
  /* Only a value an earlier layer set counts as overridden. */
  seen = lua_getfield(L, set, name) != LUA_TNIL;
  was = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_pushboolean(L, on);
  lua_setfield(L, set, name);
  if (strcmp(key, "options") == 0) {
    lua_pushvalue(L, m->layer);
    lua_setfield(L, m->opt_origin, name);
    if (!on) {
      lua_pushvalue(L, m->layer);
      lua_setfield(L, m->explicit_off, name);
    } else {
      lua_pushnil(L);
      lua_setfield(L, m->explicit_off, name);
    }
  }
  if (was != on && (seen || (!on && in_list(protective_options, name)) ||
                    (on && in_list(risky_options, name)))) {
    const char *item = lua_pushfstring(L, "%s.%s", key, name);
    if (seen) {
      lua_pushboolean(L, was);
      lua_pushboolean(L, on);
      record(m, m->changes, &m->nchanges, item);
    }
    if (strcmp(key, "options") == 0 &&
        ((!on && in_list(protective_options, name)) || (on && in_list(risky_options, name)))) {
      const char *msg = lua_pushfstring(L, "%s option %s", on ? "sets" : "removes", name);
      lua_pushboolean(L, was);
      lua_pushboolean(L, on);
      lowering(m, item, 1, msg);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

static void apply_set(merger *m, const char *key, int value) {
  lua_State *L = m->L;
  int set;
  lua_getfield(L, m->cfg, key);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, m->cfg, key);
  }
  set = lua_gettop(L);
  if (lua_type(L, value) == LUA_TSTRING) {
    set_item(m, key, set, lua_tostring(L, value), 1);
  } else if (lua_istable(L, value)) {
    lua_pushnil(L);
    while (lua_next(L, value)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isboolean(L, -1)) {
        set_item(m, key, set, lua_tostring(L, -2), lua_toboolean(L, -1));
      } else if (lua_isinteger(L, -2) && lua_type(L, -1) == LUA_TSTRING) {
        set_item(m, key, set, lua_tostring(L, -1), 1);
      } else {
        lua_pushfstring(L, "expected names in a list or name = true/false, got [%s] = %s",
                        luaL_tolstring(L, -2, NULL), luaL_typename(L, -2));
        layer_error(m, key, lua_tostring(L, -1), NULL);
      }
      lua_pop(L, 1);
    }
  } else {
    lua_pushfstring(L, "expected a name or a table, got %s", luaL_typename(L, value));
    layer_error(m, key, lua_tostring(L, -1), NULL);
  }
  lua_pushvalue(L, m->layer);
  lua_setfield(L, m->origin, key);
  lua_pop(L, 1);
}

/* --- cipher strings ------------------------------------------------------- */

/* Push a set {name = reason} of the suites of spec that have no forward
 * secrecy or are weak, computed once per string and kept in the registry.
 * Raises (as the layer's error) when OpenSSL matches nothing. */
static void push_cipher_risks(merger *m, const char *spec) {
  lua_State *L = m->L;
  SSL_CTX *ctx;
  th_owned *owned;
  STACK_OF(SSL_CIPHER) *sk;
  int i, n;
  if (lua_getfield(L, LUA_REGISTRYINDEX, CIPHER_CACHE) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 8);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CIPHER_CACHE);
  }
  if (lua_getfield(L, -1, spec) == LUA_TTABLE) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  ERR_clear_error();
  ctx = SSL_CTX_new(TLS_server_method());
  owned = th_own(L, ctx, th_free_ssl_ctx);
  if (!ctx || !SSL_CTX_set_cipher_list(ctx, spec)) {
    th_push_ssl_errors(L, "no cipher match");
    layer_error(m, "ciphers", "OpenSSL matches no cipher suite: ", lua_tostring(L, -1));
  }
  /* names in preference order in the array part, reasons by name */
  lua_newtable(L);
  sk = SSL_CTX_get_ciphers(ctx);
  for (i = 0, n = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    unsigned weak;
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;  /* TLS 1.3: ciphersuites */
    weak = th_cipher_weakness(c, 0);
    if (weak) lua_pushliteral(L, "weak");
    else if (!th_cipher_is_fs(c)) lua_pushliteral(L, "no forward secrecy");
    else continue;
    lua_setfield(L, -2, SSL_CIPHER_get_name(c));
    lua_pushstring(L, SSL_CIPHER_get_name(c));
    lua_rawseti(L, -2, ++n);
  }
  th_release(owned);
  lua_remove(L, -2);
  /* Keep the cache bounded: start afresh when it is full. */
  lua_pushinteger(L, 0);
  for (lua_pushnil(L); lua_next(L, -4); lua_pop(L, 1))
    lua_pushinteger(L, lua_tointeger(L, -3) + 1), lua_replace(L, -4);
  if (lua_tointeger(L, -1) >= CIPHER_CACHE_MAX) {
    lua_newtable(L);
    lua_replace(L, -4);
    lua_pushvalue(L, -3);
    lua_setfield(L, LUA_REGISTRYINDEX, CIPHER_CACHE);
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, spec);
  lua_remove(L, -2);
  ERR_clear_error();
}

/* Warn when the new cipher string adds suites without forward secrecy or
 * weak ones that the old string did not have. */
static void check_ciphers(merger *m, const char *old, const char *new) {
  lua_State *L = m->L;
  luaL_Buffer b;
  int added = 0, top = lua_gettop(L);
  lua_Integer i, n;
  /* A TLS 1.3-only range never uses the TLS 1.2 list. */
  if (m->have_range && th_versions[m->range.lo].number >= TLS1_3_VERSION) {
    push_cipher_risks(m, new);  /* still validates the string */
    lua_settop(L, top);
    return;
  }
  push_cipher_risks(m, new);
  if (old) push_cipher_risks(m, old); else lua_newtable(L);
  luaL_buffinit(L, &b);
  n = (lua_Integer)lua_rawlen(L, top + 1);
  for (i = 1; i <= n; i++) {
    const char *name;
    lua_rawgeti(L, top + 1, i);
    name = lua_tostring(L, -1);
    if (lua_getfield(L, top + 2, name) == LUA_TNIL && added++ < 8) {
      lua_getfield(L, top + 1, name);
      lua_pushfstring(L, "%s%s (%s)", added > 1 ? ", " : "", name, lua_tostring(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
      lua_replace(L, -2);
      luaL_addvalue(&b);
    } else {
      lua_pop(L, 2);
    }
  }
  if (added > 8) {
    lua_pushfstring(L, " and %d more", added - 8);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  if (added > 0) {
    const char *msg = lua_pushfstring(L, "adds %d suite%s without forward secrecy or weak: %s",
                                      added, added == 1 ? "" : "s", lua_tostring(L, -1));
    if (old) lua_pushstring(L, old); else lua_pushnil(L);
    lua_pushstring(L, new);
    lowering(m, "ciphers", 1, msg);
  }
  lua_settop(L, top);
}

/* --- scalar keys ---------------------------------------------------------- */

/* Join a list of strings with ':' (the value at idx), or check a string. */
static void push_joined(merger *m, const char *key, int value) {
  lua_State *L = m->L;
  if (lua_type(L, value) == LUA_TSTRING) {
    lua_pushvalue(L, value);
  } else if (lua_istable(L, value)) {
    luaL_Buffer b;
    lua_Integer i, n = luaL_len(L, value);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      if (lua_geti(L, value, i) != LUA_TSTRING) {
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
  {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len) layer_error(m, key, "contains a NUL byte", NULL);
  }
}

static void check_verify(merger *m, int value) {
  lua_State *L = m->L;
  int none = 0, peer = 0;
  if (lua_type(L, value) == LUA_TSTRING) {
    const char *s = lua_tostring(L, value);
    if (!in_list(verify_names, s)) {
      lua_pushfstring(L, "unknown verify mode '%s' (none, peer, client_once,"
                      " fail_if_no_peer_cert)", s);
      layer_error(m, "verify", lua_tostring(L, -1), NULL);
    }
    none = strcmp(s, "none") == 0;
    peer = strcmp(s, "peer") == 0;
  } else if (lua_istable(L, value)) {
    lua_Integer i, n = luaL_len(L, value);
    for (i = 1; i <= n; i++) {
      const char *s;
      if (lua_geti(L, value, i) != LUA_TSTRING || !in_list(verify_names, lua_tostring(L, -1))) {
        lua_pushfstring(L, "unknown verify mode %s (none, peer, client_once,"
                        " fail_if_no_peer_cert)", luaL_tolstring(L, -1, NULL));
        layer_error(m, "verify", lua_tostring(L, -1), NULL);
      }
      s = lua_tostring(L, -1);
      if (strcmp(s, "none") == 0) none = 1;
      if (strcmp(s, "peer") == 0) peer = 1;
      lua_pop(L, 1);
    }
    if (n == 0) none = 1;
  } else {
    lua_pushfstring(L, "expected a mode or a list of modes, got %s", luaL_typename(L, value));
    layer_error(m, "verify", lua_tostring(L, -1), NULL);
  }
  if (none && !peer && m->mode == 2) {
    lua_getfield(L, m->cfg, "verify");
    lua_pushvalue(L, value);
    lowering(m, "verify", 1, "a client context that does not verify its peer"
             " accepts any certificate");
  }
}

/* The key size of a DH parameter file, or 0 when it cannot be read. */
static int dhparam_bits(const char *path) {
  BIO *f = BIO_new_file(path, "r");
  EVP_PKEY *pkey;
  int bits = 0;
  if (!f) {
    ERR_clear_error();
    return 0;
  }
  pkey = PEM_read_bio_Parameters(f, NULL);
  BIO_free(f);
  if (pkey) {
    bits = EVP_PKEY_get_bits(pkey);
    EVP_PKEY_free(pkey);
  }
  ERR_clear_error();
  return bits;
}

static void check_protocol(merger *m, int value) {
  lua_State *L = m->L;
  th_range r;
  const char *msg = NULL;
  if (!th_protocol_parse(L, value, &r))
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
    lua_getfield(L, m->cfg, "protocol");
    lua_pushvalue(L, value);
    lowering(m, "protocol", 1, msg);
    lua_pop(L, 1);
  }
  m->range = r;
  m->have_range = 1;
}

/* Replace key with the value on top of the stack (popped), recording it. */
static void replace_value(merger *m, const char *key) {
  lua_State *L = m->L;
  lua_getfield(L, m->cfg, key);
  if (!lua_isnil(L, -1) && !lua_rawequal(L, -1, -2)) {
    lua_pushvalue(L, -2);
    record(m, m->changes, &m->nchanges, key);
  } else {
    lua_pop(L, 1);
  }
  lua_setfield(L, m->cfg, key);
  lua_pushvalue(L, m->layer);
  lua_setfield(L, m->origin, key);
}

static void apply_key(merger *m, const char *key, int value, int is_profile) {
  lua_State *L = m->L;
  if (strcmp(key, "options") == 0 || strcmp(key, "verifyext") == 0) {
    apply_set(m, key, value);
    return;
  }
  if (in_list(joined_keys, key)) {
    push_joined(m, key, value);
    if (strcmp(key, "ciphers") == 0) {
      const char *old = NULL;
      int was_profile = m->ciphers_from_profile;
      lua_getfield(L, m->cfg, "ciphers");
      old = lua_tostring(L, -1);
      check_ciphers(m, old, lua_tostring(L, -2));
      if (was_profile && !is_profile && (!old || strcmp(old, lua_tostring(L, -2)) != 0)) {
        lua_pushvalue(L, -2);
        lowering(m, "ciphers", 0, "replaces the profile's cipher list wholesale");
      } else {
        lua_pop(L, 1);
      }
      m->ciphers_from_profile = is_profile;
    }
    replace_value(m, key);
    return;
  }
  if (strcmp(key, "protocol") == 0) {
    check_protocol(m, value);
  } else if (strcmp(key, "depth") == 0) {
    lua_Integer d;
    int isint;
    d = lua_tointegerx(L, value, &isint);
    if (!isint || d < 0 || lua_type(L, value) != LUA_TNUMBER) {
      lua_pushfstring(L, "expected a non-negative integer, got %s", luaL_tolstring(L, value, NULL));
      layer_error(m, "depth", lua_tostring(L, -1), NULL);
    }
    if (d < 2 || d > 16) {
      lua_getfield(L, m->cfg, "depth");
      lua_pushvalue(L, value);
      lowering(m, "depth", 1, d < 2 ? "depth below 2 rejects ordinary chains with an"
               " intermediate, or invites turning verification off" :
               "depth above 16 accepts absurdly long chains");
    }
  } else if (strcmp(key, "verify") == 0) {
    check_verify(m, value);
  } else if (strcmp(key, "mode") == 0) {
    const char *s = lua_tostring(L, value);
    if (lua_type(L, value) != LUA_TSTRING || (strcmp(s, "server") && strcmp(s, "client")))
      layer_error(m, "mode", "expected \"server\" or \"client\"", NULL);
    m->mode = strcmp(s, "server") == 0 ? 1 : 2;
  } else if (in_list(path_keys, key) || strcmp(key, "dhparam") == 0) {
    int t = lua_type(L, value);
    if (strcmp(key, "dhparam") == 0 && t == LUA_TFUNCTION) {
      /* LuaSec's own form: a function returning PEM; nothing to check. */
    } else if (t != LUA_TSTRING || lua_rawlen(L, value) == 0 ||
               strlen(lua_tostring(L, value)) != lua_rawlen(L, value)) {
      lua_pushfstring(L, "expected a file path, got %s", luaL_tolstring(L, value, NULL));
      layer_error(m, key, lua_tostring(L, -1), NULL);
    } else if (strcmp(key, "dhparam") == 0) {
      int bits = dhparam_bits(lua_tostring(L, value));
      if (bits > 0 && bits < 2048) {
        const char *msg = lua_pushfstring(L, "DH parameters of %d bits (under 2048)", bits);
        lua_getfield(L, m->cfg, "dhparam");
        lua_pushvalue(L, value);
        lowering(m, "dhparam", 1, msg);
        lua_pop(L, 1);
      }
    }
  }
  lua_pushvalue(L, value);
  replace_value(m, key);
}

static void apply_layer(merger *m, int layer, int position) {
  lua_State *L = m->L;
  int is_profile;
  if (!lua_istable(L, layer)) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, position);
    lua_setfield(L, -2, "layer");
    lua_pushfstring(L, "not a table (%s)", luaL_typename(L, layer));
    lua_setfield(L, -2, "reason");
    lua_rawseti(L, m->ignored, ++m->nignored);
    return;
  }
  if (lua_getfield(L, layer, "name") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushinteger(L, position);
  } else if (lua_type(L, -1) != LUA_TSTRING) {
    th_error(L, m->fn, "layer %d: bad name: expected a string, got %s", position,
             luaL_typename(L, -1));
  }
  lua_replace(L, m->layer);
  is_profile = lua_getfield(L, layer, "_profile") != LUA_TNIL;
  lua_pop(L, 1);
  /* The protocol first: it decides whether TLS 1.2 suites matter. */
  if (lua_getfield(L, layer, "protocol") != LUA_TNIL)
    apply_key(m, "protocol", lua_gettop(L), is_profile);
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, layer)) {
    const char *key;
    if (lua_type(L, -2) != LUA_TSTRING) {
      const char *label = layer_label(m);
      th_error(L, m->fn, "%s: bad key %s: expected a setting name", label,
               luaL_tolstring(L, -3, NULL));
    }
    key = lua_tostring(L, -2);
    if (strcmp(key, "protocol") == 0) {
      /* applied above */
    } else if (key[0] == '_' || strcmp(key, "name") == 0) {
      if (key[0] == '_' && strcmp(key, "_profile") != 0) {
        lua_createtable(L, 0, 3);
        lua_pushvalue(L, m->layer);
        lua_setfield(L, -2, "layer");
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "key");
        lua_pushliteral(L, "keys starting with '_' are ignored");
        lua_setfield(L, -2, "reason");
        lua_rawseti(L, m->ignored, ++m->nignored);
      }
    } else {
      apply_key(m, key, lua_gettop(L), is_profile);
    }
    lua_pop(L, 1);
  }
}

/* Sorted list of the names set to true in the set at idx. */
static int push_true_names(lua_State *L, int set) {
  int n = 0, i, j;
  lua_newtable(L);
  if (!lua_istable(L, set)) return 0;
  lua_pushnil(L);
  while (lua_next(L, set)) {
    if (lua_toboolean(L, -1)) {
      /* insertion sort: the lists are short */
      for (i = n; i > 0; i--) {
        lua_rawgeti(L, -3, i);
        j = strcmp(lua_tostring(L, -1), lua_tostring(L, -3)) > 0;
        if (!j) { lua_pop(L, 1); break; }
        lua_rawseti(L, -4, i + 1);
      }
      lua_pushvalue(L, -2);
      lua_rawseti(L, -4, i + 1);
      n++;
    }
    lua_pop(L, 1);
  }
  return n;
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
  lua_getfield(L, m->cfg, "options");
  if (!lua_istable(L, -1) && n > 0) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, m->cfg, "options");
  }
  for (i = 0; i < n; i++) {
    if (lua_getfield(L, m->explicit_off, no[i]) != LUA_TNIL) {
      const char *key, *msg;
      lua_replace(L, m->layer);
      key = lua_pushfstring(L, "options.%s", no[i]);
      msg = lua_pushfstring(L, "the layer switches %s off, but the protocol floor switches"
                            " it back on; the floor wins", no[i]);
      lua_pushboolean(L, 0);
      lua_pushboolean(L, 1);
      lowering(m, key, 0, msg);
      lua_pop(L, 2);
    } else {
      lua_pop(L, 1);
    }
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, no[i]);
  }
  lua_pop(L, 1);
  lua_pushstring(L, protocol);
  lua_setfield(L, m->cfg, "protocol");
}

/* Merge the layers at stack indices first..last in the given order
 * (step 1: later wins; step -1: Prosody's first-argument-wins), with the
 * options table at opts (0 for none). Returns cfg, report. */
static int merge_layers(lua_State *L, const char *fn, int first, int last, int prosody_order,
                        int opts) {
  merger m;
  int i, base;
  memset(&m, 0, sizeof m);
  m.L = L;
  m.fn = fn;
  m.floor = th_version_index(TLS1_2_VERSION);
  if (opts) {
    if (lua_getfield(L, opts, "policy") != LUA_TNIL) {
      const char *p = lua_tostring(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING || (strcmp(p, "warn") && strcmp(p, "strict")))
        th_error(L, m.fn, "bad option 'policy': expected \"warn\" or \"strict\", got %s",
                 luaL_tolstring(L, -1, NULL));
      m.strict = strcmp(p, "strict") == 0;
    }
    if (lua_getfield(L, opts, "mode") != LUA_TNIL) {
      const char *p = lua_tostring(L, -1);
      if (lua_type(L, -1) != LUA_TSTRING || (strcmp(p, "server") && strcmp(p, "client")))
        th_error(L, m.fn, "bad option 'mode': expected \"server\" or \"client\"");
      m.mode = strcmp(p, "server") == 0 ? 1 : 2;
    }
    if (lua_getfield(L, opts, "floor") != LUA_TNIL) {
      if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) m.floor = -1;
      else {
        th_range r;
        if (lua_type(L, -1) != LUA_TSTRING || !th_protocol_parse(L, -1, &r) ||
            strcmp(r.form, "exact") != 0)
          th_error(L, m.fn, "bad option 'floor': expected a version name such as"
                   " \"tlsv1_2\", or false");
        m.floor = r.lo;
      }
    }
    lua_pop(L, 3);
  }
  base = lua_gettop(L);
  lua_newtable(L); m.cfg = base + 1;
  lua_newtable(L); m.origin = base + 2;
  lua_newtable(L); m.opt_origin = base + 3;
  lua_newtable(L); m.changes = base + 4;
  lua_newtable(L); m.warnings = base + 5;
  lua_newtable(L); m.ignored = base + 6;
  lua_newtable(L); m.explicit_off = base + 7;
  lua_pushnil(L); m.layer = base + 8;
  /* Find the mode first, so that "verify none on a client" is seen in any
   * layer order. */
  for (i = first; i <= last; i++) {
    if (lua_istable(L, i) && lua_getfield(L, i, "mode") == LUA_TSTRING && m.mode == 0)
      m.mode = strcmp(lua_tostring(L, -1), "client") == 0 ? 2 : 1;
    if (lua_istable(L, i)) lua_pop(L, 1);
  }
  if (prosody_order) {
    for (i = last; i >= first; i--) apply_layer(&m, i, i - first + 1);
  } else {
    for (i = first; i <= last; i++) apply_layer(&m, i, i - first + 1);
  }
  finish_protocol(&m);
  /* cfg: sets become sorted lists */
  lua_getfield(L, m.cfg, "options");
  if (lua_istable(L, -1)) {
    push_true_names(L, lua_gettop(L));
    lua_setfield(L, m.cfg, "options");
  }
  lua_pop(L, 1);
  lua_getfield(L, m.cfg, "verifyext");
  if (lua_istable(L, -1)) {
    push_true_names(L, lua_gettop(L));
    lua_setfield(L, m.cfg, "verifyext");
  }
  lua_pop(L, 1);
  /* report */
  lua_pushvalue(L, m.opt_origin);
  lua_setfield(L, m.origin, "options");
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, m.origin);
  lua_setfield(L, -2, "origin");
  lua_pushvalue(L, m.changes);
  lua_setfield(L, -2, "changes");
  lua_pushvalue(L, m.warnings);
  lua_setfield(L, -2, "warnings");
  lua_pushvalue(L, m.ignored);
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
  int prosody_order = 0;
  if (!lua_istable(L, 1))
    th_error(L, "merge_with", "bad argument #1 'opts': expected a table, got %s",
             luaL_typename(L, 1));
  if (lua_getfield(L, 1, "order") != LUA_TNIL) {
    const char *o = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING || (strcmp(o, "later") && strcmp(o, "prosody")))
      th_error(L, "merge_with", "bad option 'order': expected \"later\" or \"prosody\", got %s",
               luaL_tolstring(L, -1, NULL));
    prosody_order = strcmp(o, "prosody") == 0;
  }
  lua_pop(L, 1);
  {
    static const char *const known[] = {"order", "policy", "mode", "floor", NULL};
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      if (lua_type(L, -2) != LUA_TSTRING || !in_list(known, lua_tostring(L, -2)))
        th_error(L, "merge_with", "bad argument #1 'opts': unknown option %s (known: order, policy,"
                 " mode, floor)", luaL_tolstring(L, -2, NULL));
      lua_pop(L, 1);
    }
  }
  return merge_layers(L, "merge_with", 2, lua_gettop(L), prosody_order, 1);
}
