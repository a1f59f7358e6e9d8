/* Protocol-floor parsing: every way Prosody, LuaSec, fast_tls and OTP users
 * write a TLS version range, turned into one min/max range and into the
 * protocol + options pair that LuaSec 1.x accepts. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/tlsharden.h"

/* Alternative spellings accepted for each version a context can use (lower
 * case); SSLv2 has none: OpenSSL 3 cannot speak it. */
static const char *const version_aliases[TH_NVERSIONS][4] = {
  [TH_V_SSL3] = {"sslv3", "ssl3", NULL, NULL},
  [TH_V_TLS1] = {"tlsv1", "tlsv1.0", "tlsv1_0", "tls1"},
  [TH_V_TLS11] = {"tlsv1_1", "tlsv1.1", "tls1.1", "tls1_1"},
  [TH_V_TLS12] = {"tlsv1_2", "tlsv1.2", "tls1.2", "tls1_2"},
  [TH_V_TLS13] = {"tlsv1_3", "tlsv1.3", "tls1.3", "tls1_3"},
};

#define VALID_FORMS \
  "valid forms: \"tlsv1_2+\" (floor), \"tlsv1_2\" (one version), " \
  "\"sslv23\" or \"any\", \"TLSv1.2:TLSv1.3\" (set), " \
  "\"tlsv1_2-tlsv1_3\" (range), {\"tlsv1.2\", \"tlsv1.3\"} (list)"

#define MAX_TOKEN 32

/* The oldest version an OpenSSL 3 context can use: where "any" starts. */
static int oldest_context_version(void) {
  int i = 0;
  while (!th_versions[i].context) i++;
  return i;
}

/* Whether this OpenSSL build can negotiate the version at all. */
static int version_compiled(int i) {
  switch (th_versions[i].wire) {
#ifdef OPENSSL_NO_SSL3
    case SSL3_VERSION: return 0;
#endif
#ifdef OPENSSL_NO_TLS1
    case TLS1_VERSION: return 0;
#endif
#ifdef OPENSSL_NO_TLS1_1
    case TLS1_1_VERSION: return 0;
#endif
#ifdef OPENSSL_NO_TLS1_3
    case TLS1_3_VERSION: return 0;
#endif
    default: return 1;
  }
}

/* Copy s[0..len) trimmed, lower-cased and without OTP atom quotes into
 * buf. Returns the new length, or -1 when it does not fit. */
static int normalise(const char *s, size_t len, char *buf) {
  size_t i = 0, j = len, k;
  while (i < j && isspace((unsigned char)s[i])) i++;
  while (j > i && isspace((unsigned char)s[j - 1])) j--;
  if (j - i >= 2 && s[i] == '\'' && s[j - 1] == '\'') { i++; j--; }
  if (j - i >= MAX_TOKEN) return -1;
  for (k = 0; i < j; i++, k++) buf[k] = (char)tolower((unsigned char)s[i]);
  buf[k] = '\0';
  return (int)k;
}

/* Index of one version token, or -1 (with an error message pushed). */
static int parse_version(lua_State *L, const char *s, size_t len) {
  char buf[MAX_TOKEN];
  int i, a;
  if (normalise(s, len, buf) >= 0) {
    for (i = 0; i < TH_NVERSIONS; i++)
      for (a = 0; a < 4 && version_aliases[i][a]; a++)
        if (strcmp(buf, version_aliases[i][a]) == 0) return i;
  }
  th_quote_lstring(L, s, len);
  lua_pushfstring(L, "unknown protocol version %s", lua_tostring(L, -1));
  lua_remove(L, -2);
  return -1;
}

/* A set of versions must be contiguous: OpenSSL can only express a range. */
static int set_to_range(lua_State *L, unsigned mask, th_range *out) {
  int i, lo = -1, hi = -1;
  for (i = 0; i < TH_NVERSIONS; i++)
    if (mask & (1u << i)) { if (lo < 0) lo = i; hi = i; }
  for (i = lo; i <= hi; i++) {
    if (!(mask & (1u << i))) {
      lua_pushfstring(L, "versions %s and %s are not contiguous (%s is missing);"
                      " OpenSSL can only enable a range of versions",
                      th_versions[lo].name, th_versions[hi].name, th_versions[i].name);
      return 0;
    }
  }
  out->lo = lo; out->hi = hi; out->open_lo = 0; out->open_hi = 0;
  return 1;
}

static int parse_set(lua_State *L, const char *s, size_t len, th_range *out) {
  unsigned mask = 0;
  size_t start = 0, i;
  for (i = 0; i <= len; i++) {
    if (i == len || s[i] == ':') {
      int v = parse_version(L, s + start, i - start);
      if (v < 0) return 0;
      mask |= 1u << v;
      start = i + 1;
    }
  }
  out->form = "set";
  return set_to_range(L, mask, out);
}

