// SPDX-License-Identifier: Apache-2.0
// Shared by bpf.cc and bpf_query.cc: an error that carries the errno name and the step.
#pragma once
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace weft {

class BpfError {
 public:
  BpfError(int err, std::string step, std::string detail)
      : code_(Name(err)), step_(std::move(step)), detail_(std::move(detail) + ": " + strerror(err)) {}
  BpfError(std::string code, std::string step, std::string detail)
      : code_(std::move(code)), step_(std::move(step)), detail_(std::move(detail)) {}
  Napi::Error ToNapi(Napi::Env env) const {
    Napi::Error e = Napi::Error::New(env, step_ + ": " + detail_);
    e.Set("code", code_);
    e.Set("syscall", step_);
    return e;
  }

 private:
  static std::string Name(int err) {
    const char* n = strerrorname_np(err);
    return n ? n : "E" + std::to_string(err);
  }
  std::string code_, step_, detail_;
};

}  // namespace weft
