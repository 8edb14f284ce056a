/* cf-bench --startup's task, in a shared library of its own: a process pool
 * whose workers start from the cfutures-worker helper (CF_START_HELPER)
 * runs only functions of shared libraries, which it loads by path.
 * SPDX-License-Identifier: MIT */
#include "bench_start_task.h"

void *bench_start_echo(void *arg)
{
    return arg;
}
