/** @file cfutures-mpi.h
 * @brief cfutures-mpi: the MPI executor (@ref cfutures_mpi).
 *
 * A pool whose workers are MPI ranks, on
 * this machine or across a cluster, with the same tasks, futures, cf_map,
 * cf_wait, shutdown and CF_WITH as a process pool: switching is a one-line
 * change. Library libcfutures-mpi (pkg-config and Meson dependency
 * cfutures-mpi), which builds on libcfutures of the same version.
 *
 * Two ways to launch, as mpi4py.futures has:
 * - static (MPICommExecutor): `mpiexec -n N ./prog`, every rank calls
 *   cf_mpi_pool_new; the root rank gets the executor, every other rank
 *   serves the root's tasks inside that call until the root shuts the pool
 *   down or frees it, and then gets NULL with cf_last_error() == 0;
 * - spawn (MPIPoolExecutor): opts.spawn = k starts k worker ranks running
 *   this program's executable with MPI_Comm_spawn; main never runs in them
 *   (the program must be linked with libcfutures, as pkg-config and Meson
 *   do). Works from a program started without mpiexec.
 *
 * What crosses the wire: a task's function by identity (the build-id of its
 * object and its offset, so static functions work), values as 64-bit
 * integers, copied bytes as they are. Every rank must run the same build on
 * the same kind of machine (byte order, pointer size): checked at creation.
 *
 * When a worker rank dies, only its running task fails (CF_EBROKEN), its
 * queued tasks move to other ranks and the pool goes on with fewer workers,
 * broken only once none is left -- where the MPI runtime lets the job go on
 * (Open MPI: mpiexec --enable-recovery; see cf_mpi_survives_rank_death).
 * Otherwise the runtime ends the whole job when a rank dies.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CFUTURES_MPI_H
#define CFUTURES_MPI_H

#include <mpi.h>
#include <cfutures.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @addtogroup cfutures_mpi
 * @{ */

/** Marks the functions libcfutures-mpi exports (default visibility while
 * the library itself is built; empty for its users). */
#if defined(CF_MPI_BUILDING) && (defined(__GNUC__) || defined(__clang__))
#define CF_MPI_API __attribute__((visibility("default")))
#else
#define CF_MPI_API
#endif

/** Options of cf_mpi_pool_new; zeroed (or NULL) means every default. */
typedef struct cf_mpi_pool_opts {
    MPI_Comm comm; /**< all bits zero: MPI_COMM_WORLD. The pool works on its own
                        duplicate; every rank of comm calls cf_mpi_pool_new */
    int root;      /**< the rank of comm that gets the executor; the others serve.
                        Outside [0, size of comm): CF_EINVAL */
    int spawn;     /**< > 0: instead, this process alone starts that many worker
                        ranks (MPI_Comm_spawn of its own executable, Open MPI info
                        map_by node:OVERSUBSCRIBE) and is the root; comm and root
                        are ignored. < 0: CF_EINVAL */
    int (*initializer)(void *initarg); /**< runs on each worker rank before its first
                                            task; nonzero return: the pool is broken */
    void *initarg;                     /**< travels as a value */
    size_t max_message;                /**< 0: 64 MiB; larger data fails with CF_ETOOBIG at submit;
                                            values above 1 GiB count as 1 GiB */
    uint64_t cf_reserved[8];           /**< zero (later versions' options); else CF_ENOTSUP */
} cf_mpi_pool_opts;

/** Make an MPI pool (opts may be NULL: all defaults). Collective over comm:
 * every rank calls it with the same opts (with spawn, only this process).
 * Initialises MPI (MPI_THREAD_MULTIPLE) if the program has not; then MPI
 * is finalised when the program exits.
 * - On the root: the executor (free it with cf_executor_free, before
 *   MPI_Finalize). Its workers are the other ranks of comm (with spawn, the
 *   spawned ranks), one task at a time each; only the pool's manager thread
 *   calls MPI while it exists.
 * - On every other rank: blocks, running the root's tasks one at a time,
 *   until the root shuts the pool down or frees it; then NULL with
 *   cf_last_error() == 0. NULL with CF_EBROKEN when the root died
 *   (under mpiexec --enable-recovery).
 * - On failure, NULL on every rank, with cf_last_error() and
 *   cf_last_error_message() saying why: CF_EINVAL (bad option; a rank runs a
 *   different build of the program, or on a machine of another byte order
 *   or pointer size), CF_ENOTSUP (MPI was initialised with too low a thread
 *   level: the root needs MPI_THREAD_MULTIPLE, the other ranks
 *   MPI_THREAD_FUNNELED from the main thread, else MPI_THREAD_SERIALIZED;
 *   MPI already finalised; spawn from a program not linked with
 *   libcfutures; a program linked without a GNU build-id, which the ranks
 *   compare: link with -Wl,--build-id, as gcc and clang on Debian do by
 *   default; a libcfutures of another version than libcfutures-mpi; a
 *   non-zero cf_reserved word, as in cfutures.h), CF_ENOMEM,
 *   CF_ESYSTEM (an MPI or socket call failed, or a
 *   rank could not reach the root's liveness port; the message names it).
 * Blocks while the ranks meet (collectives and one TCP connection per
 * worker rank to the root, authenticated by a per-pool secret sent over
 * MPI: the root learns a rank's death from that connection's end).
 *
 * cf_executor_terminate_workers / kill_workers: an MPI rank cannot be
 * signalled, so the tasks the ranks are running fail at once with
 * CF_EBROKEN, pending work is cancelled, and each rank stops serving once
 * its task returns; cf_executor_free waits for that. Tasks already handed
 * to a rank (the window of tasks per worker) may still run there, though
 * their futures have failed with CF_EBROKEN: their side effects may happen.
 * A worker rank that stops serving on its own (out of memory, an MPI call
 * failed) returns NULL with CF_ENOMEM or CF_ESYSTEM; the root sees it as a
 * lost worker. */
CF_MPI_API cf_executor *cf_mpi_pool_new(const cf_mpi_pool_opts *opts);

/** Whether the MPI runtime lets the job go on when a rank dies (Open MPI's
 * mpiexec --enable-recovery): then an MPI pool loses only that rank's
 * running task. When false, a rank's death ends the whole job, the root
 * included (MPI's default). Never blocks; needs no MPI initialisation. */
CF_MPI_API bool cf_mpi_survives_rank_death(void);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* CFUTURES_MPI_H */
