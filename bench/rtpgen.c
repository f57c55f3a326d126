/*
 * Native RTP load generator for the relay benchmark (bench/relay.ts compiles it with `cc` and
 * bench/generator.ts drives it). It owns the peer sockets and the packet path; the session setup
 * (U/L over the control socket) stays in bench/generator.ts.
 *
 * Why native: a Node generator spends as much CPU per packet as the relay it measures, so at
 * 50k packets/s its event loop sends late (bursts of several milliseconds of traffic at once)
 * and its receive callbacks run late. Both end up in the measured latency. This one sends each
 * stream at its own offset in the tick (no bursts: 100 us granularity) and takes the arrival
 * time from the kernel (SO_TIMESTAMPNS), so the latency is the relay's and loopback's only.
 *
 * Usage: rtpgen SESSIONS RATE IDLE_TICKS WARMUP_TICKS MEASURED_TICKS RCVBUF_BYTES
 *               CALLER_ADDR CALLEE_ADDR RELAY_ADDR spin|sleep HOLD_S ports|shared
 *
 * Caller sockets are bound to CALLER_ADDR, callee sockets to CALLEE_ADDR, and both send to the
 * relay's ports on RELAY_ADDR (all three 127.0.0.1 on loopback; see bench/netns.ts otherwise).
 * `ports`: two connected sockets per session, one send() per packet and one wake-up per
 * arrival, as independent phones. `shared`: one caller and one callee socket for all sessions
 * (every session's U and L give the same two ports), unconnected, sent with sendmmsg() and read
 * with recvmmsg() in batches, demultiplexed by the stream index in the payload: far fewer system
 * calls per packet, for rates one thread could not drive otherwise.
 * `spin` busy-polls before each send (see poll_until), `sleep` sleeps until it is due: its CPU
 * time is then the work it did, and the machine's busy time a cost of the packets.
 *
 * Protocol, one line each way (stdout / stdin):
 *   > ports P0 P1 ...          the caller and callee port of each session (after the idle baseline)
 *   < relay A0 B0 A1 B1 ...    per session: where the caller sends (A), where the callee sends (B)
 *   > holding                  (HOLD_S > 0) before the warm-up, it sends one packet per stream
 *   < measure                  a second (both parties latch, at a fiftieth of the load) until
 *                              this line, or for HOLD_S seconds at most; then the warm-up
 *   > measure-start            the warm-up is over
 *   > measure-end              the measured window is over (draining follows)
 *   > result {JSON}            figures (see GeneratorResult in bench/messages.ts), then exit 0
 *   > error MESSAGE            on failure, then exit 1
 *
 * Stream 2i is session i's caller -> callee direction, 2i+1 the reverse. Every packet is 172
 * bytes: RTP header (PT 0), then send time (uint64 ns, CLOCK_REALTIME, little-endian) at offset
 * 12, stream index (uint32) at 20, packet index in the stream (uint32) at 24, phase (0 warm-up,
 * 1 measured) at 28, then 0xFF (mu-law silence).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PACKET_BYTES 172
#define PAYLOAD_BYTES (PACKET_BYTES - 12)
#define OFF_TIME 12
#define OFF_STREAM 20
#define OFF_COUNT 24
#define OFF_PHASE 28
#define PHASE_MEASURED 1
/* Send granularity: streams due within the same STEP_NS are sent on one wake-up. */
#define STEP_NS 100000LL
/* Busy-polling before a send (see poll_until). */
#define SPIN_NS 2000000LL
/* Draining after the window: until all arrived, QUIET_NS without arrivals, or DRAIN_MAX_NS. */
#define QUIET_NS 500000000LL
#define DRAIN_MAX_NS 5000000000LL
#define TRACE_BUCKET_NS 100000000LL
/* The tick of the hold: one packet per stream per second. */
#define HOLD_TICK_NS 1000000000LL
/* Shared endpoints: packets per sendmmsg()/recvmmsg(), and the receive buffer (SO_RCVBUFFORCE). */
#define BATCH 64
#define SHARED_RCVBUF (32 * 1024 * 1024)
#define SHARED_SNDBUF (8 * 1024 * 1024)
/* Latency histogram: 10 us bins up to 10 s, one overflow bin (as bench/histogram.ts). */
#define BIN_NS 10000LL
#define BINS (1000000 + 1)

