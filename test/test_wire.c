/* The process pool's wire format and function references, white-box: every
 * message round-trips; truncated, bit-flipped and random frames are refused
 * without a crash or a leak (ASan watches); and, end to end, a worker that
 * writes garbage on its reply channel fails only its own task.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include "check.h"
#include "wire_decode.h"
#include "worker.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#define V(n) ((void *)(intptr_t)(n))
#define I(p) ((intptr_t)(p))

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void *twice(void *arg)
{
    return V(I(arg) * 2);
}

static int one_frame(const cf__buf *b, cf__frame *fr)
{
    return cf__wire_next_frame(b->data, b->len, SIZE_MAX, fr);
}

/* Decode buf[0..len) frame by frame, as a reader would. */
static void decode_stream(const unsigned char *buf, size_t len)
{
    size_t pos = 0;
    cf__frame fr;
    while (cf__wire_next_frame(buf + pos, len - pos, 1 << 20, &fr) == 1) {
        wire_decode_all(&fr, true);
        pos += fr.total;
    }
}

/* Chunks of 2 items of a parallel loop over [begin, end), its input item i
 * being the bytes i * 10 + k; ctx 77. */
static cf__range_call *range_call(size_t begin, size_t end, size_t in_size, size_t out_size)
{
    size_t bytes = (end - begin) * in_size;
    cf__range_call *rc = cf__malloc(sizeof *rc + bytes);
    CHECK(rc != NULL);
    *rc = (cf__range_call){ .fn = (cf_range_fn)(uintptr_t)twice,
                            .ctx = V(77),
                            .begin = begin,
                            .end = end,
                            .grain = 2,
                            .in_size = in_size,
                            .out_size = out_size };
    for (size_t i = 0; i < bytes; i++)
        rc->in[i] = (unsigned char)((begin + i / in_size) * 10 + i % in_size);
    return rc;
}

/* A corpus of valid frames of every type. */
static void build_corpus(cf__buf *b)
{
    unsigned char ref[CF__FNREF_MAX];
    int len = cf__fnref_encode((uintptr_t)twice, ref, sizeof ref);
    CHECK(len > 0);
    CHECK_EQ(cf__wire_put_init(b, 1000, 7, ref, (size_t)len), 0);
    CHECK_EQ(cf__wire_put_init(b, 1000, 7, NULL, 0), 0);
    cf__call call = { .fn = twice, .arg = V(5) };
    CHECK_EQ(cf__wire_put_task(b, 1, ref, (size_t)len, &call), 0);
    char bytes[] = "hello";
    call = (cf__call){ .fn = twice, .arg = bytes, .arg_size = sizeof bytes };
    CHECK_EQ(cf__wire_put_task(b, 2, ref, (size_t)len, &call), 0);
    void *items[3] = { V(1), V(2), V(3) };
    call = (cf__call){ .fn = twice, .count = 3, .items = items };
    CHECK_EQ(cf__wire_put_task(b, 3, ref, (size_t)len, &call), 0);
    unsigned char ib[6] = { 1, 2, 3, 4, 5, 6 };
    call = (cf__call){ .fn = twice, .count = 3, .arg_size = 2, .item_bytes = ib };
    CHECK_EQ(cf__wire_put_task(b, 4, ref, (size_t)len, &call), 0);
    call = (cf__call){ .range = range_call(10, 13, 2, 8) };
    CHECK_EQ(cf__wire_put_task(b, 10, ref, (size_t)len, &call), 0);
    cf__call_clear(&call);
    CHECK_EQ(cf__wire_put_exit(b), 0);
    CHECK_EQ(cf__wire_put_ready(b, 1234), 0);
    CHECK_EQ(cf__wire_put_init_fail(b, 3, "init failed"), 0);
    cf__outcome out = { .value = V(9) };
    CHECK_EQ(cf__wire_put_result(b, 5, &out, 100), 0);
    char copy[] = "copy!";
    out = (cf__outcome){ .value = copy, .copy = copy, .size = sizeof copy };
    CHECK_EQ(cf__wire_put_result(b, 6, &out, 100), 0);
    out = (cf__outcome){ .status = CF_ETASK, .code = 42, .message = (char *)"boom" };
    CHECK_EQ(cf__wire_put_result(b, 7, &out, 100), 0);
    cf__chunk_result *chunk = cf__chunk_result_new(3);
    CHECK(chunk != NULL);
    cf__chunk_result_add_value(chunk, V(10));
    char *c1 = cf__strdup("abc");
    CHECK_EQ(cf__chunk_result_add_copy(chunk, c1, 4), 0);
    cf__chunk_result_fail(chunk, CF_ETASK, 5, cf__strdup("item 2 failed"), 0, -1);
    CHECK_EQ(cf__wire_put_chunk_result(b, 8, chunk, 100), 0);
    cf__chunk_result_free(chunk);
    chunk = cf__chunk_result_new(2);
    cf__chunk_result_add_value(chunk, V(1));
    cf__chunk_result_add_value(chunk, V(2));
    CHECK_EQ(cf__wire_put_chunk_result(b, 9, chunk, 100), 0);
    cf__chunk_result_free(chunk);
    /* A parallel loop's output slice left in slot 3 of the shared memory. */
    CHECK_EQ(cf__wire_put_slot_result(b, 11, 3, 24, 100), 0);
}

