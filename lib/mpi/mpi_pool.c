/* cf_mpi_pool_new: the ranks meet on the pool's own communicator, then the
 * root makes the executor and every other rank serves.
 *
 * The meeting, collective over the pool's communicator:
 *   0. MPI_Allreduce: every rank could allocate what the meeting needs;
 *   1. MPI_Allgather of each rank's identity (mpi_ident.c), checked the
 *      same way on every rank: a mismatch fails the pool everywhere;
 *   2. MPI_Bcast from the root: its liveness port, the pool's secret, its
 *      address (or why it failed);
 *   3. each worker rank connects to that port (mpi_liveness.c) while the
 *      root accepts them and makes the executor; MPI_Bcast of the root's
 *      verdict. Then the workers serve (mpi_serve.c).
 * Spawn: MPI_Comm_spawn of this executable, MPI_Intercomm_merge of the
 * intercommunicator (the root low, rank 0), then the same meeting.
 * SPDX-License-Identifier: MIT */
#include "mpi_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ACCEPT_DEADLINE_S 30.0

typedef struct meet_root_msg {
    int32_t code;
    uint16_t port;
    unsigned char secret[CF__MPI_SECRET_LEN];
    char host[CF__MPI_HOST_MAX];
    char why[CF__MESSAGE_MAX];
} meet_root_msg;

typedef struct meet_verdict {
    int32_t code;
    char why[CF__MESSAGE_MAX];
} meet_verdict;

