// SPDX-License-Identifier: Apache-2.0
// The connection state machine of conn.h, on its worker thread. Sockets are edge-triggered
// for IN|OUT|RDHUP; a relay direction stops only on EAGAIN (its source empty or its
// destination full), so the next edge on either socket resumes it. Backpressure comes from
// the pipe: nothing is read while the pipe still holds bytes the destination refused, so
// memory per connection is bounded by the pipe capacity. The pump allocates nothing.
#include "conn.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "sock_util.h"

namespace weft {

static constexpr uint32_t kSockEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
static constexpr size_t kPipeSize = 65536;
static constexpr size_t kPeekBytes = 16;

const char* EndReasonName(EndReason r) {
  switch (r) {
    case EndReason::kEof: return "eof";
    case EndReason::kReset: return "reset";
    case EndReason::kIdle: return "idle";
    case EndReason::kError: return "error";
    case EndReason::kAborted: return "aborted";
    case EndReason::kConnectRefused: return "connect_refused";
    case EndReason::kConnectTimeout: return "connect_timeout";
    case EndReason::kConnectError: return "connect_error";
  }
  return "error";
}

static void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

static void SetRstOnClose(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static EndReason ConnectReason(int err) {
  return err == ECONNREFUSED ? EndReason::kConnectRefused : err == ETIMEDOUT ? EndReason::kConnectTimeout : EndReason::kConnectError;
}

int ClassifyFirstBytes(const MethodTable& methods, const char* buf, size_t n) {
  bool prefix = false;
  size_t longest = 0;
  for (const std::string& m : methods) {
    longest = std::max(longest, m.size());
    size_t k = std::min(m.size(), n);
    if (std::memcmp(buf, m.data(), k) != 0) continue;
    if (k == m.size()) return 1;
    prefix = true;
  }
  return prefix && n < longest ? -1 : 0;
}

Conn::Conn() {
  for (int s = 0; s < 2; s++) {
    side[s].conn = this;
    side[s].s = s;
  }
}

Conn::~Conn() {
  // Normally closed by FinishConn; this covers a connection that never reached a worker.
  for (auto& f : fd) CloseFd(f);
  for (auto& d : dir) {
    CloseFd(d.pipeR);
    CloseFd(d.pipeW);
  }
}

int64_t Conn::Due() const {
  if (phase == Phase::kStarting) return std::min(detecting ? detectDeadline : INT64_MAX, connecting ? connectDeadline : INT64_MAX);
  if (phase == Phase::kRelaying && idleMs) return lastActive + idleMs;
  return INT64_MAX;
}

static void Advance(Worker& w, Conn* c);

void Conn::OnDue(Worker& w) {
  int64_t now = w.now();
  if (phase == Phase::kStarting) {
    if (connecting && connectDeadline <= now) return FinishConn(w, this, EndReason::kConnectTimeout, ETIMEDOUT);
    if (detecting && detectDeadline <= now) {
      // Nothing recognisable in time (a client waiting for a banner, or a slow one): opaque.
      detecting = false;
      decided = true;
      isHttp = false;
      Advance(w, this);
    }
    return;
  }
  if (phase == Phase::kRelaying && idleMs && lastActive + idleMs <= now) FinishConn(w, this, EndReason::kIdle, 0);
}

void FinishConn(Worker& w, Conn* c, EndReason reason, int err) {
  if (c->phase == Conn::Phase::kDone) return;
  if (c->phase == Conn::Phase::kAccepted) w.NoteDecided();
  c->phase = Conn::Phase::kDone;
  c->reason = reason;
  c->err = err;
  for (int s = 0; s < 2; s++) {
    if (c->fd[s] < 0) continue;
    // close() drops a sole fd from the epoll set by itself: one syscall less per side.
    if (c->registered[s] && c->shared) w.Unregister(c->fd[s]);
    c->registered[s] = false;
    // Anything but a clean close in both directions is propagated as RST.
    if (reason != EndReason::kEof) SetRstOnClose(c->fd[s]);
    CloseFd(c->fd[s]);
  }
  for (auto& d : c->dir) {
    if (d.pipeR >= 0 && d.inPipe == 0 && d.cap == kPipeSize) {
      w.ReturnPipe(d.pipeR, d.pipeW, d.cap);
      d.pipeR = d.pipeW = -1;
    }
    CloseFd(d.pipeR);
    CloseFd(d.pipeW);
    std::vector<char>().swap(d.pre);
  }
  c->finished.store(true);
  if (!c->silent) {
    c->sink->OnClosed(*c);
    w.Dirty(c->sink.get());
  }
  w.DropConn(c);
}

void ResetConn(Worker& w, Conn* c, bool silent) {
  c->silent = silent && c->phase == Conn::Phase::kAccepted;
  FinishConn(w, c, EndReason::kAborted, 0);
}

static bool Fail(Worker& w, Conn* c, int err) {
  bool reset = err == ECONNRESET || err == EPIPE;
  FinishConn(w, c, reset ? EndReason::kReset : EndReason::kError, reset ? 0 : err);
  return false;
}

static bool MakePipe(Worker& w, Dir& d, size_t want);

// Sends what `d.pre` holds (bytes read but not yet taken by the destination). Returns 1 when
// it is empty, 0 when the destination is full (wait for its EPOLLOUT), -1 when the connection
// ended.
static int FlushPre(Worker& w, Conn* c, Dir& d) {
  while (d.preOff < d.pre.size()) {
    ssize_t n = ::send(d.dst, d.pre.data() + d.preOff, d.pre.size() - d.preOff, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      d.preOff += static_cast<size_t>(n);
      d.bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      c->lastActive = w.now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    Fail(w, c, n < 0 ? errno : EIO);
    return -1;
  }
  d.pre.clear();
  d.preOff = 0;
  return 1;
}

// Moves bytes for one direction until it would block. Returns false if the connection ended.
//
// Two ways, per direction. Messages (the start, and whatever comes in pieces smaller than the
// buffer) go recv → send through the worker's buffer: for request/response traffic that is
// the cheapest path (splice's pipe bookkeeping costs more than copying a few KiB), and a short
// recv from a TCP socket takes everything queued, so no EAGAIN probe is needed — whatever
// arrives later raises a new edge. A hang-up in the event (`probe`) is the exception: its FIN
// would raise no new edge, so then reads go on to EOF. A read that fills the whole buffer
// marks a bulk stream, which moves to splice through a pipe (zero-copy; reads there go on
// until EAGAIN, since a short splice proves nothing: it fills at most the pipe's 16 slots).
// Unsent bytes wait in `pre`, and nothing more is read until they are gone, so memory per
// direction is bounded either way (the buffer, or the pipe).
static bool Pump(Worker& w, Conn* c, Dir& d, bool probe) {
  if (d.done) return true;
  Dir& other = &d == &c->dir[0] ? c->dir[1] : c->dir[0];
  for (;;) {
    int f = FlushPre(w, c, d);
    if (f <= 0) return f == 0;
    while (d.inPipe > 0) {
      ssize_t n = splice(d.pipeR, nullptr, d.dst, nullptr, d.inPipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        d.inPipe -= static_cast<size_t>(n);
        d.bytes.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        c->lastActive = w.now();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      return Fail(w, c, n < 0 ? errno : EIO);
    }
    if (d.eof) {
      // Half-close: the source is done and everything it sent is forwarded. When the other
      // direction is done too, the close that follows sends this FIN.
      if (!other.done) ::shutdown(d.dst, SHUT_WR);
      d.done = true;
      return true;
    }
    if (d.pipeR < 0) {
      char* buf = w.scratch();
      ssize_t n = ::recv(d.src, buf, Worker::kScratch, MSG_DONTWAIT);
      if (n > 0) {
        c->lastActive = w.now();
        ssize_t sent = ::send(d.dst, buf, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno != EAGAIN && errno != EINTR) return Fail(w, c, errno);
        if (sent < 0) sent = 0;
        d.bytes.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
        if (sent < n) {
          d.pre.assign(buf + sent, buf + n);
          d.preOff = 0;
          return true;  // the destination's EPOLLOUT resumes this direction
        }
        if (static_cast<size_t>(n) == Worker::kScratch) {
          // A full buffer: a bulk stream. Splice from here on, if a pipe can be had.
          if (MakePipe(w, d, c->pipeSize)) continue;
          d.pipeR = d.pipeW = -1;
          continue;
        }
        if (!probe) return true;
        continue;
      }
      if (n == 0) {
        d.eof = true;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      return Fail(w, c, errno);
    }
    ssize_t n = splice(d.src, nullptr, d.pipeW, nullptr, d.cap, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
      d.inPipe = static_cast<size_t>(n);
      c->lastActive = w.now();
      continue;
    }
    if (n == 0) {
      d.eof = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return true;
    return Fail(w, c, errno);
  }
}

static bool MakePipe(Worker& w, Dir& d, size_t want) {
  if (want == kPipeSize && w.TakePipe(&d.pipeR, &d.pipeW, &d.cap)) return true;
  int p[2];
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return false;
  d.pipeR = p[0];
  d.pipeW = p[1];
  // Above fs.pipe-max-size or pipe-user-pages-soft the kernel refuses (EPERM): keep the
  // default size then; the relay works with any capacity.
  fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(want));
  int cap = fcntl(p[1], F_GETPIPE_SZ);
  d.cap = cap > 0 ? static_cast<size_t>(cap) : 4096;
  return true;
}

// Pipes come later, only for a direction that turns out to be a bulk stream (Pump).
static void SetupDirs(Conn* c) {
  for (int i = 0; i < 2; i++) {
    c->dir[i].src = c->fd[i];
    c->dir[i].dst = c->fd[1 - i];
  }
}

static void BeginRelay(Worker& w, Conn* c) {
  c->phase = Conn::Phase::kRelaying;
  c->lastActive = w.now();
  SetupDirs(c);
  if (c->idleMs) w.Wake(c->Due());
  // Bytes may wait on either side already (the peeked request, a server's banner): pump now
  // rather than at the next edge, which may never come. A side that raised no edge yet has
  // nothing to read: its first edge starts it.
  for (int s = 0; s < 2; s++) {
    bool any = c->sawIn[s] || c->sawHup[s];
    if (any && !Pump(w, c, c->dir[s], c->sawHup[s])) return;
  }
  if (c->dir[0].done && c->dir[1].done) FinishConn(w, c, EndReason::kEof, 0);
}

static void HandOver(Worker& w, Conn* c) {
  for (int s = 0; s < 2; s++) {
    if (c->fd[s] >= 0 && c->registered[s]) w.Unregister(c->fd[s]);
    c->registered[s] = false;
  }
  int down = c->fd[0], up = c->fd[1];
  c->fd[0] = c->fd[1] = -1;  // JS owns them now
  c->phase = Conn::Phase::kDone;
  c->finished.store(true);
  if (c->handoff) c->sink->OnDetected(*c, down, c->isHttp);
  else c->sink->OnHttp(*c, down, up);
  w.Dirty(c->sink.get());
  w.DropConn(c);
}

static void Advance(Worker& w, Conn* c) {
  if (c->phase != Conn::Phase::kStarting || !c->decided) return;
  if (c->handoff) return HandOver(w, c);
  if (!c->connected) return;
  if (c->isHttp) return HandOver(w, c);
  BeginRelay(w, c);
}

// MSG_PEEK of the client's first bytes: the bytes stay in the socket for whoever reads next.
static void Peek(Worker& w, Conn* c) {
  char buf[kPeekBytes];
  ssize_t n = recv(c->fd[0], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) {
    int k = ClassifyFirstBytes(*c->methods, buf, static_cast<size_t>(n));
    if (k < 0) return;  // a prefix of a method: wait for more (the next edge), within the timeout
    c->isHttp = k == 1;
  } else if (n == 0) {
    c->isHttp = false;  // FIN before a byte: the relay passes the FIN on
  } else {
    if (errno == EAGAIN || errno == EINTR) return;
    Fail(w, c, errno);
    return;
  }
  c->detecting = false;
  c->decided = true;
}

static void OnStartingEvent(Worker& w, Conn* c, int s, uint32_t events) {
  if (events & EPOLLIN) c->sawIn[s] = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->sawHup[s] = true;
  if (s == 1) {
    if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      // A connecting socket turns writable only once connected; a failed connect raises
      // EPOLLERR (with the reason in SO_ERROR). So OUT without ERR/HUP needs no syscall.
      if (events & (EPOLLERR | EPOLLHUP)) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
        if (soerr == 0) soerr = ECONNREFUSED;  // HUP before connecting: refused
        return FinishConn(w, c, ConnectReason(soerr), soerr);
      }
      c->connecting = false;
      c->connected = true;
      c->connectDeadline = INT64_MAX;
    }
    // The server spoke (or closed) first: not a client-speaks-first protocol, so opaque.
    if (c->connected && c->detecting && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
      c->detecting = false;
      c->decided = true;
      c->isHttp = false;
    }
  } else {
    if (events & EPOLLERR) {
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (getsockopt(c->fd[0], SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
        Fail(w, c, soerr);
        return;
      }
    }
    if (c->detecting && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) Peek(w, c);
    if (c->phase == Conn::Phase::kDone) return;
  }
  Advance(w, c);
}

static void OnRelayEvent(Worker& w, Conn* c, int s, uint32_t events) {
  if (events & EPOLLERR) {
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd[s], SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
      Fail(w, c, soerr);
      return;
    }
  }
  // Direction s reads this socket and stalls only on its EPOLLIN; direction 1-s writes it and
  // stalls only on its EPOLLOUT. Pumping just what the event can have unblocked saves a
  // syscall per event on the latency path.
  constexpr uint32_t kAny = EPOLLERR | EPOLLHUP;
  bool hangup = events & (EPOLLRDHUP | kAny);
  if ((events & (EPOLLIN | EPOLLRDHUP | kAny)) && !Pump(w, c, c->dir[s], hangup)) return;
  // Writable again: a direction that was stalled on this socket resumes, and reads on to
  // EAGAIN — the edges that told of new bytes came while it could not take them. (Every
  // ACK of sent data raises EPOLLOUT too; a direction that was not stalled has nothing to do.)
  Dir& out = c->dir[1 - s];
  bool stalled = out.preOff < out.pre.size() || out.inPipe > 0;
  if ((events & kAny || (events & EPOLLOUT && stalled)) && !Pump(w, c, out, true)) return;
  if (c->dir[0].done && c->dir[1].done) FinishConn(w, c, EndReason::kEof, 0);
}

void ConnSide::OnEvent(Worker& w, uint32_t events) {
  switch (conn->phase) {
    case Conn::Phase::kStarting: return OnStartingEvent(w, conn, s, events);
    case Conn::Phase::kRelaying: return OnRelayEvent(w, conn, s, events);
    default: return;  // accepted (not registered yet) or done: a stale event in this batch
  }
}

void StartConn(Worker& w, Conn* c, const StartParams& p) {
  if (c->phase != Conn::Phase::kAccepted) return;
  w.NoteDecided();
  c->phase = Conn::Phase::kStarting;
  c->idleMs = p.idleMs;
  c->lastActive = w.now();
  c->handoff = p.handoff;
  if (p.detectTimeoutMs > 0) {
    c->detecting = true;
    c->detectDeadline = w.now() + p.detectTimeoutMs;
  } else {
    c->decided = true;
  }
  if (!p.handoff) {
    int fd = socket(p.dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return FinishConn(w, c, EndReason::kConnectError, errno);
    c->fd[1] = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (p.mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &p.mark, sizeof(p.mark)) < 0) return FinishConn(w, c, EndReason::kConnectError, errno);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&p.dst), p.dstLen) < 0 && errno != EINPROGRESS) {
      int err = errno;
      return FinishConn(w, c, ConnectReason(err), err);
    }
    // Even a connect that completed at once reports through the OUT edge the ADD delivers.
    c->connecting = true;
    c->connectDeadline = w.now() + p.connectTimeoutMs;
    if (!w.Register(fd, kSockEvents, &c->side[1])) return FinishConn(w, c, EndReason::kConnectError, errno);
    c->registered[1] = true;
  }
  // An ADD of a socket that is already readable delivers its edge: bytes the client sent
  // before this point are not missed.
  if (!w.Register(c->fd[0], kSockEvents, &c->side[0])) {
    Fail(w, c, errno);
    return;
  }
  c->registered[0] = true;
  w.AddTimed(c);
}

