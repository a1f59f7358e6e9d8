/* The TLS handshake messages of a server's first flight (ServerHello with
 * its extensions, HelloRetryRequest, Certificate, ServerKeyExchange,
 * ServerHelloDone) and alerts, read into the result; the records around
 * them are framed in flight.c. A malformed message is a problem record, added
 * through flight_result.c. */
#include <stdio.h>
#include <string.h>

#include "wire/flight.h"

#define MAX_EXT_TYPES 64

/* Bit length of a big-endian unsigned integer. */
static int bit_length(const unsigned char *p, size_t n) {
  int bits;
  unsigned c;
  while (n > 0 && *p == 0) { p++; n--; }
  if (n == 0) return 0;
  bits = (int)(n - 1) * 8;
  for (c = *p; c; c >>= 1) bits++;
  return bits;
}

static const th_named alert_names[] = {
  {0, "close_notify"}, {10, "unexpected_message"}, {20, "bad_record_mac"},
  {21, "decryption_failed"}, {22, "record_overflow"}, {30, "decompression_failure"},
  {40, "handshake_failure"}, {41, "no_certificate"}, {42, "bad_certificate"},
  {43, "unsupported_certificate"}, {44, "certificate_revoked"}, {45, "certificate_expired"},
  {46, "certificate_unknown"}, {47, "illegal_parameter"}, {48, "unknown_ca"},
  {49, "access_denied"}, {50, "decode_error"}, {51, "decrypt_error"},
  {60, "export_restriction"}, {70, "protocol_version"}, {71, "insufficient_security"},
  {80, "internal_error"}, {86, "inappropriate_fallback"}, {90, "user_canceled"},
  {100, "no_renegotiation"}, {109, "missing_extension"}, {110, "unsupported_extension"},
  {111, "certificate_unobtainable"}, {112, "unrecognized_name"},
  {113, "bad_certificate_status_response"}, {114, "bad_certificate_hash_value"},
  {115, "unknown_psk_identity"}, {116, "certificate_required"},
  {120, "no_application_protocol"}, {121, "ech_required"}, {0, NULL}
};

static const th_named message_names[] = {
  {0, "hello_request"}, {1, "client_hello"}, {2, "server_hello"}, {3, "hello_verify_request"},
  {4, "new_session_ticket"}, {5, "end_of_early_data"}, {6, "hello_retry_request"},
  {8, "encrypted_extensions"}, {11, "certificate"}, {12, "server_key_exchange"},
  {13, "certificate_request"}, {14, "server_hello_done"}, {15, "certificate_verify"},
  {16, "client_key_exchange"}, {20, "finished"}, {22, "certificate_status"},
  {23, "supplemental_data"}, {24, "key_update"}, {0, NULL}
};

static const th_named extension_names[] = {
  {0, "server_name"}, {1, "max_fragment_length"}, {5, "status_request"},
  {10, "supported_groups"}, {11, "ec_point_formats"}, {13, "signature_algorithms"},
  {15, "heartbeat"}, {16, "alpn"}, {18, "signed_certificate_timestamp"}, {21, "padding"},
  {22, "encrypt_then_mac"}, {23, "extended_master_secret"}, {27, "compress_certificate"},
  {28, "record_size_limit"}, {35, "session_ticket"}, {41, "pre_shared_key"},
  {34, "delegated_credential"}, {42, "early_data"}, {43, "supported_versions"}, {44, "cookie"},
  {45, "psk_key_exchange_modes"}, {49, "post_handshake_auth"}, {50, "signature_algorithms_cert"},
  {51, "key_share"}, {57, "quic_transport_parameters"}, {13172, "next_protocol_negotiation"},
  {17513, "application_settings"}, {17613, "application_settings"}, {65037, "encrypted_client_hello"},
  {65281, "renegotiation_info"}, {0, NULL}
};

static const th_named compression_names[] = {{0, "null"}, {1, "deflate"}, {64, "lzs"}, {0, NULL}};

/* SHA-256("HelloRetryRequest"), RFC 8446 4.1.3. */
static const unsigned char hrr_random[32] = {
  0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
  0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C
};

/* ---- TLS handshake messages ---- */

