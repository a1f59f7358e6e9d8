/* ClientHello parser: a client's first flight (the TLS records up to and
 * including its ClientHello) read into a Lua table, so that the hellos
 * recorded from real TLS stacks can be compared and replayed. Pure: bytes
 * in, Lua table out. The hello may span records; whatever the bytes are
 * (not TLS, cut short, lengths that do not add up) becomes a problem
 * record or `need` in the result, never an error. Layouts: RFC 8446
 * section 4.1.2 and the extensions of RFC 6066, 7301, 8422, 8446, 8701.
 * Extension and version names come from the flight parser's tables
 * (flight_messages.c, flight_result.c), suite and group names from the
 * registries. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/flight.h"

#define FN "wire.parse_client_hello"
#define RECORD_LIMIT (16384 + 2048)  /* RFC 5246 6.2.3: a record's largest payload */
#define MAX_EXT_TYPES 64

/* One parse: the result and its problems on the stack. */
typedef struct parse {
  lua_State *L;
  int result, problems, nproblems;
  int grease;
} parse;

static void problem(parse *p, const char *code, const char *fmt, ...) {
  lua_State *L = p->L;
  va_list ap;
  lua_createtable(L, 0, 3);
  th_set_string(L, "severity", "warning");
  th_set_string(L, "code", code);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, p->problems, ++p->nproblems);
}

/* RFC 8701: 0x0A0A, 0x1A1A, ... 0xFAFA. */
static int is_grease(unsigned v) {
  return (v & 0x0F0Fu) == 0x0A0Au && (v >> 8) == (v & 0xFFu);
}

static void note_grease(parse *p, unsigned v) {
  if (is_grease(v)) p->grease = 1;
}

/* "0x0A0A" for a code no registry names. */
static void push_hex(lua_State *L, unsigned v) {
  char hex[8];
  snprintf(hex, sizeof hex, "0x%04X", v & 0xFFFFu);
  lua_pushstring(L, hex);
}

/* A list of 2-byte codes behind a length prefix of size bytes, as field
 * name of the table on top of the stack (and, with names, the registry
 * names as field names_field). Returns 0 for a list that is cut short or
 * of an odd length. */
static int u16_list(parse *p, th_reader *r, int size, const char *name, const char *names_field,
                    int kind) {
  lua_State *L = p->L;
  size_t n, i;
  const unsigned char *b = th_read_vec(r, size, &n);
  if (!b || n % 2 != 0) return 0;
  lua_createtable(L, (int)(n / 2), 0);
  if (names_field) lua_createtable(L, (int)(n / 2), 0);
  for (i = 0; i < n / 2; i++) {
    unsigned v = ((unsigned)b[2 * i] << 8) | b[2 * i + 1];
    note_grease(p, v);
    lua_pushinteger(L, v);
    lua_rawseti(L, names_field ? -3 : -2, (int)i + 1);
    if (names_field) {
      const char *nm = NULL;
      if (kind == 's') {
        const th_suite *s = th_suite_find(v);
        if (s) nm = s->openssl ? s->openssl : s->iana;
      } else if (kind == 'g') {
        const th_group *g = th_group_find(v);
        if (g) nm = g->name;
      }
      if (nm) lua_pushstring(L, nm);
      else push_hex(L, v);
      lua_rawseti(L, -2, (int)i + 1);
    }
  }
  if (names_field) lua_setfield(L, -3, names_field);
  lua_setfield(L, -2, name);
  return 1;
}

