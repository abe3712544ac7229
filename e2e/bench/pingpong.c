// SPDX-License-Identifier: Apache-2.0
// Benchmark peers for e2e/bench/run.ts. Every client mode prints one JSON line on stdout.
// Times come from CLOCK_MONOTONIC; counts and durations are fixed by the caller, so a run is
// bounded. Built by the harness with `cc -O2 -pthread` into a temp directory.
//
//   pingpong serve ECHO_PORT SINK_PORT        echo server + sink (counts bytes, answers the
//                                             count as 8 bytes after the client's FIN)
//   pingpong latency HOST PORT SAMPLES WARMUP 1 KB ping-pong on one connection, percentiles in µs
//   pingpong rtps HOST PORT CONNS MS WARM_MS  saturated 1 KB round trips/s over CONNS connections
//   pingpong connrate HOST PORT MS WARM_MS MAX connect / 1 KB request / 1 KB reply / close per s
//   pingpong bulk HOST PORT BYTES             one stream of BYTES to the sink: seconds and Gbit/s
//   pingpong http HOST PORT RATE MS CONNS [TIMEOUT_MS]  open-loop HTTP/1.1 GET at RATE req/s, latency
//                                             measured from each request's intended send time
//                                             (no coordinated omission), pipelined keep-alive
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 1024
#define CHUNK 65536

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* A blocking socket must never answer EAGAIN; under some interception paths it does (seen
 * with the eBPF sk_msg redirect). Counted and reported, then waited out with poll(). */
static _Atomic unsigned long spurious_eagain;

static int read_full(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r == 0) return -1;
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        atomic_fetch_add(&spurious_eagain, 1);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) == 1) continue;
      }
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const char *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = write(fd, buf + put, n - put);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    put += (size_t)w;
  }
  return 0;
}

static int dial(const char *host, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "pingpong: bad IPv4 address %s\n", host);
    exit(2);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
  return fd;
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  if (listen(fd, 4096) < 0) die("listen");
  return fd;
}

/* ---- server ---- */

static void *echo_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char buf[CHUNK];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || write_full(fd, buf, (size_t)r) < 0) break;
  }
  close(fd);
  return NULL;
}

static void *sink_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  static __thread char buf[1 << 20];
  uint64_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    total += (uint64_t)r;
  }
  write_full(fd, (const char *)&total, sizeof total);
  close(fd);
  return NULL;
}

struct acceptor {
  int fd;
  void *(*handler)(void *);
};

static void *accept_loop(void *arg) {
  struct acceptor *a = arg;
  for (;;) {
    int c = accept(a->fd, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE) continue;
      die("accept");
    }
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 2 << 20);
    if (pthread_create(&th, &attr, a->handler, (void *)(intptr_t)c) != 0) close(c);
    pthread_attr_destroy(&attr);
  }
  return NULL;
}

static int serve(int echo_port, int sink_port) {
  struct acceptor echo = {listen_on(echo_port), echo_conn};
  struct acceptor sink = {listen_on(sink_port), sink_conn};
  pthread_t th;
  pthread_create(&th, NULL, accept_loop, &sink);
  printf("{\"listening\":[%d,%d]}\n", echo_port, sink_port);
  fflush(stdout);
  accept_loop(&echo);
  return 0;
}

/* ---- percentiles ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const uint64_t *sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)sorted[i] / 1000.0;
}

static void print_percentiles(uint64_t *ns, size_t n) {
  qsort(ns, n, sizeof *ns, cmp_u64);
  printf("\"samples\":%zu,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f", n, pct(ns, n, 0.5),
         pct(ns, n, 0.9), pct(ns, n, 0.99), pct(ns, n, 0.999), n ? (double)ns[n - 1] / 1000.0 : 0);
}

/* ---- latency ---- */

static int latency(const char *host, int port, long samples, long warmup) {
  int fd = dial(host, port);
  if (fd < 0) die("connect");
  char out[MSG], in[MSG];
  memset(out, 'p', sizeof out);
  uint64_t *ns = calloc((size_t)samples, sizeof *ns);
  for (long i = 0; i < warmup + samples; i++) {
    uint64_t t0 = now_ns();
    if (write_full(fd, out, MSG) < 0 || read_full(fd, in, MSG) < 0) die("ping-pong");
    if (i >= warmup) ns[i - warmup] = now_ns() - t0;
  }
  close(fd);
  printf("{");
  print_percentiles(ns, (size_t)samples);
  printf(",\"eagain\":%lu}\n", atomic_load(&spurious_eagain));
  return 0;
}

/* ---- saturated round trips ---- */

struct rt_args {
  const char *host;
  int port;
  uint64_t start, end;
  uint64_t count;
  int failed;
};

