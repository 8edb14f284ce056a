/* The MPI pool behaves as a process pool does (run under mpiexec -n 3: the
 * root runs the checks, the other ranks serve each pool in turn). Every
 * rank makes the same pools in the same order; on a worker rank
 * cf_mpi_pool_new returns NULL with cf_last_error() == 0 once the root is
 * done with that pool.
 * SPDX-License-Identifier: MIT */
#include <cfutures-mpi.h>

#include "../check.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static int my_rank;

/* A pool on every rank: the executor on the root, NULL (checked) elsewhere. */
static cf_executor *pool(const cf_mpi_pool_opts *o)
{
    cf_executor *ex = cf_mpi_pool_new(o);
    if (!ex) {
        if (cf_last_error() != 0)
            fprintf(stderr, "rank %d: %s: %s\n", my_rank, cf_err_name(cf_last_error()),
                    cf_last_error_message());
        CHECK_EQ(cf_last_error(), 0);
        CHECK(my_rank != 0);
    } else {
        CHECK_EQ(my_rank, 0);
    }
    return ex;
}

static void *square(void *arg)
{
    intptr_t x = (intptr_t)arg;
    return (void *)(x * x);
}

static void *whose(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)getpid();
}

static void *reverse(void *arg)
{
    /* The copied argument: a length, then that many bytes. */
    const unsigned char *p = arg;
    uint32_t n;
    memcpy(&n, p, 4);
    unsigned char *out = malloc(n);
    for (uint32_t i = 0; i < n; i++)
        out[i] = p[4 + n - 1 - i];
    void *r = cf_return_copy(out, n);
    free(out);
    return r;
}

static void *fail_odd(void *arg)
{
    intptr_t x = (intptr_t)arg;
    if (x % 2)
        return cf_raise(1000 + (int)x, "odd %d", (int)x);
    return arg;
}

static void *big_result(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    unsigned char *b = calloc(1, n);
    void *r = cf_return_copy(b, n);
    free(b);
    return r;
}

/* Blocks until the root writes a byte into the FIFO whose path it gets;
 * returns that byte. */
static char fifo_path[128];
static void *gate(void *arg)
{
    int fd = open(arg, O_RDONLY);
    unsigned char c = 0;
    ssize_t n = fd >= 0 ? read(fd, &c, 1) : -1;
    if (fd >= 0)
        close(fd);
    return n == 1 ? (void *)(intptr_t)c : cf_raise(CF_ESYSTEM, "gate: %s", strerror(errno));
}

static intptr_t init_value;
static int init_set(void *arg)
{
    init_value = (intptr_t)arg;
    return 0;
}
static int init_fail(void *arg)
{
    (void)arg;
    return 7;
}
static void *get_init_value(void *arg)
{
    (void)arg;
    return (void *)init_value;
}

/* ------------------------------------------------------------------------ */

