/* Process pool backend: a stub until the process-pool work lands. */
#include "internal.h"

cf_executor *cf_process_pool_new(const cf_process_pool_opts *opts)
{
    (void)opts;
    return cf__fail(CF_ENOTSUP);
}
