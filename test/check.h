/* A tiny assertion header shared by the tests: each CHECK prints where and
 * why it failed and exits 1, so a test is a plain program. */
#ifndef CF_TEST_CHECK_H
#define CF_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, check_a_, check_b_);                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                           \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,    \
                    __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",                              \
                    check_b_ ? check_b_ : "(null)");                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* A program that makes its own libuv loop needs descriptors 0-2 open:
 * libuv asserts that those of its loop are not them. (cfutures' own pools
 * take care of that; a test run with stdin closed makes its loop safe.) */
#define KEEP_STDIO_OPEN()                                                                          \
    do {                                                                                           \
        for (int keep_fd_ = 0; keep_fd_ < 3; keep_fd_++)                                           \
            if (fcntl(keep_fd_, F_GETFD) < 0)                                                      \
                CHECK(open("/dev/null", O_RDWR) == keep_fd_);                                      \
    } while (0)

/* Run one test function, naming it on stderr. */
#define RUN(test_fn)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #test_fn);                                                      \
        test_fn();                                                                                 \
    } while (0)

/* The same with one argument. */
#define RUN_ARG(test_fn, arg)                                                                      \
    do {                                                                                           \
        fprintf(stderr, "-- %s(%s)\n", #test_fn, #arg);                                            \
        test_fn(arg);                                                                              \
    } while (0)

#endif
