/*
 * An LD_PRELOAD for the MPI comparator: Open MPI's idle ranks spin in opal_progress(), calling
 * sched_yield() between polls when mpi_yield_when_idle is set. On a 2-core machine emulating 16
 * hosts, 16 spinning ranks starve the few that have data to move, and the MPI_Bcast time
 * measures the CPU, not the network. This turns each sched_yield() into a short sleep
 * (IMGCAST_YIELD_SLEEP_US, default 50 us), so an idle rank costs almost nothing and a busy one
 * runs; the latency it adds per poll is far below a chunk's time on a 200 Mbit/s link.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <time.h>

int sched_yield(void) {
  static long sleep_ns = -1;
  if (sleep_ns < 0) {
    const char* text = getenv("IMGCAST_YIELD_SLEEP_US");
    sleep_ns = (text != NULL ? atol(text) : 50) * 1000;
  }
  struct timespec pause = {0, sleep_ns};
  nanosleep(&pause, NULL);
  return 0;
}
