/* producer_consumer.c: a producer and a consumer on a two-worker pool,
 * joined by a bounded queue and stopped by an event flag.
 *
 * The Python post (seed 002):
 *
 *     pipeline = queue.Queue(maxsize=10)
 *     event = threading.Event()
 *     with ThreadPoolExecutor(max_workers=2) as executor:
 *         executor.submit(producer, pipeline, event)
 *         executor.submit(consumer, pipeline, event)
 *     time.sleep(0.1)
 *     event.set()
 *
 * Two bugs hide in that version, and the C port fixes both:
 * - The sleep and event.set() come after the `with` block, but leaving the
 *   block waits for the producer, which waits for the event: it never ends.
 *   Here the main thread sets the event inside the block.
 * - The consumer loops `while not event.is_set() or not queue.empty()` and
 *   then calls queue.get(), which blocks forever if the producer stopped
 *   between the test and the get. Here the producer closes the queue when it
 *   stops, and get() returns "closed and empty" instead of blocking.
 *
 * The queue is a mutex and two condition variables (libuv's uv_mutex_t and
 * uv_cond_t). The event flag is a cfutures future that nobody runs: setting
 * its result is event.set(), cf_future_done() is event.is_set().
 *
 * Run: ./producer_consumer          runs for 100 ms, as the seed
 *      ./producer_consumer --quick  20 ms, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* ---- queue.Queue(maxsize=10) ---------------------------------------- */

enum { CAPACITY = 10 };

typedef struct bounded_queue {
    uv_mutex_t lock;
    uv_cond_t not_empty, not_full;
    int items[CAPACITY];
    size_t head, count;
    bool closed; /* the producer has stopped: no more items will come */
} bounded_queue;

static int queue_init(bounded_queue *q)
{
    memset(q, 0, sizeof *q);
    if (uv_mutex_init(&q->lock) != 0)
        return -1;
    if (uv_cond_init(&q->not_empty) != 0 || uv_cond_init(&q->not_full) != 0)
        return -1; /* a real program would also destroy what it made */
    return 0;
}

static void queue_destroy(bounded_queue *q)
{
    uv_cond_destroy(&q->not_full);
    uv_cond_destroy(&q->not_empty);
    uv_mutex_destroy(&q->lock);
}

/* pipeline.put(message): blocks while the queue is full. */
static void queue_put(bounded_queue *q, int message)
{
    uv_mutex_lock(&q->lock);
    while (q->count == CAPACITY)
        uv_cond_wait(&q->not_full, &q->lock);
    q->items[(q->head + q->count) % CAPACITY] = message;
    q->count++;
    uv_cond_signal(&q->not_empty);
    uv_mutex_unlock(&q->lock);
}

/* No more puts: wakes a consumer blocked on an empty queue. */
static void queue_close(bounded_queue *q)
{
    uv_mutex_lock(&q->lock);
    q->closed = true;
    uv_cond_broadcast(&q->not_empty);
    uv_mutex_unlock(&q->lock);
}

/* pipeline.get(): blocks while the queue is empty and open. Returns false
 * once it is closed and empty. */
static bool queue_get(bounded_queue *q, int *message)
{
    uv_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed)
        uv_cond_wait(&q->not_empty, &q->lock);
    bool got = q->count > 0;
    if (got) {
        *message = q->items[q->head];
        q->head = (q->head + 1) % CAPACITY;
        q->count--;
        uv_cond_signal(&q->not_full);
    }
    uv_mutex_unlock(&q->lock);
    return got;
}

/* ---- the two tasks ---------------------------------------------------- */

typedef struct pipeline {
    bounded_queue queue;
    cf_future *event;  /* threading.Event(): done once set */
    long produced_sum; /* written by the producer only */
    long consumed_sum; /* written by the consumer only */
} pipeline;

/* Makes messages (1..11, like random.randint(1, 11)) until the event is
 * set, then closes the queue. Returns how many it made. */
static void *producer(void *arg)
{
    pipeline *p = arg;
    uint32_t seed = 2463534242u; /* xorshift32: a tiny, thread-private generator */
    intptr_t count = 0;
    while (!cf_future_done(p->event)) { /* while not event.is_set(): */
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        int message = 1 + (int)(seed % 11);
        queue_put(&p->queue, message);
        p->produced_sum += message;
        count++;
    }
    queue_close(&p->queue);
    return (void *)count;
}

/* Takes messages until the queue is closed and empty. Returns how many. */
static void *consumer(void *arg)
{
    pipeline *p = arg;
    intptr_t count = 0;
    int message;
    while (queue_get(&p->queue, &message)) {
        p->consumed_sum += message;
        count++;
    }
    return (void *)count;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    unsigned run_ms = argc > 1 && strcmp(argv[1], "--quick") == 0 ? 20 : 100;

    pipeline p = { .produced_sum = 0 };
    if (queue_init(&p.queue) != 0)
        return 1;
    p.event = cf_future_new(); /* event = threading.Event() */
    if (!p.event)
        return 1;

    void *produced = NULL, *consumed = NULL;
    int rc_producer = CF_EINVAL, rc_consumer = CF_EINVAL;
    CF_WITH(cf_executor, executor, cf_thread_pool_new(&(cf_thread_pool_opts){ .max_workers = 2 })) {
        if (!executor) {
            fprintf(stderr, "thread pool: %s\n", cf_strerror(cf_last_error()));
            break; /* leaves the CF_WITH block; nothing to free */
        }
        cf_future *fp = cf_submit(executor, producer, &p);
        cf_future *fc = cf_submit(executor, consumer, &p);
        if (!fp || !fc) {
            fprintf(stderr, "submit: %s\n", cf_strerror(cf_last_error()));
            cf_future_set_result(p.event, NULL); /* let a started producer stop */
            cf_future_unref(fp);
            cf_future_unref(fc);
            break;
        }

        uv_sleep(run_ms);                    /* time.sleep(0.1): let them work */
        cf_future_set_result(p.event, NULL); /* event.set() */

        rc_producer = cf_future_result(fp, CF_FOREVER, &produced);
        rc_consumer = cf_future_result(fc, CF_FOREVER, &consumed);
        cf_future_unref(fp);
        cf_future_unref(fc);
    } /* shutdown(wait=True) and free, as at the end of Python's `with` */

    cf_future_unref(p.event);
    queue_destroy(&p.queue);
    if (rc_producer != 0 || rc_consumer != 0)
        return 1;

    printf("ran for %u ms with a queue of %d\n", run_ms, CAPACITY);
    printf("produced %ld messages (sum %ld)\n", (long)(intptr_t)produced, p.produced_sum);
    printf("consumed %ld messages (sum %ld)\n", (long)(intptr_t)consumed, p.consumed_sum);
    if ((intptr_t)produced != (intptr_t)consumed || p.produced_sum != p.consumed_sum) {
        fprintf(stderr, "messages were lost\n");
        return 1;
    }
    printf("none lost: all %ld messages went through\n", (long)(intptr_t)consumed);
    return 0;
}