static void test_values_and_bytes(void)
{
    cf_executor *ex = pool(NULL);
    if (!ex)
        return;
    enum { N = 200 };
    cf_future *fs[N];
    for (int i = 0; i < N; i++)
        CHECK((fs[i] = cf_submit(ex, square, (void *)(intptr_t)i)));
    for (int i = 0; i < N; i++) {
        void *v;
        CHECK_EQ(cf_future_result(fs[i], CF_FOREVER, &v), 0);
        CHECK_EQ((intptr_t)v, (intptr_t)i * i);
        cf_future_unref(fs[i]);
    }
    /* Tasks run elsewhere: on other ranks. */
    cf_future *f = cf_submit(ex, whose, NULL);
    void *v;
    CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
    CHECK((intptr_t)v != (intptr_t)getpid());
    cf_future_unref(f);
    /* Bytes both ways, large and small. */
    size_t sizes[] = { 0, 1, 1000, 3u << 20 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t n = (uint32_t)sizes[s];
        unsigned char *in = malloc(4 + n);
        memcpy(in, &n, 4);
        for (uint32_t i = 0; i < n; i++)
            in[4 + i] = (unsigned char)(i * 7 + s);
        f = cf_submit_copy(ex, reverse, in, 4 + n);
        CHECK(f);
        memset(in + 4, 0, n); /* the copy was taken at submit */
        unsigned char *out;
        CHECK_EQ(cf_future_result(f, CF_FOREVER, (void **)&out), 0);
        CHECK_EQ(cf_future_result_size(f), n);
        for (uint32_t i = 0; i < n; i++)
            CHECK_EQ(out[i], (unsigned char)((n - 1 - i) * 7 + s));
        cf_future_unref(f);
        free(in);
    }
    /* cf_raise */
    f = cf_submit(ex, fail_odd, (void *)(intptr_t)5);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *e;
    CHECK_EQ(cf_future_exception(f, CF_FOREVER, &e), 0);
    CHECK_EQ(e->code, 1005);
    CHECK_STR(e->message, "odd 5");
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void test_map_wait_as_completed(void)
{
    cf_executor *ex = pool(NULL);
    if (!ex)
        return;
    enum { N = 100 };
    void *args[N];
    for (int i = 0; i < N; i++)
        args[i] = (void *)(intptr_t)i;
    size_t chunks[] = { 1, 3, 1000 };
    for (size_t c = 0; c < 3; c++) {
        for (int unordered = 0; unordered < 2; unordered++) {
            cf_map_iter *it =
                cf_map(ex, square, args, N,
                       &(cf_map_opts){ .chunksize = chunks[c], .unordered = unordered });
            CHECK(it);
            bool seen[N] = { false };
            void *v;
            int n = 0;
            while (cf_map_next(it, &v) == 1) {
                intptr_t x = (intptr_t)v;
                if (!unordered)
                    CHECK_EQ(x, (intptr_t)n * n);
                for (int i = 0; i < N; i++)
                    if ((intptr_t)i * i == x) {
                        CHECK(!seen[i]);
                        seen[i] = true;
                    }
                n++;
            }
            CHECK_EQ(n, N);
            cf_map_free(it);
        }
    }
    /* map stops at the first error, in order */
    cf_map_iter *it = cf_map(ex, fail_odd, args, 10, &(cf_map_opts){ .chunksize = 2 });
    void *v;
    CHECK_EQ(cf_map_next(it, &v), 1);
    CHECK_EQ((intptr_t)v, 0);
    CHECK_EQ(cf_map_next(it, &v), CF_ETASK);
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    /* wait and as_completed */
    cf_future *fs[20];
    for (int i = 0; i < 20; i++)
        fs[i] = cf_submit(ex, fail_odd, (void *)(intptr_t)(i == 13 ? 13 : 2 * i));
    CHECK(cf_wait(fs, 20, CF_FOREVER, CF_FIRST_EXCEPTION) >= 1);
    CHECK_EQ(cf_wait(fs, 20, CF_FOREVER, CF_ALL_COMPLETED), 20);
    cf_as_completed *ac = cf_as_completed_new(fs, 20, CF_FOREVER);
    cf_future *f;
    int got = 0, failed = 0;
    while (cf_as_completed_next(ac, &f) == 1) {
        got++;
        failed += cf_future_result(f, 0, NULL) == CF_ETASK;
    }
    CHECK_EQ(got, 20);
    CHECK_EQ(failed, 1);
    cf_as_completed_free(ac);
    for (int i = 0; i < 20; i++)
        cf_future_unref(fs[i]);
    cf_executor_free(ex);
}

/* Queued work stays cancellable: two gate tasks hold both workers. */
static void test_cancel_and_shutdown(void)
{
    cf_executor *ex = pool(NULL);
    if (!ex)
        return;
    snprintf(fifo_path, sizeof fifo_path, "/tmp/cftest-mpi-gate-%ld", (long)getpid());
    unlink(fifo_path);
    CHECK_EQ(mkfifo(fifo_path, 0600), 0);
    int wfd = open(fifo_path, O_RDWR); /* never blocks; holds the FIFO open */
    CHECK(wfd >= 0);
    enum { N = 40 };
    cf_future *gates[2], *fs[N];
    for (int i = 0; i < 2; i++)
        gates[i] = cf_submit_copy(ex, gate, fifo_path, strlen(fifo_path) + 1);
    for (int i = 0; i < 2; i++) /* both are running: the workers are held */
        while (!cf_future_running(gates[i]))
            sched_yield();
    for (int i = 0; i < N; i++)
        fs[i] = cf_submit(ex, square, (void *)(intptr_t)i);
    int cancelled = 0;
    for (int i = 0; i < N / 2; i++)
        cancelled += cf_future_cancel(fs[i]);
    CHECK(cancelled > 0);
    /* shutdown(cancel_futures) cancels the rest that has not started */
    CHECK_EQ(cf_executor_shutdown(ex, false, true), 0);
    CHECK(cf_submit(ex, square, NULL) == NULL);
    CHECK_EQ(cf_last_error(), CF_ESHUTDOWN);
    CHECK_EQ(write(wfd, "xx", 2), 2);
    for (int i = 0; i < 2; i++) {
        void *v;
        CHECK_EQ(cf_future_result(gates[i], CF_FOREVER, &v), 0);
        CHECK_EQ((intptr_t)v, 'x');
        cf_future_unref(gates[i]);
    }
    int done = 0;
    for (int i = 0; i < N; i++) {
        void *v;
        int rc = cf_future_result(fs[i], CF_FOREVER, &v);
        CHECK(rc == 0 || rc == CF_ECANCELLED);
        if (rc == 0) {
            CHECK_EQ((intptr_t)v, (intptr_t)i * i);
            done++;
        }
        cf_future_unref(fs[i]);
    }
    CHECK(done < N);
    cf_executor_free(ex);
    close(wfd);
    unlink(fifo_path);
}

/* An MPI rank cannot be signalled: kill_workers fails the running tasks at
 * once and cancels the queued ones; the ranks stop once their tasks return. */
static void test_kill_workers(void)
{
    cf_executor *ex = pool(NULL);
    if (!ex)
        return;
    snprintf(fifo_path, sizeof fifo_path, "/tmp/cftest-mpi-kill-%ld", (long)getpid());
    unlink(fifo_path);
    CHECK_EQ(mkfifo(fifo_path, 0600), 0);
    int wfd = open(fifo_path, O_RDWR);
    CHECK(wfd >= 0);
    cf_future *gates[2], *big[4], *queued[10];
    /* Short tasks first: with their run time known to be short, the pool
     * sends tasks ahead to busy ranks (it does not while run times are
     * unknown). */
    for (int i = 0; i < 20; i++) {
        cf_future *f = cf_submit(ex, square, (void *)(intptr_t)i);
        CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), 0);
        cf_future_unref(f);
    }
    for (int i = 0; i < 2; i++)
        gates[i] = cf_submit_copy(ex, gate, fifo_path, strlen(fifo_path) + 1);
    for (int i = 0; i < 2; i++)
        while (!cf_future_running(gates[i]))
            sched_yield();
    /* Tasks of 1 KiB sent ahead to the busy ranks: their sends may still be
     * in flight when the ranks are told to stop (free once hung on that). */
    static unsigned char kib[1024];
    for (int i = 0; i < 4; i++)
        big[i] = cf_submit_copy(ex, reverse, kib, sizeof kib);
    while (!cf_future_running(big[0]))
        sched_yield();
    for (int i = 0; i < 10; i++)
        queued[i] = cf_submit(ex, square, (void *)(intptr_t)i);
    CHECK_EQ(cf_executor_kill_workers(ex), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(cf_future_result(gates[i], CF_FOREVER, NULL), CF_EBROKEN);
        const cf_exception *e;
        cf_future_exception(gates[i], 0, &e);
        CHECK(strstr(e->message, "terminated"));
        cf_future_unref(gates[i]);
    }
    for (int i = 0; i < 10; i++) {
        int rc = cf_future_result(queued[i], CF_FOREVER, NULL);
        CHECK(rc == CF_ECANCELLED || rc == CF_EBROKEN);
        cf_future_unref(queued[i]);
    }
    CHECK_EQ(cf_future_result(big[0], CF_FOREVER, NULL), CF_EBROKEN); /* it was running */
    for (int i = 1; i < 4; i++) {
        int rc = cf_future_result(big[i], CF_FOREVER, NULL);
        CHECK(rc == CF_ECANCELLED || rc == CF_EBROKEN);
        cf_future_unref(big[i]);
    }
    cf_future_unref(big[0]);
    CHECK(cf_submit(ex, square, NULL) == NULL);
    CHECK_EQ(write(wfd, "xx", 2), 2); /* the tasks return; the ranks stop */
    cf_executor_free(ex);
    close(wfd);
    unlink(fifo_path);
}

