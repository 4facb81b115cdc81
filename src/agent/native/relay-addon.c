/*
 * The relay thread and the guard for JavaScript (src/agent/native-relay.ts):
 *   init(onDone)                    starts the thread; onDone(id, sent, received, error, refused, first) per connection
 *   start(clientFd, upstreamFd, replay, toClient, idleMs, guardHost, guardAlias) -> id
 *                                   guardHost: undefined for no guard, null when the first request named no host;
 *                                   guardAlias: the first request's name when it normalized to more than guardHost
 *   abort(id, reason)
 *   guardNew(host, alias) -> guard, guardFeed(guard, bytes), guardAnswer(guard, bytes) -> { refused?, sent }
 *                                   the guard alone, for its tests and `npm run fuzz`: `sent` is what would go on
 *                                   to the destination (guardAnswer: the destination's bytes while it waits for a 101)
 * Built by `npm ci` (binding.gyp), like original-dst.c.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "http-request-guard.h"
#include "relay.h"

static napi_threadsafe_function done_tsfn;
/* Marks the guards this addon made, so that guardFeed never takes another external for one. */
static const napi_type_tag GUARD_TAG = {0x6567726573736421ULL, 0x6775617264746167ULL};
static uint32_t next_id;
/* Connections the thread holds: the completion callback keeps the process alive only while there are some. */
static uint32_t active;

#define CHECK(env, call)                                                                                                                             \
  do {                                                                                                                                               \
    if ((call) != napi_ok) {                                                                                                                         \
      napi_throw_error((env), NULL, "egressd relay addon: " #call " failed");                                                                       \
      return NULL;                                                                                                                                   \
    }                                                                                                                                                \
  } while (0)

static void on_done(relay_result *result) { napi_call_threadsafe_function(done_tsfn, result, napi_tsfn_blocking); }

static napi_value optional_string(napi_env env, const char *text) {
  napi_value value;
  if (text[0] == '\0') napi_get_undefined(env, &value);
  else napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &value);
  return value;
}

static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  relay_result *result = data;
  if (env != NULL) {
    napi_value argv[6];
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_create_uint32(env, result->id, &argv[0]);
    napi_create_double(env, (double)result->sent, &argv[1]);
    napi_create_double(env, (double)result->received, &argv[2]);
    argv[3] = optional_string(env, result->error);
    argv[4] = optional_string(env, result->refused);
    if (result->first_len == 0) argv[5] = undefined;
    else napi_create_buffer_copy(env, result->first_len, result->first, NULL, &argv[5]);
    if (--active == 0) napi_unref_threadsafe_function(env, done_tsfn);
    napi_call_function(env, undefined, callback, 6, argv, NULL);
  }
  relay_result_free(result);
}

static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value callback;
  CHECK(env, napi_get_cb_info(env, info, &argc, &callback, NULL, NULL));
  if (done_tsfn != NULL) {
    napi_throw_error(env, "EGRESSD_ERR_RELAY", "the relay thread is already started");
    return NULL;
  }
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "egressd-relay", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_threadsafe_function(env, callback, NULL, name, 0, 1, NULL, NULL, NULL, call_js, &done_tsfn));
  CHECK(env, napi_unref_threadsafe_function(env, done_tsfn));
  int err = relay_init(on_done);
  if (err != 0) {
    napi_release_threadsafe_function(done_tsfn, napi_tsfn_abort);
    done_tsfn = NULL;
    napi_throw_error(env, "EGRESSD_ERR_RELAY", strerror(-err));
    return NULL;
  }
  return NULL;
}

/* A latin1 string argument into a fresh buffer; *out NULL for null or undefined. Returns 0 when the argument is none of them. */
static int string_or_null(napi_env env, napi_value value, char **out, size_t *len) {
  napi_valuetype type;
  *out = NULL;
  *len = 0;
  if (napi_typeof(env, value, &type) != napi_ok) return 0;
  if (type == napi_null || type == napi_undefined) return 1;
  if (type != napi_string || napi_get_value_string_latin1(env, value, NULL, 0, len) != napi_ok) return 0;
  *out = malloc(*len + 1);
  return *out != NULL && napi_get_value_string_latin1(env, value, *out, *len + 1, len) == napi_ok;
}

