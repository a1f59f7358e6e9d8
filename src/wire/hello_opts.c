/* The options of the ClientHello writer (hello.c): read, checked and
 * completed with the defaults of a current client before a byte is
 * written. Raises for bad or contradicting options and allocates nothing
 * of its own. */
#include <stddef.h>
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
  "extended_master_secret", "alpn", "random", "session_id", "extensions", "heartbeat", "grease",
  NULL
};

/* ---- reading the options (may raise; allocates nothing of its own) ----
 * Every option is read through the one option reader (args.c), so that a
 * table of options or a list with metamethods is read as everywhere else. */

typedef struct reading {
  th_opts opts;
  int keep;   /* stack slot: nil, or a table keeping copied lists alive */
  int nkeep;
} reading;

static int bad_option(reading *rd, const char *opt, const char *want, int idx) {
  return th_opt_error(&rd->opts, opt, "expected %s, got %s", want, th_quote(rd->opts.L, idx));
}

static int bad_item(reading *rd, const char *opt, int i, const char *want, int idx) {
  return th_opt_error(&rd->opts, opt, "item #%d: expected %s, got %s", i, want,
                      th_quote(rd->opts.L, idx));
}

/* Push the list option opt as a plain sequence and return its length, or
 * return -1 (nothing pushed) when it is absent. A plain table must be a
 * sequence without holes or other keys; a table with a metatable is read
 * through __len and __index, as # and t[i] read it, into a copy kept alive
 * for the rest of the call. At most max items. */
static int list_open(reading *rd, const char *opt, int max) {
  lua_State *L = rd->opts.L;
  lua_Integer n, i;
  int t = th_opt_get(&rd->opts, opt), list = lua_gettop(L);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return -1;
  }
  if (t != LUA_TTABLE) return bad_option(rd, opt, "a list", list);
  if (!lua_getmetatable(L, list)) {
    lua_Integer count = 0;
    n = (lua_Integer)lua_rawlen(L, list);
    lua_pushnil(L);
    while (lua_next(L, list)) {
      count++;
      lua_pop(L, 1);
    }
    if (count != n) n = -1;
  } else {
    lua_pop(L, 1);
    n = luaL_len(L, list);
  }
  if (n < 0)
    return th_opt_error(&rd->opts, opt, "expected a list (a sequence without holes or other"
                        " keys)");
  if (n > max)
    return th_opt_error(&rd->opts, opt, "at most %d items, got %d", max,
                        n > 0x7fffffff ? 0x7fffffff : (int)n);
  if (lua_getmetatable(L, list)) {
    lua_pop(L, 1);
    lua_createtable(L, (int)n, 0);
    for (i = 1; i <= n; i++) {
      lua_geti(L, list, i);
      lua_rawseti(L, -2, (int)i);
    }
    if (lua_isnil(L, rd->keep)) {
      lua_newtable(L);
      lua_replace(L, rd->keep);
    }
    lua_pushvalue(L, -1);
    lua_rawseti(L, rd->keep, ++rd->nkeep);
    lua_replace(L, list);
  }
  return (int)n;
}

/* A version name (TH_V_*): any version, SSLv2 too, since a scanner's hello
 * may ask for what no OpenSSL context can speak. */
static int read_version(reading *rd, int idx, const char *opt, int item) {
  lua_State *L = rd->opts.L;
  luaL_Buffer b;
  int i;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    for (i = 0; i < TH_NVERSIONS; i++)
      if (strlen(th_versions[i].name) == n && memcmp(th_versions[i].name, s, n) == 0) return i;
  }
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "one of ");
  for (i = 0; i < TH_NVERSIONS; i++) {
    if (i > 0) luaL_addstring(&b, ", ");
    luaL_addstring(&b, th_versions[i].name);
  }
  luaL_pushresult(&b);
  if (item > 0) return bad_item(rd, opt, item, lua_tostring(L, -1), idx);
  return bad_option(rd, opt, lua_tostring(L, -1), idx);
}

/* "a version from sslv3 to tlsv1_3" (pushed): what a TLS record can name. */
static const char *tls_versions(lua_State *L) {
  return lua_pushfstring(L, "a version from %s to %s", th_versions[TH_V_SSL3].name,
                         th_versions[TH_V_TLS13].name);
}

/* An integer code from 0 to max, or a name from table (may be NULL). */
static unsigned read_code(reading *rd, int idx, const char *opt, int item, unsigned max,
                          const named_code *table, const char *want) {
  lua_State *L = rd->opts.L;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer v;
    if (th_integer(L, idx, &v) && v >= 0 && v <= (lua_Integer)max) return (unsigned)v;
  } else if (lua_type(L, idx) == LUA_TSTRING && table) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    for (; table->name; table++)
      if (strlen(table->name) == n && memcmp(table->name, s, n) == 0) return table->code;
  }
  return (unsigned)bad_item(rd, opt, item, want, idx);
}

