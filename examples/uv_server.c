/* uv_server.c: a libuv TCP server that hands CPU-bound requests to a process
 * pool and answers from its own loop.
 *
 * An event loop must never compute for long: while it does, no other client
 * is served. Python's asyncio sends such work to an executor and awaits it:
 *
 *     async def handle(reader, writer):
 *         while line := await reader.readline():
 *             answer = await loop.run_in_executor(pool, stretch, line)
 *             writer.write(answer)
 *
 * In C the loop is libuv's, the pool is cfutures', and <cfutures-uv.h> is the
 * bridge: cf_uv_add_done_callback (Python's asyncio.wrap_future plus
 * add_done_callback) runs the callback on the loop's thread, inside uv_run,
 * where it may write to the client's stream, which only the loop's thread may
 * touch. (cf_uv_run_in_executor submits and adds the callback in one call for
 * value arguments; a request line is bytes, so we submit a copy of it.)
 *
 * Each request line is "<id> <text>"; the answer is "<id> <hash>", where the
 * hash is a deliberately slow one (many rounds of FNV-1a, like a password
 * hash). Two clients on the same loop connect to 127.0.0.1 on a port the
 * kernel picks, send their lines at once, and check every answer against the
 * hashes computed beforehand in this thread, which also tells how long the
 * work takes without the pool.
 *
 * Run: ./uv_server          2 clients x 400 lines
 *      ./uv_server --quick  2 x 40 lines with fewer rounds, for the tests
 *
 * SPDX-License-Identifier: MIT */
#include <cfutures-uv.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CLIENTS = 2, MAX_LINE = 64, MAX_LINES = 400 };

/* ------------------------------------------------------------------------ */
/* The work                                                                  */
/* ------------------------------------------------------------------------ */

/* `rounds` passes of FNV-1a over the text, each starting from the last. */
static uint64_t stretch(uint32_t rounds, const char *text)
{
    uint64_t h = 14695981039346656037u;
    for (uint32_t r = 0; r < rounds; r++) {
        h ^= r;
        for (const char *p = text; *p; p++) {
            h ^= (unsigned char)*p;
            h *= 1099511628211u;
        }
    }
    return h;
}

/* What travels to a worker process: the bytes cf_submit_copy copies. The
 * round count travels too: a worker is this program started again, but it
 * never runs main, so it cannot see what main chose. */
typedef struct job {
    uint32_t rounds;
    char text[MAX_LINE];
} job;

/* In a worker process. The hash comes back as 8 copied bytes. */
static void *stretch_task(void *arg)
{
    const job *j = arg;
    uint64_t h = stretch(j->rounds, j->text);
    return cf_return_copy(&h, sizeof h);
}

/* The text of request `id`, as the client sends it. */
static void request_text(unsigned long id, char *out, size_t size)
{
    snprintf(out, size, "request-%lu", id);
}

/* ------------------------------------------------------------------------ */
/* The server                                                                */
/* ------------------------------------------------------------------------ */

typedef struct server {
    uv_tcp_t listener;
    cf_uv_bridge *bridge;
    cf_executor *pool;
    uint32_t rounds;
    uv_thread_t loop_thread;
    size_t answered;
    bool answered_off_loop; /* would be a bug: never set */
} server;

typedef struct connection {
    uv_tcp_t tcp; /* first: the handle is the connection */
    server *srv;
    char pending[2 * MAX_LINE]; /* the start of a line not yet complete */
    size_t pending_len;
    int in_flight; /* requests at the pool */
    bool eof;
} connection;

typedef struct request {
    connection *conn;
    unsigned long id;
} request;

typedef struct reply {
    uv_write_t req;
    char text[48];
} reply;

static void alloc_buffer(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)handle;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_reply_written(uv_write_t *req, int status)
{
    (void)status; /* a client that went away: nothing to do */
    free(req);
}

static void send_reply(connection *conn, const char *fmt, unsigned long id, const char *what)
{
    reply *w = malloc(sizeof *w);
    if (!w)
        return;
    int n = snprintf(w->text, sizeof w->text, fmt, id, what);
    uv_buf_t buf = uv_buf_init(w->text, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, on_reply_written) != 0)
        free(w);
}

static void on_connection_closed(uv_handle_t *handle)
{
    free(handle); /* the connection */
}

/* A connection goes once its client has finished and every answer is out. */
static void close_if_done(connection *conn)
{
    if (conn->eof && conn->in_flight == 0)
        uv_close((uv_handle_t *)&conn->tcp, on_connection_closed);
}

/* On the loop's thread, inside uv_run, once the pool has answered: the
 * only place that writes an answer. */
