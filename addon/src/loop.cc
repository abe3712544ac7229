// SPDX-License-Identifier: Apache-2.0
// The relay worker threads. Each runs one edge-triggered epoll loop: every relay socket is
// registered once for IN|OUT|RDHUP; a direction stops only on EAGAIN (its socket empty or
// its destination full), so the next edge on either socket resumes it. Backpressure comes
// from the pipe: nothing is read while the pipe still holds bytes the destination refused,
// so per-relay memory is bounded by the pipe capacity. The pump loop allocates nothing.
#include "loop.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace weft {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

static void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

static void SetRstOnClose(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

Relay::~Relay() {
  // Normally closed by the worker; this covers a relay that never reached one.
  for (auto& f : fd) CloseFd(f);
  for (auto& d : dir) {
    CloseFd(d.pipeR);
    CloseFd(d.pipeW);
  }
}

class Worker {
 public:
  Worker() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ >= 0) wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || wakeFd_ < 0) {
      initErr_ = errno;
      CloseFd(ep_);
      return;
    }
    wake_.kind = PollEntry::kWake;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &wake_;
    epoll_ctl(ep_, EPOLL_CTL_ADD, wakeFd_, &ev);
    relays_.reserve(1024);
    connects_.reserve(256);
    graveRelays_.reserve(64);
    // Signals belong to Node's main thread.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    std::thread([this] { Run(); }).detach();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  int initErr() const { return initErr_; }

  void Post(std::shared_ptr<Relay> add, std::shared_ptr<Relay> abort, std::unique_ptr<ConnectOp> conn) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (add) addQ_.push_back(std::move(add));
      if (abort) abortQ_.push_back(std::move(abort));
      if (conn) connQ_.push_back(conn.release());
    }
    uint64_t one = 1;
    ssize_t n = ::write(wakeFd_, &one, sizeof(one));
    (void)n;
  }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "weft-relay");
    epoll_event evs[128];
    for (;;) {
      int timeout = -1;
      if (nextCheckMs_ != INT64_MAX) timeout = static_cast<int>(std::clamp<int64_t>(nextCheckMs_ - NowMs(), 0, INT_MAX));
      int n = epoll_wait(ep_, evs, 128, timeout);
      now_ = NowMs();
      for (int i = 0; i < n; i++) {
        auto* pe = static_cast<PollEntry*>(evs[i].data.ptr);
        switch (pe->kind) {
          case PollEntry::kWake: TakeCommands(); break;
          case PollEntry::kRelaySide: OnRelayEvent(static_cast<RelaySide*>(pe), evs[i].events); break;
          case PollEntry::kConnect: OnConnectEvent(static_cast<ConnectOp*>(pe)); break;
        }
      }
      if (now_ >= nextCheckMs_) CheckTimers();
      // Events later in the same batch may still point at these, so free only now.
      graveRelays_.clear();
    }
  }

  void TakeCommands() {
    uint64_t v;
    while (::read(wakeFd_, &v, sizeof(v)) > 0) {
    }
    std::vector<std::shared_ptr<Relay>> adds, aborts;
    std::vector<ConnectOp*> conns;
    {
      std::lock_guard<std::mutex> g(mu_);
      adds.swap(addQ_);
      aborts.swap(abortQ_);
      conns.swap(connQ_);
    }
    for (auto& r : adds) AddRelay(std::move(r));
    for (auto& r : aborts)
      if (!r->finished.load() && r->worker == this) Finish(r.get(), RelayReason::kAborted, 0);
    for (auto* c : conns) AddConnect(std::unique_ptr<ConnectOp>(c));
  }

  void AddRelay(std::shared_ptr<Relay> r) {
    Relay* p = r.get();
    p->self = std::move(r);
    p->slot = relays_.size();
    relays_.push_back(p);
    p->lastActiveMs = now_;
    if (p->idleMs) nextCheckMs_ = std::min(nextCheckMs_, now_ + p->idleMs);
    for (int s = 0; s < 2; s++) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = &p->side[s];
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, p->fd[s], &ev) < 0) {
        Finish(p, RelayReason::kError, errno);
        return;
      }
    }
    // The initial edge (sockets writable) starts the pumps; nothing more to do here.
  }

  void OnRelayEvent(RelaySide* side, uint32_t events) {
    Relay* r = side->relay;
    if (r->finished.load(std::memory_order_relaxed)) return;
    int s = side == &r->side[0] ? 0 : 1;
    if (events & EPOLLERR) {
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (getsockopt(r->fd[s], SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr) {
        Fail(r, soerr);
        return;
      }
    }
    // Direction s reads this socket and stalls only on its EPOLLIN; direction 1-s writes
    // it and stalls only on its EPOLLOUT. Pumping just what the event can have unblocked
    // saves a syscall per event on the latency path.
    constexpr uint32_t kAny = EPOLLERR | EPOLLHUP;
    if ((events & (EPOLLIN | EPOLLRDHUP | kAny)) && !Pump(r, r->dir[s])) return;
    if ((events & (EPOLLOUT | kAny)) && !Pump(r, r->dir[1 - s])) return;
    if (r->dir[0].done && r->dir[1].done) Finish(r, RelayReason::kEof, 0);
  }

  // Moves bytes for one direction until it would block. Returns false if the relay ended.
  bool Pump(Relay* r, Direction& d) {
    if (d.done) return true;
    for (;;) {
      while (d.preOff < d.pre.size()) {
        ssize_t n = ::send(d.dst, d.pre.data() + d.preOff, d.pre.size() - d.preOff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          d.preOff += static_cast<size_t>(n);
          d.bytes->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
          r->lastActiveMs = now_;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        return Fail(r, n < 0 ? errno : EIO);
      }
      while (d.inPipe > 0) {
        ssize_t n = splice(d.pipeR, nullptr, d.dst, nullptr, d.inPipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (n > 0) {
          d.inPipe -= static_cast<size_t>(n);
          d.bytes->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
          r->lastActiveMs = now_;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        return Fail(r, n < 0 ? errno : EIO);
      }
      if (d.eof) {
        // Half-close: the source is done and everything it sent is forwarded.
        ::shutdown(d.dst, SHUT_WR);
        d.done = true;
        return true;
      }
      ssize_t n = splice(d.src, nullptr, d.pipeW, nullptr, d.cap, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        d.inPipe = static_cast<size_t>(n);
        r->lastActiveMs = now_;
        continue;
      }
      if (n == 0) {
        d.eof = true;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      return Fail(r, errno);
    }
  }

  bool Fail(Relay* r, int err) {
    bool reset = err == ECONNRESET || err == EPIPE;
    Finish(r, reset ? RelayReason::kReset : RelayReason::kError, reset ? 0 : err);
    return false;
  }

  void Finish(Relay* r, RelayReason reason, int err) {
    if (r->self == nullptr) return;  // already finished here
    r->finished.store(true);
    r->reason = reason;
    r->err = err;
    for (int s = 0; s < 2; s++) {
      if (r->fd[s] < 0) continue;
      epoll_ctl(ep_, EPOLL_CTL_DEL, r->fd[s], nullptr);
      // Anything but a clean close in both directions is propagated as RST.
      if (reason != RelayReason::kEof) SetRstOnClose(r->fd[s]);
      CloseFd(r->fd[s]);
    }
    for (auto& d : r->dir) {
      CloseFd(d.pipeR);
      CloseFd(d.pipeW);
      std::vector<char>().swap(d.pre);
    }
    Relay* last = relays_.back();
    relays_[r->slot] = last;
    last->slot = r->slot;
    relays_.pop_back();
    std::shared_ptr<Relay> self = std::move(r->self);
    graveRelays_.push_back(self);
    DeliverRelayResult(std::move(self));
  }

  void AddConnect(std::unique_ptr<ConnectOp> op) {
    if (op->err != 0 || op->fd < 0) {
      int err = op->err ? op->err : EBADF;
      return CompleteConnect(std::move(op), err, false);
    }
    op->kind = PollEntry::kConnect;
    op->deadlineMs = now_ + op->timeoutMs;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLET;
    ev.data.ptr = op.get();
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, op->fd, &ev) < 0) {
      int err = errno;
      return CompleteConnect(std::move(op), err, false);
    }
    nextCheckMs_ = std::min(nextCheckMs_, op->deadlineMs);
    op->slot = connects_.size();
    connects_.push_back(op.release());
  }

  void OnConnectEvent(ConnectOp* op) {
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
    if (soerr == 0) {
      // Writable without an error can still be a spurious edge: make sure it is connected.
      sockaddr_storage ss;
      socklen_t sl = sizeof(ss);
      if (getpeername(op->fd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) {
        if (errno == ENOTCONN) return;
        soerr = errno;
      }
    }
    Unlist(op);
    CompleteConnect(std::unique_ptr<ConnectOp>(op), soerr, true);
  }

  void Unlist(ConnectOp* op) {
    ConnectOp* last = connects_.back();
    connects_[op->slot] = last;
    last->slot = op->slot;
    connects_.pop_back();
  }

  void CompleteConnect(std::unique_ptr<ConnectOp> op, int err, bool registered) {
    if (registered) epoll_ctl(ep_, EPOLL_CTL_DEL, op->fd, nullptr);
    op->err = err;
    if (err) CloseFd(op->fd);
    DeliverConnectResult(std::move(op));
  }

  // Idle relays and overdue connects. Deadlines only move later (activity), so an early
  // wake-up just recomputes; a floor keeps the scan rate bounded with many relays.
  void CheckTimers() {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < relays_.size();) {
      Relay* r = relays_[i];
      if (r->idleMs) {
        int64_t due = r->lastActiveMs + r->idleMs;
        if (due <= now_) {
          Finish(r, RelayReason::kIdle, 0);  // swaps another relay into slot i
          continue;
        }
        next = std::min(next, due);
      }
      i++;
    }
    for (size_t i = 0; i < connects_.size();) {
      ConnectOp* op = connects_[i];
      if (op->deadlineMs <= now_) {
        Unlist(op);
        CompleteConnect(std::unique_ptr<ConnectOp>(op), ETIMEDOUT, true);
        continue;
      }
      next = std::min(next, op->deadlineMs);
      i++;
    }
    nextCheckMs_ = next == INT64_MAX ? next : std::max(next, now_ + 10);
  }

  int ep_ = -1;
  int wakeFd_ = -1;
  int initErr_ = 0;
  PollEntry wake_{};
  int64_t now_ = NowMs();
  int64_t nextCheckMs_ = INT64_MAX;
  std::vector<Relay*> relays_;
  std::vector<ConnectOp*> connects_;
  std::vector<std::shared_ptr<Relay>> graveRelays_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Relay>> addQ_, abortQ_;
  std::vector<ConnectOp*> connQ_;
};

// The pool lives for the whole process: its threads are detached and never joined, so it is
// deliberately never destroyed (a static std::thread would terminate the process at exit).
static std::vector<Worker*>& Pool() {
  static std::vector<Worker*>* pool = [] {
    int n = 1;
    if (const char* e = std::getenv("WEFT_RELAY_THREADS")) n = std::clamp(std::atoi(e), 1, 8);
    auto* p = new std::vector<Worker*>();
    for (int i = 0; i < n; i++) p->push_back(new Worker());
    return p;
  }();
  return *pool;
}

int PoolError() {
  static std::mutex mu;
  std::lock_guard<std::mutex> g(mu);
  auto& pool = Pool();
  for (size_t i = 0; i < pool.size(); i++) {
    if (pool[i]->initErr() == 0) continue;
    // Out of fds when the pool was first needed: try again now rather than fail forever.
    int err = pool[i]->initErr();
    Worker* fresh = new Worker();
    if (fresh->initErr()) {
      delete fresh;
      return err;
    }
    pool[i] = fresh;  // the broken one owns no fds or thread; leaked on purpose (tiny, rare)
  }
  return 0;
}

static Worker* Pick() {
  static std::atomic<unsigned> next{0};
  auto& pool = Pool();
  return pool[next.fetch_add(1, std::memory_order_relaxed) % pool.size()];
}

void SubmitRelay(std::shared_ptr<Relay> r) {
  Worker* w = Pick();
  r->worker = w;
  r->side[0].kind = r->side[1].kind = PollEntry::kRelaySide;
  r->side[0].relay = r->side[1].relay = r.get();
  w->Post(std::move(r), nullptr, nullptr);
}

void AbortRelay(const std::shared_ptr<Relay>& r) {
  if (r->finished.load() || r->worker == nullptr) return;
  r->worker->Post(nullptr, r, nullptr);
}

void SubmitConnect(std::unique_ptr<ConnectOp> op) { Pick()->Post(nullptr, nullptr, std::move(op)); }

}  // namespace weft
