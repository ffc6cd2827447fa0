/*
 * session - the web UI's cookie sign-in (SPEC §4.1): POST /v1/session with an
 * API key sets an HttpOnly, SameSite=Strict cookie holding a random session
 * token (stored hashed, never the key itself); cookie-authenticated requests
 * other than GET must carry X-Requested-With: refold.
 */
#ifndef REFOLD_HTTP_SESSION_H
#define REFOLD_HTTP_SESSION_H

#define SESSION_COOKIE "refold_session"
#define SESSION_TTL_MS (7LL * 24 * 3600 * 1000)

#endif
