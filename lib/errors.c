/* cf_strerror / cf_err_name, generated from CF_ERROR_MAP in cfutures.h.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

const char *cf_strerror(int code)
{
    switch (code) {
    case CF_OK:
        return "success";
#define CF__STRERROR_CASE(name, value, text)                                                       \
    case CF_##name:                                                                                \
        return text;
        CF_ERROR_MAP(CF__STRERROR_CASE)
#undef CF__STRERROR_CASE
    }
    return "unknown error";
}

const char *cf_err_name(int code)
{
    switch (code) {
    case CF_OK:
        return "CF_OK";
#define CF__NAME_CASE(name, value, text)                                                           \
    case CF_##name:                                                                                \
        return "CF_" #name;
        CF_ERROR_MAP(CF__NAME_CASE)
#undef CF__NAME_CASE
    }
    return "CF_UNKNOWN";
}
