// SPDX-License-Identifier: Apache-2.0
// One proxied TCP connection on a worker thread, from accept to close:
//
//   accepted ──JS start()──► starting ──(connected and decided)──► relaying ──► closed
//      │                       │  detect: peek the client's first bytes (HTTP/1 method?),
//      │ JS reset()            │  or upstream bytes first (server speaks first), or timeout
//      ▼                       └─► HTTP/1: both fds handed to JS (the HTTP layer is TypeScript)
//    closed (RST)
//
// Detection only peeks (MSG_PEEK), so whichever side takes the bytes next — the splice relay
// or Node — reads them from the socket itself: nothing is copied into a head buffer.
#pragma once
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "loop.h"

namespace weft {

enum class EndReason : uint8_t { kEof, kReset, kIdle, kError, kAborted, kConnectRefused, kConnectTimeout, kConnectError };
const char* EndReasonName(EndReason r);

// One direction of a relay: src → pipe → dst, after the prebuffered bytes `pre`.
struct Dir {
  int src = -1, dst = -1;  // borrowed from Conn::fd
  int pipeR = -1, pipeW = -1;
  size_t cap = 0;     // pipe capacity actually granted
  size_t inPipe = 0;  // bytes spliced in, not yet out
  std::vector<char> pre;
  size_t preOff = 0;
  bool eof = false;   // src reached EOF
  bool done = false;  // EOF seen, everything forwarded, dst shut down for writing
  std::atomic<uint64_t> bytes{0};
};

struct Conn;
struct ConnSide final : PollEntry {
  Conn* conn = nullptr;
  int s = 0;  // 0: downstream (client side), 1: upstream (server side)
  void OnEvent(Worker& w, uint32_t events) override;
};

using MethodTable = std::vector<std::string>;

struct Conn final : Timed {
  enum class Phase : uint8_t { kAccepted, kStarting, kRelaying, kDone };
  uint64_t id = 0;
  int fd[2] = {-1, -1};
  bool registered[2] = {false, false};
  ConnSide side[2];
  Dir dir[2];  // [0] down → up (bytesUp), [1] up → down (bytesDown)
  Phase phase = Phase::kAccepted;
  uint8_t direction = 0;  // the listener's: 0 inbound, 1 outbound (for JS)
  uint32_t listenerId = 0;
  sockaddr_storage peer{};
  sockaddr_storage dst{};
  bool hasDst = false;
  // starting
  bool detecting = false, decided = false, isHttp = false, handoff = false;
  bool connecting = false, connected = false;
  // Edges seen while starting, per side: the relay's first pump reads only a side that had
  // one (a side without has nothing queued, and its first edge is still to come).
  bool sawIn[2] = {false, false}, sawHup[2] = {false, false};
  int64_t detectDeadline = INT64_MAX, connectDeadline = INT64_MAX;
  // relaying
  uint32_t idleMs = 0;
  uint32_t pipeSize = 65536;  // per direction; pooled pipes have the default size
  int64_t lastActive = 0;
  // closed
  EndReason reason = EndReason::kEof;
  int err = 0;
  bool silent = false;  // closed on JS's request before start: JS needs no event
  // The fds are dup()s of sockets JS may still hold (relay()): epoll registrations belong to
  // the open file, not the fd, so they must be removed explicitly before close.
  bool shared = false;
  std::atomic<bool> finished{false};
  std::shared_ptr<ConnSink> sink;
  std::shared_ptr<const MethodTable> methods;
  std::shared_ptr<Conn> self;  // set while its worker owns it

  Conn();
  ~Conn() override;
  int64_t Due() const override;
  void OnDue(Worker& w) override;
};

// A listening socket the worker accepts on (level-triggered, bounded batch per wake-up).
struct Listener final : PollEntry {
  uint32_t id = 0;
  int fd = -1;
  uint8_t direction = 0;
  DstMode dstMode = DstMode::kLocal;
  bool paused = false;  // by the worker (too many undecided) or after EMFILE
  int64_t retryAtMs = 0;
  std::shared_ptr<ConnSink> sink;
  std::shared_ptr<const MethodTable> methods;
  void OnEvent(Worker& w, uint32_t events) override;
};

// --- Worker-thread operations (loop.cc and conn.cc) ---
void StartConn(Worker& w, Conn* c, const StartParams& p);
// JS asked: before start, refuse (RST, no event when silent); later, abort (RST, event).
void ResetConn(Worker& w, Conn* c, bool silent);
// An already-connected pair (the relay() binding): relay at once, `pre` buffers set.
void AdoptRelay(Worker& w, std::shared_ptr<Conn> c);
void FinishConn(Worker& w, Conn* c, EndReason reason, int err);

// First bytes against the method table (each entry "GET " etc.): 1 HTTP, 0 opaque, -1 more.
int ClassifyFirstBytes(const MethodTable& methods, const char* buf, size_t n);

}  // namespace weft
