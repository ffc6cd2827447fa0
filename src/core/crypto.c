/*
 * crypto - see crypto.h.
 */
#include "core/crypto.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "core/banned.h"

/* OpenSSL 3 looks the algorithm up on every EVP_Digest call given EVP_sha256(); fetch it
 * once (every API request hashes its key). */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256)
        abort();
}

void crypto_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    pthread_once(&sha256_once, fetch_sha256);
    if (!EVP_Digest(data, len, md, &n, sha256, NULL))
        abort();
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

void crypto_random(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "level=fatal msg=\"getrandom failed\"\n");
            abort();
        }
        p += got;
        n -= (size_t)got;
    }
}

uint64_t crypto_random_below(uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do {
        crypto_random(&v, sizeof v);
    } while (v >= limit);
    return v % n;
}

double crypto_random_unit(void)
{
    uint64_t v;
    crypto_random(&v, sizeof v);
    return (double)(v >> 11) / 9007199254740992.0;
}
