/* Process pool, child side. A worker is the program's own executable started
 * again with CF_WORKER=<fd>:<parent pid> in its environment; the constructor
 * below sees the marker before main, serves tasks on that fd, and _exit()s,
 * so the user's program needs no extra code. Plain blocking I/O, one task at
 * a time, a reply written as soon as each task returns.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fnref.h"
#include "wire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define MARKER "CF_WORKER"

/* Exit statuses of a worker that gives up (the parent reports them). */
enum { EXIT_PROTOCOL = 111, EXIT_NOMEM = 112, EXIT_IO = 113 };

static int reply_fd = -1;

const char *cf__worker_marker(void)
{
    return MARKER;
}

int cf__worker_reply_fd(void)
{
    return reply_fd;
}

typedef struct worker {
    int fd;
    size_t max_message;
    size_t frame_limit;
    unsigned char *in; /* bytes read, not yet handled */
    size_t in_len, in_cap;
    cf__buf out;
    void *scratch; /* aligned copy of argument bytes */
    size_t scratch_cap;
    void **items; /* a chunk's values */
    size_t items_cap;
} worker;

static _Noreturn void worker_exit(int status)
{
    fflush(NULL);
    _exit(status);
}

static void write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            worker_exit(EXIT_IO); /* the parent is gone */
        p += k;
        n -= (size_t)k;
    }
}

static void flush(worker *w)
{
    fflush(stdout); /* what the task printed comes before its result */
    write_all(w->fd, w->out.data, w->out.len);
    w->out.len = 0;
}

static void *grow(void *p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return p;
    void *q = cf__realloc(p, need);
    if (!q)
        worker_exit(EXIT_NOMEM);
    *cap = need;
    return q;
}

static void reply_result(worker *w, uint64_t id, cf__outcome *out, uint64_t run_ns)
{
    if (out->status == 0 && out->copy && out->size > w->max_message) {
        size_t size = out->size;
        cf__outcome_clear(out);
        out->status = CF_ETASK;
        out->code = CF_ETOOBIG;
        out->message = cf__format("result of %zu bytes exceeds the pool's max_message (%zu)",
                                  size, w->max_message);
    }
    if (cf__wire_put_result(&w->out, id, out, run_ns) != 0)
        worker_exit(EXIT_NOMEM);
    cf__outcome_clear(out);
    flush(w);
}

static void reply_chunk(worker *w, uint64_t id, cf__chunk_result *chunk, size_t count,
                        uint64_t run_ns)
{
    if (chunk && cf__wire_chunk_result_size(chunk) > w->frame_limit) {
        cf__chunk_result_free(chunk);
        chunk = cf__chunk_result_new(count);
        if (chunk)
            cf__chunk_result_fail(chunk, CF_ETASK, CF_ETOOBIG,
                                  cf__strdup("chunk results exceed the pool's max_message"), 0,
                                  -1);
    }
    if (!chunk)
        worker_exit(EXIT_NOMEM);
    if (cf__wire_put_chunk_result(&w->out, id, chunk, run_ns) != 0)
        worker_exit(EXIT_NOMEM);
    cf__chunk_result_free(chunk);
    flush(w);
}

static void reply_not_found(worker *w, uint64_t id, const cf__wire_task *t, const char *what)
{
    char where[512];
    cf__fnref_describe(t->fnref, t->fnref_len, where, sizeof where);
    char *message = cf__format("%s %s not found in worker (different build?)", what, where);
    if (t->kind == CF__TASK_VALUE || t->kind == CF__TASK_BYTES) {
        cf__outcome out = { .status = CF_ETASK, .code = CF_EINVAL, .message = message };
        reply_result(w, id, &out, 0);
    } else {
        cf__chunk_result *chunk = cf__chunk_result_new(t->count);
        if (!chunk)
            worker_exit(EXIT_NOMEM);
        cf__chunk_result_fail(chunk, CF_ETASK, CF_EINVAL, message, 0, -1);
        reply_chunk(w, id, chunk, t->count, 0);
    }
}

static void run_task(worker *w, const cf__frame *fr)
{
    cf__wire_task t;
    if (cf__wire_get_task(fr, &t) != 0)
        worker_exit(EXIT_PROTOCOL);
    uintptr_t addr;
    if (cf__fnref_resolve(t.fnref, t.fnref_len, &addr) != 0) {
        reply_not_found(w, fr->id, &t, "function");
        return;
    }
    cf__call call = { .fn = (cf_fn)addr };
    switch (t.kind) {
    case CF__TASK_VALUE:
        call.arg = (void *)(uintptr_t)t.arg;
        break;
    case CF__TASK_BYTES: /* the task may expect its bytes aligned */
        w->scratch = grow(w->scratch, &w->scratch_cap, t.size);
        memcpy(w->scratch, t.data, t.size);
        call.arg = w->scratch;
        call.arg_size = t.size;
        break;
    case CF__TASK_CHUNK_VALUES:
        w->items = grow(w->items, &w->items_cap, t.count * sizeof *w->items);
        if (sizeof(void *) == 8) {
            memcpy(w->items, t.data, 8 * t.count);
        } else {
            for (size_t i = 0; i < t.count; i++) {
                uint64_t v;
                memcpy(&v, t.data + 8 * i, 8);
                w->items[i] = (void *)(uintptr_t)v;
            }
        }
        call.count = t.count;
        call.items = w->items;
        break;
    default: /* CF__TASK_CHUNK_BYTES */
        w->scratch = grow(w->scratch, &w->scratch_cap, t.count * t.size);
        memcpy(w->scratch, t.data, t.count * t.size);
        call.count = t.count;
        call.arg_size = t.size;
        call.item_bytes = w->scratch;
        break;
    }
    uint64_t start = uv_hrtime();
    if (call.count == 0) {
        cf__outcome out;
        cf__run_call(call.fn, call.arg, &out);
        reply_result(w, fr->id, &out, uv_hrtime() - start);
    } else {
        cf__chunk_result *chunk = cf__run_chunk(&call);
        reply_chunk(w, fr->id, chunk, call.count, uv_hrtime() - start);
    }
}

