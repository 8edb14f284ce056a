/* The version: the header's macros (generated from meson.build), the
 * running library's cf_version / cf_version_string and the project version
 * meson.build gives (argv[1]) all agree, and CFUTURES_CHECK_VERSION orders
 * versions as a program checking for a feature expects.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"

/* CFUTURES_CHECK_VERSION in #if, where programs use it. */
#if !CFUTURES_CHECK_VERSION(0, 2, 0)
#error "CFUTURES_CHECK_VERSION(0, 2, 0) is false in #if"
#endif
#if CFUTURES_CHECK_VERSION(CFUTURES_VERSION_MAJOR + 1, 0, 0)
#error "CFUTURES_CHECK_VERSION(next major) is true in #if"
#endif

static const char *project_version;

static void test_header_macros(void)
{
    CHECK_EQ(CFUTURES_VERSION_HEX, (CFUTURES_VERSION_MAJOR << 16) | (CFUTURES_VERSION_MINOR << 8) |
                                       CFUTURES_VERSION_PATCH);
    char text[32];
    snprintf(text, sizeof text, "%d.%d.%d", CFUTURES_VERSION_MAJOR, CFUTURES_VERSION_MINOR,
             CFUTURES_VERSION_PATCH);
    CHECK_STR(CFUTURES_VERSION_STRING, text);
    CHECK_STR(CFUTURES_VERSION_STRING, project_version); /* generated, not typed twice */
}

static void test_library_version(void)
{
    /* Built from this tree: the library is the header's version. */
    CHECK_EQ(cf_version(), CFUTURES_VERSION_HEX);
    CHECK_STR(cf_version_string(), CFUTURES_VERSION_STRING);
    CHECK(cf_version_string() == cf_version_string()); /* static */
}

static void test_check_version(void)
{
    int major = CFUTURES_VERSION_MAJOR, minor = CFUTURES_VERSION_MINOR;
    int patch = CFUTURES_VERSION_PATCH;
    CHECK(CFUTURES_CHECK_VERSION(0, 0, 0));
    CHECK(CFUTURES_CHECK_VERSION(0, 1, 0));
    CHECK(CFUTURES_CHECK_VERSION(major, minor, patch));
    CHECK(!CFUTURES_CHECK_VERSION(major, minor, patch + 1));
    CHECK(!CFUTURES_CHECK_VERSION(major, minor + 1, 0));
    CHECK(!CFUTURES_CHECK_VERSION(major + 1, 0, 0));
    if (patch > 0)
        CHECK(CFUTURES_CHECK_VERSION(major, minor, patch - 1));
    if (minor > 0) /* an older minor with a higher patch is still older */
        CHECK(CFUTURES_CHECK_VERSION(major, minor - 1, 255));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PROJECT_VERSION (from meson.build)\n", argv[0]);
        return 2;
    }
    project_version = argv[1];
    RUN(test_header_macros);
    RUN(test_library_version);
    RUN(test_check_version);
    return 0;
}
