/* Process pool: the remote-pool core (remote.h) over worker processes.
 *
 * Each worker is a process started by spawn.c the way process_start.c
 * decided, with a pipe pair as its channel: frames go down one pipe,
 * written with uv_try_write (uv_write for what the pipe does not take at
 * once), and replies come up the other, read with uv_read_start. (A socket
 * pair would be one descriptor, but a message through it costs the kernel
 * about three times one through a pipe: cf-bench's socket-poll and
 * pipe-poll floors.) Its end is learnt from its pidfd becoming readable (a
 * uv_poll), never from SIGCHLD, which stays the program's; the reply pipe
 * reaching EOF first means the worker is gone or going, and it is killed to
 * be sure. Before the end is reported, every byte the worker wrote is read,
 * so its last replies count.
 *
 * Each worker also shares a memfd with us (cf__shm_header in wire.h), which
 * it inherits at its start and maps and closes at once (we keep only our
 * mapping), where it leaves parallel loops' output slices, which we copy
 * out of our own mapping of it. A reply still says where each slice is, so
 * the channel carries every message; the memory spares the slice two copies
 * through the kernel and one in the worker (a loop over 1M 8-byte items,
 * repeated on one pool: 2.9 -> 2.5 ms).
 *
 * We keep the down pipe's read end too (down_guard), never read: with it
 * open no write to the pipe raises SIGPIPE, so a submitting thread may write
 * a task there itself (flush_any_thread in remote.h).
 *
 * Our ends of the channels and the pidfds are registered with fork.c, so a
 * child the program forks does not keep them (and with them the workers).
 * The worker's ends and the memfd are not while the worker starts (a
 * fork-start worker is such a child); down_guard is once it has started.
 * SPDX-License-Identifier: MIT */
#include "process_start.h"
#include "remote.h"
#include "spawn.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h> /* memfd_create */
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

extern char **environ;

#define KEEP_BUF ((size_t)1024 * 1024) /* larger write buffers are freed once empty */

typedef struct proc_pool {
    cf__start_plan plan;
    int devnull; /* the workers' stdin, and stdout/stderr where we have none */
} proc_pool;

typedef struct proc_worker {
    uv_pipe_t down;       /* the write end of the pipe the worker reads frames from */
    uv_pipe_t up;         /* the read end of the pipe it replies on */
    uv_poll_t exit_watch; /* the pidfd: readable once the process ended */
    int down_fd, up_fd, pidfd;
    /* The read end of the down pipe, which we never read: while it is open
     * no write to the pipe fails with EPIPE and SIGPIPE, so a submitting
     * thread may write there (flush_any_thread); the worker's end is learnt
     * from its pidfd. */
    int down_guard;
    cf__shm_header *shm_header; /* our mapping of the memory shared with it, or NULL */
    bool down_open, up_open;    /* the handles exist (both: the channel works) */
    bool watch_open;
    cf__buf writing; /* frames a uv_write is sending */
    bool write_busy;
    uv_write_t wreq;
} proc_worker;

