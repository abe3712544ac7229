// SPDX-License-Identifier: Apache-2.0
// connPool({ httpMethods, onEvents }): the proxy's native connection path. Listeners are
// accepted on worker threads; each accepted connection is reported to JS (which decides:
// original destination, loop, policy) and then started — detection, upstream connect and
// the splice relay all stay native — or reset. HTTP/1 connections come back to JS as fds.
// Events are batched: one onEvents(array) call per worker loop iteration.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "conn.h"
#include "loop.h"
#include "sock_util.h"
#include "weft.h"

namespace weft {

static const char* kPoolUsage = "connPool({ httpMethods: string[], onEvents: (events: object[]) => void })";
static const char* kListenUsage = "pool.listen(fd: number, direction: 0 | 1, dstMode: 0 | 1 | 2)";
static const char* kStartUsage =
    "pool.start(id: number, address: string, port: number, mark: number, connectTimeoutMs: number, "
    "detectTimeoutMs: number, idleTimeoutMs: number, handoff: boolean)";

enum EvType : uint8_t { kEvAccept = 0, kEvHttp = 1, kEvDetected = 2, kEvClosed = 3, kEvListenerClosed = 4, kEvAcceptError = 5 };

struct Ev {
  uint8_t type;
  uint8_t dir = 0;
  bool flag = false;  // accept: has a destination; detected: is HTTP
  EndReason reason = EndReason::kEof;
  uint32_t listener = 0;
  int err = 0;
  int fd0 = -1, fd1 = -1;
  uint64_t id = 0, up = 0, down = 0;
  sockaddr_storage src{}, dst{};
};

class Pool final : public ConnSink {
 public:
  Pool(Napi::Env env, Napi::Function onEvents, std::shared_ptr<const MethodTable> methods)
      : env_(env), methods_(std::move(methods)) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, onEvents, "weft.connPool", 0, 1);
    onEvents_ = Napi::Persistent(onEvents);
    // Deleting a reference is only safe on the JS thread while the environment lives; a
    // pool is made once per proxy, so it simply keeps its reference.
    onEvents_.SuppressDestruct();
  }

  std::shared_ptr<const MethodTable> methods() const { return methods_; }

  void OnAccepted(Conn& c) override {
    Ev e{kEvAccept};
    e.id = c.id;
    e.dir = c.direction;
    e.listener = c.listenerId;
    e.src = c.peer;
    e.flag = c.hasDst;
    if (c.hasDst) e.dst = c.dst;
    Push(e);
  }
  void OnHttp(Conn& c, int downFd, int upFd) override {
    Ev e{kEvHttp};
    e.id = c.id;
    e.fd0 = downFd;
    e.fd1 = upFd;
    Push(e);
  }
  void OnDetected(Conn& c, int downFd, bool http) override {
    Ev e{kEvDetected};
    e.id = c.id;
    e.fd0 = downFd;
    e.flag = http;
    Push(e);
  }
  void OnClosed(Conn& c) override {
    Ev e{kEvClosed};
    e.id = c.id;
    e.reason = c.reason;
    e.err = c.err;
    e.up = c.dir[0].bytes.load(std::memory_order_relaxed);
    e.down = c.dir[1].bytes.load(std::memory_order_relaxed);
    Push(e);
  }
  void OnListenerClosed(uint32_t id) override {
    Ev e{kEvListenerClosed};
    e.listener = id;
    Push(e);
  }
  void OnAcceptError(uint32_t id, int err) override {
    Ev e{kEvAcceptError};
    e.listener = id;
    e.err = err;
    Push(e);
  }

  void Flush(bool jsThread) override {
    auto* batch = new std::vector<Ev>();
    {
      std::lock_guard<std::mutex> g(mu_);
      batch->swap(pending_);
      if (batch->empty() || released_) return Discard(batch);
      if (!jsThread) {
        if (tsfn_.NonBlockingCall(batch, Deliver) != napi_ok) Discard(batch);
        return;
      }
    }
    // Inline worker: this is the JS thread, inside a libuv callback. Call JS now, so what it
    // decides (start, reset) is carried out before the worker goes back to sleep.
    // MakeCallback runs the microtasks and nextTicks JS queued, as any I/O callback does.
    Napi::HandleScope scope(env_);
    try {
      Napi::Array arr = Build(env_, *batch);
      delete batch;
      onEvents_.Value().MakeCallback(Napi::Env(env_).Global(), {arr});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env_, e.Value());
    }
  }

  // After this no event reaches JS (the pool is closed and every worker has let go).
  void Release() {
    std::lock_guard<std::mutex> g(mu_);
    if (released_) return;
    released_ = true;
    tsfn_.Release();
  }

  // JS-thread bookkeeping of this pool's listeners (id → its worker and object).
  struct ListenerRef {
    Worker* worker;
    Listener* listener;
  };
  std::unordered_map<uint32_t, ListenerRef> listeners;
  uint32_t nextListener = 0;
  bool closed = false;

 private:
  void Push(const Ev& e) {
    std::lock_guard<std::mutex> g(mu_);
    pending_.push_back(e);
  }

  // Handed-over fds that never reached JS (the environment is going away) must not leak.
  static void Discard(std::vector<Ev>* batch) {
    for (Ev& e : *batch) {
      if (e.fd0 >= 0) ::close(e.fd0);
      if (e.fd1 >= 0) ::close(e.fd1);
    }
    delete batch;
  }

  static Napi::Value Addr(Napi::Env env, const sockaddr_storage& ss, int* port) {
    char buf[INET6_ADDRSTRLEN];
    *port = 0;
    if (ss.ss_family == AF_INET) {
      auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
      *port = ntohs(s4->sin_port);
      return Napi::String::New(env, buf);
    }
    if (ss.ss_family == AF_INET6) {
      auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
      *port = ntohs(s6->sin6_port);
      if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, sizeof(buf));
      } else {
        inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
      }
      return Napi::String::New(env, buf);
    }
    return env.Null();
  }

  static void Deliver(Napi::Env env, Napi::Function onEvents, std::vector<Ev>* batch) {
    if (env == nullptr) return Discard(batch);
    std::unique_ptr<std::vector<Ev>> own(batch);
    onEvents.Call({Build(env, *batch)});
  }

  // The events as one flat array (see ConnEvents in addon/index.d.ts): an object per event
  // cost a property-name string per field. The fds of handed-over connections now belong to
  // the array.
  static Napi::Array Build(Napi::Env env, std::vector<Ev>& batch) {
    size_t len = 0;
    for (const Ev& e : batch) len += Stride(e.type);
    Napi::Array arr = Napi::Array::New(env, len);
    uint32_t i = 0;
    auto num = [&](double v) { arr.Set(i++, Napi::Number::New(env, v)); };
    auto val = [&](Napi::Value v) { arr.Set(i++, v); };
    for (Ev& e : batch) {
      num(e.type);
      switch (e.type) {
        case kEvAccept: {
          int sport, dport = 0;
          num(static_cast<double>(e.id));
          num(e.dir);
          val(Addr(env, e.src, &sport));
          num(sport);
          val(e.flag ? Addr(env, e.dst, &dport) : env.Null());
          num(dport);
          break;
        }
        case kEvHttp:
          num(static_cast<double>(e.id));
          num(e.fd0);
          num(e.fd1);
          e.fd0 = e.fd1 = -1;
          break;
        case kEvDetected:
          num(static_cast<double>(e.id));
          num(e.fd0);
          num(e.flag ? 1 : 0);
          e.fd0 = -1;
          break;
        case kEvClosed:
          num(static_cast<double>(e.id));
          val(Napi::String::New(env, EndReasonName(e.reason)));
          val(e.err ? Napi::String::New(env, ErrnoName(e.err)) : env.Null());
          num(static_cast<double>(e.up));
          num(static_cast<double>(e.down));
          break;
        case kEvListenerClosed:
          num(e.listener);
          break;
        case kEvAcceptError:
          num(e.listener);
          val(Napi::String::New(env, ErrnoName(e.err)));
          break;
      }
    }
    return arr;
  }

  static size_t Stride(uint8_t type) {
    switch (type) {
      case kEvAccept: return 7;
      case kEvHttp: return 4;
      case kEvDetected: return 4;
      case kEvClosed: return 6;
      case kEvListenerClosed: return 2;
      default: return 3;
    }
  }

  napi_env env_;
  Napi::ThreadSafeFunction tsfn_;  // worker threads deliver through it; it also keeps Node alive while open
  Napi::FunctionReference onEvents_;
  std::shared_ptr<const MethodTable> methods_;
  std::mutex mu_;
  std::vector<Ev> pending_;
  bool released_ = false;
};

