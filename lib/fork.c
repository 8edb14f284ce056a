/* fork() while executors exist: a child gets a copy of every executor's
 * memory but none of its threads, and a copy of every descriptor. The
 * handlers below count forks (an executor made before the last fork of this
 * process is a copy: every call on it fails) and close, in the child, the
 * descriptors registered here (process pools' channels to their workers), so
 * that a child never keeps the parent's workers alive.
 *
 * A descriptor is registered while it is open and unregistered and closed
 * under the same lock (cf__fork_close_fd), so a fork sees each one either open
 * and registered or closed: the child never closes a number it did not inherit
 * from us.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <pthread.h>
#include <unistd.h>

static atomic_uint generation;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_rc;

static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int *fds;
static size_t nfds, fds_cap;

static void before_fork(void)
{
    pthread_mutex_lock(&fd_lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&fd_lock);
}

static void after_fork_child(void)
{
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    nfds = 0;
    atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
    /* The copied pools have no threads here: a task or callback that forked
     * is no longer one of theirs (its waits would run their queues). */
    cf__thread_pool_forget_worker();
    cf__remote_forget_manager();
    pthread_mutex_unlock(&fd_lock);
}

static void install(void)
{
    once_rc =
        pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0 ? 0 : CF_ESYSTEM;
}

int cf__fork_init(void)
{
    pthread_once(&once, install);
    return once_rc;
}

unsigned cf__fork_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_relaxed);
}

int cf__fork_register_fd(int fd)
{
    int rc = 0;
    pthread_mutex_lock(&fd_lock);
    if (nfds == fds_cap) {
        size_t cap = fds_cap ? 2 * fds_cap : 16;
        int *grown = cf__realloc(fds, cap * sizeof *grown);
        if (grown) {
            fds = grown;
            fds_cap = cap;
        } else {
            rc = CF_ENOMEM;
        }
    }
    if (rc == 0)
        fds[nfds++] = fd;
    pthread_mutex_unlock(&fd_lock);
    return rc;
}

static void unregister_locked(int fd)
{
    for (size_t i = 0; i < nfds; i++) {
        if (fds[i] == fd) {
            fds[i] = fds[--nfds];
            break;
        }
    }
    if (nfds == 0) { /* the last pool went: give the memory back */
        cf__free(fds);
        fds = NULL;
        fds_cap = 0;
    }
}

void cf__fork_close_fd(int fd, void (*close_fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&fd_lock);
    unregister_locked(fd);
    if (close_fn)
        close_fn(arg);
    else
        close(fd);
    pthread_mutex_unlock(&fd_lock);
}
