/*
 * The keep-alive Host guard of the agent's direct route, in C because it runs on the relay
 * thread (relay.c), on every byte a plain HTTP/1 client sends: each request's head must name
 * the host the connection was allowed for (Host header and absolute-form target alike), bodies
 * are skipped by their framing (Content-Length or chunked), anything it cannot read with
 * certainty cuts the connection. A head is held back until it is complete and checked: a server
 * that ends lines with a bare LF, or answers HTTP/0.9, must never see a head the guard has not
 * read. After a CONNECT or Upgrade request the client's bytes wait for the destination's answer:
 * a 101 (a 2xx to CONNECT) makes the connection another protocol, no longer read; anything else
 * and they are read as requests again.
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

/*
 * What may go on to the destination after a read: first `released_len` bytes at `released`
 * (held back from earlier reads; valid until the next call), then the first `pass` bytes of the
 * read; the guard holds the rest. `refused` says why the stream must be cut instead (owned by
 * the guard); then nothing goes on.
 */
typedef struct {
  const char *refused;
  const uint8_t *released;
  size_t released_len;
  size_t pass;
} http_guard_verdict;

/* Reads the next bytes the client sends. */
http_guard_verdict http_guard_feed(http_guard *guard, const uint8_t *data, size_t len);

/* Whether the guard waits for the destination's answer to an Upgrade or CONNECT request. */
int http_guard_awaiting(const http_guard *guard);

/* Reads what the destination sent while the guard waits for that answer (pass is always 0). */
http_guard_verdict http_guard_answer(http_guard *guard, const uint8_t *data, size_t len);

void http_guard_free(http_guard *guard);

#endif
