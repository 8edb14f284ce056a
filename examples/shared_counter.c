/* shared_counter.c: a lost update, and the lock that prevents it.
 *
 * The Python post (seed 002) submits three updates of a FakeDataStore to a
 * pool of two workers. Each update reads the value, sleeps, and writes the
 * value + 1 back:
 *
 *     def update(self, name):
 *         local_copy = self.value
 *         local_copy += 1
 *         time.sleep(0.1)
 *         self.value = local_copy
 *
 * The first two updates run at the same time, both read 0, both write 1:
 * one update is lost and the store ends at 2, not 3. Holding a lock from the
 * read to the write (`with self._lock:`) makes each update whole.
 *
 * C behaves the same: threads share memory, and the GIL never protected
 * this code in Python either (it protects the interpreter, not your
 * read-modify-write). The C lock is a uv_mutex_t from libuv.
 *
 * One difference: in C, two threads touching a plain int without a lock
 * is a data race, which is undefined behaviour. The unsafe update below
 * therefore reads and writes with atomic_load/atomic_store. That makes each
 * access well defined, and shows the point of the lesson: the bug is the gap
 * between the read and the write, not the accesses themselves.
 *
 * Run: ./shared_counter          sleeps 100 ms per update, as the seed
 *      ./shared_counter --quick  20 ms, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <uv.h> /* uv_mutex_t, uv_sleep */

static unsigned sleep_ms = 100;

/* class FakeDataStore: value and _lock */
typedef struct fake_data_store {
    atomic_int value;
    uv_mutex_t lock;
} fake_data_store;

/* What one task gets: the shared store and a name for the log. */
typedef struct update_arg {
    fake_data_store *store;
    const char *name;
} update_arg;

/* update() without the lock: read, sleep, write. */
static void *unsafe_update(void *arg)
{
    update_arg *u = arg;
    printf("  %-6s: starting update\n", u->name);
    int local_copy = atomic_load(&u->store->value);
    local_copy += 1;
    uv_sleep(sleep_ms); /* another update may read the old value now */
    atomic_store(&u->store->value, local_copy);
    printf("  %-6s: finishing update\n", u->name);
    return NULL;
}

/* update() with `with self._lock:` around the read-sleep-write. */
static void *safe_update(void *arg)
{
    update_arg *u = arg;
    printf("  %-6s: starting update\n", u->name);
    uv_mutex_lock(&u->store->lock);
    int local_copy = atomic_load(&u->store->value);
    local_copy += 1;
    uv_sleep(sleep_ms); /* others wait for the lock meanwhile */
    atomic_store(&u->store->value, local_copy);
    uv_mutex_unlock(&u->store->lock);
    printf("  %-6s: finishing update\n", u->name);
    return NULL;
}

/* with ThreadPoolExecutor(max_workers=2) as executor:
 *     for n in ['First', 'Second', 'Third']:
 *         executor.submit(store.update, n)
 * Returns the store's value at the end, or -1 on an error. */
static int run_updates(cf_fn update)
{
    fake_data_store store = { .value = 0 };
    if (uv_mutex_init(&store.lock) != 0)
        return -1;
    /* The tasks receive pointers to these: they must outlive the tasks,
     * which they do because the pool is freed (and waited for) below. */
    update_arg args[] = { { &store, "First" }, { &store, "Second" }, { &store, "Third" } };

    cf_executor *ex = cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 });
    if (!ex) {
        fprintf(stderr, "thread pool: %s\n", cf_strerror(cf_last_error()));
        uv_mutex_destroy(&store.lock);
        return -1;
    }
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        /* Python drops the returned futures; in C we release our reference. */
        cf_future_unref(cf_submit(ex, update, &args[i]));
    cf_executor_free(ex); /* the end of the `with`: waits for all three updates */

    int value = atomic_load(&store.value);
    uv_mutex_destroy(&store.lock);
    return value;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--quick") == 0)
        sleep_ms = 20;
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines from every thread */

    printf("Without a lock: three updates, two workers\n");
    int unlocked = run_updates(unsafe_update);
    printf("Without a lock: ending value is %d%s\n", unlocked,
           unlocked == 3 ? " (lucky this time)" : " (expected 3: an update was lost)");

    printf("With a uv_mutex_t: three updates, two workers\n");
    int locked = run_updates(safe_update);
    printf("With a uv_mutex_t: ending value is %d\n", locked);

    if (locked != 3) {
        fprintf(stderr, "the locked updates must give 3, got %d\n", locked);
        return 1;
    }
    return 0;
}