static void test_round_trip(void)
{
    cf__buf b = { 0 };
    build_corpus(&b);
    const unsigned char *p = b.data;
    size_t left = b.len;
    cf__frame fr;
    unsigned char ref[CF__FNREF_MAX];
    int len = cf__fnref_encode((uintptr_t)twice, ref, sizeof ref);

#define NEXT()                                                                                     \
    do {                                                                                           \
        CHECK_EQ(cf__wire_next_frame(p, left, SIZE_MAX, &fr), 1);                                  \
        p += fr.total;                                                                             \
        left -= fr.total;                                                                          \
    } while (0)

    cf__wire_init init;
    NEXT();
    CHECK_EQ(cf__wire_get_init(&fr, &init), 0);
    CHECK_EQ(init.max_message, 1000);
    CHECK_EQ(init.initarg, 7);
    CHECK_EQ(init.fnref_len, (size_t)len);
    CHECK(memcmp(init.fnref, ref, (size_t)len) == 0);
    NEXT();
    CHECK_EQ(cf__wire_get_init(&fr, &init), 0);
    CHECK(init.fnref == NULL);

    cf__wire_task t;
    NEXT();
    CHECK_EQ(fr.id, 1);
    CHECK_EQ(cf__wire_get_task(&fr, &t), 0);
    CHECK_EQ(t.kind, CF__TASK_VALUE);
    CHECK_EQ(t.arg, 5);
    NEXT();
    CHECK_EQ(cf__wire_get_task(&fr, &t), 0);
    CHECK_EQ(t.kind, CF__TASK_BYTES);
    CHECK_EQ(t.size, 6);
    CHECK(memcmp(t.data, "hello", 6) == 0);
    NEXT();
    CHECK_EQ(cf__wire_get_task(&fr, &t), 0);
    CHECK_EQ(t.kind, CF__TASK_CHUNK_VALUES);
    CHECK_EQ(t.count, 3);
    uint64_t v3;
    memcpy(&v3, t.data + 16, 8);
    CHECK_EQ(v3, 3);
    NEXT();
    CHECK_EQ(cf__wire_get_task(&fr, &t), 0);
    CHECK_EQ(t.kind, CF__TASK_CHUNK_BYTES);
    CHECK_EQ(t.count, 3);
    CHECK_EQ(t.size, 2);
    CHECK_EQ(t.data[5], 6);
    NEXT();
    CHECK_EQ(fr.id, 10);
    CHECK_EQ(cf__wire_get_task(&fr, &t), 0);
    CHECK_EQ(t.kind, CF__TASK_RANGE);
    CHECK_EQ(t.arg, 77);
    CHECK_EQ(t.begin, 10);
    CHECK_EQ(t.count, 3);
    CHECK_EQ(t.grain, 2);
    CHECK_EQ(t.size, 2);
    CHECK_EQ(t.out_size, 8);
    CHECK_EQ(t.data[0], 100);
    CHECK_EQ(t.data[5], 121); /* item 12, byte 1 */
    NEXT();
    CHECK_EQ(fr.type, CF__MSG_EXIT);
    uint64_t u;
    NEXT();
    CHECK_EQ(cf__wire_get_ready(&fr, &u), 0);
    CHECK_EQ(u, 1234);
    int code;
    char *msg;
    NEXT();
    CHECK_EQ(cf__wire_get_init_fail(&fr, &code, &msg), 0);
    CHECK_EQ(code, 3);
    CHECK_STR(msg, "init failed");
    cf__free(msg);

    cf__outcome out;
    NEXT();
    CHECK_EQ(cf__wire_get_result(&fr, &out, &u), 0);
    CHECK_EQ(u, 100);
    CHECK_EQ(out.status, 0);
    CHECK_EQ(I(out.value), 9);
    CHECK(out.copy == NULL);
    char slot[8];
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, slot, 8, NULL), CF_EINVAL); /* no bytes */
    NEXT();
    CHECK_EQ(cf__wire_get_result(&fr, &out, &u), 0);
    CHECK(out.copy != NULL && out.value == out.copy);
    CHECK_EQ(out.size, 6);
    CHECK_STR((char *)out.copy, "copy!");
    cf__outcome_clear(&out);
    /* Into a destination (a parallel loop's out slice): exactly its size. */
    char dest[8] = "xxxxxxx";
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, dest, 6, NULL), 0);
    CHECK(out.copy == NULL);
    CHECK_STR(dest, "copy!");
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, dest, 7, NULL), CF_EINVAL);
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, dest, 5, NULL), CF_EINVAL);
    NEXT();
    CHECK_EQ(cf__wire_get_result(&fr, &out, &u), 0);
    CHECK_EQ(out.status, CF_ETASK);
    CHECK_EQ(out.code, 42);
    CHECK_STR(out.message, "boom");
    cf__outcome_clear(&out);
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, dest, 6, NULL),
             0); /* a failure has no bytes */
    CHECK_EQ(out.status, CF_ETASK);
    cf__outcome_clear(&out);

    cf__chunk_result *chunk;
    NEXT();
    CHECK_EQ(cf__wire_get_chunk_result(&fr, 2, &chunk, &u), CF_EINVAL); /* count must fit */
    CHECK_EQ(cf__wire_get_chunk_result(&fr, 3, &chunk, &u), 0);
    CHECK_EQ(chunk->count, 2);
    CHECK_EQ(I(chunk->values[0]), 10);
    CHECK(chunk->is_copy && !chunk->is_copy[0] && chunk->is_copy[1]);
    CHECK_STR((char *)chunk->values[1], "abc");
    CHECK_EQ(chunk->fail_status, CF_ETASK);
    CHECK_EQ(chunk->fail.code, 5);
    CHECK_STR(chunk->fail.message, "item 2 failed");
    cf__chunk_result_free(chunk);
    NEXT();
    CHECK_EQ(cf__wire_get_chunk_result(&fr, 3, &chunk, &u),
             CF_EINVAL); /* a short chunk must fail */
    CHECK_EQ(cf__wire_get_chunk_result(&fr, 2, &chunk, &u), 0);
    CHECK_EQ(chunk->count, 2);
    CHECK_EQ(chunk->fail_status, 0);
    CHECK(chunk->is_copy == NULL);
    cf__chunk_result_free(chunk);
    NEXT();
    CHECK_EQ(fr.id, 11);
    unsigned char out_slice[24];
    uint64_t slot_of = 0;
    /* Only where slots can be, and exactly the slice's size. */
    CHECK_EQ(cf__wire_get_result(&fr, &out, &u), CF_EINVAL);
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, out_slice, 24, NULL), CF_EINVAL);
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, out_slice, 16, &slot_of), CF_EINVAL);
    CHECK_EQ(cf__wire_get_result_into(&fr, &out, &u, out_slice, 24, &slot_of), 0);
    CHECK_EQ(slot_of, 3);
    CHECK_EQ(out.status, 0);
    CHECK(out.copy == NULL);
    /* An ordinary result says no slot. */
    CHECK_EQ(left, 0);