static unsigned read_group(reading *rd, int idx, const char *opt, int item) {
  lua_State *L = rd->opts.L;
  const th_group *g;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if ((g = th_group_named(s, n)) != NULL) return g->id;
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    return read_code(rd, idx, opt, item, 0xFFFF, NULL,
                     "a group name or an integer from 0 to 0xFFFF");
  }
  return (unsigned)bad_item(rd, opt, item, "a group name (see tlsharden.wire.groups()) or an"
                            " integer from 0 to 0xFFFF", idx);
}

/* ---- the list options: one row each, read by read_lists ---- */

/* Item i of list opt, on top of the stack, into o. */
typedef void (*item_reader)(reading *rd, hello_opts *o, const char *opt, int i);

static void suite_item(reading *rd, hello_opts *o, const char *opt, int i) {
  int sslv2 = o->version == TH_V_SSL2;
  o->suites[i - 1] = read_code(rd, -1, opt, i, sslv2 ? 0xFFFFFF : 0xFFFF, NULL, sslv2 ?
                               "a suite id from 0 to 0xFFFFFF" : "a suite id from 0 to 0xFFFF");
}

static void compression_item(reading *rd, hello_opts *o, const char *opt, int i) {
  o->compression[i - 1] = (unsigned char)read_code(rd, -1, opt, i, 255, compressions,
      "null, deflate, lzs or an integer from 0 to 255");
}

static void group_item(reading *rd, hello_opts *o, const char *opt, int i) {
  o->groups[i - 1] = (uint16_t)read_group(rd, -1, opt, i);
}

static void point_format_item(reading *rd, hello_opts *o, const char *opt, int i) {
  o->point_formats[i - 1] = (unsigned char)read_code(rd, -1, opt, i, 255, point_formats,
      "uncompressed, ansiX962_compressed_prime, ansiX962_compressed_char2 or an integer"
      " from 0 to 255");
}

static void sigalg_item(reading *rd, hello_opts *o, const char *opt, int i) {
  o->sigalgs[i - 1] = (uint16_t)read_code(rd, -1, opt, i, 0xFFFF, sigalgs,
      "a signature scheme name (rsa_pss_rsae_sha256, ...) or an integer from 0 to 0xFFFF");
}

static void version_item(reading *rd, hello_opts *o, const char *opt, int i) {
  lua_State *L = rd->opts.L;
  int item = lua_gettop(L), v = read_version(rd, item, opt, i);
  if (v == TH_V_SSL2) bad_item(rd, opt, i, tls_versions(L), item);
  o->versions[i - 1] = (uint16_t)th_versions[v].wire;
}

static void key_share_item(reading *rd, hello_opts *o, const char *opt, int i) {
  const th_group *g = th_group_find(read_group(rd, -1, opt, i));
  if (!g || !g->alg)
    bad_item(rd, opt, i, "a group OpenSSL can make a key for (x25519, x448, secp256r1,"
             " secp384r1, secp521r1, ffdhe2048, ...)", -1);
  o->key_shares[i - 1] = (uint16_t)g->id;
}

static void alpn_item(reading *rd, hello_opts *o, const char *opt, int i) {
  lua_State *L = rd->opts.L;
  if (lua_type(L, -1) != LUA_TSTRING) bad_item(rd, opt, i, "a string", -1);
  o->alpn[i - 1] = lua_tolstring(L, -1, &o->alpn_len[i - 1]);  /* alive in the list */
  if (o->alpn_len[i - 1] < 1 || o->alpn_len[i - 1] > 255)
    bad_item(rd, opt, i, "a protocol name of 1 to 255 bytes", -1);
}

typedef struct list_option {
  const char *name;
  size_t count;          /* offsetof(hello_opts, the number of items) */
  int max;
  const char *if_empty;  /* the message when an empty list is refused; NULL: allowed */
  int extension;         /* the option asks for an extension */
  item_reader item;
} list_option;

#define COUNT(f) offsetof(hello_opts, f)