/* A guard from (host, alias) arguments; *guard NULL and 1 when host is undefined (no guard); 0 after throwing. */
static int guard_of(napi_env env, napi_value host_arg, napi_value alias_arg, http_guard **guard) {
  napi_valuetype type;
  char *host = NULL;
  char *alias = NULL;
  size_t host_len;
  size_t alias_len;
  *guard = NULL;
  if (napi_typeof(env, host_arg, &type) != napi_ok) return 0;
  if (type == napi_undefined) return 1;
  int ok = string_or_null(env, host_arg, &host, &host_len) && string_or_null(env, alias_arg, &alias, &alias_len);
  if (ok) *guard = http_guard_new(host, host_len, alias, alias_len);
  free(host);
  free(alias);
  if (!ok) napi_throw_type_error(env, NULL, "guard host: string | null | undefined, alias: string | undefined");
  else if (*guard == NULL) napi_throw_error(env, "EGRESSD_ERR_RELAY", strerror(ENOMEM));
  return *guard != NULL;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  int32_t client_fd;
  int32_t upstream_fd;
  int32_t idle_ms;
  void *replay;
  size_t replay_len;
  void *to_client;
  size_t to_client_len;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (done_tsfn == NULL || argc < 7 || napi_get_value_int32(env, argv[0], &client_fd) != napi_ok || napi_get_value_int32(env, argv[1], &upstream_fd) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &replay, &replay_len) != napi_ok || napi_get_buffer_info(env, argv[3], &to_client, &to_client_len) != napi_ok ||
      napi_get_value_int32(env, argv[4], &idle_ms) != napi_ok) {
    napi_throw_type_error(env, NULL, "after init(): start(clientFd, upstreamFd, replay: Buffer, toClient: Buffer, idleMs, guardHost, guardAlias)");
    return NULL;
  }
  http_guard *guard;
  if (!guard_of(env, argv[5], argv[6], &guard)) return NULL;
  uint32_t id = ++next_id;
  int err = relay_add(id, client_fd, upstream_fd, replay, replay_len, to_client, to_client_len, guard, idle_ms);
  if (err != 0) {
    napi_throw_error(env, "EGRESSD_ERR_RELAY", strerror(-err));
    return NULL;
  }
  if (active++ == 0) CHECK(env, napi_ref_threadsafe_function(env, done_tsfn));
  napi_value out;
  CHECK(env, napi_create_uint32(env, id, &out));
  return out;
}

static napi_value abort_relay(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uint32_t id;
  char reason[256];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &id) != napi_ok || napi_get_value_string_latin1(env, argv[1], reason, sizeof reason, NULL) != napi_ok) {
    napi_throw_type_error(env, NULL, "abort(id: number, reason: string)");
    return NULL;
  }
  int err = relay_abort(id, reason);
  if (err != 0) napi_throw_error(env, "EGRESSD_ERR_RELAY", strerror(-err));
  return NULL;
}

static void free_guard(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  http_guard_free(data);
}

static napi_value guard_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "guardNew(host: string | null, alias?: string)");
    return NULL;
  }
  if (argc < 2) napi_get_undefined(env, &argv[1]);
  http_guard *guard;
  if (!guard_of(env, argv[0], argv[1], &guard)) return NULL;
  if (guard == NULL) {
    napi_throw_type_error(env, NULL, "guardNew(host: string | null, alias?: string)");
    return NULL;
  }
  napi_value out;
  if (napi_create_external(env, guard, free_guard, NULL, &out) != napi_ok || napi_type_tag_object(env, out, &GUARD_TAG) != napi_ok) {
    http_guard_free(guard);
    napi_throw_error(env, "EGRESSD_ERR_RELAY", strerror(ENOMEM));
    return NULL;
  }
  return out;
}

/* { refused?, sent }: what a verdict lets go on to the destination, as one Buffer. */
static napi_value verdict_object(napi_env env, http_guard_verdict verdict, const uint8_t *data) {
  if (verdict.refused != NULL) verdict.released_len = verdict.pass = 0;
  napi_value out;
  napi_value sent;
  void *bytes;
  if (napi_create_object(env, &out) != napi_ok || napi_create_buffer(env, verdict.released_len + verdict.pass, &bytes, &sent) != napi_ok) return NULL;
  if (verdict.released_len > 0) memcpy(bytes, verdict.released, verdict.released_len);
  if (verdict.pass > 0) memcpy((uint8_t *)bytes + verdict.released_len, data, verdict.pass);
  napi_set_named_property(env, out, "sent", sent);
  if (verdict.refused != NULL) {
    napi_value refused;
    napi_create_string_latin1(env, verdict.refused, NAPI_AUTO_LENGTH, &refused);
    napi_set_named_property(env, out, "refused", refused);
  }
  return out;
}

static napi_value guard_call(napi_env env, napi_callback_info info, int answer) {
  size_t argc = 2;
  napi_value argv[2];
  void *guard;
  void *data;
  size_t len;
  bool tagged = false;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_check_object_type_tag(env, argv[0], &GUARD_TAG, &tagged) != napi_ok || !tagged || napi_get_value_external(env, argv[0], &guard) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "guardFeed or guardAnswer(guard from guardNew, bytes: Buffer)");
    return NULL;
  }
  http_guard_verdict verdict = answer ? http_guard_answer(guard, data, len) : http_guard_feed(guard, data, len);
  return verdict_object(env, verdict, data);
}

static napi_value guard_feed(napi_env env, napi_callback_info info) { return guard_call(env, info, 0); }

static napi_value guard_answer(napi_env env, napi_callback_info info) { return guard_call(env, info, 1); }

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
      {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"abort", NULL, abort_relay, NULL, NULL, NULL, napi_default, NULL},
      {"guardNew", NULL, guard_new, NULL, NULL, NULL, napi_default, NULL},
      {"guardFeed", NULL, guard_feed, NULL, NULL, NULL, napi_default, NULL},
      {"guardAnswer", NULL, guard_answer, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof *functions, functions) != napi_ok) return NULL;
  return exports;
}
