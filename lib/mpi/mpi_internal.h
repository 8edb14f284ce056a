/* What the files of libcfutures-mpi share. It builds on libcfutures' core
 * through the companion ABI (lib/companion.h). Never installed.
 *
 * mpi_pool.c       cf_mpi_pool_new: the meeting of the ranks, then root or worker
 * mpi_ident.c      what each rank says about itself at the meeting, and the check
 * mpi_liveness.c   the TCP connections the root learns a rank's death from
 * mpi_transport.c  the root's side: the core's transport over MPI
 * mpi_serve.c      a worker rank's side: the serve loop over MPI; spawned ranks
 * SPDX-License-Identifier: MIT */
#ifndef CF_MPI_INTERNAL_H
#define CF_MPI_INTERNAL_H

#include "cfutures-mpi.h"

#include "companion.h"

#include <stdint.h>

/* Tags on the pool's communicator. DATA: frames (wire.h), a byte stream cut
 * into messages of at most CF__MPI_MAX_PIECE bytes, both ways. BYE: a
 * worker stopped serving (payload: its int status). FIN: the root's answer
 * to a BYE, its last message to that rank (empty): the rank receives and
 * drops DATA until FIN comes, so that no message of the pool is left
 * unreceived when the communicator is freed (Open MPI may give a later
 * communicator the same context id, and the next pool would then receive
 * it). SETUP: a worker could not connect its liveness socket (payload: why,
 * text). */
enum { CF__MPI_TAG_DATA = 1, CF__MPI_TAG_BYE = 2, CF__MPI_TAG_SETUP = 3, CF__MPI_TAG_FIN = 4 };
#define CF__MPI_MAX_PIECE ((size_t)1 << 30)

#define CF__MPI_SECRET_LEN 16
#define CF__MPI_HOST_MAX 64
/* argv[1] of a spawned worker rank (the program re-run; see worker.h). */
#define CF__MPI_WORKER_FLAG "--cfutures-mpi-worker"

/* ------------------------------------------------------------------------ */
/* mpi_ident.c                                                               */
/* ------------------------------------------------------------------------ */

/* What one rank says about itself (exchanged as bytes with MPI_Allgather). */
typedef struct cf__mpi_ident {
    uint32_t magic;   /* CF__MPI_MAGIC in the rank's byte order */
    uint8_t ptr_size; /* sizeof(void *) */
    uint8_t build_id_len;
    uint8_t build_id[64]; /* the main program's GNU build-id */
    uint32_t version;     /* CFUTURES_VERSION_HEX of its libcfutures-mpi */
    int32_t provided;     /* its MPI thread level */
    int32_t needed;       /* the level it needs */
    int64_t pid;
    char host[CF__MPI_HOST_MAX]; /* MPI_Get_processor_name, cut */
} cf__mpi_ident;
#define CF__MPI_MAGIC 0x63666d31u /* "cfm1" */

/* This rank's identity: as root (needs MPI_THREAD_MULTIPLE) or worker. */
void cf__mpi_ident_self(cf__mpi_ident *id, bool root);
/* Check every rank's identity against the root's: 0, or a CF_E* code with
 * the reason in why (the same on every rank: they all see the same table). */
int cf__mpi_ident_check(const cf__mpi_ident *all, int size, int root, char *why, size_t cap);
const char *cf__mpi_thread_level_name(int level);

/* An MPI call's error as text: "MPI_Send: <MPI's words>". */
void cf__mpi_error_text(const char *call, int err, char *buf, size_t cap);

/* What travels on a liveness connection besides its end (see
 * mpi_liveness.c): a worker rank says, in records of CF__LIVE_RECORD bytes
 * (a type byte, then a u32), SLEEP (it is about to sleep, having received
 * that many DATA messages: ring it if more were sent) and WOKE_ROOT (it
 * just sent a reply after a long task: the root's loop may have stopped
 * spinning); the root rings with one RING byte. */
enum { CF__LIVE_SLEEP = 'S', CF__LIVE_WAKE_ROOT = 'W', CF__LIVE_RING = 'R' };
#define CF__LIVE_RECORD 5

/* ------------------------------------------------------------------------ */
/* mpi_liveness.c                                                            */
/* ------------------------------------------------------------------------ */

/* The root's listening socket, on loopback when every rank is on the
 * root's host (local), else on every address: its descriptor (port in
 * *port), or -1 with why. */
int cf__live_listen(bool local, uint16_t *port, char *why, size_t cap);
/* Accept one authenticated connection from each worker rank of comm
 * (fds[rank], -1 for root), dropping any that does not send the secret,
 * until all came or the deadline (seconds) passed; a SETUP message from a
 * rank ends the wait at once. 0, or CF_ESYSTEM with why; closes listener. */
int cf__live_accept(int listener, const unsigned char *secret, MPI_Comm comm, int root, int *fds,
                    double deadline_s, char *why, size_t cap);
/* A worker rank's side: connect to host:port and send secret + rank. The
 * descriptor, or -1 with why. */
int cf__live_connect(const char *host, uint16_t port, const unsigned char *secret, int rank,
                     char *why, size_t cap);

/* ------------------------------------------------------------------------ */
/* mpi_transport.c: the root                                                 */
/* ------------------------------------------------------------------------ */

typedef struct cf__mpi_root {
    MPI_Comm comm;  /* the pool's own communicator */
    MPI_Comm inter; /* spawn: the intercommunicator to the children, else MPI_COMM_NULL */
    int size, self;
    const cf__mpi_ident *idents; /* size entries, owned */
    int *live_fds;               /* size entries, owned (-1: none) */
} cf__mpi_root;

/* The executor over these ranks (takes over everything in root, also on
 * failure, except the communicators: on failure the caller frees them).
 * NULL with the last error set. */
cf_executor *cf__mpi_root_new(cf__mpi_root *root, const cf_mpi_pool_opts *opts);

/* ------------------------------------------------------------------------ */
/* mpi_serve.c: a worker rank                                                */
/* ------------------------------------------------------------------------ */

/* Serve the root's tasks over comm until told to stop: 0, or the serve
 * loop's exit status; CF_EBROKEN when the root died. Sends BYE at the end
 * (unless the root died) and closes live_fd. */
int cf__mpi_serve(MPI_Comm comm, int root, int live_fd);

/* mpi_pool.c: the meeting, as root or worker, on the pool's own comm. */
cf_executor *cf__mpi_meet(MPI_Comm comm, MPI_Comm inter, int root, const cf_mpi_pool_opts *opts,
                          int *serve_status);

#endif /* CF_MPI_INTERNAL_H */
