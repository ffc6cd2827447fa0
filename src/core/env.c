/* env - see env.h. */
#include "core/env.h"

#include <errno.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/banned.h"

int64_t env_int(const char *name, int64_t dflt, int64_t min, int64_t max)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || errno || n < min || n > max) {
        log_warn("ignoring invalid setting",
                 "name=%s value=\"%.40s\" allowed=%lld..%lld default=%lld", name, v,
                 (long long)min, (long long)max, (long long)dflt);
        return dflt;
    }
    return n;
}