/* In the order they are read (the first bad one is reported). */
static const list_option list_options[] = {
  {"suites", COUNT(nsuites), MAX_SUITES, NULL, 0, suite_item},
  {"compression", COUNT(ncompression), MAX_SMALL, "a hello needs at least one method", 0,
   compression_item},
  {"groups", COUNT(ngroups), MAX_LIST, NULL, 1, group_item},
  {"ec_point_formats", COUNT(npoint_formats), MAX_SMALL, NULL, 1, point_format_item},
  {"signature_algorithms", COUNT(nsigalgs), MAX_LIST, NULL, 1, sigalg_item},
  {"supported_versions", COUNT(nversions), MAX_SMALL, NULL, 1, version_item},
  {"key_shares", COUNT(nkey_shares), MAX_SMALL, NULL, 1, key_share_item},
  {"alpn", COUNT(nalpn), MAX_SMALL, "expected at least one protocol name", 1, alpn_item},
  {NULL, 0, 0, NULL, 0, NULL}
};

static void read_lists(reading *rd, hello_opts *o) {
  lua_State *L = rd->opts.L;
  const list_option *lo;
  for (lo = list_options; lo->name; lo++) {
    int i, n = list_open(rd, lo->name, lo->max);
    if (n < 0) continue;
    if (n == 0 && lo->if_empty) th_opt_error(&rd->opts, lo->name, "%s", lo->if_empty);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      lo->item(rd, o, lo->name, i);
      lua_pop(L, 1);
    }
    *(int *)(void *)((char *)o + lo->count) = n;
    if (lo->extension) o->any_extension_option = 1;
    lua_pop(L, 1);
  }
}

/* A byte string option of min..max bytes; returns 0 when absent. */
static int read_bytes(reading *rd, const char *name, size_t min, size_t max, const char **out,
                      size_t *len) {
  lua_State *L = rd->opts.L;
  int t = th_opt_get(&rd->opts, name);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TSTRING) return bad_option(rd, name, "a string", -1);
  *out = lua_tolstring(L, -1, len);
  if (*len < min || *len > max) {
    if (min == max)
      return th_opt_error(&rd->opts, name, "expected %d bytes, got %d", (int)min, (int)*len);
    return th_opt_error(&rd->opts, name, "expected %d to %d bytes, got %d", (int)min, (int)max,
                        (int)*len);
  }
  lua_pop(L, 1);  /* the string stays alive in the opts table (or the reader's anchor) */
  return 1;
}

static void read_record_version(reading *rd, hello_opts *o) {
  lua_State *L = rd->opts.L;
  int t = th_opt_get(&rd->opts, "record_version"), value = lua_gettop(L);
  if (t == LUA_TSTRING) {
    int v = read_version(rd, value, "record_version", 0);
    if (v == TH_V_SSL2) {
      const char *want = lua_pushfstring(L, "%s or an integer from 0 to 0xFFFF", tls_versions(L));
      bad_option(rd, "record_version", want, value);
    }
    o->record_version = th_versions[v].wire;
  } else if (t != LUA_TNIL) {
    lua_Integer n;
    if (!th_integer(L, value, &n) || n < 0 || n > 0xFFFF)
      bad_option(rd, "record_version", "a version name or an integer from 0 to 0xFFFF", value);
    o->record_version = (int)n;
  }
  lua_settop(L, value - 1);
}

