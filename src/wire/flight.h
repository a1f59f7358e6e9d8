/* The state of one parse of a server's first flight, shared by the three
 * files of the flight parser: flight.c frames the records and builds the
 * result, flight_messages.c reads the handshake messages and alerts, and
 * both add to the result through flight_result.c. Internal to those three
 * files; calls run flight.c -> flight_messages.c -> flight_result.c. */
#ifndef TLSHARDEN_FLIGHT_H
#define TLSHARDEN_FLIGHT_H

#include <stdint.h>

#include "core/tlsharden.h"
#include "wire/reader.h"

/* A code and its registry name, in a table ended by a NULL name. */
typedef struct th_named {
  unsigned code;
  const char *name;
} th_named;

/* One parse: the result tables on the stack and what was seen so far. */
typedef struct flight {
  lua_State *L;
  int result, problems, messages, alerts;  /* stack indices */
  int nproblems, nmessages, nalerts, records;
  int done;
  size_t need;
  int seen_sh, tls13, hrr, sslv2, not_tls, fatal_alert, closed;
  uint32_t suite;
} flight;

/* --- the result (flight_result.c) --------------------------------------- */

/* The name of code in t, or NULL. */
const char *th_flight_lookup(const th_named *t, unsigned code);
/* "sslv3" ... "tlsv1_3" for a wire version, or NULL. */
const char *th_flight_version_name(unsigned wire);
/* Append a problem record { severity = "warning", code = code, message =
 * ... } to the result's problems. */
void th_flight_problem(flight *f, const char *code, const char *fmt, ...);
/* The same, leaving the record on top of the stack for more fields (the
 * caller pops it). */
void th_flight_problem_open(flight *f, const char *code, const char *fmt, ...);

/* --- handshake messages and alerts (flight_messages.c) -------------------- */

/* A complete handshake message (type, body) or alert record. */
void th_flight_message(flight *f, unsigned type, const unsigned char *body, size_t n);
void th_flight_alert(flight *f, const unsigned char *p, size_t n);
/* The registry name of an alert description, or NULL. */
const char *th_flight_alert_name(unsigned code);
/* The registry name of an extension type, or NULL. */
const char *th_flight_extension_name(unsigned type);

#endif
