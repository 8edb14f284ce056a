/* Every wire decoder over one frame, freeing whatever a success allocated:
 * shared by test_wire and the libFuzzer target, so that a new decoder is
 * added to both at once. resolve_fnrefs: also look up a task's function
 * (test_wire only: the fuzzer must not dlopen paths made of random bytes).
 * SPDX-License-Identifier: MIT */
#ifndef CF_TEST_WIRE_DECODE_H
#define CF_TEST_WIRE_DECODE_H

#include "internal.h"

#include "fnref.h"
#include "wire.h"

static inline void wire_decode_all(const cf__frame *fr, bool resolve_fnrefs)
{
    cf__wire_init init;
    cf__wire_task task;
    uint64_t u;
    int code;
    char *msg;
    cf__outcome out;
    cf__chunk_result *chunk;
    if (cf__wire_get_init(fr, &init) == 0 && init.fnref) {
        char desc[128];
        cf__fnref_describe(init.fnref, init.fnref_len, desc, sizeof desc);
    }
    if (cf__wire_get_task(fr, &task) == 0 && task.fnref && resolve_fnrefs) {
        uintptr_t addr;
        char why[256];
        (void)cf__fnref_resolve(task.fnref, task.fnref_len, &addr, why, sizeof why);
    }
    (void)cf__wire_get_ready(fr, &u);
    if (cf__wire_get_init_fail(fr, &code, &msg) == 0)
        cf__free(msg);
    if (cf__wire_get_result(fr, &out, &u) == 0)
        cf__outcome_clear(&out);
    /* Into a parallel loop's slice, the bytes in the reply or in a slot. */
    unsigned char slice[32];
    uint64_t slot;
    for (size_t size = 0; size <= sizeof slice; size += 8)
        if (cf__wire_get_result_into(fr, &out, &u, slice, size, &slot) == 0)
            cf__outcome_clear(&out);
    for (size_t max = 0; max < 6; max++)
        if (cf__wire_get_chunk_result(fr, max, &chunk, &u) == 0)
            cf__chunk_result_free(chunk);
    if (cf__wire_get_chunk_result(fr, SIZE_MAX / 16, &chunk, &u) == 0)
        cf__chunk_result_free(chunk);
}

#endif