typedef struct {
  uint64_t count;
  double sum_ms, min_ms, max_ms;
  uint32_t *bins;
} hist_t;

typedef struct stream {
  int fd;          /* the socket this stream is sent on */
  int rx_fd;       /* the socket it arrives on */
  struct sockaddr_in to; /* shared endpoints: where it is sent (the socket is not connected) */
  uint32_t index;  /* stream index carried in the payload */
  uint32_t ssrc, ts;
  uint16_t seq;
  uint32_t count;  /* packets sent (all phases) */
  uint64_t sent, received, duplicates, reordered;
  int64_t highest;
  uint8_t *seen;   /* per packet index: arrived already */
  uint32_t seen_len;
  int64_t offset_ns; /* send offset within the tick */
  hist_t *hist;
  int traced;      /* relay stream: counts for the time series */
} stream_t;

/* A peer socket, and the stream that arrives on it (NULL: shared, by the index in the payload). */
typedef struct {
  int fd;
  stream_t *expect;
} peer_t;

/* Shared endpoints: packets waiting for one sendmmsg() on one socket. */
typedef struct {
  int fd;
  int n;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  uint8_t buf[BATCH][PACKET_BYTES];
  struct stream *from[BATCH]; /* the stream of each packet, and whether it is measured */
  uint8_t measured[BATCH];
} batch_t;
static batch_t *batches[2];
static int shared_mode;

static int nstreams;
static stream_t *streams;
static peer_t *peers;
static int npeers;
static int epfd;
static uint64_t misrouted, foreign;
static int64_t trace_origin = -1;
static int trace_len;
static uint64_t *tr_sent, *tr_recv;
static double *tr_maxlat, *tr_maxlate;
/* sleep mode: no busy-polling before sends. */
static int sleep_mode;
/* stdin is watched for `measure` (hold); `go` is set when it arrived. */
static int stdin_tag;
static int go;
static char stdin_buf[256];
static size_t stdin_len;

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("error ");
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
  exit(1);
}

static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t real_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double cpu_s(int user) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  struct timeval tv = user ? ru.ru_utime : ru.ru_stime;
  return tv.tv_sec + tv.tv_usec / 1e6;
}

static hist_t *hist_new(void) {
  hist_t *h = calloc(1, sizeof *h);
  if (h == NULL || (h->bins = calloc(BINS, sizeof *h->bins)) == NULL) fail("out of memory");
  h->min_ms = 1e300;
  return h;
}

static void hist_record(hist_t *h, int64_t ns) {
  if (ns < 0) ns = 0;
  int64_t bin = ns / BIN_NS;
  if (bin >= BINS) bin = BINS - 1;
  h->bins[bin]++;
  double ms = ns / 1e6;
  h->count++;
  h->sum_ms += ms;
  if (ms < h->min_ms) h->min_ms = ms;
  if (ms > h->max_ms) h->max_ms = ms;
}

/* Nearest-rank percentile at the upper edge of its bin, never above the maximum. */
static double hist_pct(const hist_t *h, double q) {
  uint64_t rank = (uint64_t)(q * h->count + 0.999999);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < BINS; i++) {
    seen += h->bins[i];
    if (seen >= rank) {
      double edge = (i + 1) * BIN_NS / 1e6;
      return edge < h->max_ms ? edge : h->max_ms;
    }
  }
  return h->max_ms;
}

static void hist_json(const hist_t *h, const char *extra) {
  if (h->count == 0) {
    printf("{\"count\":0,\"minMs\":null,\"meanMs\":null,\"p50Ms\":null,\"p90Ms\":null,"
           "\"p99Ms\":null,\"p999Ms\":null,\"maxMs\":null%s}", extra);
    return;
  }
  printf("{\"count\":%llu,\"minMs\":%.4f,\"meanMs\":%.4f,\"p50Ms\":%.4f,\"p90Ms\":%.4f,"
         "\"p99Ms\":%.4f,\"p999Ms\":%.4f,\"maxMs\":%.4f%s}",
         (unsigned long long)h->count, h->min_ms, h->sum_ms / h->count, hist_pct(h, 0.5),
         hist_pct(h, 0.9), hist_pct(h, 0.99), hist_pct(h, 0.999), h->max_ms, extra);
}

