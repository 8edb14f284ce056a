/* The worker side of a remote pool: the serve loop. It reads frames through
 * the transport's read function, runs one task at a time, and writes each
 * reply as soon as the task returns. How the process became a worker is
 * worker_entry.c's business (processes) or the MPI transport's.
 * SPDX-License-Identifier: MIT */
#include "worker.h"

#include "fnref.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct server {
    const cf__serve_io *io;
    size_t max_message;
    size_t frame_limit;
    unsigned char *in; /* bytes read, not yet handled */
    size_t in_len, in_cap;
    cf__buf out;
    int status;    /* >= 0: stop serving with this status */
    void *scratch; /* aligned copy of argument bytes */
    size_t scratch_cap;
    void **items; /* a chunk's values */
    size_t items_cap;
} server;

/* End the serve loop with this status (the first one set wins). */
static void stop(server *s, int status)
{
    if (s->status < 0)
        s->status = status;
}

static bool stopped(const server *s)
{
    return s->status >= 0;
}

static void flush(server *s)
{
    if (stopped(s))
        return;
    fflush(stdout); /* what the task printed comes before its result */
    if (s->io->write(s->io->ctx, s->out.data, s->out.len) != 0)
        stop(s, CF__WORKER_EXIT_IO); /* the parent is gone */
    s->out.len = 0;
}

/* p, grown to hold `need` bytes: the new block, or NULL (p still valid,
 * and the loop stopped) when out of memory. */
static void *grow(server *s, void *p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return p;
    void *q = cf__realloc(p, need);
    if (!q) {
        stop(s, CF__WORKER_EXIT_NOMEM);
        return NULL;
    }
    *cap = need;
    return q;
}

static void reply_result(server *s, uint64_t id, cf__outcome *out, uint64_t run_ns)
{
    if (out->status == 0 && out->copy && out->size > s->max_message) {
        size_t size = out->size;
        cf__outcome_clear(out);
        out->status = CF_ETASK;
        out->code = CF_ETOOBIG;
        out->message = cf__format("result of %zu bytes exceeds the pool's max_message (%zu)", size,
                                  s->max_message);
    }
    if (cf__wire_put_result(&s->out, id, out, run_ns) != 0)
        stop(s, CF__WORKER_EXIT_NOMEM);
    cf__outcome_clear(out);
    flush(s);
}

static void reply_chunk(server *s, uint64_t id, cf__chunk_result *chunk, size_t count,
                        uint64_t run_ns)
{
    if (chunk && cf__wire_chunk_result_size(chunk) > s->frame_limit) {
        cf__chunk_result_free(chunk);
        chunk = cf__chunk_result_new(count);
        if (chunk)
            cf__chunk_result_fail(chunk, CF_ETASK, CF_ETOOBIG,
                                  cf__strdup("chunk results exceed the pool's max_message"), 0, -1);
    }
    if (!chunk) {
        stop(s, CF__WORKER_EXIT_NOMEM);
        return;
    }
    if (cf__wire_put_chunk_result(&s->out, id, chunk, run_ns) != 0)
        stop(s, CF__WORKER_EXIT_NOMEM);
    cf__chunk_result_free(chunk);
    flush(s);
}

/* "function offset 0x1139 in /x/libplugin.so (build-id ...) not found in this
 * worker: <why>". Takes nothing; returns a cf__malloc'd message or NULL. */
static char *not_found_message(const server *s, const char *what, const unsigned char *ref,
                               size_t len, const char *why)
{
    char where[512];
    cf__fnref_describe(ref, len, where, sizeof where);
    if (s->io->main_program_hint && cf__fnref_in_main_program(ref, len))
        why = s->io->main_program_hint; /* the reason, where it applies */
    return cf__format("%s %s not found in this worker: %s", what, where, why);
}

static void reply_not_found(server *s, uint64_t id, const cf__wire_task *t, const char *why)
{
    char *message = not_found_message(s, "function", t->fnref, t->fnref_len, why);
    if (t->kind == CF__TASK_VALUE || t->kind == CF__TASK_BYTES || t->kind == CF__TASK_RANGE) {
        cf__outcome out = { .status = CF_ETASK, .code = CF_EINVAL, .message = message };
        reply_result(s, id, &out, 0);
    } else {
        cf__chunk_result *chunk = cf__chunk_result_new(t->count);
        if (!chunk) {
            cf__free(message);
            stop(s, CF__WORKER_EXIT_NOMEM);
            return;
        }
        cf__chunk_result_fail(chunk, CF_ETASK, CF_EINVAL, message, 0, -1);
        reply_chunk(s, id, chunk, t->count, 0);
    }
}

/* The call a task frame describes, its argument bytes copied to aligned
 * memory (a task may expect its bytes aligned): false when out of memory. */
