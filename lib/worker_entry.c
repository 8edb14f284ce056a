/* How a process becomes a process-pool worker: started by its pool with
 * argv[1] = CF__WORKER_FLAG and argv[2] = "<in>:<out>:<shm>:<parent pid>":
 * the descriptors of its channel's two pipes and of the memory it shares
 * with its pool (-1 for none; see worker.h).
 *
 * - Re-running the program (the exec start method): this library defines
 *   __libc_start_main, which the program's startup code calls once every
 *   static initialiser has run (C++ globals included) and just before it
 *   would call main. When libcfutures is linked into the program it comes
 *   before libc in the symbol search order, so ours is the one called: it
 *   hands libc's a different main, the serve loop. (Where ours is not the
 *   one called, a constructor can still serve, earlier; CF__WORKER_FLAG_EARLY.)
 * - The helper program (lib/worker_helper.c) loads this library and calls
 *   cf__worker_main.
 * - A fork() of the pool's manager thread calls cf__worker_run_forked.
 * - Another library's workers (an MPI rank spawned from the program) are
 *   the program re-run with that library's flag: __libc_start_main hands
 *   libc companion_or_main, which calls the entry the library registered.
 * Whatever the way, a worker starts with every signal at its default action
 * and unblocked, and its channel close-on-exec (the shared memory mapped and
 * its descriptor closed), so that what a task starts
 * inherits nothing of the pool. A command line that is not a real worker's
 * (a stale copy, or a program whose first argument happens to match) is
 * ignored: main runs as usual.
 * SPDX-License-Identifier: MIT */
#include "worker.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static int channel_fd = -1;
static const char *main_program_hint;
static bool interposed;

int cf__worker_reply_fd(void)
{
    return channel_fd;
}

bool cf__worker_entry_interposed(void)
{
    return interposed;
}

/* ------------------------------------------------------------------------ */
/* The serve loop over the channel                                           */
/* ------------------------------------------------------------------------ */

/* How long an idle worker polls its channel before it blocks in poll():
 * being woken from a blocking wait costs more than a small task. */
#define POLL_NS 50000u

/* The channel: the pipe frames come on (non-blocking, ours alone) and the
 * pipe replies go on. */
typedef struct channel {
    int in, out;
} channel;

static ptrdiff_t channel_read(void *ctx, void *buf, size_t cap)
{
    channel *c = ctx;
    bool spin = cf__cpu_count() > 1;
    uint64_t start = spin ? uv_hrtime() : 0;
    for (;;) {
        ssize_t n = read(c->in, buf, cap);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR))
            return n;
        if (spin && uv_hrtime() - start < POLL_NS) {
            sched_yield();
            continue;
        }
        struct pollfd pfd = { .fd = c->in, .events = POLLIN };
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -1;
    }
}

static int channel_write(void *ctx, const void *buf, size_t len)
{
    int fd = ((channel *)ctx)->out;
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* The memory the pool shares with us: mapped, and its descriptor closed at
 * once, so that a task finds no descriptor but its channel. One of another
 * size, or one that cannot be mapped, is simply not used (the output slices
 * then travel in the replies). */
static cf__shm_header *map_shared(int fd)
{
    if (fd < 0)
        return NULL;
    void *p = MAP_FAILED;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == (off_t)CF__SHM_BYTES)
        p = mmap(NULL, CF__SHM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static _Noreturn void serve_and_exit(int in, int out, int shm)
{
    channel_fd = out;
    channel c = { .in = in, .out = out };
    cf__serve_io io = {
        .ctx = &c,
        .read = channel_read,
        .write = channel_write,
        .main_program_hint = main_program_hint,
        .shm = map_shared(shm),
    };
    int status = cf__serve(&io);
    _exit(status); /* no atexit handlers, no static destructors: not ours */
}

/* Every signal at its default action, then none blocked (the pool's manager
 * thread, whose signal mask a worker inherits, blocks them all). */
static void reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL); /* fails harmlessly for reserved ones */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The descriptors a worker's marker names. */
typedef struct worker_fds {
    int in, out, shm; /* shm: -1 for none */
} worker_fds;

/* One number of the marker, with the character that must follow it. */
static bool marker_field(const char **s, char after, long min, long max, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(*s, &end, 10);
    if (errno || end == *s || *end != after || *v < min || *v > max)
        return false;
    *s = end + 1;
    return true;
}

/* Parse "<in>:<out>:<shm or -1>:<parent pid>" strictly. */
static bool parse_marker(const char *s, worker_fds *fds, long *ppid)
{
    long in, out, shm;
    if (!marker_field(&s, ':', 3, 65535, &in) || !marker_field(&s, ':', 3, 65535, &out) ||
        !marker_field(&s, ':', -1, 65535, &shm) || !marker_field(&s, '\0', 2, LONG_MAX, ppid))
        return false;
    if (shm >= 0 && shm < 3)
        return false;
    *fds = (worker_fds){ .in = (int)in, .out = (int)out, .shm = (int)shm };
    return true;
}

static bool is_pipe(int fd, int access)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && fl >= 0 && (fl & O_ACCMODE) == access;
}

