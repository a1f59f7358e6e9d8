/* DNS messages, bytes in and no I/O: dns_parse reads any message into a
 * table with typed data for the records a scanner needs (A, AAAA, CNAME,
 * NS, PTR, MX, SOA, TXT, SRV, TLSA, OPT). A malformed message is a finding
 * (nil, reason), never an error: it comes from the network. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns.h"

static const char *const rcode_names[] = {
  "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
  "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"
};

static const char *const opcode_names[] = {
  "QUERY", "IQUERY", "STATUS", NULL, "NOTIFY", "UPDATE", "DSO"
};

static void push_type(lua_State *L, int value) {
  const char *name = th_dns_type_name(value);
  if (name) lua_pushstring(L, name);
  else lua_pushfstring(L, "TYPE%d", value);
}

static void push_class(lua_State *L, int value) {
  switch (value) {
    case 1: lua_pushliteral(L, "IN"); break;
    case 3: lua_pushliteral(L, "CH"); break;
    case 4: lua_pushliteral(L, "HS"); break;
    case 254: lua_pushliteral(L, "NONE"); break;
    case 255: lua_pushliteral(L, "ANY"); break;
    default: lua_pushfstring(L, "CLASS%d", value);
  }
}

static void push_rcode(lua_State *L, int value) {
  if (value >= 0 && value < (int)(sizeof rcode_names / sizeof rcode_names[0]))
    lua_pushstring(L, rcode_names[value]);
  else if (value == 16) lua_pushliteral(L, "BADVERS");
  else if (value == 23) lua_pushliteral(L, "BADCOOKIE");
  else lua_pushfstring(L, "RCODE%d", value);
}

static void push_hex(lua_State *L, const uint8_t *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    luaL_addchar(&b, digits[p[i] >> 4]);
    luaL_addchar(&b, digits[p[i] & 15]);
  }
  luaL_pushresult(&b);
}

/* --- dns_parse -------------------------------------------------------------- */

typedef struct parser {
  const uint8_t *msg;
  size_t len;
  char err[160];
  char where[32];  /* "header", "answer 2", ... */
} parser;

static int fail(parser *p, const char *fmt, size_t at, const char *more) {
  snprintf(p->err, sizeof p->err, fmt, (unsigned)at, p->where, more ? more : "");
  return 0;
}

#define TRUNCATED(p, at, part) fail(p, "truncated at byte %u (%s%s)", at, part)

static unsigned get16(const uint8_t *b) { return ((unsigned)b[0] << 8) | b[1]; }
static uint32_t get32(const uint8_t *b) {
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Append one label to text, escaped as in master files (RFC 1035 §5.1). */
static size_t add_label(char *text, size_t t, const uint8_t *s, unsigned n) {
  unsigned i;
  for (i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c == '.' || c == '\\') {
      text[t++] = '\\';
      text[t++] = (char)c;
    } else if (c > 0x20 && c < 0x7f) {
      text[t++] = (char)c;
    } else {
      t += (size_t)snprintf(text + t, 5, "\\%03u", c);
    }
  }
  return t;
}

/* Read the name at *pos, which must end (its in-place part) before limit.
 * Compression pointers must point strictly before every position read so
 * far, which rules out loops. On success *pos is past the name and text
 * holds it ("." for the root). */
static int read_name(parser *p, size_t *pos, size_t limit, char *text) {
  size_t at = *pos, lowest = *pos, t = 0, wire = 0;
  int jumped = 0;
  for (;;) {
    unsigned c;
    if (at >= limit) return TRUNCATED(p, at, ": name");
    c = p->msg[at];
    if (c == 0) {
      if (!jumped) *pos = at + 1;
      break;
    }
    if ((c & 0xC0) == 0xC0) {
      size_t target;
      if (at + 1 >= limit) return TRUNCATED(p, at + 1, ": compression pointer");
      target = ((c & 0x3F) << 8) | p->msg[at + 1];
      if (target >= lowest)
        return fail(p, "compression pointer at byte %u (%s%s) points forward or loops", at, NULL);
      if (!jumped) *pos = at + 2;
      jumped = 1;
      lowest = target;
      at = target;
      limit = p->len;
      continue;
    }
    if (c & 0xC0) {
      char kind[24];
      snprintf(kind, sizeof kind, ": label type 0x%02x", c & 0xC0);
      return fail(p, "unsupported label at byte %u (%s%s)", at, kind);
    }
    if (at + 1 + c > limit) return TRUNCATED(p, limit, ": label");
    wire += 1 + c;
    if (wire + 1 > DNS_MAX_NAME)
      return fail(p, "name longer than 255 bytes at byte %u (%s%s)", at, NULL);
    if (t > 0) text[t++] = '.';
    t = add_label(text, t, p->msg + at + 1, c);
    at += 1 + c;
  }
  if (t == 0) text[t++] = '.';
  text[t] = '\0';
  return 1;
}

