/*
 * crypto - hashing and randomness (OpenSSL's libcrypto and getrandom(2)).
 *
 * API keys are stored as SHA-256 hex digests; ids and keys take their random
 * bits from the kernel. Thread-safe.
 */
#ifndef REFOLD_CRYPTO_H
#define REFOLD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

/* Lower-case hex SHA-256 of data into out (65 bytes). */
void crypto_sha256_hex(const void *data, size_t len, char *out);
/* n random bytes from the kernel; aborts if the kernel cannot provide them. */
void crypto_random(void *out, size_t n);
/* A random integer in [0, n). */
uint64_t crypto_random_below(uint64_t n);
/* A random double in [0, 1). */
double crypto_random_unit(void);

#endif