static int parse_string(lua_State *L, const char *s, size_t len, th_range *out) {
  char buf[MAX_TOKEN];
  const char *dash, *colon;
  int n, lo, hi;
  if (strlen(s) != len) {
    lua_pushliteral(L, "contains a NUL byte");
    return 0;
  }
  colon = strchr(s, ':');
  if (colon) return parse_set(L, s, len, out);
  dash = strchr(s, '-');
  if (dash) {
    if ((lo = parse_version(L, s, (size_t)(dash - s))) < 0) return 0;
    if ((hi = parse_version(L, dash + 1, len - (size_t)(dash - s) - 1)) < 0) return 0;
    if (lo > hi) {
      lua_pushfstring(L, "range starts above its end (%s > %s)",
                      th_versions[lo].name, th_versions[hi].name);
      return 0;
    }
    out->lo = lo; out->hi = hi; out->open_lo = out->open_hi = 0;
    out->form = "range";
    return 1;
  }
  n = normalise(s, len, buf);
  if (n == 0) {
    lua_pushliteral(L, "empty protocol specification");
    return 0;
  }
  if (n > 0 && (strcmp(buf, "sslv23") == 0 || strcmp(buf, "any") == 0 ||
                strcmp(buf, "sslv2+") == 0)) {
    out->lo = oldest_context_version(); out->hi = TH_NVERSIONS - 1;
    out->open_lo = out->open_hi = 1;
    out->form = "any";
    return 1;
  }
  if (n > 1 && buf[n - 1] == '+') {
    if ((lo = parse_version(L, buf, (size_t)n - 1)) < 0) return 0;
    out->lo = lo; out->hi = TH_NVERSIONS - 1; out->open_lo = 0; out->open_hi = 1;
    out->form = "floor";
    return 1;
  }
  if ((lo = parse_version(L, s, len)) < 0) return 0;
  out->lo = out->hi = lo; out->open_lo = out->open_hi = 0;
  out->form = "exact";
  return 1;
}

static int parse_list(lua_State *L, int idx, th_range *out) {
  lua_Integer i, n = luaL_len(L, idx);
  unsigned mask = 0;
  if (n == 0) {
    lua_pushliteral(L, "empty version list");
    return 0;
  }
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    int v;
    if (lua_geti(L, idx, i) != LUA_TSTRING) {
      lua_pushfstring(L, "list item %d is %s, expected a version name", (int)i, th_quote(L, -1));
      lua_remove(L, -2);
      lua_remove(L, -2);
      return 0;
    }
    s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len) {
      lua_pop(L, 1);
      lua_pushfstring(L, "list item %d contains a NUL byte", (int)i);
      return 0;
    }
    v = parse_version(L, s, len);
    if (v < 0) {
      lua_remove(L, -2);
      return 0;
    }
    lua_pop(L, 1);
    mask |= 1u << v;
  }
  out->form = "list";
  return set_to_range(L, mask, out);
}

int th_protocol_parse(lua_State *L, int idx, th_range *out) {
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      return parse_string(L, s, len, out);
    }
    case LUA_TTABLE:
      return parse_list(L, idx, out);
    default:
      lua_pushfstring(L, "expected a string or a list of versions, got %s", th_quote(L, idx));
      lua_remove(L, -2);
      return 0;
  }
}

const char *th_range_luasec(const th_range *r, const char **no_options, int *n) {
  int i;
  *n = 0;
  if (r->lo == r->hi && !r->open_hi && th_versions[r->lo].wire >= TLS1_VERSION)
    return th_versions[r->lo].name;
  /* every version the range leaves out, SSLv2 (no_sslv2) included */
  for (i = 0; i < TH_NVERSIONS; i++) {
    int below = !r->open_lo && i < r->lo;
    int above = !r->open_hi && i > r->hi;
    if (below || above) no_options[(*n)++] = th_versions[i].no_option;
  }
  return "sslv23";
}

/* The LuaSec 1.x protocol value and no_* options that give exactly r. */
static void push_luasec(lua_State *L, const th_range *r) {
  const char *opts[TH_NVERSIONS];
  int i, n;
  const char *protocol = th_range_luasec(r, opts, &n);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, protocol);
  lua_setfield(L, -2, "protocol");
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lua_pushstring(L, opts[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "options");
}

