// SPDX-License-Identifier: Apache-2.0
// What Node's net module cannot do: transparent/marked listeners, the original destination
// of a redirected connection, socket cookies, RST on close, and marked/transparent connects.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "loop.h"
#include "sock_util.h"
#include "weft.h"

namespace weft {

static const char* kListenUsage =
    "listen({ host: string, port: number, transparent?: boolean, ipv6Only?: boolean, reuseAddr?: boolean, "
    "mark?: number, backlog?: number })";
static const char* kConnectUsage =
    "connect({ address: string, port: number, timeoutMs: number, mark?: number, bindAddress?: string, "
    "transparent?: boolean }, cb: (err, fd) => void)";

static int SetInt(int fd, int level, int opt, int v) { return setsockopt(fd, level, opt, &v, sizeof(v)); }

// Socket options common to listen and connect, applied before bind. Returns the failing
// syscall's errno (0 on success).
static int ApplyOptions(int fd, int family, bool transparent, uint32_t mark) {
  if (transparent) {
    int r = family == AF_INET ? SetInt(fd, SOL_IP, IP_TRANSPARENT, 1) : SetInt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1);
    if (r < 0) return errno;
  }
  if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) return errno;
  return 0;
}

static Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowUsage(env, kListenUsage, "opts must be an object");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string host;
  int64_t port = 0, mark = 0, backlog = 511;
  bool transparent = false, ipv6Only = true, reuseAddr = true;
  if (!OptString(o, "host", kListenUsage, &host, true) || !OptInt(o, "port", 0, 65535, kListenUsage, &port, true) ||
      !OptInt(o, "mark", 0, 0xffffffffLL, kListenUsage, &mark) ||
      !OptInt(o, "backlog", 0, 65535, kListenUsage, &backlog) || !OptBool(o, "transparent", kListenUsage, &transparent) ||
      !OptBool(o, "ipv6Only", kListenUsage, &ipv6Only) || !OptBool(o, "reuseAddr", kListenUsage, &reuseAddr))
    return env.Undefined();
  sockaddr_storage ss;
  socklen_t sl;
  if (!ParseAddr(host, static_cast<int>(port), &ss, &sl)) {
    ThrowUsage(env, kListenUsage, "host must be a numeric IPv4 or IPv6 address, got '" + host + "'");
    return env.Undefined();
  }
  int family = ss.ss_family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ErrnoError(env, "socket", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* syscall = "setsockopt";
  int err = 0;
  if (reuseAddr && SetInt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) err = errno;
  if (!err && family == AF_INET6 && SetInt(fd, SOL_IPV6, IPV6_V6ONLY, ipv6Only ? 1 : 0) < 0) err = errno;
  if (!err) err = ApplyOptions(fd, family, transparent, static_cast<uint32_t>(mark));
  if (!err && bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) < 0) err = errno, syscall = "bind";
  if (!err && ::listen(fd, static_cast<int>(backlog)) < 0) err = errno, syscall = "listen";
  if (err) {
    ::close(fd);
    ErrnoError(env, syscall, err, host, static_cast<int>(port)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

static Napi::Value Address(const Napi::CallbackInfo& info, bool peer) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, peer ? "remoteAddress(fd: number)" : "localAddress(fd: number)", &fd)) return env.Undefined();
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl)
               : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
  if (r < 0) {
    ErrnoError(env, peer ? "getpeername" : "getsockname", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
    ErrnoError(env, peer ? "getpeername" : "getsockname", EAFNOSUPPORT).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return SockAddrObject(env, ss);
}

static Napi::Value LocalAddress(const Napi::CallbackInfo& info) { return Address(info, false); }
static Napi::Value RemoteAddress(const Napi::CallbackInfo& info) { return Address(info, true); }

static Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const char* usage = "originalDst(fd: number, family: 4 | 6)";
  int fd;
  if (!ArgFd(info, 0, usage, &fd)) return env.Undefined();
  int family = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (family != 4 && family != 6) {
    ThrowUsage(env, usage, "family must be 4 or 6");
    return env.Undefined();
  }
  sockaddr_storage ss{};
  socklen_t sl = family == 4 ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  int r = family == 4 ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &sl)
                      : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &sl);
  if (r < 0) {
    // Not redirected (no conntrack entry), or the other family asked of this socket.
    if (errno == ENOENT || errno == ENOPROTOOPT || errno == EOPNOTSUPP) return env.Null();
    ErrnoError(env, "getsockopt", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return SockAddrObject(env, ss);
}

static Napi::Value SocketCookie(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "socketCookie(fd: number)", &fd)) return env.Undefined();
  uint64_t cookie = 0;
  socklen_t sl = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &sl) < 0) {
    ErrnoError(env, "getsockopt", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::BigInt::New(env, cookie);
}

static Napi::Value ResetAndClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, "resetAndClose(fd: number)", &fd)) return env.Undefined();
  linger l{1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0) {
    int err = errno;
    if (err != EBADF) ::close(fd);  // still release it: the caller is done with this fd
    ErrnoError(env, "setsockopt", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (::close(fd) < 0) {
    ErrnoError(env, "close", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return env.Undefined();
}

// One pending connect() on a worker: done when writable (connected or failed) or at the
// deadline; the result goes to its callback through its own ThreadSafeFunction.
struct ConnectOp final : PollEntry, Timed {
  int fd = -1;
  int err = 0;  // errno once finished (0: connected)
  const char* syscall = "connect";
  std::string address;
  int port = 0;
  uint32_t timeoutMs = 0;
  int64_t deadlineMs = INT64_MAX;
  Napi::ThreadSafeFunction tsfn;

  int64_t Due() const override { return deadlineMs; }
  void OnDue(Worker& w) override { Complete(w, ETIMEDOUT); }
  void OnEvent(Worker& w, uint32_t events) override {
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr == 0) {
      // Writable without an error can still be a spurious edge: make sure it is connected.
      sockaddr_storage ss;
      socklen_t sl = sizeof(ss);
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) {
        if (errno == ENOTCONN && !(events & (EPOLLERR | EPOLLHUP))) return;
        soerr = errno == ENOTCONN ? ECONNREFUSED : errno;
      }
    }
    Complete(w, soerr);
  }
  // Starts waiting on worker `w` (takes ownership of this).
  void Begin(Worker& w) {
    if (err != 0 || fd < 0) return Complete(w, err ? err : EBADF, false);
    deadlineMs = w.now() + timeoutMs;
    if (!w.Register(fd, EPOLLOUT | EPOLLET, this)) return Complete(w, errno, false);
    w.AddTimed(this);
  }
  void Complete(Worker& w, int e, bool registered = true) {
    if (registered) {
      w.Unregister(fd);
      w.RemoveTimed(this);
    }
    err = e;
    if (err && fd >= 0) {
      ::close(fd);
      fd = -1;
    }
    Deliver();
  }
  void Deliver() {
    Napi::ThreadSafeFunction t = tsfn;
    napi_status st = t.NonBlockingCall(this, [](Napi::Env env, Napi::Function cb, ConnectOp* op) {
      std::unique_ptr<ConnectOp> own(op);
      if (env == nullptr) {
        if (op->fd >= 0) ::close(op->fd);
        return;
      }
      if (op->err) {
        cb.Call({ErrnoError(env, op->syscall, op->err, op->address, op->port).Value(), Napi::Number::New(env, -1)});
      } else {
        cb.Call({env.Null(), Napi::Number::New(env, op->fd)});
      }
    });
    if (st != napi_ok) {
      if (fd >= 0) ::close(fd);
      delete this;
    }
    t.Release();
  }
};

// The socket is created and connect() started here (all non-blocking, so the JS thread
// never waits); a worker thread waits for completion or the deadline. Every system error,
// also from socket/setsockopt/bind, reaches the callback, never a throw.
static Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    ThrowUsage(env, kConnectUsage, "opts must be an object and cb a function");
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string address, bindAddress;
  int64_t port = 0, mark = 0, timeoutMs = 0;
  bool transparent = false;
  if (!OptString(o, "address", kConnectUsage, &address, true) ||
      !OptInt(o, "port", 1, 65535, kConnectUsage, &port, true) ||
      !OptInt(o, "timeoutMs", 1, 0x7fffffff, kConnectUsage, &timeoutMs, true) ||
      !OptInt(o, "mark", 0, 0xffffffffLL, kConnectUsage, &mark) ||
      !OptString(o, "bindAddress", kConnectUsage, &bindAddress) ||
      !OptBool(o, "transparent", kConnectUsage, &transparent))
    return env.Undefined();
  sockaddr_storage dst, src;
  socklen_t dstLen, srcLen = 0;
  if (!ParseAddr(address, static_cast<int>(port), &dst, &dstLen)) {
    ThrowUsage(env, kConnectUsage, "address must be a numeric IPv4 or IPv6 address, got '" + address + "'");
    return env.Undefined();
  }
  if (!bindAddress.empty()) {
    if (!ParseAddr(bindAddress, 0, &src, &srcLen)) {
      ThrowUsage(env, kConnectUsage, "bindAddress must be a numeric IPv4 or IPv6 address, got '" + bindAddress + "'");
      return env.Undefined();
    }
    if (src.ss_family != dst.ss_family) {
      ThrowUsage(env, kConnectUsage, "bindAddress and address must be of the same family");
      return env.Undefined();
    }
  }

  if (int err = PoolError(env)) {
    ErrnoError(env, "epoll_create1", err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto op = std::make_unique<ConnectOp>();
  op->address = address;
  op->port = static_cast<int>(port);
  op->timeoutMs = static_cast<uint32_t>(timeoutMs);
  op->tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "weft.connect", 0, 1);
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    op->err = errno;
    op->syscall = "socket";
  } else {
    int err = ApplyOptions(fd, dst.ss_family, transparent, static_cast<uint32_t>(mark));
    if (err) op->syscall = "setsockopt";
    if (!err && srcLen && bind(fd, reinterpret_cast<sockaddr*>(&src), srcLen) < 0) err = errno, op->syscall = "bind";
    if (!err && ::connect(fd, reinterpret_cast<sockaddr*>(&dst), dstLen) < 0 && errno != EINPROGRESS) err = errno;
    if (err) {
      ::close(fd);
      fd = -1;
    }
    op->fd = fd;
    op->err = err;
  }
  Worker* w = PickWorker();
  ConnectOp* raw = op.release();
  w->Post([raw, w] { raw->Begin(*w); });
  return env.Undefined();
}

void InitSockets(Napi::Env env, Napi::Object exports) {
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("localAddress", Napi::Function::New(env, LocalAddress, "localAddress"));
  exports.Set("remoteAddress", Napi::Function::New(env, RemoteAddress, "remoteAddress"));
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst, "originalDst"));
  exports.Set("socketCookie", Napi::Function::New(env, SocketCookie, "socketCookie"));
  exports.Set("resetAndClose", Napi::Function::New(env, ResetAndClose, "resetAndClose"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
}

}  // namespace weft
