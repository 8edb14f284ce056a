/* Process pool: the remote-pool core (remote.h) over worker processes.
 *
 * Each worker is a process started by spawn.c the way process_start.c
 * decided, with one socket pair as its channel: frames are written with
 * uv_try_write (uv_write for what the socket does not take at once) and
 * read with uv_read_start. Its end is learnt from its pidfd becoming
 * readable (a uv_poll), never from SIGCHLD, which stays the program's; the
 * channel reaching EOF first means the worker is gone or going, and it is
 * killed to be sure. Before the end is reported, every byte the worker wrote
 * is read, so its last replies count.
 *
 * Each worker also shares a memfd with us (cf__shm_header in wire.h), sent
 * with its first frame (we keep only our mapping of it) and mapped and
 * closed by the worker at once, where
 * it leaves parallel loops' output slices, which we copy out of our own
 * mapping of it. A reply still says where each slice is, so the
 * channel carries every message; the memory spares the slice two copies
 * through the kernel and one in the worker (a loop over 1M 8-byte items,
 * repeated on one pool: 2.9 -> 2.5 ms).
 *
 * Our ends of the channels, the pidfds and the memfds not sent yet are
 * registered with fork.c, so a child the program forks does not keep them
 * (and with them the workers).
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
#include <sys/socket.h>
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
    uv_pipe_t pipe;       /* our end of the channel */
    uv_poll_t exit_watch; /* the pidfd: readable once the process ended */
    int channel, pidfd;
    int shm_fd;                 /* the memory shared with the worker until it is sent, or -1 */
    cf__shm_header *shm_header; /* our mapping of it (CF__SHM_BYTES), or NULL */
    bool pipe_open, watch_open;
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
        if (p->pipe_open)
            proc_kill(w, SIGKILL);
        return;
    }
    proc_flush(w);
}

/* Our descriptor of the memory shared with w: once sent (or not), the
 * mappings keep the memory. */
static void close_shm_fd(proc_worker *p)
{
    if (p->shm_fd >= 0) {
        cf__fork_close_fd(p->shm_fd, NULL, NULL);
        p->shm_fd = -1;
    }
}

/* Drop the memory shared with w: it could not be sent, or w is gone. */
static void drop_shm(cf__rworker *w)
{
    proc_worker *p = pw(w);
    w->shm = false;
    if (p->shm_header) {
        munmap(p->shm_header, CF__SHM_BYTES);
        p->shm_header = NULL;
    }
    close_shm_fd(p);
}

/* The first bytes w gets (its INIT frame) carry the memory we share with
 * it: bytes sent (> 0), or a libuv error (a negated errno); if nothing was
 * sent, we do not use the memory. Our descriptor goes either way. */
