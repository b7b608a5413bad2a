/*
 * sse_load: the load generator of bench/sse.py. One process, one epoll loop,
 * N Server-Sent Events streams to 127.0.0.1:PORT; times how long one
 * broadcast takes to reach every stream.
 *
 *   sse_load PORT N ROUNDS
 *
 * 1. Opens N connections (at most WINDOW connecting at once, so the
 *    server's listen backlog never overflows), each sending
 *    "GET /events"; a stream counts as open once its response head is in.
 * 2. Asks GET /count until the server says it has N streams, then prints
 *    "READY N" and waits for a line on stdin (the driver reads the server's
 *    memory meanwhile).
 * 3. ROUNDS times: notes the time, sends GET /publish?seq=R on another
 *    connection, and reads every stream until each has received the event
 *    (the word "tick" in its bytes); prints
 *    "ROUND R last_us p50_us p99_us cpu_us" (times from the publish
 *    request; cpu_us: this process's CPU time, user + system, meanwhile).
 * 4. Prints "CPU user_us system_us" of this process during the rounds, and
 *    closes every stream with RST (no TIME_WAIT: three servers in a row
 *    would run out of ephemeral ports).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 64
#define ROUND_TIMEOUT_S 120

enum { CONNECTING, HEAD, OPEN };

struct stream {
    int fd;
    int state;
    int got;          /* received this round's event */
    int checked;      /* its status line was 200 */
    char carry[4];    /* the last 3 bytes, for a marker split across reads */
    char head[4];     /* the last 3 bytes of the head so far */
    long arrival_us;
};

static int port;
static struct sockaddr_in addr;

static long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int open_stream(int epfd, struct stream *s) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) die("connect");
    s->fd = fd;
    s->state = CONNECTING;
    s->got = 0;
    memset(s->carry, 0, sizeof s->carry);
    memset(s->head, 0, sizeof s->head);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = s};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    return fd;
}

/* A blocking request on a fresh connection; the whole answer in buf. */
static int http_get(const char *path, char *buf, size_t size) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect (control)");
    char request[256];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, request, n) != n) die("write (control)");
    size_t len = 0;
    ssize_t r;
    while (len + 1 < size && (r = read(fd, buf + len, size - 1 - len)) > 0) len += r;
    buf[len] = 0;
    close(fd);
    return (int)len;
}