static proc_worker *pw(cf__rworker *w)
{
    return cf__rworker_data(w);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

static void proc_kill(cf__rworker *w, int sig);
static void proc_flush(cf__rworker *w);

static void on_write(uv_write_t *req, int status)
{
    cf__rworker *w = req->data;
    proc_worker *p = pw(w);
    p->write_busy = false;
    p->writing.len = 0;
    w->in_transit = 0;
    if (p->writing.cap > KEEP_BUF)
        cf__buf_free(&p->writing);
    if (status != 0) { /* the worker is gone or going: its pidfd tells */
        if (p->down_open)
            proc_kill(w, SIGKILL);
        return;
    }
    proc_flush(w);
}

/* Drop the memory shared with w: it could not be given to it, or w is gone. */
static void drop_shm(cf__rworker *w)
{
    proc_worker *p = pw(w);
    w->shm = false;
    if (p->shm_header) {
        munmap(p->shm_header, CF__SHM_BYTES);
        p->shm_header = NULL;
    }
}

/* The output slice out of its slot, then the slot is the worker's again.
 * (Our mapping's pages fault once each, a few slots' worth: reading them
 * with pread instead cost more per task than that.) */
static void proc_shm_take(cf__rworker *w, uint64_t slot, void *dest, size_t len)
{
    cf__shm_header *shm = pw(w)->shm_header;
    memcpy(dest, cf__shm_slot(shm, slot), len);
    atomic_store_explicit(&shm->busy[slot], 0, memory_order_release);
}

/* Write what wbuf holds: synchronously when the pipe takes it all (the
 * common case: no allocation, one system call), else through uv_write. On
 * the manager thread, or on a submitting thread holding the core's lock
 * (flush_any_thread: down_guard keeps SIGPIPE away). */
static void proc_flush(cf__rworker *w)
{
    proc_worker *p = pw(w);
    if (w->wbuf.len == 0 || p->write_busy || !p->down_open)
        return;
    size_t off = 0;
    uv_buf_t b = uv_buf_init((char *)w->wbuf.data, (unsigned)w->wbuf.len);
    int n = uv_try_write((uv_stream_t *)&p->down, &b, 1);
    if (n > 0)
        off = (size_t)n;
    else if (n != UV_EAGAIN) {
        w->wbuf.len = 0;
        proc_kill(w, SIGKILL);
        return;
    }
    if (off == w->wbuf.len) {
        w->wbuf.len = 0;
        if (w->wbuf.cap > KEEP_BUF)
            cf__buf_free(&w->wbuf);
        return;
    }
    /* Hand the rest to uv_write; new frames collect in the other buffer. */
    cf__buf tmp = p->writing;
    p->writing = w->wbuf;
    w->wbuf = tmp;
    w->wbuf.len = 0;
    memmove(p->writing.data, p->writing.data + off, p->writing.len - off);
    p->writing.len -= off;
    w->in_transit = p->writing.len;
    b = uv_buf_init((char *)p->writing.data, (unsigned)p->writing.len);
    p->wreq.data = w;
    if (uv_write(&p->wreq, (uv_stream_t *)&p->down, &b, 1, on_write) == 0)
        p->write_busy = true;
    else
        proc_kill(w, SIGKILL);
}

/* ------------------------------------------------------------------------ */
/* Reading, and the end                                                      */
/* ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    cf__rworker *w = h->data;
    unsigned char *room;
    size_t n;
    if (!cf__rworker_read_room(w, &room, &n)) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init((char *)room, n > UINT_MAX ? UINT_MAX : (unsigned)n);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    cf__rworker *w = s->data;
    if (nread > 0) {
        cf__rworker_received(w, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    /* EOF, an error, or no memory (the core dealt with the worker then):
     * the worker is gone or going; make sure, and let its pidfd tell. */
    uv_read_stop(s);
    proc_kill(w, SIGKILL);
}

/* Read what the ended worker wrote and nobody read yet. */
static void drain(cf__rworker *w)
{
    proc_worker *p = pw(w);
    if (!p->up_open)
        return;
    for (int rounds = 0; rounds < 1024; rounds++) {
        unsigned char *room;
        size_t n;
        if (w->lost || !cf__rworker_read_room(w, &room, &n))
            return;
        ssize_t k = read(p->up_fd, room, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        cf__rworker_received(w, (size_t)k);
    }
}

static void kill_and_reap(int pidfd, int pid);

static void on_exit_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    cf__rworker *w = h->data;
    proc_worker *p = pw(w);
    cf__worker_exit e;
    if (status == 0 && cf__spawn_wait(p->pidfd, &e) == CF_ETIMEDOUT)
        return; /* not ended after all */
    if (status != 0) {
        /* It may live on: end it, or it stays unreaped. */
        kill_and_reap(p->pidfd, (int)w->pid);
        e = (cf__worker_exit){ .signal = 0, .exit_status = -1 };
        snprintf(e.why, sizeof e.why, "worker lost: cannot watch its process (%s)",
                 strerror(-status));
    }
    uv_poll_stop(h);
    drain(w);
    cf__rworker_exited(w, &e);
}

/* ------------------------------------------------------------------------ */
/* Starting                                                                  */
/* ------------------------------------------------------------------------ */

/* The channel: two pipes, every end close-on-exec; ours (ends[0], ends[1]:
 * the down pipe's write end, the up pipe's read end) above 0-2 and
 * registered with the fork handlers, the worker's (ends[2], ends[3]: the
 * down pipe's read end, the up pipe's write end) at CF__SPAWN_FD_FIRST or
 * above for spawn.c. 0 or CF_E* with why. */