bool cf_mpi_survives_rank_death(void)
{
    const char *v = getenv("OMPI_MCA_orte_enable_recovery");
    return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

static void *fail_text(int code, const char *why)
{
    return cf__fail_msg(code, "%s", why);
}

static void mpi_fail(const char *call, int err, char *why, size_t cap)
{
    cf__mpi_error_text(call, err, why, cap);
}

static int fill_secret(unsigned char *secret, char *why, size_t cap)
{
    size_t got = 0;
    while (got < CF__MPI_SECRET_LEN) {
        ssize_t n = getrandom(secret + got, CF__MPI_SECRET_LEN - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, cap, "cannot make the pool's secret: getrandom: %s", strerror(errno));
            return CF_ESYSTEM;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Phase 2 at the root: listen and say where. */
static int root_listen(const cf__mpi_ident *all, int size, int root, meet_root_msg *m,
                       int *listener)
{
    bool local = true;
    for (int i = 0; i < size; i++)
        local &= strcmp(all[i].host, all[root].host) == 0;
    int rc = fill_secret(m->secret, m->why, sizeof m->why);
    if (rc != 0)
        return rc;
    *listener = cf__live_listen(local, &m->port, m->why, sizeof m->why);
    if (*listener < 0)
        return CF_ESYSTEM;
    snprintf(m->host, sizeof m->host, "%s", local ? "127.0.0.1" : all[root].host);
    return 0;
}

/* Phase 3 at the root: accept the workers and make the executor. */
static cf_executor *root_accept(MPI_Comm comm, MPI_Comm inter, int size, int root,
                                cf__mpi_ident *all, int listener, const meet_root_msg *m,
                                const cf_mpi_pool_opts *opts, meet_verdict *v)
{
    int *fds = cf__calloc((size_t)size, sizeof *fds);
    if (!fds) {
        close(listener);
        cf__free(all);
        v->code = CF_ENOMEM;
        snprintf(v->why, sizeof v->why, "out of memory");
        return NULL;
    }
    for (int i = 0; i < size; i++)
        fds[i] = -1;
    v->code = cf__live_accept(listener, m->secret, comm, root, fds, ACCEPT_DEADLINE_S, v->why,
                              sizeof v->why);
    if (v->code != 0) {
        cf__free(fds);
        cf__free(all);
        return NULL;
    }
    cf__mpi_root r = {
        .comm = comm,
        .inter = inter,
        .size = size,
        .self = root,
        .idents = all,
        .live_fds = fds,
    };
    cf_executor *ex = cf__mpi_root_new(&r, opts);
    if (!ex) {
        v->code = cf_last_error();
        snprintf(v->why, sizeof v->why, "%s", cf_last_error_message());
    }
    return ex;
}

/* Phases 0 and 1, on every rank: room for every rank's identity (agreed
 * by all), then the identities themselves. NULL with the last error set. */
static cf__mpi_ident *gather_idents(MPI_Comm comm, int size, bool is_root)
{
    char why[CF__MESSAGE_MAX];
    cf__mpi_ident *all = cf__calloc((size_t)size, sizeof *all);
    int ok = all != NULL, all_ok = 0;
    int err = MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (err != MPI_SUCCESS || !all_ok) {
        cf__free(all);
        if (err != MPI_SUCCESS) {
            mpi_fail("MPI_Allreduce", err, why, sizeof why);
            return fail_text(CF_ESYSTEM, why);
        }
        return cf__fail_msg(CF_ENOMEM, "a rank ran out of memory making the MPI pool");
    }
    cf__mpi_ident self;
    cf__mpi_ident_self(&self, is_root);
    err = MPI_Allgather(&self, (int)sizeof self, MPI_BYTE, all, (int)sizeof self, MPI_BYTE, comm);
    if (err != MPI_SUCCESS) {
        cf__free(all);
        mpi_fail("MPI_Allgather", err, why, sizeof why);
        return fail_text(CF_ESYSTEM, why);
    }
    return all;
}

/* Phase 2, on every rank: the identities checked, then the root's port,
 * secret and address (or why it failed) broadcast. False with the last
 * error set (and the listener closed). */
static bool share_port(MPI_Comm comm, int size, int root, bool is_root, const cf__mpi_ident *all,
                       meet_root_msg *m, int *listener)
{
    memset(m, 0, sizeof *m);
    m->code = cf__mpi_ident_check(all, size, root, m->why, sizeof m->why);
    if (m->code == 0 && size < 2) {
        m->code = CF_EINVAL;
        snprintf(m->why, sizeof m->why,
                 "the communicator has one rank: an MPI pool needs at "
                 "least one worker rank beside the root");
    }
    if (is_root && m->code == 0)
        m->code = root_listen(all, size, root, m, listener);
    int err = MPI_Bcast(m, (int)sizeof *m, MPI_BYTE, root, comm);
    if (err == MPI_SUCCESS && m->code == 0)
        return true;
    if (*listener >= 0)
        close(*listener);
    *listener = -1;
    if (err != MPI_SUCCESS) {
        char why[CF__MESSAGE_MAX];
        mpi_fail("MPI_Bcast", err, why, sizeof why);
        fail_text(CF_ESYSTEM, why);
    } else {
        fail_text(m->code, m->why);
    }
    return false;
}

cf_executor *cf__mpi_meet(MPI_Comm comm, MPI_Comm inter, int root, const cf_mpi_pool_opts *opts,
                          int *serve_status)
{
    int size = 0, rank = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    bool is_root = rank == root;
    *serve_status = CF__WORKER_EXIT_SETUP;
    char why[CF__MESSAGE_MAX];

    cf__mpi_ident *all = gather_idents(comm, size, is_root); /* phases 0 and 1 */
    if (!all)
        return NULL;
    meet_root_msg m; /* phase 2 */
    int listener = -1;
    if (!share_port(comm, size, root, is_root, all, &m, &listener)) {
        cf__free(all);
        return NULL;
    }
    /* Phase 3: the workers connect, the root accepts them, its verdict. */
    meet_verdict v;
    memset(&v, 0, sizeof v);
    cf_executor *ex = NULL;
    int live = -1;
    if (is_root) {
        ex = root_accept(comm, inter, size, root, all, listener, &m, opts, &v);
    } else {
        cf__free(all);
        live = cf__live_connect(m.host, m.port, m.secret, rank, why, sizeof why);
        if (live < 0)
            MPI_Send(why, (int)strlen(why) + 1, MPI_CHAR, root, CF__MPI_TAG_SETUP, comm);
    }
    int err = MPI_Bcast(&v, (int)sizeof v, MPI_BYTE, root, comm);
    if (err != MPI_SUCCESS && v.code == 0) {
        v.code = CF_ESYSTEM;
        mpi_fail("MPI_Bcast", err, v.why, sizeof v.why);
    }
    if (v.code != 0) {
        if (live >= 0)
            close(live);
        if (ex) /* the workers will not serve: there is nothing to wait for */
            cf_executor_free(ex);
        return fail_text(v.code, v.why);
    }
    if (is_root)
        return ex;
    *serve_status = cf__mpi_serve(comm, root, live);
    if (*serve_status == CF_EBROKEN)
        return cf__fail_msg(CF_EBROKEN, "the root rank of the MPI pool died");
    if (*serve_status == CF__WORKER_EXIT_NOMEM)
        return cf__fail_msg(CF_ENOMEM, "this worker rank ran out of memory and stopped serving");
    if (*serve_status != 0)
        return cf__fail_msg(CF_ESYSTEM,
                            "this worker rank stopped serving (status %d: an MPI call "
                            "failed, or a frame from the root made no sense)",
                            *serve_status);
    cf__set_last_error(0);
    return NULL;
}

/* ------------------------------------------------------------------------ */

static void finalize_at_exit(void)
{
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Finalize();
}

/* MPI initialised (by the program or here): 0, or a code with the last error. */
static int ensure_mpi(void)
{
    int initialized = 0, finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) {
        cf__set_last_error_msg(CF_ENOTSUP, "MPI was finalised already: no MPI pool can be made");
        return CF_ENOTSUP;
    }
    MPI_Initialized(&initialized);
    if (initialized)
        return 0;
    int provided = MPI_THREAD_SINGLE;
    int err = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
    if (err != MPI_SUCCESS) {
        char why[256];
        mpi_fail("MPI_Init_thread", err, why, sizeof why);
        cf__set_last_error_msg(CF_ESYSTEM, "%s", why);
        return CF_ESYSTEM;
    }
    atexit(finalize_at_exit);
    return 0;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static cf_executor *spawn_pool(const cf_mpi_pool_opts *o)
{
    if (!cf__worker_entry_interposed())
        return cf__fail_msg(CF_ENOTSUP,
                            "spawn needs the program linked with libcfutures (its "
                            "re-run becomes a worker before main): link it, or launch the "
                            "ranks with mpiexec");
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return cf__fail_msg(CF_ESYSTEM, "cannot find this program's executable: %s",
                            strerror(errno));
    exe[n] = '\0';
    char flag[] = CF__MPI_WORKER_FLAG;
    char *argv[] = { flag, NULL };
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "map_by", "node:OVERSUBSCRIBE");
    int *codes = cf__calloc((size_t)o->spawn, sizeof *codes);
    if (!codes) {
        MPI_Info_free(&info);
        return cf__fail(CF_ENOMEM);
    }
    /* Errors come back as codes here, not as an abort of the program. */
    MPI_Errhandler saved;
    MPI_Comm_get_errhandler(MPI_COMM_SELF, &saved);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    MPI_Comm inter = MPI_COMM_NULL, merged = MPI_COMM_NULL;
    int err = MPI_Comm_spawn(exe, argv, o->spawn, info, 0, MPI_COMM_SELF, &inter, codes);
    MPI_Comm_set_errhandler(MPI_COMM_SELF, saved);
    MPI_Errhandler_free(&saved);
    MPI_Info_free(&info);
    cf__free(codes);
    char why[256];
    if (err != MPI_SUCCESS) {
        mpi_fail("MPI_Comm_spawn", err, why, sizeof why);
        return cf__fail_msg(CF_ESYSTEM, "cannot spawn %d worker ranks of %s: %s", o->spawn, exe,
                            why);
    }
    MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN);
    err = MPI_Intercomm_merge(inter, 0, &merged);
    if (err != MPI_SUCCESS) {
        mpi_fail("MPI_Intercomm_merge", err, why, sizeof why);
        MPI_Comm_free(&inter);
        return cf__fail_msg(CF_ESYSTEM, "%s", why);
    }
    MPI_Comm_set_errhandler(merged, MPI_ERRORS_RETURN);
    int unused;
    cf_executor *ex = cf__mpi_meet(merged, inter, 0, o, &unused);
    if (!ex) {
        MPI_Comm_free(&merged);
        MPI_Comm_disconnect(&inter);
    }
    return ex;
}

cf_executor *cf_mpi_pool_new(const cf_mpi_pool_opts *opts)
{
    /* The two libraries share private structures: of one release only. */
    if (cf_version() != CFUTURES_VERSION_HEX)
        return cf__fail_msg(CF_ENOTSUP,
                            "libcfutures-mpi %s runs with libcfutures %s: it needs the same "
                            "version",
                            CFUTURES_VERSION_STRING, cf_version_string());
    cf_mpi_pool_opts o = opts ? *opts : (cf_mpi_pool_opts){ 0 };
    if (CF__CHECK_RESERVED(&o, "cf_mpi_pool_opts") != 0) /* every rank alike: no collective yet */
        return NULL;
    if (o.spawn < 0)
        return cf__fail_msg(CF_EINVAL, "spawn must be 0 or a number of worker ranks");
    if (ensure_mpi() != 0)
        return NULL;
    if (o.spawn > 0)
        return spawn_pool(&o);
    MPI_Comm base = all_zero(&o.comm, sizeof o.comm) ? MPI_COMM_WORLD : o.comm;
    int size = 0;
    if (base == MPI_COMM_NULL || MPI_Comm_size(base, &size) != MPI_SUCCESS)
        return cf__fail_msg(CF_EINVAL, "opts.comm is not a communicator");
    if (o.root < 0 || o.root >= size)
        return cf__fail_msg(CF_EINVAL, "opts.root %d is not a rank of a communicator of %d", o.root,
                            size);
    MPI_Comm comm = MPI_COMM_NULL;
    int err = MPI_Comm_dup(base, &comm);
    if (err != MPI_SUCCESS) {
        char why[256];
        mpi_fail("MPI_Comm_dup", err, why, sizeof why);
        return cf__fail_msg(CF_ESYSTEM, "%s", why);
    }
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int unused;
    cf_executor *ex = cf__mpi_meet(comm, MPI_COMM_NULL, o.root, &o, &unused);
    if (!ex) {
        int code = cf_last_error();
        char msg[CF__MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", cf_last_error_message());
        MPI_Comm_free(&comm);
        cf__set_last_error_msg(code, "%s", msg);
        if (code == 0)
            cf__set_last_error(0);
    }
    return ex;
}
