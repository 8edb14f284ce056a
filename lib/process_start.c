/* How a process pool starts its workers (see cf_start_method in cfutures.h):
 * the program, the command line, and where the helper lives. Decided once,
 * when the pool is made, so that a way that cannot work fails there, with
 * its cause, rather than in every task.
 * SPDX-License-Identifier: MIT */
#include "process_start.h"

#include "worker.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef CF_HELPER_RELATIVE
#define CF_HELPER_RELATIVE "../libexec/cfutures-worker"
#endif
#ifndef CF_HELPER_INSTALLED
#define CF_HELPER_INSTALLED "/usr/local/libexec/cfutures-worker"
#endif
#define HELPER_NAME "cfutures-worker"
#define HELPER_ENV "CFUTURES_WORKER_HELPER"

static int add_arg(cf__start_plan *plan, const char *arg)
{
    if (plan->nprefix >= CF__START_PREFIX_MAX)
        return CF_EINVAL;
    char *copy = cf__strdup(arg);
    if (!copy)
        return CF_ENOMEM;
    plan->prefix[plan->nprefix++] = copy;
    return 0;
}

void cf__start_plan_free(cf__start_plan *plan)
{
    for (size_t i = 0; i < plan->nprefix; i++)
        cf__free(plan->prefix[i]);
    cf__free(plan->path);
    cf__free(plan->library);
    *plan = (cf__start_plan){ 0 };
}

/* The main program was started by naming the dynamic loader
 * (`ld.so ./app`): the kernel then ran the loader itself. */
static bool started_through_loader(void)
{
    if (getauxval(AT_BASE) != 0)
        return false;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
    size_t n = getauxval(AT_PHNUM);
    for (size_t i = 0; ph && i < n; i++)
        if (ph[i].p_type == PT_INTERP)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Whether a re-run program would load libcfutures before main               */
/* ------------------------------------------------------------------------ */

#define MAX_OBJECTS 512

/* A loaded object: its load base, file name, DT_SONAME and DT_NEEDED names
 * (pointers into its string table), and whether the program's start loads
 * it (the main program, what it needs, and so on). */
typedef struct loaded {
    uintptr_t base;
    const char *path, *soname, *strtab;
    const ElfW(Dyn) * dyn;
    bool at_start;
} loaded;

typedef struct objects {
    loaded obj[MAX_OBJECTS];
    size_t n;
    bool overflow;
} objects;

/* A d_ptr of the dynamic section: glibc relocates them in place where the
 * section is writable (x86-64), not where it is not. */
static const char *dyn_ptr(uintptr_t base, ElfW(Addr) p)
{
    return (const char *)(p < base ? base + p : p);
}

static int collect(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    objects *o = data;
    if (o->n == MAX_OBJECTS) {
        o->overflow = true;
        return 1;
    }
    loaded *l = &o->obj[o->n++];
    *l = (loaded){ .base = info->dlpi_addr, .path = info->dlpi_name, .at_start = o->n == 1 };
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            l->dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    for (const ElfW(Dyn) *d = l->dyn; d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_STRTAB)
            l->strtab = dyn_ptr(l->base, d->d_un.d_ptr);
    for (const ElfW(Dyn) *d = l->dyn; l->strtab && d && d->d_tag != DT_NULL; d++)
        if (d->d_tag == DT_SONAME)
            l->soname = l->strtab + d->d_un.d_val;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "";
}

/* Mark what the objects loaded at start need: true if any got marked. */
static bool mark_needed(objects *o)
{
    bool more = false;
    for (size_t i = 0; i < o->n; i++) {
        const loaded *l = &o->obj[i];
        for (const ElfW(Dyn) *d = l->dyn; l->at_start && l->strtab && d && d->d_tag != DT_NULL;
             d++) {
            if (d->d_tag != DT_NEEDED)
                continue;
            const char *name = l->strtab + d->d_un.d_val;
            for (size_t j = 0; j < o->n; j++) {
                loaded *m = &o->obj[j];
                if (!m->at_start && ((m->soname && strcmp(m->soname, name) == 0) ||
                                     strcmp(base_name(m->path), name) == 0))
                    more = m->at_start = true;
            }
        }
    }
    return more;
}

/* Whether starting this program again loads libcfutures before main: it is
 * in what the program needs (DT_NEEDED, transitively) or in LD_PRELOAD;
 * not when a plugin brought it in through dlopen(). In doubt, yes. */
static bool loaded_at_start(void)
{
    Dl_info self;
    if (!dladdr((void *)(uintptr_t)cf__start_plan_make, &self))
        return true;
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, base_name(self.dli_fname)))
        return true;
    objects *o = cf__calloc(1, sizeof *o);
    if (!o)
        return true;
    dl_iterate_phdr(collect, o);
    while (mark_needed(o))
        ;
    bool found = o->overflow;
    for (size_t i = 0; i < o->n; i++)
        if (o->obj[i].base == (uintptr_t)self.dli_fbase && o->obj[i].at_start)
            found = true;
    cf__free(o);
    return found;
}

/* Re-run this program: its file, if still there, else /proc/self/exe
 * (which still names the running image when the file was deleted or
 * replaced; valgrind cannot run a program through it, hence the file
 * first). */