#undef NEXT
    cf__buf_free(&b);
}

/* A slot result is refused unless its slot and size fit the shared memory. */
static void test_slot_bounds(void)
{
    static unsigned char dest[CF__SHM_SLOT_BYTES + 8];
    struct {
        uint64_t slot;
        size_t size;
        int rc;
    } cases[] = {
        { CF__SHM_SLOTS - 1, CF__SHM_SLOT_BYTES, 0 },
        { CF__SHM_SLOTS, 8, CF_EINVAL },
        { 0, CF__SHM_SLOT_BYTES + 8, CF_EINVAL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf__buf b = { 0 };
        CHECK_EQ(cf__wire_put_slot_result(&b, 1, cases[i].slot, cases[i].size, 0), 0);
        cf__frame fr;
        CHECK_EQ(cf__wire_next_frame(b.data, b.len, 1 << 20, &fr), 1);
        cf__outcome out;
        uint64_t run_ns, slot;
        CHECK_EQ(cf__wire_get_result_into(&fr, &out, &run_ns, dest, cases[i].size, &slot),
                 cases[i].rc);
        if (cases[i].rc == 0)
            CHECK_EQ(slot, cases[i].slot);
        cf__buf_free(&b);
    }
}

static void test_frames(void)
{
    unsigned char buf[32] = { 0 };
    cf__frame fr;
    CHECK_EQ(cf__wire_next_frame(buf, 3, 100, &fr), 0); /* no length yet */
    uint32_t length = 8;                                /* shorter than type + id */
    memcpy(buf, &length, 4);
    CHECK_EQ(cf__wire_next_frame(buf, 32, 100, &fr), CF_EINVAL);
    length = 101; /* over the limit */
    memcpy(buf, &length, 4);
    CHECK_EQ(cf__wire_next_frame(buf, 32, 100, &fr), CF_EINVAL);
    length = 20; /* needs more bytes */
    memcpy(buf, &length, 4);
    CHECK_EQ(cf__wire_next_frame(buf, 23, 100, &fr), 0);
    CHECK_EQ(cf__wire_next_frame(buf, 24, 100, &fr), 1);
    CHECK_EQ(fr.size, 11);
    CHECK_EQ(fr.total, 24);

    /* every prefix of a valid frame is "need more" */
    cf__buf b = { 0 };
    CHECK_EQ(cf__wire_put_ready(&b, 1), 0);
    for (size_t n = 0; n < b.len; n++)
        CHECK_EQ(cf__wire_next_frame(b.data, n, 1000, &fr), 0);
    cf__buf_free(&b);

    /* limits: what max_message bounds */
    cf__call call = { .arg_size = 100 };
    CHECK_EQ(cf__wire_call_data_size(&call), 100);
    call = (cf__call){ .count = 10 };
    CHECK_EQ(cf__wire_call_data_size(&call), 80);
    call = (cf__call){ .count = SIZE_MAX / 2, .arg_size = 4 };
    CHECK_EQ(cf__wire_call_data_size(&call), SIZE_MAX);
    call = (cf__call){ .range = range_call(0, 10, 3, 5) }; /* the larger slice */
    CHECK_EQ(cf__wire_call_data_size(&call), 50);
    cf__call_clear(&call);
    CHECK(cf__wire_frame_limit(SIZE_MAX) <= UINT32_MAX);
}

static void test_lengths_checked(void)
{
    /* A result whose copy claims more bytes than the frame holds. */
    cf__buf b = { 0 };
    char copy[8] = "1234567";
    cf__outcome out = { .value = copy, .copy = copy, .size = sizeof copy };
    CHECK_EQ(cf__wire_put_result(&b, 1, &out, 0), 0);
    uint64_t huge = UINT64_MAX - 3;
    memcpy(b.data + CF__WIRE_HEAD + 8 + 4 + 4 + 1, &huge, 8);
    cf__frame fr;
    CHECK_EQ(one_frame(&b, &fr), 1);
    uint64_t u;
    CHECK_EQ(cf__wire_get_result(&fr, &out, &u), CF_EINVAL);

    /* A chunk task whose count * arg_size overflows. */
    b.len = 0;
    unsigned char ib[4] = { 0 };
    unsigned char ref[CF__FNREF_MAX];
    int len = cf__fnref_encode((uintptr_t)twice, ref, sizeof ref);
    cf__call call = { .fn = twice, .count = 2, .arg_size = 2, .item_bytes = ib };
    CHECK_EQ(cf__wire_put_task(&b, 1, ref, (size_t)len, &call), 0);
    size_t at = CF__WIRE_HEAD + 2 + (size_t)len + 1;
    uint64_t count = UINT64_MAX / 2 + 1, size = 2;
    memcpy(b.data + at, &count, 8);
    memcpy(b.data + at + 8, &size, 8);
    CHECK_EQ(one_frame(&b, &fr), 1);
    cf__wire_task t;
    CHECK_EQ(cf__wire_get_task(&fr, &t), CF_EINVAL);

    /* A loop's chunks whose end is not past their begin, whose grain is 0 or
     * absurd, whose input slice is longer than the frame, or whose output
     * slice overflows. */
    struct {
        uint64_t begin, end, grain, in_size, out_size;
    } bad[] = {
        { 5, 5, 1, 1, 1 },          { 6, 5, 1, 1, 1 },    { 0, 4, 0, 1, 1 },
        { 0, 4, UINT64_MAX, 1, 1 }, { 0, 4, 1, 1000, 1 }, { 0, 4, 1, 1, UINT64_MAX / 4 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.len = 0;
        call = (cf__call){ .range = range_call(0, 4, 1, 1) };
        CHECK_EQ(cf__wire_put_task(&b, 1, ref, (size_t)len, &call), 0);
        cf__call_clear(&call);
        CHECK_EQ(one_frame(&b, &fr), 1);
        CHECK_EQ(cf__wire_get_task(&fr, &t), 0);
        memcpy(b.data + at + 8, &bad[i], sizeof bad[i]); /* after ctx */
        CHECK_EQ(one_frame(&b, &fr), 1);
        CHECK_EQ(cf__wire_get_task(&fr, &t), CF_EINVAL);
    }

    /* A message text with a NUL inside, or longer than allowed. */
    b.len = 0;
    CHECK_EQ(cf__wire_put_init_fail(&b, 1, "abc"), 0);
    b.data[CF__WIRE_HEAD + 4 + 4 + 1] = 0;
    CHECK_EQ(one_frame(&b, &fr), 1);
    int code;
    char *msg;
    CHECK_EQ(cf__wire_get_init_fail(&fr, &code, &msg), CF_EINVAL);
    CHECK(msg == NULL);
    cf__buf_free(&b);
}

static void test_garbage_refused(void)
{
    cf__buf b = { 0 };
    build_corpus(&b);
    /* each frame truncated at every length: a decoder must see a short payload */
    size_t pos = 0;
    cf__frame fr;
    while (cf__wire_next_frame(b.data + pos, b.len - pos, SIZE_MAX, &fr) == 1) {
        for (size_t cut = 0; cut < fr.size; cut++) {
            cf__frame t = fr;
            t.size = cut;
            unsigned char *copy = cf__malloc(cut ? cut : 1); /* ASan sees overreads */
            CHECK(copy != NULL);
            memcpy(copy, fr.payload, cut);
            t.payload = copy;
            wire_decode_all(&t, true);
            cf__free(copy);
        }
        pos += fr.total;
    }
    /* bit flips and byte changes anywhere in the stream */
    unsigned char *m = cf__malloc(b.len);
    CHECK(m != NULL);
    for (int round = 0; round < 4000; round++) {
        memcpy(m, b.data, b.len);
        int changes = 1 + (int)(next_random() % 4);
        for (int k = 0; k < changes; k++) {
            size_t at = next_random() % b.len;
            if (next_random() % 2)
                m[at] ^= (unsigned char)(1u << (next_random() % 8));
            else
                m[at] = (unsigned char)next_random();
        }
        decode_stream(m, b.len);
    }
    cf__free(m);
    /* pure noise */
    unsigned char noise[512];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof noise; i++)
            noise[i] = (unsigned char)next_random();
        uint32_t length = (uint32_t)(next_random() % (sizeof noise - 4));
        memcpy(noise, &length, 4); /* mostly complete frames, to reach the decoders */
        noise[4] = (unsigned char)(1 + next_random() % 20);
        decode_stream(noise, sizeof noise);
    }
    cf__buf_free(&b);
}

