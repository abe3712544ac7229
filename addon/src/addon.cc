// SPDX-License-Identifier: Apache-2.0
// Module entry: each concern registers its functions from its own file.
#include <napi.h>
#include "loop.h"
#include "weft.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, WEFT_NATIVE_VERSION));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("pipePoolMax", Napi::Number::New(env, static_cast<double>(weft::kMaxPooledPipes)));
  weft::InitSockets(env, exports);
  weft::InitRelay(env, exports);
  weft::InitPool(env, exports);
  weft::InitBpf(env, exports);
  return exports;
}

NODE_API_MODULE(weft_native, Init)