static void *rt_worker(void *arg) {
  struct rt_args *a = arg;
  int fd = dial(a->host, a->port);
  if (fd < 0) {
    a->failed = 1;
    return NULL;
  }
  char buf[MSG];
  memset(buf, 'r', sizeof buf);
  for (;;) {
    uint64_t t = now_ns();
    if (t >= a->end) break;
    if (write_full(fd, buf, MSG) < 0 || read_full(fd, buf, MSG) < 0) {
      a->failed = 1;
      break;
    }
    if (t >= a->start) a->count++;
  }
  close(fd);
  return NULL;
}

static int rtps(const char *host, int port, int conns, long ms, long warm_ms) {
  pthread_t th[64];
  struct rt_args args[64];
  if (conns < 1 || conns > 64) conns = 4;
  uint64_t t0 = now_ns();
  for (int i = 0; i < conns; i++) {
    args[i] = (struct rt_args){host, port, t0 + (uint64_t)warm_ms * 1000000ull, t0 + (uint64_t)(warm_ms + ms) * 1000000ull, 0, 0};
    pthread_create(&th[i], NULL, rt_worker, &args[i]);
  }
  uint64_t total = 0;
  int failed = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(th[i], NULL);
    total += args[i].count;
    failed += args[i].failed;
  }
  printf("{\"conns\":%d,\"roundTrips\":%lu,\"rtps\":%.1f,\"failedConns\":%d,\"eagain\":%lu}\n", conns, (unsigned long)total,
         (double)total * 1000.0 / (double)ms, failed, atomic_load(&spurious_eagain));
  return failed ? 1 : 0;
}

/* ---- connection rate ---- */

static int connrate(const char *host, int port, long ms, long warm_ms, long max) {
  char buf[MSG];
  memset(buf, 'c', sizeof buf);
  uint64_t t0 = now_ns();
  uint64_t start = t0 + (uint64_t)warm_ms * 1000000ull, end = start + (uint64_t)ms * 1000000ull;
  uint64_t count = 0, errors = 0, measured_end = end;
  for (long i = 0; i < max; i++) {
    uint64_t t = now_ns();
    if (t >= end) break;
    int fd = dial(host, port);
    if (fd < 0 || write_full(fd, buf, MSG) < 0 || read_full(fd, buf, MSG) < 0) errors++;
    else if (t >= start) count++;
    if (fd >= 0) close(fd);
    measured_end = now_ns();
  }
  double secs = measured_end > start ? (double)(measured_end - start) / 1e9 : 0;
  printf("{\"connections\":%lu,\"errors\":%lu,\"seconds\":%.3f,\"cps\":%.1f,\"eagain\":%lu}\n", (unsigned long)count,
         (unsigned long)errors, secs, secs > 0 ? (double)count / secs : 0, atomic_load(&spurious_eagain));
  return errors ? 1 : 0;
}

/* ---- bulk ---- */

static int bulk(const char *host, int port, uint64_t bytes) {
  int fd = dial(host, port);
  if (fd < 0) die("connect");
  static char buf[CHUNK];
  memset(buf, 'b', sizeof buf);
  uint64_t t0 = now_ns(), sent = 0;
  while (sent < bytes) {
    size_t n = bytes - sent < CHUNK ? (size_t)(bytes - sent) : CHUNK;
    if (write_full(fd, buf, n) < 0) die("write");
    sent += n;
  }
  shutdown(fd, SHUT_WR);
  uint64_t got = 0;
  if (read_full(fd, (char *)&got, sizeof got) < 0) die("read count");
  double secs = (double)(now_ns() - t0) / 1e9;
  close(fd);
  printf("{\"bytes\":%lu,\"received\":%lu,\"seconds\":%.4f,\"gbps\":%.3f,\"eagain\":%lu}\n", (unsigned long)sent,
         (unsigned long)got, secs, (double)sent * 8 / secs / 1e9, atomic_load(&spurious_eagain));
  return got == sent ? 0 : 1;
}

/* ---- open-loop HTTP ---- */

struct http_conn {
  int fd;
  const char *req;
  size_t req_len;
  uint64_t t0, interval;
  long first, step, total; /* this connection sends requests first, first+step, … < total */
  uint64_t *intended;      /* ring of intended send times, indexed by sequence on this conn */
  _Atomic long sent;
  long done;
  uint64_t *lat; /* shared result array, indexed by global request number */
  int failed;
};

