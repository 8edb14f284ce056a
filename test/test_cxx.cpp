// cfutures from C++: in a process-pool worker the program's static
// initialisers have run (a global std::string is constructed, std::cout
// works in a task), and cf_cxx_task turns an escaping exception into the
// task's failure on both pools.
// SPDX-License-Identifier: MIT
#include <cfutures.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            std::exit(1);                                                                          \
        }                                                                                          \
    } while (0)

static const double WAIT = 60.0;

// Constructed by the program's static initialisers, in the parent and in
// every worker that starts after them.
static std::string greeting = "constructed before main";
static int constructed_in = static_cast<int>(getpid());

static void *read_global(void *)
{
    return cf_return_copy(greeting.c_str(), greeting.size() + 1);
}

static void *print_with_cout(void *arg)
{
    std::cout << "task " << reinterpret_cast<std::intptr_t>(arg) << " printed this" << std::endl;
    return arg;
}

static void *constructed_here(void *)
{
    return reinterpret_cast<void *>(static_cast<std::intptr_t>(constructed_in == getpid()));
}

static void *throws_runtime_error(void *)
{
    throw std::runtime_error("parse error at line 3");
}

static void *throws_int(void *)
{
    throw 42;
}

static void check_exception(cf_executor *ex, cf_fn fn, const char *message)
{
    cf_future *f = cf_submit(ex, fn, nullptr);
    CHECK(f != nullptr);
    CHECK(cf_future_result(f, WAIT, nullptr) == CF_ETASK);
    const cf_exception *exc = nullptr;
    CHECK(cf_future_exception(f, 0, &exc) == 0 && exc != nullptr);
    CHECK(exc->code == CF_ETASK);
    CHECK(std::strcmp(exc->message, message) == 0);
    cf_future_unref(f);
}

static void test_statics_in_a_worker()
{
    cf_executor *ex = cf_process_pool_new(nullptr);
    CHECK(ex != nullptr);
    cf_future *f = cf_submit(ex, read_global, nullptr);
    void *v = nullptr;
    CHECK(cf_future_result(f, WAIT, &v) == 0);
    CHECK(std::strcmp(static_cast<const char *>(v), "constructed before main") == 0);
    cf_future_unref(f);
    f = cf_submit(ex, constructed_here, nullptr); // the worker ran them itself
    CHECK(cf_future_result(f, WAIT, &v) == 0);
    CHECK(reinterpret_cast<std::intptr_t>(v) == 1);
    cf_future_unref(f);
    for (int i = 0; i < 3; i++) {
        f = cf_submit(ex, print_with_cout, reinterpret_cast<void *>(static_cast<std::intptr_t>(i)));
        CHECK(cf_future_result(f, WAIT, &v) == 0);
        CHECK(reinterpret_cast<std::intptr_t>(v) == i);
        cf_future_unref(f);
    }
    cf_executor_free(ex);
}

static void test_exceptions(cf_executor *ex)
{
    CHECK(ex != nullptr);
    check_exception(ex, cf_cxx_task<throws_runtime_error>, "parse error at line 3");
    check_exception(ex, cf_cxx_task<throws_int>, "a C++ exception that is not a std::exception");
    cf_future *f = cf_submit(ex, cf_cxx_task<print_with_cout>, reinterpret_cast<void *>(7));
    void *v = nullptr;
    CHECK(cf_future_result(f, WAIT, &v) == 0); // no exception: the result as usual
    CHECK(reinterpret_cast<std::intptr_t>(v) == 7);
    cf_future_unref(f);
    cf_executor_free(ex);
}

int main()
{
    std::fprintf(stderr, "-- statics in a worker\n");
    test_statics_in_a_worker();
    std::fprintf(stderr, "-- exceptions, thread pool\n");
    test_exceptions(cf_thread_pool_new(nullptr));
    std::fprintf(stderr, "-- exceptions, process pool\n");
    test_exceptions(cf_process_pool_new(nullptr));
    return 0;
}