static void parse_extensions(flight *f, th_reader *r, int *reneg) {
  lua_State *L = f->L;
  unsigned seen[MAX_EXT_TYPES];
  int nseen = 0, n = 0, i;
  size_t total;
  const unsigned char *all = th_read_vec(r, 2, &total);
  th_reader e;
  if (!all) {
    th_flight_problem(f, "MALFORMED", "server_hello: the extensions block is cut short");
    return;
  }
  th_reader_init(&e, all, total);
  lua_newtable(L);  /* extensions list */
  while (th_reader_left(&e) > 0) {
    unsigned type = th_read_u16(&e);
    size_t elen;
    const unsigned char *data = th_read_vec(&e, 2, &elen);
    th_reader d;
    if (!data) {
      th_flight_problem(f, "MALFORMED", "server_hello: extension %d is cut short", (int)type);
      break;
    }
    for (i = 0; i < nseen; i++)
      if (seen[i] == type)
        th_flight_problem(f, "MALFORMED", "server_hello: extension %d appears twice", (int)type);
    if (nseen < MAX_EXT_TYPES) seen[nseen++] = type;
    lua_createtable(L, 0, 3);
    th_set_int(L, "type", type);
    th_set_string(L, "name", th_flight_lookup(extension_names, type));
    th_set_int(L, "length", (lua_Integer)elen);
    lua_rawseti(L, -2, ++n);
    th_reader_init(&d, data, elen);
    lua_pushvalue(L, -2);  /* the server_hello table */
    switch (type) {
      case 0xFF01: {
        size_t rn;
        const unsigned char *rc = th_read_vec(&d, 1, &rn);
        if (rc) th_set_bytes(L, "renegotiation_info", rc, rn);
        *reneg = 1;
        break;
      }
      case 43:
        th_set_int(L, "selected_version", th_read_u16(&d));
        break;
      case 51:
        if (elen == 2) {
          th_set_int(L, "key_share_group", th_read_u16(&d));
        } else {
          size_t kn;
          th_set_int(L, "key_share_group", th_read_u16(&d));
          if (th_read_vec(&d, 2, &kn)) th_set_int(L, "key_share_length", (lua_Integer)kn);
        }
        break;
      case 16: {
        size_t ln, pn;
        th_reader lr;
        const unsigned char *list = th_read_vec(&d, 2, &ln), *proto;
        if (!list) break;
        th_reader_init(&lr, list, ln);
        proto = th_read_vec(&lr, 1, &pn);
        if (proto) th_set_bytes(L, "alpn", proto, pn);
        break;
      }
      case 11: {
        size_t pn, k;
        const unsigned char *pf = th_read_vec(&d, 1, &pn);
        if (!pf) break;
        lua_createtable(L, (int)pn, 0);
        for (k = 0; k < pn; k++) {
          lua_pushinteger(L, pf[k]);
          lua_rawseti(L, -2, (int)k + 1);
        }
        lua_setfield(L, -2, "ec_point_formats");
        break;
      }
      case 15: th_set_int(L, "heartbeat", th_read_u8(&d)); break;
      case 1: th_set_int(L, "max_fragment_length", th_read_u8(&d)); break;
      case 23: th_set_bool(L, "extended_master_secret", 1); break;
      case 35: th_set_bool(L, "session_ticket", 1); break;
      case 22: th_set_bool(L, "encrypt_then_mac", 1); break;
      case 0: th_set_bool(L, "server_name", 1); break;
      case 5: th_set_bool(L, "status_request", 1); break;
      case 44: {
        size_t cn;
        const unsigned char *c = th_read_vec(&d, 2, &cn);
        if (c) th_set_bytes(L, "cookie", c, cn);  /* a HelloRetryRequest's, for the next hello */
        break;
      }
      default: break;
    }
    if (d.bad)
      th_flight_problem(f, "MALFORMED", "server_hello: extension %d is malformed", (int)type);
    lua_pop(L, 1);
  }
  if (e.bad) th_flight_problem(f, "MALFORMED", "server_hello: the extensions block is malformed");
  lua_setfield(L, -2, "extensions");
}