/* A list of 1-byte codes behind a 1-byte length, as field name. */
static int u8_list(parse *p, th_reader *r, const char *name) {
  lua_State *L = p->L;
  size_t n, i;
  const unsigned char *b = th_read_vec(r, 1, &n);
  if (!b) return 0;
  lua_createtable(L, (int)n, 0);
  for (i = 0; i < n; i++) {
    lua_pushinteger(L, b[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, name);
  return 1;
}

/* The names of the versions in supported_versions that tlsharden knows. */
static void version_names(parse *p) {
  lua_State *L = p->L;
  int i, n, k = 0;
  lua_getfield(L, -1, "supported_versions");
  n = (int)lua_rawlen(L, -1);
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    const char *name;
    lua_rawgeti(L, -2, i);
    name = th_flight_version_name((unsigned)lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (name) {
      lua_pushstring(L, name);
      lua_rawseti(L, -2, ++k);
    }
  }
  lua_setfield(L, -3, "protocols");
  lua_pop(L, 1);
}

static int server_name(parse *p, th_reader *d) {
  lua_State *L = p->L;
  size_t total, n;
  const unsigned char *list = th_read_vec(d, 2, &total);
  th_reader r;
  if (!list) return 0;
  th_reader_init(&r, list, total);
  while (th_reader_left(&r) > 0) {
    unsigned type = th_read_u8(&r);
    const unsigned char *name = th_read_vec(&r, 2, &n);
    if (!name) return 0;
    if (type == 0) {
      th_set_bytes(L, "server_name", name, n);
      return 1;
    }
  }
  return !r.bad;
}

static int alpn(parse *p, th_reader *d) {
  lua_State *L = p->L;
  size_t total, n;
  int k = 0;
  const unsigned char *list = th_read_vec(d, 2, &total);
  th_reader r;
  if (!list) return 0;
  th_reader_init(&r, list, total);
  lua_newtable(L);
  while (th_reader_left(&r) > 0) {
    const unsigned char *name = th_read_vec(&r, 1, &n);
    if (!name) break;
    if (n == 2 && is_grease(((unsigned)name[0] << 8) | name[1])) p->grease = 1;
    lua_pushlstring(L, (const char *)name, n);
    lua_rawseti(L, -2, ++k);
  }
  lua_setfield(L, -2, "alpn");
  return !r.bad;
}

static int key_share(parse *p, th_reader *d) {
  lua_State *L = p->L;
  size_t total, n;
  int k = 0;
  const unsigned char *list = th_read_vec(d, 2, &total);
  th_reader r;
  if (!list) return 0;
  th_reader_init(&r, list, total);
  lua_newtable(L);  /* groups */
  lua_newtable(L);  /* key lengths */
  while (th_reader_left(&r) > 0) {
    unsigned group = th_read_u16(&r);
    if (!th_read_vec(&r, 2, &n)) break;
    note_grease(p, group);
    k++;
    lua_pushinteger(L, group);
    lua_rawseti(L, -3, k);
    lua_pushinteger(L, (lua_Integer)n);
    lua_rawseti(L, -2, k);
  }
  lua_setfield(L, -3, "key_share_lengths");
  lua_setfield(L, -2, "key_share_groups");
  return !r.bad;
}

/* One extension's data into the hello table on top of the stack; 0 when
 * it does not read as its type says. */
static int extension(parse *p, unsigned type, const unsigned char *data, size_t n) {
  lua_State *L = p->L;
  th_reader d;
  int ok = 1;
  th_reader_init(&d, data, n);
  switch (type) {
    case 0:
      if (n > 0) ok = server_name(p, &d);
      break;
    case 10: ok = u16_list(p, &d, 2, "groups", "group_names", 'g'); break;
    case 11: ok = u8_list(p, &d, "ec_point_formats"); break;
    case 13: ok = u16_list(p, &d, 2, "signature_algorithms", NULL, 0); break;
    case 16: ok = alpn(p, &d); break;
    case 43:
      ok = u16_list(p, &d, 1, "supported_versions", NULL, 0);
      if (ok) version_names(p);
      break;
    case 45: ok = u8_list(p, &d, "psk_key_exchange_modes"); break;
    case 50: ok = u16_list(p, &d, 2, "signature_algorithms_cert", NULL, 0); break;
    case 51: ok = key_share(p, &d); break;
    case 28:
      th_set_int(L, "record_size_limit", th_read_u16(&d));
      ok = !d.bad;
      break;
    case 5: th_set_bool(L, "status_request", 1); return 1;
    case 22: th_set_bool(L, "encrypt_then_mac", 1); return 1;
    case 23: th_set_bool(L, "extended_master_secret", 1); return 1;
    case 35: th_set_bool(L, "session_ticket", 1); return 1;
    case 49: th_set_bool(L, "post_handshake_auth", 1); return 1;
    case 65281: th_set_bool(L, "renegotiation_info", 1); return 1;
    default: return 1;
  }
  return ok && th_reader_left(&d) == 0;
}

static void extensions(parse *p, th_reader *r) {
  lua_State *L = p->L;
  unsigned seen[MAX_EXT_TYPES];
  int nseen = 0, k = 0, i;
  size_t total;
  const unsigned char *all = th_read_vec(r, 2, &total);
  th_reader e;
  if (!all) {
    problem(p, "MALFORMED", "client_hello: the extensions block is cut short");
    return;
  }
  th_reader_init(&e, all, total);
  lua_newtable(L);
  while (th_reader_left(&e) > 0) {
    unsigned type = th_read_u16(&e);
    size_t n;
    const unsigned char *data = th_read_vec(&e, 2, &n);
    const char *name;
    if (!data) {
      problem(p, "MALFORMED", "client_hello: extension %d is cut short", (int)type);
      break;
    }
    for (i = 0; i < nseen; i++)
      if (seen[i] == type) problem(p, "MALFORMED", "client_hello: extension %d appears twice", (int)type);
    if (nseen < MAX_EXT_TYPES) seen[nseen++] = type;
    note_grease(p, type);
    name = th_flight_extension_name(type);
    lua_createtable(L, 0, 3);
    th_set_int(L, "type", type);
    if (name) th_set_string(L, "name", name);
    else if (is_grease(type)) th_set_string(L, "name", "grease");
    th_set_int(L, "length", (lua_Integer)n);
    lua_rawseti(L, -2, ++k);
    lua_pushvalue(L, p->result);
    if (!extension(p, type, data, n))
      problem(p, "MALFORMED", "client_hello: extension %d (%s) does not read as its type says", (int)type,
              name ? name : "unknown");
    lua_pop(L, 1);
  }
  lua_setfield(L, p->result, "extensions");
  if (th_reader_left(r) > 0) problem(p, "MALFORMED", "client_hello: bytes after the extensions");
}

/* The body of a ClientHello message; 0 when not even its fixed part (up
 * to the compression methods) reads. */
static int client_hello(parse *p, const unsigned char *body, size_t n) {
  lua_State *L = p->L;
  th_reader r;
  unsigned version;
  size_t sid_len, nsuites;
  const unsigned char *sid;
  th_reader_init(&r, body, n);
  version = th_read_u16(&r);
  th_read_take(&r, 32);
  sid = th_read_vec(&r, 1, &sid_len);
  if (!sid || sid_len > 32) {
    problem(p, "MALFORMED", "client_hello: the session id is cut short or over 32 bytes");
    return 0;
  }
  lua_pushvalue(L, p->result);
  th_set_int(L, "version", version);
  th_set_int(L, "session_id_length", (lua_Integer)sid_len);
  if (!u16_list(p, &r, 2, "suites", "suite_names", 's')) {
    lua_pop(L, 1);
    problem(p, "MALFORMED", "client_hello: the cipher suites are cut short or of an odd length");
    return 0;
  }
  lua_getfield(L, -1, "suites");
  nsuites = lua_rawlen(L, -1);
  lua_pop(L, 1);
  if (nsuites == 0) problem(p, "MALFORMED", "client_hello: no cipher suite");
  if (!u8_list(p, &r, "compression")) {
    lua_pop(L, 1);
    problem(p, "MALFORMED", "client_hello: the compression methods are cut short");
    return 0;
  }
  lua_pop(L, 1);
  if (th_reader_left(&r) > 0) extensions(p, &r);
  return 1;
}

static const char *outcome(int done, int hello, int not_tls, int sslv2) {
  if (hello) return "client_hello";
  if (!done) return "incomplete";
  if (not_tls) return "not_tls";
  return sslv2 ? "sslv2" : "malformed";
}

/* tlsharden.wire.parse_client_hello(bytes) */
int th_parse_client_hello(lua_State *L) {
  size_t n, off = 0, hs_len = 0;
  const unsigned char *b;
  unsigned char *hs;
  int records = 0, done = 0, hello = 0, not_tls = 0, sslv2 = 0;
  size_t need = 0, mlen = 0;
  parse p;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, FN, 1, "bytes", "expected a string, got %s", th_quote(L, 1));
  if (lua_gettop(L) > 1)
    return th_arg_error(L, FN, 2, NULL, "expected no more arguments, got %s", th_quote(L, 2));
  b = (const unsigned char *)lua_tolstring(L, 1, &n);
  hs = (unsigned char *)lua_newuserdata(L, n > 0 ? n : 1);  /* scratch, owned by Lua */
  memset(&p, 0, sizeof p);
  p.L = L;
  lua_createtable(L, 0, 24);
  p.result = lua_gettop(L);
  lua_newtable(L);
  p.problems = lua_gettop(L);
  if (n > 0 && (b[0] & 0x80)) {
    problem(&p, "SSLV2_HELLO", "an SSLv2 CLIENT-HELLO, which this parser does not read");
    done = sslv2 = 1;
  } else if (n > 0 && (b[0] != 22 || (n > 1 && b[1] != 3))) {
    problem(&p, "NOT_TLS", "the bytes are no TLS handshake record (first byte %d)", (int)b[0]);
    done = not_tls = 1;
  }
  while (!done) {
    size_t rlen;
    unsigned type, version;
    if (n - off < 5) {
      need = 5 - (n - off);
      break;
    }
    type = b[off];
    version = ((unsigned)b[off + 1] << 8) | b[off + 2];
    rlen = ((size_t)b[off + 3] << 8) | b[off + 4];
    if (type != 22 || (version >> 8) != 3) {
      char hex[8];  /* lua_pushfstring has no %X */
      snprintf(hex, sizeof hex, "0x%04X", version & 0xFFFFu);
      problem(&p, "MALFORMED", "record #%d: type %d, version %s before the hello was complete",
              records + 1, (int)type, hex);
      done = 1;
      break;
    }
    if (rlen > RECORD_LIMIT) {
      problem(&p, "RECORD_TOO_LONG", "record #%d claims %d bytes (at most %d)", records + 1, (int)rlen,
              RECORD_LIMIT);
      done = 1;
      break;
    }
    if (n - off - 5 < rlen) {
      need = rlen - (n - off - 5);
      break;
    }
    if (records == 0) {
      lua_pushinteger(L, version);
      lua_setfield(L, p.result, "record_version");
    }
    memcpy(hs + hs_len, b + off + 5, rlen);
    hs_len += rlen;
    off += 5 + rlen;
    records++;
    if (hs_len < 4) continue;
    mlen = ((size_t)hs[1] << 16) | ((size_t)hs[2] << 8) | hs[3];
    if (hs[0] != 1) {
      problem(&p, "UNEXPECTED_MESSAGE", "handshake message type %d where a client_hello belongs", (int)hs[0]);
      done = 1;
    } else if (hs_len - 4 >= mlen) {
      hello = client_hello(&p, hs + 4, mlen);
      lua_pushinteger(L, (lua_Integer)mlen);
      lua_setfield(L, p.result, "length");
      if (hs_len - 4 > mlen) problem(&p, "MALFORMED", "bytes after the client_hello in its records");
      done = 1;
    }
  }
  /* a hello that continues in records still to come */
  if (!done && off == n && hs_len >= 4) need = 5 + (4 + mlen - hs_len);
  if (!done && need == 0) need = 5;
  lua_pushvalue(L, p.problems);
  lua_setfield(L, p.result, "problems");
  lua_pushvalue(L, p.result);
  th_set_bool(L, "done", done);
  if (!done) th_set_int(L, "need", (lua_Integer)need);
  th_set_int(L, "consumed", (lua_Integer)off);
  th_set_int(L, "records", records);
  th_set_bool(L, "grease", p.grease);
  th_set_string(L, "outcome", outcome(done, hello, not_tls, sslv2));
  return 1;
}
