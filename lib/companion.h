/* The companion ABI: the internal functions that libcfutures exports for
 * the project's other libraries (libcfutures-mpi), which build on its core
 * instead of carrying a copy of it (a second copy would have its own
 * cf_raise thread-local, last error and allocator hook, and break tasks).
 *
 * Private to this project: these names may change in any release, which is
 * why cfutures-mpi requires cfutures of the very same version. Everything
 * not listed here stays hidden. lib/meson.build makes every source of
 * libcfutures include this file first (-include), so that these
 * redeclarations, which add default visibility, come before the
 * definitions; test/test_exports.py holds the same list. Never installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_COMPANION_H
#define CF_COMPANION_H

#include "remote.h"
#include "worker.h"

#if defined(__GNUC__) || defined(__clang__)
#define CF_COMPANION __attribute__((visibility("default")))
#else
#define CF_COMPANION
#endif

/* alloc.c: the allocator hook and the last error */
CF_COMPANION void *cf__malloc(size_t size);
CF_COMPANION void *cf__calloc(size_t count, size_t size);
CF_COMPANION void *cf__realloc(void *p, size_t size);
CF_COMPANION void cf__free(void *p);
CF_COMPANION void cf__set_last_error(int code);
CF_COMPANION void cf__set_last_error_msg(int code, const char *fmt, ...) CF_PRINTF(2, 3);
CF_COMPANION void *cf__fail(int code);
CF_COMPANION void *cf__fail_msg(int code, const char *fmt, ...) CF_PRINTF(2, 3);

/* version.c: the option structs' reserved words */
CF_COMPANION int cf__check_reserved(const uint64_t *words, size_t n, const char *type);

/* wire.c: the buffers frames are queued in, and the EXIT frame */
CF_COMPANION int cf__buf_reserve(cf__buf *b, size_t more);
CF_COMPANION void cf__buf_free(cf__buf *b);
CF_COMPANION int cf__wire_put_exit(cf__buf *b);

/* remote_*.c: a pool on a transport, and what a transport calls back */
CF_COMPANION cf_executor *cf__remote_new(const cf__remote_config *cfg, const cf__transport_ops *ops,
                                         void *transport);
CF_COMPANION uv_loop_t *cf__remote_loop(cf__remote *r);
CF_COMPANION void *cf__remote_transport(cf__remote *r);
CF_COMPANION void cf__rworker_handle_opened(cf__rworker *w);
CF_COMPANION void cf__rworker_close_handle(cf__rworker *w, uv_handle_t *h);
CF_COMPANION bool cf__rworker_read_room(cf__rworker *w, unsigned char **buf, size_t *room);
CF_COMPANION void cf__rworker_received(cf__rworker *w, size_t n);
CF_COMPANION void cf__rworker_exited(cf__rworker *w, const cf__worker_exit *e);

/* worker.c, worker_entry.c: the serve loop, and entries before main */
CF_COMPANION int cf__serve(const cf__serve_io *io);
CF_COMPANION int cf__worker_entry_register(const char *flag, cf__worker_entry_fn entry);
CF_COMPANION bool cf__worker_entry_interposed(void);

#endif /* CF_COMPANION_H */