static void test_fnref(void)
{
    unsigned char ref[CF__FNREF_MAX];
    int len = cf__fnref_encode((uintptr_t)twice, ref, sizeof ref);
    CHECK(len > 0);
    CHECK_EQ(cf__fnref_check(ref, (size_t)len), 0);
    CHECK(ref[0] > 0); /* our build has a build-id */
    uintptr_t addr = 0;
    char why[256];
    CHECK_EQ(cf__fnref_resolve(ref, (size_t)len, &addr, why, sizeof why), 0);
    CHECK(addr == (uintptr_t)twice);
    char desc[256];
    cf__fnref_describe(ref, (size_t)len, desc, sizeof desc);
    CHECK(strstr(desc, "main program") != NULL);

    /* a function of a shared library (libc) travels too */
    unsigned char ref2[CF__FNREF_MAX];
    int len2 = cf__fnref_encode((uintptr_t)getpid, ref2, sizeof ref2);
    CHECK(len2 > 0);
    CHECK_EQ(cf__fnref_resolve(ref2, (size_t)len2, &addr, why, sizeof why), 0);
    CHECK(addr == (uintptr_t)getpid);

    /* another build: refused */
    unsigned char bad[CF__FNREF_MAX];
    memcpy(bad, ref, (size_t)len);
    bad[1] ^= 0xff;
    CHECK_EQ(cf__fnref_resolve(bad, (size_t)len, &addr, why, sizeof why), CF_EINVAL);
    /* an offset outside the object's code: refused */
    memcpy(bad, ref, (size_t)len);
    uint64_t off = UINT64_MAX / 2;
    memcpy(bad + len - 8, &off, 8);
    CHECK_EQ(cf__fnref_resolve(bad, (size_t)len, &addr, why, sizeof why), CF_EINVAL);
    /* malformed lengths */
    CHECK_EQ(cf__fnref_check(ref, (size_t)len - 1), CF_EINVAL);
    CHECK_EQ(cf__fnref_check(ref, 0), CF_EINVAL);
    memcpy(bad, ref, (size_t)len);
    bad[0] = 200;
    CHECK_EQ(cf__fnref_check(bad, (size_t)len), CF_EINVAL);
    /* data is not code */
    static int not_code;
    CHECK_EQ(cf__fnref_encode((uintptr_t)&not_code, ref, sizeof ref), CF_EINVAL);
    CHECK_EQ(cf__fnref_encode(16, ref, sizeof ref), CF_EINVAL);
}

