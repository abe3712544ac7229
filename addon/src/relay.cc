// SPDX-License-Identifier: Apache-2.0
// relay(downFd, upFd, head, tail, opts, done): validates, dup()s both sockets and hands
// them to a worker as a connection already relaying (conn.cc). The JS handle keeps the
// connection alive for abort() and stats(); done() runs once on the JS thread through a
// ThreadSafeFunction. The proxy's own accepted connections use the pool instead (pool.cc).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "conn.h"
#include "loop.h"
#include "sock_util.h"
#include "weft.h"

namespace weft {

static const char* kRelayUsage =
    "relay(downFd: number, upFd: number, head: Buffer | null, tail: Buffer | null, "
    "opts: { idleTimeoutMs: number, pipeSize?: number }, done: (r) => void)";

// The sink of one relay() call: its result goes to its own `done` callback.
class RelaySink final : public ConnSink {
 public:
  explicit RelaySink(Napi::ThreadSafeFunction tsfn) : tsfn_(std::move(tsfn)) {}
  void OnAccepted(Conn&) override {}
  void OnHttp(Conn&, int, int) override {}
  void OnDetected(Conn&, int, bool) override {}
  void OnListenerClosed(uint32_t) override {}
  void OnAcceptError(uint32_t, int) override {}
  void OnClosed(Conn& c) override {
    result_ = {c.dir[0].bytes.load(), c.dir[1].bytes.load(), c.reason, c.err};
    done_ = true;
  }
  void Flush(bool) override {
    if (!done_ || delivered_) return;
    delivered_ = true;
    auto* data = new Result(result_);
    napi_status st = tsfn_.NonBlockingCall(data, [](Napi::Env env, Napi::Function done, Result* r) {
      std::unique_ptr<Result> own(r);
      if (env == nullptr) return;
      Napi::Object res = Napi::Object::New(env);
      res.Set("bytesUp", Napi::Number::New(env, static_cast<double>(r->up)));
      res.Set("bytesDown", Napi::Number::New(env, static_cast<double>(r->down)));
      res.Set("reason", EndReasonName(r->reason));
      if (r->reason == EndReason::kError && r->err) res.Set("error", ErrnoName(r->err));
      done.Call({res});
    });
    if (st != napi_ok) delete data;
    tsfn_.Release();
  }

 private:
  struct Result {
    uint64_t up, down;
    EndReason reason;
    int err;
  };
  Napi::ThreadSafeFunction tsfn_;
  Result result_{};
  bool done_ = false, delivered_ = false;
};

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
  auto c = std::make_shared<Conn>();
  if (!OptBuffer(env, info[2], "head", &c->dir[0].pre) || !OptBuffer(env, info[3], "tail", &c->dir[1].pre))
    return env.Undefined();
  Napi::Object opts = info[4].As<Napi::Object>();
  int64_t idle = 0, pipeSize = 65536;
  if (!OptInt(opts, "idleTimeoutMs", 0, 0x7fffffff, kRelayUsage, &idle, true) ||
      !OptInt(opts, "pipeSize", 4096, 64 << 20, kRelayUsage, &pipeSize))
    return env.Undefined();
  c->idleMs = static_cast<uint32_t>(idle);
  c->pipeSize = static_cast<uint32_t>(pipeSize);
  if (int err = PoolError(env)) {
    ErrnoError(env, "epoll_create1", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if ((c->fd[0] = DupSocket(env, downFd, "downFd")) < 0) return env.Undefined();
  if ((c->fd[1] = DupSocket(env, upFd, "upFd")) < 0) return env.Undefined();
  Worker* w = PickWorker();
  c->sink = std::make_shared<RelaySink>(Napi::ThreadSafeFunction::New(env, info[5].As<Napi::Function>(), "weft.relay", 0, 1));

  Napi::Object handle = Napi::Object::New(env);
  // Each function holds its own reference: either may outlive the handle object.
  struct Ref {
    std::shared_ptr<Conn> conn;
    Worker* worker;
  };
  auto bind = [&](const char* name, Napi::Function::Callback cb) {
    auto* ref = new Ref{c, w};
    Napi::Function f = Napi::Function::New(env, cb, name, ref);
    f.AddFinalizer([](Napi::Env, Ref* p) { delete p; }, ref);
    handle.Set(name, f);
  };
  bind("abort", [](const Napi::CallbackInfo& ci) -> Napi::Value {
    auto* ref = static_cast<Ref*>(ci.Data());
    if (!ref->conn->finished.load()) {
      std::shared_ptr<Conn> conn = ref->conn;
      Worker* wk = ref->worker;
      wk->Post([conn, wk] { ResetConn(*wk, conn.get(), false); });
    }
    return ci.Env().Undefined();
  });
  bind("stats", [](const Napi::CallbackInfo& ci) -> Napi::Value {
    Conn* cn = static_cast<Ref*>(ci.Data())->conn.get();
    Napi::Object s = Napi::Object::New(ci.Env());
    s.Set("bytesUp", Napi::Number::New(ci.Env(), static_cast<double>(cn->dir[0].bytes.load(std::memory_order_relaxed))));
    s.Set("bytesDown", Napi::Number::New(ci.Env(), static_cast<double>(cn->dir[1].bytes.load(std::memory_order_relaxed))));
    return s;
  });
  w->Post([c, w]() mutable { AdoptRelay(*w, std::move(c)); });
  return handle;
}

void InitRelay(Napi::Env env, Napi::Object exports) { exports.Set("relay", Napi::Function::New(env, RelayFn, "relay")); }

}  // namespace weft
