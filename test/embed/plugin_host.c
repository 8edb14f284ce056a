/* A host that knows nothing of cfutures: its main prints a line, then
 * loads a plugin that uses a process pool. With arguments it is wrong: a
 * worker that re-ran this main would say so and fail.
 *   plugin_host PLUGIN [START_METHOD]
 * SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: plugin_host PLUGIN [START_METHOD]\n");
        return 2;
    }
    printf("host: main ran\n");
    fflush(stdout);
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!plugin) {
        fprintf(stderr, "host: %s\n", dlerror());
        return 3;
    }
    int (*run)(int) = (int (*)(int))(uintptr_t)dlsym(plugin, "plugin_run");
    if (!run) {
        fprintf(stderr, "host: no plugin_run\n");
        return 4;
    }
    int rc = run(argc == 3 ? atoi(argv[2]) : 0);
    printf("host: plugin returned %d\n", rc);
    return rc;
}