static std::shared_ptr<Pool>& PoolOf(const Napi::CallbackInfo& info) { return *static_cast<std::shared_ptr<Pool>*>(info.Data()); }

static bool ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* usage, const char* name, double lo, double hi, double* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowUsage(info.Env(), usage, std::string(name) + " must be a number");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d) {
    ThrowUsage(info.Env(), usage, std::string(name) + " must be an integer in " + std::to_string(static_cast<int64_t>(lo)) + ".." + std::to_string(static_cast<int64_t>(hi)));
    return false;
  }
  *out = d;
  return true;
}

// listen(fd, direction, dstMode) → listener id. The pool owns the fd from here on.
static Napi::Value PoolListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& pool = PoolOf(info);
  int fd;
  double dir, mode;
  if (!ArgFd(info, 0, kListenUsage, &fd) || !ArgNumber(info, 1, kListenUsage, "direction", 0, 1, &dir) ||
      !ArgNumber(info, 2, kListenUsage, "dstMode", 0, 2, &mode))
    return env.Undefined();
  if (pool->closed) {
    ThrowUsage(env, kListenUsage, "the pool is closed");
    return env.Undefined();
  }
  // Accepted sockets inherit TCP_NODELAY from their listener: set it once here, not per
  // connection. A relay forwards what it got at once; Nagle would only add the peers'
  // delayed-ACK stalls to request/response traffic.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto* l = new Listener();
  l->id = ++pool->nextListener;
  l->fd = fd;
  l->direction = static_cast<uint8_t>(dir);
  l->dstMode = mode == 0 ? DstMode::kLocal : mode == 1 ? DstMode::kSockopt : DstMode::kSockoptOrLocal;
  l->sink = pool;
  l->methods = pool->methods();
  Worker* w = PickWorker();
  pool->listeners[l->id] = {w, l};
  w->Post([w, l] {
    if (!w->Register(l->fd, EPOLLIN, l)) {
      l->sink->OnAcceptError(l->id, errno);
      w->Dirty(l->sink.get());
      l->paused = true;
    }
    w->AddListener(l);
  });
  return Napi::Number::New(env, l->id);
}

