// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <napi.h>

#define WEFT_NATIVE_VERSION "0.1.0"

namespace weft {
// sockets.cc: listen, localAddress, remoteAddress, originalDst, socketCookie, connect, resetAndClose
void InitSockets(Napi::Env env, Napi::Object exports);
// relay.cc: relay (splice on native threads)
void InitRelay(Napi::Env env, Napi::Object exports);
// pool.cc: connPool (native accept, detection, connect and relay for the proxy)
void InitPool(Napi::Env env, Napi::Object exports);
// bpf.cc: the eBPF loader (exports.bpf)
void InitBpf(Napi::Env env, Napi::Object exports);
}  // namespace weft