static int push_name_field(parser *p, lua_State *L, size_t *pos, size_t limit, const char *key) {
  char text[DNS_NAME_TEXT];
  if (!read_name(p, pos, limit, text)) return 0;
  lua_pushstring(L, text);
  lua_setfield(L, -2, key);
  return 1;
}

/* The rdata of one record into the table on top; [start, end) is rdata. */
static int parse_rdata(parser *p, lua_State *L, int type, size_t start, size_t end) {
  size_t pos = start, n = end - start;
  char want[48];
  switch (type) {
    case TYPE_A: {
      char buf[16];
      if (n != 4) break;
      snprintf(buf, sizeof buf, "%u.%u.%u.%u", p->msg[pos], p->msg[pos + 1], p->msg[pos + 2],
               p->msg[pos + 3]);
      lua_pushstring(L, buf);
      lua_setfield(L, -2, "address");
      return 1;
    }
    case TYPE_AAAA: {
      char buf[INET6_ADDRSTRLEN];
      if (n != 16 || !inet_ntop(AF_INET6, p->msg + pos, buf, sizeof buf)) break;
      lua_pushstring(L, buf);
      lua_setfield(L, -2, "address");
      return 1;
    }
    case TYPE_NS: case TYPE_CNAME: case TYPE_PTR: case TYPE_DNAME:
      if (!push_name_field(p, L, &pos, end, "target")) return 0;
      break;
    case TYPE_MX:
      if (n < 3) break;
      th_set_int(L, "preference", get16(p->msg + pos));
      pos += 2;
      if (!push_name_field(p, L, &pos, end, "exchange")) return 0;
      break;
    case TYPE_SRV:
      if (n < 7) break;
      th_set_int(L, "priority", get16(p->msg + pos));
      th_set_int(L, "weight", get16(p->msg + pos + 2));
      th_set_int(L, "port", get16(p->msg + pos + 4));
      pos += 6;
      if (!push_name_field(p, L, &pos, end, "target")) return 0;
      break;
    case TYPE_SOA:
      if (!push_name_field(p, L, &pos, end, "mname")) return 0;
      if (!push_name_field(p, L, &pos, end, "rname")) return 0;
      if (end - pos != 20) break;
      th_set_int(L, "serial", get32(p->msg + pos));
      th_set_int(L, "refresh", get32(p->msg + pos + 4));
      th_set_int(L, "retry", get32(p->msg + pos + 8));
      th_set_int(L, "expire", get32(p->msg + pos + 12));
      th_set_int(L, "minimum", get32(p->msg + pos + 16));
      pos += 20;
      break;
    case TYPE_TXT: {
      luaL_Buffer b;
      size_t at;
      int i = 0;
      if (n == 0) break;
      for (at = pos; at < end; at += 1 + p->msg[at])
        if (at + 1 + p->msg[at] > end) return TRUNCATED(p, end, ": character-string");
      luaL_buffinit(L, &b);
      for (at = pos; at < end; at += 1 + p->msg[at])
        luaL_addlstring(&b, (const char *)p->msg + at + 1, p->msg[at]);
      luaL_pushresult(&b);
      lua_setfield(L, -2, "text");
      lua_newtable(L);
      for (at = pos; at < end; at += 1 + p->msg[at]) {
        lua_pushlstring(L, (const char *)p->msg + at + 1, p->msg[at]);
        lua_rawseti(L, -2, ++i);
      }
      lua_setfield(L, -2, "strings");
      pos = end;
      break;
    }
    case TYPE_TLSA:
      if (n < 3) break;
      th_set_int(L, "usage", p->msg[pos]);
      th_set_int(L, "selector", p->msg[pos + 1]);
      th_set_int(L, "matching_type", p->msg[pos + 2]);
      push_hex(L, p->msg + pos + 3, n - 3);
      lua_setfield(L, -2, "data");
      pos = end;
      break;
    default:
      push_hex(L, p->msg + start, n);
      lua_setfield(L, -2, "rdata");
      return 1;
  }
  if (pos == end) return 1;
  snprintf(want, sizeof want, ": %d bytes of rdata do not fit its type", (int)n);
  return fail(p, "bad rdata at byte %u (%s%s)", start, want);
}

