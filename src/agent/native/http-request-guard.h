/*
 * The keep-alive Host guard of the agent's direct route, in C because it runs on the relay
 * thread (relay.c), on every byte a plain HTTP/1 client sends: each request's head must name
 * the host the connection was allowed for (Host header and absolute-form target alike), bodies
 * are skipped by their framing (Content-Length or chunked), anything it cannot read with
 * certainty cuts the connection. After a CONNECT or Upgrade request the connection is another
 * protocol and is no longer read.
 */
#ifndef EGRESSD_HTTP_REQUEST_GUARD_H
#define EGRESSD_HTTP_REQUEST_GUARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_guard http_guard;

/*
 * host: the connection's host as the agent normalized it (lower case, no trailing dot), or NULL
 * when the first request named none (HTTP/1.0); alias: the name as the first request gave it,
 * when normalizing did more than case and a trailing dot (or NULL). Returns NULL when out of memory.
 */
http_guard *http_guard_new(const char *host, size_t host_len, const char *alias, size_t alias_len);

/* Reads the next bytes the client sends: NULL lets them through, else why the stream must be cut (owned by the guard). */
const char *http_guard_feed(http_guard *guard, const uint8_t *data, size_t len);

void http_guard_free(http_guard *guard);

#endif
