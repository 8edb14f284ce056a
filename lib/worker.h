/* The worker side of a remote pool: the serve loop (worker.c) and, for
 * process workers, how a process becomes one (worker_entry.c). Never
 * installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_WORKER_H
#define CF_WORKER_H

#include "internal.h"

#include "wire.h"

#include <stddef.h>

/* Exit statuses of a process worker that gives up (the parent reports them). */
enum {
    CF__WORKER_EXIT_PROTOCOL = 111, /* a frame it cannot make sense of */
    CF__WORKER_EXIT_NOMEM = 112,
    CF__WORKER_EXIT_IO = 113,    /* its channel failed: the parent is gone */
    CF__WORKER_EXIT_SETUP = 114, /* it could not become a worker */
};

/* How the serve loop reaches its pool: the transport's side of a worker. */
typedef struct cf__serve_io {
    void *ctx;
    /* Block until bytes come: how many were read (> 0), 0 at the end, < 0
     * on an error (both end the loop). */
    ptrdiff_t (*read)(void *ctx, void *buf, size_t cap);
    /* Write all len bytes: 0, or nonzero when the pool is gone. */
    int (*write)(void *ctx, const void *buf, size_t len);
    /* Why a function of the main program cannot be found here (a helper
     * worker cannot load the main program), or NULL. */
    const char *main_program_hint;
    /* The memory shared with the pool (mapped by the transport before the
     * loop starts), or NULL: where a parallel loop's output slice may go
     * (see cf__shm_header in wire.h). */
    cf__shm_header *shm; /* CF__SHM_BYTES mapped */
} cf__serve_io;

/* Serve tasks until the pool says to stop, closes the channel or a failure
 * ends it: returns the exit status (0 when told to stop or at the end). */
int cf__serve(const cf__serve_io *io);

/* Process workers (worker_entry.c). The command line a worker process is
 * started with: argv[1] is one of these, argv[2] "<in>:<out>:<shm>:<parent
 * pid>" (the read end of the pipe its frames come on, the write end of the
 * pipe it replies on, the memfd it shares with the pool or -1), and for the
 * helper argv[3] the libcfutures it must load. */
#define CF__WORKER_FLAG "--cfutures-worker"             /* served from main's place */
#define CF__WORKER_FLAG_EARLY "--cfutures-worker-early" /* from a constructor */
/* Whether this process started through the library's __libc_start_main
 * (libcfutures was linked into the program and took over its entry): then a
 * re-run of the program can become a worker before main, after every static
 * initialiser. */
bool cf__worker_entry_interposed(void);
/* Become a worker on the pipes `in` and `out` (with the memory `shm`, or
 * -1): reset the signals, serve, _exit. For a process made by fork(). */
_Noreturn void cf__worker_run_forked(int in, int out, int shm);
/* In a process worker: the descriptor it replies on, else -1 (for tests that
 * garble replies). */
int cf__worker_reply_fd(void);
/* The helper program's entry (exported for lib/worker_helper.c, which loads
 * libcfutures by path and calls it): argv as above. Returns only when argv is
 * not a worker's. */
CF_API int cf__worker_main(int argc, char **argv);
/* Another library's workers (libcfutures-mpi's spawned ranks): a re-run of
 * the program whose argv[1] is `flag` (which starts "--cfutures-" and lives
 * as long as the process) calls entry instead of main, after every static
 * initialiser; what entry returns is the exit status. Register from a
 * constructor. 0, or CF_ENOMEM when the few places are taken. */
typedef int (*cf__worker_entry_fn)(int argc, char **argv, char **envp);
int cf__worker_entry_register(const char *flag, cf__worker_entry_fn entry);

#endif /* CF_WORKER_H */
