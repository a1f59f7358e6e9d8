/* The options of the ClientHello writer (hello.c): read, checked and
 * completed with the defaults of a current client before a byte is
 * written. Raises for bad or contradicting options and allocates nothing
 * of its own. */
#include <string.h>

#include "wire/hello.h"

/* TLS SignatureScheme names (RFC 8446 4.2.3), and the TLS 1.2
 * hash/signature pairs that have no scheme name of their own. */
typedef struct named_code { const char *name; unsigned code; } named_code;
static const named_code sigalgs[] = {
  {"rsa_pkcs1_md5", 0x0101}, {"rsa_pkcs1_sha1", 0x0201}, {"dsa_sha1", 0x0202},
  {"ecdsa_sha1", 0x0203}, {"rsa_pkcs1_sha224", 0x0301}, {"dsa_sha224", 0x0302},
  {"ecdsa_sha224", 0x0303}, {"rsa_pkcs1_sha256", 0x0401}, {"dsa_sha256", 0x0402},
  {"ecdsa_secp256r1_sha256", 0x0403}, {"rsa_pkcs1_sha384", 0x0501}, {"dsa_sha384", 0x0502},
  {"ecdsa_secp384r1_sha384", 0x0503}, {"rsa_pkcs1_sha512", 0x0601}, {"dsa_sha512", 0x0602},
  {"ecdsa_secp521r1_sha512", 0x0603}, {"sm2sig_sm3", 0x0708},
  {"rsa_pss_rsae_sha256", 0x0804}, {"rsa_pss_rsae_sha384", 0x0805},
  {"rsa_pss_rsae_sha512", 0x0806}, {"ed25519", 0x0807}, {"ed448", 0x0808},
  {"rsa_pss_pss_sha256", 0x0809}, {"rsa_pss_pss_sha384", 0x080A},
  {"rsa_pss_pss_sha512", 0x080B}, {"ecdsa_brainpoolP256r1tls13_sha256", 0x081A},
  {"ecdsa_brainpoolP384r1tls13_sha384", 0x081B},
  {"ecdsa_brainpoolP512r1tls13_sha512", 0x081C},
  {NULL, 0}
};

static const named_code compressions[] = {
  {"null", 0}, {"deflate", 1}, {"lzs", 64}, {NULL, 0}
};

static const named_code point_formats[] = {
  {"uncompressed", 0}, {"ansiX962_compressed_prime", 1}, {"ansiX962_compressed_char2", 2},
  {NULL, 0}
};

/* The defaults of a current client: OpenSSL 3.0's order of suites, groups
 * and signature schemes (SHA-1 last, so that old servers can answer). */
static const uint32_t default_suites[] = {
  0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0x009F, 0xCCA9, 0xCCA8, 0xCCAA, 0xC02B,
  0xC02F, 0x009E, 0xC024, 0xC028, 0x006B, 0xC023, 0xC027, 0x0067, 0xC00A, 0xC014,
  0x0039, 0xC009, 0xC013, 0x0033, 0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F
};
static const uint16_t default_groups[] = {29, 23, 30, 25, 24, 256, 257, 258, 259, 260};
static const uint16_t default_sigalgs[] = {
  0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080A, 0x080B, 0x0804, 0x0805,
  0x0806, 0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
  0x0203, 0x0201, 0x0202
};

static const char *const known_options[] = {
  "version", "record_version", "suites", "renegotiation_scsv", "fallback_scsv",
  "compression", "server_name", "groups", "ec_point_formats", "signature_algorithms",
  "supported_versions", "key_shares", "session_ticket", "renegotiation_info",
  "extended_master_secret", "alpn", "random", "session_id", "extensions", NULL
};

/* ---- reading the options (may raise; allocates nothing of its own) ---- */

#define show th_quote

static int bad_option(lua_State *L, const char *opt, const char *want, int idx) {
  idx = lua_absindex(L, idx);
  return th_error(L, FN, "bad option '%s': expected %s, got %s", opt, want, show(L, idx));
}

static int bad_item(lua_State *L, const char *opt, int i, const char *want, int idx) {
  idx = lua_absindex(L, idx);
  return th_error(L, FN, "bad option '%s': item #%d: expected %s, got %s", opt, i, want,
                  show(L, idx));
}

