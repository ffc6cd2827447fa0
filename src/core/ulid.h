/*
 * ulid - time-ordered identifiers: a type prefix and a 26-character ULID.
 *
 * 48 bits of milliseconds then 80 random bits, Crockford base32. Within one
 * process ids are strictly increasing: a second id in the same millisecond
 * increments the previous random part (the ULID spec's monotonic mode), so
 * sorting ids sorts by creation. Thread-safe (one mutex around the last id).
 */
#ifndef REFOLD_ULID_H
#define REFOLD_ULID_H

#include <stdbool.h>
#include <stdint.h>

#define ULID_LEN 26
/* Longest prefix is "agent_" (6) + 26 + NUL. */
#define ID_MAX 40

/* Write a new ULID (26 chars + NUL) into out. */
void ulid_new(char *out);
/* Write prefix + new ULID into out (ID_MAX bytes), e.g. id_new("agent_", buf). */
void id_new(const char *prefix, char *out);
/* True when s is prefix followed by a well-formed ULID. */
bool id_valid(const char *prefix, const char *s);
/* The millisecond timestamp encoded in a ULID string (no prefix). */
int64_t ulid_time_ms(const char *ulid);

#endif