static void CloseListenerOn(Worker* w, Listener* l) {
  w->Post([w, l] {
    w->Unregister(l->fd);
    w->RemoveListener(l);
    ::close(l->fd);
    l->sink->OnListenerClosed(l->id);
    w->Dirty(l->sink.get());
    // The sink must outlive the flush at the end of this iteration: the pool holds it.
    auto keep = l->sink;
    delete l;
    w->Post([keep] {});
  });
}

// unlisten(listenerId): stop accepting and close the listening fd; a 'listenerClosed' event
// follows once it is closed.
static Napi::Value PoolUnlisten(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& pool = PoolOf(info);
  double id;
  if (!ArgNumber(info, 0, "pool.unlisten(listenerId: number)", "listenerId", 1, 4294967295.0, &id)) return env.Undefined();
  auto it = pool->listeners.find(static_cast<uint32_t>(id));
  if (it == pool->listeners.end()) return env.Undefined();
  CloseListenerOn(it->second.worker, it->second.listener);
  pool->listeners.erase(it);
  return env.Undefined();
}

static Napi::Value PoolStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double id, port, mark, connectMs, detectMs, idleMs;
  if (!ArgNumber(info, 0, kStartUsage, "id", 1, 9007199254740991.0, &id)) return env.Undefined();
  if (info.Length() < 8 || !info[1].IsString() || !info[7].IsBoolean()) {
    ThrowUsage(env, kStartUsage, "address must be a string and handoff a boolean");
    return env.Undefined();
  }
  if (!ArgNumber(info, 2, kStartUsage, "port", 0, 65535, &port) || !ArgNumber(info, 3, kStartUsage, "mark", 0, 4294967295.0, &mark) ||
      !ArgNumber(info, 4, kStartUsage, "connectTimeoutMs", 1, 2147483647, &connectMs) ||
      !ArgNumber(info, 5, kStartUsage, "detectTimeoutMs", 0, 2147483647, &detectMs) ||
      !ArgNumber(info, 6, kStartUsage, "idleTimeoutMs", 0, 2147483647, &idleMs))
    return env.Undefined();
  StartParams p;
  p.handoff = info[7].As<Napi::Boolean>().Value();
  if (!p.handoff) {
    std::string address = info[1].As<Napi::String>().Utf8Value();
    if (!ParseAddr(address, static_cast<int>(port), &p.dst, &p.dstLen)) {
      ThrowUsage(env, kStartUsage, "address must be a numeric IPv4 or IPv6 address, got '" + address + "'");
      return env.Undefined();
    }
  }
  p.mark = static_cast<uint32_t>(mark);
  p.connectTimeoutMs = static_cast<uint32_t>(connectMs);
  p.detectTimeoutMs = static_cast<uint32_t>(detectMs);
  p.idleMs = static_cast<uint32_t>(idleMs);
  auto cid = static_cast<uint64_t>(id);
  Worker* w = WorkerOf(cid);
  if (w == nullptr) return env.Undefined();
  w->Post([w, cid, p] {
    if (Conn* c = w->FindConn(cid)) StartConn(*w, c, p);
  });
  return env.Undefined();
}