static void test_too_big(void)
{
    cf_executor *ex = pool(&(cf_mpi_pool_opts){ .max_message = 1024 });
    if (!ex)
        return;
    static unsigned char data[2048];
    CHECK(cf_submit_copy(ex, reverse, data, sizeof data) == NULL);
    CHECK_EQ(cf_last_error(), CF_ETOOBIG);
    cf_future *f = cf_submit(ex, big_result, (void *)(uintptr_t)4096);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *e;
    cf_future_exception(f, 0, &e);
    CHECK_EQ(e->code, CF_ETOOBIG);
    cf_future_unref(f);
    cf_executor_free(ex);
}

static void test_initializer(void)
{
    cf_executor *ex =
        pool(&(cf_mpi_pool_opts){ .initializer = init_set, .initarg = (void *)(intptr_t)77 });
    if (ex) {
        cf_future *fs[10];
        for (int i = 0; i < 10; i++)
            fs[i] = cf_submit(ex, get_init_value, NULL);
        for (int i = 0; i < 10; i++) {
            void *v;
            CHECK_EQ(cf_future_result(fs[i], CF_FOREVER, &v), 0);
            CHECK_EQ((intptr_t)v, 77);
            cf_future_unref(fs[i]);
        }
        cf_executor_free(ex);
    }
    /* A failing initializer breaks the pool. */
    ex = pool(&(cf_mpi_pool_opts){ .initializer = init_fail });
    if (ex) {
        cf_future *f = cf_submit(ex, square, (void *)(intptr_t)3);
        CHECK(f);
        CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_EBROKEN);
        cf_future_unref(f);
        CHECK(cf_submit(ex, square, NULL) == NULL);
        CHECK_EQ(cf_last_error(), CF_EBROKEN);
        cf_executor_free(ex);
    }
}

