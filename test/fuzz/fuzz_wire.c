/* libFuzzer target for the process pool's wire decoders: the input is a byte
 * stream as a worker (or a parent) might send it; every frame found in it
 * goes through every decoder. Nothing may crash, read out of bounds or leak.
 * Built with -Dfuzz=true and clang; `meson test --suite fuzz` runs it briefly,
 * `./fuzz_wire -max_total_time=600 corpus/` for real.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include "../wire_decode.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
        wire_decode_all(&fr, false);
        pos += fr.total;
    }
    (void)cf__fnref_check(buf, size);
    cf__free(buf);
    return 0;
}