static bool make_call(server *s, const cf__wire_task *t, cf__call *call)
{
    void *p;
    switch (t->kind) {
    case CF__TASK_VALUE:
        call->arg = (void *)(uintptr_t)t->arg;
        return true;
    case CF__TASK_BYTES:
        if (!(p = grow(s, s->scratch, &s->scratch_cap, t->size)))
            return false;
        s->scratch = p;
        memcpy(s->scratch, t->data, t->size);
        call->arg = s->scratch;
        call->arg_size = t->size;
        return true;
    case CF__TASK_CHUNK_VALUES:
        if (!(p = grow(s, s->items, &s->items_cap, t->count * sizeof *s->items)))
            return false;
        s->items = p;
        if (sizeof(void *) == 8) {
            memcpy(s->items, t->data, 8 * t->count);
        } else {
            for (size_t i = 0; i < t->count; i++) {
                uint64_t v;
                memcpy(&v, t->data + 8 * i, 8);
                s->items[i] = (void *)(uintptr_t)v;
            }
        }
        call->count = t->count;
        call->items = s->items;
        return true;
    default: /* CF__TASK_CHUNK_BYTES */
        if (!(p = grow(s, s->scratch, &s->scratch_cap, t->count * t->size)))
            return false;
        s->scratch = p;
        memcpy(s->scratch, t->data, t->count * t->size);
        call->count = t->count;
        call->arg_size = t->size;
        call->item_bytes = s->scratch;
        return true;
    }
}

/* fn on each grain of the items in r, in order, until one fails: 0, or that
 * chunk's status with *o saying how (a cf_return_copy is dropped). */
static int run_grains(cf_range_fn fn, void *ctx, const cf_range *r, size_t grain, size_t in_size,
                      size_t out_size, cf__outcome *o)
{
    for (size_t begin = r->begin; begin < r->end; begin += grain) {
        cf_range chunk = cf__range_part(r, begin, grain, in_size, out_size);
        int rc = cf__run_range(fn, ctx, &chunk, o);
        if (rc != 0)
            return rc;
        cf__outcome_clear(o);
    }
    return 0;
}

/* A free slot of the memory shared with the pool for `bytes` of output,
 * marked busy (the pool frees it once it copied them out), or CF__NO_SLOT. */
static uint64_t take_slot(const server *s, size_t bytes)
{
    cf__shm_header *h = s->io->shm;
    if (!h || bytes == 0 || bytes > CF__SHM_SLOT_BYTES)
        return CF__NO_SLOT;
    for (uint64_t k = 0; k < CF__SHM_SLOTS; k++) /* the lowest first: its pages are warm */
        if (atomic_load_explicit(&h->busy[k], memory_order_acquire) == 0) {
            atomic_store_explicit(&h->busy[k], 1, memory_order_relaxed);
            return k;
        }
    return CF__NO_SLOT;
}

static void give_slot_back(const server *s, uint64_t slot)
{
    atomic_store_explicit(&s->io->shm->busy[slot], 0, memory_order_relaxed);
}

/* Chunks of cf_parallel_for: their input slice copied to aligned memory,
 * their output slice zeroed, in a free slot of the shared memory if there is
 * one (the reply then says which), else in the reply. */
static void run_range(server *s, uint64_t id, const cf__wire_task *t, uintptr_t addr)
{
    const unsigned char *in = NULL;
    if (t->size > 0) {
        void *p = grow(s, s->scratch, &s->scratch_cap, t->count * t->size);
        if (!p)
            return;
        s->scratch = p;
        memcpy(p, t->data, t->count * t->size);
        in = p;
    }
    size_t out_bytes = t->count * t->out_size;
    uint64_t slot = take_slot(s, out_bytes);
    unsigned char *out = NULL;
    if (slot != CF__NO_SLOT) {
        out = cf__shm_slot(s->io->shm, slot);
        memset(out, 0, out_bytes);
    } else if (out_bytes && !(out = cf__calloc(1, out_bytes))) {
        stop(s, CF__WORKER_EXIT_NOMEM);
        return;
    }
    cf_range r = {
        .begin = (size_t)t->begin, .end = (size_t)t->begin + t->count, .in = in, .out = out
    };
    cf__outcome o;
    uint64_t start = uv_hrtime();
    int rc = run_grains((cf_range_fn)addr, (void *)(uintptr_t)t->arg, &r, t->grain, t->size,
                        t->out_size, &o);
    uint64_t run_ns = uv_hrtime() - start;
    if (slot != CF__NO_SLOT) {
        if (rc == 0) {
            if (cf__wire_put_slot_result(&s->out, id, slot, out_bytes, run_ns) != 0)
                stop(s, CF__WORKER_EXIT_NOMEM);
            flush(s);
            return;
        }
        give_slot_back(s, slot); /* the failure travels as usual */
    } else if (rc == 0 && out) {
        o.copy = o.value = out;
        o.size = out_bytes;
    } else {
        cf__free(out);
    }
    reply_result(s, id, &o, run_ns);
}

