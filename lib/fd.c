/* Descriptors the library opens must never take 0, 1 or 2: a program that
 * closed them (a daemon) would later see its own output go to a socket, and
 * libuv asserts that a descriptor it closes is not a standard one.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#if defined(__SANITIZE_THREAD__)
/* From the sanitizers' linux_syscall_hooks.h (not shipped with gcc). */
void __sanitizer_syscall_pre_impl_close(long fd);
void __sanitizer_syscall_post_impl_close(long res, long fd);
#endif

int cf__fd_above_stdio(int fd)
{
    return cf__fd_at_least(fd, 3);
}

int cf__fd_at_least(int fd, int min)
{
    if (fd < 0 || fd >= min)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, min);
    /* EINVAL: the descriptor limit is min or less, no room at all. */
    int err = moved < 0 && errno == EINVAL ? EMFILE : errno;
    close(fd);
    errno = err;
    return moved;
}

bool cf__fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

void cf__stdio_hold(int held[3])
{
    for (int fd = 0; fd < 3; fd++) {
        held[fd] = -1;
        if (cf__fd_is_open(fd))
            continue;
        /* open() takes the lowest free number: this one, unless another
         * thread was quicker (then that one is not ours to close). */
        int got = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (got == fd)
            held[fd] = fd;
        else if (got >= 0)
            close(got);
    }
}

void cf__stdio_release(const int held[3])
{
    for (int fd = 0; fd < 3; fd++)
        if (held[fd] >= 0)
            close(held[fd]);
}

void cf__fd_closing_unseen(int fd)
{
#if defined(__SANITIZE_THREAD__)
    /* libuv closes its handles' descriptors with a raw system call, which
     * ThreadSanitizer does not see: tell it, or it takes the next open()
     * that reuses the number for a race with the one that made this one. */
    __sanitizer_syscall_pre_impl_close(fd);
    __sanitizer_syscall_post_impl_close(0, fd);
#else
    (void)fd;
#endif
}

int cf__fd_check_room(int n)
{
    int fds[16], opened = 0, err = 0;
    if (n > 16)
        n = 16;
    while (opened < n) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[opened++] = fd;
    }
    while (opened > 0)
        close(fds[--opened]);
    errno = err;
    return err ? -1 : 0;
}