static void push_range(lua_State *L, const th_range *r) {
  int i, n = 0, u = 0;
  lua_pushstring(L, r->form);
  lua_setfield(L, -2, "form");
  lua_pushstring(L, th_versions[r->lo].name);
  lua_setfield(L, -2, "min");
  lua_pushinteger(L, th_versions[r->lo].wire);
  lua_setfield(L, -2, "min_version");
  if (r->open_hi) {
    lua_pushinteger(L, 0);
  } else {
    lua_pushstring(L, th_versions[r->hi].name);
    lua_setfield(L, -2, "max");
    lua_pushinteger(L, th_versions[r->hi].wire);
  }
  lua_setfield(L, -2, "max_version");
  lua_newtable(L);  /* versions */
  lua_newtable(L);  /* unavailable */
  for (i = r->lo; i <= r->hi; i++) {
    lua_pushstring(L, th_versions[i].name);
    lua_rawseti(L, -3, ++n);
    if (!version_compiled(i)) {
      lua_pushstring(L, th_versions[i].name);
      lua_rawseti(L, -2, ++u);
    }
  }
  lua_setfield(L, -3, "unavailable");
  lua_setfield(L, -2, "versions");
  push_luasec(L, r);
  lua_setfield(L, -2, "luasec");
}

/* opts.floor: a version name, or false for no floor. Returns the index. */
static int read_floor(th_opts *o) {
  lua_State *L = o->L;
  int t = th_opt_get(o, "floor"), v = th_version_index(TLS1_2_VERSION);
  if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    v = -1;
  } else if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    v = strlen(s) == len ? parse_version(L, s, len) : -1;
    if (v < 0)
      th_opt_error(o, "floor", "expected a version name such as \"tlsv1_2\", or false,"
                   " got %s", th_quote(L, -2));
  } else if (t != LUA_TNIL) {
    th_opt_error(o, "floor", "expected a version name or false, got %s", th_quote(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

static void push_below_floor(lua_State *L, const th_range *r, int floor) {
  luaL_Buffer b;
  int i;
  luaL_buffinit(L, &b);
  for (i = r->lo; i < floor && i <= r->hi; i++) {
    if (i > r->lo) luaL_addstring(&b, ", ");
    luaL_addstring(&b, th_versions[i].label);
  }
  luaL_pushresult(&b);
}

/* tlsharden.protocol(spec [, opts]) */

/* Raise "bad argument #1 'spec' 'x': why" (the spec quoted in what names
 * the argument, so that the reason says only what is wrong). */
static int spec_error(lua_State *L, const char *quoted, const char *why) {
  char what[TH_WHAT_MAX];
  snprintf(what, sizeof what, "bad argument #1 'spec' %s: ", quoted);
  return th_argument_error(L, "protocol", 1, what, "%s (" VALID_FORMS ")", why);
}

int th_protocol(lua_State *L) {
  static const char *const known[] = {"floor", "allow_insecure", NULL};
  th_range r;
  th_opts o;
  int floor, allow;
  if (lua_isnone(L, 1)) th_arg_error(L, "protocol", 1, "spec", "expected a value");
  lua_settop(L, 2);
  th_opts_open(L, &o, 2, "protocol", "opts", "option", known);
  floor = read_floor(&o);
  allow = th_opt_bool(&o, "allow_insecure", 0);
  if (!th_protocol_parse(L, 1, &r)) {
    const char *why = lua_tostring(L, -1);
    if (lua_type(L, 1) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, 1, &len);
      return spec_error(L, th_quote_lstring(L, s, len), why);
    }
    return th_arg_error(L, "protocol", 1, "spec", "%s (" VALID_FORMS ")", why);
  }
  lua_createtable(L, 0, 12);
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "spec");
  }
  push_range(L, &r);
  if (floor >= 0) {
    lua_pushstring(L, th_versions[floor].name);
    lua_setfield(L, -2, "floor");
  }
  lua_pushboolean(L, floor >= 0 && r.lo < floor);
  lua_setfield(L, -2, "insecure");
  if (floor >= 0 && r.lo < floor) {
    push_below_floor(L, &r, floor);
    if (!allow) {
      if (lua_type(L, 1) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 1, &len);
        th_quote_lstring(L, s, len);
      } else {
        lua_pushliteral(L, "(list)");
      }
      return th_raise(L, "refused", "protocol", "spec %s enables %s, below the floor %s; set"
                      " opts.allow_insecure = true to accept it",
                      lua_tostring(L, -1), lua_tostring(L, -2), th_versions[floor].label);
    }
    lua_pushfstring(L, "insecure protocol range: enables %s, below the floor %s",
                    lua_tostring(L, -1), th_versions[floor].label);
    lua_setfield(L, -3, "warning");
    lua_pop(L, 1);
  }
  return 1;
}