void AdoptRelay(Worker& w, std::shared_ptr<Conn> sc) {
  Conn* c = sc.get();
  c->id = w.NextConnId();  // only for the worker's bookkeeping: JS holds the connection itself
  c->shared = true;
  w.AddConn(std::move(sc));
  c->phase = Conn::Phase::kRelaying;
  c->lastActive = w.now();
  w.AddTimed(c);
  SetupDirs(c);
  for (int s = 0; s < 2; s++) {
    if (!w.Register(c->fd[s], kSockEvents, &c->side[s])) {
      Fail(w, c, errno);
      return;
    }
    c->registered[s] = true;
  }
  // The ADDs' initial edges (sockets writable) start the pumps.
}

static bool ReadDst(int fd, DstMode mode, int family, sockaddr_storage* out) {
  socklen_t sl = sizeof(*out);
  if (mode != DstMode::kLocal) {
    int r = family == AF_INET ? getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &sl) : getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &sl);
    if (r == 0) return true;
    if (mode == DstMode::kSockopt) return false;
    sl = sizeof(*out);
  }
  return getsockname(fd, reinterpret_cast<sockaddr*>(out), &sl) == 0;
}

void Listener::OnEvent(Worker& w, uint32_t) {
  if (paused) return;
  // Level-triggered: a bounded batch per wake-up keeps other sockets served under a flood.
  for (int i = 0; i < 64; i++) {
    sockaddr_storage peer{};
    socklen_t pl = sizeof(peer);
    int cfd = accept4(fd, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN) return;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: a level-triggered listener would spin; pause it
      // briefly (the backlog holds new connections) and tell JS, which counts and logs it.
      int err = errno;
      if (w.Modify(fd, 0, this)) paused = true;
      retryAtMs = w.now() + 100;
      w.Wake(retryAtMs);
      sink->OnAcceptError(id, err);
      w.Dirty(sink.get());
      return;
    }
    auto c = std::make_shared<Conn>();
    c->id = w.NextConnId();
    c->fd[0] = cfd;
    c->direction = direction;
    c->listenerId = id;
    c->peer = peer;
    c->sink = sink;
    c->methods = methods;
    // TCP_NODELAY comes from the listener (pool.listen sets it; accepted sockets inherit it).
    c->hasDst = ReadDst(cfd, dstMode, peer.ss_family, &c->dst);
    Conn* p = c.get();
    w.AddConn(std::move(c));
    sink->OnAccepted(*p);
    w.Dirty(sink.get());
    w.NoteAccepted();
    if (paused) return;
  }
}

}  // namespace weft
