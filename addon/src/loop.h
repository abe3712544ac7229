// SPDX-License-Identifier: Apache-2.0
// A small fixed pool of native worker threads, each an edge-triggered epoll loop over many
// relays and pending connects. JS threads only hand work over (Submit*) and ask for aborts;
// everything that touches a relay's sockets happens on its worker thread.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace weft {

class Worker;

// epoll_event.data.ptr points at one of these; `kind` says what it belongs to.
struct PollEntry {
  enum Kind : uint8_t { kWake, kRelaySide, kConnect } kind;
};

enum class RelayReason { kEof, kReset, kIdle, kError, kAborted };

struct Relay;

struct RelaySide : PollEntry {
  Relay* relay = nullptr;
};

// One direction of a relay: src → pipe → dst, after the prebuffered bytes `pre`.
struct Direction {
  int src = -1, dst = -1;  // borrowed from Relay::fd
  int pipeR = -1, pipeW = -1;
  size_t cap = 0;     // pipe capacity actually granted
  size_t inPipe = 0;  // bytes spliced in, not yet out
  std::vector<char> pre;
  size_t preOff = 0;
  bool eof = false;   // src reached EOF
  bool done = false;  // EOF seen, everything forwarded, dst shut down for writing
  std::atomic<uint64_t>* bytes = nullptr;
};

struct Relay {
  int fd[2] = {-1, -1};  // [0] downstream (client side), [1] upstream (server side)
  RelaySide side[2];
  Direction dir[2];  // [0] down → up, [1] up → down
  std::atomic<uint64_t> bytesUp{0}, bytesDown{0};
  std::atomic<bool> finished{false};
  uint32_t idleMs = 0;
  int64_t lastActiveMs = 0;
  size_t slot = 0;
  Worker* worker = nullptr;
  RelayReason reason = RelayReason::kEof;
  int err = 0;
  Napi::ThreadSafeFunction tsfn;
  std::shared_ptr<Relay> self;  // set while a worker owns it

  ~Relay();
};

struct ConnectOp : PollEntry {
  int fd = -1;
  int err = 0;              // errno once finished (0: connected)
  const char* syscall = "connect";
  std::string address;
  int port = 0;
  uint32_t timeoutMs = 0;
  int64_t deadlineMs = 0;
  size_t slot = 0;
  Napi::ThreadSafeFunction tsfn;
};

// 0 when the worker pool is running, else the errno that stopped it starting (EMFILE…);
// the bindings check it before handing work over.
int PoolError();
// Hands a relay to a worker (round robin). The relay's fds, pipes and tsfn must be set.
void SubmitRelay(std::shared_ptr<Relay> r);
// Asks the relay's worker to stop it with RST (no-op if already finished).
void AbortRelay(const std::shared_ptr<Relay>& r);
// Hands a started non-blocking connect (or one already failed: err != 0) to a worker.
void SubmitConnect(std::unique_ptr<ConnectOp> op);

// Called on the worker thread when a relay ends / a connect completes. Implemented by the
// bindings (relay.cc / sockets.cc): they post the result to the JS thread.
void DeliverRelayResult(std::shared_ptr<Relay> r);
void DeliverConnectResult(std::unique_ptr<ConnectOp> op);

int64_t NowMs();

}  // namespace weft