static void on_answer(cf_future *f, void *userdata)
{
    request *r = userdata;
    connection *conn = r->conn;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &conn->srv->loop_thread))
        conn->srv->answered_off_loop = true;
    void *value;
    int rc = cf_future_result(f, 0, &value); /* done: never waits */
    if (rc == 0) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, *(const uint64_t *)value);
        send_reply(conn, "%lu %s\n", r->id, hex);
    } else {
        send_reply(conn, "%lu error %s\n", r->id, cf_err_name(rc));
    }
    conn->srv->answered++;
    cf_future_unref(f); /* cf_submit_copy's reference */
    conn->in_flight--;
    free(r);
    close_if_done(conn);
}

/* One request line, "<id> <text>": off to the pool. */
static void handle_line(connection *conn, char *line)
{
    server *srv = conn->srv;
    char *text;
    unsigned long id = strtoul(line, &text, 10);
    if (*text == ' ')
        text++;
    job j = { .rounds = srv->rounds };
    size_t len = strlen(text);
    if (len >= sizeof j.text) {
        send_reply(conn, "%lu error %s\n", id, "line too long");
        return;
    }
    memcpy(j.text, text, len + 1);

    request *r = malloc(sizeof *r);
    if (!r) {
        send_reply(conn, "%lu error %s\n", id, "out of memory");
        return;
    }
    *r = (request){ conn, id };
    /* f = pool.submit(stretch, line); asyncio.wrap_future(f).add_done_callback(on_answer) */
    cf_future *f = cf_submit_copy(srv->pool, stretch_task, &j, offsetof(job, text) + len + 1);
    int rc = f ? cf_uv_add_done_callback(srv->bridge, f, on_answer, r) : cf_last_error();
    if (rc != 0) {
        send_reply(conn, "%lu error %s\n", id, cf_err_name(rc));
        cf_future_unref(f);
        free(r);
        return;
    }
    conn->in_flight++;
}

static void on_server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    connection *conn = (connection *)stream;
    if (nread < 0) { /* UV_EOF: the client has sent everything */
        uv_read_stop(stream);
        conn->eof = true;
        close_if_done(conn);
    }
    for (ssize_t i = 0; i < nread; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            conn->pending[conn->pending_len] = '\0';
            handle_line(conn, conn->pending);
            conn->pending_len = 0;
        } else if (conn->pending_len < sizeof conn->pending - 1) {
            conn->pending[conn->pending_len++] = c; /* longer lines are cut, then refused */
        }
    }
    free(buf->base);
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *srv = listener->data;
    if (status != 0)
        return;
    connection *conn = calloc(1, sizeof *conn);
    if (!conn)
        return;
    conn->srv = srv;
    uv_tcp_init(listener->loop, &conn->tcp);
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&conn->tcp, alloc_buffer, on_server_read) != 0) {
        uv_close((uv_handle_t *)&conn->tcp, on_connection_closed);
        return;
    }
}

/* ------------------------------------------------------------------------ */
/* The clients, on the same loop                                             */
/* ------------------------------------------------------------------------ */

typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    server *srv; /* to stop listening once every client is done */
    int *clients_left;
    unsigned long first_id; /* ids first_id .. first_id + lines - 1 */
    size_t lines;
    const uint64_t *expect; /* by id */
    char *requests;         /* every line, sent at once */
    char pending[MAX_LINE];
    size_t pending_len;
    bool answered[MAX_LINES];
    size_t correct, wrong;
} client;

static void on_client_closed(uv_handle_t *handle)
{
    client *c = handle->data;
    if (--*c->clients_left == 0) /* the last one: the server stops listening */
        uv_close((uv_handle_t *)&c->srv->listener, NULL);
}

static void check_answer(client *c, const char *line)
{
    char *rest;
    unsigned long id = strtoul(line, &rest, 10);
    uint64_t hash = strtoull(rest, NULL, 16);
    size_t k = id - c->first_id;
    if (id < c->first_id || k >= c->lines || c->answered[k] || hash != c->expect[id]) {
        fprintf(stderr, "client: wrong answer \"%s\"\n", line);
        c->wrong++;
        return;
    }
    c->answered[k] = true;
    c->correct++;
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client *c = stream->data;
    for (ssize_t i = 0; i < nread; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            c->pending[c->pending_len] = '\0';
            check_answer(c, c->pending);
            c->pending_len = 0;
        } else if (c->pending_len < sizeof c->pending - 1) {
            c->pending[c->pending_len++] = ch;
        }
    }
    free(buf->base);
    if (nread < 0 || c->correct + c->wrong == c->lines) /* all in, or the server hung up */
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

static void on_requests_written(uv_write_t *req, int status)
{
    client *c = req->data;
    if (status != 0)
        fprintf(stderr, "client: write: %s\n", uv_strerror(status));
    free(c->requests);
    c->requests = NULL;
}

