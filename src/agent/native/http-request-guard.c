/*
 * The keep-alive Host guard (http-request-guard.h). It reads request heads the way
 * src/core/http1-request-head.ts does and request bodies the way src/core/http1-body.ts does,
 * and is stricter where the two could disagree with a server: a Transfer-Encoding other than
 * exactly `chunked`, a framing line over 4 KiB wherever its end is, a name that is not the
 * connection's host (or the first request's name) but for case and a trailing dot all cut the
 * stream. (The agent normalizes its host by WHATWG rules, which also map IDNA, IPv4 shorthand like
 * `192.0.2`, and invalid names to ''; a keep-alive client names its host the same way each time,
 * so none of that is needed to let it through, and none of it is let through.)
 * It copies nothing but a head split across reads (at most 16 KiB) and a chunked framing line.
 */
#define _GNU_SOURCE
#include "http-request-guard.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Heads past this size are refused by common servers too (Node's default limit is 16 KiB). */
#define MAX_HEAD (16 * 1024)
/* Chunk-size and trailer lines longer than this are refused (Node's own parser allows far less). */
#define MAX_LINE 4096
/* How much of a name or a line a reason quotes. */
#define QUOTE 120

typedef enum { S_HEAD, S_LENGTH, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_DATA_END, S_TRAILERS, S_AWAIT, S_OPAQUE } guard_state;

struct http_guard {
  char *host; /* NULL: the first request named no host */
  size_t host_len;
  char *alias; /* the first request's name as sent, or NULL */
  size_t alias_len;
  unsigned requests;
  guard_state state;
  uint64_t remaining;  /* body bytes still to pass in S_LENGTH and S_CHUNK_DATA */
  int await_connect;   /* in S_AWAIT: the request was a CONNECT (else an Upgrade) */
  uint8_t status[12];  /* in S_AWAIT: the start of the answer, `HTTP/1.1 101` */
  size_t status_len;
  size_t head_len;     /* bytes held in head: an unfinished head, or in S_AWAIT what came after the request */
  size_t line_len;     /* bytes of an unfinished framing line */
  char reason[512];
  /* The buffers last, left out of the initial clearing: most connections never touch them. */
  uint8_t head[MAX_HEAD];
  uint8_t released[MAX_HEAD]; /* held bytes handed to the relay, kept until the next call */
  uint8_t line[MAX_LINE + 2];
};

/* A slice of the head; ptr NULL means absent. */
typedef struct {
  const uint8_t *ptr;
  size_t len;
} slice;

static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

static char *copy_name(const char *name, size_t len) {
  char *copy = malloc(len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, name, len);
  copy[len] = '\0';
  return copy;
}

http_guard *http_guard_new(const char *host, size_t host_len, const char *alias, size_t alias_len) {
  http_guard *guard = malloc(sizeof *guard);
  if (guard == NULL) return NULL;
  memset(guard, 0, offsetof(http_guard, head));
  if (host != NULL) {
    guard->host = copy_name(host, host_len);
    guard->host_len = host_len;
    if (alias != NULL) {
      guard->alias = copy_name(alias, alias_len);
      guard->alias_len = alias_len;
    }
    if (guard->host == NULL || (alias != NULL && guard->alias == NULL)) {
      http_guard_free(guard);
      return NULL;
    }
  }
  return guard;
}

void http_guard_free(http_guard *guard) {
  if (guard == NULL) return;
  free(guard->host);
  free(guard->alias);
  free(guard);
}

__attribute__((format(printf, 2, 3))) static const char *fail(http_guard *guard, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(guard->reason, sizeof guard->reason, format, args);
  va_end(args);
  return guard->reason;
}

/* JavaScript's \s over latin1 text, which the TypeScript parser's patterns use. */
static int is_space(uint8_t c) { return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0xa0; }

static int is_token(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c != '\0' && strchr("!#$%&'*+.^_`|~-", c) != NULL);
}

static int is_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int hex_value(uint8_t c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? c + 0x20 : c; }

