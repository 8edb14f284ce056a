// The public header compiles alone as C++11 at the strictest warnings
// (test/meson.build builds this with -Werror), links, and its names work
// from C++, including the scoped helpers under g++ and clang++; so does
// <cfutures-uv.h> after it.
// SPDX-License-Identifier: MIT
#include <cfutures.h> // first, so it must stand on its own
#include <cfutures-uv.h>

#include <cstdint>
#include <fcntl.h>
#include <cstdio>
#include <cstring>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static void *twice(void *arg)
{
    return reinterpret_cast<void *>(reinterpret_cast<std::intptr_t>(arg) * 2);
}

static std::intptr_t on_loop;

static void record(cf_future *f, void *userdata)
{
    void *value = nullptr;
    if (cf_future_result(f, 0, &value) == 0)
        on_loop = reinterpret_cast<std::intptr_t>(value);
    (void)userdata;
    cf_future_unref(f);
}

int main()
{
    CHECK(std::strcmp(cf_err_name(CF_ECANCELLED), "CF_ECANCELLED") == 0);

    cf_future *f = cf_future_new();
    CHECK(f != nullptr);
    CHECK(cf_future_set_result(f, nullptr) == 0);
    CHECK(cf_future_done(f));
    cf_future_unref(f);

    int bodies = 0;
    CF_WITH(cf_executor, ex, cf_thread_pool_new(nullptr)) {
        CHECK(ex != nullptr);
        cf_autoptr(cf_future) g = cf_submit(ex, twice, reinterpret_cast<void *>(21));
        CHECK(g != nullptr);
        void *value = nullptr;
        CHECK(cf_future_result(g, CF_FOREVER, &value) == 0);
        CHECK(reinterpret_cast<std::intptr_t>(value) == 42);
        bodies++;
    }
    CHECK(bodies == 1);

    // libuv asserts its loop's descriptors are not 0-2: keep them open.
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0)
            CHECK(open("/dev/null", O_RDWR) == fd);
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    cf_uv_bridge *b = cf_uv_bridge_new(&loop);
    cf_executor *ex = cf_thread_pool_new(nullptr);
    CHECK(b != nullptr && ex != nullptr);
    CHECK(cf_uv_run_in_executor(b, ex, twice, reinterpret_cast<void *>(8), record, nullptr));
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(on_loop == 16);
    cf_uv_bridge_close(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    cf_executor_free(ex);
    return 0;
}
