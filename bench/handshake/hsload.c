/* hsload: complete TLS handshakes against a server on 127.0.0.1, one after
 * another, and report handshakes per second and the server's CPU time per
 * handshake (read from /proc/PID/stat when -P is given).
 *
 *   hsload -p PORT [-n COUNT] [-t SECONDS] [-r] [-P PID] [-V tls1_2|tls1_3]
 *          [-c CIPHERS] [-g GROUPS] [-w WARMUP]
 *
 * -r offers, on every connection, the newest session the server gave
 * (tickets or session ids, whatever the server uses), as a real client
 * reconnecting does. The run stops at COUNT
 * handshakes or after SECONDS, whichever comes first. Output is one line of
 * key=value pairs. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct options {
  int port, resume, pid, warmup;
  long count;
  double seconds;
  const char *version, *ciphers, *groups;
} options;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of a process in seconds, or -1. */
static double cpu_seconds(int pid) {
  char path[64], buf[1024];
  FILE *f;
  char *p;
  unsigned long ut = 0, st = 0;
  int field;
  if (pid <= 0) return -1;
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  if (!(f = fopen(path, "r"))) return -1;
  if (!fgets(buf, sizeof buf, f)) { fclose(f); return -1; }
  fclose(f);
  /* fields after the command name, which may contain spaces */
  p = strrchr(buf, ')');
  if (!p) return -1;
  p += 2;
  for (field = 3; field <= 15 && p; field++) {
    if (field == 14) ut = strtoul(p, NULL, 10);
    if (field == 15) st = strtoul(p, NULL, 10);
    p = strchr(p, ' ');
    if (p) p++;
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int connect_local(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct timeval tv = {5, 0};
  if (fd < 0) return -1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* The newest session the server gave us (TLS 1.3 tickets arrive late). */
static int keep_session(SSL *ssl, SSL_SESSION *sess) {
  SSL_SESSION **slot = SSL_get_app_data(ssl);
  if (!slot) return 0;
  if (*slot) SSL_SESSION_free(*slot);
  *slot = sess;
  return 1;
}

/* One handshake; returns 1 on success (and *reused), 0 on failure. */
static int handshake(SSL_CTX *ctx, int port, SSL_SESSION **session, int want_session,
                     int *reused, char *err, size_t errlen) {
  int fd = connect_local(port), ok = 0;
  SSL *ssl;
  if (fd < 0) {
    snprintf(err, errlen, "connect: %s", strerror(errno));
    return 0;
  }
  ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  /* Offer the newest session and keep the one the server sends back:
   * TLS 1.3 tickets may be single use. */
  if (want_session) {
    SSL_set_app_data(ssl, session);
    if (*session) SSL_set_session(ssl, *session);
  }
  if (SSL_connect(ssl) == 1) {
    char b[256];
    ok = 1;
    *reused = SSL_session_reused(ssl);
    /* Close and read what the server still sends (tickets, close_notify). */
    SSL_shutdown(ssl);
    if (want_session) while (SSL_read(ssl, b, sizeof b) > 0) {}
  } else {
    unsigned long e = ERR_get_error();
    ERR_error_string_n(e, err, errlen);
  }
  ERR_clear_error();
  SSL_set_app_data(ssl, NULL);
  SSL_free(ssl);
  close(fd);
  return ok;
}

static int usage(void) {
  fprintf(stderr, "usage: hsload -p PORT [-n COUNT] [-t SECONDS] [-r] [-P PID]"
                  " [-V tls1_2|tls1_3] [-c CIPHERS] [-g GROUPS] [-w WARMUP]\n");
  return 2;
}

int main(int argc, char **argv) {
  options o = {0, 0, 0, 20, 1000, 10.0, NULL, NULL, NULL};
  SSL_CTX *ctx;
  SSL_SESSION *session = NULL;
  long done = 0, failed = 0, reused_count = 0, i;
  double t0, t1, c0, c1;
  char err[256] = "";
  int opt;
  while ((opt = getopt(argc, argv, "p:n:t:rP:V:c:g:w:")) != -1) {
    switch (opt) {
      case 'p': o.port = atoi(optarg); break;
      case 'n': o.count = atol(optarg); break;
      case 't': o.seconds = atof(optarg); break;
      case 'r': o.resume = 1; break;
      case 'P': o.pid = atoi(optarg); break;
      case 'V': o.version = optarg; break;
      case 'c': o.ciphers = optarg; break;
      case 'g': o.groups = optarg; break;
      case 'w': o.warmup = atoi(optarg); break;
      default: return usage();
    }
  }
  if (o.port <= 0 || o.count <= 0 || o.seconds <= 0) return usage();

  ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return 1;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, keep_session);
  if (o.version) {
    int v = strcmp(o.version, "tls1_3") == 0 ? TLS1_3_VERSION :
            strcmp(o.version, "tls1_2") == 0 ? TLS1_2_VERSION : 0;
    if (!v) return usage();
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
  }
  if (o.ciphers && !SSL_CTX_set_cipher_list(ctx, o.ciphers)) return usage();
  if (o.groups && !SSL_CTX_set1_groups_list(ctx, o.groups)) return usage();

  /* Warm up (and get a session to resume). */
  for (i = 0; i < o.warmup || (o.resume && !session && i < o.warmup + 5); i++) {
    int reused;
    if (!handshake(ctx, o.port, &session, o.resume, &reused, err, sizeof err)) {
      fprintf(stderr, "hsload: warm-up handshake failed: %s\n", err);
      return 1;
    }
  }
  if (o.resume && !session) {
    fprintf(stderr, "hsload: the server gave no session to resume\n");
  }

  c0 = cpu_seconds(o.pid);
  t0 = now();
  while (done + failed < o.count && now() - t0 < o.seconds) {
    int reused = 0;
    if (handshake(ctx, o.port, &session, o.resume, &reused, err, sizeof err)) {
      done++;
      reused_count += reused;
    } else {
      failed++;
    }
  }
  t1 = now();
  c1 = cpu_seconds(o.pid);
  printf("handshakes=%ld failed=%ld resumed=%ld seconds=%.3f per_second=%.1f",
         done, failed, reused_count, t1 - t0, (double)done / (t1 - t0));
  if (c0 >= 0 && c1 >= 0 && done > 0)
    printf(" server_cpu=%.3f server_cpu_ms_per_handshake=%.4f", c1 - c0,
           (c1 - c0) * 1000.0 / (double)done);
  if (failed) printf(" last_error=\"%s\"", err);
  printf("\n");
  if (session) SSL_SESSION_free(session);
  SSL_CTX_free(ctx);
  return failed && !done ? 1 : 0;
}
