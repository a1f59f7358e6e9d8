/* The one byte reader of the wire parsers (TLS records and handshake
 * messages in the flight parser, DNS messages in dns_parse.c): a
 * bounds-checked cursor over bytes. A read past the end returns 0 or NULL
 * and marks the reader bad, so that a parser can read a whole structure
 * and check once. A reader may start at an offset (th_reader_seek), so
 * that one over a DNS record's data still counts the message's bytes. */
#ifndef TLSHARDEN_READER_H
#define TLSHARDEN_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct th_reader {
  const unsigned char *p;
  size_t len, off;
  int bad;
} th_reader;

static inline void th_reader_init(th_reader *r, const unsigned char *p, size_t len) {
  r->p = p;
  r->len = len;
  r->off = 0;
  r->bad = 0;
}

/* Move to offset off (within the bytes, else the reader turns bad). */
static inline void th_reader_seek(th_reader *r, size_t off) {
  if (off > r->len) r->bad = 1;
  else r->off = off;
}

/* The bytes still to read; 0 once the reader is bad. */
static inline size_t th_reader_left(const th_reader *r) {
  return r->bad ? 0 : r->len - r->off;
}

static inline unsigned th_read_u8(th_reader *r) {
  if (th_reader_left(r) < 1) {
    r->bad = 1;
    return 0;
  }
  return r->p[r->off++];
}

static inline unsigned th_read_u16(th_reader *r) {
  unsigned a = th_read_u8(r);
  return (a << 8) | th_read_u8(r);
}

static inline unsigned long th_read_u24(th_reader *r) {
  unsigned long a = th_read_u8(r);
  return (a << 16) | th_read_u16(r);
}

static inline uint32_t th_read_u32(th_reader *r) {
  uint32_t a = th_read_u16(r);
  return (a << 16) | th_read_u16(r);
}

/* The next n bytes, or NULL when fewer are left. */
static inline const unsigned char *th_read_take(th_reader *r, size_t n) {
  const unsigned char *p;
  if (th_reader_left(r) < n) {
    r->bad = 1;
    return NULL;
  }
  p = r->p + r->off;
  r->off += n;
  return p;
}

/* A vector behind a length prefix of size (1, 2 or 3) bytes; sets *n. */
static inline const unsigned char *th_read_vec(th_reader *r, int size, size_t *n) {
  *n = size == 1 ? th_read_u8(r) : size == 2 ? th_read_u16(r) : th_read_u24(r);
  return th_read_take(r, *n);
}

#endif
