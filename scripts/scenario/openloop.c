/*
 * openloop: fixed-rate HTTP/1.1 load, open loop (the wrk2 method), in C so that the load generator is not the
 * bottleneck on a 2-core machine (the Node generator saturates its core near 20k req/s).
 *
 * Request i is DUE at t0 + i / rate whatever happened before; its latency is measured from that due time, not
 * from when a connection was free to send it, so a server stall is charged to every request due during it
 * (no coordinated omission). Requests due while every connection is busy wait in line, and that wait counts.
 *
 * usage: openloop HOST PORT CONNECTIONS RATE TOTAL TIMEOUT_MS REQUESTS_FILE [GIVE_UP_MS [SAMPLES_FILE]]
 *   REQUESTS_FILE: repeated [u32 little-endian length][raw HTTP/1.1 request bytes], replayed round-robin.
 *   GIVE_UP_MS (0 = never): stop sending once the next request is this late (the server is past its capacity; a
 *     capacity search needs no more of that run) and report "abandoned"; requests in flight are not waited for.
 *   SAMPLES_FILE: every answered request as two little-endian doubles, [seconds from the start to the answer,
 *     latency ms], for per-interval histograms (open-loop-c.ts writes them as an HdrHistogram log).
 * Uses epoll_pwait2 (Linux >= 5.11) for sub-millisecond waits, epoll_wait otherwise. Prints one JSON object: requests, errors, timeouts, non2xx, status classes, bytes, the sending window, exact
 * latency percentiles (ms, from every sample) and the generator's own CPU time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  int fd;
  int busy;        /* a request is out on it */
  int connected;
  double due;      /* due time of the request in flight (s, monotonic) */
  double sent_at;  /* when it was written, for the timeout */
  const char *out; /* unsent part of the request */
  size_t out_len;
  char *in;        /* response bytes received so far */
  size_t in_len, in_cap;
} conn_t;

static struct sockaddr_in addr;
static int ep;
static const char **reqs;
static size_t *req_lens;
static size_t nreqs;
static double *lat;
static double *lat_at; /* when each latency was recorded (s from t0), for the samples file */
static size_t nlat;
static long errors, timeouts, non2xx, status[6];
static unsigned long long bytes;
static int have_pwait2 = 1;
static long done;     /* requests answered, failed or timed out */
static int inflight;  /* requests written and not yet answered */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static void conn_open(conn_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) die("connect");
  c->connected = 0;
  c->busy = 0;
  c->in_len = 0;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static void conn_reopen(conn_t *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  conn_open(c);
}

static void want_write(conn_t *c, int on) {
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* 1: all written, 0: the rest waits for EPOLLOUT, -1: broken */
static int flush_out(conn_t *c) {
  while (c->out_len > 0) {
    ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    c->out += n;
    c->out_len -= (size_t)n;
  }
  return 1;
}

/* Length of a complete response at the start of buf, 0 if incomplete, -1 if malformed. */
static long response_length(const char *buf, size_t len, int *code) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (end == NULL) return 0;
  size_t head = (size_t)(end - buf) + 4;
  if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0) return -1;
  *code = atoi(buf + 9);
  long cl = -1;
  int chunked = 0;
  for (const char *p = buf; p < end;) {
    const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
    if (eol == NULL) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) cl = strtol(p + 15, NULL, 10);
    if ((size_t)(eol - p) > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0 && memmem(p, (size_t)(eol - p), "chunked", 7) != NULL) chunked = 1;
    p = eol + 2;
  }
  if (chunked) {
    const char *term = memmem(buf + head, len - head, "0\r\n\r\n", 5);
    if (term == NULL) return 0;
    return (long)(term - buf) + 5;
  }
  if (cl < 0) cl = 0; /* our servers always frame their answers; a missing length means an empty body */
  if (len < head + (size_t)cl) return 0;
  return (long)(head + (size_t)cl);
}

/* The request in flight on c failed (broken, malformed answer): count it and start over on a new connection. */
static void request_failed(conn_t *c) {
  errors++;
  done++;
  inflight--;
  conn_reopen(c);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (nlat == 0) return 0;
  size_t i = (size_t)(p / 100.0 * (double)nlat);
  if (i >= nlat) i = nlat - 1;
  return lat[i];
}