/* The OPT pseudo-record's fields (RFC 6891 §6.1.3) into the table on top. */
static int parse_opt(parser *p, lua_State *L, unsigned cls, uint32_t ttl, size_t start, size_t end) {
  size_t pos = start;
  int i = 0;
  th_set_int(L, "udp_size", cls);
  th_set_int(L, "extended_rcode", (lua_Integer)(ttl >> 24));
  th_set_int(L, "version", (lua_Integer)((ttl >> 16) & 0xff));
  th_set_bool(L, "dnssec", (ttl >> 15) & 1);
  lua_newtable(L);
  while (pos < end) {
    unsigned code, olen;
    if (pos + 4 > end) {
      lua_pop(L, 1);
      return TRUNCATED(p, end, ": EDNS option");
    }
    code = get16(p->msg + pos);
    olen = get16(p->msg + pos + 2);
    if (pos + 4 + olen > end) {
      lua_pop(L, 1);
      return TRUNCATED(p, end, ": EDNS option data");
    }
    lua_createtable(L, 0, 4);
    th_set_int(L, "code", code);
    push_hex(L, p->msg + pos + 4, olen);
    lua_setfield(L, -2, "data");
    if (code == EDNS_OPT_EDE && olen >= 2) {
      th_set_int(L, "info_code", get16(p->msg + pos + 4));
      lua_pushlstring(L, (const char *)p->msg + pos + 6, olen - 2);
      lua_setfield(L, -2, "text");
    }
    lua_rawseti(L, -2, ++i);
    pos += 4 + olen;
  }
  lua_setfield(L, -2, "options");
  return 1;
}

/* One section of count records into a new table on top; the OPT record,
 * if any, is left in *opt_seen as the index of its table (0: none). */
static int parse_section(parser *p, lua_State *L, size_t *pos, unsigned count, const char *label,
                         int allow_opt, int *opt_index) {
  unsigned i;
  size_t room = (p->len - *pos) / 11;
  lua_createtable(L, (int)(count < room ? count : room), 0);
  for (i = 1; i <= count; i++) {
    size_t at = *pos;
    unsigned type, cls, rdlen;
    uint32_t ttl;
    snprintf(p->where, sizeof p->where, "%s %u", label, i);
    lua_createtable(L, 0, 8);
    if (!push_name_field(p, L, pos, p->len, "name")) return 0;
    if (*pos + 10 > p->len) return TRUNCATED(p, p->len, ": record header");
    type = get16(p->msg + *pos);
    cls = get16(p->msg + *pos + 2);
    ttl = get32(p->msg + *pos + 4);
    rdlen = get16(p->msg + *pos + 8);
    *pos += 10;
    if (*pos + rdlen > p->len) return TRUNCATED(p, p->len, ": rdata");
    push_type(L, (int)type);
    lua_setfield(L, -2, "type");
    th_set_int(L, "type_code", type);
    if (type == TYPE_OPT) {
      lua_getfield(L, -1, "name");
      if (!allow_opt || *opt_index || strcmp(lua_tostring(L, -1), ".") != 0)
        return fail(p, "misplaced OPT record at byte %u (%s%s)", at,
                    *opt_index ? ": a second one" : ": only one, owned by the root, in additional");
      lua_pop(L, 1);
      if (!parse_opt(p, L, cls, ttl, *pos, *pos + rdlen)) return 0;
      *opt_index = (int)i;
    } else {
      push_class(L, (int)cls);
      lua_setfield(L, -2, "class");
      th_set_int(L, "ttl", (lua_Integer)ttl);
      if (!parse_rdata(p, L, (int)type, *pos, *pos + rdlen)) return 0;
    }
    *pos += rdlen;
    lua_rawseti(L, -2, (int)i);
  }
  return 1;
}

