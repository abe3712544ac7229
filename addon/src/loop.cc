// SPDX-License-Identifier: Apache-2.0
// The worker threads: one epoll loop each, a command queue the JS thread posts to (woken by
// an eventfd), deadlines, a pool of empty pipes, and the end-of-iteration flush that turns
// everything that happened in one wake-up into one JS callback per sink.
#include "loop.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <thread>

#include "conn.h"

namespace weft {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Above this many accepted connections waiting for JS, listeners stop accepting (the kernel's
// backlog then holds new ones): a stalled JS thread cannot make the worker accept without bound.
static constexpr size_t kMaxUndecided = 4096;


struct WakeEntry final : PollEntry {
  int fd = -1;
  void OnEvent(Worker& w, uint32_t) override {
    uint64_t v;
    while (::read(fd, &v, sizeof(v)) > 0) {
    }
    (void)w;
  }
};

Worker::Worker(unsigned index, uv_loop_t* loop) : index_(index), loop_(loop), now_(NowMs()) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ >= 0) wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ep_ < 0 || wakeFd_ < 0) {
    initErr_ = errno;
    if (ep_ >= 0) ::close(ep_);
    ep_ = -1;
    return;
  }
  auto* wake = new WakeEntry();  // lives as long as the worker (forever)
  wake->fd = wakeFd_;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = static_cast<PollEntry*>(wake);
  epoll_ctl(ep_, EPOLL_CTL_ADD, wakeFd_, &ev);
  conns_.reserve(1024);
  timed_.reserve(1024);
  grave_.reserve(64);
  if (loop_) {
    // Node's loop polls our epoll fd (readable while it has ready events). Neither handle
    // keeps the process alive: listeners and live relays do, through their sinks.
    uv_poll_init(loop_, &poll_, ep_);
    poll_.data = this;
    uv_poll_start(&poll_, UV_READABLE, OnPoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
    return;
  }
  // Signals belong to Node's main thread.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  std::thread([this] { Run(); }).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Worker::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> g(mu_);
    cmds_.push_back(std::move(fn));
  }
  // An inline worker that is running (JS answering a batch) picks it up before it returns.
  if (loop_ && driving_) return;
  uint64_t one = 1;
  ssize_t n = ::write(wakeFd_, &one, sizeof(one));
  (void)n;
}

int Worker::Poll(int timeoutMs) {
  epoll_event evs[kEventBatch];
  int n = epoll_wait(ep_, evs, kEventBatch, timeoutMs);
  now_ = NowMs();
  for (int i = 0; i < n; i++) static_cast<PollEntry*>(evs[i].data.ptr)->OnEvent(*this, evs[i].events);
  return n < 0 ? 0 : n;
}

bool Worker::RunCommands() {
  std::vector<std::function<void()>> cmds;
  {
    std::lock_guard<std::mutex> g(mu_);
    cmds.swap(cmds_);
  }
  for (auto& c : cmds) c();
  return !cmds.empty();
}

void Worker::Settle() {
  if (now_ >= nextCheckMs_) CheckTimers();
  // Flushing may call JS (inline), which may post commands or touch dirty_: take a copy.
  std::vector<ConnSink*> dirty;
  dirty.swap(dirty_);
  for (ConnSink* s : dirty) s->Flush(loop_ != nullptr);
  // Events earlier in this pass may still point at these, so free only now.
  grave_.clear();
}

void Worker::Run() {
  char name[16];
  snprintf(name, sizeof(name), "weft-relay-%u", index_);
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    int timeout = -1;
    if (nextCheckMs_ != INT64_MAX) timeout = static_cast<int>(std::clamp<int64_t>(nextCheckMs_ - NowMs(), 0, INT_MAX));
    Poll(timeout);
    RunCommands();
    Settle();
  }
}

void Worker::Drive() {
  if (driving_) return;
  driving_ = true;
  for (int round = 0; round < 16; round++) {
    int n = Poll(0);
    RunCommands();
    Settle();
    // What JS decided in that flush (start, reset for the connections it was told of) is
    // carried out now, with no extra epoll_wait or loop turn: accept → decide → connect
    // costs a single wake-up.
    for (int i = 0; i < 64 && RunCommands(); i++) Settle();
    if (n < kEventBatch) break;
  }
  driving_ = false;
  bool more;
  {
    std::lock_guard<std::mutex> g(mu_);
    more = !cmds_.empty();
  }
  if (more) {
    // Posted while driving (no wake-up was written): come back on the next loop turn.
    uint64_t one = 1;
    ssize_t n = ::write(wakeFd_, &one, sizeof(one));
    (void)n;
  }
  if (nextCheckMs_ != INT64_MAX) {
    uint64_t in = static_cast<uint64_t>(std::max<int64_t>(nextCheckMs_ - NowMs(), 0));
    uv_timer_start(&timer_, OnTimer, in, 0);
  } else {
    uv_timer_stop(&timer_);
  }
}

void Worker::OnPoll(uv_poll_t* h, int, int) { static_cast<Worker*>(h->data)->Drive(); }
void Worker::OnTimer(uv_timer_t* h) { static_cast<Worker*>(h->data)->Drive(); }

uint64_t Worker::NextConnId() { return (++seq_ << 3) | index_; }

bool Worker::Register(int fd, uint32_t events, PollEntry* e) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = e;
  return epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Worker::Modify(int fd, uint32_t events, PollEntry* e) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = e;
  return epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Worker::Unregister(int fd) { epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr); }

void Worker::Dirty(ConnSink* s) {
  if (std::find(dirty_.begin(), dirty_.end(), s) == dirty_.end()) dirty_.push_back(s);
}

