/* Framing and encoding of the process pool's messages (see wire.h).
 * Writers compute a frame's exact size, reserve it once, then fill it;
 * readers go through a cursor that refuses to step past its end.
 * SPDX-License-Identifier: MIT */
#include "wire.h"

#include "fnref.h"

#include <string.h>

/* ------------------------------------------------------------------------ */
/* Output buffer                                                             */
/* ------------------------------------------------------------------------ */

int cf__buf_reserve(cf__buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len)
        return CF_ENOMEM;
    size_t need = b->len + more;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    unsigned char *data = cf__realloc(b->data, cap);
    if (!data)
        return CF_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

void cf__buf_free(cf__buf *b)
{
    cf__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* A cursor filling reserved space. */
typedef struct put {
    unsigned char *p;
} put;

static void put_bytes(put *w, const void *data, size_t n)
{
    if (n)
        memcpy(w->p, data, n);
    w->p += n;
}
static void put_u8(put *w, uint8_t v)
{
    *w->p++ = v;
}
static void put_u16(put *w, uint16_t v)
{
    put_bytes(w, &v, 2);
}
static void put_u32(put *w, uint32_t v)
{
    put_bytes(w, &v, 4);
}
static void put_i32(put *w, int32_t v)
{
    put_bytes(w, &v, 4);
}
static void put_u64(put *w, uint64_t v)
{
    put_bytes(w, &v, 8);
}

/* A text field is u32 length + bytes; NO_TEXT instead of a length stands
 * for a NULL string, so that "" and NULL arrive as they left. */
#define NO_TEXT UINT32_MAX

static size_t text_len(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > CF__WIRE_MAX_TEXT ? CF__WIRE_MAX_TEXT : n;
}
static void put_text(put *w, const char *s)
{
    size_t n = text_len(s);
    put_u32(w, s ? (uint32_t)n : NO_TEXT);
    put_bytes(w, s, n);
}

/* Reserve a frame of `payload` bytes and write its header. */
static int frame_begin(cf__buf *b, uint8_t type, uint64_t id, size_t payload, put *w)
{
    if (payload > UINT32_MAX - 9u)
        return CF_ENOMEM;
    int rc = cf__buf_reserve(b, CF__WIRE_HEAD + payload);
    if (rc != 0)
        return rc;
    w->p = b->data + b->len;
    put_u32(w, (uint32_t)(9 + payload));
    put_u8(w, type);
    put_u64(w, id);
    return 0;
}
static void frame_end(cf__buf *b, const put *w)
{
    b->len = (size_t)(w->p - b->data);
}

/* ------------------------------------------------------------------------ */
/* Sizes and limits                                                          */
/* ------------------------------------------------------------------------ */

/* a * b, or SIZE_MAX when it overflows. */
static size_t size_mul(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

size_t cf__wire_call_data_size(const cf__call *call)
{
    if (call->count == 0 && call->range) { /* the larger of its slices */
        const cf__range_call *rc = call->range;
        size_t items = rc->end - rc->begin;
        size_t in = size_mul(items, rc->in_size), out = size_mul(items, rc->out_size);
        return in > out ? in : out;
    }
    if (call->count == 0)
        return call->arg_size;
    size_t each = call->arg_size ? call->arg_size : 8;
    if (call->count > SIZE_MAX / each)
        return SIZE_MAX;
    return call->count * each;
}

size_t cf__wire_frame_limit(size_t max_message)
{
    if (max_message > CF__WIRE_MAX_MAX_MESSAGE)
        max_message = CF__WIRE_MAX_MAX_MESSAGE;
    return max_message + CF__WIRE_SLACK;
}

/* ------------------------------------------------------------------------ */
/* Writers                                                                   */
/* ------------------------------------------------------------------------ */

int cf__wire_put_init(cf__buf *b, uint64_t max_message, uint64_t initarg,
                      const unsigned char *fnref, size_t fnref_len)
{
    if (fnref_len > UINT16_MAX)
        return CF_EINVAL;
    put w;
    int rc = frame_begin(b, CF__MSG_INIT, 0, 8 + 8 + 2 + fnref_len, &w);
    if (rc != 0)
        return rc;
    put_u64(&w, max_message);
    put_u64(&w, initarg);
    put_u16(&w, (uint16_t)fnref_len);
    put_bytes(&w, fnref, fnref_len);
    frame_end(b, &w);
    return 0;
}

int cf__wire_put_task(cf__buf *b, uint64_t id, const unsigned char *fnref, size_t fnref_len,
                      const cf__call *call)
{
    size_t data = cf__wire_call_data_size(call);
    if (fnref_len > UINT16_MAX || data > UINT32_MAX)
        return CF_ENOMEM;
    const cf__range_call *range = call->count == 0 ? call->range : NULL;
    if (range)
        data = (range->end - range->begin) * range->in_size; /* checked at submit */
    size_t payload = 2 + fnref_len + 1;
    if (range)
        payload += 6 * 8 + data;
    else if (call->count == 0)
        payload += call->arg_size ? 8 + data : 8;
    else
        payload += call->arg_size ? 16 + data : 8 + data;
    put w;
    int rc = frame_begin(b, CF__MSG_TASK, id, payload, &w);
    if (rc != 0)
        return rc;
    put_u16(&w, (uint16_t)fnref_len);
    put_bytes(&w, fnref, fnref_len);
    if (range) {
        put_u8(&w, CF__TASK_RANGE);
        put_u64(&w, (uint64_t)(uintptr_t)range->ctx);
        put_u64(&w, range->begin);
        put_u64(&w, range->end);
        put_u64(&w, range->grain);
        put_u64(&w, range->in_size);
        put_u64(&w, range->out_size);
        put_bytes(&w, range->in, data);
    } else if (call->count == 0 && call->arg_size == 0) {
        put_u8(&w, CF__TASK_VALUE);
        put_u64(&w, (uint64_t)(uintptr_t)call->arg);
    } else if (call->count == 0) {
        put_u8(&w, CF__TASK_BYTES);
        put_u64(&w, call->arg_size);
        put_bytes(&w, call->arg, call->arg_size);
    } else if (call->arg_size == 0) {
        put_u8(&w, CF__TASK_CHUNK_VALUES);
        put_u64(&w, call->count);
        if (sizeof(void *) == 8) { /* the common case: one copy */
            put_bytes(&w, call->items, 8 * call->count);
        } else {
            for (size_t i = 0; i < call->count; i++)
                put_u64(&w, (uint64_t)(uintptr_t)call->items[i]);
        }
    } else {
        put_u8(&w, CF__TASK_CHUNK_BYTES);
        put_u64(&w, call->count);
        put_u64(&w, call->arg_size);
        put_bytes(&w, call->item_bytes, data);
    }
    frame_end(b, &w);
    return 0;
}

int cf__wire_put_exit(cf__buf *b)
{
    put w;
    int rc = frame_begin(b, CF__MSG_EXIT, 0, 0, &w);
    if (rc == 0)
        frame_end(b, &w);
    return rc;
}

int cf__wire_put_ready(cf__buf *b, uint64_t pid)
{
    put w;
    int rc = frame_begin(b, CF__MSG_READY, 0, 8, &w);
    if (rc != 0)
        return rc;
    put_u64(&w, pid);
    frame_end(b, &w);
    return 0;
}

int cf__wire_put_init_fail(cf__buf *b, int code, const char *message)
{
    put w;
    int rc = frame_begin(b, CF__MSG_INIT_FAIL, 0, 4 + 4 + text_len(message), &w);
    if (rc != 0)
        return rc;
    put_i32(&w, code);
    put_text(&w, message);
    frame_end(b, &w);
    return 0;
}

static size_t result_payload(const cf__outcome *out)
{
    size_t n = 8 + 4 + 4 + 1;
    n += out->copy ? 8 + out->size : 8;
    if (out->status != 0)
        n += 4 + text_len(out->message);
    return n;
}

size_t cf__wire_result_size(const cf__outcome *out)
{
    return CF__WIRE_HEAD + result_payload(out);
}

int cf__wire_put_result(cf__buf *b, uint64_t id, const cf__outcome *out, uint64_t run_ns)
{
    put w;
    int rc = frame_begin(b, CF__MSG_RESULT, id, result_payload(out), &w);
    if (rc != 0)
        return rc;
    bool copy = out->status == 0 && out->copy;
    bool text = out->status != 0;
    put_u64(&w, run_ns);
    put_i32(&w, out->status);
    put_i32(&w, out->code);
    put_u8(&w, (uint8_t)((copy ? 1 : 0) | (text ? 2 : 0)));
    if (copy) {
        put_u64(&w, out->size);
        put_bytes(&w, out->copy, out->size);
    } else {
        put_u64(&w, (uint64_t)(uintptr_t)out->value);
    }
    if (text)
        put_text(&w, out->message);
    frame_end(b, &w);
    return 0;
}

int cf__wire_put_slot_result(cf__buf *b, uint64_t id, uint64_t slot, size_t size, uint64_t run_ns)
{
    put w;
    int rc = frame_begin(b, CF__MSG_RESULT, id, 8 + 4 + 4 + 1 + 8 + 8, &w);
    if (rc != 0)
        return rc;
    put_u64(&w, run_ns);
    put_i32(&w, 0);
    put_i32(&w, 0);
    put_u8(&w, 4);
    put_u64(&w, slot);
    put_u64(&w, size);
    frame_end(b, &w);
    return 0;
}

static size_t chunk_payload(const cf__chunk_result *chunk)
{
    size_t n = 8 + 8 + 1 + 4 + 4;
    if (chunk->fail_status != 0)
        n += 4 + text_len(chunk->fail_message);
    if (!chunk->is_copy)
        return n + 8 * chunk->count;
    for (size_t i = 0; i < chunk->count; i++) {
        size_t item = chunk->is_copy[i] ? 1 + 8 + chunk->sizes[i] : 1 + 8;
        n = item > SIZE_MAX - n ? SIZE_MAX : n + item;
    }
    return n;
}

size_t cf__wire_chunk_result_size(const cf__chunk_result *chunk)
{
    size_t n = chunk_payload(chunk);
    return n > SIZE_MAX - CF__WIRE_HEAD ? SIZE_MAX : CF__WIRE_HEAD + n;
}

int cf__wire_put_chunk_result(cf__buf *b, uint64_t id, const cf__chunk_result *chunk,
                              uint64_t run_ns)
{
    put w;
    int rc = frame_begin(b, CF__MSG_CHUNK_RESULT, id, chunk_payload(chunk), &w);
    if (rc != 0)
        return rc;
    bool copies = chunk->is_copy != NULL;
    bool text = chunk->fail_status != 0;
    put_u64(&w, run_ns);
    put_u64(&w, chunk->count);
    put_u8(&w, (uint8_t)((copies ? 1 : 0) | (text ? 2 : 0)));
    put_i32(&w, chunk->fail_status);
    put_i32(&w, chunk->fail_status ? chunk->fail.code : 0);
    if (text)
        put_text(&w, chunk->fail_message);
    if (!copies && sizeof(void *) == 8) {
        put_bytes(&w, chunk->values, 8 * chunk->count);
        frame_end(b, &w);
        return 0;
    }
    for (size_t i = 0; i < chunk->count; i++) {
        if (copies && chunk->is_copy[i]) {
            put_u8(&w, 1);
            put_u64(&w, chunk->sizes[i]);
            put_bytes(&w, chunk->values[i], chunk->sizes[i]);
        } else {
            if (copies)
                put_u8(&w, 0);
            put_u64(&w, (uint64_t)(uintptr_t)chunk->values[i]);
        }
    }
    frame_end(b, &w);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Readers                                                                   */
/* ------------------------------------------------------------------------ */

int cf__wire_next_frame(const unsigned char *buf, size_t len, size_t limit, cf__frame *fr)
{
    if (len < 4)
        return 0;
    uint32_t length;
    memcpy(&length, buf, 4);
    if (length < 9 || length > limit)
        return CF_EINVAL;
    if (len - 4 < length)
        return 0;
    fr->type = buf[4];
    memcpy(&fr->id, buf + 5, 8);
    fr->payload = buf + CF__WIRE_HEAD;
    fr->size = length - 9;
    fr->total = 4 + (size_t)length;
    return 1;
}

size_t cf__wire_read_room(const unsigned char *buf, size_t len, size_t limit)
{
    size_t want = len + 64 * 1024;
    if (len >= 4) {
        uint32_t length;
        memcpy(&length, buf, 4);
        if (length <= limit && 4 + (size_t)length > want)
            want = 4 + (size_t)length;
    }
    return want;
}

/* A cursor over a payload; once `bad`, every read yields zeros. */
typedef struct get {
    const unsigned char *p;
    size_t left;
    bool bad;
} get;

static const unsigned char *get_bytes(get *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}
static uint8_t get_u8(get *r)
{
    const unsigned char *p = get_bytes(r, 1);
    return p ? *p : 0;
}
/* Copy n bytes out (native order: both ends are the same program); on a
 * short input *v keeps its zero and the cursor turns bad. */
static void get_into(get *r, void *v, size_t n)
{
    const unsigned char *p = get_bytes(r, n);
    if (p)
        memcpy(v, p, n);
}
static uint16_t get_u16(get *r)
{
    uint16_t v = 0;
    get_into(r, &v, sizeof v);
    return v;
}
static uint32_t get_u32(get *r)
{
    uint32_t v = 0;
    get_into(r, &v, sizeof v);
    return v;
}
static int32_t get_i32(get *r)
{
    int32_t v = 0;
    get_into(r, &v, sizeof v);
    return v;
}
static uint64_t get_u64(get *r)
{
    uint64_t v = 0;
    get_into(r, &v, sizeof v);
    return v;
}
/* A u64 byte count that must fit in what is left. */
static size_t get_size(get *r)
{
    uint64_t n = get_u64(r);
    if (n > r->left) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}

static get reader(const cf__frame *fr)
{
    return (get){ .p = fr->payload, .left = fr->size, .bad = false };
}

/* A text field as a new string (NULL for NO_TEXT); CF_EINVAL/CF_ENOMEM. */
static int get_text(get *r, char **out)
{
    *out = NULL;
    uint32_t n = get_u32(r);
    if (n == NO_TEXT && !r->bad)
        return 0;
    if (n > CF__WIRE_MAX_TEXT)
        r->bad = true;
    const unsigned char *p = get_bytes(r, n);
    if (r->bad)
        return CF_EINVAL;
    if (n > 0 && memchr(p, '\0', n))
        return CF_EINVAL;
    char *s = cf__malloc((size_t)n + 1);
    if (!s)
        return CF_ENOMEM;
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

static int get_fnref(get *r, const unsigned char **ref, size_t *len)
{
    size_t n = get_u16(r);
    const unsigned char *p = get_bytes(r, n);
    if (r->bad)
        return CF_EINVAL;
    *ref = n ? p : NULL;
    *len = n;
    return n == 0 || cf__fnref_check(p, n) == 0 ? 0 : CF_EINVAL;
}

int cf__wire_get_init(const cf__frame *fr, cf__wire_init *init)
{
    if (fr->type != CF__MSG_INIT)
        return CF_EINVAL;
    get r = reader(fr);
    init->max_message = get_u64(&r);
    init->initarg = get_u64(&r);
    if (get_fnref(&r, &init->fnref, &init->fnref_len) != 0 || r.bad || r.left != 0)
        return CF_EINVAL;
    return 0;
}

int cf__wire_get_task(const cf__frame *fr, cf__wire_task *task)
{
    if (fr->type != CF__MSG_TASK)
        return CF_EINVAL;
    get r = reader(fr);
    memset(task, 0, sizeof *task);
    if (get_fnref(&r, &task->fnref, &task->fnref_len) != 0 || !task->fnref)
        return CF_EINVAL;
    task->kind = get_u8(&r);
    switch (task->kind) {
    case CF__TASK_VALUE:
        task->arg = get_u64(&r);
        break;
    case CF__TASK_BYTES:
        task->size = get_size(&r);
        task->data = get_bytes(&r, task->size);
        if (task->size == 0)
            r.bad = true; /* a copy of nothing travels as a value */
        break;
    case CF__TASK_CHUNK_VALUES:
        task->count = (size_t)get_u64(&r);
        if (task->count == 0 || task->count > r.left / 8)
            r.bad = true;
        else
            task->data = get_bytes(&r, task->count * 8);
        break;
    case CF__TASK_CHUNK_BYTES:
        task->count = (size_t)get_u64(&r);
        task->size = (size_t)get_u64(&r);
        if (task->count == 0 || task->size == 0 || task->size > r.left ||
            task->count > r.left / task->size)
            r.bad = true;
        else
            task->data = get_bytes(&r, task->count * task->size);
        break;
    case CF__TASK_RANGE: {
        task->arg = get_u64(&r);
        task->begin = get_u64(&r);
        uint64_t end = get_u64(&r);
        uint64_t grain = get_u64(&r);
        task->size = (size_t)get_u64(&r);
        task->out_size = (size_t)get_u64(&r);
        if (r.bad || end <= task->begin || end - task->begin > SIZE_MAX / 2 || grain == 0 ||
            grain > SIZE_MAX / 2) {
            r.bad = true;
            break;
        }
        task->count = (size_t)(end - task->begin);
        task->grain = (size_t)grain;
        if (task->size && task->count > r.left / task->size)
            r.bad = true;
        else
            task->data = get_bytes(&r, task->count * task->size);
        if (task->out_size && task->count > (SIZE_MAX / 2) / task->out_size)
            r.bad = true;
        break;
    }
    default:
        r.bad = true;
    }
    return r.bad || r.left != 0 ? CF_EINVAL : 0;
}

int cf__wire_get_ready(const cf__frame *fr, uint64_t *pid)
{
    if (fr->type != CF__MSG_READY)
        return CF_EINVAL;
    get r = reader(fr);
    *pid = get_u64(&r);
    return r.bad || r.left != 0 ? CF_EINVAL : 0;
}

int cf__wire_get_init_fail(const cf__frame *fr, int *code, char **message)
{
    *message = NULL;
    if (fr->type != CF__MSG_INIT_FAIL)
        return CF_EINVAL;
    get r = reader(fr);
    *code = get_i32(&r);
    int rc = get_text(&r, message);
    if (rc == 0 && r.left != 0)
        rc = CF_EINVAL;
    if (rc != 0) {
        cf__free(*message);
        *message = NULL;
    }
    return rc;
}

/* A cf__malloc'd copy of size bytes (at least 1 byte allocated), or NULL. */
static void *dup_bytes(const unsigned char *bytes, size_t size)
{
    void *dup = cf__malloc(size ? size : 1);
    if (dup && size)
        memcpy(dup, bytes, size);
    return dup;
}

int cf__wire_get_result(const cf__frame *fr, cf__outcome *out, uint64_t *run_ns)
{
    return cf__wire_get_result_into(fr, out, run_ns, NULL, 0, NULL);
}

/* A RESULT with flag 4: the output slice is in a slot of shared memory. */
static int get_slot_result(get *r, int status, int code, const void *dest, size_t dest_size,
                           uint64_t *slot)
{
    uint64_t at = get_u64(r);
    uint64_t size = get_u64(r); /* no bytes follow */
    if (r->bad || r->left != 0 || status != 0 || code != 0 || !dest || !slot ||
        at >= CF__SHM_SLOTS || size != dest_size || size > CF__SHM_SLOT_BYTES)
        return CF_EINVAL;
    *slot = at;
    return 0;
}

int cf__wire_get_result_into(const cf__frame *fr, cf__outcome *out, uint64_t *run_ns, void *dest,
                             size_t dest_size, uint64_t *slot)
{
    memset(out, 0, sizeof *out);
    if (slot)
        *slot = CF__NO_SLOT;
    if (fr->type != CF__MSG_RESULT)
        return CF_EINVAL;
    get r = reader(fr);
    *run_ns = get_u64(&r);
    int status = get_i32(&r);
    int code = get_i32(&r);
    uint8_t flags = get_u8(&r);
    if (flags == 4)
        return get_slot_result(&r, status, code, dest, dest_size, slot);
    bool copy = flags & 1, text = flags & 2;
    if ((flags & ~3u) || (status != 0 && status != CF_ETASK) || (copy && status != 0) ||
        (text != (status != 0)))
        return CF_EINVAL;
    const unsigned char *bytes = NULL;
    size_t size = 0;
    uint64_t value = 0;
    if (copy) {
        size = get_size(&r);
        bytes = get_bytes(&r, size);
    } else {
        value = get_u64(&r);
    }
    if (r.bad || (dest && status == 0 && (!copy || size != dest_size)))
        return CF_EINVAL;
    char *message = NULL;
    if (text) {
        int rc = get_text(&r, &message);
        if (rc != 0)
            return rc;
    }
    if (r.left != 0) {
        cf__free(message);
        return CF_EINVAL;
    }
    if (copy && dest) {
        memcpy(dest, bytes, size);
    } else if (copy) {
        void *dup = dup_bytes(bytes, size);
        if (!dup)
            return CF_ENOMEM; /* message is NULL: a copy comes only with status 0 */
        out->copy = out->value = dup;
        out->size = size;
    } else {
        out->value = (void *)(uintptr_t)value;
    }
    out->status = status;
    out->code = code;
    out->message = message;
    return 0;
}

/* A chunk result's `count` items into chunk: 0, CF_EINVAL (r goes bad on
 * a short frame) or CF_ENOMEM. */
static int get_chunk_items(get *r, uint64_t count, bool copies, cf__chunk_result *chunk)
{
    int rc = 0;
    if (!copies && sizeof(void *) == 8) { /* the common case: one copy */
        const unsigned char *values = get_bytes(r, 8 * (size_t)count);
        if (values && count)
            memcpy(chunk->values, values, 8 * (size_t)count);
        chunk->count = (size_t)count;
    }
    for (size_t i = chunk->count; i < count && rc == 0; i++) {
        uint8_t is_copy = copies ? get_u8(r) : 0;
        if (is_copy > 1) {
            rc = CF_EINVAL;
        } else if (is_copy) {
            size_t size = get_size(r);
            const unsigned char *bytes = get_bytes(r, size);
            if (r->bad)
                break;
            void *dup = dup_bytes(bytes, size);
            if (!dup)
                return CF_ENOMEM;
            rc = cf__chunk_result_add_copy(chunk, dup, size);
        } else {
            uint64_t v = get_u64(r);
            if (r->bad)
                break;
            cf__chunk_result_add_value(chunk, (void *)(uintptr_t)v);
        }
    }
    return rc;
}

int cf__wire_get_chunk_result(const cf__frame *fr, size_t max_count, cf__chunk_result **out,
                              uint64_t *run_ns)
{
    *out = NULL;
    if (fr->type != CF__MSG_CHUNK_RESULT)
        return CF_EINVAL;
    get r = reader(fr);
    *run_ns = get_u64(&r);
    uint64_t count = get_u64(&r);
    uint8_t flags = get_u8(&r);
    int fail_status = get_i32(&r);
    int fail_code = get_i32(&r);
    bool copies = flags & 1, text = flags & 2;
    if (r.bad || (flags & ~3u) || count > max_count ||
        (fail_status != 0 && fail_status != CF_ETASK) || text != (fail_status != 0) ||
        (fail_status == 0 && count != max_count) || (fail_status != 0 && count >= max_count) ||
        count > r.left / (copies ? 9 : 8))
        return CF_EINVAL;
    char *message = NULL;
    if (text) {
        int rc = get_text(&r, &message);
        if (rc != 0)
            return rc;
    }
    cf__chunk_result *chunk = cf__chunk_result_new(count ? (size_t)count : 1);
    if (!chunk) {
        cf__free(message);
        return CF_ENOMEM;
    }
    int rc = get_chunk_items(&r, count, copies, chunk);
    if (rc == 0 && (r.bad || r.left != 0))
        rc = CF_EINVAL;
    if (rc != 0) {
        cf__free(message);
        cf__chunk_result_free(chunk);
        return rc;
    }
    if (fail_status != 0)
        cf__chunk_result_fail(chunk, fail_status, fail_code, message, 0, -1);
    *out = chunk;
    return 0;
}