static int trace_bucket(int64_t now) {
  if (trace_origin < 0) return -1;
  int64_t b = (now - trace_origin) / TRACE_BUCKET_NS;
  return b < 0 || b >= trace_len ? -1 : (int)b;
}

static struct in_addr parse_addr(const char *text) {
  struct in_addr a;
  if (inet_pton(AF_INET, text, &a) != 1) fail("bad IPv4 address %s", text);
  return a;
}

static int bind_peer(int rcvbuf, struct in_addr addr) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket: %s", strerror(errno));
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
    fail("SO_TIMESTAMPNS: %s", strerror(errno));
  /* Past net.core.rmem_max where allowed (CAP_NET_ADMIN), within it otherwise. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = addr};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("bind: %s", strerror(errno));
  return fd;
}

static int port_of(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &len) < 0) fail("getsockname: %s", strerror(errno));
  return ntohs(a.sin_port);
}

static void connect_to(int fd, int port, struct in_addr addr) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr = addr};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) fail("connect: %s", strerror(errno));
}

static void add_peer(int fd, stream_t *expect) {
  peer_t *p = &peers[npeers++];
  p->fd = fd;
  p->expect = expect;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

static void init_stream(stream_t *s, uint32_t index, int fd, uint32_t ticks, hist_t *h, int traced) {
  s->fd = fd;
  s->index = index;
  s->ssrc = (uint32_t)random() ^ ((uint32_t)random() << 16);
  s->seq = (uint16_t)random();
  s->ts = (uint32_t)random();
  s->highest = -1;
  s->seen_len = ticks;
  s->seen = calloc(ticks ? ticks : 1, 1);
  if (s->seen == NULL) fail("out of memory");
  s->hist = h;
  s->traced = traced;
}

/* Sends what batch b holds; returns how many packets the kernel refused. */
static int flush_batch(batch_t *b) {
  int refused = 0, done = 0;
  while (done < b->n) {
    int r = sendmmsg(b->fd, b->msgs + done, (unsigned)(b->n - done), 0);
    if (r <= 0) {
      /* Refused (send buffer full): never sent, so neither offered nor lost. */
      for (int i = done; i < b->n; i++) {
        if (b->measured[i]) b->from[i]->sent--;
      }
      refused += b->n - done;
      break;
    }
    done += r;
  }
  b->n = 0;
  return refused;
}

static int flush_batches(void) {
  int refused = 0;
  for (int i = 0; i < 2; i++)
    if (batches[i] != NULL) refused += flush_batch(batches[i]);
  return refused;
}

/*
 * Sends the next packet of stream s (shared endpoints: queues it for the next sendmmsg());
 * returns how many packets the kernel refused.
 */
static int send_packet(stream_t *s, int phase) {
  uint8_t local[PACKET_BYTES];
  uint8_t *b = local;
  batch_t *q = NULL;
  if (shared_mode && s->to.sin_port != 0) {
    q = batches[0]->fd == s->fd ? batches[0] : batches[1];
    if (q->n == BATCH) {
      int refused = flush_batch(q);
      if (refused > 0) return refused + send_packet(s, phase);
    }
    b = q->buf[q->n];
  }
  memset(b, 0xff, PACKET_BYTES);
  b[0] = 0x80;
  b[1] = 0x00;
  b[2] = (uint8_t)(s->seq >> 8);
  b[3] = (uint8_t)s->seq;
  b[4] = (uint8_t)(s->ts >> 24);
  b[5] = (uint8_t)(s->ts >> 16);
  b[6] = (uint8_t)(s->ts >> 8);
  b[7] = (uint8_t)s->ts;
  b[8] = (uint8_t)(s->ssrc >> 24);
  b[9] = (uint8_t)(s->ssrc >> 16);
  b[10] = (uint8_t)(s->ssrc >> 8);
  b[11] = (uint8_t)s->ssrc;
  memcpy(b + OFF_STREAM, &s->index, 4);
  memcpy(b + OFF_COUNT, &s->count, 4);
  b[OFF_PHASE] = (uint8_t)phase;
  int64_t t = real_ns();
  memcpy(b + OFF_TIME, &t, 8);
  s->seq++;
  s->ts += PAYLOAD_BYTES;
  s->count++;
  if (phase == PHASE_MEASURED) s->sent++;
  if (q != NULL) {
    struct mmsghdr *m = &q->msgs[q->n];
    q->from[q->n] = s;
    q->measured[q->n] = phase == PHASE_MEASURED;
    q->iov[q->n].iov_base = b;
    q->iov[q->n].iov_len = PACKET_BYTES;
    memset(m, 0, sizeof *m);
    m->msg_hdr.msg_iov = &q->iov[q->n];
    m->msg_hdr.msg_iovlen = 1;
    m->msg_hdr.msg_name = &s->to;
    m->msg_hdr.msg_namelen = sizeof s->to;
    q->n++;
    return 0;
  }
  if (send(s->fd, b, PACKET_BYTES, 0) == (ssize_t)PACKET_BYTES) return 0;
  if (phase == PHASE_MEASURED) s->sent--; /* refused: never sent */
  return 1;
}

