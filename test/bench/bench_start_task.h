/* cf-bench --startup's task (libcfbench-start-task.so).
 * SPDX-License-Identifier: MIT */
#ifndef CF_BENCH_START_TASK_H
#define CF_BENCH_START_TASK_H

__attribute__((visibility("default"))) void *bench_start_echo(void *arg);

#endif