static void on_connect(uv_connect_t *req, int status)
{
    client *c = req->data;
    if (status != 0) {
        fprintf(stderr, "client: connect: %s\n", uv_strerror(status));
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
        return;
    }
    size_t size = c->lines * (MAX_LINE + 24);
    c->requests = malloc(size);
    size_t len = 0;
    for (size_t k = 0; c->requests && k < c->lines; k++) {
        char text[MAX_LINE];
        request_text(c->first_id + k, text, sizeof text);
        len += (size_t)snprintf(c->requests + len, size - len, "%lu %s\n", c->first_id + k, text);
    }
    uv_buf_t buf = uv_buf_init(c->requests, (unsigned)len);
    c->write.data = c;
    if (!c->requests ||
        uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_requests_written) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_buffer, on_client_read) != 0) {
        fprintf(stderr, "client: could not send\n");
        uv_close((uv_handle_t *)&c->tcp, on_client_closed);
    }
}

/* ------------------------------------------------------------------------ */

static double seconds_since(uint64_t start_ns)
{
    return (double)(uv_hrtime() - start_ns) / 1e9;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    size_t lines = quick ? 40 : MAX_LINES; /* per client */
    uint32_t rounds = quick ? 20000 : 200000;

    /* The answers, computed here first: the work without a pool. */
    static uint64_t expect[CLIENTS * MAX_LINES];
    uint64_t t0 = uv_hrtime();
    for (unsigned long id = 0; id < CLIENTS * lines; id++) {
        char text[MAX_LINE];
        request_text(id, text, sizeof text);
        expect[id] = stretch(rounds, text);
    }
    double serial_secs = seconds_since(t0);

    server srv = { .rounds = rounds, .loop_thread = uv_thread_self() };
    srv.pool = cf_process_pool_new(NULL); /* one worker per CPU */
    if (!srv.pool && cf_last_error() == CF_ENOTSUP) {
        printf("NOTE: process pool not available in this build (CF_ENOTSUP)\n");
        return 0;
    }
    if (!srv.pool) {
        fprintf(stderr, "process pool: %s\n", cf_last_error_message());
        return 1;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    srv.bridge = cf_uv_bridge_new(&loop);
    if (!srv.bridge) {
        fprintf(stderr, "bridge: %s\n", cf_last_error_message());
        return 1;
    }

    /* Listen on 127.0.0.1, on whatever port the kernel gives us. */
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int bound_len = sizeof bound;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&loop, &srv.listener);
    srv.listener.data = &srv;
    int rc = uv_tcp_bind(&srv.listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv.listener, 16, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&bound, &bound_len);
    if (rc != 0) {
        fprintf(stderr, "listen: %s\n", uv_strerror(rc));
        return 1;
    }
    addr.sin_port = ((struct sockaddr_in *)&bound)->sin_port;
    printf("server listening on 127.0.0.1:%d (the kernel picked the port)\n", ntohs(addr.sin_port));

    static client clients[CLIENTS];
    int clients_left = CLIENTS;
    for (int i = 0; i < CLIENTS; i++) {
        client *c = &clients[i];
        *c = (client){ .srv = &srv,
                       .clients_left = &clients_left,
                       .first_id = (unsigned long)i * lines,
                       .lines = lines,
                       .expect = expect };
        uv_tcp_init(&loop, &c->tcp);
        c->tcp.data = c->connect.data = c;
        uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connect);
    }

    /* Everything happens in here; uv_run returns when the clients have
     * their answers and every handle has closed. The bridge keeps the loop
     * alive only while answers are outstanding. */
    t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    double served_secs = seconds_since(t0);

    cf_uv_bridge_close(srv.bridge);
    uv_run(&loop, UV_RUN_DEFAULT); /* the bridge's handles close */
    int loop_rc = uv_loop_close(&loop);
    cf_executor_free(srv.pool);

    size_t correct = 0, total = CLIENTS * lines;
    for (int i = 0; i < CLIENTS; i++) {
        printf("client %d: %zu of %zu answers correct\n", i, clients[i].correct, lines);
        correct += clients[i].correct;
    }
    printf("%zu requests of %" PRIu32 " hash rounds: %.3f s served by the pool, "
           "%.3f s computed in one thread\n",
           total, rounds, served_secs, serial_secs);
    if (correct != total || srv.answered != total || srv.answered_off_loop || loop_rc != 0) {
        fprintf(stderr, "FAILED: %zu correct, %zu answered, %s, uv_loop_close %d\n", correct,
                srv.answered, srv.answered_off_loop ? "some off the loop thread" : "on the loop",
                loop_rc);
        return 1;
    }
    printf("all %zu answers correct, every one written from the loop thread\n", total);
    return 0;
}
