/* The key exchange groups of IANA's "TLS Supported Groups" registry, as a
 * scanner offers and reports them, with the OpenSSL names a key share is
 * generated from. */
#include <string.h>

#include "core/tlsharden.h"

#define G(id, name, kind, bits, tls13, alg, curve) {id, name, kind, alg, curve, bits, tls13}

/* Sorted by id. bits: the key size as OpenSSL's EVP_PKEY_get_bits gives it
 * (x25519: 253, as testssl.sh says too), for a hybrid its classical part's.
 * alg/curve: how OpenSSL generates a key for the group (NULL when it cannot
 * here). */
static const th_group registry[] = {
  G(1, "sect163k1", "ec", 163, 0, "EC", "sect163k1"),
  G(2, "sect163r1", "ec", 163, 0, "EC", "sect163r1"),
  G(3, "sect163r2", "ec", 163, 0, "EC", "sect163r2"),
  G(4, "sect193r1", "ec", 193, 0, "EC", "sect193r1"),
  G(5, "sect193r2", "ec", 193, 0, "EC", "sect193r2"),
  G(6, "sect233k1", "ec", 233, 0, "EC", "sect233k1"),
  G(7, "sect233r1", "ec", 233, 0, "EC", "sect233r1"),
  G(8, "sect239k1", "ec", 239, 0, "EC", "sect239k1"),
  G(9, "sect283k1", "ec", 283, 0, "EC", "sect283k1"),
  G(10, "sect283r1", "ec", 283, 0, "EC", "sect283r1"),
  G(11, "sect409k1", "ec", 409, 0, "EC", "sect409k1"),
  G(12, "sect409r1", "ec", 409, 0, "EC", "sect409r1"),
  G(13, "sect571k1", "ec", 571, 0, "EC", "sect571k1"),
  G(14, "sect571r1", "ec", 571, 0, "EC", "sect571r1"),
  G(15, "secp160k1", "ec", 160, 0, "EC", "secp160k1"),
  G(16, "secp160r1", "ec", 160, 0, "EC", "secp160r1"),
  G(17, "secp160r2", "ec", 160, 0, "EC", "secp160r2"),
  G(18, "secp192k1", "ec", 192, 0, "EC", "secp192k1"),
  G(19, "secp192r1", "ec", 192, 0, "EC", "prime192v1"),
  G(20, "secp224k1", "ec", 224, 0, "EC", "secp224k1"),
  G(21, "secp224r1", "ec", 224, 0, "EC", "secp224r1"),
  G(22, "secp256k1", "ec", 256, 0, "EC", "secp256k1"),
  G(23, "secp256r1", "ec", 256, 1, "EC", "prime256v1"),
  G(24, "secp384r1", "ec", 384, 1, "EC", "secp384r1"),
  G(25, "secp521r1", "ec", 521, 1, "EC", "secp521r1"),
  G(26, "brainpoolP256r1", "ec", 256, 0, "EC", "brainpoolP256r1"),
  G(27, "brainpoolP384r1", "ec", 384, 0, "EC", "brainpoolP384r1"),
  G(28, "brainpoolP512r1", "ec", 512, 0, "EC", "brainpoolP512r1"),
  G(29, "x25519", "ecx", 253, 1, "X25519", NULL),
  G(30, "x448", "ecx", 448, 1, "X448", NULL),
  G(31, "brainpoolP256r1tls13", "ec", 256, 1, "EC", "brainpoolP256r1"),
  G(32, "brainpoolP384r1tls13", "ec", 384, 1, "EC", "brainpoolP384r1"),
  G(33, "brainpoolP512r1tls13", "ec", 512, 1, "EC", "brainpoolP512r1"),
  G(34, "GC256A", "gost", 256, 1, NULL, NULL),
  G(35, "GC256B", "gost", 256, 1, NULL, NULL),
  G(36, "GC256C", "gost", 256, 1, NULL, NULL),
  G(37, "GC256D", "gost", 256, 1, NULL, NULL),
  G(38, "GC512A", "gost", 512, 1, NULL, NULL),
  G(39, "GC512B", "gost", 512, 1, NULL, NULL),
  G(40, "GC512C", "gost", 512, 1, NULL, NULL),
  G(41, "curveSM2", "ec", 256, 1, NULL, NULL),
  G(256, "ffdhe2048", "ffdhe", 2048, 1, "DH", "ffdhe2048"),
  G(257, "ffdhe3072", "ffdhe", 3072, 1, "DH", "ffdhe3072"),
  G(258, "ffdhe4096", "ffdhe", 4096, 1, "DH", "ffdhe4096"),
  G(259, "ffdhe6144", "ffdhe", 6144, 1, "DH", "ffdhe6144"),
  G(260, "ffdhe8192", "ffdhe", 8192, 1, "DH", "ffdhe8192"),
  G(512, "MLKEM512", "kem", 512, 1, NULL, NULL),
  G(513, "MLKEM768", "kem", 768, 1, NULL, NULL),
  G(514, "MLKEM1024", "kem", 1024, 1, NULL, NULL),
  G(4587, "SecP256r1MLKEM768", "hybrid", 256, 1, NULL, NULL),
  G(4588, "X25519MLKEM768", "hybrid", 253, 1, NULL, NULL),
  G(4589, "SecP384r1MLKEM1024", "hybrid", 384, 1, NULL, NULL),
  G(25497, "X25519Kyber768Draft00", "hybrid", 253, 1, NULL, NULL),
  G(25498, "SecP256r1Kyber768Draft00", "hybrid", 256, 1, NULL, NULL),
  G(65281, "arbitrary_explicit_prime_curves", "explicit", 0, 0, NULL, NULL),
  G(65282, "arbitrary_explicit_char2_curves", "explicit", 0, 0, NULL, NULL),
  {0, NULL, NULL, NULL, NULL, 0, 0}
};

#define NGROUPS ((int)(sizeof registry / sizeof registry[0]) - 1)

const th_group *th_group_find(unsigned id) {
  int lo = 0, hi = NGROUPS;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (registry[mid].id == id) return &registry[mid];
    if (registry[mid].id < id) lo = mid + 1; else hi = mid;
  }
  return NULL;
}

const th_group *th_group_named(const char *name, size_t len) {
  int i;
  if (strlen(name) != len) return NULL;
  for (i = 0; i < NGROUPS; i++)
    if (strcmp(registry[i].name, name) == 0) return &registry[i];
  return NULL;
}

static void push_group(lua_State *L, const th_group *g) {
  lua_createtable(L, 0, 6);
  th_set_int(L, "id", (lua_Integer)g->id);
  th_set_string(L, "name", g->name);
  th_set_string(L, "kind", g->kind);
  th_set_int(L, "bits", g->bits);
  th_set_bool(L, "tls13", g->tls13);
  th_set_bool(L, "key_share", g->alg != NULL);
}

/* tlsharden.wire.groups(): the group registry, in id order. */
int th_groups_list(lua_State *L) {
  int i;
  if (!lua_isnoneornil(L, 1))
    return th_arg_error(L, "wire.groups", 1, NULL, "expected no argument, got %s",
                    luaL_typename(L, 1));
  lua_createtable(L, NGROUPS, 0);
  for (i = 0; i < NGROUPS; i++) {
    push_group(L, &registry[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}
