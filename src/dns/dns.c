/* DNS queries, bytes out and no I/O (RFC 1035 section 4, with an EDNS0 OPT
 * record, RFC 6891): dns_query builds one; dns_parse.c reads the answers.
 * The type table both use is here. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "dns/dns.h"

typedef struct dns_code {
  const char *name;
  int value;
} dns_code;

/* Types known by name (IANA "Resource Record (RR) TYPEs"). */
static const dns_code dns_types[] = {
  {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"HINFO", 13}, {"MX", 15},
  {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}, {"NAPTR", 35}, {"DNAME", 39}, {"OPT", 41},
  {"DS", 43}, {"SSHFP", 44}, {"RRSIG", 46}, {"NSEC", 47}, {"DNSKEY", 48}, {"NSEC3", 50},
  {"NSEC3PARAM", 51}, {"TLSA", 52}, {"CDS", 59}, {"CDNSKEY", 60}, {"SVCB", 64},
  {"HTTPS", 65}, {"ANY", 255}, {"CAA", 257}, {NULL, 0}
};

const char *th_dns_type_name(int value) {
  const dns_code *c;
  for (c = dns_types; c->name; c++)
    if (c->value == value) return c->name;
  return NULL;
}

/* --- dns_query -------------------------------------------------------------- */

/* Raise a bad-name error of argument #1 (the type keeps encode_name's
 * returns short). */
static size_t name_error(lua_State *L, const char *fn, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  th_vraise(L, "argument", fn, 1, NULL, "bad argument #1 'name': ", fmt, ap);
  va_end(ap);
  return 0;
}

/* Encode a name ("example.org", "example.org." or "." for the root) into
 * out (at least DNS_MAX_NAME bytes); returns its length, or raises. */
static size_t encode_name(lua_State *L, int idx, uint8_t *out) {
  size_t len, i, start = 0, n = 0;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING)
    th_arg_error(L, FN_QUERY, idx, "name", "expected a string, got %s", th_quote(L, idx));
  s = lua_tolstring(L, idx, &len);
  if (len == 1 && s[0] == '.') {
    out[0] = 0;
    return 1;
  }
  if (len > 0 && s[len - 1] == '.') len--;
  if (len == 0) {
    th_quote(L, idx);
    return name_error(L, FN_QUERY, "empty name %s (the root is '.')",
                            lua_tostring(L, -1));
  }
  for (i = 0; i <= len; i++) {
    unsigned char c = i < len ? (unsigned char)s[i] : '.';
    if (c == '.') {
      size_t label = i - start;
      if (label == 0) {
        th_quote(L, idx);
        return name_error(L, FN_QUERY, "empty label in %s",
                                lua_tostring(L, -1));
      }
      if (label > DNS_MAX_LABEL) {
        th_quote(L, idx);
        return name_error(L, FN_QUERY,
                                "label of %d bytes (at most %d) in %s",
                                (int)label, DNS_MAX_LABEL, lua_tostring(L, -1));
      }
      if (n + 1 + label + 1 > DNS_MAX_NAME) {
        th_quote(L, idx);
        return name_error(L, FN_QUERY,
                                "longer than %d bytes on the wire: %s",
                                DNS_MAX_NAME, lua_tostring(L, -1));
      }
      out[n++] = (uint8_t)label;
      memcpy(out + n, s + start, label);
      n += label;
      start = i + 1;
    } else if (c <= 0x20 || c >= 0x7f || c == '\\') {
      th_quote(L, idx);
      return name_error(L, FN_QUERY,
                              "byte %d at position %d is not allowed"
                              " (ASCII without spaces or escapes; IDNs as xn-- labels) in %s",
                              (int)c, (int)i + 1, lua_tostring(L, -1));
    }
  }
  out[n++] = 0;
  return n;
}

