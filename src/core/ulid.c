/*
 * ulid - see ulid.h. State: the last (time, random) pair under a mutex.
 */
#include "core/ulid.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/crypto.h"
#include "core/banned.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t last_ms = -1;
static uint8_t last_rand[10]; /* guarded by lock */

static void encode(int64_t ms, const uint8_t rnd[10], char *out)
{
    uint8_t b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)ms >> (8 * (5 - i)));
    memcpy(b + 6, rnd, 10);
    /* 128 bits -> 26 base32 chars; the first char carries only 3 bits. */
    int bit = -2; /* 26*5 = 130 bits, 2 leading zero bits */
    for (int i = 0; i < ULID_LEN; i++) {
        int v = 0;
        for (int j = 0; j < 5; j++, bit++) {
            v <<= 1;
            if (bit >= 0)
                v |= (b[bit / 8] >> (7 - bit % 8)) & 1;
        }
        out[i] = crockford[v];
    }
    out[ULID_LEN] = '\0';
}

void ulid_new(char *out)
{
    int64_t now = clock_now_ms();
    uint8_t rnd[10];
    pthread_mutex_lock(&lock);
    if (now <= last_ms) {
        now = last_ms;
        /* Increment the 80-bit random part; overflow moves to the next ms. */
        int i = 9;
        while (i >= 0 && ++last_rand[i] == 0)
            i--;
        if (i < 0) {
            now = ++last_ms;
            crypto_random(last_rand, sizeof last_rand);
        }
    } else {
        crypto_random(last_rand, sizeof last_rand);
        last_rand[0] &= 0x7f; /* headroom so increments rarely overflow */
    }
    last_ms = now;
    memcpy(rnd, last_rand, sizeof rnd);
    pthread_mutex_unlock(&lock);
    encode(now, rnd, out);
}

void id_new(const char *prefix, char *out)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    ulid_new(out + n);
}

static int decode_char(char c)
{
    const char *p = strchr(crockford, c);
    return (c && p) ? (int)(p - crockford) : -1;
}

bool id_valid(const char *prefix, const char *s)
{
    size_t n = strlen(prefix);
    if (!s || strncmp(s, prefix, n) != 0 || strlen(s + n) != ULID_LEN)
        return false;
    if (decode_char(s[n]) > 7)
        return false;
    for (size_t i = n; i < n + ULID_LEN; i++)
        if (decode_char(s[i]) < 0)
            return false;
    return true;
}

int64_t ulid_time_ms(const char *ulid)
{
    int64_t ms = 0;
    for (int i = 0; i < 10; i++)
        ms = ms * 32 + decode_char(ulid[i]);
    return ms;
}
