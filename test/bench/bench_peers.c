/* cf-bench --compare: the peer systems, in the order they run, with the
 * workloads each runs. A peer whose library meson did not find is listed
 * with what is missing, and skipped with a note.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <string.h>

#ifdef CF_BENCH_HAVE_GLIB
#define GLIB_RUN bench_glib_run
#else
#define GLIB_RUN NULL
#endif

#ifdef CF_BENCH_HAVE_TBB
#define TBB_RUN bench_tbb_run
#else
#define TBB_RUN NULL
#endif

#ifdef CF_BENCH_HAVE_PTHREADPOOL
#define PTHREADPOOL_RUN bench_pthreadpool_run
#else
#define PTHREADPOOL_RUN NULL
#endif

#ifdef CF_BENCH_HAVE_OPENMP
#define OPENMP_RUN bench_openmp_run
#else
#define OPENMP_RUN NULL
#endif

static const bench_peer peers[] = {
    { "glib-thread", false, BENCH_CLASSIC_FIVE, GLIB_RUN,
      "glib-2.0 not found at build time (libglib2.0-dev)", NULL },
    { "libuv-thread", false, BENCH_CLASSIC_FIVE, bench_uv_run, NULL, NULL },
    { "tbb-thread", false,
      BENCH_BIT(BENCH_EMPTY_THROUGHPUT) | BENCH_BIT(BENCH_ROUNDTRIP_LATENCY) |
          BENCH_BIT(BENCH_MAP_CHUNKED) | BENCH_BIT(BENCH_NESTED_FIB),
      TBB_RUN, "a C++ compiler or tbb not found at build time (g++, libtbb-dev)", NULL },
    { "pthreadpool-thread", false, BENCH_BIT(BENCH_MAP_CHUNKED), PTHREADPOOL_RUN,
      "pthreadpool not found at build time (libpthreadpool-dev)", NULL },
    { "openmp-thread", false, BENCH_BIT(BENCH_MAP_CHUNKED), OPENMP_RUN,
      "OpenMP not found at build time (gcc's libgomp, or libomp-dev for clang)", NULL },
    /* The floors: no executor, the transport alone. */
    { "pipe-poll", true, BENCH_BIT(BENCH_ROUNDTRIP_LATENCY), bench_pipe_poll_run, NULL,
      "8-byte pipe ping-pong, 2 processes, non-blocking reads in a loop" },
    { "pipe-block", true, BENCH_BIT(BENCH_ROUNDTRIP_LATENCY), bench_pipe_block_run, NULL,
      "8-byte pipe ping-pong, 2 processes, blocking reads" },
    { "socket-poll", true, BENCH_BIT(BENCH_ROUNDTRIP_LATENCY), bench_socket_poll_run, NULL,
      "8-byte ping-pong over a socket pair (a one-descriptor channel), non-blocking reads" },
    { "spin", false, BENCH_BIT(BENCH_ROUNDTRIP_LATENCY), bench_spin_run, NULL,
      "2 threads spinning on 2 shared cache lines" },
};

size_t bench_peer_count(void)
{
    return sizeof peers / sizeof peers[0];
}

const bench_peer *bench_peer_at(size_t i)
{
    return i < bench_peer_count() ? &peers[i] : NULL;
}

const bench_peer *bench_peer_find(const char *system)
{
    for (size_t i = 0; i < bench_peer_count(); i++)
        if (strcmp(peers[i].system, system) == 0)
            return &peers[i];
    return NULL;
}
