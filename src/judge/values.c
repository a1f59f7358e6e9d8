/* What the real OpenSSL says about single setting values: whether a cipher
 * string matches anything and which weak or non-forward-secret suites it
 * brings, whether a group or TLS 1.3 suite list is accepted in full, how
 * strong a DH parameter file is, and protocol specs parsed once. The merge
 * asks these for every layer of every context a server builds, so answers
 * that cost an OpenSSL context are remembered per Lua state, in bounded
 * tables in the registry. Each check returns 1, or 0 with an error message
 * (without a function prefix) pushed. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "core/tlsharden.h"

/* Registry keys (their addresses) of the caches. */
static const char risks_key = 0;     /* cipher string -> risks table */
static const char verdicts_key = 0;  /* risks[&verdicts_key]: old string -> message/false */
static const char no_old_key = 0;    /* verdict key for "no earlier string" */
static const char protocols_key = 0; /* protocol string -> packed th_range */
static const char groups_key = 0;    /* curveslist accepted -> true */
static const char suites_key = 0;    /* ciphersuites accepted -> true */
#define RISKS_MAX 256
#define VERDICTS_MAX 64
#define LIST_MAX 64

/* --- bounded caches ----------------------------------------------------------
 * A full cache is replaced by an empty one; its count lives at index 1,
 * where no key ever is. */

/* Push the cache table owner[regkey], creating it on first use. */
static void push_cache(lua_State *L, int owner, const void *regkey) {
  if (lua_rawgetp(L, owner, regkey) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, owner, regkey);
  }
}

/* cache[key] = the value on top of the stack (popped), for the cache table
 * at slot, which is owner[regkey]; the slot is updated when a full cache is
 * replaced. */
static void cache_put(lua_State *L, int slot, int owner, const void *regkey, int key, int max) {
  lua_Integer n;
  lua_rawgeti(L, slot, 1);
  n = lua_tointeger(L, -1) + 1;
  lua_pop(L, 1);
  if (n > max) {
    lua_newtable(L);
    lua_replace(L, slot);
    lua_pushvalue(L, slot);
    lua_rawsetp(L, owner, regkey);
    n = 1;
  }
  lua_pushinteger(L, n);
  lua_rawseti(L, slot, 1);
  lua_pushvalue(L, key);
  lua_insert(L, -2);
  lua_rawset(L, slot);
}

/* --- cipher strings ---------------------------------------------------------- */

/* Push the risks of the cipher string at spec: { [i] = name, [name] =
 * reason } for its TLS 1.2 suites that are weak or have no forward secrecy,
 * in preference order. */
static int push_risks(lua_State *L, int spec) {
  SSL_CTX *ctx;
  th_owned *owned;
  STACK_OF(SSL_CIPHER) *sk;
  int i, n, cache;
  push_cache(L, LUA_REGISTRYINDEX, &risks_key);
  cache = lua_gettop(L);
  lua_pushvalue(L, spec);
  if (lua_rawget(L, cache) == LUA_TTABLE) {
    lua_remove(L, cache);
    return 1;
  }
  lua_pop(L, 1);
  ERR_clear_error();
  ctx = SSL_CTX_new(TLS_server_method());
  owned = th_own(L, ctx, th_free_ssl_ctx);
  if (!ctx || !SSL_CTX_set_cipher_list(ctx, lua_tostring(L, spec))) {
    th_release(owned);
    lua_settop(L, cache - 1);
    th_push_ssl_errors(L, "no cipher match");
    lua_pushfstring(L, "OpenSSL matches no cipher suite: %s", lua_tostring(L, -1));
    lua_remove(L, -2);
    return 0;
  }
  lua_newtable(L);
  sk = SSL_CTX_get_ciphers(ctx);
  for (i = 0, n = 0; i < sk_SSL_CIPHER_num(sk); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;  /* TLS 1.3: ciphersuites */
    if (th_cipher_weakness(c, 0)) lua_pushliteral(L, "weak");
    else if (!th_cipher_is_fs(c)) lua_pushliteral(L, "no forward secrecy");
    else continue;
    lua_setfield(L, -2, SSL_CIPHER_get_name(c));
    lua_pushstring(L, SSL_CIPHER_get_name(c));
    lua_rawseti(L, -2, ++n);
  }
  th_release(owned);
  lua_remove(L, -2);
  ERR_clear_error();
  lua_pushvalue(L, -1);
  cache_put(L, cache, LUA_REGISTRYINDEX, &risks_key, spec, RISKS_MAX);
  lua_remove(L, cache);
  return 1;
}

int th_cipher_check(lua_State *L, int spec) {
  if (!push_risks(L, spec)) return 0;
  lua_pop(L, 1);
  return 1;
}

