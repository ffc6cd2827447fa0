/*
 * banned.h - functions refold never calls (git's banned.h, for the same reasons).
 *
 * strcpy/strcat/sprintf/vsprintf overflow silently, strtok keeps hidden state,
 * gmtime/localtime return shared static storage, atoi cannot report errors.
 * Use snprintf, buf_*, strtok_r, gmtime_r, strtol/strtoll instead.
 * Included last by every .c file of the project (after system headers).
 */
#ifndef REFOLD_BANNED_H
#define REFOLD_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gmtime
#define gmtime(x) BANNED(gmtime)
#undef localtime
#define localtime(x) BANNED(localtime)
#undef atoi
#define atoi(x) BANNED(atoi)

#endif