static void *http_sender(void *arg) {
  struct http_conn *c = arg;
  long k = 0;
  for (long i = c->first; i < c->total; i += c->step, k++) {
    uint64_t due = c->t0 + (uint64_t)i * c->interval;
    uint64_t t = now_ns();
    if (due > t) {
      struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
    c->intended[k] = due;
    atomic_store(&c->sent, k + 1);
    if (write_full(c->fd, c->req, c->req_len) < 0) {
      c->failed = 1;
      break;
    }
  }
  return NULL;
}

/* Reads pipelined responses (status line, headers with Content-Length, body). */
static void *http_receiver(void *arg) {
  struct http_conn *c = arg;
  static __thread char buf[1 << 16];
  size_t have = 0;
  long expected = (c->total - c->first + c->step - 1) / c->step;
  long k = 0;
  while (k < expected) {
    ssize_t r = read(c->fd, buf + have, sizeof buf - have);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      if (!(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) c->failed = 1;
      break;
    }
    have += (size_t)r;
    for (;;) {
      char *end = memmem(buf, have, "\r\n\r\n", 4);
      if (!end) break;
      size_t head = (size_t)(end - buf) + 4;
      char *cl = memmem(buf, head, "Content-Length:", 15);
      if (!cl) cl = memmem(buf, head, "content-length:", 15);
      size_t body = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
      if (have < head + body) break;
      uint64_t t = now_ns();
      long gi = c->first + k * c->step;
      if (k < atomic_load(&c->sent)) c->lat[gi] = t - c->intended[k] + 1; /* +1: 0 means none */
      k++;
      memmove(buf, buf + head + body, have - head - body);
      have -= head + body;
    }
  }
  c->done = k;
  return NULL;
}

static int http(const char *host, int port, long rate, long ms, int conns, long timeout_ms) {
  if (rate < 1 || conns < 1 || conns > 64) {
    fprintf(stderr, "pingpong: http: bad rate or conns\n");
    return 2;
  }
  long total = rate * ms / 1000;
  char req[256];
  int req_len = snprintf(req, sizeof req, "GET /1k HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: weft-bench\r\n\r\n", host, port);
  uint64_t *lat = calloc((size_t)total, sizeof *lat);
  struct http_conn cs[64];
  pthread_t snd[64], rcv[64];
  for (int i = 0; i < conns; i++) {
    int fd = dial(host, port);
    if (fd < 0) die("connect");
    /* a receive timeout bounds the run when a proxy drops responses */
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cs[i] = (struct http_conn){.fd = fd, .req = req, .req_len = (size_t)req_len, .first = i, .step = conns, .total = total, .lat = lat};
    cs[i].intended = calloc((size_t)(total / conns + 2), sizeof(uint64_t));
  }
  uint64_t t0 = now_ns() + 1000000ull;
  for (int i = 0; i < conns; i++) {
    cs[i].t0 = t0;
    cs[i].interval = 1000000000ull / (uint64_t)rate;
    pthread_create(&rcv[i], NULL, http_receiver, &cs[i]);
    pthread_create(&snd[i], NULL, http_sender, &cs[i]);
  }
  long done = 0;
  int failed = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(snd[i], NULL);
    pthread_join(rcv[i], NULL);
    done += cs[i].done;
    failed += cs[i].failed;
    close(cs[i].fd);
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  /* the first 10% of the schedule is warm-up */
  long skip = total / 10;
  uint64_t *ns = calloc((size_t)total, sizeof *ns);
  size_t n = 0;
  for (long i = skip; i < total; i++)
    if (lat[i]) ns[n++] = lat[i] - 1;
  printf("{\"rate\":%ld,\"requests\":%ld,\"completed\":%ld,\"failedConns\":%d,\"seconds\":%.3f,", rate, total, done, failed,
         secs);
  print_percentiles(ns, n);
  printf("}\n");
  return done == total ? 0 : 1;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "serve") && argc == 4) return serve(atoi(argv[2]), atoi(argv[3]));
  if (!strcmp(m, "latency") && argc == 6) return latency(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]));
  if (!strcmp(m, "rtps") && argc == 7) return rtps(argv[2], atoi(argv[3]), atoi(argv[4]), atol(argv[5]), atol(argv[6]));
  if (!strcmp(m, "connrate") && argc == 7)
    return connrate(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]), atol(argv[6]));
  if (!strcmp(m, "bulk") && argc == 5) return bulk(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
  if (!strcmp(m, "http") && (argc == 7 || argc == 8))
    return http(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]), atoi(argv[6]), argc == 8 ? atol(argv[7]) : 5000);
  fprintf(stderr,
          "usage: pingpong serve ECHO_PORT SINK_PORT | latency HOST PORT SAMPLES WARMUP | rtps HOST PORT CONNS MS WARM_MS |\n"
          "       connrate HOST PORT MS WARM_MS MAX | bulk HOST PORT BYTES | http HOST PORT RATE MS CONNS [TIMEOUT_MS]\n");
  return 2;
}
