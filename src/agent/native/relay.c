/*
 * The relay thread (relay.h). One epoll loop, level-triggered: a side is read only while
 * nothing read from it waits to be written (so a slow peer holds at most one read, 64 KiB, of
 * the other's bytes), a side is watched for writability only while something waits for it, and
 * a side with neither is out of the epoll set. Bytes are read into one buffer of the thread and
 * written on at once; only what the peer's socket does not take is copied aside.
 */
#define _GNU_SOURCE
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT 0
#define UPSTREAM 1
#define READ_SIZE (64 * 1024)
/* Reads of one side per event at most, so that one fast stream cannot hold the thread from the others. */
#define READS_PER_EVENT 4

static const char *const SIDE_NAMES[2] = {"client", "upstream"};

typedef struct relay relay;

/* What an epoll event points to: a relay and one of its sides. */
typedef struct {
  relay *owner;
  int side;
} endpoint;

/* Bytes from one side to the other: read from fd[side], written to fd[1 - side]. */
typedef struct {
  uint8_t *pending; /* read but not yet taken by the other side's socket */
  size_t len;
  size_t off;       /* how much of pending was taken since */
  int eof;      /* the side sent its FIN */
  int shut;     /* ...and it was carried across (shutdown SHUT_WR of the other side) */
  uint64_t read;
  uint64_t written;
} direction;

struct relay {
  relay_result result; /* first, so that a result is its relay */
  int fd[2];
  endpoint end[2];
  uint32_t interest[2];
  int registered[2];
  direction dir[2];
  http_guard *guard; /* reads what the client sends, when set */
  int idle_ms;
  int64_t deadline;
  int dead;
  relay *prev; /* the live relays, by deadline */
  relay *next;
  relay *next_dead;
};

/* What the JavaScript thread asks of the relay thread. */
typedef struct command {
  relay *add;         /* a new relay, or NULL for an abort */
  uint32_t abort_id;
  char reason[256];
  struct command *next;
} command;

static int epoll_fd = -1;
static int wake_fd = -1;
static relay_done_fn done_fn;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static command *queue_head;
static command *queue_tail;
static relay *live_head;
static relay *live_tail;
static relay *dead_list;
static int64_t now_ms;
static uint8_t read_buffer[READ_SIZE];

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unlink_live(relay *r) {
  if (r->prev != NULL) r->prev->next = r->next;
  else live_head = r->next;
  if (r->next != NULL) r->next->prev = r->prev;
  else live_tail = r->prev;
  r->prev = r->next = NULL;
}

/* Traffic moved: the idle deadline starts again. The list stays sorted with a walk from its tail (none when all share one timeout). */
static void touch(relay *r) {
  r->deadline = now_ms + r->idle_ms;
  if (live_tail == r) return;
  if (r->prev != NULL || live_head == r) unlink_live(r);
  relay *after = live_tail;
  while (after != NULL && after->deadline > r->deadline) after = after->prev;
  r->prev = after;
  r->next = after == NULL ? live_head : after->next;
  if (r->next != NULL) r->next->prev = r;
  else live_tail = r;
  if (after != NULL) after->next = r;
  else live_head = r;
}

/* Ends a relay: out of epoll, out of the live list, both descriptors closed (reset first when it failed). Reported after the batch of events. */
static void finish(relay *r, int reset) {
  if (r->dead) return;
  r->dead = 1;
  unlink_live(r);
  for (int s = 0; s < 2; s++) {
    if (r->registered[s]) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, r->fd[s], NULL);
    if (reset) {
      /* The socket is shared with the agent's JavaScript, which closes it last: SO_LINGER 0 makes that close a reset. */
      struct linger linger = {1, 0};
      setsockopt(r->fd[s], SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
    }
    close(r->fd[s]);
  }
  r->result.sent = r->dir[CLIENT].written;
  r->result.received = r->dir[UPSTREAM].read;
  r->next_dead = dead_list;
  dead_list = r;
}

