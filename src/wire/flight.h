/* What the two halves of the first-flight parser share: flight.c (records,
 * SSLv2, the result) and flight_messages.c (TLS handshake messages and
 * alerts). Internal to those two files. */
#ifndef TLSHARDEN_FLIGHT_H
#define TLSHARDEN_FLIGHT_H

#include <stdint.h>

#include "core/tlsharden.h"

#define FN "parse_server_flight"
#define RECORD_LIMIT (16384 + 2048)  /* RFC 5246 6.2.3: a record's largest payload */
#define MAX_EXT_TYPES 64

typedef struct named { unsigned code; const char *name; } named;
/* The name of code in t, or NULL. */
const char *th_flight_lookup(const named *t, unsigned code);
#define lookup th_flight_lookup

/* ---- a bounds-checked reader ---- */

typedef struct reader {
  const unsigned char *p;
  size_t len, off;
  int bad;
} reader;

static inline void reader_init(reader *r, const unsigned char *p, size_t len) {
  r->p = p;
  r->len = len;
  r->off = 0;
  r->bad = 0;
}
static inline size_t left(const reader *r) { return r->bad ? 0 : r->len - r->off; }
static inline unsigned u8(reader *r) {
  if (left(r) < 1) { r->bad = 1; return 0; }
  return r->p[r->off++];
}
static inline unsigned u16(reader *r) { unsigned a = u8(r); return (a << 8) | u8(r); }
static inline unsigned long u24(reader *r) { unsigned long a = u8(r); return (a << 16) | u16(r); }
static inline const unsigned char *take(reader *r, size_t n) {
  const unsigned char *p;
  if (left(r) < n) { r->bad = 1; return NULL; }
  p = r->p + r->off;
  r->off += n;
  return p;
}
/* A length-prefixed vector (prefix of size bytes); sets *n. */
static inline const unsigned char *vec(reader *r, int size, size_t *n) {
  *n = size == 1 ? u8(r) : size == 2 ? u16(r) : u24(r);
  return take(r, *n);
}

/* Bit length of a big-endian unsigned integer. */
static inline int bit_length(const unsigned char *p, size_t n) {
  int bits;
  unsigned c;
  while (n > 0 && *p == 0) { p++; n--; }
  if (n == 0) return 0;
  bits = (int)(n - 1) * 8;
  for (c = *p; c; c >>= 1) bits++;
  return bits;
}

/* ---- the result being built ---- */

typedef struct flight {
  lua_State *L;
  int result, findings, messages, alerts;  /* stack indices */
  int nfindings, nmessages, nalerts, records;
  int done;
  size_t need;
  int seen_sh, tls13, hrr, sslv2, not_tls, fatal_alert, closed;
  uint32_t suite;
} flight;

/* Append { code = code, message = ... } to the findings; leaves it on top
 * of the stack for extra fields, popped by the caller with lua_pop. */
void th_flight_finding(flight *f, const char *code, const char *fmt, ...);
#define finding_open th_flight_finding
#define finding(f, ...) do { th_flight_finding(f, __VA_ARGS__); lua_pop((f)->L, 1); } while (0)

/* "sslv3" ... "tlsv1_3" for a wire version, or NULL. */
static inline const char *version_name(unsigned wire) {
  int sv = th_wire_sv((int)wire);
  return sv >= 0 ? th_suite_version_name(sv) : NULL;
}
/* A complete handshake message (type, body) or alert record (flight_messages.c). */
void th_flight_message(flight *f, unsigned type, const unsigned char *body, size_t n);
void th_flight_alert(flight *f, const unsigned char *p, size_t n);

#endif
