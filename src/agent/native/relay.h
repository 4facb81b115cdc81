/*
 * The agent's direct-route data path off Node's event loop: one thread with its own epoll copies
 * the bytes of every spliced connection both ways, as a C proxy would, while the agent's
 * JavaScript accepts, sniffs, decides and audits. Measured on this path (issue 3), Node's event
 * loop alone added 2-3x HAProxy's p99 latency; this thread adds what HAProxy's does.
 */
#ifndef EGRESSD_RELAY_H
#define EGRESSD_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "http-request-guard.h"

/* What the relay thread reports when a connection is over; both of its sockets are closed by then. */
typedef struct relay_result {
  uint32_t id;
  /* Bytes written to the destination, and read from it. */
  uint64_t sent;
  uint64_t received;
  /* Why the connection was reset ("client: ECONNRESET", "idle for 300000 ms"); empty when it ended cleanly. */
  char error[256];
  /* Why the guard cut it (also in error); empty otherwise. */
  char refused[512];
  /* The destination's first bytes (an HTTP status line), for the audit record. */
  uint8_t first[16];
  size_t first_len;
} relay_result;

/* Called on the relay thread; the result is the callee's, to give back with relay_result_free. */
typedef void (*relay_done_fn)(relay_result *result);

/* Starts the thread once; 0, or -errno. */
int relay_init(relay_done_fn done);

/*
 * Hands a connection to the thread: duplicates both descriptors (the caller keeps and later
 * closes its own), writes `replay` (what the client sent so far, read by the guard first) to the
 * destination and `to_client` (what the destination sent so far) to the client, then copies both
 * ways with backpressure and half-closes until both directions ended, a side failed, the guard
 * cut the stream or nothing moved for idle_ms. guard may be NULL; it becomes the relay's.
 * Returns 0, or -errno.
 */
int relay_add(uint32_t id, int client_fd, int upstream_fd, const uint8_t *replay, size_t replay_len, const uint8_t *to_client, size_t to_client_len,
              http_guard *guard, int idle_ms);

/* Resets a connection the thread still copies (agent shutdown); its result says `reason`. */
int relay_abort(uint32_t id, const char *reason);

void relay_result_free(relay_result *result);

#endif
