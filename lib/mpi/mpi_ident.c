/* What each rank says about itself when the pool's ranks meet, and the
 * check that they can work together: the same build of the program (GNU
 * build-id of the main executable: functions travel by offset into it), the
 * same byte order and pointer size (frames are in native order), the same
 * libcfutures-mpi version, and thread levels high enough.
 * SPDX-License-Identifier: MIT */
#include "mpi_internal.h"

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *cf__mpi_thread_level_name(int level)
{
    if (level == MPI_THREAD_SINGLE)
        return "MPI_THREAD_SINGLE";
    if (level == MPI_THREAD_FUNNELED)
        return "MPI_THREAD_FUNNELED";
    if (level == MPI_THREAD_SERIALIZED)
        return "MPI_THREAD_SERIALIZED";
    if (level == MPI_THREAD_MULTIPLE)
        return "MPI_THREAD_MULTIPLE";
    return "an unknown MPI thread level";
}

void cf__mpi_error_text(const char *call, int err, char *buf, size_t cap)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "error %d", err);
    snprintf(buf, cap, "%s: %s", call, text);
}

/* The main program is the first object dl_iterate_phdr lists. */
static int main_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    cf__mpi_ident *id = data;
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        size_t left = ph->p_memsz;
        while (left >= sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) nh;
            memcpy(&nh, p, sizeof nh);
            size_t name = (nh.n_namesz + 3u) & ~(size_t)3;
            size_t desc = (nh.n_descsz + 3u) & ~(size_t)3;
            if (left - sizeof nh < name + desc)
                break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp(p + sizeof nh, "GNU", 4) == 0) {
                size_t n = nh.n_descsz < sizeof id->build_id ? nh.n_descsz : sizeof id->build_id;
                memcpy(id->build_id, p + sizeof nh + name, n);
                id->build_id_len = (uint8_t)n;
                return 1;
            }
            p += sizeof nh + name + desc;
            left -= sizeof nh + name + desc;
        }
    }
    return 1; /* only the first object */
}

void cf__mpi_ident_self(cf__mpi_ident *id, bool root)
{
    memset(id, 0, sizeof *id);
    id->magic = CF__MPI_MAGIC;
    id->ptr_size = (uint8_t)sizeof(void *);
    id->version =
        (CFUTURES_VERSION_MAJOR << 16) | (CFUTURES_VERSION_MINOR << 8) | CFUTURES_VERSION_PATCH;
    dl_iterate_phdr(main_build_id, id);
    int provided = MPI_THREAD_SINGLE, is_main = 0;
    MPI_Query_thread(&provided);
    MPI_Is_thread_main(&is_main);
    id->provided = provided;
    /* The root's manager thread calls MPI beside the program's threads; a
     * worker rank calls it only from the thread that serves. */
    id->needed = root ? MPI_THREAD_MULTIPLE : is_main ? MPI_THREAD_FUNNELED : MPI_THREAD_SERIALIZED;
    id->pid = (int64_t)getpid();
    char host[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    if (MPI_Get_processor_name(host, &len) != MPI_SUCCESS || len <= 0)
        gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(id->host, sizeof id->host, "%.63s", host);
}

static void hex(const uint8_t *b, size_t n, char *out, size_t cap)
{
    size_t at = 0;
    for (size_t i = 0; i < n && at + 3 <= cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%02x", b[i]);
    if (at == 0 && cap > 0)
        snprintf(out, cap, "none");
}

int cf__mpi_ident_check(const cf__mpi_ident *all, int size, int root, char *why, size_t cap)
{
    const cf__mpi_ident *r = &all[root];
    if (r->build_id_len == 0) { /* all equal "none": any program would pass */
        snprintf(why, cap,
                 "the program has no GNU build-id, by which the ranks check that they run "
                 "the same build and a task's function is found: link it with "
                 "-Wl,--build-id");
        return CF_ENOTSUP;
    }
    for (int i = 0; i < size; i++) {
        const cf__mpi_ident *x = &all[i];
        if (x->magic != r->magic || x->ptr_size != r->ptr_size) {
            snprintf(why, cap,
                     "rank %d (%.64s) has another byte order or pointer size than the "
                     "root (rank %d): every rank must run on the same kind of machine",
                     i, x->host, root);
            return CF_EINVAL;
        }
        if (x->version != r->version) {
            snprintf(why, cap, "rank %d runs libcfutures-mpi %#x, the root (rank %d) %#x", i,
                     (unsigned)x->version, root, (unsigned)r->version);
            return CF_EINVAL;
        }
        if (x->build_id_len != r->build_id_len ||
            memcmp(x->build_id, r->build_id, r->build_id_len) != 0) {
            char a[132], b[132];
            hex(x->build_id, x->build_id_len, a, sizeof a);
            hex(r->build_id, r->build_id_len, b, sizeof b);
            snprintf(why, cap,
                     "rank %d runs another build of the program than the root (rank "
                     "%d): build-id %s, not %s; every rank must run the same executable",
                     i, root, a, b);
            return CF_EINVAL;
        }
    }
    for (int i = 0; i < size; i++) {
        if (all[i].provided < all[i].needed) {
            snprintf(why, cap, "MPI was initialised with %s on rank %d; the pool needs %s there%s",
                     cf__mpi_thread_level_name(all[i].provided), i,
                     cf__mpi_thread_level_name(all[i].needed),
                     i == root ? " (its manager thread calls MPI beside the program's threads): "
                                 "call MPI_Init_thread with MPI_THREAD_MULTIPLE"
                               : "");
            return CF_ENOTSUP;
        }
    }
    return 0;
}