static int make_channel(int ends[4], char *why, size_t cap)
{
    int down[2], up[2];
    bool have_down = pipe2(down, O_CLOEXEC) == 0;
    if (!have_down || pipe2(up, O_CLOEXEC) != 0) {
        snprintf(why, cap, "cannot make its channel: pipe2: %s", strerror(errno));
        if (have_down) {
            close(down[0]);
            close(down[1]);
        }
        return CF_ESYSTEM;
    }
    ends[0] = cf__fd_above_stdio(down[1]);
    ends[1] = cf__fd_above_stdio(up[0]);
    ends[2] = cf__fd_at_least(down[0], CF__SPAWN_FD_FIRST);
    ends[3] = cf__fd_at_least(up[1], CF__SPAWN_FD_FIRST);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++) {
        if (ends[i] < 0) {
            snprintf(why, cap, "cannot make its channel: %s", strerror(errno));
            rc = CF_ESYSTEM;
        }
    }
    int registered = 0;
    while (rc == 0 && registered < 2) {
        if (cf__fork_register_fd(ends[registered]) != 0) {
            snprintf(why, cap, "out of memory");
            rc = CF_ENOMEM;
        } else {
            registered++;
        }
    }
    if (rc == 0)
        return 0;
    for (int i = 0; i < 4; i++) {
        if (i < registered)
            cf__fork_close_fd(ends[i], NULL, NULL);
        else if (ends[i] >= 0)
            close(ends[i]);
    }
    return rc;
}

static void close_down_now(void *arg)
{
    cf__rworker *w = arg;
    proc_worker *p = pw(w);
    cf__fd_closing_unseen(p->down_fd);
    cf__rworker_close_handle(w, (uv_handle_t *)&p->down);
}

static void close_up_now(void *arg)
{
    cf__rworker *w = arg;
    proc_worker *p = pw(w);
    cf__fd_closing_unseen(p->up_fd);
    cf__rworker_close_handle(w, (uv_handle_t *)&p->up);
}

static void close_guard(proc_worker *p)
{
    if (p->down_guard >= 0) {
        cf__fork_close_fd(p->down_guard, NULL, NULL);
        p->down_guard = -1;
    }
}

/* Close both pipes: the worker reads EOF, or its replies fail. */
static void close_channel(cf__rworker *w)
{
    proc_worker *p = pw(w);
    close_guard(p);
    if (p->down_open) {
        p->down_open = false;
        cf__fork_close_fd(p->down_fd, close_down_now, w);
    }
    if (p->up_open) {
        p->up_open = false;
        cf__fork_close_fd(p->up_fd, close_up_now, w);
    }
}

static void close_pidfd(void *arg)
{
    cf__rworker *w = arg;
    proc_worker *p = pw(w);
    cf__rworker_close_handle(w, (uv_handle_t *)&p->exit_watch);
    close(p->pidfd);
}

/* Signal the process behind pidfd: never one that reused its number. Where
 * the kernel (or valgrind) lacks pidfd_send_signal, kill() the number: the
 * process cannot have been reaped yet (we reap it), unless the program
 * reaps every child itself. */
static void send_signal(int pidfd, int pid, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) != 0 && errno == ENOSYS && pid > 0)
        kill(pid, sig);
}

/* Kill and reap a worker we cannot use after all. */
static void kill_and_reap(int pidfd, int pid)
{
    send_signal(pidfd, pid, SIGKILL);
    cf__worker_exit ignored;
    while (cf__spawn_wait(pidfd, &ignored) == CF_ETIMEDOUT)
        sched_yield(); /* SIGKILL: it ends at once */
}

/* One of our pipe ends as a libuv handle: 0, or a libuv error after the
 * handle was closed and the descriptor too (the handle does not own it). */
static int open_end(cf__rworker *w, uv_pipe_t *h, int fd)
{
    uv_pipe_init(cf__remote_loop(w->pool), h, 0);
    h->data = w;
    cf__rworker_handle_opened(w);
    int rc = uv_pipe_open(h, fd);
    if (rc != 0) {
        cf__rworker_close_handle(w, (uv_handle_t *)h);
        cf__fork_close_fd(fd, NULL, NULL);
    }
    return rc;
}

/* Watch the channel (down, up: our ends) and the pidfd: 0, or CF_ESYSTEM
 * (with why) after the worker was killed and every handle closed. */
