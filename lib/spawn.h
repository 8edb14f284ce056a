/* Starting a worker process and learning how it ended (spawn.c). Never
 * installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_SPAWN_H
#define CF_SPAWN_H

#include "remote.h"

typedef struct cf__spawn {
    /* exec: the program to run, its argv and environment */
    const char *path;
    char *const *argv;
    char *const *envp;
    /* fork (instead of exec, when set): runs in the child on fd 3 */
    void (*fork_main)(int fd); /* does not return */
    int channel;               /* the child's end of its channel (not 0-2) */
    int devnull;               /* /dev/null, open read-write (not 0-2) */
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