/* --- a worker that garbles its replies --- */

static void write_reply_fd(const void *p, size_t n)
{
    int fd = cf__worker_reply_fd();
    CHECK(fd >= 0);
    CHECK(write(fd, p, n) == (ssize_t)n);
}

static void *garbage_length(void *arg)
{
    (void)arg;
    write_reply_fd("\xff\xff\xff\xff", 4);
    return V(1);
}

static void *garbage_type(void *arg)
{
    (void)arg;
    unsigned char f[13] = { 9, 0, 0, 0, 99 };
    write_reply_fd(f, sizeof f);
    return V(1);
}

static void *garbage_noise(void *arg)
{
    unsigned char f[64];
    uint64_t x = (uint64_t)I(arg) * 0x9E3779B97F4A7C15u + 1;
    for (size_t i = 0; i < sizeof f; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f[i] = (unsigned char)x;
    }
    write_reply_fd(f, sizeof f);
    return V(1);
}

static void *reply_wrong_id(void *arg)
{
    (void)arg;
    cf__buf b = { 0 };
    cf__outcome out = { .value = V(5) };
    CHECK_EQ(cf__wire_put_result(&b, 987654321, &out, 0), 0);
    write_reply_fd(b.data, b.len);
    cf__buf_free(&b);
    return V(1);
}

