/* A function's identity across processes (see fnref.h): found with
 * dl_iterate_phdr, which lists every loaded object with its load base, its
 * segments and its notes (where the GNU build-id lives), so static functions
 * work too (dladdr only knows exported symbols' objects by name).
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fnref.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

/* The parsed form of an encoded reference; points into the encoding. */
typedef struct fnref {
    const unsigned char *id;
    size_t id_len;
    const char *path; /* not terminated */
    size_t path_len;
    uint64_t offset;
} fnref;

static int fnref_parse(const unsigned char *ref, size_t len, fnref *r)
{
    if (!ref || len < 1)
        return CF_EINVAL;
    size_t pos = 0;
    r->id_len = ref[pos++];
    if (r->id_len > CF__FNREF_MAX_ID || len - pos < r->id_len + 2)
        return CF_EINVAL;
    r->id = ref + pos;
    pos += r->id_len;
    uint16_t path_len;
    memcpy(&path_len, ref + pos, 2);
    pos += 2;
    r->path_len = path_len;
    if (r->path_len > CF__FNREF_MAX_PATH || len - pos != r->path_len + 8)
        return CF_EINVAL;
    r->path = (const char *)ref + pos;
    if (memchr(r->path, '\0', r->path_len))
        return CF_EINVAL;
    pos += r->path_len;
    memcpy(&r->offset, ref + pos, 8);
    return 0;
}

int cf__fnref_check(const unsigned char *ref, size_t len)
{
    fnref r;
    return fnref_parse(ref, len, &r);
}

/* The GNU build-id of a loaded object: its length (0 when it has none). */
static size_t object_build_id(const struct dl_phdr_info *info, const unsigned char **id)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        size_t left = ph->p_filesz;
        size_t align = ph->p_align == 8 ? 8 : 4;
        while (left >= sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) nh;
            memcpy(&nh, p, sizeof nh);
            size_t name_size = ((size_t)nh.n_namesz + align - 1) & ~(align - 1);
            size_t desc_size = ((size_t)nh.n_descsz + align - 1) & ~(align - 1);
            size_t body = left - sizeof nh;
            if (name_size > body || desc_size > body - name_size)
                break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp(p + sizeof nh, "GNU", 4) == 0 && nh.n_descsz > 0 &&
                nh.n_descsz <= CF__FNREF_MAX_ID) {
                *id = p + sizeof nh + name_size;
                return nh.n_descsz;
            }
            p += sizeof nh + name_size + desc_size;
            left -= sizeof nh + name_size + desc_size;
        }
    }
    return 0;
}

/* Whether [base + offset] lies in an executable segment of the object. */
static bool object_code_has(const struct dl_phdr_info *info, uint64_t offset)
{
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && offset >= ph->p_vaddr &&
            offset - ph->p_vaddr < ph->p_memsz)
            return true;
    }
    return false;
}

/* dl_iterate_phdr names the main program "" (it comes first). */
static const char *object_path(const struct dl_phdr_info *info, size_t index)
{
    if (index == 0 || !info->dlpi_name)
        return "";
    return info->dlpi_name;
}

typedef struct encode_ctx {
    uintptr_t addr;
    size_t index;
    unsigned char *out;
    size_t cap;
    int len; /* result, 0 while not found */
} encode_ctx;

static int encode_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    encode_ctx *c = data;
    size_t index = c->index++;
    if (c->addr < info->dlpi_addr || !object_code_has(info, c->addr - info->dlpi_addr))
        return 0;
    const unsigned char *id = NULL;
    size_t id_len = object_build_id(info, &id);
    const char *path = object_path(info, index);
    /* A library loaded by a relative name: that name means nothing in a
     * worker whose directory differs (or after a chdir); the file does. */
    cf__object_file file;
    if (path[0] != '\0' && path[0] != '/' && cf__object_file_of(c->addr, &file) == 0)
        path = file.path;
    size_t path_len = strlen(path);
    size_t need = 1 + id_len + 2 + path_len + 8;
    if (path_len > CF__FNREF_MAX_PATH || need > c->cap) {
        c->len = CF_EINVAL;
        return 1;
    }
    unsigned char *p = c->out;
    *p++ = (unsigned char)id_len;
    if (id_len)
        memcpy(p, id, id_len);
    p += id_len;
    uint16_t pl = (uint16_t)path_len;
    memcpy(p, &pl, 2);
    p += 2;
    if (path_len)
        memcpy(p, path, path_len);
    p += path_len;
    uint64_t offset = c->addr - info->dlpi_addr;
    memcpy(p, &offset, 8);
    c->len = (int)need;
    return 1;
}

int cf__fnref_encode(uintptr_t addr, unsigned char *out, size_t cap)
{
    encode_ctx c = { .addr = addr, .out = out, .cap = cap };
    dl_iterate_phdr(encode_cb, &c);
    return c.len > 0 ? c.len : CF_EINVAL;
}

typedef struct resolve_ctx {
    const fnref *r;
    size_t index;
    bool found_object; /* an object with this identity is loaded */
    bool found;
    uintptr_t addr;
} resolve_ctx;