// reset(id, silent): refuse (before start) or abort (after) with RST. A refused connection
// gets no 'closed' event when silent (JS has accounted for it already).
static Napi::Value PoolReset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double id;
  if (!ArgNumber(info, 0, "pool.reset(id: number, silent?: boolean)", "id", 1, 9007199254740991.0, &id)) return env.Undefined();
  bool silent = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  auto cid = static_cast<uint64_t>(id);
  Worker* w = WorkerOf(cid);
  if (w == nullptr) return env.Undefined();
  w->Post([w, cid, silent] {
    if (Conn* c = w->FindConn(cid)) ResetConn(*w, c, silent);
  });
  return env.Undefined();
}

// close(): every listener closed and every connection of this pool reset, then no more
// events (the ThreadSafeFunction is released once all workers are done).
static Napi::Value PoolClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& pool = PoolOf(info);
  if (pool->closed) return env.Undefined();
  pool->closed = true;
  for (auto& [id, ref] : pool->listeners) CloseListenerOn(ref.worker, ref.listener);
  pool->listeners.clear();
  size_t n = PoolSize();
  auto remaining = std::make_shared<std::atomic<size_t>>(n);
  std::shared_ptr<Pool> keep = pool;
  for (size_t i = 0; i < n; i++) {
    Worker* w = WorkerOf(i);
    w->Post([w, keep, remaining] {
      w->ForEachConn([&](Conn* c) {
        if (c->sink.get() == keep.get()) ResetConn(*w, c, true);
      });
      // After this iteration's flush: queue the release behind it.
      w->Post([keep, remaining] {
        if (remaining->fetch_sub(1) == 1) keep->Release();
      });
    });
  }
  return env.Undefined();
}

static Napi::Value ConnPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowUsage(env, kPoolUsage, "opts must be an object");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value methodsV = o.Get("httpMethods");
  Napi::Value cb = o.Get("onEvents");
  if (!methodsV.IsArray() || !cb.IsFunction()) {
    ThrowUsage(env, kPoolUsage, "httpMethods must be an array of strings and onEvents a function");
    return env.Undefined();
  }
  auto methods = std::make_shared<MethodTable>();
  Napi::Array arr = methodsV.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value m = arr.Get(i);
    if (!m.IsString() || m.As<Napi::String>().Utf8Value().empty() || m.As<Napi::String>().Utf8Value().size() > 15) {
      ThrowUsage(env, kPoolUsage, "httpMethods[" + std::to_string(i) + "] must be a string of 1 to 15 bytes");
      return env.Undefined();
    }
    methods->push_back(m.As<Napi::String>().Utf8Value());
  }
  if (int err = PoolError(env)) {
    ErrnoError(env, "epoll_create1", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto pool = std::make_shared<Pool>(env, cb.As<Napi::Function>(), std::move(methods));
  Napi::Object handle = Napi::Object::New(env);
  auto bind = [&](const char* name, Napi::Function::Callback fn) {
    auto* ref = new std::shared_ptr<Pool>(pool);
    Napi::Function f = Napi::Function::New(env, fn, name, ref);
    f.AddFinalizer([](Napi::Env, std::shared_ptr<Pool>* p) { delete p; }, ref);
    handle.Set(name, f);
  };
  bind("listen", PoolListen);
  bind("unlisten", PoolUnlisten);
  bind("start", PoolStart);
  bind("reset", PoolReset);
  bind("close", PoolClose);
  return handle;
}

void InitPool(Napi::Env env, Napi::Object exports) { exports.Set("connPool", Napi::Function::New(env, ConnPool, "connPool")); }

}  // namespace weft