/* Push opts[name] (raw); returns 0 and pushes nothing when it is nil. */
static int get_opt(lua_State *L, int opts, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, opts);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* The length of the list at the top, refusing holes, other keys and more
 * than max items. */
static int list_len(lua_State *L, const char *opt, int max) {
  int n, count = 0;
  if (!lua_istable(L, -1)) return bad_option(L, opt, "a list", -1);
  n = (int)lua_rawlen(L, -1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    count++;
    lua_pop(L, 1);
  }
  if (count != n)
    return th_error(L, FN, "bad option '%s': expected a list (a sequence without holes"
                    " or other keys)", opt);
  if (n > max)
    return th_error(L, FN, "bad option '%s': at most %d items, got %d", opt, max, n);
  return n;
}

static int read_bool(lua_State *L, int opts, const char *name) {
  int v;
  if (!get_opt(L, opts, name)) return -1;
  if (!lua_isboolean(L, -1)) return bad_option(L, name, "a boolean", -1);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A version name (TH_V_*); any version, SSLv2 too, since a scanner's
 * hello may ask for what no OpenSSL context can. */
static int read_version(lua_State *L, int idx, const char *opt, int item) {
  luaL_Buffer b;
  int i;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    for (i = 0; i < TH_NVERSIONS; i++)
      if (strlen(th_versions[i].name) == n && memcmp(th_versions[i].name, s, n) == 0) return i;
  }
  idx = lua_absindex(L, idx);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "one of ");
  for (i = 0; i < TH_NVERSIONS; i++) {
    if (i > 0) luaL_addstring(&b, ", ");
    luaL_addstring(&b, th_versions[i].name);
  }
  luaL_pushresult(&b);
  if (item > 0) return bad_item(L, opt, item, lua_tostring(L, -1), idx);
  return bad_option(L, opt, lua_tostring(L, -1), idx);
}

/* An integer code from 0 to max, or a name from table (may be NULL). */
static unsigned read_code(lua_State *L, int idx, const char *opt, int item, unsigned max,
                          const named_code *table, const char *want) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer v;
    if (th_integer(L, idx, &v) && v >= 0 && v <= (lua_Integer)max) return (unsigned)v;
  } else if (lua_type(L, idx) == LUA_TSTRING && table) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    for (; table->name; table++)
      if (strlen(table->name) == n && memcmp(table->name, s, n) == 0) return table->code;
  }
  return (unsigned)bad_item(L, opt, item, want, idx);
}

static unsigned read_group(lua_State *L, int idx, const char *opt, int item) {
  const th_group *g;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if ((g = th_group_named(s, n)) != NULL) return g->id;
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    return read_code(L, idx, opt, item, 0xFFFF, NULL, "a group name or an integer from 0 to 0xFFFF");
  }
  return (unsigned)bad_item(L, opt, item, "a group name (see tlsharden.groups()) or an"
                            " integer from 0 to 0xFFFF", idx);
}

/* A byte string option of min..max bytes; returns 0 when absent. */
static int read_bytes(lua_State *L, int opts, const char *name, size_t min, size_t max,
                      const char **out, size_t *len) {
  if (!get_opt(L, opts, name)) return 0;
  if (lua_type(L, -1) != LUA_TSTRING) return bad_option(L, name, "a string", -1);
  *out = lua_tolstring(L, -1, len);
  if (*len < min || *len > max) {
    if (min == max)
      return th_error(L, FN, "bad option '%s': expected %d bytes, got %d", name, (int)min,
                      (int)*len);
    return th_error(L, FN, "bad option '%s': expected %d to %d bytes, got %d", name, (int)min,
                    (int)max, (int)*len);
  }
  lua_pop(L, 1);  /* the string stays alive in the opts table */
  return 1;
}