/* Resets the relay; its error is `what` alone, or `what: ERRNAME` for a failed call. */
static void fail(relay *r, const char *what, int err) {
  if (r->result.error[0] == '\0') {
    const char *name = err == 0 ? NULL : strerrorname_np(err);
    if (err == 0) snprintf(r->result.error, sizeof r->result.error, "%s", what);
    else if (name != NULL) snprintf(r->result.error, sizeof r->result.error, "%s: %s", what, name);
    else snprintf(r->result.error, sizeof r->result.error, "%s: errno %d", what, err);
  }
  finish(r, 1);
}

static void refuse(relay *r, const char *reason) {
  snprintf(r->result.refused, sizeof r->result.refused, "%s", reason);
  fail(r, reason, 0);
}

/* Watches each side for what the relay can do with it now, and takes a side with nothing to do out of the set. */
static void update_interest(relay *r) {
  for (int s = 0; s < 2 && !r->dead; s++) {
    uint32_t want = 0;
    if (!r->dir[s].eof && r->dir[s].pending == NULL) want |= EPOLLIN;
    if (r->dir[1 - s].pending != NULL) want |= EPOLLOUT;
    if (want == r->interest[s] && r->registered[s] == (want != 0)) continue;
    struct epoll_event event = {.events = want, .data.ptr = &r->end[s]};
    int op = want == 0 ? EPOLL_CTL_DEL : r->registered[s] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(epoll_fd, op, r->fd[s], &event) != 0) {
      fail(r, SIDE_NAMES[s], errno);
      return;
    }
    r->registered[s] = want != 0;
    r->interest[s] = want;
  }
  if (!r->dead && r->dir[CLIENT].shut && r->dir[UPSTREAM].shut) finish(r, 0);
}

/*
 * Carries a FIN across once everything before it was written, and, for the client's, once the
 * guard holds nothing back for the answer to an Upgrade (unless the destination ended first).
 */
static void carry_eof(relay *r, int from) {
  direction *d = &r->dir[from];
  if (!d->eof || d->shut || d->pending != NULL) return;
  if (from == CLIENT && r->guard != NULL && http_guard_awaiting(r->guard) && !r->dir[UPSTREAM].eof) return;
  if (shutdown(r->fd[1 - from], SHUT_WR) != 0 && errno != ENOTCONN) {
    fail(r, SIDE_NAMES[1 - from], errno);
    return;
  }
  d->shut = 1;
}

/* Sends bytes from side `from` to the other side until its socket takes no more: how many it took (the relay fails on an error). */
static size_t send_across(relay *r, int from, const uint8_t *data, size_t len) {
  int to = 1 - from;
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(r->fd[to], data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += (size_t)n;
      r->dir[from].written += (uint64_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      fail(r, SIDE_NAMES[to], n < 0 ? errno : EPIPE);
      break;
    }
  }
  return off;
}

/* Writes bytes from side `from` to the other side; what its socket does not take now waits in the direction. */
static void write_across(relay *r, int from, const uint8_t *data, size_t len) {
  direction *d = &r->dir[from];
  size_t sent = send_across(r, from, data, len);
  if (r->dead || sent == len) return;
  d->pending = malloc(len - sent);
  if (d->pending == NULL) {
    fail(r, "relay", ENOMEM);
    return;
  }
  memcpy(d->pending, data + sent, len - sent);
  d->len = len - sent;
  d->off = 0;
}

/* Writes across after whatever already waits in that direction. */
static void emit(relay *r, int from, const uint8_t *data, size_t len) {
  direction *d = &r->dir[from];
  if (len == 0 || data == NULL || r->dead) return;
  if (d->pending == NULL) {
    write_across(r, from, data, len);
    return;
  }
  uint8_t *grown = realloc(d->pending, d->len + len);
  if (grown == NULL) {
    fail(r, "relay", ENOMEM);
    return;
  }
  memcpy(grown + d->len, data, len);
  d->pending = grown;
  d->len += len;
}

/* What the guard let through of the client's bytes goes on; a refusal cuts both sides. */
static void apply(relay *r, http_guard_verdict verdict, const uint8_t *data) {
  if (verdict.refused != NULL) {
    refuse(r, verdict.refused);
    return;
  }
  emit(r, CLIENT, verdict.released, verdict.released_len);
  emit(r, CLIENT, data, verdict.pass);
}

