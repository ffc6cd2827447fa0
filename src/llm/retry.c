/*
 * retry - see retry.h. Mirrors APIClient.shouldRetry / retryRequest /
 * calculateDefaultRetryTimeoutMillis of the SDKs (tests/node_modules has them).
 */
#include "llm/retry.h"

#include <ctype.h>
#include <stdio.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/banned.h"

int64_t retry_backoff_scaled_ms(int n, double unit, int64_t base_ms, int64_t cap_ms)
{
    if (n < 0)
        n = 0;
    if (unit < 0)
        unit = 0;
    if (unit >= 1)
        unit = 0.999999;
    /* Doubling stops once past the cap, so large n cannot overflow. */
    int64_t wait = base_ms;
    for (int i = 0; i < n && wait < cap_ms; i++)
        wait *= 2;
    if (wait > cap_ms)
        wait = cap_ms;
    return (int64_t)llround((double)wait * (1.0 - 0.25 * unit));
}

int64_t retry_backoff_ms(int n, double unit)
{
    return retry_backoff_scaled_ms(n, unit, RETRY_BASE_MS, RETRY_CAP_MS);
}

bool retry_status_retryable(long status)
{
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

enum rf_status retry_status_class(long status)
{
    return retry_status_retryable(status) ? RF_TRANSIENT : RF_PERMANENT;
}

int retry_should_retry_header(const char *value)
{
    if (!value)
        return -1;
    if (strcmp(value, "true") == 0)
        return 1;
    if (strcmp(value, "false") == 0)
        return 0;
    return -1;
}

bool retry_http_retryable(long status, const char *x_should_retry)
{
    int h = retry_should_retry_header(x_should_retry);
    if (h >= 0)
        return h == 1;
    return retry_status_retryable(status);
}

/* A decimal number (parseFloat-like but strict: the whole string must be one). */
static bool parse_number(const char *s, double *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s || !(isdigit((unsigned char)*s) || *s == '.' || *s == '-' || *s == '+'))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno == ERANGE || !isfinite(v))
        return false;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end)
        return false;
    *out = v;
    return true;
}

static int month_index(const char *m)
{
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

bool retry_parse_http_date(const char *s, int64_t *ms)
{
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
    char wday[4], mon[4], zone[4];
    int day, year, hh, mm, ss, used = 0;
    if (sscanf(s, " %3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wday, &day, mon, &year,
               &hh, &mm, &ss, zone, &used) != 8)
        return false;
    if (s[used] != '\0' || strcmp(zone, "GMT") != 0)
        return false;
    int m = month_index(mon);
    if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = m,
                    .tm_mday = day,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = (int64_t)t * 1000;
    return true;
}

int64_t retry_after_ms(const char *retry_after_ms_header, const char *retry_after_header,
                       int64_t now_ms)
{
    double v;
    if (retry_after_ms_header && parse_number(retry_after_ms_header, &v) && v < 1e15 && v > -1e15)
        return (int64_t)llround(v);
    if (retry_after_header) {
        if (parse_number(retry_after_header, &v) && v < 1e12 && v > -1e12)
            return (int64_t)llround(v * 1000.0);
        int64_t at;
        if (retry_parse_http_date(retry_after_header, &at))
            return at - now_ms;
    }
    return -1;
}
