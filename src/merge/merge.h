/* The state of one merge, shared by the three files of the merge: merge.c
 * (layers in order, option and verifyext sets), settings.c (what each
 * setting may hold and when it lowers security) and report.c (the report
 * both write to). Calls run one way: merge.c -> settings.c -> report.c,
 * and merge.c -> report.c. Internal to those files. */
#ifndef TLSHARDEN_MERGE_H
#define TLSHARDEN_MERGE_H

#include "core/tlsharden.h"

#define NVERIFYEXT 4

/* The settings the merge treats specially; everything else is copied. */
enum {
  K_OTHER, K_PROTOCOL, K_OPTIONS, K_VERIFYEXT, K_CIPHERS, K_CIPHERSUITES, K_CURVESLIST,
  K_DEPTH, K_VERIFY, K_MODE, K_KEY, K_CERTIFICATE, K_CAFILE, K_CAPATH, K_DHPARAM,
  K_NAME, K_PROFILE
};

typedef struct merger {
  lua_State *L;
  const char *fn;          /* the public function, for messages */
  /* stack slots, fixed for the whole call; a list slot holds nil until
   * its first entry */
  int cfg, origin, changes, warnings, ignored;
  int ids;                 /* slot of layer 1's id; layer k's is ids + k - 1 */
  int nchanges, nwarnings, nignored;
  int layer;               /* position of the layer being applied */
  int layer_table;         /* its stack index */
  int strict, floor, mode;
  int have_range;
  th_range range;          /* the current protocol value, parsed */
  int protocol_from;       /* the layer that set it */
  int ciphers_from_profile;
  int has_options, has_verifyext;
  signed char opt[TH_NOPTIONS];    /* -1 unset, 0 off, 1 on */
  int opt_from[TH_NOPTIONS];       /* the layer that set it last */
  int opt_off[TH_NOPTIONS];        /* the layer that switched it off, 0 if on */
  signed char vx[NVERIFYEXT];
} merger;

/* --- the report (report.c) ----------------------------------------------- */

/* "layer 3" or "layer 'host ssl'" (pushed) for messages. */
const char *th_merge_layer_label(merger *m);
/* Raise "<fn>: <layer>: bad <key>: <message>". */
int th_merge_error(merger *m, const char *key, const char *message);
/* Push the id of the layer being applied. */
void th_merge_push_layer_id(merger *m);
/* Record an override of key: old at -2 and new at -1 are popped. */
void th_merge_record_change(merger *m, const char *key);
/* A change worth a warning (old at -2 and new at -1 are popped); with
 * lowers set under policy strict, an error instead. */
void th_merge_lowering(merger *m, const char *key, int lowers, const char *message);
/* Note in report.ignored: { layer, reason [, key] } (key: a stack index, or
 * 0 for none). */
void th_merge_ignore(merger *m, int key, const char *reason);

/* --- single settings (settings.c) ------------------------------------------ */

/* Apply one setting other than options and verifyext: the key at stack
 * index key, its value at value. */
void th_merge_setting(merger *m, int id, int key, int value, int is_profile);

#endif