static void parse_server_hello(flight *f, const unsigned char *body, size_t n) {
  lua_State *L = f->L;
  th_reader r;
  unsigned version, suite, comp;
  const unsigned char *random, *sid;
  size_t sid_len;
  int reneg = 0;
  const th_suite *s;
  th_reader_init(&r, body, n);
  version = th_read_u16(&r);
  random = th_read_take(&r, 32);
  sid = th_read_vec(&r, 1, &sid_len);
  suite = th_read_u16(&r);
  comp = th_read_u8(&r);
  if (r.bad) {
    th_flight_problem(f, "MALFORMED", "server_hello: %d bytes, too short", (int)n);
    f->done = 1;
    return;
  }
  f->seen_sh = 1;
  f->suite = suite;
  lua_createtable(L, 0, 24);
  th_set_int(L, "version", version);
  th_set_bytes(L, "random", random, 32);
  th_set_bytes(L, "session_id", sid, sid_len);
  th_set_int(L, "suite", suite);
  s = th_suite_find(suite);
  if (s) th_set_string(L, "suite_name", s->openssl ? s->openssl : s->iana);
  th_set_int(L, "compression", comp);
  th_set_string(L, "compression_name", th_flight_lookup(compression_names, comp));
  f->hrr = memcmp(random, hrr_random, 32) == 0;
  th_set_bool(L, "hello_retry_request", f->hrr);
  th_set_bool(L, "extended_master_secret", 0);
  th_set_bool(L, "session_ticket", 0);
  th_set_bool(L, "encrypt_then_mac", 0);
  if (memcmp(random + 24, "DOWNGRD\001", 8) == 0) th_set_string(L, "downgrade", "tlsv1_2");
  else if (memcmp(random + 24, "DOWNGRD\000", 8) == 0) th_set_string(L, "downgrade", "tlsv1_1");
  if (th_reader_left(&r) > 0) parse_extensions(f, &r, &reneg);
  else {
    lua_newtable(L);
    lua_setfield(L, -2, "extensions");
  }
  th_set_bool(L, "secure_renegotiation", reneg);
  lua_getfield(L, -1, "selected_version");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    unsigned sel = (unsigned)lua_tointeger(L, -1);
    f->tls13 = sel == 0x0304;
    lua_pop(L, 1);
    th_set_string(L, "protocol", th_flight_version_name(sel));
  } else {
    lua_pop(L, 1);
    th_set_string(L, "protocol", th_flight_version_name(version));
  }
  lua_getfield(L, -1, "key_share_group");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    const th_group *g = th_group_find((unsigned)lua_tointeger(L, -1));
    lua_pop(L, 1);
    if (g) th_set_string(L, "key_share_group_name", g->name);
  } else {
    lua_pop(L, 1);
  }
  lua_setfield(L, f->result, "server_hello");
  /* TLS 1.3 encrypts everything after the ServerHello; a
   * HelloRetryRequest waits for the client's second hello. */
  if (f->tls13 || f->hrr) f->done = 1;
}

static void parse_certificate(flight *f, const unsigned char *body, size_t n) {
  lua_State *L = f->L;
  th_reader r, list;
  size_t total;
  const unsigned char *all;
  int count = 0;
  th_reader_init(&r, body, n);
  all = th_read_vec(&r, 3, &total);
  lua_newtable(L);
  if (!all) {
    th_flight_problem(f, "MALFORMED", "certificate: the list is cut short");
  } else {
    th_reader_init(&list, all, total);
    while (th_reader_left(&list) > 0) {
      size_t cn;
      const unsigned char *der = th_read_vec(&list, 3, &cn);
      if (!der) {
        th_flight_problem(f, "MALFORMED", "certificate: entry #%d is cut short", count + 1);
        break;
      }
      lua_pushlstring(L, (const char *)der, cn);
      lua_rawseti(L, -2, ++count);
    }
  }
  lua_setfield(L, f->result, "certificates");
}

/* The ServerKeyExchange is read according to the chosen suite's key
 * exchange (it carries no type of its own). */