/* Accounts one arrived packet of n bytes; returns 1 when it was a first measured arrival. */
static uint64_t account(const peer_t *p, const uint8_t *b, ssize_t n, struct msghdr *m) {
  int64_t arrived = -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof ts);
      arrived = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
  }
  if (arrived < 0) arrived = real_ns();
  if (n != PACKET_BYTES) {
    foreign++;
    return 0;
  }
  uint32_t index, k;
  int64_t sent_at;
  memcpy(&index, b + OFF_STREAM, 4);
  memcpy(&k, b + OFF_COUNT, 4);
  memcpy(&sent_at, b + OFF_TIME, 8);
  stream_t *s = p->expect;
  /* Shared socket: the stream named in the payload, if this is the socket it arrives on. */
  if (s == NULL && index < (uint32_t)nstreams && streams[index].rx_fd == p->fd) s = &streams[index];
  if (s == NULL || index != s->index) {
    misrouted++;
    return 0;
  }
  if (b[OFF_PHASE] != PHASE_MEASURED || k >= s->seen_len) return 0;
  if (s->seen[k]) {
    s->duplicates++;
    return 0;
  }
  s->seen[k] = 1;
  s->received++;
  if ((int64_t)k < s->highest) s->reordered++;
  else s->highest = k;
  int64_t lat = arrived - sent_at;
  hist_record(s->hist, lat);
  if (s->traced) {
    int bk = trace_bucket(mono_ns());
    if (bk >= 0) {
      tr_recv[bk]++;
      if (lat / 1e6 > tr_maxlat[bk]) tr_maxlat[bk] = lat / 1e6;
    }
  }
  return 1;
}

