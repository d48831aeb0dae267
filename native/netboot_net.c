/*
 * netboot_net: the one socket call Node's dgram cannot make. A DHCP server on a
 * multi-homed host must bind 0.0.0.0:67 (broadcasts are delivered only to
 * wildcard sockets) yet hear and answer on one interface only, which needs
 * SO_BINDTODEVICE before bind(). We create and bind the socket here and hand
 * the fd to dgram.Socket#bind({ fd }); libuv owns and closes it from then on.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "netboot_net: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static const char *errno_code(int err) {
  switch (err) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error whose .code is the errno name (like Node's own socket errors) and .syscall the step. */
static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *detail) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, detail, strerror(err));
  napi_value code, text, error, sys, errnum;
  if (napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_error(env, code, text, &error) != napi_ok) {
    napi_throw_error(env, errno_code(err), msg);
    return NULL;
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys) == napi_ok)
    napi_set_named_property(env, error, "syscall", sys);
  if (napi_create_int32(env, -err, &errnum) == napi_ok) napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

/* Reads an optional property; *present is 0 when it is missing, undefined or null. */
static napi_status get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, int *present) {
  bool has = false;
  napi_status st = napi_has_named_property(env, obj, name, &has);
  if (st != napi_ok) return st;
  *present = 0;
  if (!has) return napi_ok;
  st = napi_get_named_property(env, obj, name, out);
  if (st != napi_ok) return st;
  napi_valuetype t;
  st = napi_typeof(env, *out, &t);
  if (st != napi_ok) return st;
  *present = t != napi_undefined && t != napi_null;
  return napi_ok;
}

/* openUdpSocket({ address, port, device?, broadcast?, reuseAddr? }) -> fd */
static napi_value open_udp_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  int present;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "openUdpSocket: expected an options object");
    return NULL;
  }

  char address[64] = "0.0.0.0";
  CHECK(get_prop(env, argv[0], "address", &v, &present));
  if (present) {
    size_t len;
    if (napi_get_value_string_utf8(env, v, address, sizeof address, &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "openUdpSocket: address must be a string");
      return NULL;
    }
  }

  int32_t port = -1;
  CHECK(get_prop(env, argv[0], "port", &v, &present));
  if (!present || napi_get_value_int32(env, v, &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_range_error(env, NULL, "openUdpSocket: port must be an integer 0-65535");
    return NULL;
  }

  char device[IF_NAMESIZE + 1] = "";
  size_t device_len = 0;
  CHECK(get_prop(env, argv[0], "device", &v, &present));
  if (present) {
    /* One byte more than IF_NAMESIZE so an over-long name is detected rather than truncated. */
    if (napi_get_value_string_utf8(env, v, device, sizeof device, &device_len) != napi_ok) {
      napi_throw_type_error(env, NULL, "openUdpSocket: device must be a string");
      return NULL;
    }
    if (device_len == 0 || device_len >= IF_NAMESIZE) {
      napi_throw_range_error(env, NULL, "openUdpSocket: device name must be 1-15 characters");
      return NULL;
    }
  }

  bool broadcast = false, reuse = false;
  CHECK(get_prop(env, argv[0], "broadcast", &v, &present));
  if (present) CHECK(napi_get_value_bool(env, v, &broadcast));
  CHECK(get_prop(env, argv[0], "reuseAddr", &v, &present));
  if (present) CHECK(napi_get_value_bool(env, v, &reuse));

  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address, &sin.sin_addr) != 1) {
    napi_throw_range_error(env, NULL, "openUdpSocket: address is not an IPv4 address");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", "AF_INET/SOCK_DGRAM");

  int one = 1;
  char detail[128];
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt", "SO_REUSEADDR");
  }
  if (broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt", "SO_BROADCAST");
  }
  if (device_len > 0 && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, device, (socklen_t)device_len) < 0) {
    int err = errno;
    close(fd);
    snprintf(detail, sizeof detail, "SO_BINDTODEVICE to interface \"%s\"%s", device,
             err == ENODEV ? " (no such interface)" : err == EPERM ? " (needs CAP_NET_RAW)" : "");
    return throw_errno(env, err, "setsockopt", detail);
  }
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    int err = errno;
    close(fd);
    snprintf(detail, sizeof detail, "%s:%d%s%s", address, port, device_len ? " on " : "", device);
    return throw_errno(env, err, "bind", detail);
  }

  napi_value result;
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    napi_throw_error(env, NULL, "openUdpSocket: cannot return the fd");
    return NULL;
  }
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openUdpSocket", NULL, open_udp_socket, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
