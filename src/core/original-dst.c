/*
 * getsockopt(SO_ORIGINAL_DST) for src/core/original-dst.ts, which Node has no API for.
 *
 * A native addon of its own rather than a foreign-function library: koffi, which called libc's
 * getsockopt before, added 3.5 MiB to an empty Node process (its 1.1 MB library, its relocations,
 * its type registry), this addon 0.3 MiB, and the agent's peak RSS has a budget (issue 5).
 * Built by `npm ci` (the package's install script, node-gyp with binding.gyp).
 */
#include <errno.h>
#include <node_api.h>
#include <sys/socket.h>

/* linux/netfilter_ipv4.h's SO_ORIGINAL_DST and linux/netfilter_ipv6/ip6_tables.h's IP6T_SO_ORIGINAL_DST. */
#define SO_ORIGINAL_DST 80

/*
 * originalDst(fd, level, buffer): asks the kernel for the pre-NAT destination of socket fd at
 * level SOL_IP or SOL_IPV6, writing a struct sockaddr into buffer. Returns the length written,
 * or -errno when the kernel refuses; throws a TypeError on arguments of the wrong type.
 */
static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  int32_t level;
  void *data;
  size_t capacity;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &level) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &data, &capacity) != napi_ok) {
    napi_throw_type_error(env, NULL, "originalDst(fd: number, level: number, buffer: Buffer)");
    return NULL;
  }
  socklen_t length = (socklen_t)capacity;
  int32_t result = getsockopt(fd, level, SO_ORIGINAL_DST, data, &length) == 0 ? (int32_t)length : -errno;
  napi_value out;
  napi_create_int32(env, result, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "originalDst", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}
