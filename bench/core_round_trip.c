// core_round_trip.c: how far apart two cores are, seen from user space: the round trip of a cache
// line between two processes pinned to cores A and B (default 0 and 1), and the copy rate of 16 MB
// that the other core has just written. On the 2-core KVM guests of docs/strategies.md ("Two modes
// of this guest", issue 10, eighth pass) it tells whether the host has put the two vCPUs on cores
// that share a cache (80-100 ns) or not (330-380 ns), which data x model's timings depend on.
// Build and run: cc -O2 -o /tmp/core_round_trip bench/core_round_trip.c && /tmp/core_round_trip [A B]
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    perror("sched_setaffinity");
    exit(1);
  }
}

int main(int argc, char** argv) {
  const int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
  const int trips = 200000, copies = 20;
  const size_t bytes = (size_t)16 << 20;
  volatile long* flag = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char* shared = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  char* copy = malloc(bytes);
  if (flag == MAP_FAILED || shared == MAP_FAILED || copy == NULL) {
    perror("memory");
    return 1;
  }
  memset(shared, 1, bytes);
  memset(copy, 0, bytes);
  flag[0] = flag[8] = 0;  // two counters on separate cache lines
  const pid_t child = fork();
  if (child == 0) {
    pin(b);
    for (long i = 0; i < trips; ++i) {
      while (flag[0] != 2 * i + 1) {}
      flag[0] = 2 * i + 2;
    }
    for (long r = 0; r < copies; ++r) {  // writes the buffer, so that its lines are in core b's cache
      while (flag[8] != 2 * r + 1) {}
      memset(shared, (int)r, bytes);
      __sync_synchronize();
      flag[8] = 2 * r + 2;
    }
    _exit(0);
  }
  pin(a);
  const double start = now();
  for (long i = 0; i < trips; ++i) {
    flag[0] = 2 * i + 1;
    while (flag[0] != 2 * i + 2) {}
  }
  const double trip = (now() - start) / trips;
  double copying = 0;
  for (long r = 0; r < copies; ++r) {
    flag[8] = 2 * r + 1;
    while (flag[8] != 2 * r + 2) {}
    const double t = now();
    memcpy(copy, shared, bytes);
    copying += now() - t;
  }
  waitpid(child, NULL, 0);
  printf("cores %d and %d: round trip %.0f ns, copy of the other core's 16 MB %.2f GB/s\n", a, b, trip * 1e9,
         (double)copies * bytes / copying / 1e9);
  return 0;
}
