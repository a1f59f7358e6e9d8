/* Two Lua states in two threads use tlsharden at the same time. Built with
 * ThreadSanitizer (make threads): the C core is compiled into this program
 * with -fsanitize=thread, each thread opens its own lua_State, requires
 * tlsharden (Lua modules and the core) and runs spec/threads/work.lua,
 * which calls every function of the core many times and returns a digest
 * of the results. Both digests must be equal and non-empty, and
 * ThreadSanitizer must report nothing (it exits non-zero when it does).
 * Usage: threads WORK.lua CERT KEY CAFILE [THREADS [ROUNDS]] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_tlsharden_core(lua_State *L);

#define MAX_THREADS 8

typedef struct job {
  pthread_t thread;
  char **argv;
  int rounds;
  char digest[4096];
  char error[1024];
} job;

static void *run(void *arg) {
  job *j = (job *)arg;
  lua_State *L = luaL_newstate();
  if (!L) {
    snprintf(j->error, sizeof j->error, "cannot create a Lua state");
    return NULL;
  }
  luaL_openlibs(L);
  luaL_requiref(L, "tlsharden.core", luaopen_tlsharden_core, 0);
  lua_pop(L, 1);
  if (luaL_loadfile(L, j->argv[1]) != LUA_OK) goto fail;
  lua_pushstring(L, j->argv[2]);
  lua_pushstring(L, j->argv[3]);
  lua_pushstring(L, j->argv[4]);
  lua_pushinteger(L, j->rounds);
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) goto fail;
  snprintf(j->digest, sizeof j->digest, "%s", luaL_optstring(L, -1, ""));
  lua_close(L);
  return NULL;
fail:
  snprintf(j->error, sizeof j->error, "%s", lua_tostring(L, -1));
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  job jobs[MAX_THREADS];
  int n = argc > 5 ? atoi(argv[5]) : 2, rounds = argc > 6 ? atoi(argv[6]) : 50, i, status = 0;
  if (argc < 5 || n < 2 || n > MAX_THREADS || rounds < 1) {
    fprintf(stderr, "usage: %s WORK.lua CERT KEY CAFILE [THREADS 2..%d [ROUNDS]]\n", argv[0],
            MAX_THREADS);
    return 2;
  }
  memset(jobs, 0, sizeof jobs);
  for (i = 0; i < n; i++) {
    jobs[i].argv = argv;
    jobs[i].rounds = rounds;
    if (pthread_create(&jobs[i].thread, NULL, run, &jobs[i]) != 0) {
      fprintf(stderr, "threads: cannot start thread %d\n", i);
      return 2;
    }
  }
  for (i = 0; i < n; i++) pthread_join(jobs[i].thread, NULL);
  for (i = 0; i < n; i++) {
    if (jobs[i].error[0]) {
      fprintf(stderr, "threads: thread %d failed: %s\n", i, jobs[i].error);
      status = 1;
    } else if (!jobs[i].digest[0] || strcmp(jobs[i].digest, jobs[0].digest) != 0) {
      fprintf(stderr, "threads: thread %d got %s, thread 0 got %s\n", i, jobs[i].digest,
              jobs[0].digest);
      status = 1;
    }
  }
  if (status == 0) printf("threads: %d threads x %d rounds agree: %s\n", n, rounds, jobs[0].digest);
  return status;
}