static void parse_server_key_exchange(flight *f, const unsigned char *body, size_t n) {
  lua_State *L = f->L;
  const th_suite *s = th_suite_find(f->suite);
  const char *kx = s && s->kx ? s->kx : "";
  th_reader r;
  size_t len;
  const unsigned char *p;
  int psk = strcmp(kx, "DHE-PSK") == 0 || strcmp(kx, "ECDHE-PSK") == 0 ||
            strcmp(kx, "PSK") == 0 || strcmp(kx, "RSA-PSK") == 0;
  th_reader_init(&r, body, n);
  lua_createtable(L, 0, 6);
  th_set_int(L, "length", (lua_Integer)n);
  if (psk) {
    p = th_read_vec(&r, 2, &len);
    if (p) th_set_bytes(L, "psk_identity_hint", p, len);
  }
  if (strcmp(kx, "DHE") == 0 || strcmp(kx, "DHE-PSK") == 0) {
    const unsigned char *g;
    size_t glen, ylen;
    th_set_string(L, "kind", "dhe");
    p = th_read_vec(&r, 2, &len);
    g = th_read_vec(&r, 2, &glen);
    th_read_vec(&r, 2, &ylen);
    if (!r.bad) {
      th_set_int(L, "dh_bits", bit_length(p, len));
      th_set_bytes(L, "dh_p", p, len);
      th_set_bytes(L, "dh_g", g, glen);
    }
  } else if (strcmp(kx, "ECDHE") == 0 || strcmp(kx, "ECDHE-PSK") == 0) {
    unsigned type = th_read_u8(&r);
    th_set_string(L, "kind", "ecdhe");
    if (type == 3) {
      unsigned group = th_read_u16(&r);
      th_set_string(L, "curve_type", "named_curve");
      if (!r.bad) {
        const th_group *gr = th_group_find(group);
        th_set_int(L, "group", group);
        if (gr) th_set_string(L, "group_name", gr->name);
      }
    } else {
      th_set_string(L, "curve_type", type == 1 ? "explicit_prime" : type == 2 ? "explicit_char2" :
              "unknown");
    }
    if (type == 3 && th_read_vec(&r, 1, &len)) th_set_int(L, "point_length", (lua_Integer)len);
  } else if (strcmp(kx, "RSA") == 0) {
    size_t elen;
    th_set_string(L, "kind", "rsa");
    p = th_read_vec(&r, 2, &len);
    th_read_vec(&r, 2, &elen);
    if (!r.bad) th_set_int(L, "rsa_bits", bit_length(p, len));
  } else if (strcmp(kx, "SRP") == 0) {
    th_set_string(L, "kind", "srp");
    p = th_read_vec(&r, 2, &len);
    if (!r.bad) th_set_int(L, "srp_bits", bit_length(p, len));
  } else if (psk) {
    th_set_string(L, "kind", "psk");
  } else {
    th_set_string(L, "kind", "unknown");
  }
  if (r.bad) th_flight_problem(f, "MALFORMED", "server_key_exchange: %d bytes do not hold what the"
                               " suite's key exchange (%s) needs", (int)n, kx[0] ? kx : "unknown");
  lua_setfield(L, f->result, "server_key_exchange");
}

void th_flight_message(flight *f, unsigned type, const unsigned char *body, size_t n) {
  lua_State *L = f->L;
  const char *name = th_flight_lookup(message_names, type);
  lua_createtable(L, 0, 3);
  th_set_int(L, "type", type);
  th_set_string(L, "name", name);
  th_set_int(L, "length", (lua_Integer)n);
  lua_rawseti(L, f->messages, ++f->nmessages);
  if (type == 0) return;  /* HelloRequest: may come at any time */
  if (!f->seen_sh && type != 2) {
    th_flight_problem(f, "UNEXPECTED_MESSAGE", "%s (%d) before the server_hello",
                      name ? name : "message", (int)type);
    return;
  }
  switch (type) {
    case 2:
      if (f->seen_sh) th_flight_problem(f, "UNEXPECTED_MESSAGE", "a second server_hello");
      else parse_server_hello(f, body, n);
      break;
    case 11: parse_certificate(f, body, n); break;
    case 12: parse_server_key_exchange(f, body, n); break;
    case 13:
      lua_pushboolean(L, 1);
      lua_setfield(L, f->result, "certificate_request");
      break;
    case 22:
      lua_pushboolean(L, 1);
      lua_setfield(L, f->result, "certificate_status");
      break;
    case 14:
      lua_pushboolean(L, 1);
      lua_setfield(L, f->result, "server_hello_done");
      f->done = 1;
      break;
    default:
      th_flight_problem(f, "UNEXPECTED_MESSAGE", "%s (%d) in the server's first flight",
                        name ? name : "message", (int)type);
      break;
  }
}

const char *th_flight_alert_name(unsigned code) {
  return th_flight_lookup(alert_names, code);
}

const char *th_flight_extension_name(unsigned type) {
  return th_flight_lookup(extension_names, type);
}

void th_flight_alert(flight *f, const unsigned char *p, size_t n) {
  lua_State *L = f->L;
  if (n != 2) {
    th_flight_problem(f, "MALFORMED", "an alert record of %d bytes (2 expected)", (int)n);
    f->done = 1;
    return;
  }
  lua_createtable(L, 0, 4);
  th_set_int(L, "level", p[0]);
  th_set_string(L, "level_name", p[0] == 1 ? "warning" : p[0] == 2 ? "fatal" : NULL);
  th_set_int(L, "description", p[1]);
  th_set_string(L, "name", th_flight_lookup(alert_names, p[1]));
  lua_pushvalue(L, -1);
  lua_rawseti(L, f->alerts, ++f->nalerts);
  if (p[0] != 1 || p[1] == 0) {  /* fatal, unknown level, or close_notify: the end */
    lua_setfield(L, f->result, "alert");
    f->fatal_alert = 1;
    f->done = 1;
  } else {
    lua_pop(L, 1);
  }
}