static void read_opts(lua_State *L, int opts, hello_opts *o, reading *rd) {
  o->version = TH_V_TLS13;
  o->record_version = -1;
  o->nsuites = o->ncompression = o->ngroups = o->npoint_formats = -1;
  o->nsigalgs = o->nversions = o->nkey_shares = o->nalpn = -1;
  o->reneg_scsv = o->fallback_scsv = -1;
  o->session_ticket = o->reneg_info = o->ems = o->extensions = -1;
  o->heartbeat = o->grease = 0;
  o->sni = o->random = o->session_id = o->ticket = NULL;
  o->sni_len = o->random_len = o->ticket_len = 0;
  o->session_id_len = (size_t)-1;  /* not given */
  o->any_extension_option = 0;
  th_opts_open(L, &rd->opts, opts, FN, "opts", "option", known_options);
  lua_pushnil(L);
  rd->keep = lua_gettop(L);
  rd->nkeep = 0;
  if (!rd->opts.idx) return;
  if (th_opt_get(&rd->opts, "version") != LUA_TNIL) o->version = read_version(rd, -1, "version", 0);
  lua_pop(L, 1);
  read_record_version(rd, o);
  read_lists(rd, o);
  o->reneg_scsv = th_opt_bool(&rd->opts, "renegotiation_scsv", -1);
  o->fallback_scsv = th_opt_bool(&rd->opts, "fallback_scsv", -1);
  /* session_ticket: a boolean, or the bytes of a ticket to resume with */
  switch (th_opt_get(&rd->opts, "session_ticket")) {
    case LUA_TSTRING:
      lua_pop(L, 1);
      read_bytes(rd, "session_ticket", 1, MAX_TICKET, &o->ticket, &o->ticket_len);
      o->session_ticket = 1;
      break;
    case LUA_TNIL: case LUA_TBOOLEAN:
      lua_pop(L, 1);
      o->session_ticket = th_opt_bool(&rd->opts, "session_ticket", -1);
      break;
    default:
      bad_option(rd, "session_ticket", "a boolean or the bytes of a ticket", -1);
  }
  o->reneg_info = th_opt_bool(&rd->opts, "renegotiation_info", -1);
  o->ems = th_opt_bool(&rd->opts, "extended_master_secret", -1);
  o->heartbeat = th_opt_bool(&rd->opts, "heartbeat", 0);
  o->grease = th_opt_bool(&rd->opts, "grease", 0);
  if (o->heartbeat || o->grease) o->any_extension_option = 1;
  o->extensions = th_opt_bool(&rd->opts, "extensions", -1);
  if (o->session_ticket == 1 || o->reneg_info == 1 || o->ems == 1) o->any_extension_option = 1;
  if (read_bytes(rd, "server_name", 1, 255, &o->sni, &o->sni_len)) {
    size_t i;
    for (i = 0; i < o->sni_len; i++) {
      unsigned char c = (unsigned char)o->sni[i];
      if (c <= 0x20 || c >= 0x7F) {
        th_opt_get(&rd->opts, "server_name");
        bad_option(rd, "server_name", "a host name (printable ASCII without spaces)", -1);
      }
    }
    o->any_extension_option = 1;
  }
  if (o->version == TH_V_SSL2) read_bytes(rd, "random", 16, 32, &o->random, &o->random_len);
  else read_bytes(rd, "random", 32, 32, &o->random, &o->random_len);
  if (read_bytes(rd, "session_id", 0, o->version == TH_V_SSL2 ? 16 : 32, &o->session_id,
                 &o->session_id_len) &&
      o->version == TH_V_SSL2 && o->session_id_len != 0 && o->session_id_len != 16)
    th_opt_error(&rd->opts, "session_id", "an SSLv2 session id has 0 or 16 bytes, got %d",
                 (int)o->session_id_len);
}

/* Refuse what an SSLv2 CLIENT-HELLO cannot carry, instead of dropping it. */
static void check_sslv2(reading *rd) {
  static const char *const tls_only[] = {
    "record_version", "renegotiation_scsv", "fallback_scsv", "compression", "server_name",
    "groups", "ec_point_formats", "signature_algorithms", "supported_versions", "key_shares",
    "session_ticket", "renegotiation_info", "extended_master_secret", "alpn", "extensions",
    "heartbeat", "grease",
    NULL
  };
  int i;
  if (!rd->opts.idx) return;
  for (i = 0; tls_only[i]; i++) {
    if (th_opt_get(&rd->opts, tls_only[i]) != LUA_TNIL)
      th_opt_error(&rd->opts, tls_only[i], "an SSLv2 CLIENT-HELLO cannot carry it");
    lua_pop(rd->opts.L, 1);
  }
}

static int has_group(const hello_opts *o, unsigned id) {
  int i;
  for (i = 0; i < o->ngroups; i++)
    if (o->groups[i] == id) return 1;
  return 0;
}

/* Fill in the defaults that depend on what else is offered; refuse
 * combinations that contradict each other. */
static void resolve(reading *rd, hello_opts *o) {
  int i, tls13 = 0, old = 0;
  if (o->version == TH_V_SSL2) {
    check_sslv2(rd);
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
    th_opt_error(&rd->opts, "extensions", "false, but an extension was asked for");
  if (!o->extensions && o->nversions > 0)
    th_opt_error(&rd->opts, "extensions", "false, but TLS 1.3 needs the supported_versions"
                 " extension");
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
        th_opt_error(&rd->opts, "key_shares", "item #%d: group %s is not in 'groups'",
                     i + 1, th_group_find(o->key_shares[i])->name);
    if (o->nalpn < 0) o->nalpn = 0;
    if (o->session_ticket < 0) o->session_ticket = old && o->version >= TH_V_TLS1;
    if (o->ems < 0) o->ems = old && o->version >= TH_V_TLS1;
    if (o->reneg_info < 0) o->reneg_info = 0;
  }
  if (o->session_id_len == (size_t)-1) o->session_id_len = tls13 ? 32 : 0;
}

void th_hello_options(lua_State *L, int opts, hello_opts *o) {
  reading rd;
  read_opts(L, opts, o, &rd);
  resolve(&rd, o);
}
