/* Process pool: task functions that live in shared libraries.
 * - a library the program links: an exported and a static function;
 * - a module the program dlopen()s: the worker opens it too;
 * - a module file replaced by another build after the parent loaded it: the
 *   worker refuses the function (CF_ETASK, code CF_EINVAL), and the pool goes on.
 * argv[1], argv[2]: the same module source built as two variants (two
 * build-ids). */
#include "test_process_util.h"

#include <cfutures.h>
#include <dlfcn.h>

typedef void *(*task_fn)(void *);
void *dso_square(void *arg);
task_fn dso_static_task(void);

static const char *module_a, *module_b;

/* dlsym gives an object pointer; POSIX guarantees it converts to a function
 * pointer, ISO C does not, so copy the bits. */
static cf_fn task_symbol(void *handle, const char *name)
{
    void *sym = dlsym(handle, name);
    CHECK(sym);
    cf_fn fn;
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

static void *task_pid(void *arg)
{
    (void)arg;
    return V(getpid());
}

static intptr_t run(cf_executor *ex, cf_fn fn, intptr_t arg)
{
    cf_future *f = cf_submit(ex, fn, V(arg));
    intptr_t v = result_of(f);
    cf_future_unref(f);
    return v;
}

static void test_linked_library(void)
{
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex);
    CHECK(run(ex, task_pid, 0) != getpid()); /* tasks run in a worker process */
    CHECK_EQ(run(ex, dso_square, 12), 144);
    CHECK_EQ(run(ex, (cf_fn)dso_static_task(), 5), 12); /* a static function of the library */

    void *args[] = { V(1), V(2), V(3), V(4), V(5) };
    cf_map_iter *it = cf_map(ex, dso_square, args, 5, &(cf_map_opts){ .chunksize = 2 });
    CHECK(it);
    void *v;
    for (intptr_t i = 1; i <= 5; i++) {
        CHECK_EQ(cf_map_next(it, &v), 1);
        CHECK_EQ(I(v), i * i);
    }
    CHECK_EQ(cf_map_next(it, &v), 0);
    cf_map_free(it);
    cf_executor_free(ex);
}

static void test_dlopened_module(void)
{
    void *handle = dlopen(module_a, RTLD_NOW | RTLD_LOCAL);
    CHECK(handle);
    cf_fn mod_task = task_symbol(handle, "mod_task");
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex);
    CHECK_EQ(run(ex, mod_task, 5), 1005); /* variant 1 */
    cf_executor_free(ex);
    dlclose(handle);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    CHECK(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(fwrite(buf, 1, n, out) == n);
    CHECK(fclose(in) == 0 && fclose(out) == 0);
}

static void test_other_build_refused(void)
{
    char dir[] = "/tmp/cf-dso-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[64], next[64];
    snprintf(path, sizeof path, "%s/module.so", dir);
    snprintf(next, sizeof next, "%s/module.so.new", dir);

    copy_file(module_a, path);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(handle);
    cf_fn mod_task = task_symbol(handle, "mod_task");
    /* Replace the file with another build; the parent keeps its mapping of
     * the old one. Workers start lazily, so the worker below opens the new
     * file: same path, different build-id. */
    copy_file(module_b, next);
    CHECK(rename(next, path) == 0);

    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex);
    cf_future *f = cf_submit(ex, mod_task, V(5));
    CHECK(f);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    CHECK(exc);
    CHECK_EQ(exc->code, CF_EINVAL);
    CHECK(strstr(exc->message, "another build"));
    CHECK_EQ(exc->signal, 0);
    cf_future_unref(f);
    CHECK_EQ(run(ex, dso_square, 9), 81); /* the pool goes on */
    cf_executor_free(ex);

    dlclose(handle);
    CHECK(unlink(path) == 0 && rmdir(dir) == 0);
}

/* A plugin loaded by a relative name, then the program changes directory:
 * the worker still finds the file (references carry its absolute path). */
static void test_relative_path_then_chdir(void)
{
    char dir[4096], name[4096], cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd));
    snprintf(dir, sizeof dir, "%s", module_a);
    char *slash = strrchr(dir, '/');
    CHECK(slash);
    *slash = '\0';
    snprintf(name, sizeof name, "./%s", slash + 1);
    CHECK_EQ(chdir(dir), 0);
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    CHECK(handle);
    CHECK_EQ(chdir("/"), 0);
    cf_fn mod_task = task_symbol(handle, "mod_task");
    for (int m = 0; m < 2; m++) {
        cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){
            .max_workers = 1, .start_method = m ? CF_START_HELPER : CF_START_AUTO });
        CHECK(ex);
        CHECK_EQ(run(ex, mod_task, 6), 1006);
        cf_executor_free(ex);
    }
    CHECK_EQ(chdir(cwd), 0);
    dlclose(handle);
}

/* The worker cannot load the library (its file is gone): the task's
 * exception gives the dynamic loader's reason. */
static void test_unloadable_module_says_why(void)
{
    char dir[] = "/tmp/cf-dso-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/gone.so", dir);
    copy_file(module_a, path);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(handle);
    cf_fn mod_task = task_symbol(handle, "mod_task");
    CHECK(unlink(path) == 0 && rmdir(dir) == 0);
    cf_executor *ex = cf_process_pool_new(&(cf_process_pool_opts){ .max_workers = 1 });
    CHECK(ex);
    cf_future *f = cf_submit(ex, mod_task, V(1));
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    fprintf(stderr, "   %s\n", exc->message);
    CHECK(strstr(exc->message, "cannot load it:") != NULL);
    CHECK(strstr(exc->message, path) != NULL);
    CHECK(strstr(exc->message, "No such file") != NULL); /* dlerror's words */
    cf_future_unref(f);
    cf_executor_free(ex);
    dlclose(handle);
}

/* The helper start method: functions of the program's libraries run; one of
 * the main program cannot, and its task says why and what to do. */
static void test_helper_method(void)
{
    cf_executor *ex = cf_process_pool_new(
        &(cf_process_pool_opts){ .max_workers = 1, .start_method = CF_START_HELPER });
    CHECK(ex);
    CHECK_EQ(run(ex, dso_square, 12), 144);
    CHECK_EQ(run(ex, (cf_fn)dso_static_task(), 5), 12);
    cf_future *f = cf_submit(ex, task_pid, NULL);
    CHECK_EQ(cf_future_result(f, CF_FOREVER, NULL), CF_ETASK);
    const cf_exception *exc = NULL;
    CHECK_EQ(cf_future_exception(f, 0, &exc), 0);
    fprintf(stderr, "   %s\n", exc->message);
    CHECK(strstr(exc->message, "main program") != NULL);
    CHECK(strstr(exc->message, "fork start method") != NULL);
    cf_future_unref(f);
    cf_executor_free(ex);
}

int main(int argc, char **argv)
{
    CHECK(argc == 3);
    module_a = argv[1];
    module_b = argv[2];
    make_pipes();
    RUN(test_linked_library);
    RUN(test_dlopened_module);
    RUN(test_other_build_refused);
    RUN(test_relative_path_then_chdir);
    RUN(test_unloadable_module_says_why);
    RUN(test_helper_method);
    return 0;
}