/* Tell the parent the initializer cannot run or failed, and exit. Takes message. */
static _Noreturn void init_failed(worker *w, int code, char *message)
{
    int rc = cf__wire_put_init_fail(&w->out, code, message);
    cf__free(message);
    if (rc != 0)
        worker_exit(EXIT_NOMEM);
    flush(w);
    worker_exit(0);
}

static void run_init(worker *w, const cf__frame *fr)
{
    cf__wire_init init;
    if (cf__wire_get_init(fr, &init) != 0)
        worker_exit(EXIT_PROTOCOL);
    w->max_message = init.max_message > CF__WIRE_MAX_MAX_MESSAGE ? CF__WIRE_MAX_MAX_MESSAGE
                                                                  : (size_t)init.max_message;
    w->frame_limit = cf__wire_frame_limit(w->max_message);
    if (init.fnref) {
        uintptr_t addr;
        if (cf__fnref_resolve(init.fnref, init.fnref_len, &addr) != 0) {
            char where[512];
            cf__fnref_describe(init.fnref, init.fnref_len, where, sizeof where);
            init_failed(w, CF_EINVAL,
                        cf__format("initializer %s not found in worker (different build?)",
                                   where));
        }
        int (*initializer)(void *) = (int (*)(void *))addr;
        int ret = initializer((void *)(uintptr_t)init.initarg);
        if (ret != 0)
            init_failed(w, ret,
                        cf__format("initializer failed (returned %d) in worker %ld", ret,
                                   (long)getpid()));
    }
    if (cf__wire_put_ready(&w->out, (uint64_t)getpid()) != 0)
        worker_exit(EXIT_NOMEM);
    flush(w);
}

static _Noreturn void worker_serve(int fd)
{
    worker w = { .fd = fd, .frame_limit = CF__WIRE_SLACK };
    bool initialised = false;
    for (;;) {
        size_t pos = 0;
        for (;;) {
            cf__frame fr;
            int rc = cf__wire_next_frame(w.in + pos, w.in_len - pos, w.frame_limit, &fr);
            if (rc < 0)
                worker_exit(EXIT_PROTOCOL);
            if (rc == 0)
                break;
            if (fr.type == CF__MSG_INIT && !initialised) {
                run_init(&w, &fr);
                initialised = true;
            } else if (fr.type == CF__MSG_TASK && initialised) {
                run_task(&w, &fr);
            } else if (fr.type == CF__MSG_EXIT) {
                worker_exit(0);
            } else {
                worker_exit(EXIT_PROTOCOL);
            }
            pos += fr.total;
        }
        if (pos > 0) {
            memmove(w.in, w.in + pos, w.in_len - pos);
            w.in_len -= pos;
        }
        w.in = grow(w.in, &w.in_cap, cf__wire_read_room(w.in, w.in_len, w.frame_limit));
        ssize_t n;
        do
            n = read(fd, w.in + w.in_len, w.in_cap - w.in_len);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            worker_exit(0); /* the parent closed its end, or died */
        w.in_len += (size_t)n;
    }
}

/* Parse "<fd>:<pid>" strictly. */
static bool parse_marker(const char *s, int *fd, long *ppid)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != ':' || v < 3 || v > 65535)
        return false;
    *fd = (int)v;
    s = end + 1;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v <= 1)
        return false;
    *ppid = v;
    return true;
}

__attribute__((constructor)) static void worker_entry(void)
{
    const char *marker = getenv(MARKER);
    if (!marker)
        return; /* the usual case: not a worker */
    int fd;
    long ppid;
    bool ok = parse_marker(marker, &fd, &ppid);
    unsetenv(MARKER); /* programs a task starts are not workers */
    /* A stale marker (inherited by something a worker started) is ignored:
     * a real worker is a direct child of the pool and holds a socket. */
    struct stat st;
    if (!ok || (long)getppid() != ppid || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return;
#ifdef PR_SET_PDEATHSIG
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if ((long)getppid() != ppid)
        _exit(0); /* the parent died before the line above */
#endif
    reply_fd = fd;
    worker_serve(fd);
}