int th_dns_type_arg(lua_State *L, int idx, const char *fn, int arg, const char *argname) {
  const dns_code *c;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer v;
    if (th_integer(L, idx, &v) && v >= 1 && v <= 65535 && v != TYPE_OPT) return (int)v;
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    char buf[16];
    size_t i;
    if (len < sizeof buf) {
      for (i = 0; i < len; i++) buf[i] = (char)((s[i] >= 'a' && s[i] <= 'z') ? s[i] - 32 : s[i]);
      buf[len] = '\0';
      for (c = dns_types; c->name; c++)
        if (strcmp(c->name, buf) == 0 && c->value != TYPE_OPT) return c->value;
      if (len > 4 && len <= 9 && strncmp(buf, "TYPE", 4) == 0) {
        long v = 0;
        for (i = 4; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
        if (i == len && buf[4] != '0' && v >= 1 && v <= 65535 && v != TYPE_OPT) return (int)v;
      }
    }
  }
  return th_arg_error(L, fn, arg, argname,
                  "unknown type %s (a name such as A, AAAA, SRV, TLSA,"
                  " TYPEn, or a number 1-65535 other than OPT)", th_quote(L, idx));
}

/* The type named or numbered at idx (1..65535, not OPT), or raises. */
static int check_qtype(lua_State *L, int idx) {
  return th_dns_type_arg(L, idx, FN_QUERY, 2, "qtype");
}

typedef struct query_opts {
  int edns, dnssec, rd, cd, ad, udp_size;
} query_opts;

static void check_query_opts(lua_State *L, int idx, query_opts *o) {
  static const char *const known[] = {"edns", "dnssec", "rd", "cd", "ad", "udp_size", NULL};
  th_opts r;
  th_opts_open(L, &r, idx, FN_QUERY, "opts", "option", known);
  o->edns = th_opt_bool(&r, "edns", 1);
  o->dnssec = th_opt_bool(&r, "dnssec", 0);
  o->rd = th_opt_bool(&r, "rd", 1);
  o->cd = th_opt_bool(&r, "cd", 0);
  o->ad = th_opt_bool(&r, "ad", 1);
  o->udp_size = th_opt_int(&r, "udp_size", 512, 65535, DNS_DEFAULT_UDP, TH_NO_FALSE);
  if (o->dnssec && !o->edns)
    th_opt_error(&r, "dnssec", "the DO bit needs EDNS (edns = false was given)");
}

/* tlsharden.core.dns_query(name, qtype [, id [, opts]]) -> bytes */
int th_dns_query(lua_State *L) {
  uint8_t msg[DNS_HEADER + DNS_MAX_NAME + 4 + 11];
  uint8_t name[DNS_MAX_NAME];
  size_t nlen = encode_name(L, 1, name), n = 0;
  int qtype = check_qtype(L, 2), id = 0;
  query_opts o;
  if (!lua_isnoneornil(L, 3)) {
    lua_Integer v;
    if (!th_integer(L, 3, &v) || v < 0 || v > 65535)
      return th_arg_error(L, FN_QUERY, 3, "id", "expected an integer 0-65535, got %s",
                      th_quote(L, 3));
    id = (int)v;
  }
  check_query_opts(L, 4, &o);
  msg[n++] = (uint8_t)(id >> 8);
  msg[n++] = (uint8_t)id;
  msg[n++] = (uint8_t)(o.rd ? 0x01 : 0x00);             /* QR=0, opcode QUERY, RD */
  msg[n++] = (uint8_t)((o.ad ? 0x20 : 0) | (o.cd ? 0x10 : 0));
  msg[n++] = 0; msg[n++] = 1;                           /* QDCOUNT */
  msg[n++] = 0; msg[n++] = 0;                           /* ANCOUNT */
  msg[n++] = 0; msg[n++] = 0;                           /* NSCOUNT */
  msg[n++] = 0; msg[n++] = (uint8_t)(o.edns ? 1 : 0);   /* ARCOUNT */
  memcpy(msg + n, name, nlen);
  n += nlen;
  msg[n++] = (uint8_t)(qtype >> 8);
  msg[n++] = (uint8_t)qtype;
  msg[n++] = 0; msg[n++] = 1;                           /* class IN */
  if (o.edns) {
    msg[n++] = 0;                                       /* root owner */
    msg[n++] = 0; msg[n++] = TYPE_OPT;
    msg[n++] = (uint8_t)(o.udp_size >> 8);
    msg[n++] = (uint8_t)o.udp_size;
    msg[n++] = 0;                                       /* extended RCODE */
    msg[n++] = 0;                                       /* version 0 */
    msg[n++] = (uint8_t)(o.dnssec ? 0x80 : 0);          /* DO */
    msg[n++] = 0;
    msg[n++] = 0; msg[n++] = 0;                         /* no options */
  }
  lua_pushlstring(L, (const char *)msg, n);
  return 1;
}