/* The other side became writable: what waited for it goes on, from where it stopped. */
static void flush(relay *r, int from) {
  direction *d = &r->dir[from];
  if (d->pending == NULL) return;
  d->off += send_across(r, from, d->pending + d->off, d->len - d->off);
  if (r->dead || d->off < d->len) return;
  free(d->pending);
  d->pending = NULL;
  d->len = d->off = 0;
  carry_eof(r, from);
}

/* Reads what side `from` sent and writes it across, the guard reading the client's bytes first. */
static void pump(relay *r, int from) {
  direction *d = &r->dir[from];
  for (int reads = 0; reads < READS_PER_EVENT; reads++) {
    ssize_t n = recv(r->fd[from], read_buffer, READ_SIZE, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      fail(r, SIDE_NAMES[from], errno);
      return;
    }
    if (n == 0) {
      d->eof = 1;
      carry_eof(r, from);
      /* A destination that ended without answering an Upgrade: what the client held back goes nowhere, its FIN goes on. */
      if (!r->dead && from == UPSTREAM) carry_eof(r, CLIENT);
      return;
    }
    d->read += (uint64_t)n;
    if (from == UPSTREAM && r->result.first_len == 0) {
      r->result.first_len = (size_t)n < sizeof r->result.first ? (size_t)n : sizeof r->result.first;
      memcpy(r->result.first, read_buffer, r->result.first_len);
    }
    if (from == CLIENT && r->guard != NULL) {
      apply(r, http_guard_feed(r->guard, read_buffer, (size_t)n), read_buffer);
    } else if (from == UPSTREAM && r->guard != NULL && http_guard_awaiting(r->guard)) {
      /* The answer to an Upgrade or CONNECT: the client's bytes that waited for it go on, or are read as requests. */
      http_guard_verdict verdict = http_guard_answer(r->guard, read_buffer, (size_t)n);
      write_across(r, from, read_buffer, (size_t)n);
      if (!r->dead) apply(r, verdict, NULL);
      if (!r->dead) carry_eof(r, CLIENT);
    } else {
      write_across(r, from, read_buffer, (size_t)n);
    }
    /* A short read drained the socket; a full one may have left more, which level-triggered epoll reports again. */
    if (r->dead || d->pending != NULL || (size_t)n < READ_SIZE) return;
  }
}

static void handle(endpoint *e, uint32_t events) {
  relay *r = e->owner;
  int s = e->side;
  if (r->dead) return;
  touch(r);
  if ((r->interest[s] & EPOLLIN) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) pump(r, s);
  if (!r->dead && (r->interest[s] & EPOLLOUT) && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) flush(r, 1 - s);
  if (!r->dead) update_interest(r);
}

static void start(relay *r) {
  touch(r);
  /* The client's bytes that the sniffer read go through the guard like any others. */
  if (r->guard != NULL && r->dir[CLIENT].pending != NULL) {
    uint8_t *replay = r->dir[CLIENT].pending;
    size_t len = r->dir[CLIENT].len;
    r->dir[CLIENT].pending = NULL;
    r->dir[CLIENT].len = 0;
    apply(r, http_guard_feed(r->guard, replay, len), replay);
    free(replay);
  }
  for (int from = 0; from < 2 && !r->dead; from++) flush(r, from);
  if (!r->dead) update_interest(r);
}

static void run_commands(void) {
  uint64_t count;
  while (read(wake_fd, &count, sizeof count) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&queue_lock);
  command *c = queue_head;
  queue_head = queue_tail = NULL;
  pthread_mutex_unlock(&queue_lock);
  while (c != NULL) {
    command *next = c->next;
    if (c->add != NULL) {
      start(c->add);
    } else {
      for (relay *r = live_head; r != NULL; r = r->next) {
        if (r->result.id == c->abort_id) {
          fail(r, c->reason, 0);
          break;
        }
      }
    }
    free(c);
    c = next;
  }
}

static void expire_idle(void) {
  while (live_head != NULL && live_head->deadline <= now_ms) {
    char reason[64];
    snprintf(reason, sizeof reason, "idle for %d ms", live_head->idle_ms);
    fail(live_head, reason, 0);
  }
}