static void read_lists(lua_State *L, int opts, hello_opts *o) {
  int i, n;
  if (get_opt(L, opts, "suites")) {
    n = list_len(L, "suites", MAX_SUITES);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      o->suites[i - 1] = read_code(L, -1, "suites", i, o->version == TH_V_SSL2 ? 0xFFFFFF : 0xFFFF,
                                   NULL, o->version == TH_V_SSL2 ?
                                   "a suite id from 0 to 0xFFFFFF" : "a suite id from 0 to 0xFFFF");
      lua_pop(L, 1);
    }
    o->nsuites = n;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "compression")) {
    n = list_len(L, "compression", MAX_SMALL);
    if (n == 0) th_error(L, FN, "bad option 'compression': a hello needs at least one method");
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      o->compression[i - 1] = (unsigned char)read_code(L, -1, "compression", i, 255,
          compressions, "null, deflate, lzs or an integer from 0 to 255");
      lua_pop(L, 1);
    }
    o->ncompression = n;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "groups")) {
    n = list_len(L, "groups", MAX_LIST);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      o->groups[i - 1] = (uint16_t)read_group(L, -1, "groups", i);
      lua_pop(L, 1);
    }
    o->ngroups = n;
    o->any_extension_option = 1;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "ec_point_formats")) {
    n = list_len(L, "ec_point_formats", MAX_SMALL);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      o->point_formats[i - 1] = (unsigned char)read_code(L, -1, "ec_point_formats", i, 255,
          point_formats, "uncompressed, ansiX962_compressed_prime, ansiX962_compressed_char2"
          " or an integer from 0 to 255");
      lua_pop(L, 1);
    }
    o->npoint_formats = n;
    o->any_extension_option = 1;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "signature_algorithms")) {
    n = list_len(L, "signature_algorithms", MAX_LIST);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      o->sigalgs[i - 1] = (uint16_t)read_code(L, -1, "signature_algorithms", i, 0xFFFF, sigalgs,
          "a signature scheme name (rsa_pss_rsae_sha256, ...) or an integer from 0 to 0xFFFF");
      lua_pop(L, 1);
    }
    o->nsigalgs = n;
    o->any_extension_option = 1;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "supported_versions")) {
    n = list_len(L, "supported_versions", MAX_SMALL);
    for (i = 1; i <= n; i++) {
      int v;
      lua_rawgeti(L, -1, i);
      v = read_version(L, -1, "supported_versions", i);
      if (v == TH_V_SSL2)
        bad_item(L, "supported_versions", i, "a version from sslv3 to tlsv1_3", -1);
      o->versions[i - 1] = (uint16_t)th_versions[v].wire;
      lua_pop(L, 1);
    }
    o->nversions = n;
    o->any_extension_option = 1;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "key_shares")) {
    n = list_len(L, "key_shares", MAX_SMALL);
    for (i = 1; i <= n; i++) {
      const th_group *g;
      lua_rawgeti(L, -1, i);
      g = th_group_find(read_group(L, -1, "key_shares", i));
      if (!g || !g->alg)
        bad_item(L, "key_shares", i, "a group OpenSSL can make a key for (x25519, x448,"
                 " secp256r1, secp384r1, secp521r1, ffdhe2048, ...)", -1);
      o->key_shares[i - 1] = (uint16_t)g->id;
      lua_pop(L, 1);
    }
    o->nkey_shares = n;
    o->any_extension_option = 1;
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "alpn")) {
    n = list_len(L, "alpn", MAX_SMALL);
    if (n == 0) th_error(L, FN, "bad option 'alpn': expected at least one protocol name");
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING) bad_item(L, "alpn", i, "a string", -1);
      o->alpn[i - 1] = lua_tolstring(L, -1, &o->alpn_len[i - 1]);
      if (o->alpn_len[i - 1] < 1 || o->alpn_len[i - 1] > 255)
        bad_item(L, "alpn", i, "a protocol name of 1 to 255 bytes", -1);
      lua_pop(L, 1);  /* alive in the list */
    }
    o->nalpn = n;
    o->any_extension_option = 1;
    lua_pop(L, 1);
  }
}

