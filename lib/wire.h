/* The messages between a process pool and its workers. Never installed.
 *
 * A frame is {u32 length, u8 type, u64 id, payload}, where length counts the
 * bytes after the length field (type + id + payload, so >= 9). Integers are in
 * native byte order: both ends are the same program on the same machine.
 * Every decoder checks every length and offset against the bytes it was given
 * and rejects anything inconsistent with CF_EINVAL, allocating nothing then.
 *
 * Payloads (fnref: u16 length + bytes, see fnref.h; text: u32 length + bytes,
 * or u32 0xffffffff alone for no text at all):
 *   INIT         u64 max_message, u64 initarg, fnref of the initializer (length 0: none)
 *   TASK         fnref, u8 kind, then by kind:
 *                  VALUE        u64 arg
 *                  BYTES        u64 size, bytes
 *                  CHUNK_VALUES u64 count, count x u64
 *                  CHUNK_BYTES  u64 count, u64 arg_size, count x arg_size bytes
 *                  RANGE        u64 ctx, u64 begin, u64 end, u64 grain (>= 1),
 *                               u64 in_size, u64 out_size, (end - begin) x
 *                               in_size bytes; fn runs on each grain of items
 *                               from begin; the reply is a RESULT whose copy
 *                               is the output slice ((end - begin) x out_size
 *                               bytes) or, with out_size 0, the value 0
 *   EXIT         (empty) the worker exits
 *   READY        u64 pid: the initializer (if any) succeeded
 *   INIT_FAIL    i32 code, text
 *   RESULT       u64 run_ns, i32 status (0 or CF_ETASK), i32 code, u8 flags
 *                  (1: copy, 2: message, 4: shared), u64 value | u64 size +
 *                  bytes (1) | u64 slot + u64 size (4: a RANGE task's output
 *                  slice is in that slot of the memory shared with the pool,
 *                  see cf__shm_header), [text]
 *   CHUNK_RESULT u64 run_ns, u64 count, u8 flags (1: copies, 2: message),
 *                  i32 fail_status (0 or CF_ETASK), i32 fail_code, [text],
 *                  then count items: copies ? (u8 is_copy, u64 value | u64 size
 *                  + bytes) : u64 value
 * SPDX-License-Identifier: MIT */
#ifndef CF_WIRE_H
#define CF_WIRE_H

#include "internal.h"

#define CF__WIRE_HEAD 13u /* u32 length + u8 type + u64 id */
/* Room a frame may take beyond the data max_message bounds: headers, the
 * function reference, a message text. */
#define CF__WIRE_SLACK (64u * 1024u)
/* Longest exception message sent (longer ones are cut). */
#define CF__WIRE_MAX_TEXT 4096u
#define CF__WIRE_DEFAULT_MAX_MESSAGE ((size_t)64 * 1024 * 1024)
/* Largest max_message (larger values are capped): a frame's length must fit
 * its u32 field, and a few frames queued for one worker a libuv buffer. */
#define CF__WIRE_MAX_MAX_MESSAGE ((size_t)1 << 30)

/* The memory a process pool shares with each worker (a memfd it sends with
 * the first frame): a header page, then CF__SHM_SLOTS slots. The worker
 * runs a RANGE task whose output slice fits in a slot it finds free (busy
 * 0), marks it busy, and replies with flag 4; the pool copies the slice out
 * and frees the slot. With no slot free the slice travels in the reply, so
 * nobody ever waits for a slot. Few slots, reused: a fresh page costs a
 * fault (about 2 us here), which a slot pays only the first time. */
#define CF__SHM_SLOTS 8u
#define CF__SHM_SLOT_BYTES ((size_t)64 * 1024)
#define CF__SHM_HEADER ((size_t)4096)
#define CF__SHM_BYTES (CF__SHM_HEADER + CF__SHM_SLOTS * CF__SHM_SLOT_BYTES)
typedef struct cf__shm_header {
    _Atomic uint32_t busy[CF__SHM_SLOTS]; /* set by the worker, cleared by the pool */
} cf__shm_header;
#define CF__NO_SLOT UINT64_MAX

/* Where slot `slot` (< CF__SHM_SLOTS) starts in a mapping of that memory. */
static inline unsigned char *cf__shm_slot(cf__shm_header *shm, uint64_t slot)
{
    return (unsigned char *)shm + CF__SHM_HEADER + slot * CF__SHM_SLOT_BYTES;
}

enum cf__msg_type {
    CF__MSG_INIT = 1,
    CF__MSG_TASK = 2,
    CF__MSG_EXIT = 3,
    CF__MSG_READY = 16,
    CF__MSG_INIT_FAIL = 17,
    CF__MSG_RESULT = 18,
    CF__MSG_CHUNK_RESULT = 19,
};

enum cf__task_kind {
    CF__TASK_VALUE = 0,
    CF__TASK_BYTES = 1,
    CF__TASK_CHUNK_VALUES = 2,
    CF__TASK_CHUNK_BYTES = 3,
    CF__TASK_RANGE = 4, /* a chunk of cf_parallel_for */
};

