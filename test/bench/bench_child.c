/* cf-bench: figures from other programs (pybench.py, the libuv child): run
 * the program, pass its `#` lines through and report its
 * `system workload value unit` lines as our own.
 * SPDX-License-Identifier: MIT */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef CF_BENCH_PYBENCH
#define CF_BENCH_PYBENCH "pybench.py"
#endif

/* environ with `assign` ("NAME=value") added or replacing NAME. */
static char **environment_with(const char *assign)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (!env)
        return NULL;
    size_t name_len = assign ? strcspn(assign, "=") + 1 : 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!assign || strncmp(environ[i], assign, name_len) != 0)
            env[k++] = environ[i];
    if (assign)
        env[k++] = (char *)assign;
    env[k] = NULL;
    return env;
}

static void handle_line(char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0')
        return;
    if (line[0] == '#') {
        printf("%s\n", line);
        fflush(stdout);
        return;
    }
    char system[32], workload[48], unit[16];
    double value;
    if (sscanf(line, "%31s %47s %lf %15s", system, workload, &value, unit) == 4)
        bench_report(system, workload, value, unit);
    else
        bench_note("unparsed: %s", line);
}

int bench_run_child(char *const argv[], const char *env_assign)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    char **env = environment_with(env_assign);
    pid_t pid;
    int rc = env ? posix_spawnp(&pid, argv[0], &actions, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return -1;
    }
    FILE *in = fdopen(fds[0], "r");
    if (!in) {
        close(fds[0]);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        return -1;
    }
    char line[512];
    while (fgets(line, sizeof line, in))
        handle_line(line);
    fclose(in);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool bench_python_run(const bench_params *p, bool memory, int workload, const char *pool)
{
    char repeat[16];
    snprintf(repeat, sizeof repeat, "%d", p->repeat);
    char *argv[12];
    int k = 0;
    argv[k++] = "python3";
    argv[k++] = CF_BENCH_PYBENCH;
    argv[k++] = "--repeat";
    argv[k++] = repeat;
    argv[k++] = memory ? "--memory" : "--workloads";
    if (p->quick)
        argv[k++] = "--quick";
    if (!memory && workload >= 0) {
        argv[k++] = "--workload";
        argv[k++] = (char *)bench_workload_name((bench_workload)workload);
    }
    if (!memory && pool) {
        argv[k++] = "--system";
        argv[k++] = (char *)pool;
    }
    argv[k] = NULL;
    int status = bench_run_child(argv, NULL);
    if (status < 0) {
        bench_note("python: python3 not found (%s): Python figures skipped", strerror(errno));
        return false;
    }
    if (status != 0) {
        bench_note("python: %s exited with status %d", CF_BENCH_PYBENCH, status);
        return false;
    }
    return true;
}