static void read_opts(lua_State *L, int opts, hello_opts *o) {
  th_opts checked;
  int v;
  o->version = TH_V_TLS13;
  o->record_version = -1;
  o->nsuites = o->ncompression = o->ngroups = o->npoint_formats = -1;
  o->nsigalgs = o->nversions = o->nkey_shares = o->nalpn = -1;
  o->reneg_scsv = o->fallback_scsv = -1;
  o->session_ticket = o->reneg_info = o->ems = o->extensions = -1;
  o->sni = o->random = o->session_id = NULL;
  o->sni_len = o->random_len = 0;
  o->session_id_len = (size_t)-1;  /* not given */
  o->any_extension_option = 0;
  th_opts_open(L, &checked, opts, FN, "opts", "option", known_options);
  if (!checked.idx) return;
  if (get_opt(L, opts, "version")) {
    o->version = read_version(L, -1, "version", 0);
    lua_pop(L, 1);
  }
  if (get_opt(L, opts, "record_version")) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      v = read_version(L, -1, "record_version", 0);
      if (v == TH_V_SSL2) bad_option(L, "record_version", "a version from sslv3 to tlsv1_3"
                                      " or an integer from 0 to 0xFFFF", -1);
      o->record_version = th_versions[v].wire;
    } else {
      lua_Integer n;
      if (!th_integer(L, -1, &n) || n < 0 || n > 0xFFFF)
        bad_option(L, "record_version", "a version name or an integer from 0 to 0xFFFF", -1);
      o->record_version = (int)n;
    }
    lua_pop(L, 1);
  }
  read_lists(L, opts, o);
  o->reneg_scsv = read_bool(L, opts, "renegotiation_scsv");
  o->fallback_scsv = read_bool(L, opts, "fallback_scsv");
  o->session_ticket = read_bool(L, opts, "session_ticket");
  o->reneg_info = read_bool(L, opts, "renegotiation_info");
  o->ems = read_bool(L, opts, "extended_master_secret");
  o->extensions = read_bool(L, opts, "extensions");
  if (o->session_ticket == 1 || o->reneg_info == 1 || o->ems == 1) o->any_extension_option = 1;
  if (read_bytes(L, opts, "server_name", 1, 255, &o->sni, &o->sni_len)) {
    size_t i;
    for (i = 0; i < o->sni_len; i++) {
      unsigned char c = (unsigned char)o->sni[i];
      if (c <= 0x20 || c >= 0x7F) {
        lua_pushstring(L, "server_name");
        lua_rawget(L, opts);
        bad_option(L, "server_name", "a host name (printable ASCII without spaces)", -1);
      }
    }
    o->any_extension_option = 1;
  }
  if (o->version == TH_V_SSL2) read_bytes(L, opts, "random", 16, 32, &o->random, &o->random_len);
  else read_bytes(L, opts, "random", 32, 32, &o->random, &o->random_len);
  if (read_bytes(L, opts, "session_id", 0, o->version == TH_V_SSL2 ? 16 : 32,
                 &o->session_id, &o->session_id_len) &&
      o->version == TH_V_SSL2 && o->session_id_len != 0 && o->session_id_len != 16)
    th_error(L, FN, "bad option 'session_id': an SSLv2 session id has 0 or 16 bytes, got %d",
             (int)o->session_id_len);
}

/* Refuse what an SSLv2 CLIENT-HELLO cannot carry, instead of dropping it. */
static void check_sslv2(lua_State *L, int opts, const hello_opts *o) {
  static const char *const tls_only[] = {
    "record_version", "renegotiation_scsv", "fallback_scsv", "compression", "server_name",
    "groups", "ec_point_formats", "signature_algorithms", "supported_versions", "key_shares",
    "session_ticket", "renegotiation_info", "extended_master_secret", "alpn", "extensions",
    NULL
  };
  int i;
  (void)o;
  if (lua_isnoneornil(L, opts)) return;
  for (i = 0; tls_only[i]; i++)
    if (get_opt(L, opts, tls_only[i]))
      th_error(L, FN, "bad option '%s': an SSLv2 CLIENT-HELLO cannot carry it", tls_only[i]);
}

static int has_group(const hello_opts *o, unsigned id) {
  int i;
  for (i = 0; i < o->ngroups; i++)
    if (o->groups[i] == id) return 1;
  return 0;
}

/* Fill in the defaults that depend on what else is offered; refuse
 * combinations that contradict each other. */