static int watch(cf__rworker *w, int down, int up, char *why, size_t cap)
{
    proc_worker *p = pw(w);
    p->down_fd = down;
    p->up_fd = up;
    int rc = open_end(w, &p->down, down);
    p->down_open = rc == 0;
    if (rc == 0) {
        rc = open_end(w, &p->up, up);
        p->up_open = rc == 0;
    } else {
        cf__fork_close_fd(up, NULL, NULL);
    }
    if (rc == 0)
        rc = uv_read_start((uv_stream_t *)&p->up, on_alloc, on_read);
    if (rc == 0 && (rc = uv_poll_init(cf__remote_loop(w->pool), &p->exit_watch, p->pidfd)) == 0) {
        p->exit_watch.data = w;
        cf__rworker_handle_opened(w);
        p->watch_open = true;
        rc = uv_poll_start(&p->exit_watch, UV_READABLE, on_exit_readable);
    }
    if (rc == 0)
        return 0;
    snprintf(why, cap, "cannot watch it: %s", strerror(-rc));
    kill_and_reap(p->pidfd, (int)w->pid);
    close_channel(w);
    if (p->watch_open) {
        p->watch_open = false;
        cf__fork_close_fd(p->pidfd, close_pidfd, w);
    } else {
        cf__fork_close_fd(p->pidfd, NULL, NULL);
    }
    return CF_ESYSTEM;
}

/* The memory this worker and we share for parallel loops' slices, given to
 * it at its start: its descriptor (at CF__SPAWN_FD_FIRST or above, for
 * spawn.c; ours to close once the worker started) with our mapping in
 * p->shm_header, or -1 without it (memfd_create refused, say: the slices
 * then travel in the frames). Its pages come into being as the worker first
 * writes them. */
static int make_shm(cf__rworker *w)
{
    proc_worker *p = pw(w);
    int fd = memfd_create("cfutures-slices", MFD_CLOEXEC);
    if ((fd = cf__fd_at_least(fd, CF__SPAWN_FD_FIRST)) < 0)
        return -1;
    void *h = MAP_FAILED;
    if (ftruncate(fd, (off_t)CF__SHM_BYTES) == 0)
        h = mmap(NULL, CF__SHM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        close(fd);
        return -1;
    }
    (void)madvise(h, CF__SHM_BYTES, MADV_DONTFORK); /* not in fork() children of ours */
    p->shm_header = h;
    w->shm = true;
    return fd;
}

