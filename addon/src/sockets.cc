// SPDX-License-Identifier: Apache-2.0
#include "weft.h"

namespace weft {
void InitSockets(Napi::Env, Napi::Object) {}
}  // namespace weft
