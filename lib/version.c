/* What this libcfutures is: its version (the header's, as it was built).
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
