/* DNS messages, bytes in and no I/O: dns_parse reads any message into a
 * table with typed data for the records a scanner needs (A, AAAA, CNAME,
 * NS, PTR, MX, SOA, TXT, SRV, TLSA, OPT). A malformed message gives nil
 * and the reason, never an error: it comes from the network. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "wire/reader.h"

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

/* --- dns_parse --------------------------------------------------------------
 * Read with the wire parsers' byte reader (wire/reader.h), over the whole
 * message, so that every offset in a message is a byte of the message. */

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

static int truncated(parser *p, size_t at, const char *part) {
  return fail(p, "truncated at byte %u (%s%s)", at, part);
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

/* Read the name at r's offset; its in-place part must end within r.
 * Compression pointers must point strictly before every position read so
 * far, which rules out loops. On success r is past the name and text holds
 * it ("." for the root). */
static int read_name(parser *p, th_reader *r, char *text) {
  th_reader at = *r;  /* follows the compression pointers */
  size_t lowest = r->off, t = 0, wire = 0;
  int jumped = 0;
  for (;;) {
    size_t here = at.off;
    const uint8_t *label;
    unsigned c;
    if (th_reader_left(&at) < 1) return truncated(p, here, ": name");
    c = th_read_u8(&at);
    if (c == 0) {
      if (!jumped) r->off = at.off;
      break;
    }
    if ((c & 0xC0) == 0xC0) {
      size_t target;
      if (th_reader_left(&at) < 1) return truncated(p, at.off, ": compression pointer");
      target = ((c & 0x3F) << 8) | th_read_u8(&at);
      if (target >= lowest)
        return fail(p, "compression pointer at byte %u (%s%s) points forward or loops", here, NULL);
      if (!jumped) r->off = at.off;
      jumped = 1;
      lowest = target;
      th_reader_init(&at, p->msg, p->len);
      th_reader_seek(&at, target);
      continue;
    }
    if (c & 0xC0) {
      char kind[24];
      snprintf(kind, sizeof kind, ": label type 0x%02x", c & 0xC0);
      return fail(p, "unsupported label at byte %u (%s%s)", here, kind);
    }
    label = th_read_take(&at, c);
    if (!label) return truncated(p, at.len, ": label");
    wire += 1 + c;
    if (wire + 1 > DNS_MAX_NAME)
      return fail(p, "name longer than 255 bytes at byte %u (%s%s)", here, NULL);
    if (t > 0) text[t++] = '.';
    t = add_label(text, t, label, c);
  }
  if (t == 0) text[t++] = '.';
  text[t] = '\0';
  return 1;
}

static int push_name_field(parser *p, lua_State *L, th_reader *r, const char *key) {
  char text[DNS_NAME_TEXT];
  if (!read_name(p, r, text)) return 0;
  lua_pushstring(L, text);
  lua_setfield(L, -2, key);
  return 1;
}

/* The rdata of one record into the table on top; d reads just the rdata,
 * at the message's offsets. */
static int parse_rdata(parser *p, lua_State *L, int type, th_reader *d) {
  size_t start = d->off, n = th_reader_left(d);
  char want[48];
  switch (type) {
    case TYPE_A: {
      char buf[16];
      const uint8_t *a;
      if (n != 4) break;
      a = th_read_take(d, 4);
      snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
      lua_pushstring(L, buf);
      lua_setfield(L, -2, "address");
      return 1;
    }
    case TYPE_AAAA: {
      char buf[INET6_ADDRSTRLEN];
      if (n != 16 || !inet_ntop(AF_INET6, th_read_take(d, 16), buf, sizeof buf)) break;
      lua_pushstring(L, buf);
      lua_setfield(L, -2, "address");
      return 1;
    }
    case TYPE_NS: case TYPE_CNAME: case TYPE_PTR: case TYPE_DNAME:
      if (!push_name_field(p, L, d, "target")) return 0;
      break;
    case TYPE_MX:
      if (n < 3) break;
      th_set_int(L, "preference", th_read_u16(d));
      if (!push_name_field(p, L, d, "exchange")) return 0;
      break;
    case TYPE_SRV:
      if (n < 7) break;
      th_set_int(L, "priority", th_read_u16(d));
      th_set_int(L, "weight", th_read_u16(d));
      th_set_int(L, "port", th_read_u16(d));
      if (!push_name_field(p, L, d, "target")) return 0;
      break;
    case TYPE_SOA:
      if (!push_name_field(p, L, d, "mname")) return 0;
      if (!push_name_field(p, L, d, "rname")) return 0;
      if (th_reader_left(d) != 20) break;
      th_set_int(L, "serial", th_read_u32(d));
      th_set_int(L, "refresh", th_read_u32(d));
      th_set_int(L, "retry", th_read_u32(d));
      th_set_int(L, "expire", th_read_u32(d));
      th_set_int(L, "minimum", th_read_u32(d));
      break;
    case TYPE_TXT: {
      luaL_Buffer b;
      th_reader s = *d;
      size_t len;
      const uint8_t *part;
      int i = 0;
      if (n == 0) break;
      while (th_reader_left(&s) > 0)
        if (!th_read_vec(&s, 1, &len)) return truncated(p, d->len, ": character-string");
      s = *d;
      luaL_buffinit(L, &b);
      while (th_reader_left(&s) > 0) {
        part = th_read_vec(&s, 1, &len);
        luaL_addlstring(&b, (const char *)part, len);
      }
      luaL_pushresult(&b);
      lua_setfield(L, -2, "text");
      lua_newtable(L);
      while (th_reader_left(d) > 0) {
        part = th_read_vec(d, 1, &len);
        lua_pushlstring(L, (const char *)part, len);
        lua_rawseti(L, -2, ++i);
      }
      lua_setfield(L, -2, "strings");
      break;
    }
    case TYPE_TLSA:
      if (n < 3) break;
      th_set_int(L, "usage", th_read_u8(d));
      th_set_int(L, "selector", th_read_u8(d));
      th_set_int(L, "matching_type", th_read_u8(d));
      push_hex(L, th_read_take(d, n - 3), n - 3);
      lua_setfield(L, -2, "data");
      break;
    default:
      push_hex(L, th_read_take(d, n), n);
      lua_setfield(L, -2, "rdata");
      return 1;
  }
  if (th_reader_left(d) == 0 && !d->bad) return 1;
  snprintf(want, sizeof want, ": %d bytes of rdata do not fit its type", (int)n);
  return fail(p, "bad rdata at byte %u (%s%s)", start, want);
}

/* The OPT pseudo-record's fields (RFC 6891 §6.1.3) into the table on top;
 * d reads its rdata. */
static int parse_opt(parser *p, lua_State *L, unsigned cls, uint32_t ttl, th_reader *d) {
  int i = 0;
  th_set_int(L, "udp_size", cls);
  th_set_int(L, "extended_rcode", (lua_Integer)(ttl >> 24));
  th_set_int(L, "version", (lua_Integer)((ttl >> 16) & 0xff));
  th_set_bool(L, "dnssec", (ttl >> 15) & 1);
  lua_newtable(L);
  while (th_reader_left(d) > 0) {
    unsigned code;
    size_t olen;
    const uint8_t *data;
    th_reader e;
    if (th_reader_left(d) < 4) {
      lua_pop(L, 1);
      return truncated(p, d->len, ": EDNS option");
    }
    code = th_read_u16(d);
    data = th_read_vec(d, 2, &olen);
    if (!data) {
      lua_pop(L, 1);
      return truncated(p, d->len, ": EDNS option data");
    }
    lua_createtable(L, 0, 4);
    th_set_int(L, "code", code);
    push_hex(L, data, olen);
    lua_setfield(L, -2, "data");
    th_reader_init(&e, data, olen);
    if (code == EDNS_OPT_EDE && olen >= 2) {
      th_set_int(L, "info_code", th_read_u16(&e));
      th_set_bytes(L, "text", th_read_take(&e, olen - 2), olen - 2);
    }
    lua_rawseti(L, -2, ++i);
  }
  lua_setfield(L, -2, "options");
  return 1;
}

/* One section of count records into a new table on top; the OPT record,
 * if any, is left in *opt_index as its position in the section (0: none). */
static int parse_section(parser *p, lua_State *L, th_reader *r, unsigned count, const char *label,
                         int allow_opt, int *opt_index) {
  unsigned i;
  size_t room = th_reader_left(r) / 11;
  lua_createtable(L, (int)(count < room ? count : room), 0);
  for (i = 1; i <= count; i++) {
    size_t at = r->off;
    unsigned type, cls, rdlen;
    uint32_t ttl;
    th_reader d;
    snprintf(p->where, sizeof p->where, "%s %u", label, i);
    lua_createtable(L, 0, 8);
    if (!push_name_field(p, L, r, "name")) return 0;
    if (th_reader_left(r) < 10) return truncated(p, p->len, ": record header");
    type = th_read_u16(r);
    cls = th_read_u16(r);
    ttl = th_read_u32(r);
    rdlen = th_read_u16(r);
    if (th_reader_left(r) < rdlen) return truncated(p, p->len, ": rdata");
    /* the rdata alone, at the message's offsets (names point back into it) */
    th_reader_init(&d, p->msg, r->off + rdlen);
    th_reader_seek(&d, r->off);
    th_read_take(r, rdlen);
    push_type(L, (int)type);
    lua_setfield(L, -2, "type");
    th_set_int(L, "type_code", type);
    if (type == TYPE_OPT) {
      lua_getfield(L, -1, "name");
      if (!allow_opt || *opt_index || strcmp(lua_tostring(L, -1), ".") != 0)
        return fail(p, "misplaced OPT record at byte %u (%s%s)", at,
                    *opt_index ? ": a second one" : ": only one, owned by the root, in additional");
      lua_pop(L, 1);
      if (!parse_opt(p, L, cls, ttl, &d)) return 0;
      *opt_index = (int)i;
    } else {
      push_class(L, (int)cls);
      lua_setfield(L, -2, "class");
      th_set_int(L, "ttl", (lua_Integer)ttl);
      if (!parse_rdata(p, L, (int)type, &d)) return 0;
    }
    lua_rawseti(L, -2, (int)i);
  }
  return 1;
}

static int parse_questions(parser *p, lua_State *L, th_reader *r, unsigned count) {
  unsigned i;
  size_t room = th_reader_left(r) / 5;
  lua_createtable(L, (int)(count < room ? count : room), 0);
  for (i = 1; i <= count; i++) {
    unsigned type, cls;
    snprintf(p->where, sizeof p->where, "question %u", i);
    lua_createtable(L, 0, 4);
    if (!push_name_field(p, L, r, "name")) return 0;
    if (th_reader_left(r) < 4) return truncated(p, p->len, ": type and class");
    type = th_read_u16(r);
    cls = th_read_u16(r);
    push_type(L, (int)type);
    lua_setfield(L, -2, "type");
    th_set_int(L, "type_code", type);
    push_class(L, (int)cls);
    lua_setfield(L, -2, "class");
    lua_rawseti(L, -2, (int)i);
  }
  return 1;
}

static int parse_message(parser *p, lua_State *L) {
  th_reader r;
  unsigned id, flags, opcode, counts[4];
  int opt = 0, rcode, result, additional;
  snprintf(p->where, sizeof p->where, "header");
  if (p->len < DNS_HEADER) return truncated(p, p->len, ": 12 bytes needed");
  th_reader_init(&r, p->msg, p->len);
  id = th_read_u16(&r);
  flags = th_read_u16(&r);
  counts[0] = th_read_u16(&r);
  counts[1] = th_read_u16(&r);
  counts[2] = th_read_u16(&r);
  counts[3] = th_read_u16(&r);
  lua_createtable(L, 0, 12);
  result = lua_gettop(L);
  th_set_int(L, "id", id);
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
  if (!parse_questions(p, L, &r, counts[0])) return 0;
  lua_setfield(L, result, "questions");
  if (!parse_section(p, L, &r, counts[1], "answer", 0, &opt)) return 0;
  lua_setfield(L, result, "answers");
  if (!parse_section(p, L, &r, counts[2], "authority", 0, &opt)) return 0;
  lua_setfield(L, result, "authority");
  if (!parse_section(p, L, &r, counts[3], "additional", 1, &opt)) return 0;
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
  th_set_int(L, "trailing", (lua_Integer)th_reader_left(&r));
  return 1;
}

/* tlsharden.wire.dns_rdata(qtype, bytes) -> fields | nil, reason: one
 * record's data alone, as a validating resolver library hands it over
 * (libunbound: in wire form, names uncompressed, without its length),
 * read into the fields a record of dns_parse has. */
int th_dns_rdata(lua_State *L) {
  parser p;
  th_reader d;
  int type = th_dns_type_arg(L, 1, FN_RDATA, 1, "qtype");
  if (lua_type(L, 2) != LUA_TSTRING)
    return th_arg_error(L, FN_RDATA, 2, "bytes", "expected a string, got %s", th_quote(L, 2));
  p.msg = (const uint8_t *)lua_tolstring(L, 2, &p.len);
  p.err[0] = '\0';
  snprintf(p.where, sizeof p.where, "rdata");
  lua_settop(L, 2);
  if (p.len > DNS_MAX_MESSAGE) {
    lua_pushnil(L);
    lua_pushfstring(L, "rdata of %d bytes is longer than %d", (int)p.len, DNS_MAX_MESSAGE);
    return 2;
  }
  lua_createtable(L, 0, 6);
  push_type(L, type);
  lua_setfield(L, -2, "type");
  th_reader_init(&d, p.msg, p.len);
  if (!parse_rdata(&p, L, type, &d)) {
    lua_settop(L, 2);
    lua_pushnil(L);
    lua_pushstring(L, p.err);
    return 2;
  }
  return 1;
}

/* tlsharden.core.dns_parse(bytes) -> message | nil, reason */
int th_dns_parse(lua_State *L) {
  parser p;
  int top;
  if (lua_type(L, 1) != LUA_TSTRING)
    return th_arg_error(L, FN_PARSE, 1, "bytes", "expected a string, got %s",
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

