/* A function's identity across processes: the object that holds its code
 * (GNU build-id, and the object's path) and the offset of the function from
 * that object's load base. Load addresses differ between processes (PIE,
 * ASLR), offsets within one build do not, so static functions travel too.
 * Never installed.
 * SPDX-License-Identifier: MIT */
#ifndef CF_FNREF_H
#define CF_FNREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encoded form: u8 id_len, id_len bytes of build-id, u16 path_len, path_len
 * bytes of path (absolute; empty for the main program), u64 offset. Native byte order:
 * both ends are the same program on the same machine. */
#define CF__FNREF_MAX_ID 64
#define CF__FNREF_MAX_PATH 4096
#define CF__FNREF_MAX (1 + CF__FNREF_MAX_ID + 2 + CF__FNREF_MAX_PATH + 8)

/* Encode the identity of the code at `addr` into out[0..cap). Returns the
 * encoded length (> 0), or CF_EINVAL when addr lies in no executable segment
 * of a loaded object (or the result does not fit in cap). */
int cf__fnref_encode(uintptr_t addr, unsigned char *out, size_t cap);

/* Check that ref[0..len) is a well-formed encoding: 0 or CF_EINVAL. */
int cf__fnref_check(const unsigned char *ref, size_t len);

/* Find the code `ref` names in this process: 0 with *addr, or CF_EINVAL when
 * ref is malformed, its object is not loaded here (nor loadable from its
 * path), has a different build-id, or the offset is outside its code; then
 * why[0..cap) says which (with the dynamic loader's error when loading
 * failed). A shared library named by path that is not loaded yet is loaded
 * with dlopen. */
int cf__fnref_resolve(const unsigned char *ref, size_t len, uintptr_t *addr, char *why, size_t cap);

/* Whether ref names code in the main program (not a library). */
bool cf__fnref_in_main_program(const unsigned char *ref, size_t len);

/* A short description for error messages, e.g.
 * "offset 0x1139 in main program (build-id 755b19...)". Always terminated. */
void cf__fnref_describe(const unsigned char *ref, size_t len, char *buf, size_t cap);

#endif /* CF_FNREF_H */
