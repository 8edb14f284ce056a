/* Starting a worker process and learning how it ended (spawn.c). Never
 * installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_SPAWN_H
#define CF_SPAWN_H

#include "remote.h"

/* Where the child finds its descriptors; what the parent gives it must be
 * at CF__SPAWN_FD_FIRST or above, so that placing one never overwrites
 * another. */
enum {
    CF__SPAWN_FD_IN = 3,
    CF__SPAWN_FD_OUT = 4,
    CF__SPAWN_FD_SHM = 5,
    CF__SPAWN_FD_FIRST = 6,
};

typedef struct cf__spawn {
    /* exec: the program to run, its argv and environment */
    const char *path;
    char *const *argv;
    char *const *envp;
    /* fork (instead of exec, when set): runs in the child, which has its
     * descriptors as below; does not return */
    void (*fork_main)(int in, int out, int shm);
    /* The child's descriptors, all at CF__SPAWN_FD_FIRST or above: */
    int channel_in;  /* the read end of the pipe it gets frames from: its 3 */
    int channel_out; /* the write end of the pipe it replies on: its 4 */
    int shm;         /* the memory shared with it (a memfd), or -1: its 5 */
    int devnull;     /* /dev/null, open read-write (not 0-2) */
    /* results */
    int pid;
    int pidfd; /* close-on-exec, not 0-2 */
} cf__spawn;

/* Start the worker s describes, from the calling thread (whose signal mask
 * it inherits: the manager thread blocks them all). Blocks until the child
 * has exec'd (or forked). 0, or CF_ESYSTEM with the cause in why. */
int cf__spawn_worker(cf__spawn *s, char *why, size_t cap);

/* How the process behind pidfd ended, without blocking: 0 and *e, or
 * CF_ETIMEDOUT while it runs. When something else reaped it first (a
 * program's own waitpid(-1), or SIGCHLD ignored), e says so, with its status
 * where the kernel still keeps it. */
int cf__spawn_wait(int pidfd, cf__worker_exit *e);

#endif /* CF_SPAWN_H */
