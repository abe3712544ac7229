// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the socket and relay bindings: argument checks that throw TypeError
// with a usage string, errno → Error with .code/.syscall, and sockaddr conversions.
#pragma once
#include <napi.h>
#include <sys/socket.h>
#include <string>

// From linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h, which clash with
// glibc's headers when included together.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace weft {

// An Error shaped like Node's system errors: .code (errno name), .errno (negative, as in
// libuv), .syscall, and .address/.port when given.
Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err, const std::string& address = "", int port = -1);
std::string ErrnoName(int err);

// Throws (as a pending JS exception, returns false) unless info[i] is an integer fd >= 0.
bool ArgFd(const Napi::CallbackInfo& info, size_t i, const char* usage, int* fd);
// An optional integer property in [lo, hi]; absent/undefined leaves *out unchanged.
bool OptInt(Napi::Object o, const char* key, int64_t lo, int64_t hi, const char* usage, int64_t* out, bool required = false);
bool OptBool(Napi::Object o, const char* key, const char* usage, bool* out);
bool OptString(Napi::Object o, const char* key, const char* usage, std::string* out, bool required = false);
void ThrowUsage(Napi::Env env, const char* usage, const std::string& what);

// Parses a numeric IPv4/IPv6 address (no names, no scope ids). Returns false if invalid.
bool ParseAddr(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len);
// sockaddr → { address, port, family }, unmapping ::ffff:a.b.c.d to IPv4.
Napi::Object SockAddrObject(Napi::Env env, const sockaddr_storage& ss);
std::string FormatAddr(const sockaddr_storage& ss);

}  // namespace weft