static void resolve(lua_State *L, int opts, hello_opts *o) {
  int i, tls13 = 0, old = 0;
  if (o->version == TH_V_SSL2) {
    check_sslv2(L, opts, o);
    if (o->nsuites < 0) {
      o->nsuites = 0;
      for (i = 0; i < th_nsuites; i++)
        if (th_suites[i].flags & TH_SUITE_SSLV2) o->suites[o->nsuites++] = th_suites[i].id;
    }
    if (o->session_id_len == (size_t)-1) o->session_id_len = 0;
    return;
  }
  if (o->nversions < 0) {
    o->nversions = 0;
    if (o->version == TH_V_TLS13) {
      o->versions[o->nversions++] = 0x0304;
      o->versions[o->nversions++] = 0x0303;
    }
  }
  for (i = 0; i < o->nversions; i++) {
    if (o->versions[i] == 0x0304) tls13 = 1;
    else old = 1;
  }
  if (o->nversions == 0) old = 1;
  if (o->extensions < 0) o->extensions = o->version >= TH_V_TLS1 || o->any_extension_option;
  if (!o->extensions && o->any_extension_option)
    th_error(L, FN, "bad option 'extensions': false, but an extension was asked for");
  if (!o->extensions && o->nversions > 0)
    th_error(L, FN, "bad option 'extensions': false, but TLS 1.3 needs the"
             " supported_versions extension");
  if (o->nsuites < 0) {
    o->nsuites = 0;
    for (i = 0; i < (int)(sizeof default_suites / sizeof default_suites[0]); i++) {
      const th_suite *s = th_suite_find(default_suites[i]);
      int ok = 0, v;
      if (!s) continue;
      if (o->nversions == 0) ok = th_suite_usable(s, o->version);
      for (v = 0; v < o->nversions; v++) ok |= th_suite_usable(s, th_version_index(o->versions[v]));
      if (ok) o->suites[o->nsuites++] = s->id;
    }
  }
  if (o->reneg_scsv < 0) o->reneg_scsv = old;
  if (o->fallback_scsv < 0) o->fallback_scsv = 0;
  if (o->ncompression < 0) {
    o->ncompression = 1;
    o->compression[0] = 0;
  }
  if (o->record_version < 0) o->record_version = o->version == TH_V_SSL3 ? 0x0300 : 0x0301;
  if (!o->extensions) {
    o->ngroups = o->npoint_formats = o->nsigalgs = o->nkey_shares = o->nalpn = 0;
    o->session_ticket = o->reneg_info = o->ems = 0;
  } else {
    if (o->ngroups < 0) {
      o->ngroups = (int)(sizeof default_groups / sizeof default_groups[0]);
      memcpy(o->groups, default_groups, sizeof default_groups);
    }
    if (o->npoint_formats < 0) {
      o->npoint_formats = o->ngroups > 0 && old ? 1 : 0;
      o->point_formats[0] = 0;
    }
    if (o->nsigalgs < 0) {
      o->nsigalgs = o->version >= TH_V_TLS12 || tls13 ?
                    (int)(sizeof default_sigalgs / sizeof default_sigalgs[0]) : 0;
      memcpy(o->sigalgs, default_sigalgs, sizeof default_sigalgs);
    }
    if (o->nkey_shares < 0) {
      o->nkey_shares = 0;
      if (tls13 && has_group(o, 29)) o->key_shares[o->nkey_shares++] = 29;
      for (i = 0; tls13 && o->nkey_shares == 0 && i < o->ngroups; i++) {
        const th_group *g = th_group_find(o->groups[i]);
        if (g && g->alg && g->tls13) o->key_shares[o->nkey_shares++] = (uint16_t)g->id;
      }
    }
    for (i = 0; i < o->nkey_shares; i++)
      if (!has_group(o, o->key_shares[i]))
        th_error(L, FN, "bad option 'key_shares': item #%d: group %s is not in 'groups'",
                 i + 1, th_group_find(o->key_shares[i])->name);
    if (o->nalpn < 0) o->nalpn = 0;
    if (o->session_ticket < 0) o->session_ticket = old && o->version >= TH_V_TLS1;
    if (o->ems < 0) o->ems = old && o->version >= TH_V_TLS1;
    if (o->reneg_info < 0) o->reneg_info = 0;
  }
  if (o->session_id_len == (size_t)-1) o->session_id_len = tls13 ? 32 : 0;
}

void th_hello_options(lua_State *L, int opts, hello_opts *o) {
  read_opts(L, opts, o);
  resolve(L, opts, o);
}