int main(int argc, char **argv) {
  if (argc < 8 || argc > 10) {
    fprintf(stderr, "usage: openloop HOST PORT CONNECTIONS RATE TOTAL TIMEOUT_MS REQUESTS_FILE [GIVE_UP_MS [SAMPLES_FILE]]\n");
    return 2;
  }
  double give_up_s = argc > 8 ? atof(argv[8]) / 1000.0 : 0;
  const char *samples_file = argc > 9 ? argv[9] : NULL;
  int abandoned = 0;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) die("inet_pton (IPv4 address expected)");
  int nconn = atoi(argv[3]);
  double rate = atof(argv[4]);
  long total = atol(argv[5]);
  double timeout_s = atof(argv[6]) / 1000.0;
  if (nconn < 1 || rate <= 0 || total < 1) {
    fprintf(stderr, "openloop: connections, rate and total must be positive\n");
    return 2;
  }

  FILE *f = fopen(argv[7], "rb");
  if (f == NULL) die("requests file");
  size_t cap = 16;
  reqs = malloc(cap * sizeof *reqs);
  req_lens = malloc(cap * sizeof *req_lens);
  uint32_t l;
  while (fread(&l, 4, 1, f) == 1) {
    char *r = malloc(l);
    if (fread(r, 1, l, f) != l) die("requests file truncated");
    if (nreqs == cap) {
      cap *= 2;
      reqs = realloc(reqs, cap * sizeof *reqs);
      req_lens = realloc(req_lens, cap * sizeof *req_lens);
    }
    reqs[nreqs] = r;
    req_lens[nreqs++] = l;
  }
  fclose(f);
  if (nreqs == 0) {
    fprintf(stderr, "openloop: no requests in the file\n");
    return 2;
  }
  lat = malloc((size_t)total * sizeof *lat);
  lat_at = malloc((size_t)total * sizeof *lat_at);

  ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  conn_t *conns = calloc((size_t)nconn, sizeof *conns);
  conn_t **idle = malloc((size_t)nconn * sizeof *idle);
  int nidle = 0;
  for (int i = 0; i < nconn; i++) conn_open(&conns[i]);

  /* connect everything before the clock starts */
  double connect_deadline = now_s() + 5;
  int up = 0;
  struct epoll_event evs[256];
  while (up < nconn && now_s() < connect_deadline) {
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c == NULL || c->connected) continue;
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err != 0) {
        errno = err;
        die("connect");
      }
      c->connected = 1;
      want_write(c, 0);
      idle[nidle++] = c;
      up++;
    }
  }
  if (up < nconn) {
    fprintf(stderr, "openloop: only %d of %d connections came up\n", up, nconn);
    return 2;
  }

  const double interval = 1.0 / rate;
  const double t0 = now_s();
  long next = 0;      /* next request index to send (all below it are out) */
  double send_end = t0;
  double last_timeout_check = t0;

  while (done < total) {
    double now = now_s();
    /* past capacity: the backlog only grows; stop instead of draining it for minutes */
    if (give_up_s > 0 && next < total && now - (t0 + (double)next * interval) > give_up_s) {
      abandoned = 1;
      break;
    }
    /* everything due by now goes out on idle connections; the rest waits in line, its wait counted */
    long due = (long)((now - t0) / interval) + 1;
    if (due > total) due = total;
    while (next < due && nidle > 0) {
      conn_t *c = idle[--nidle];
      c->due = t0 + (double)next * interval;
      c->sent_at = now;
      c->busy = 1;
      c->in_len = 0;
      size_t r = (size_t)next % nreqs;
      c->out = reqs[r];
      c->out_len = req_lens[r];
      int w = flush_out(c);
      if (w < 0) {
        errors++;
        done++;
        conn_reopen(c);
      } else {
        if (w == 0) want_write(c, 1);
        inflight++;
      }
      next++;
      if (next == total) send_end = now;
    }
    /* sleep until the next due time (or an event): epoll_pwait2 takes a nanosecond timeout, one syscall */
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
    if (next < total && nidle > 0) {
      double wait = t0 + (double)next * interval - now_s();
      if (wait < 0) wait = 0;
      ts.tv_sec = (time_t)wait;
      ts.tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9);
    }
    int n;
    if (have_pwait2) {
      n = epoll_pwait2(ep, evs, 256, &ts, NULL);
      if (n < 0 && errno == ENOSYS) have_pwait2 = 0;
    }
    /* kernels before 5.11: millisecond timeouts (rounded up, so never early) */
    if (!have_pwait2) n = epoll_wait(ep, evs, 256, (int)(ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000));
    if (n < 0) n = 0;
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (!c->connected) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
          conn_reopen(c);
          continue;
        }
        c->connected = 1;
        want_write(c, 0);
        idle[nidle++] = c;
        continue;
      }
      if ((evs[i].events & EPOLLOUT) && c->busy && c->out_len > 0) {
        int w = flush_out(c);
        if (w < 0) {
          request_failed(c);
          continue;
        }
        if (w == 1) want_write(c, 0);
      }
      if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      for (;;) {
        if (c->in_cap - c->in_len < 65536) {
          c->in_cap = c->in_cap * 2 + 65536;
          c->in = realloc(c->in, c->in_cap);
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t r = recv(c->fd, c->in + c->in_len, room, 0);
        if (r > 0) {
          c->in_len += (size_t)r;
          /* a short read drained the socket: skip the EAGAIN round trip (epoll is level-triggered) */
          if ((size_t)r < room) break;
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* closed or broken: the request in flight failed; reconnect */
        if (c->busy) request_failed(c);
        else conn_reopen(c);
        goto next_event;
      }
      if (c->busy && c->in_len > 0) {
        int code = 0;
        long len = response_length(c->in, c->in_len, &code);
        if (len < 0) {
          request_failed(c);
          continue;
        }
        if (len > 0) {
          double t = now_s();
          lat_at[nlat] = t - t0;
          lat[nlat++] = (t - c->due) * 1000.0;
          bytes += (unsigned long long)len;
          if (code >= 100 && code < 600) status[code / 100]++;
          if (code < 200 || code >= 300) non2xx++;
          done++;
          inflight--;
          c->busy = 0;
          if ((size_t)len != c->in_len) {
            /* bytes after the answer: the connection is out of step */
            errors++;
            conn_reopen(c);
          } else {
            idle[nidle++] = c;
          }
        }
      }
    next_event:;
    }
    /* time out requests that never come back (checked every 10 ms) */
    double t = now_s();
    if (t - last_timeout_check > 0.01) {
      last_timeout_check = t;
      for (int i = 0; i < nconn; i++) {
        conn_t *c = &conns[i];
        if (c->busy && t - c->sent_at > timeout_s) {
          timeouts++;
          done++;
          inflight--;
          conn_reopen(c);
        }
      }
    }
  }
  double end = now_s();
  if (next < total) send_end = end;

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
  if (samples_file != NULL) {
    FILE *sf = fopen(samples_file, "wb");
    if (sf == NULL) die("samples file");
    for (size_t i = 0; i < nlat; i++) {
      double pair[2] = {lat_at[i], lat[i]};
      if (fwrite(pair, sizeof pair, 1, sf) != 1) die("samples file write");
    }
    fclose(sf);
  }
  qsort(lat, nlat, sizeof *lat, cmp_double);
  double sum = 0;
  for (size_t i = 0; i < nlat; i++) sum += lat[i];
  printf("{\"abandoned\":%s,\"unsent\":%ld,", abandoned ? "true" : "false", total - next);
  printf("\"requests\":%zu,\"errors\":%ld,\"timeouts\":%ld,\"non2xx\":%ld,", nlat, errors, timeouts, non2xx);
  printf("\"status\":{\"1xx\":%ld,\"2xx\":%ld,\"3xx\":%ld,\"4xx\":%ld,\"5xx\":%ld},", status[1], status[2], status[3], status[4], status[5]);
  printf("\"bytes\":%llu,\"durationS\":%.6f,\"wallMs\":%.3f,\"cpuUs\":%.0f,", bytes, send_end - t0, (end - t0) * 1000.0, cpu_us);
  printf("\"latency\":{\"mean\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f}}\n", nlat ? sum / (double)nlat : 0.0,
         pct(50), pct(90), pct(99), pct(99.9), nlat ? lat[nlat - 1] : 0.0);
  return 0;
}
