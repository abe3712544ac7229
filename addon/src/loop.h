// SPDX-License-Identifier: Apache-2.0
// The native workers: each one edge-triggered epoll loop over the listeners, connections and
// pending connects it owns. A worker is either *inline* — its epoll fd watched by Node's own
// event loop, so accept, JS's decision, connect and relay happen on the JS thread with no
// thread hop at all (the default: one core's worth of proxy, like HAProxy's nbthread 1 or
// Linkerd's single-core runtime) — or a thread of its own (WEFT_RELAY_THREADS=N). Either way
// JS never touches a worker's state: it posts commands (Worker::Post), and results come back
// in batches, flushed once per loop iteration (synchronously when inline, else through each
// sink's ThreadSafeFunction).
#pragma once
#include <napi.h>
#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace weft {

class Worker;
struct Conn;

int64_t NowMs();

// Empty pipes a worker keeps for reuse (each two fds).
constexpr size_t kMaxPooledPipes = 64;

// Something in a worker's epoll set; epoll_event.data.ptr points at it.
struct PollEntry {
  virtual ~PollEntry() = default;
  virtual void OnEvent(Worker& w, uint32_t events) = 0;
};

// Something with a deadline (detection, connect, idle). The worker scans its timed entries
// when the earliest deadline may have passed; OnDue may remove the entry.
struct Timed {
  size_t timedSlot = SIZE_MAX;
  virtual ~Timed() = default;
  virtual int64_t Due() const = 0;  // INT64_MAX: none
  virtual void OnDue(Worker& w) = 0;
};

// Where a connection's results go, called on its worker thread. Implementations buffer and
// deliver in Flush(), which the worker calls once per loop iteration for every sink that
// got something: one JS callback per batch, not per event.
class ConnSink {
 public:
  virtual ~ConnSink() = default;
  virtual void OnAccepted(Conn& c) = 0;
  // Detection said HTTP/1 and the upstream is connected: both fds now belong to JS.
  virtual void OnHttp(Conn& c, int downFd, int upFd) = 0;
  // Detect-only start (`handoff`): the downstream fd now belongs to JS.
  virtual void OnDetected(Conn& c, int downFd, bool http) = 0;
  virtual void OnClosed(Conn& c) = 0;
  virtual void OnListenerClosed(uint32_t listenerId) = 0;
  virtual void OnAcceptError(uint32_t listenerId, int err) = 0;
  // jsThread: the worker is inline, so the sink may call into JS directly.
  virtual void Flush(bool jsThread) = 0;
};

// How the original destination of an accepted connection is read.
enum class DstMode : uint8_t {
  kLocal,    // getsockname: TPROXY and sk_lookup deliver the connection to its original address
  kSockopt,  // SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST: iptables REDIRECT, the eBPF connect rewrite
  kSockoptOrLocal,  // SO_ORIGINAL_DST when the connection was redirected, else getsockname
};

// What JS decided for an accepted connection.
struct StartParams {
  sockaddr_storage dst{};
  socklen_t dstLen = 0;
  uint32_t mark = 0;
  uint32_t connectTimeoutMs = 5000;
  uint32_t detectTimeoutMs = 0;  // 0: opaque at once (no detection)
  uint32_t idleMs = 0;
  bool handoff = false;  // detect only, then give the downstream fd to JS (no connect)
};

class Worker {
 public:
  // loop: drive this worker from that (Node's) event loop instead of a thread of its own.
  Worker(unsigned index, uv_loop_t* loop);
  int initErr() const { return initErr_; }
  unsigned index() const { return index_; }
  bool isInline() const { return loop_ != nullptr; }

  // Runs `fn` on this worker's thread, soon. Safe from any thread.
  void Post(std::function<void()> fn);

  // --- Called on the worker thread only ---
  int64_t now() const { return now_; }
  uint64_t NextConnId();
  bool Register(int fd, uint32_t events, PollEntry* e);
  bool Modify(int fd, uint32_t events, PollEntry* e);
  void Unregister(int fd);
  void Dirty(ConnSink* s);
  // Asks for CheckTimers at `dueMs` at the latest.
  void Wake(int64_t dueMs);

  void AddTimed(Timed* t);
  void RemoveTimed(Timed* t);

  void AddConn(std::shared_ptr<Conn> c);
  Conn* FindConn(uint64_t id);
  // Forgets a finished connection (freed at the end of this loop iteration).
  void DropConn(Conn* c);
  size_t connCount() const { return conns_.size(); }
  template <typename F>
  void ForEachConn(F fn) {
    std::vector<Conn*> all;
    all.reserve(conns_.size());
    for (auto& [id, c] : conns_) all.push_back(c.get());
    for (Conn* c : all) fn(c);
  }

  // The buffer message-sized relay reads land in before they are sent on (conn.cc Pump).
  static constexpr size_t kScratch = 64 * 1024;
  char* scratch() { return scratch_.data(); }

  // Empty pipes are reused: a relay costs no pipe2/F_SETPIPE_SZ/close when one is pooled.
  bool TakePipe(int* r, int* w, size_t* cap);
  void ReturnPipe(int r, int w, size_t cap);

  // Listeners pause while too many accepted connections wait for JS (kMaxUndecided) and
  // resume once JS has caught up to half of that.
  void AddListener(struct Listener* l);
  void RemoveListener(struct Listener* l);
  void NoteAccepted();
  void NoteDecided();

 private:
  static constexpr int kEventBatch = 128;
  void Run();
  int Poll(int timeoutMs);  // ready events; returns how many
  bool RunCommands();       // posted work; returns whether there was any
  void Settle();            // due timers, then flush the sinks
  void Drive();             // inline: a bounded run until idle, then arm the timer
  void CheckTimers();
  static void OnPoll(uv_poll_t* h, int status, int events);
  static void OnTimer(uv_timer_t* h);

  unsigned index_;
  uv_loop_t* loop_ = nullptr;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  bool driving_ = false;
  int ep_ = -1;
  int wakeFd_ = -1;
  int initErr_ = 0;
  int64_t now_;
  int64_t nextCheckMs_ = INT64_MAX;
  uint64_t seq_ = 0;
  std::unordered_map<uint64_t, std::shared_ptr<Conn>> conns_;
  std::vector<Timed*> timed_;
  std::vector<struct Listener*> listeners_;
  size_t undecided_ = 0;
  bool paused_ = false;
  std::vector<std::shared_ptr<Conn>> grave_;
  std::vector<ConnSink*> dirty_;
  struct Pipe {
    int r, w;
    size_t cap;
  };
  std::vector<Pipe> pipes_;
  std::vector<char> scratch_ = std::vector<char>(kScratch);
  std::mutex mu_;
  std::vector<std::function<void()>> cmds_;
  friend struct WakeEntry;
};

// 0 when the worker pool is running, else the errno that stopped it starting (EMFILE…);
// bindings check it before handing work over. The first call creates the pool (inline
// workers attach to `env`'s event loop).
int PoolError(Napi::Env env);
// Round robin over the pool.
Worker* PickWorker();
// The worker that owns connection `id` (ids carry their worker's index).
Worker* WorkerOf(uint64_t id);
size_t PoolSize();

}  // namespace weft