int th_cipher_verdict(lua_State *L, int old, int new_) {
  luaL_Buffer b;
  int risks, verdicts, key, old_risks = 0, added = 0;
  lua_Integer i, n;
  if (!push_risks(L, new_)) return 0;
  risks = lua_gettop(L);
  push_cache(L, risks, &verdicts_key);
  verdicts = risks + 1;
  if (old) lua_pushvalue(L, old); else lua_pushlightuserdata(L, (void *)&no_old_key);
  key = verdicts + 1;
  lua_pushvalue(L, key);
  if (lua_rawget(L, verdicts) != LUA_TNIL) {
    lua_replace(L, risks);
    lua_settop(L, risks);
    return 1;
  }
  lua_pop(L, 1);
  if (old) {
    if (!push_risks(L, old)) {
      lua_replace(L, risks);
      lua_settop(L, risks);
      return 0;
    }
    old_risks = lua_gettop(L);
  }
  luaL_buffinit(L, &b);
  n = (lua_Integer)lua_rawlen(L, risks);
  for (i = 1; i <= n; i++) {
    const char *name;
    int known;
    lua_rawgeti(L, risks, i);
    name = lua_tostring(L, -1);
    known = old_risks && lua_getfield(L, old_risks, name) != LUA_TNIL;
    if (old_risks) lua_pop(L, 1);
    if (!known && added++ < 8) {
      lua_getfield(L, risks, name);
      lua_pushfstring(L, "%s%s (%s)", added > 1 ? ", " : "", name, lua_tostring(L, -1));
      lua_remove(L, -2);
      lua_remove(L, -2);
      luaL_addvalue(&b);
    } else {
      lua_pop(L, 1);
    }
  }
  if (added > 8) {
    lua_pushfstring(L, " and %d more", added - 8);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  if (added > 0)
    lua_pushfstring(L, "adds %d suite%s without forward secrecy or weak: %s", added,
                    added == 1 ? "" : "s", lua_tostring(L, -1));
  else
    lua_pushboolean(L, 0);
  lua_pushvalue(L, -1);
  cache_put(L, verdicts, risks, &verdicts_key, key, VERDICTS_MAX);
  lua_replace(L, risks);
  lua_settop(L, risks);
  return 1;
}

/* --- group and TLS 1.3 suite lists -------------------------------------------- */

/* The first name in the ':'-separated list that is not one of the TLS 1.3
 * suites ctx ended up with (pushed, to keep it alive), or NULL. */
static const char *unknown_tls13_suite(lua_State *L, SSL_CTX *ctx, const char *list) {
  STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
  const char *start = list;
  while (*start) {
    size_t len = strcspn(start, ":");
    int i, found = 0;
    for (i = 0; i < sk_SSL_CIPHER_num(sk) && !found; i++) {
      const char *name = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i));
      found = strlen(name) == len && memcmp(name, start, len) == 0;
    }
    if (!found && len > 0) return lua_pushlstring(L, start, len);
    start += len;
    if (*start == ':') start++;
  }
  return NULL;
}

int th_list_check(lua_State *L, int value, int groups) {
  const void *key = groups ? &groups_key : &suites_key;
  const char *list = lua_tostring(L, value), *unknown = NULL;
  int cache, ok;
  SSL_CTX *ctx;
  th_owned *owned;
  push_cache(L, LUA_REGISTRYINDEX, key);
  cache = lua_gettop(L);
  lua_pushvalue(L, value);
  if (lua_rawget(L, cache) != LUA_TNIL) {
    lua_settop(L, cache - 1);
    return 1;
  }
  lua_pop(L, 1);
  ERR_clear_error();
  ctx = SSL_CTX_new(TLS_server_method());
  owned = th_own(L, ctx, th_free_ssl_ctx);
  ok = ctx && (groups ? SSL_CTX_set1_groups_list(ctx, list) : SSL_CTX_set_ciphersuites(ctx, list));
  /* OpenSSL skips TLS 1.3 names it does not know; a typo must not vanish */
  if (ok && !groups) unknown = unknown_tls13_suite(L, ctx, list);
  th_release(owned);
  if (!ok || unknown) {
    if (unknown) {
      lua_pushfstring(L, "unknown TLS 1.3 suite %s", th_quote(L, -1));
    } else {
      th_quote(L, value);
      th_push_ssl_errors(L, "refused");
      lua_pushfstring(L, "OpenSSL refuses %s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
    }
    lua_replace(L, cache);
    lua_settop(L, cache);
    ERR_clear_error();
    return 0;
  }
  lua_settop(L, cache);
  ERR_clear_error();
  lua_pushboolean(L, 1);
  cache_put(L, cache, LUA_REGISTRYINDEX, key, value, LIST_MAX);
  lua_settop(L, cache - 1);
  return 1;
}

/* --- protocol specs and DH parameters ----------------------------------------- */

/* The forms th_protocol_parse names, for packing a range into an integer. */
static const char *const range_forms[] = {"exact", "floor", "any", "set", "range", "list", NULL};

int th_protocol_parse_cached(lua_State *L, int idx, th_range *r) {
  int cache, form;
  if (lua_type(L, idx) != LUA_TSTRING) return th_protocol_parse(L, idx, r);
  idx = lua_absindex(L, idx);
  push_cache(L, LUA_REGISTRYINDEX, &protocols_key);
  cache = lua_gettop(L);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, cache) == LUA_TNUMBER) {
    lua_Integer packed = lua_tointeger(L, -1);
    lua_settop(L, cache - 1);
    r->lo = (int)(packed & 15);
    r->hi = (int)((packed >> 4) & 15);
    r->open_lo = (int)((packed >> 8) & 1);
    r->open_hi = (int)((packed >> 9) & 1);
    r->form = range_forms[packed >> 10];
    return 1;
  }
  lua_settop(L, cache - 1);
  if (!th_protocol_parse(L, idx, r)) return 0;
  for (form = 0; range_forms[form] && strcmp(range_forms[form], r->form) != 0; form++) continue;
  if (!range_forms[form]) return 1;
  push_cache(L, LUA_REGISTRYINDEX, &protocols_key);
  cache = lua_gettop(L);
  lua_pushinteger(L, (lua_Integer)r->lo | (lua_Integer)r->hi << 4 |
                  (lua_Integer)r->open_lo << 8 | (lua_Integer)r->open_hi << 9 |
                  (lua_Integer)form << 10);
  cache_put(L, cache, LUA_REGISTRYINDEX, &protocols_key, idx, LIST_MAX);
  lua_settop(L, cache - 1);
  return 1;
}

int th_dhparam_bits(const char *path) {
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
