/* A program whose standard descriptors are closed (a daemon): pools work,
 * a crashed worker costs one task, nothing aborts, and 0-2 are still closed
 * afterwards (the library did not take them). The test re-runs itself with
 * stdin closed, then with 0, 1 and 2 closed; the child reports through a
 * file, its stdout and stderr being gone.
 * SPDX-License-Identifier: MIT */
#include <cfutures.h>

#include "check.h"
#include "test_process_util.h"

#include <sys/wait.h>

static void *square(void *arg)
{
    printf("square(%ld)\n", (long)I(arg)); /* goes nowhere when 1 is closed */
    return V(I(arg) * I(arg));
}

static void *die(void *arg)
{
    (void)arg;
    kill(getpid(), SIGKILL);
    return NULL;
}

/* The child's checks: 0 when all hold, else the number of the one that did not. */
static int child_checks(void)
{
    bool closed[3];
    for (int fd = 0; fd < 3; fd++)
        closed[fd] = fcntl(fd, F_GETFD) < 0;
    cf_executor *pools[2] = {
        cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 2 }),
        cf_thread_pool_new(NULL),
    };
    for (int k = 0; k < 2; k++) {
        cf_executor *ex = pools[k];
        if (!ex)
            return 10 + k;
        cf_future *fs[20];
        for (int i = 0; i < 20; i++)
            fs[i] = cf_submit(ex, square, V(i));
        cf_future *dead = k == 0 ? cf_submit(ex, die, NULL) : NULL;
        for (int i = 0; i < 20; i++) {
            void *v = NULL;
            if (!fs[i] || cf_future_result(fs[i], 60, &v) != 0 || I(v) != i * i)
                return 20 + k;
            cf_future_unref(fs[i]);
        }
        if (k == 0) {
            const cf_exception *exc = NULL;
            if (cf_future_result(dead, 60, NULL) != CF_EBROKEN ||
                cf_future_exception(dead, 0, &exc) != 0 || !exc || exc->signal != SIGKILL)
                return 30;
            cf_future_unref(dead);
        }
        cf_executor_free(ex);
    }
    for (int fd = 0; fd < 3; fd++)
        if (closed[fd] && fcntl(fd, F_GETFD) >= 0)
            return 40 + fd; /* the library left something on a standard descriptor */
    return 0;
}

static void run_child(const char *self, int nclosed)
{
    char report[] = "/tmp/cftest-stdio-XXXXXX";
    int rfd = mkstemp(report);
    CHECK(rfd >= 0);
    close(rfd);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int fd = 0; fd < nclosed; fd++)
            close(fd);
        execl(self, self, "--child", report, (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    FILE *f = fopen(report, "r");
    CHECK(f != NULL);
    int rc = -1;
    CHECK(fscanf(f, "%d", &rc) == 1);
    fclose(f);
    unlink(report);
    fprintf(stderr, "   %d closed: child checks returned %d\n", nclosed, rc);
    CHECK_EQ(rc, 0);
    CHECK_EQ(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        let_workers_crash();
        int rc = child_checks();
        FILE *f = fopen(argv[2], "w");
        if (!f)
            return 2;
        fprintf(f, "%d\n", rc);
        fclose(f);
        return rc == 0 ? 0 : 1;
    }
    fprintf(stderr, "-- stdin closed\n");
    run_child(argv[0], 1);
    fprintf(stderr, "-- stdin, stdout and stderr closed\n");
    run_child(argv[0], 3);
    return 0;
}