static int send_with_shm(cf__rworker *w, const unsigned char *data, size_t len)
{
    proc_worker *p = pw(w);
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control
    };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p->shm_fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(p->channel, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    int err = errno;
    close_shm_fd(p);
    if (n < 0) {
        drop_shm(w);
        return uv_translate_sys_error(err);
    }
    return (int)(n > INT_MAX ? INT_MAX : n);
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

/* Write what wbuf holds: synchronously when the socket takes it all (the
 * common case: no allocation, one system call), else through uv_write. */
static void proc_flush(cf__rworker *w)
{
    proc_worker *p = pw(w);
    if (w->wbuf.len == 0 || p->write_busy || !p->pipe_open)
        return;
    size_t off = 0;
    uv_buf_t b = uv_buf_init((char *)w->wbuf.data, (unsigned)w->wbuf.len);
    int n = p->shm_fd >= 0 ? send_with_shm(w, w->wbuf.data, w->wbuf.len)
                           : uv_try_write((uv_stream_t *)&p->pipe, &b, 1);
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
    if (uv_write(&p->wreq, (uv_stream_t *)&p->pipe, &b, 1, on_write) == 0)
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
    if (!p->pipe_open)
        return;
    for (int rounds = 0; rounds < 1024; rounds++) {
        unsigned char *room;
        size_t n;
        if (w->lost || !cf__rworker_read_room(w, &room, &n))
            return;
        ssize_t k = read(p->channel, room, n);
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

/* A socket pair, both ends close-on-exec and above 0-2, ours registered with
 * the fork handlers: 0 or CF_E* with why. */
static int make_channel(int sv[2], char *why, size_t cap)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(why, cap, "cannot make its channel: socketpair: %s", strerror(errno));
        return CF_ESYSTEM;
    }
    sv[0] = cf__fd_above_stdio(sv[0]);
    sv[1] = cf__fd_above_stdio(sv[1]);
    if (sv[0] < 0 || sv[1] < 0) {
        snprintf(why, cap, "cannot make its channel: %s", strerror(errno));
        goto fail;
    }
    if (cf__fork_register_fd(sv[0]) != 0) {
        snprintf(why, cap, "out of memory");
        goto fail;
    }
    return 0;
fail:
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    return CF_ESYSTEM;
}

static void close_pipe_now(void *arg)
{
    cf__rworker *w = arg;
    proc_worker *p = pw(w);
    cf__fd_closing_unseen(p->channel);
    cf__rworker_close_handle(w, (uv_handle_t *)&p->pipe);
}

static void close_channel(cf__rworker *w)
{
    proc_worker *p = pw(w);
    if (!p->pipe_open)
        return;
    p->pipe_open = false;
    cf__fork_close_fd(p->channel, close_pipe_now, w);
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

/* Watch the channel and the pidfd: 0, or CF_ESYSTEM (with why) after the
 * worker was killed and every handle closed. */
static int watch(cf__rworker *w, int channel, char *why, size_t cap)
{
    proc_worker *p = pw(w);
    uv_loop_t *loop = cf__remote_loop(w->pool);
    p->channel = channel;
    uv_pipe_init(loop, &p->pipe, 0);
    p->pipe.data = w;
    cf__rworker_handle_opened(w);
    int rc = uv_pipe_open(&p->pipe, channel);
    if (rc != 0) { /* the handle does not own the descriptor: close both */
        cf__rworker_close_handle(w, (uv_handle_t *)&p->pipe);
        cf__fork_close_fd(channel, NULL, NULL);
    } else {
        p->pipe_open = true;
        rc = uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read);
    }
    if (rc == 0 && (rc = uv_poll_init(loop, &p->exit_watch, p->pidfd)) == 0) {
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

/* The memory this worker and we share for parallel loops' slices, sent
 * with its first frame; without it (memfd_create refused, say) the slices
 * travel in the frames. Its pages come into being as the worker first
 * writes them. */
static void make_shm(cf__rworker *w)
{
    proc_worker *p = pw(w);
    int fd = memfd_create("cfutures-slices", MFD_CLOEXEC);
    if (fd < 0)
        return;
    if ((fd = cf__fd_above_stdio(fd)) < 0)
        return;
    if (cf__fork_register_fd(fd) != 0) {
        close(fd);
        return;
    }
    p->shm_fd = fd;
    void *h = MAP_FAILED;
    if (ftruncate(fd, (off_t)CF__SHM_BYTES) == 0)
        h = mmap(NULL, CF__SHM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h == MAP_FAILED) {
        drop_shm(w);
        return;
    }
    (void)madvise(h, CF__SHM_BYTES, MADV_DONTFORK); /* not in fork() children of ours */
    p->shm_header = h;
    w->shm = true;
}

static int proc_start(cf__rworker *w, char *why, size_t cap)
{
    proc_pool *pool = cf__remote_transport(w->pool);
    proc_worker *p = pw(w);
    p->shm_fd = -1;
    int sv[2];
    int rc = make_channel(sv, why, cap);
    if (rc != 0)
        return rc;
    char marker[48];
    snprintf(marker, sizeof marker, "3:%ld", (long)getpid());
    char *argv[CF__START_PREFIX_MAX + 4];
    cf__start_argv(&pool->plan, marker, argv, sizeof argv / sizeof argv[0]);
    cf__spawn s = {
        .path = pool->plan.path,
        .argv = argv,
        .envp = environ,
        .fork_main = pool->plan.method == CF_START_FORK ? cf__worker_run_forked : NULL,
        .channel = sv[1],
        .devnull = pool->devnull,
    };
    rc = cf__spawn_worker(&s, why, cap);
    close(sv[1]);
    if (rc == 0 && cf__fork_register_fd(s.pidfd) != 0) {
        snprintf(why, cap, "out of memory");
        kill_and_reap(s.pidfd, s.pid);
        close(s.pidfd);
        rc = CF_ENOMEM;
    }
    if (rc != 0) {
        cf__fork_close_fd(sv[0], NULL, NULL);
        return rc;
    }
    p->pidfd = s.pidfd;
    w->pid = s.pid;
    rc = watch(w, sv[0], why, cap);
    if (rc == 0)
        make_shm(w);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The other ops                                                             */
/* ------------------------------------------------------------------------ */

/* Closing our end gives the worker EOF, and it exits. */
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