static void report_dead(void) {
  while (dead_list != NULL) {
    relay *r = dead_list;
    dead_list = r->next_dead;
    for (int s = 0; s < 2; s++) free(r->dir[s].pending);
    http_guard_free(r->guard);
    r->guard = NULL;
    done_fn(&r->result);
  }
}

static void *relay_main(void *unused) {
  (void)unused;
  struct epoll_event events[64];
  for (;;) {
    now_ms = monotonic_ms();
    int timeout = live_head == NULL ? -1 : (int)(live_head->deadline > now_ms ? live_head->deadline - now_ms : 0);
    int n = epoll_wait(epoll_fd, events, 64, timeout);
    now_ms = monotonic_ms();
    for (int i = 0; i < n; i++) {
      if (events[i].data.ptr == NULL) run_commands();
      else handle(events[i].data.ptr, events[i].events);
    }
    expire_idle();
    report_dead();
  }
  return NULL;
}

int relay_init(relay_done_fn done) {
  if (epoll_fd >= 0) return 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int err = errno;
    close(ep);
    return -err;
  }
  struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, wake, &event) != 0) {
    int err = errno;
    close(ep);
    close(wake);
    return -err;
  }
  epoll_fd = ep;
  wake_fd = wake;
  done_fn = done;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  /* The loop needs little stack; the default 8 MiB would only be address space, but say so. */
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, relay_main, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    close(ep);
    close(wake);
    epoll_fd = wake_fd = -1;
    return -err;
  }
  pthread_setname_np(thread, "egressd-relay");
  return 0;
}

static int enqueue(command *c) {
  pthread_mutex_lock(&queue_lock);
  if (queue_tail != NULL) queue_tail->next = c;
  else queue_head = c;
  queue_tail = c;
  pthread_mutex_unlock(&queue_lock);
  uint64_t one = 1;
  return write(wake_fd, &one, sizeof one) == sizeof one || errno == EAGAIN ? 0 : -errno;
}

static uint8_t *copy_of(const uint8_t *data, size_t len) {
  uint8_t *copy = malloc(len);
  if (copy != NULL) memcpy(copy, data, len);
  return copy;
}

int relay_add(uint32_t id, int client_fd, int upstream_fd, const uint8_t *replay, size_t replay_len, const uint8_t *to_client, size_t to_client_len,
              http_guard *guard, int idle_ms) {
  relay *r = calloc(1, sizeof *r);
  command *c = calloc(1, sizeof *c);
  int err = 0;
  if (r == NULL || c == NULL) err = -ENOMEM;
  if (r != NULL) r->fd[CLIENT] = r->fd[UPSTREAM] = -1;
  if (err == 0) {
    r->fd[CLIENT] = fcntl(client_fd, F_DUPFD_CLOEXEC, 0);
    r->fd[UPSTREAM] = r->fd[CLIENT] < 0 ? -1 : fcntl(upstream_fd, F_DUPFD_CLOEXEC, 0);
    if (r->fd[UPSTREAM] < 0) err = -errno;
  }
  const uint8_t *initial[2] = {replay, to_client};
  const size_t initial_len[2] = {replay_len, to_client_len};
  for (int s = 0; s < 2 && err == 0; s++) {
    if (initial_len[s] == 0) continue;
    r->dir[s].pending = copy_of(initial[s], initial_len[s]);
    r->dir[s].len = initial_len[s];
    if (r->dir[s].pending == NULL) err = -ENOMEM;
  }
  if (err != 0) {
    if (r != NULL) {
      for (int s = 0; s < 2; s++) {
        if (r->fd[s] >= 0) close(r->fd[s]);
        free(r->dir[s].pending);
      }
    }
    free(r);
    free(c);
    http_guard_free(guard);
    return err;
  }
  r->result.id = id;
  r->guard = guard;
  r->idle_ms = idle_ms;
  for (int s = 0; s < 2; s++) r->end[s] = (endpoint){r, s};
  c->add = r;
  return enqueue(c);
}

int relay_abort(uint32_t id, const char *reason) {
  command *c = calloc(1, sizeof *c);
  if (c == NULL) return -ENOMEM;
  c->abort_id = id;
  snprintf(c->reason, sizeof c->reason, "%s", reason);
  return enqueue(c);
}

void relay_result_free(relay_result *result) { free(result); }