/* A growable output buffer. */
typedef struct cf__buf {
    unsigned char *data;
    size_t len, cap;
} cf__buf;
/* Make room for `more` bytes: 0 or CF_ENOMEM. */
int cf__buf_reserve(cf__buf *b, size_t more);
void cf__buf_free(cf__buf *b);

/* The data bytes a call sends (its copied argument or its chunk's items),
 * which max_message bounds; SIZE_MAX on overflow. */
size_t cf__wire_call_data_size(const cf__call *call);
/* The frame limit for a given max_message (what a reader accepts). */
size_t cf__wire_frame_limit(size_t max_message);

/* Writers append one whole frame; 0, or CF_ENOMEM with the buffer unchanged. */
int cf__wire_put_init(cf__buf *b, uint64_t max_message, uint64_t initarg,
                      const unsigned char *fnref, size_t fnref_len);
int cf__wire_put_task(cf__buf *b, uint64_t id, const unsigned char *fnref, size_t fnref_len,
                      const cf__call *call);
int cf__wire_put_exit(cf__buf *b);
int cf__wire_put_ready(cf__buf *b, uint64_t pid);
int cf__wire_put_init_fail(cf__buf *b, int code, const char *message);
int cf__wire_put_result(cf__buf *b, uint64_t id, const cf__outcome *out, uint64_t run_ns);
/* A RANGE task's successful result: its `size` output bytes are in `slot`. */
int cf__wire_put_slot_result(cf__buf *b, uint64_t id, uint64_t slot, size_t size, uint64_t run_ns);
int cf__wire_put_chunk_result(cf__buf *b, uint64_t id, const cf__chunk_result *chunk,
                              uint64_t run_ns);
/* Bytes cf__wire_put_result / cf__wire_put_chunk_result would append. */
size_t cf__wire_result_size(const cf__outcome *out);
size_t cf__wire_chunk_result_size(const cf__chunk_result *chunk);

typedef struct cf__frame {
    uint8_t type;
    uint64_t id;
    const unsigned char *payload;
    size_t size;  /* payload bytes */
    size_t total; /* bytes the whole frame takes in the buffer */
} cf__frame;

/* Look for a frame at buf[0..len): 1 with *fr filled, 0 when more bytes are
 * needed, CF_EINVAL when the length field is impossible (< 9 or > limit). */
int cf__wire_next_frame(const unsigned char *buf, size_t len, size_t limit, cf__frame *fr);
/* The capacity a read buffer holding buf[0..len) (unhandled bytes, a frame
 * first) needs before its next read: len + 64 KiB, or more to take the whole
 * frame under way once its length (<= limit) is known. */
size_t cf__wire_read_room(const unsigned char *buf, size_t len, size_t limit);

typedef struct cf__wire_init {
    uint64_t max_message;
    uint64_t initarg;
    const unsigned char *fnref; /* NULL: no initializer */
    size_t fnref_len;
} cf__wire_init;
int cf__wire_get_init(const cf__frame *fr, cf__wire_init *init);

typedef struct cf__wire_task {
    const unsigned char *fnref;
    size_t fnref_len;
    int kind;                  /* enum cf__task_kind */
    uint64_t arg;              /* VALUE */
    const unsigned char *data; /* BYTES: size bytes; CHUNK_*: the items (unaligned) */
    size_t size;               /* BYTES: argument bytes; CHUNK_BYTES: arg_size;
                                  RANGE: in_size */
    size_t count;              /* CHUNK_*, RANGE: items */
    uint64_t begin;            /* RANGE: the first item (arg: ctx) */
    size_t grain;              /* RANGE: items per call of fn (>= 1) */
    size_t out_size;           /* RANGE */
} cf__wire_task;
int cf__wire_get_task(const cf__frame *fr, cf__wire_task *task);

int cf__wire_get_ready(const cf__frame *fr, uint64_t *pid);
/* *message is cf__malloc'd (NULL when empty). 0, CF_EINVAL, CF_ENOMEM. */
int cf__wire_get_init_fail(const cf__frame *fr, int *code, char **message);
/* Fills *out (copy and message cf__malloc'd). 0, CF_EINVAL, CF_ENOMEM. */
int cf__wire_get_result(const cf__frame *fr, cf__outcome *out, uint64_t *run_ns);
/* The same, but a successful result must be a copy of dest_size bytes
 * (else CF_EINVAL), and its bytes go to dest instead of a copy of their
 * own: out->copy stays NULL. dest NULL: cf__wire_get_result. A result in a
 * slot of shared memory (flag 4, dest_size bytes, slot < CF__SHM_SLOTS and
 * dest_size <= CF__SHM_SLOT_BYTES, else CF_EINVAL) is accepted only when
 * slot is not NULL: *slot says which, and dest is left for the caller to
 * fill from there (else *slot is CF__NO_SLOT). */
int cf__wire_get_result_into(const cf__frame *fr, cf__outcome *out, uint64_t *run_ns, void *dest,
                             size_t dest_size, uint64_t *slot);
/* A new chunk result of at most max_count items. 0, CF_EINVAL, CF_ENOMEM. */
int cf__wire_get_chunk_result(const cf__frame *fr, size_t max_count, cf__chunk_result **chunk,
                              uint64_t *run_ns);

#endif /* CF_WIRE_H */