/* A header name compared without case to a lower-case one. */
static int name_is(slice name, const char *lower_name) {
  size_t n = strlen(lower_name);
  if (name.len != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (lower(name.ptr[i]) != (uint8_t)lower_name[i]) return 0;
  return 1;
}

static const uint8_t *find(const uint8_t *from, const uint8_t *to, const char *needle) {
  return memmem(from, (size_t)(to - from), needle, strlen(needle));
}

/* A character a host name without brackets may hold (the TypeScript parser's [^:@/\s[\]]). */
static int is_name_char(uint8_t c) { return !is_space(c) && c != ':' && c != '@' && c != '/' && c != '[' && c != ']'; }

/* The host of `host[:port]` or `[v6][:port]` into *out; 0 when the value is not one. */
static int host_of(slice value, slice *out) {
  const uint8_t *p = value.ptr;
  const uint8_t *end = value.ptr + value.len;
  const uint8_t *name_end;
  if (p < end && *p == '[') {
    const uint8_t *close = memchr(p, ']', value.len);
    if (close == NULL || close == p + 1) return 0;
    for (const uint8_t *q = p + 1; q < close; q++)
      if (!is_hex(*q) && *q != ':' && *q != '.') return 0;
    out->ptr = p + 1;
    out->len = (size_t)(close - p - 1);
    name_end = close + 1;
  } else {
    name_end = p;
    while (name_end < end && is_name_char(*name_end)) name_end++;
    if (name_end == p) return 0;
    out->ptr = p;
    out->len = (size_t)(name_end - p);
  }
  if (name_end == end) return 1;
  if (*name_end != ':') return 0;
  const uint8_t *digits = name_end + 1;
  if (end - digits < 1 || end - digits > 5) return 0;
  unsigned port = 0;
  for (const uint8_t *q = digits; q < end; q++) {
    if (*q < '0' || *q > '9') return 0;
    port = port * 10 + (unsigned)(*q - '0');
  }
  return port <= 65535;
}

/* Whether name is expected (lower case, no trailing dot) but for case and a trailing dot, ASCII only; nothing is an empty name. */
static int same_name(slice name, const char *expected, size_t expected_len) {
  if (expected_len == 0) return 0;
  size_t n = name.len;
  if (n > 0 && name.ptr[n - 1] == '.') n--;
  if (n != expected_len) return 0;
  for (size_t i = 0; i < n; i++)
    if (name.ptr[i] >= 0x80 || lower(name.ptr[i]) != lower((uint8_t)expected[i])) return 0;
  return 1;
}

static int is_connection_host(const http_guard *guard, slice name) {
  if (guard->host == NULL) return 0;
  return same_name(name, guard->host, guard->host_len) || (guard->alias != NULL && same_name(name, guard->alias, guard->alias_len));
}

static int quote_len(size_t len) { return (int)(len < QUOTE ? len : QUOTE); }

/* Every name a request gives must be the connection's host; one that names none passes only where the first named none either. */
static const char *check_names(http_guard *guard, slice host, slice target_host) {
  unsigned n = guard->requests;
  if (host.ptr == NULL && target_host.ptr == NULL) {
    if (guard->host == NULL) return NULL;
    return fail(guard, "request %u names no host, where the connection was allowed for \"%s\"", n, guard->host);
  }
  const slice names[2] = {host, target_host};
  for (int i = 0; i < 2; i++) {
    if (names[i].ptr == NULL || is_connection_host(guard, names[i])) continue;
    if (guard->host == NULL) return fail(guard, "request %u names host \"%.*s\", not none like the first request", n, quote_len(names[i].len), names[i].ptr);
    return fail(guard, "request %u names host \"%.*s\", not \"%s\" that the connection was allowed for", n, quote_len(names[i].len), names[i].ptr, guard->host);
  }
  return NULL;
}

/* The method a head starts with, or could still start with. */
static const char *method_of(const uint8_t *data, size_t len) {
  for (size_t m = 0; m < sizeof METHODS / sizeof *METHODS; m++) {
    size_t mlen = strlen(METHODS[m]);
    size_t n = len < mlen + 1 ? len : mlen + 1;
    size_t i = 0;
    while (i < n && (i < mlen ? data[i] == (uint8_t)METHODS[m][i] : data[i] == ' ')) i++;
    if (i == n) return METHODS[m];
  }
  return NULL;
}

typedef enum { HEAD_INCOMPLETE, HEAD_DONE, HEAD_CUT } head_result;

/* The framing of the body, the state after the head; a reason when it cannot be trusted. */
static const char *body_framing(http_guard *guard, slice content_length, slice transfer_encoding, int transfer_encodings, int http10) {
  if (transfer_encodings > 0) {
    /* RFC 9112 6.1: framing by Transfer-Encoding in an HTTP/1.0 message is faulty; a 1.0 server may ignore it. */
    if (http10) return "Transfer-Encoding in an HTTP/1.0 request";
    if (content_length.ptr != NULL) return "both Content-Length and Transfer-Encoding";
    if (transfer_encodings > 1 || !name_is(transfer_encoding, "chunked")) return "a Transfer-Encoding other than chunked (only chunked is read)";
    guard->state = S_CHUNK_SIZE;
    return NULL;
  }
  guard->state = S_HEAD;
  if (content_length.ptr == NULL) return NULL;
  if (content_length.len < 1 || content_length.len > 15) return "invalid Content-Length";
  uint64_t bytes = 0;
  for (size_t i = 0; i < content_length.len; i++) {
    uint8_t c = content_length.ptr[i];
    if (c < '0' || c > '9') return "invalid Content-Length";
    bytes = bytes * 10 + (uint64_t)(c - '0');
  }
  if (bytes > 0) {
    guard->state = S_LENGTH;
    guard->remaining = bytes;
  }
  return NULL;
}

/*
 * One request head from data (len bytes, from the start of the head): HEAD_DONE with *head_len
 * set and the guard's state moved to the body, HEAD_INCOMPLETE, or HEAD_CUT with the reason.
 */
static head_result read_head(http_guard *guard, const uint8_t *data, size_t len, size_t *head_len, const char **reason) {
  unsigned n = guard->requests + 1;
  const char *method = method_of(data, len);
  if (method == NULL) {
    *reason = fail(guard, "request %u is not a valid HTTP/1 request head", n);
    return HEAD_CUT;
  }
  const uint8_t *end = find(data, data + len, "\r\n\r\n");
  if (end == NULL || end + 4 - data > MAX_HEAD) {
    if (end == NULL && len < MAX_HEAD) return HEAD_INCOMPLETE;
    *reason = fail(guard, "request %u is not a valid HTTP/1 request head (longer than %d bytes)", n, MAX_HEAD);
    return HEAD_CUT;
  }
  const char *problem = NULL;
  /* METHOD SP target SP HTTP/1.x: the method is known, the target has no blanks. */
  const uint8_t *first_end = find(data, end, "\r\n");
  if (first_end == NULL) first_end = end;
  size_t mlen = strlen(method);
  const uint8_t *target = data + mlen + 1;
  const uint8_t *target_end = memchr(target, ' ', (size_t)(end - target));
  if (target_end == NULL || first_end - target_end != 9 || memcmp(target_end + 1, "HTTP/1.", 7) != 0 || (first_end[-1] != '0' && first_end[-1] != '1') ||
      target_end == target) {
    problem = "invalid request line";
    goto cut;
  }
  for (const uint8_t *q = target; q < target_end; q++) {
    if (is_space(*q)) {
      problem = "invalid request line";
      goto cut;
    }
  }
  slice host = {NULL, 0};
  int host_headers = 0;
  slice content_length = {NULL, 0};
  slice transfer_encoding = {NULL, 0};
  int transfer_encodings = 0;
  int upgrade = strcmp(method, "CONNECT") == 0;
  for (const uint8_t *start = first_end + 2; start < end;) {
    const uint8_t *stop = find(start, end, "\r\n");
    if (stop == NULL) stop = end;
    const uint8_t *colon = memchr(start, ':', (size_t)(stop - start));
    if (colon == NULL || colon == start || memchr(start, '\r', (size_t)(stop - start)) != NULL || memchr(start, '\n', (size_t)(stop - start)) != NULL) {
      problem = "invalid header line";
      goto cut;
    }
    for (const uint8_t *q = start; q < colon; q++) {
      if (!is_token(*q)) {
        problem = "invalid header line";
        goto cut;
      }
    }
    const slice name = {start, (size_t)(colon - start)};
    const uint8_t *from = colon + 1;
    const uint8_t *to = stop;
    while (from < to && (*from == ' ' || *from == '\t')) from++;
    while (to > from && (to[-1] == ' ' || to[-1] == '\t')) to--;
    const slice value = {from, (size_t)(to - from)};
    if (name_is(name, "content-length")) {
      if (content_length.ptr != NULL && (content_length.len != value.len || memcmp(content_length.ptr, value.ptr, value.len) != 0)) {
        problem = "Content-Length headers that disagree";
        goto cut;
      }
      content_length = value;
    } else if (name_is(name, "transfer-encoding")) {
      transfer_encoding = value;
      transfer_encodings++;
    } else if (name_is(name, "upgrade")) {
      upgrade = 1;
    } else if (name_is(name, "host")) {
      if (++host_headers > 1) {
        problem = "more than one Host header";
        goto cut;
      }
      if (value.len > 0 && !host_of(value, &host)) {
        problem = "invalid Host header";
        goto cut;
      }
    }
    start = stop + 2;
  }
  problem = body_framing(guard, content_length, transfer_encoding, transfer_encodings, first_end[-1] == '0');
  if (problem != NULL) goto cut;
  slice target_host = {NULL, 0};
  /* An absolute-form target (scheme://authority...) names a host too. */
  if (*target != '/' && ((*target | 0x20) >= 'a' && (*target | 0x20) <= 'z')) {
    const uint8_t *q = target + 1;
    while (q < target_end && ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z' ? 1 : (*q >= '0' && *q <= '9') || *q == '+' || *q == '.' || *q == '-')) q++;
    if (target_end - q >= 3 && memcmp(q, "://", 3) == 0) {
      const uint8_t *authority = q + 3;
      const uint8_t *authority_end = authority;
      while (authority_end < target_end && *authority_end != '/' && *authority_end != '?' && *authority_end != '#') authority_end++;
      /* A WHATWG URL parser reads `\\` as `/`: `http://evil\\@api/` is a request for evil to such a server. */
      if (memchr(authority, '\\', (size_t)(authority_end - authority)) != NULL) {
        problem = "a backslash in the request target's authority";
        goto cut;
      }
      for (const uint8_t *at = authority; at < authority_end; at++)
        if (*at == '@') authority = at + 1;
      if (!host_of((slice){authority, (size_t)(authority_end - authority)}, &target_host)) {
        problem = "invalid host in the request target";
        goto cut;
      }
    }
  }
  guard->requests++;
  *reason = check_names(guard, host, target_host);
  if (*reason != NULL) return HEAD_CUT;
  if (upgrade) {
    guard->state = S_AWAIT;
    guard->await_connect = strcmp(method, "CONNECT") == 0;
    guard->status_len = 0;
  }
  *head_len = (size_t)(end + 4 - data);
  return HEAD_DONE;
cut:
  *reason = fail(guard, "request %u is not a valid HTTP/1 request head (%s)", n, problem);
  return HEAD_CUT;
}

/* One CRLF-terminated line of chunked framing, without its CRLF. */
static const char *framing_line(http_guard *guard, const uint8_t *line, size_t len) {
  if (guard->state == S_CHUNK_DATA_END) {
    if (len != 0) return "chunk data not followed by CRLF";
    guard->state = S_CHUNK_SIZE;
    return NULL;
  }
  if (guard->state == S_TRAILERS) {
    if (len == 0) guard->state = S_HEAD;
    return NULL;
  }
  size_t digits = 0;
  uint64_t size = 0;
  while (digits < len && is_hex(line[digits])) size = size * 16 + (uint64_t)hex_value(line[digits++]);
  size_t i = digits;
  while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
  int valid = digits >= 1 && digits <= 12 && (digits == len || (i < len && line[i] == ';'));
  for (; valid && i < len; i++)
    if (line[i] == '\r' || line[i] == '\n') valid = 0;
  if (!valid) return "invalid chunk size line";
  guard->remaining = size;
  guard->state = size == 0 ? S_TRAILERS : S_CHUNK_DATA;
  return NULL;
}

/* Bytes of a framing line or a body: how many of them it used, or the reason to cut. */
static const char *feed_framing(http_guard *guard, const uint8_t *at, size_t left, size_t *used) {
  if (guard->state == S_LENGTH || guard->state == S_CHUNK_DATA) {
    size_t n = guard->remaining < left ? (size_t)guard->remaining : left;
    guard->remaining -= n;
    *used = n;
    if (guard->remaining == 0) guard->state = guard->state == S_LENGTH ? S_HEAD : S_CHUNK_DATA_END;
    return NULL;
  }
  const uint8_t *lf = memchr(at, '\n', left);
  size_t take = lf == NULL ? left : (size_t)(lf - at) + 1;
  if (guard->line_len + take > MAX_LINE + 2) return fail(guard, "request %u: a chunked framing line longer than %d bytes", guard->requests, MAX_LINE);
  memcpy(guard->line + guard->line_len, at, take);
  guard->line_len += take;
  *used = take;
  if (lf == NULL) return NULL;
  size_t n = guard->line_len;
  guard->line_len = 0;
  if (n < 2 || guard->line[n - 2] != '\r') return fail(guard, "request %u: a chunked framing line not ended by CRLF", guard->requests);
  const char *problem = framing_line(guard, guard->line, n - 2);
  return problem == NULL ? NULL : fail(guard, "request %u: %s", guard->requests, problem);
}

/* Holds data in head (an unfinished head, or what waits for an answer); the reason when it does not fit. */
static const char *hold(http_guard *guard, const uint8_t *data, size_t len) {
  if (len > MAX_HEAD - guard->head_len) {
    if (guard->state == S_AWAIT) return fail(guard, "request %u: more than %d bytes sent before the answer to its Upgrade or CONNECT", guard->requests, MAX_HEAD);
    return fail(guard, "request %u is not a valid HTTP/1 request head (longer than %d bytes)", guard->requests + 1, MAX_HEAD);
  }
  memcpy(guard->head + guard->head_len, data, len);
  guard->head_len += len;
  return NULL;
}

http_guard_verdict http_guard_feed(http_guard *guard, const uint8_t *data, size_t len) {
  http_guard_verdict verdict = {NULL, NULL, 0, len};
  size_t used = 0;
  while (used < len) {
    const uint8_t *at = data + used;
    size_t left = len - used;
    if (guard->state == S_OPAQUE) return verdict;
    if (guard->state == S_AWAIT) {
      verdict.refused = hold(guard, at, left);
      verdict.pass = used;
      return verdict;
    }
    if (guard->state != S_HEAD) {
      size_t n = 0;
      verdict.refused = feed_framing(guard, at, left, &n);
      if (verdict.refused != NULL) return verdict;
      used += n;
      continue;
    }
    const char *reason = NULL;
    size_t head_len;
    if (guard->head_len == 0) {
      head_result result = read_head(guard, at, left, &head_len, &reason);
      if (result == HEAD_CUT) {
        verdict.refused = reason;
        return verdict;
      }
      if (result == HEAD_INCOMPLETE) {
        /* Nothing of an unfinished head goes on. */
        verdict.refused = hold(guard, at, left);
        verdict.pass = used;
        return verdict;
      }
      used += head_len;
      continue;
    }
    /* The rest of a head held from earlier reads (only ever at the start of a read). */
    size_t kept = guard->head_len;
    verdict.refused = hold(guard, at, left < MAX_HEAD - kept ? left : MAX_HEAD - kept);
    if (verdict.refused != NULL) return verdict;
    head_result result = read_head(guard, guard->head, guard->head_len, &head_len, &reason);
    if (result == HEAD_CUT) {
      verdict.refused = reason;
      return verdict;
    }
    if (result == HEAD_INCOMPLETE) {
      verdict.pass = 0;
      return verdict;
    }
    /* Complete: the held part goes on first, then this read from where the head's rest began. */
    memcpy(guard->released, guard->head, kept);
    verdict.released = guard->released;
    verdict.released_len = kept;
    guard->head_len = 0;
    used += head_len - kept;
  }
  return verdict;
}

int http_guard_awaiting(const http_guard *guard) { return guard->state == S_AWAIT; }

http_guard_verdict http_guard_answer(http_guard *guard, const uint8_t *data, size_t len) {
  http_guard_verdict verdict = {NULL, NULL, 0, 0};
  if (guard->state != S_AWAIT) return verdict;
  size_t take = sizeof guard->status - guard->status_len;
  if (take > len) take = len;
  memcpy(guard->status + guard->status_len, data, take);
  guard->status_len += take;
  if (guard->status_len < sizeof guard->status) return verdict;
  const uint8_t *st = guard->status;
  int agreed = memcmp(st, "HTTP/1.", 7) == 0 && (st[7] == '0' || st[7] == '1') && st[8] == ' ' &&
               (guard->await_connect ? st[9] == '2' && st[10] >= '0' && st[10] <= '9' && st[11] >= '0' && st[11] <= '9' : memcmp(st + 9, "101", 3) == 0);
  size_t held = guard->head_len;
  memcpy(guard->released, guard->head, held);
  guard->head_len = 0;
  if (agreed) {
    guard->state = S_OPAQUE;
    verdict.released = guard->released;
    verdict.released_len = held;
    return verdict;
  }
  /* Refused: the connection is still HTTP/1, and what waited is read as the next requests. */
  guard->state = S_HEAD;
  http_guard_verdict again = http_guard_feed(guard, guard->released, held);
  verdict.refused = again.refused;
  verdict.released = guard->released;
  verdict.released_len = again.refused == NULL ? again.pass : 0;
  return verdict;
}