void Worker::Wake(int64_t dueMs) { nextCheckMs_ = std::min(nextCheckMs_, dueMs); }

void Worker::AddTimed(Timed* t) {
  if (t->timedSlot != SIZE_MAX) return;
  t->timedSlot = timed_.size();
  timed_.push_back(t);
  Wake(t->Due());
}

void Worker::RemoveTimed(Timed* t) {
  if (t->timedSlot == SIZE_MAX) return;
  Timed* last = timed_.back();
  timed_[t->timedSlot] = last;
  last->timedSlot = t->timedSlot;
  timed_.pop_back();
  t->timedSlot = SIZE_MAX;
}

// Deadlines only move later (activity) or are added through Wake(), so an early wake-up just
// recomputes; a floor keeps the scan rate bounded with many idle relays.
void Worker::CheckTimers() {
  int64_t next = INT64_MAX;
  for (size_t i = 0; i < timed_.size();) {
    Timed* t = timed_[i];
    int64_t due = t->Due();
    if (due <= now_) {
      t->OnDue(*this);
      // OnDue may have removed t (another entry then sits in slot i) or kept it with a
      // later deadline.
      if (i < timed_.size() && timed_[i] == t) {
        next = std::min(next, t->Due());
        i++;
      }
      continue;
    }
    next = std::min(next, due);
    i++;
  }
  for (Listener* l : listeners_) {
    if (l->retryAtMs) next = std::min(next, l->retryAtMs);
    if (l->retryAtMs && l->retryAtMs <= now_) {
      l->retryAtMs = 0;
      if (!paused_ && Modify(l->fd, EPOLLIN, l)) l->paused = false;
    }
  }
  nextCheckMs_ = next == INT64_MAX ? next : std::max(next, now_ + 5);
}

void Worker::AddConn(std::shared_ptr<Conn> c) {
  Conn* p = c.get();
  p->self = c;
  conns_.emplace(p->id, std::move(c));
}

Conn* Worker::FindConn(uint64_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

void Worker::DropConn(Conn* c) {
  RemoveTimed(c);
  auto it = conns_.find(c->id);
  if (it != conns_.end()) {
    grave_.push_back(std::move(it->second));
    conns_.erase(it);
  }
  if (c->self) grave_.push_back(std::move(c->self));
}

bool Worker::TakePipe(int* r, int* w, size_t* cap) {
  if (pipes_.empty()) return false;
  Pipe p = pipes_.back();
  pipes_.pop_back();
  *r = p.r;
  *w = p.w;
  *cap = p.cap;
  return true;
}

void Worker::ReturnPipe(int r, int w, size_t cap) {
  if (pipes_.size() >= kMaxPooledPipes) {
    ::close(r);
    ::close(w);
    return;
  }
  pipes_.push_back({r, w, cap});
}

void Worker::AddListener(Listener* l) { listeners_.push_back(l); }

void Worker::RemoveListener(Listener* l) { listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), l), listeners_.end()); }

void Worker::NoteAccepted() {
  if (++undecided_ < kMaxUndecided || paused_) return;
  paused_ = true;
  for (Listener* l : listeners_) {
    if (!l->paused && Modify(l->fd, 0, l)) l->paused = true;
  }
}

void Worker::NoteDecided() {
  if (undecided_ > 0) undecided_--;
  if (!paused_ || undecided_ > kMaxUndecided / 2) return;
  paused_ = false;
  for (Listener* l : listeners_) {
    if (l->paused && !l->retryAtMs && Modify(l->fd, EPOLLIN, l)) l->paused = false;
  }
}

// The pool lives for the whole process: its threads are detached and never joined, so it is
// deliberately never destroyed (a static std::thread would terminate the process at exit).
// WEFT_RELAY_THREADS: 0 (default) one inline worker on Node's loop; 1..8 that many threads.
static uv_loop_t* g_loop = nullptr;
static int ThreadCount() {
  const char* e = std::getenv("WEFT_RELAY_THREADS");
  return e ? std::clamp(std::atoi(e), 0, 8) : 0;
}
static uv_loop_t* LoopFor() { return ThreadCount() == 0 ? g_loop : nullptr; }
static std::vector<Worker*>& Pool() {
  static std::vector<Worker*>* pool = [] {
    int n = std::max(ThreadCount(), 1);
    auto* p = new std::vector<Worker*>();
    for (int i = 0; i < n; i++) p->push_back(new Worker(static_cast<unsigned>(i), LoopFor()));
    return p;
  }();
  return *pool;
}

int PoolError(Napi::Env env) {
  static std::mutex mu;
  std::lock_guard<std::mutex> g(mu);
  if (g_loop == nullptr) napi_get_uv_event_loop(env, &g_loop);
  auto& pool = Pool();
  for (size_t i = 0; i < pool.size(); i++) {
    if (pool[i]->initErr() == 0) continue;
    // Out of fds when the pool was first needed: try again now rather than fail forever.
    int err = pool[i]->initErr();
    Worker* fresh = new Worker(static_cast<unsigned>(i), LoopFor());
    if (fresh->initErr()) {
      delete fresh;
      return err;
    }
    pool[i] = fresh;  // the broken one owns no fds or thread; leaked on purpose (tiny, rare)
  }
  return 0;
}

Worker* PickWorker() {
  static std::atomic<unsigned> next{0};
  auto& pool = Pool();
  return pool[next.fetch_add(1, std::memory_order_relaxed) % pool.size()];
}

Worker* WorkerOf(uint64_t id) {
  auto& pool = Pool();
  size_t i = id & 7;
  return i < pool.size() ? pool[i] : nullptr;
}

size_t PoolSize() { return Pool().size(); }

}  // namespace weft