static int resolve_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    resolve_ctx *c = data;
    size_t index = c->index++;
    const fnref *r = c->r;
    if (r->id_len > 0) {
        const unsigned char *id = NULL;
        size_t id_len = object_build_id(info, &id);
        /* The build-id names the object; its path may differ here. The
         * first object with this build-id whose code holds the offset wins. */
        if (id_len != r->id_len || memcmp(id, r->id, id_len) != 0)
            return 0;
    } else {
        const char *path = object_path(info, index);
        if (strlen(path) != r->path_len || memcmp(path, r->path, r->path_len) != 0)
            return 0;
    }
    c->found_object = true;
    if (!object_code_has(info, r->offset))
        return 0;
    c->found = true;
    c->addr = info->dlpi_addr + (uintptr_t)r->offset;
    return 1;
}

static int resolve_loaded(const fnref *r, uintptr_t *addr, bool *object_loaded)
{
    resolve_ctx c = { .r = r };
    dl_iterate_phdr(resolve_cb, &c);
    *object_loaded = c.found_object;
    if (!c.found)
        return CF_EINVAL;
    *addr = c.addr;
    return 0;
}

/* A worker resolves the same few functions over and over: remember them. */
enum { CACHE_SLOTS = 8 };
typedef struct cache_entry {
    unsigned char *ref;
    size_t len;
    uintptr_t addr;
} cache_entry;
static _Thread_local cache_entry cache[CACHE_SLOTS];
static _Thread_local unsigned cache_next;

static bool cache_find(const unsigned char *ref, size_t len, uintptr_t *addr)
{
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].ref && cache[i].len == len && memcmp(cache[i].ref, ref, len) == 0) {
            *addr = cache[i].addr;
            return true;
        }
    }
    return false;
}

static void cache_add(const unsigned char *ref, size_t len, uintptr_t addr)
{
    unsigned char *copy = cf__malloc(len);
    if (!copy)
        return; /* a cache miss is not an error */
    cache_entry *e = &cache[cache_next++ % CACHE_SLOTS];
    cf__free(e->ref);
    memcpy(copy, ref, len);
    *e = (cache_entry){ .ref = copy, .len = len, .addr = addr };
}

/* Load the library a reference names by path (the parent loaded it, this
 * process has not yet): 0, or CF_EINVAL with the loader's reason. */
static int load_object(const fnref *r, char *why, size_t cap)
{
    char path[CF__FNREF_MAX_PATH + 1];
    memcpy(path, r->path, r->path_len);
    path[r->path_len] = '\0';
    if (dlopen(path, RTLD_NOW | RTLD_LOCAL)) /* kept loaded on purpose */
        return 0;
    const char *err = dlerror();
    snprintf(why, cap, "cannot load it: %s", err ? err : "dlopen failed");
    return CF_EINVAL;
}

int cf__fnref_resolve(const unsigned char *ref, size_t len, uintptr_t *addr, char *why, size_t cap)
{
    if (cap > 0)
        why[0] = '\0';
    if (cache_find(ref, len, addr))
        return 0;
    fnref r;
    if (fnref_parse(ref, len, &r) != 0) {
        snprintf(why, cap, "a malformed function reference");
        return CF_EINVAL;
    }
    bool loaded = false;
    int rc = resolve_loaded(&r, addr, &loaded);
    if (rc != 0 && !loaded && r.path_len > 0 && load_object(&r, why, cap) == 0)
        rc = resolve_loaded(&r, addr, &loaded);
    if (rc != 0) {
        if (cap > 0 && why[0]) /* the loader said why */
            return rc;
        if (loaded)
            snprintf(why, cap, "its object is loaded here, but that offset is not code in it");
        else if (r.path_len == 0)
            snprintf(why, cap,
                     "no object here has its build-id: this worker runs another "
                     "program or another build of it");
        else
            snprintf(why, cap, "the library loaded from that path here is another build");
        return rc;
    }
    cache_add(ref, len, *addr);
    return 0;
}

bool cf__fnref_in_main_program(const unsigned char *ref, size_t len)
{
    fnref r;
    return fnref_parse(ref, len, &r) == 0 && r.path_len == 0;
}

void cf__fnref_describe(const unsigned char *ref, size_t len, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    fnref r;
    if (fnref_parse(ref, len, &r) != 0) {
        snprintf(buf, cap, "(malformed function reference)");
        return;
    }
    char id[2 * 8 + 4] = "none";
    if (r.id_len > 0) {
        size_t n = r.id_len < 8 ? r.id_len : 8;
        for (size_t i = 0; i < n; i++)
            snprintf(id + 2 * i, 3, "%02x", r.id[i]);
        if (r.id_len > n)
            strcpy(id + 2 * n, "...");
    }
    if (r.path_len == 0)
        snprintf(buf, cap, "offset 0x%llx in the main program (build-id %s)",
                 (unsigned long long)r.offset, id);
    else
        snprintf(buf, cap, "offset 0x%llx in %.*s (build-id %s)", (unsigned long long)r.offset,
                 (int)r.path_len, r.path, id);
}
