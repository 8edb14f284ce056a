/* cfutures-worker: the helper program a process pool starts its workers
 * from when libcfutures came into the program through dlopen() (a plugin, a
 * Python extension), so that re-running the program itself would run its
 * main again, or read its stdin as a script.
 *
 *   cfutures-worker --cfutures-worker <fd>:<parent pid> <path of libcfutures>
 *
 * It loads that very libcfutures (the one the parent runs: the libraries
 * holding the task functions, loaded later by path, must find the same one)
 * and hands over to it. It links nothing of cfutures itself. When the
 * library cannot be loaded it tells the parent why, in the INIT_FAIL frame
 * the parent expects from a worker that cannot start (see lib/wire.h).
 * SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_INIT_FAIL = 17, CODE_ENOTSUP = -10, EXIT_SETUP = 114 };

/* {u32 length, u8 type, u64 id = 0, i32 code, u32 text length, text}. */
static void tell_parent(const char *marker, const char *what, const char *detail)
{
    char text[1024];
    int n = snprintf(text, sizeof text, "cfutures-worker: %s: %s", what, detail);
    if (n < 0)
        return;
    uint32_t len = (uint32_t)(n < (int)sizeof text ? n : (int)sizeof text - 1);
    unsigned char frame[13 + 8 + sizeof text];
    uint32_t total = 9 + 4 + 4 + len;
    uint8_t type = MSG_INIT_FAIL;
    uint64_t id = 0;
    int32_t code = CODE_ENOTSUP;
    memcpy(frame, &total, 4);
    memcpy(frame + 4, &type, 1);
    memcpy(frame + 5, &id, 8);
    memcpy(frame + 13, &code, 4);
    memcpy(frame + 17, &len, 4);
    memcpy(frame + 21, text, len);
    int fd = atoi(marker);
    if (fd > 2)
        (void)!write(fd, frame, 4 + total);
}

int main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "--cfutures-worker") != 0) {
        fprintf(stderr, "cfutures-worker: started by libcfutures' process pools, not by hand\n");
        return 2;
    }
    void *lib = dlopen(argv[3], RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        const char *err = dlerror();
        tell_parent(argv[2], "cannot load libcfutures", err ? err : argv[3]);
        return EXIT_SETUP;
    }
    int (*worker_main)(int, char **) =
        (int (*)(int, char **))(uintptr_t)dlsym(lib, "cf__worker_main");
    if (!worker_main) {
        tell_parent(argv[2], "no worker entry in", argv[3]);
        return EXIT_SETUP;
    }
    return worker_main(argc, argv); /* returns only when argv is not a worker's */
}