/* out[i] = in[i] * ctx, and the rank's pid beside it. */
static void scale_range(void *ctx, const cf_range *r)
{
    const int32_t *in = r->in;
    int64_t *out = r->out;
    for (size_t i = 0; i < r->end - r->begin; i++) {
        out[2 * i] = (int64_t)in[i] * (intptr_t)ctx;
        out[2 * i + 1] = getpid();
    }
}

static void raise_in_range(void *ctx, const cf_range *r)
{
    (void)ctx;
    if (r->begin <= 500 && 500 < r->end)
        cf_raise(77, "item 500");
}

/* cf_parallel_for: the chunks run on the worker ranks, slices both ways. */
static void test_parallel_for(void)
{
    cf_executor *ex = pool(NULL);
    if (!ex)
        return;
    enum { N = 10000 };
    int32_t *in = malloc(N * sizeof *in);
    int64_t *out = calloc(N, 2 * sizeof *out);
    CHECK(in && out);
    for (int i = 0; i < N; i++)
        in[i] = i - 17;
    cf_parallel_opts o = {
        .grain = 333, .in = in, .in_size = sizeof *in, .out = out, .out_size = 2 * sizeof *out
    };
    int rc = cf_parallel_for(ex, N, scale_range, (void *)(intptr_t)3, &o);
    if (rc != 0)
        fprintf(stderr, "cf_parallel_for: %s: %s\n", cf_err_name(rc), cf_last_error_message());
    CHECK_EQ(rc, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(out[2 * i], (int64_t)(i - 17) * 3);
        CHECK(out[2 * i + 1] != getpid());
    }
    CHECK_EQ(cf_parallel_for(ex, N, raise_in_range, NULL, &(cf_parallel_opts){ .grain = 100 }),
             CF_ETASK);
    CHECK_EQ(cf_last_error(), 77);
    CHECK_STR(cf_last_error_message(), "item 500");
    free(in);
    free(out);
    cf_executor_free(ex);
}

static void test_options(void)
{
    /* Checked before any collective: every rank fails the same way. */
    CHECK(cf_mpi_pool_new(&(cf_mpi_pool_opts){ .root = 3 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    CHECK(cf_mpi_pool_new(&(cf_mpi_pool_opts){ .spawn = -1 }) == NULL);
    CHECK_EQ(cf_last_error(), CF_EINVAL);
    /* An option of a later version (a reserved word set): refused, saying so. */
    cf_mpi_pool_opts later = { .cf_reserved[2] = 1 };
    CHECK(cf_mpi_pool_new(&later) == NULL);
    CHECK_EQ(cf_last_error(), CF_ENOTSUP);
    CHECK(strstr(cf_last_error_message(), "cf_mpi_pool_opts") != NULL);
    /* Another root, on a communicator of our own. */
    MPI_Comm mine;
    MPI_Comm_dup(MPI_COMM_WORLD, &mine);
    cf_executor *ex = cf_mpi_pool_new(&(cf_mpi_pool_opts){ .comm = mine, .root = 1 });
    CHECK_EQ(ex != NULL, my_rank == 1);
    if (ex) {
        cf_future *f = cf_submit(ex, whose, NULL);
        void *v;
        CHECK_EQ(cf_future_result(f, CF_FOREVER, &v), 0);
        CHECK((intptr_t)v != (intptr_t)getpid());
        cf_future_unref(f);
        cf_executor_free(ex);
    } else {
        CHECK_EQ(cf_last_error(), 0);
    }
    MPI_Comm_free(&mine);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    CHECK_EQ(size, 3);
    RUN(test_values_and_bytes);
    RUN(test_map_wait_as_completed);
    RUN(test_cancel_and_shutdown);
    RUN(test_kill_workers);
    RUN(test_too_big);
    RUN(test_initializer);
    RUN(test_parallel_for);
    RUN(test_options);
    MPI_Finalize();
    return 0;
}
