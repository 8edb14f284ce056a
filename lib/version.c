/* What this libcfutures is and knows: its version (the header's, as it was
 * built), and the check that a public struct's reserved words, from which
 * later versions take new fields, are all zero (README "ABI policy").
 * SPDX-License-Identifier: MIT */
#include "internal.h"

unsigned cf_version(void)
{
    return CFUTURES_VERSION_HEX;
}

const char *cf_version_string(void)
{
    return CFUTURES_VERSION_STRING;
}

int cf__check_reserved(const uint64_t *words, size_t n, const char *type)
{
    for (size_t i = 0; i < n; i++)
        if (words[i] != 0) {
            /* A newer header's option, or a struct left uninitialised:
             * refused rather than ignored, since ignoring it would silently
             * change what the program asked for. */
            cf__set_last_error_msg(CF_ENOTSUP,
                                   "an option this libcfutures does not know: %s.cf_reserved[%zu] "
                                   "is not zero (libcfutures %s; was the program built with a "
                                   "newer <cfutures.h>, or is the struct not initialised?)",
                                   type, i, CFUTURES_VERSION_STRING);
            return CF_ENOTSUP;
        }
    return 0;
}