static int plan_exec(cf__start_plan *plan)
{
    cf__object_file main_file;
    if (cf__object_file_of(getauxval(AT_PHDR), &main_file) != 0) {
        cf__set_last_error_msg(CF_ESYSTEM, "cannot find the program's file in /proc/self/maps: %s",
                               strerror(errno));
        return CF_ESYSTEM;
    }
    bool current = cf__object_file_current(&main_file);
    plan->flag = cf__worker_entry_interposed() ? CF__WORKER_FLAG : CF__WORKER_FLAG_EARLY;
    if (!cf__worker_entry_interposed() && !loaded_at_start()) {
        cf__set_last_error_msg(CF_ENOTSUP,
                               "the exec start method re-runs the program %s, which does not "
                               "load libcfutures before main (a plugin loaded it with dlopen()): "
                               "use CF_START_HELPER, or CF_START_AUTO, which picks it",
                               main_file.path);
        return CF_ENOTSUP;
    }
    if (started_through_loader()) {
        /* Run the loader again, naming the program. */
        if (!current) {
            cf__set_last_error_msg(CF_ENOTSUP,
                                   "the program %s was deleted or replaced since it started, "
                                   "and it was started through the dynamic loader: it cannot "
                                   "be started again",
                                   main_file.path);
            return CF_ENOTSUP;
        }
        char loader[PATH_MAX];
        size_t size = sizeof loader;
        if (uv_exepath(loader, &size) != 0) {
            cf__set_last_error_msg(CF_ESYSTEM, "cannot read /proc/self/exe");
            return CF_ESYSTEM;
        }
        if (!(plan->path = cf__strdup(loader)) || add_arg(plan, loader) != 0 ||
            add_arg(plan, main_file.path) != 0)
            return CF_ENOMEM;
        return 0;
    }
    const char *path = current ? main_file.path : "/proc/self/exe";
    if (!(plan->path = cf__strdup(path)) || add_arg(plan, main_file.path) != 0)
        return CF_ENOMEM;
    return 0;
}

/* dir/name into out: false when it does not fit. */
static bool join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap;
}

/* The helper: $CFUTURES_WORKER_HELPER, else beside libcfutures (a build
 * tree), else where it is installed relative to libcfutures, else where it
 * was to be installed. */
static int find_helper(const char *library, char *out, size_t cap)
{
    const char *env = getenv(HELPER_ENV);
    if (env && *env) {
        if (access(env, X_OK) == 0 && strlen(env) < cap) {
            strcpy(out, env);
            return 0;
        }
        cf__set_last_error_msg(CF_ENOTSUP, "%s=%s is not an executable file", HELPER_ENV, env);
        return CF_ENOTSUP;
    }
    char dir[CF__OBJECT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", library);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    char beside[CF__OBJECT_PATH_MAX], relative[CF__OBJECT_PATH_MAX];
    bool ok = join(beside, sizeof beside, dir, HELPER_NAME) &&
              join(relative, sizeof relative, dir, CF_HELPER_RELATIVE);
    const char *candidates[] = { beside, relative, CF_HELPER_INSTALLED };
    for (size_t i = 0; ok && i < 3; i++) {
        if (access(candidates[i], X_OK) == 0 && strlen(candidates[i]) < cap) {
            strcpy(out, candidates[i]);
            return 0;
        }
    }
    cf__set_last_error_msg(CF_ENOTSUP,
                           "libcfutures was loaded with dlopen(), so its workers start from "
                           "the %s helper, which is not installed (looked for %s, %s and %s; "
                           "set %s to its path)",
                           HELPER_NAME, beside, relative, CF_HELPER_INSTALLED, HELPER_ENV);
    return CF_ENOTSUP;
}

static int plan_helper(cf__start_plan *plan)
{
    cf__object_file lib;
    if (cf__object_file_of((uintptr_t)&cf_submit, &lib) != 0) {
        cf__set_last_error_msg(CF_ESYSTEM, "cannot find libcfutures' file in /proc/self/maps: %s",
                               strerror(errno));
        return CF_ESYSTEM;
    }
    if (!cf__object_file_current(&lib)) {
        cf__set_last_error_msg(CF_ENOTSUP,
                               "libcfutures (%s) was deleted or replaced since it was loaded: "
                               "its helper workers could not load it",
                               lib.path);
        return CF_ENOTSUP;
    }
    char helper[CF__OBJECT_PATH_MAX];
    int rc = find_helper(lib.path, helper, sizeof helper);
    if (rc != 0)
        return rc;
    plan->flag = CF__WORKER_FLAG;
    if (!(plan->path = cf__strdup(helper)) || !(plan->library = cf__strdup(lib.path)) ||
        add_arg(plan, helper) != 0)
        return CF_ENOMEM;
    return 0;
}

int cf__start_plan_make(cf_start_method method, cf__start_plan *plan)
{
    *plan = (cf__start_plan){ 0 };
    if (method == CF_START_AUTO)
        method = cf__worker_entry_interposed() ? CF_START_EXEC : CF_START_HELPER;
    plan->method = method;
    int rc;
    switch (method) {
    case CF_START_EXEC:
        rc = plan_exec(plan);
        break;
    case CF_START_HELPER:
        rc = plan_helper(plan);
        break;
    case CF_START_FORK:
        return 0;
    default:
        cf__set_last_error_msg(CF_EINVAL, "unknown start method %d", (int)method);
        return CF_EINVAL;
    }
    if (rc == CF_ENOMEM)
        cf__set_last_error(CF_ENOMEM);
    if (rc != 0)
        cf__start_plan_free(plan);
    return rc;
}

size_t cf__start_argv(const cf__start_plan *plan, char *marker, char **argv, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->nprefix && n + 1 < cap; i++)
        argv[n++] = plan->prefix[i];
    if (n + 4 > cap)
        return 0;
    argv[n++] = (char *)plan->flag;
    argv[n++] = marker;
    if (plan->library)
        argv[n++] = plan->library;
    argv[n] = NULL;
    return n;
}
