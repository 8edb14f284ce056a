/* Which file holds the code at an address, as the kernel knows it: the
 * mapping in /proc/self/maps. Unlike the name an object was loaded by (what
 * dl_iterate_phdr and dladdr give), it is absolute and does not change when
 * the program changes directory; and it tells whether the file was deleted.
 * SPDX-License-Identifier: MIT */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"

/* Parse one maps line: 0 and the fields when it covers addr, else -1. */
static int parse_line(char *line, uintptr_t addr, cf__object_file *out)
{
    uintmax_t start, end, inode;
    unsigned maj, min;
    int path_at = 0;
    if (sscanf(line, "%jx-%jx %*s %*s %x:%x %ju %n", &start, &end, &maj, &min, &inode, &path_at) <
        5)
        return -1;
    if (addr < start || addr >= end || path_at == 0 || line[path_at] != '/')
        return -1;
    char *path = line + path_at;
    path[strcspn(path, "\n")] = '\0';
    size_t len = strlen(path), suffix = sizeof DELETED_SUFFIX - 1;
    out->deleted = len > suffix && strcmp(path + len - suffix, DELETED_SUFFIX) == 0;
    if (out->deleted)
        path[len - suffix] = '\0';
    if (strlen(path) >= sizeof out->path)
        return -1;
    strcpy(out->path, path);
    out->dev = makedev(maj, min);
    out->ino = (ino_t)inode;
    return 0;
}

int cf__object_file_of(uintptr_t addr, cf__object_file *out)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return CF_ESYSTEM;
    char line[CF__OBJECT_PATH_MAX + 128];
    int rc = CF_EINVAL;
    while (fgets(line, sizeof line, maps)) {
        if (parse_line(line, addr, out) == 0) {
            rc = 0;
            break;
        }
    }
    fclose(maps);
    if (rc != 0)
        errno = ENOENT; /* for the caller's message: no such mapping */
    return rc;
}

bool cf__object_file_current(const cf__object_file *f)
{
    if (f->deleted)
        return false;
    struct stat st;
    return stat(f->path, &st) == 0 && st.st_dev == f->dev && st.st_ino == f->ino;
}