static int parse_questions(parser *p, lua_State *L, size_t *pos, unsigned count) {
  unsigned i;
  size_t room = (p->len - *pos) / 5;
  lua_createtable(L, (int)(count < room ? count : room), 0);
  for (i = 1; i <= count; i++) {
    snprintf(p->where, sizeof p->where, "question %u", i);
    lua_createtable(L, 0, 4);
    if (!push_name_field(p, L, pos, p->len, "name")) return 0;
    if (*pos + 4 > p->len) return TRUNCATED(p, p->len, ": type and class");
    push_type(L, (int)get16(p->msg + *pos));
    lua_setfield(L, -2, "type");
    th_set_int(L, "type_code", get16(p->msg + *pos));
    push_class(L, (int)get16(p->msg + *pos + 2));
    lua_setfield(L, -2, "class");
    *pos += 4;
    lua_rawseti(L, -2, (int)i);
  }
  return 1;
}

static int parse_message(parser *p, lua_State *L) {
  const uint8_t *h = p->msg;
  unsigned flags, opcode, counts[4];
  size_t pos = DNS_HEADER;
  int opt = 0, rcode, result, additional;
  snprintf(p->where, sizeof p->where, "header");
  if (p->len < DNS_HEADER) return TRUNCATED(p, p->len, ": 12 bytes needed");
  flags = get16(h + 2);
  counts[0] = get16(h + 4);
  counts[1] = get16(h + 6);
  counts[2] = get16(h + 8);
  counts[3] = get16(h + 10);
  lua_createtable(L, 0, 12);
  result = lua_gettop(L);
  th_set_int(L, "id", get16(h));
  opcode = (flags >> 11) & 15;
  if (opcode < sizeof opcode_names / sizeof opcode_names[0] && opcode_names[opcode])
    lua_pushstring(L, opcode_names[opcode]);
  else
    lua_pushfstring(L, "OPCODE%d", (int)opcode);
  lua_setfield(L, -2, "opcode");
  lua_createtable(L, 0, 8);
  th_set_bool(L, "qr", flags & 0x8000);
  th_set_bool(L, "aa", flags & 0x0400);
  th_set_bool(L, "tc", flags & 0x0200);
  th_set_bool(L, "rd", flags & 0x0100);
  th_set_bool(L, "ra", flags & 0x0080);
  th_set_bool(L, "z", flags & 0x0040);
  th_set_bool(L, "ad", flags & 0x0020);
  th_set_bool(L, "cd", flags & 0x0010);
  lua_setfield(L, -2, "flags");
  if (!parse_questions(p, L, &pos, counts[0])) return 0;
  lua_setfield(L, result, "questions");
  if (!parse_section(p, L, &pos, counts[1], "answer", 0, &opt)) return 0;
  lua_setfield(L, result, "answers");
  if (!parse_section(p, L, &pos, counts[2], "authority", 0, &opt)) return 0;
  lua_setfield(L, result, "authority");
  if (!parse_section(p, L, &pos, counts[3], "additional", 1, &opt)) return 0;
  additional = lua_gettop(L);
  rcode = (int)(flags & 15);
  if (opt) {
    lua_rawgeti(L, additional, opt);
    lua_getfield(L, -1, "extended_rcode");
    rcode |= (int)lua_tointeger(L, -1) << 4;
    lua_pop(L, 1);
    lua_setfield(L, result, "edns");
  }
  lua_setfield(L, result, "additional");
  push_rcode(L, rcode);
  lua_setfield(L, result, "rcode");
  th_set_int(L, "rcode_code", rcode);
  th_set_int(L, "size", (lua_Integer)p->len);
  th_set_int(L, "trailing", (lua_Integer)(p->len - pos));
  return 1;
}

/* tlsharden.core.dns_parse(bytes) -> message | nil, reason */
int th_dns_parse(lua_State *L) {
  parser p;
  int top;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_error(L, FN_PARSE, "bad argument #1 'bytes': expected a string, got %s",
                    th_quote(L, 1));
  p.msg = (const uint8_t *)lua_tolstring(L, 1, &p.len);
  p.err[0] = '\0';
  lua_settop(L, 1);
  top = lua_gettop(L);
  if (p.len > DNS_MAX_MESSAGE) {
    lua_pushnil(L);
    lua_pushfstring(L, "a message of %d bytes is longer than %d", (int)p.len, DNS_MAX_MESSAGE);
    return 2;
  }
  if (!parse_message(&p, L)) {
    lua_settop(L, top);
    lua_pushnil(L);
    lua_pushstring(L, p.err);
    return 2;
  }
  return 1;
}

