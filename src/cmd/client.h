/*
 * client - the CLI's HTTP client for refold's own API (libcurl), shared by every command
 * that talks to a running server (jobs, job, cancel, retry, improve ...).
 *
 * The base URL and the API key come from struct config (REFOLD_URL / REFOLD_API_KEY, else
 * the config file `refold init` wrote). Requests and responses are JSON; failures come
 * back as one-line messages in struct rf_err, ready for cmd_fail(): the server's own error
 * message and code for HTTP errors, "cannot reach refold at URL: is `refold serve`
 * running?" when nothing listens, and where the key is looked for when there is none.
 *
 * The server's error messages, and (unless c->raw) the strings of the answers and events
 * it parses, come back with their control characters made visible (term_visible): what
 * a client, a trace or an LLM reply put in them cannot drive the user's terminal.
 *
 * One struct client is one libcurl easy handle (connections are reused between calls)
 * for one thread.
 */
#ifndef REFOLD_CMD_CLIENT_H
#define REFOLD_CMD_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cmd/cmd.h"
#include "core/status.h"

struct client {
    char *base;          /* the server URL without a trailing slash */
    char *auth;          /* "Authorization: Bearer ..." */
    void *curl;          /* CURL * */
    long timeout_ms;     /* whole-request timeout of client_call (0: none) */
    bool answered;       /* the server has answered a request of this client (any status) */
    int sends;           /* times the last call's request went out: 2 when a kept-alive
                          * connection closed before any answer and libcurl sent it again */
    bool raw;            /* false (the default): every string of a parsed answer or event has
                          * its control characters made visible (term_visible), for output meant
                          * for people; true for --json output, which prints values as sent */
    char key_from[4200]; /* where the key came from, for a 401: "REFOLD_API_KEY" or the
                          * config file's path */
};

#define CLIENT_MAX_RESPONSE (64u * 1024 * 1024)
/* err->reason of an HTTP error answered without refold's {"error": {code, message}} body:
 * something other than refold answered (a wrong REFOLD_URL, a proxy). */
#define CLIENT_NOT_REFOLD "not_refold"
/* err->reason of refold's "no such endpoint" 404 when REFOLD_URL has a path (such as one
 * ending in /v1): the message then says that REFOLD_URL must have none, instead of
 * leaving it to read as a missing agent or job. */
#define CLIENT_NO_ROUTE "no_route"
/* The message part that says so, after ": " (import adds it to its own answers too). */
#define CLIENT_NO_PATH_HINT                                                                        \
    "REFOLD_URL (%s) must be the refold server's address without a path, e.g. "                    \
    "http://127.0.0.1:7878"

/* Caller-owned struct: set up from cfg. Fails (RF_INVALID, saying where the key is looked
 * for) when no API key is configured. Release with client_release. */
enum rf_status client_init(struct client *c, const struct config *cfg, struct rf_err *err);
void client_release(struct client *c);

/* method path (e.g. "/v1/jobs?status=failed"); body (may be NULL) is sent as JSON.
 * headers: NULL-terminated extra "Name: value" lines (may be NULL). On a 2xx status *out
 * (may be NULL) gets the parsed body (NULL when empty; caller owns) and *status (may be
 * NULL) the code; otherwise the server's error becomes err (404 -> RF_NOT_FOUND, ...; with
 * its details.field and details.reason, or CLIENT_NOT_REFOLD, or CLIENT_NO_ROUTE; a 401
 * says where the refused key came from). */
enum rf_status client_call(struct client *c, const char *method, const char *path,
                           const json_t *body, const char *const *headers, json_t **out,
                           long *status, struct rf_err *err);

/* Called with each piece of a streamed response body as it arrives; return false to stop
 * the transfer (client_stream then returns RF_OK). */
typedef bool (*client_chunk_fn)(void *ud, const char *data, size_t len);
/* Called about once a second while a stream's request runs (connecting, waiting, reading),
 * with the same ud. */
typedef void (*client_tick_fn)(void *ud);

/* A stream that sends nothing for this long is dead (a server frozen, a network gone
 * without a reset): refold's pings come every 15 s (REFOLD_SSE_PING_MS). */
#define CLIENT_STREAM_IDLE_S 45
/* err->reason of a stream cut off for that silence. */
#define CLIENT_STALLED "stalled"

/* GET path and hand the body to fn as it arrives, until the server ends it or fn stops
 * it; tick (may be NULL) hears of the time going by. *status gets the HTTP status; a
 * non-2xx status is an error like client_call's (its body is not passed to fn). No
 * overall timeout, but a stream silent for CLIENT_STREAM_IDLE_S is cut off: RF_UNAVAILABLE
 * with reason CLIENT_STALLED. */
enum rf_status client_stream(struct client *c, const char *path, const char *const *headers,
                             client_chunk_fn fn, client_tick_fn tick, void *ud, long *status,
                             struct rf_err *err);

/* A CURLOPT_PREREQFUNCTION that counts into the int at counter (CURLOPT_PREREQDATA) each
 * time a request is about to go out: more than once in one transfer when a kept-alive
 * connection closed before any answer and libcurl sent the request again by itself (the
 * server may have stored the first). */
int client_count_send(void *counter, char *primary_ip, char *local_ip, int primary_port,
                      int local_port);

/* Make the control characters of every string in v visible (term_visible), in place. */
void client_visible(json_t *v);

/* Percent-encode s for a query string into a new string (caller frees). */
char *client_escape(struct client *c, const char *s);

/* GET every page of the list at path (which may carry a query already), following
 * next_cursor; *data (caller owns) gets the concatenated `data` arrays. */
enum rf_status client_list_all(struct client *c, const char *path, json_t **data,
                               struct rf_err *err);

/* The Agent named by AGENT, a name or an agent id (*agent caller owns). A name resolves
 * to the agent's non-archived holder, else to the newest archived agent of that name;
 * an unknown one is RF_NOT_FOUND with a message saying so. */
enum rf_status client_agent(struct client *c, const char *name_or_id, json_t **agent,
                            struct rf_err *err);

#endif