static void run_task(server *s, const cf__frame *fr)
{
    cf__wire_task t;
    if (cf__wire_get_task(fr, &t) != 0) {
        stop(s, CF__WORKER_EXIT_PROTOCOL);
        return;
    }
    uintptr_t addr;
    char why[512];
    if (cf__fnref_resolve(t.fnref, t.fnref_len, &addr, why, sizeof why) != 0) {
        reply_not_found(s, fr->id, &t, why);
        return;
    }
    if (t.kind == CF__TASK_RANGE) {
        run_range(s, fr->id, &t, addr);
        return;
    }
    cf__call call = { .fn = (cf_fn)addr };
    if (!make_call(s, &t, &call))
        return;
    uint64_t start = uv_hrtime();
    if (call.count == 0) {
        cf__outcome out;
        cf__run_call(call.fn, call.arg, &out);
        reply_result(s, fr->id, &out, uv_hrtime() - start);
    } else {
        cf__chunk_result *chunk = cf__run_chunk(&call);
        reply_chunk(s, fr->id, chunk, call.count, uv_hrtime() - start);
    }
}

/* Tell the parent the initializer cannot run or failed, and stop. Takes
 * message. */
static void init_failed(server *s, int code, char *message)
{
    int rc = cf__wire_put_init_fail(&s->out, code, message);
    cf__free(message);
    if (rc != 0) {
        stop(s, CF__WORKER_EXIT_NOMEM);
        return;
    }
    flush(s);
    stop(s, 0);
}

static void run_init(server *s, const cf__frame *fr)
{
    cf__wire_init init;
    if (cf__wire_get_init(fr, &init) != 0) {
        stop(s, CF__WORKER_EXIT_PROTOCOL);
        return;
    }
    s->max_message = init.max_message > CF__WIRE_MAX_MAX_MESSAGE ? CF__WIRE_MAX_MAX_MESSAGE
                                                                 : (size_t)init.max_message;
    s->frame_limit = cf__wire_frame_limit(s->max_message);
    if (init.fnref) {
        uintptr_t addr;
        char why[512];
        if (cf__fnref_resolve(init.fnref, init.fnref_len, &addr, why, sizeof why) != 0) {
            init_failed(s, CF_EINVAL,
                        not_found_message(s, "initializer", init.fnref, init.fnref_len, why));
            return;
        }
        int (*initializer)(void *) = (int (*)(void *))addr;
        int ret = initializer((void *)(uintptr_t)init.initarg);
        if (ret != 0) {
            init_failed(
                s, ret,
                cf__format("initializer failed (returned %d) in worker %ld", ret, (long)getpid()));
            return;
        }
    }
    if (cf__wire_put_ready(&s->out, (uint64_t)getpid()) != 0) {
        stop(s, CF__WORKER_EXIT_NOMEM);
        return;
    }
    flush(s);
}

/* Handle the whole frames in s->in; keep what is left of a partial one. */
static void handle_frames(server *s, bool *initialised)
{
    size_t pos = 0;
    while (!stopped(s)) {
        cf__frame fr;
        int rc = cf__wire_next_frame(s->in + pos, s->in_len - pos, s->frame_limit, &fr);
        if (rc < 0)
            stop(s, CF__WORKER_EXIT_PROTOCOL);
        if (rc <= 0)
            break;
        if (fr.type == CF__MSG_INIT && !*initialised) {
            run_init(s, &fr);
            *initialised = true;
        } else if (fr.type == CF__MSG_TASK && *initialised) {
            run_task(s, &fr);
        } else if (fr.type == CF__MSG_EXIT) {
            stop(s, 0);
        } else {
            stop(s, CF__WORKER_EXIT_PROTOCOL);
        }
        pos += fr.total;
    }
    if (pos > 0 && !stopped(s)) {
        memmove(s->in, s->in + pos, s->in_len - pos);
        s->in_len -= pos;
    }
}

int cf__serve(const cf__serve_io *io)
{
    server s = { .io = io, .frame_limit = CF__WIRE_SLACK, .status = -1 };
    bool initialised = false;
    while (!stopped(&s)) {
        handle_frames(&s, &initialised);
        if (stopped(&s))
            break;
        void *in = grow(&s, s.in, &s.in_cap, cf__wire_read_room(s.in, s.in_len, s.frame_limit));
        if (!in)
            break;
        s.in = in;
        ptrdiff_t n = io->read(io->ctx, s.in + s.in_len, s.in_cap - s.in_len);
        if (n <= 0)
            stop(&s, 0); /* the parent closed its end, or died */
        else
            s.in_len += (size_t)n;
    }
    fflush(NULL);
    cf__free(s.in);
    cf__buf_free(&s.out);
    cf__free(s.scratch);
    cf__free(s.items);
    return s.status;
}
