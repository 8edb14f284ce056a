/* libFuzzer target for the process pool's wire decoders: the input is a byte
 * stream as a worker (or a parent) might send it; every frame found in it
 * goes through every decoder. Nothing may crash, read out of bounds or leak.
 * Built with -Dfuzz=true and clang; `meson test --suite fuzz` runs it briefly,
 * `./fuzz_wire -max_total_time=600 corpus/` for real.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fnref.h"
#include "wire.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_all(const cf__frame *fr)
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
    (void)cf__wire_get_task(fr, &task);
    (void)cf__wire_get_ready(fr, &u);
    if (cf__wire_get_init_fail(fr, &code, &msg) == 0)
        cf__free(msg);
    if (cf__wire_get_result(fr, &out, &u) == 0)
        cf__outcome_clear(&out);
    for (size_t max = 0; max < 4; max++)
        if (cf__wire_get_chunk_result(fr, max, &chunk, &u) == 0)
            cf__chunk_result_free(chunk);
    if (cf__wire_get_chunk_result(fr, SIZE_MAX / 16, &chunk, &u) == 0)
        cf__chunk_result_free(chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so that reads past the end are caught (the input buffer may have slack). */
    unsigned char *buf = cf__malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    size_t pos = 0;
    cf__frame fr;
    while (cf__wire_next_frame(buf + pos, size - pos, 1u << 20, &fr) == 1) {
        decode_all(&fr);
        pos += fr.total;
    }
    (void)cf__fnref_check(buf, size);
    cf__free(buf);
    return 0;
}