static void *truncated_then_exit(void *arg)
{
    (void)arg;
    write_reply_fd("\x40\x00", 2);
    _exit(0);
}

static void test_garbled_worker(void)
{
    CHECK_EQ(cf__worker_reply_fd(), -1); /* not a worker */
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 });
    CHECK(ex != NULL);
    cf_fn bad[] = { garbage_length, garbage_type,  reply_wrong_id, truncated_then_exit,
                    garbage_noise,  garbage_noise, garbage_noise,  garbage_noise };
    enum { NBAD = sizeof bad / sizeof bad[0] };
    cf_future *fs[NBAD], *good[NBAD * 4];
    for (int i = 0; i < NBAD; i++) {
        fs[i] = cf_submit(ex, bad[i], V(i));
        for (int k = 0; k < 4; k++)
            good[4 * i + k] = cf_submit(ex, twice, V(4 * i + k));
    }
    for (int i = 0; i < NBAD; i++) {
        CHECK_EQ(cf_future_result(fs[i], CF_FOREVER, NULL), CF_EBROKEN);
        const cf_exception *exc = NULL;
        CHECK_EQ(cf_future_exception(fs[i], 0, &exc), 0);
        CHECK(exc != NULL);
        CHECK_EQ(exc->code, CF_EBROKEN);
        if (bad[i] == truncated_then_exit)
            CHECK(strstr(exc->message, "exited with status 0") != NULL);
        else
            CHECK(strstr(exc->message, "worker sent") != NULL);
        cf_future_unref(fs[i]);
    }
    for (int i = 0; i < NBAD * 4; i++) {
        void *v;
        CHECK_EQ(cf_future_result(good[i], CF_FOREVER, &v), 0);
        CHECK_EQ(I(v), 2 * i);
        cf_future_unref(good[i]);
    }
    cf_executor_free(ex);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_frames);
    RUN(test_slot_bounds);
    RUN(test_lengths_checked);
    RUN(test_garbage_refused);
    RUN(test_fnref);
    RUN(test_garbled_worker);
    return 0;
}