static int proc_start(cf__rworker *w, char *why, size_t cap)
{
    proc_pool *pool = cf__remote_transport(w->pool);
    proc_worker *p = pw(w);
    p->down_guard = -1;
    int ends[4];
    int rc = make_channel(ends, why, cap);
    if (rc != 0)
        return rc;
    int shm = make_shm(w);
    char marker[64];
    snprintf(marker, sizeof marker, "%d:%d:%d:%ld", CF__SPAWN_FD_IN, CF__SPAWN_FD_OUT,
             shm >= 0 ? CF__SPAWN_FD_SHM : -1, (long)getpid());
    char *argv[CF__START_PREFIX_MAX + 4];
    cf__start_argv(&pool->plan, marker, argv, sizeof argv / sizeof argv[0]);
    cf__spawn s = {
        .path = pool->plan.path,
        .argv = argv,
        .envp = environ,
        .fork_main = pool->plan.method == CF_START_FORK ? cf__worker_run_forked : NULL,
        .channel_in = ends[2],
        .channel_out = ends[3],
        .shm = shm,
        .devnull = pool->devnull,
    };
    rc = cf__spawn_worker(&s, why, cap);
    close(ends[3]);
    if (shm >= 0)
        close(shm); /* the mappings keep the memory */
    /* The guard is registered only now: a fork-start child closes what is. */
    if (rc == 0 && cf__fork_register_fd(ends[2]) == 0)
        p->down_guard = ends[2];
    else
        close(ends[2]);
    if (rc == 0 && (p->down_guard < 0 || cf__fork_register_fd(s.pidfd) != 0)) {
        snprintf(why, cap, "out of memory");
        kill_and_reap(s.pidfd, s.pid);
        close(s.pidfd);
        rc = CF_ENOMEM;
    }
    if (rc != 0) {
        close_guard(p);
        drop_shm(w);
        cf__fork_close_fd(ends[0], NULL, NULL);
        cf__fork_close_fd(ends[1], NULL, NULL);
        return rc;
    }
    p->pidfd = s.pidfd;
    w->pid = s.pid;
    rc = watch(w, ends[0], ends[1], why, cap);
    if (rc != 0)
        drop_shm(w);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The other ops                                                             */
/* ------------------------------------------------------------------------ */

/* Closing our ends gives the worker EOF, and it exits. */
static void proc_retire(cf__rworker *w)
{
    close_channel(w);
}

/* A stopped worker gets SIGCONT too, so that it acts on the signal now. */
static void proc_kill(cf__rworker *w, int sig)
{
    proc_worker *p = pw(w);
    if (!p->watch_open)
        return;
    send_signal(p->pidfd, (int)w->pid, sig);
    if (sig != SIGKILL && sig != SIGCONT)
        send_signal(p->pidfd, (int)w->pid, SIGCONT);
}

static void proc_close(cf__rworker *w)
{
    proc_worker *p = pw(w);
    close_channel(w);
    if (p->watch_open) {
        p->watch_open = false;
        cf__fork_close_fd(p->pidfd, close_pidfd, w);
    }
}

static void proc_release(cf__rworker *w)
{
    cf__buf_free(&pw(w)->writing);
    drop_shm(w);
}

static void proc_finish(cf__remote *r)
{
    proc_pool *pool = cf__remote_transport(r);
    if (pool->devnull >= 0) {
        close(pool->devnull);
        pool->devnull = -1;
    }
}

static void proc_destroy(cf__remote *r)
{
    proc_pool *pool = cf__remote_transport(r);
    if (!pool)
        return;
    proc_finish(r); /* when the loop never ran */
    cf__start_plan_free(&pool->plan);
    cf__free(pool);
}

static const cf__transport_ops process_transport = {
    .name = "process",
    .worker_size = sizeof(proc_worker),
    .start = proc_start,
    .flush = proc_flush,
    .retire = proc_retire,
    .kill = proc_kill,
    .close = proc_close,
    .shm_take = proc_shm_take,
    .release = proc_release,
    .finish = proc_finish,
    .destroy = proc_destroy,
    .flush_any_thread = true,
};

/* ------------------------------------------------------------------------ */
/* Creation                                                                  */
/* ------------------------------------------------------------------------ */

static bool valid_opts(const cf_process_pool_opts *o)
{
    return o->max_workers >= 0 && o->max_tasks_per_child >= 0 && o->task_timeout >= 0 &&
           o->task_timeout <= 1e9 && o->start_method >= CF_START_AUTO &&
           o->start_method <= CF_START_FORK;
}

/* /dev/null above 0-2 (not registered with the fork handlers: a fork-start
 * worker needs it after fork): -1 with the last error set on failure. */
static int open_devnull(void)
{
    int fd = cf__fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (fd < 0)
        cf__set_last_error_msg(CF_ESYSTEM, "cannot open /dev/null: %s", strerror(errno));
    return fd;
}

cf_executor *cf_process_pool_new(const cf_process_pool_opts *opts)
{
    cf_process_pool_opts o = opts ? *opts : (cf_process_pool_opts){ 0 };
    if (CF__CHECK_RESERVED(&o, "cf_process_pool_opts") != 0)
        return NULL; /* the last error says which word */
    if (!valid_opts(&o))
        return cf__fail(CF_EINVAL);
    proc_pool *pool = cf__calloc(1, sizeof *pool);
    if (!pool)
        return cf__fail(CF_ENOMEM);
    pool->devnull = -1;
    if (cf__start_plan_make(o.start_method, &pool->plan) != 0) {
        cf__free(pool);
        return NULL; /* the last error says why */
    }
    if (cf__fork_init() != 0)
        cf__set_last_error_msg(CF_ESYSTEM, "cannot install the fork() handlers");
    else
        pool->devnull = open_devnull();
    if (pool->devnull < 0) {
        cf__start_plan_free(&pool->plan);
        cf__free(pool);
        return NULL;
    }
    cf__remote_config cfg = {
        .max_workers = o.max_workers ? o.max_workers : cf__cpu_count(),
        .max_tasks = o.max_tasks_per_child,
        .task_timeout = o.task_timeout,
        .max_message = o.max_message,
        .initializer = (uintptr_t)o.initializer,
        .initarg = o.initarg,
    };
    return cf__remote_new(&cfg, &process_transport, pool);
}