static long stream_count(void) {
    char buf[4096];
    http_get("/count", buf, sizeof buf);
    char *body = strstr(buf, "\r\n\r\n");
    return body ? strtol(body + 4, NULL, 10) : -1;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static long cpu_us(int who_self, long *sys) {
    struct rusage ru;
    getrusage(who_self, &ru);
    *sys = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    return ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
}

/* Does "tick" occur in carry + data? Keeps the last 3 bytes in carry. */
static int saw_marker(struct stream *s, const char *data, ssize_t len) {
    char joined[3 + 65536];
    size_t carry_len = strlen(s->carry);
    memcpy(joined, s->carry, carry_len);
    memcpy(joined + carry_len, data, len);
    size_t total = carry_len + len;
    int found = memmem(joined, total, "tick", 4) != NULL;
    size_t keep = total < 3 ? total : 3;
    memcpy(s->carry, joined + total - keep, keep);
    s->carry[keep] = 0;
    return found;
}

/* The end of the head ("\r\n\r\n"), possibly split across reads: the
 * offset just past it in data, or -1. */
static ssize_t head_end(struct stream *s, const char *data, ssize_t len) {
    char joined[3 + 65536];
    size_t carry_len = strlen(s->head);
    memcpy(joined, s->head, carry_len);
    memcpy(joined + carry_len, data, len);
    size_t total = carry_len + len;
    char *end = memmem(joined, total, "\r\n\r\n", 4);
    if (end != NULL) return (end + 4 - joined) - (ssize_t)carry_len;
    size_t keep = total < 3 ? total : 3;
    memcpy(s->head, joined + total - keep, keep);
    s->head[keep] = 0;
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT N ROUNDS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int n = atoi(argv[2]);
    int rounds = atoi(argv[3]);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct stream *streams = calloc(n, sizeof *streams);
    struct epoll_event *events = calloc(1024, sizeof *events);
    long *arrivals = calloc(n, sizeof *arrivals);
    int epfd = epoll_create1(0);
    static const char request[] = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    char buf[65536];

    /* 1. open every stream */
    int started = 0, open = 0, connecting = 0;
    long deadline = now_us() + 120 * 1000000L;
    while (open < n) {
        while (started < n && connecting < WINDOW) {
            open_stream(epfd, &streams[started++]);
            connecting++;
        }
        int ready = epoll_wait(epfd, events, 1024, 1000);
        if (now_us() > deadline) {
            fprintf(stderr, "only %d of %d streams open after 120 s\n", open, n);
            return 1;
        }
        for (int i = 0; i < ready; i++) {
            struct stream *s = events[i].data.ptr;
            if (s->state == CONNECTING && (events[i].events & (EPOLLOUT | EPOLLERR))) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) { errno = err; die("connect (stream)"); }
                if (write(s->fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) die("write");
                s->state = HEAD;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
                continue;
            }
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t r = read(s->fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                fprintf(stderr, "a stream closed while opening\n");
                return 1;
            }
            if (s->state == HEAD) {
                if (!s->checked) {  /* the status line comes first, whole, in practice */
                    if (r < 12 || strncmp(buf, "HTTP/1.1 200", 12) != 0) {
                        fprintf(stderr, "not a 200 stream: %.80s\n", buf);
                        return 1;
                    }
                    s->checked = 1;
                }
                ssize_t end = head_end(s, buf, r);
                if (end >= 0) {
                    s->state = OPEN;
                    open++;
                    connecting--;
                }
            }
        }
    }
    /* the server may register a stream just after sending its head */
    deadline = now_us() + 30 * 1000000L;
    long count;
    while ((count = stream_count()) != n) {
        if (now_us() > deadline) {
            fprintf(stderr, "the server counts %ld streams, not %d\n", count, n);
            return 1;
        }
        usleep(50000);
    }
    printf("READY %d\n", n);
    fflush(stdout);
    if (!fgets(buf, sizeof buf, stdin)) return 1;

    /* 3. the rounds */
    long sys0, user0 = cpu_us(RUSAGE_SELF, &sys0);
    for (int round = 1; round <= rounds; round++) {
        for (int i = 0; i < n; i++) {
            streams[i].got = 0;
            memset(streams[i].carry, 0, sizeof streams[i].carry);
        }
        char path[64];
        snprintf(path, sizeof path, "/publish?seq=%d", round);
        int control = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(control, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect (publish)");
        char trigger[256];
        int len = snprintf(trigger, sizeof trigger,
                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
        long round_sys0, round_user0 = cpu_us(RUSAGE_SELF, &round_sys0);
        long t0 = now_us();
        if (write(control, trigger, len) != len) die("write (publish)");
        int received = 0;
        long round_deadline = t0 + ROUND_TIMEOUT_S * 1000000L;
        while (received < n) {
            int ready = epoll_wait(epfd, events, 1024, 1000);
            if (now_us() > round_deadline) {
                fprintf(stderr, "round %d: %d of %d streams got the event\n", round, received, n);
                return 1;
            }
            for (int i = 0; i < ready; i++) {
                struct stream *s = events[i].data.ptr;
                ssize_t r;
                while ((r = read(s->fd, buf, sizeof buf)) > 0) {
                    if (!s->got && saw_marker(s, buf, r)) {
                        s->got = 1;
                        s->arrival_us = now_us() - t0;
                        arrivals[received++] = s->arrival_us;
                    }
                }
                if (r == 0) {
                    fprintf(stderr, "round %d: a stream was closed by the server\n", round);
                    return 1;
                }
            }
        }
        long round_sys1, round_user1 = cpu_us(RUSAGE_SELF, &round_sys1);
        close(control);
        qsort(arrivals, n, sizeof *arrivals, cmp_long);
        printf("ROUND %d %ld %ld %ld %ld\n", round, arrivals[n - 1], arrivals[n / 2], arrivals[(n * 99) / 100],
               (round_user1 - round_user0) + (round_sys1 - round_sys0));
        fflush(stdout);
        usleep(300000);  /* let the server settle between rounds */
    }
    long sys1, user1 = cpu_us(RUSAGE_SELF, &sys1);
    printf("CPU %ld %ld\n", user1 - user0, sys1 - sys0);
    fflush(stdout);

    /* 4. close with RST */
    struct linger linger = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < n; i++) {
        setsockopt(streams[i].fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
        close(streams[i].fd);
    }
    return 0;
}
