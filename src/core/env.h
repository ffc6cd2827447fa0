/*
 * env - whole-number settings from the environment, read the same way everywhere:
 * unset or empty gives the default; a malformed or out-of-range value also gives the
 * default and logs `msg="ignoring invalid setting" name=… value=… allowed=…`, so a
 * typo never silently means 0 or "no limit". Thread-safe (reads only).
 */
#ifndef REFOLD_ENV_H
#define REFOLD_ENV_H

#include <stdint.h>

int64_t env_int(const char *name, int64_t dflt, int64_t min, int64_t max);

#endif
