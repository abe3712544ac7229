// SPDX-License-Identifier: Apache-2.0
// relay(downFd, upFd, head, tail, opts, done): validates, dup()s both sockets, makes the
// two pipes and hands the relay to a worker (loop.cc). The JS handle keeps the Relay alive
// for abort() and stats(); done() runs once on the JS thread through a ThreadSafeFunction.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "loop.h"
#include "sock_util.h"
#include "weft.h"

namespace weft {

static const char* kRelayUsage =
    "relay(downFd: number, upFd: number, head: Buffer | null, tail: Buffer | null, "
    "opts: { idleTimeoutMs: number, pipeSize?: number }, done: (r) => void)";

static const char* ReasonName(RelayReason r) {
  switch (r) {
    case RelayReason::kEof: return "eof";
    case RelayReason::kReset: return "reset";
    case RelayReason::kIdle: return "idle";
    case RelayReason::kError: return "error";
    case RelayReason::kAborted: return "aborted";
  }
  return "error";
}

struct RelayDone {
  std::shared_ptr<Relay> relay;
};

void DeliverRelayResult(std::shared_ptr<Relay> r) {
  auto* data = new RelayDone{r};
  napi_status st = r->tsfn.NonBlockingCall(data, [](Napi::Env env, Napi::Function done, RelayDone* d) {
    std::unique_ptr<RelayDone> own(d);
    if (env == nullptr) return;
    Relay* rl = own->relay.get();
    Napi::Object res = Napi::Object::New(env);
    res.Set("bytesUp", Napi::Number::New(env, static_cast<double>(rl->bytesUp.load())));
    res.Set("bytesDown", Napi::Number::New(env, static_cast<double>(rl->bytesDown.load())));
    res.Set("reason", ReasonName(rl->reason));
    if (rl->reason == RelayReason::kError && rl->err) res.Set("error", ErrnoName(rl->err));
    done.Call({res});
  });
  if (st != napi_ok) delete data;
  r->tsfn.Release();
}

// Takes a private reference to the socket: the relay owns its copy, whatever JS does next.
static int DupSocket(Napi::Env env, int fd, const char* which) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
    ErrnoError(env, "getsockopt", errno, which).ThrowAsJavaScriptException();
    return -1;
  }
  if (type != SOCK_STREAM) {
    ThrowUsage(env, kRelayUsage, std::string(which) + " must be a connected TCP socket");
    return -1;
  }
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) {
    ErrnoError(env, "dup", errno, which).ThrowAsJavaScriptException();
    return -1;
  }
  int fl = fcntl(d, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(d, F_SETFL, fl | O_NONBLOCK);
  // A relay forwards what it got at once: Nagle here would add the peers' delayed-ACK
  // stalls to request/response traffic that the endpoints themselves wrote promptly.
  int one = 1;
  setsockopt(d, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return d;
}

static bool MakePipe(Napi::Env env, Direction& d, size_t want) {
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
    ErrnoError(env, "pipe2", errno).ThrowAsJavaScriptException();
    return false;
  }
  d.pipeR = p[0];
  d.pipeW = p[1];
  // Above fs.pipe-max-size or pipe-user-pages-soft the kernel refuses (EPERM): keep the
  // default size then; the relay works with any capacity.
  fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(want));
  int cap = fcntl(p[1], F_GETPIPE_SZ);
  d.cap = cap > 0 ? static_cast<size_t>(cap) : 4096;
  return true;
}

static bool OptBuffer(Napi::Env env, Napi::Value v, const char* name, std::vector<char>* out) {
  if (v.IsNull() || v.IsUndefined()) return true;
  if (!v.IsBuffer()) {
    ThrowUsage(env, kRelayUsage, std::string(name) + " must be a Buffer or null");
    return false;
  }
  auto b = v.As<Napi::Buffer<char>>();
  out->assign(b.Data(), b.Data() + b.Length());
  return true;
}

static Napi::Value RelayFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int downFd, upFd;
  if (!ArgFd(info, 0, kRelayUsage, &downFd) || !ArgFd(info, 1, kRelayUsage, &upFd)) return env.Undefined();
  if (downFd == upFd) {
    ThrowUsage(env, kRelayUsage, "downFd and upFd must differ");
    return env.Undefined();
  }
  if (info.Length() < 6 || !info[4].IsObject() || !info[5].IsFunction()) {
    ThrowUsage(env, kRelayUsage, "opts must be an object and done a function");
    return env.Undefined();
  }
  auto r = std::make_shared<Relay>();
  if (!OptBuffer(env, info[2], "head", &r->dir[0].pre) || !OptBuffer(env, info[3], "tail", &r->dir[1].pre))
    return env.Undefined();
  Napi::Object opts = info[4].As<Napi::Object>();
  int64_t idle = 0, pipeSize = 65536;
  if (!OptInt(opts, "idleTimeoutMs", 0, 0x7fffffff, kRelayUsage, &idle, true) ||
      !OptInt(opts, "pipeSize", 4096, 64 << 20, kRelayUsage, &pipeSize))
    return env.Undefined();
  r->idleMs = static_cast<uint32_t>(idle);
  if (int err = PoolError()) {
    ErrnoError(env, "epoll_create1", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  if ((r->fd[0] = DupSocket(env, downFd, "downFd")) < 0) return env.Undefined();
  if ((r->fd[1] = DupSocket(env, upFd, "upFd")) < 0) return env.Undefined();
  for (int i = 0; i < 2; i++) {
    Direction& d = r->dir[i];
    d.src = r->fd[i];
    d.dst = r->fd[1 - i];
    d.bytes = i == 0 ? &r->bytesUp : &r->bytesDown;
    if (!MakePipe(env, d, static_cast<size_t>(pipeSize))) return env.Undefined();
  }
  r->tsfn = Napi::ThreadSafeFunction::New(env, info[5].As<Napi::Function>(), "weft.relay", 0, 1);

  Napi::Object handle = Napi::Object::New(env);
  // Each function holds its own reference: either may outlive the handle object.
  auto bind = [&](const char* name, Napi::Function::Callback cb) {
    auto* ref = new std::shared_ptr<Relay>(r);
    Napi::Function f = Napi::Function::New(env, cb, name, ref);
    f.AddFinalizer([](Napi::Env, std::shared_ptr<Relay>* p) { delete p; }, ref);
    handle.Set(name, f);
  };
  bind("abort", [](const Napi::CallbackInfo& ci) -> Napi::Value {
    AbortRelay(*static_cast<std::shared_ptr<Relay>*>(ci.Data()));
    return ci.Env().Undefined();
  });
  bind("stats", [](const Napi::CallbackInfo& ci) -> Napi::Value {
    Relay* rl = static_cast<std::shared_ptr<Relay>*>(ci.Data())->get();
    Napi::Object s = Napi::Object::New(ci.Env());
    s.Set("bytesUp", Napi::Number::New(ci.Env(), static_cast<double>(rl->bytesUp.load(std::memory_order_relaxed))));
    s.Set("bytesDown", Napi::Number::New(ci.Env(), static_cast<double>(rl->bytesDown.load(std::memory_order_relaxed))));
    return s;
  });
  SubmitRelay(std::move(r));
  return handle;
}

void InitRelay(Napi::Env env, Napi::Object exports) { exports.Set("relay", Napi::Function::New(env, RelayFn, "relay")); }

}  // namespace weft