/* Reads what is queued on peer p: recvmmsg() batches, at most 4 of them per call. */
static uint64_t drain_peer(const peer_t *p) {
  static uint8_t bufs[BATCH][2048];
  static char ctls[BATCH][CMSG_SPACE(sizeof(struct timespec))];
  static struct iovec iovs[BATCH];
  static struct mmsghdr msgs[BATCH];
  static int ready;
  if (!ready) {
    for (int i = 0; i < BATCH; i++) {
      iovs[i].iov_base = bufs[i];
      iovs[i].iov_len = sizeof bufs[i];
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctls[i];
      msgs[i].msg_hdr.msg_controllen = sizeof ctls[i];
    }
    ready = 1;
  }
  uint64_t got = 0;
  for (int round = 0; round < 4; round++) {
    int count = recvmmsg(p->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (count <= 0) break; /* EAGAIN, or ECONNREFUSED from an ICMP error: nothing more now */
    for (int i = 0; i < count; i++) {
      got += account(p, bufs[i], (ssize_t)msgs[i].msg_len, &msgs[i].msg_hdr);
      /* recvmmsg() shrank it to what the kernel wrote. */
      msgs[i].msg_hdr.msg_controllen = sizeof ctls[i];
    }
    if (count < BATCH) break;
  }
  return got;
}

/* Reads what the driver wrote on stdin; sets `go` on a `measure` line. */
static void read_stdin(void) {
  ssize_t n = read(0, stdin_buf + stdin_len, sizeof stdin_buf - 1 - stdin_len);
  if (n == 0) fail("stdin closed");
  if (n < 0) return;
  stdin_len += (size_t)n;
  stdin_buf[stdin_len] = '\0';
  if (strstr(stdin_buf, "measure\n") != NULL) go = 1;
  if (stdin_len >= sizeof stdin_buf - 1) stdin_len = 0;
}

/*
 * Waits for packets until `until` (monotonic ns), reading what arrives. In spin mode the last SPIN_NS are
 * busy-polled (epoll_wait with no timeout): sends leave on time, and a packet the relay sends
 * finds its receiver running, as a network card would, instead of a sleeping process the relay's
 * send must wake (on loopback the sender pays for that wake-up, on a VM an inter-processor
 * interrupt to a halted CPU: several microseconds that a real relay's sends do not cost).
 */
static void poll_until(int64_t until) {
  struct epoll_event ev[256];
  int polled = 0;
  for (;;) {
    int64_t left = until - mono_ns();
    if (left <= 0) {
      /*
       * Late: sending comes first, but the shared sockets (every stream arrives on them) are
       * still read once per wake-up, so that a generator behind its schedule does not let them
       * overflow.
       */
      if (shared_mode && !polled) {
        for (int i = 0; i < 2; i++) drain_peer(&peers[i]);
      }
      return;
    }
    polled = 1;
    int n;
    if (sleep_mode) {
      struct timespec ts = {.tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL};
      n = epoll_pwait2(epfd, ev, 256, &ts, NULL);
    } else {
      int timeout = left > SPIN_NS ? (int)((left - SPIN_NS) / 1000000) : 0;
      n = epoll_wait(epfd, ev, 256, timeout);
    }
    if (n < 0 && errno != EINTR) fail("epoll_wait: %s", strerror(errno));
    /* Sending comes first: once a send is due, the rest is read after it (epoll reports it again). */
    for (int i = 0; i < n; i++) {
      if (i % 16 == 15 && mono_ns() >= until) break;
      if (ev[i].data.ptr == &stdin_tag) read_stdin();
      else drain_peer(ev[i].data.ptr);
    }
  }
}

typedef struct {
  uint64_t slot_sends, late_by_tick, send_errors;
  double max_late_ms, sum_late_ms;
} sched_t;

/* Where a schedule is on its timeline: tick `k` is due at t0 + k*tick. */
typedef struct {
  int64_t t0;
  uint32_t k;
} timeline_t;

static timeline_t timeline_start(void) {
  timeline_t tl = {.t0 = mono_ns() + 1000000, .k = 0};
  return tl;
}

/*
 * Sends `ticks` ticks on streams [first, first+count), all with the given phase, from where the
 * timeline is: stream j's packet of tick k is due at t0 + k*tick + offset_ns(j). Each wake-up sends
 * what is due up to STEP_NS ahead; its lateness is that of the earliest packet it sent. With
 * `until_go`, it also stops at the first tick boundary after `go` was set.
 */
static sched_t run_schedule(int first, int count, int64_t tick_ns, timeline_t *tl, uint32_t ticks,
                            int phase, int traced, int until_go) {
  sched_t st = {0};
  int64_t t0 = tl->t0;
  uint32_t k = tl->k;
  uint32_t end = tl->k + ticks;
  int j = 0;
  while (k < end && !(until_go && j == 0 && go)) {
    int64_t due = t0 + (int64_t)k * tick_ns + streams[first + j].offset_ns;
    poll_until(due);
    int64_t now = mono_ns();
    double late_ms = (now - due) / 1e6;
    int sent = 0;
    while (k < end && !(until_go && j == 0 && go)) {
      int64_t d = t0 + (int64_t)k * tick_ns + streams[first + j].offset_ns;
      if (d > now + STEP_NS) break;
      st.send_errors += send_packet(&streams[first + j], phase);
      sent++;
      if (++j == count) {
        j = 0;
        k++;
      }
    }
    st.send_errors += flush_batches();
    int bk = traced ? trace_bucket(now) : -1;
    if (bk >= 0) {
      tr_sent[bk] += sent;
      if (late_ms > tr_maxlate[bk]) tr_maxlate[bk] = late_ms;
    }
    st.slot_sends++;
    st.sum_late_ms += late_ms > 0 ? late_ms : 0;
    if (late_ms > st.max_late_ms) st.max_late_ms = late_ms;
    if (late_ms > tick_ns / 1e6) st.late_by_tick++;
  }
  tl->k = k;
  return st;
}

static uint64_t total(int first, int count, int received) {
  uint64_t n = 0;
  for (int i = first; i < first + count; i++) n += received ? streams[i].received : streams[i].sent;
  return n;
}

int main(int argc, char **argv) {
  if (argc != 13) {
    fprintf(stderr, "usage: rtpgen SESSIONS RATE IDLE_TICKS WARMUP_TICKS MEASURED_TICKS RCVBUF "
                    "CALLER_ADDR CALLEE_ADDR RELAY_ADDR spin|sleep HOLD_TICKS ports|shared\n");
    return 2;
  }
  int sessions = atoi(argv[1]);
  int rate = atoi(argv[2]);
  uint32_t idle_ticks = (uint32_t)atoi(argv[3]);
  uint32_t warmup = (uint32_t)atoi(argv[4]);
  uint32_t measured = (uint32_t)atoi(argv[5]);
  int rcvbuf = atoi(argv[6]);
  struct in_addr caller_addr = parse_addr(argv[7]), callee_addr = parse_addr(argv[8]);
  struct in_addr relay_addr = parse_addr(argv[9]);
  if (strcmp(argv[10], "spin") != 0 && strcmp(argv[10], "sleep") != 0) fail("bad poll mode");
  sleep_mode = strcmp(argv[10], "sleep") == 0;
  uint32_t hold_s = (uint32_t)atoi(argv[11]);
  if (strcmp(argv[12], "ports") != 0 && strcmp(argv[12], "shared") != 0) fail("bad endpoints");
  shared_mode = strcmp(argv[12], "shared") == 0;
  if (sessions < 1 || sessions > 100000 || rate < 1 || rate > 1000 || idle_ticks < 1 ||
      measured < 1 || rcvbuf < 0)
    fail("bad arguments");
  /* Timers fire within 1 us of their due time instead of the default 50 us slack. */
  if (sleep_mode) prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  srandom((unsigned)(real_ns() ^ getpid()));
  int64_t tick_ns = 1000000000LL / rate;
  uint32_t ticks = warmup + measured;

  /* Streams: 2 per session, then the load baseline pair, then the idle baseline pair. */
  nstreams = 2 * sessions + 4;
  streams = calloc(nstreams, sizeof *streams);
  peers = calloc(nstreams, sizeof *peers);
  if (streams == NULL || peers == NULL) fail("out of memory");
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1: %s", strerror(errno));
  hist_t *relay = hist_new(), *base_load = hist_new(), *base_idle = hist_new();
  trace_len = (int)((ticks * tick_ns + DRAIN_MAX_NS + 1000000000LL) / TRACE_BUCKET_NS) + 1;
  tr_sent = calloc(trace_len, sizeof *tr_sent);
  tr_recv = calloc(trace_len, sizeof *tr_recv);
  tr_maxlat = calloc(trace_len, sizeof *tr_maxlat);
  tr_maxlate = calloc(trace_len, sizeof *tr_maxlate);
  if (!tr_sent || !tr_recv || !tr_maxlat || !tr_maxlate) fail("out of memory");

  int relay_streams = 2 * sessions;
  int all = relay_streams + 2; /* relay streams and the load baseline pair */
  int shared_caller = -1, shared_callee = -1;
  if (shared_mode) {
    int big = rcvbuf > SHARED_RCVBUF ? rcvbuf : SHARED_RCVBUF;
    shared_caller = bind_peer(big, caller_addr);
    shared_callee = bind_peer(big, callee_addr);
    /* Packets in flight (queued for another CPU with RPS) count against the sender's buffer. */
    for (int i = 0; i < 2; i++) {
      int fd = i == 0 ? shared_caller : shared_callee, snd = SHARED_SNDBUF;
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
    }
    add_peer(shared_caller, NULL);
    add_peer(shared_callee, NULL);
    for (int i = 0; i < 2; i++) {
      batches[i] = calloc(1, sizeof *batches[i]);
      if (batches[i] == NULL) fail("out of memory");
      batches[i]->fd = i == 0 ? shared_caller : shared_callee;
    }
  }
  for (int i = 0; i < sessions; i++) {
    int caller = shared_mode ? shared_caller : bind_peer(rcvbuf, caller_addr);
    int callee = shared_mode ? shared_callee : bind_peer(rcvbuf, callee_addr);
    /* Packet indexes start again at 0 with the measured window (after a hold of any length). */
    init_stream(&streams[2 * i], 2 * i, caller, measured, relay, 1);
    init_stream(&streams[2 * i + 1], 2 * i + 1, callee, measured, relay, 1);
    streams[2 * i].rx_fd = callee;
    streams[2 * i + 1].rx_fd = caller;
    if (!shared_mode) {
      add_peer(callee, &streams[2 * i]);
      add_peer(caller, &streams[2 * i + 1]);
    }
  }
  for (int pair = 0; pair < 2; pair++) {
    int first = relay_streams + 2 * pair;
    uint32_t n = pair == 0 ? measured : idle_ticks;
    hist_t *h = pair == 0 ? base_load : base_idle;
    int a = bind_peer(rcvbuf, caller_addr), b = bind_peer(rcvbuf, callee_addr);
    connect_to(a, port_of(b), callee_addr);
    connect_to(b, port_of(a), caller_addr);
    init_stream(&streams[first], first, a, n, h, 0);
    init_stream(&streams[first + 1], first + 1, b, n, h, 0);
    streams[first].rx_fd = b;
    streams[first + 1].rx_fd = a;
    add_peer(b, &streams[first]);
    add_peer(a, &streams[first + 1]);
  }
  /* Evenly spread send offsets over the tick, in stream order. */
  for (int j = 0; j < all; j++) streams[j].offset_ns = tick_ns * j / all;
  streams[all].offset_ns = 0;
  streams[all + 1].offset_ns = tick_ns / 2;

  /* 1. Idle baseline: the direct pair alone. */
  timeline_t idle_tl = timeline_start();
  run_schedule(all, 2, tick_ns, &idle_tl, idle_ticks, PHASE_MEASURED, 0, 0);
  poll_until(mono_ns() + 100000000LL);

  /* 2. Ports out, relay ports in. */
  printf("ports");
  for (int i = 0; i < relay_streams; i++) printf(" %d", port_of(streams[i].fd));
  printf("\n");
  fflush(stdout);
  size_t cap = 0;
  char *line = NULL;
  if (getline(&line, &cap, stdin) < 0 || strncmp(line, "relay", 5) != 0) fail("expected relay");
  char *p = line + 5;
  for (int i = 0; i < relay_streams; i++) {
    char *end;
    long port = strtol(p, &end, 10);
    if (end == p || port < 1 || port > 65535) fail("bad relay port list");
    if (shared_mode) {
      streams[i].to.sin_family = AF_INET;
      streams[i].to.sin_port = htons((uint16_t)port);
      streams[i].to.sin_addr = relay_addr;
    } else {
      connect_to(streams[i].fd, (int)port, relay_addr);
    }
    p = end;
  }
  free(line);
  /*
   * Hold: one packet per stream a second, unmeasured, until the driver says `measure` (once the
   * kernel took the streams over): they latch without the full load going through userspace.
   */
  double held_ms = 0;
  int hold_timed_out = 0;
  if (hold_s > 0) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stdin_tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0) fail("epoll_ctl stdin: %s", strerror(errno));
    printf("holding\n");
    fflush(stdout);
    int64_t h0 = mono_ns();
    timeline_t htl = timeline_start();
    run_schedule(0, all, HOLD_TICK_NS, &htl, hold_s, 0, 0, 1);
    held_ms = (mono_ns() - h0) / 1e6;
    hold_timed_out = !go;
  }

  /* 3. Load: relay streams and the load baseline pair, on one schedule. */
  /* The warm-up runs as its own schedule, so that the window's CPU can be read at its end. */
  trace_origin = mono_ns();
  double origin_epoch_ms = real_ns() / 1e6;
  timeline_t tl = timeline_start();
  if (warmup > 0) run_schedule(0, all, tick_ns, &tl, warmup, 0, 1, 0);
  for (int i = 0; i < all; i++) streams[i].count = 0;
  double u0 = cpu_s(1), s0 = cpu_s(0);
  int64_t w0 = mono_ns();
  double warmup_end_epoch_ms = real_ns() / 1e6;
  printf("measure-start\n");
  fflush(stdout);
  /* The window runs from the first measured tick's due time (w0 is a moment before it). */
  w0 = tl.t0 + (int64_t)tl.k * tick_ns;
  sched_t st = run_schedule(0, all, tick_ns, &tl, measured, PHASE_MEASURED, 1, 0);
  /* The last tick went out at its start: the window closes one tick later. */
  poll_until(w0 + (int64_t)measured * tick_ns);
  double window_ms = (mono_ns() - w0) / 1e6;
  double cpu_user = cpu_s(1) - u0, cpu_sys = cpu_s(0) - s0;
  printf("measure-end\n");
  fflush(stdout);

  /* 4. Drain (bounded). */
  int64_t drain_end = mono_ns() + DRAIN_MAX_NS;
  uint64_t last = total(0, all, 1);
  int64_t last_change = mono_ns();
  while (total(0, all, 1) < total(0, all, 0) && mono_ns() < drain_end) {
    poll_until(mono_ns() + 50000000LL);
    uint64_t got = total(0, all, 1);
    if (got != last) {
      last = got;
      last_change = mono_ns();
    } else if (mono_ns() - last_change >= QUIET_NS) {
      break;
    }
  }

  uint64_t sent = 0, received = 0, dup = 0, reord = 0, with_loss = 0;
  double worst = 0;
  for (int i = 0; i < relay_streams; i++) {
    stream_t *s = &streams[i];
    sent += s->sent;
    received += s->received;
    dup += s->duplicates;
    reord += s->reordered;
    if (s->received < s->sent) {
      with_loss++;
      double pct = 100.0 * (s->sent - s->received) / s->sent;
      if (pct > worst) worst = pct;
    }
  }
  int granted = 0;
  socklen_t glen = sizeof granted;
  getsockopt(streams[0].fd, SOL_SOCKET, SO_RCVBUF, &granted, &glen);

  printf("result {\"windowMs\":%.3f,\"sent\":%llu,\"received\":%llu,\"duplicates\":%llu,"
         "\"misrouted\":%llu,\"foreign\":%llu,\"reordered\":%llu,\"streamsWithLoss\":%llu,"
         "\"worstStreamLossPct\":%.4f,\"sendErrors\":%llu,\"heldMs\":%.1f,\"holdTimedOut\":%s,"
         "\"latency\":",
         window_ms, (unsigned long long)sent, (unsigned long long)received,
         (unsigned long long)dup, (unsigned long long)misrouted, (unsigned long long)foreign,
         (unsigned long long)reord, (unsigned long long)with_loss, worst,
         (unsigned long long)st.send_errors, held_ms, hold_timed_out ? "true" : "false");
  hist_json(relay, "");
  printf(",\"baselineIdle\":");
  hist_json(base_idle, "");
  char extra[64];
  snprintf(extra, sizeof extra, ",\"sent\":%llu",
           (unsigned long long)(streams[relay_streams].sent + streams[relay_streams + 1].sent));
  printf(",\"baselineLoad\":");
  hist_json(base_load, extra);
  printf(",\"schedule\":{\"slotSends\":%llu,\"slotsLateByTick\":%llu,\"maxLateMs\":%.4f,"
         "\"meanLateMs\":%.4f},\"cpu\":{\"userS\":%.4f,\"systemS\":%.4f},\"peerRecvBuffer\":%d,"
         "\"originEpochMs\":%.3f,\"warmupEndEpochMs\":%.3f,\"bucketMs\":%lld,",
         (unsigned long long)st.slot_sends, (unsigned long long)st.late_by_tick, st.max_late_ms,
         st.slot_sends ? st.sum_late_ms / st.slot_sends : 0, cpu_user, cpu_sys, granted,
         origin_epoch_ms, warmup_end_epoch_ms, TRACE_BUCKET_NS / 1000000);
  const char *names[] = {"traceSent", "traceReceived", "traceMaxLatencyMs", "traceMaxLateMs"};
  for (int a = 0; a < 4; a++) {
    printf("%s\"%s\":[", a ? "," : "", names[a]);
    for (int i = 0; i < trace_len; i++) {
      if (a < 2) printf("%s%llu", i ? "," : "", (unsigned long long)(a == 0 ? tr_sent : tr_recv)[i]);
      else printf("%s%.3f", i ? "," : "", (a == 2 ? tr_maxlat : tr_maxlate)[i]);
    }
    printf("]");
  }
  printf("}\n");
  fflush(stdout);
  return 0;
}
