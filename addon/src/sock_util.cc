// SPDX-License-Identifier: Apache-2.0
#include "sock_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <cmath>
#include <cstring>

namespace weft {

std::string ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n ? n : "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err, const std::string& address, int port) {
  std::string msg = std::string(syscall) + " " + ErrnoName(err) + " (" + strerror(err) + ")";
  if (!address.empty()) msg += " " + address + (port >= 0 ? ":" + std::to_string(port) : "");
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", ErrnoName(err));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", syscall);
  if (!address.empty()) e.Set("address", address);
  if (port >= 0) e.Set("port", Napi::Number::New(env, port));
  return e;
}

void ThrowUsage(Napi::Env env, const char* usage, const std::string& what) {
  Napi::TypeError::New(env, what + "; usage: " + usage).ThrowAsJavaScriptException();
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* usage, int* fd) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowUsage(info.Env(), usage, "fd must be a number");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 0x7fffffff || std::floor(d) != d) {
    ThrowUsage(info.Env(), usage, "fd must be an integer >= 0");
    return false;
  }
  *fd = static_cast<int>(d);
  return true;
}

bool OptInt(Napi::Object o, const char* key, int64_t lo, int64_t hi, const char* usage, int64_t* out, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (!required) return true;
    ThrowUsage(o.Env(), usage, std::string(key) + " is required");
    return false;
  }
  if (!v.IsNumber()) {
    ThrowUsage(o.Env(), usage, std::string(key) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || std::floor(d) != d) {
    ThrowUsage(o.Env(), usage,
               std::string(key) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool OptBool(Napi::Object o, const char* key, const char* usage, bool* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return true;
  if (!v.IsBoolean()) {
    ThrowUsage(o.Env(), usage, std::string(key) + " must be a boolean");
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool OptString(Napi::Object o, const char* key, const char* usage, std::string* out, bool required) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (!required) return true;
    ThrowUsage(o.Env(), usage, std::string(key) + " is required");
    return false;
  }
  if (!v.IsString()) {
    ThrowUsage(o.Env(), usage, std::string(key) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

bool ParseAddr(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Returns family 4 or 6 after unmapping, filling buf and port.
static int Decode(const sockaddr_storage& ss, char* buf, size_t buflen, int* port) {
  if (ss.ss_family == AF_INET) {
    auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s4->sin_addr, buf, buflen);
    *port = ntohs(s4->sin_port);
    return 4;
  }
  if (ss.ss_family == AF_INET6) {
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    *port = ntohs(s6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, buflen);
      return 4;
    }
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, buflen);
    return 6;
  }
  buf[0] = 0;
  *port = 0;
  return 0;
}

Napi::Object SockAddrObject(Napi::Env env, const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN];
  int port = 0;
  int family = Decode(ss, buf, sizeof(buf), &port);
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", buf);
  o.Set("port", Napi::Number::New(env, port));
  o.Set("family", Napi::Number::New(env, family));
  return o;
}

std::string FormatAddr(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN];
  int port = 0;
  int family = Decode(ss, buf, sizeof(buf), &port);
  return family == 6 ? "[" + std::string(buf) + "]:" + std::to_string(port) : std::string(buf) + ":" + std::to_string(port);
}

}  // namespace weft