/* Whether argv is a worker's: a direct child of the pool holding its
 * channel's two pipes. */
static bool real_worker(int argc, char **argv, const char *flag, worker_fds *fds)
{
    long ppid;
    return argc >= 3 && strcmp(argv[1], flag) == 0 && parse_marker(argv[2], fds, &ppid) &&
           (long)getppid() == ppid && is_pipe(fds->in, O_RDONLY) && is_pipe(fds->out, O_WRONLY);
}

static _Noreturn void become_worker(worker_fds fds)
{
    /* What a task execs does not inherit them; reads poll (channel_read). */
    fcntl(fds.in, F_SETFD, FD_CLOEXEC);
    fcntl(fds.out, F_SETFD, FD_CLOEXEC);
    fcntl(fds.in, F_SETFL, fcntl(fds.in, F_GETFL) | O_NONBLOCK);
#ifdef PR_SET_PDEATHSIG
    /* The "parent" here is the pool's manager thread: it outlives its
     * workers unless the whole program dies. */
    long ppid = (long)getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((long)getppid() != ppid)
        _exit(0); /* the parent died before the line above */
#endif
    reset_signals();
    serve_and_exit(fds.in, fds.out, fds.shm);
}

_Noreturn void cf__worker_run_forked(int in, int out, int shm)
{
    become_worker((worker_fds){ .in = in, .out = out, .shm = shm });
}

int cf__worker_main(int argc, char **argv)
{
    worker_fds fds;
    if (!real_worker(argc, argv, CF__WORKER_FLAG, &fds))
        return CF__WORKER_EXIT_SETUP;
    main_program_hint = "a worker started through the cfutures-worker helper has the "
                        "program's libraries, not the program itself: link the program with "
                        "libcfutures (start method exec) or use the fork start method";
    become_worker(fds);
}

/* ------------------------------------------------------------------------ */
/* Re-running the program                                                    */
/* ------------------------------------------------------------------------ */

typedef int (*main_fn)(int, char **, char **);
typedef int (*libc_start_main_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
                                  void (*)(void), void *);

/* The entries other libraries registered (see worker.h); written by
 * constructors, before any thread of the program runs, read before main. */
#define COMPANION_ENTRIES 4
static struct {
    const char *flag;
    cf__worker_entry_fn entry;
} companions[COMPANION_ENTRIES];
static main_fn program_main;

int cf__worker_entry_register(const char *flag, cf__worker_entry_fn entry)
{
    for (size_t i = 0; i < COMPANION_ENTRIES; i++) {
        if (!companions[i].flag) {
            companions[i].flag = flag;
            companions[i].entry = entry;
            return 0;
        }
    }
    return CF_ENOMEM;
}

/* Called where main would be: by then the constructors of a library linked
 * statically into the program have run too, and registered. */
static int companion_or_main(int argc, char **argv, char **envp)
{
    for (size_t i = 0; i < COMPANION_ENTRIES && companions[i].flag; i++)
        if (strcmp(argv[1], companions[i].flag) == 0)
            return companions[i].entry(argc, argv, envp);
    return program_main(argc, argv, envp);
}

static int worker_instead_of_main(int argc, char **argv, char **envp)
{
    (void)envp;
    worker_fds fds;
    real_worker(argc, argv, CF__WORKER_FLAG, &fds); /* checked before */
    become_worker(fds);
}

/* The program's startup code calls this (see the top of the file). */
CF_API int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                             void (*fini)(void), void (*rtld_fini)(void), void *stack_end);
int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end)
{
    libc_start_main_fn next = (libc_start_main_fn)(uintptr_t)dlsym(RTLD_NEXT, "__libc_start_main");
    if (!next) { /* no libc below us to start the program: it cannot run */
        static const char msg[] = "libcfutures: no __libc_start_main to start the program\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(127);
    }
    interposed = true;
    worker_fds fds;
    if (real_worker(argc, argv, CF__WORKER_FLAG, &fds)) {
        main = worker_instead_of_main;
    } else if (argc >= 2 && strncmp(argv[1], "--cfutures-", 11) == 0) {
        program_main = main;
        main = companion_or_main;
    }
    return next(main, argc, argv, init, fini, rtld_fini, stack_end);
}

/* glibc passes constructors the command line. */
__attribute__((constructor)) static void early_worker(int argc, char **argv, char **envp)
{
    (void)envp;
    worker_fds fds;
    if (argv && real_worker(argc, argv, CF__WORKER_FLAG_EARLY, &fds))
        become_worker(fds);
}
