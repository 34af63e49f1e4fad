/*
 * memload: a closed-loop load client for memcached's text protocol that records every
 * request's latency (wfbuild live).
 *
 *   memload HOST PORT CONNS SECONDS OUTPREFIX [GET_PERCENT] [KEYS] [VALUE_BYTES] [THINK_US]
 *
 * CONNS connections, one request in flight on each; a steady get/set mix (GET_PERCENT gets,
 * default 90) over KEYS keys (default 10000) with VALUE_BYTES values (default 64); each connection waits THINK_US
 * (default 0) between an answer and its next request, which bounds the sample count when
 * another client (memcaslap) makes the load. Runs for
 * SECONDS, then waits at most 2 s for the requests in flight, and stops by itself (SIGTERM /
 * SIGINT stop it early the same way).
 *
 * Writes OUTPREFIX.samples and OUTPREFIX.json through load-samples.h (the format every load
 * client of `wfbuild live` shares): every request's start and latency, flushed every 250 ms so
 * a killed client leaves every record up to then, and the totals, the clock source and its
 * measured resolution; the summary adds connections, getPercent, keys and valueBytes.
 *
 * A failed request: any answer other than the expected one (STORED / VALUE…END / END), or a
 * request still unanswered when the connection closed. A dropped connection: the server
 * closed it or it failed (EOF, ECONNRESET, …); the client reconnects and counts it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load-samples.h"

#define MAXCONN 1024
#define RBUF 65536

struct conn {
	int fd;
	int busy;        /* a request is in flight */
	int is_get;
	uint64_t start_ns;
	uint64_t due_ns;  /* not busy: send the next request at this time (0: not scheduled) */
	size_t rlen;
	char rbuf[RBUF];
	char wbuf[512];
	size_t wlen, woff;
};

static struct conn conns[MAXCONN];
static volatile sig_atomic_t stop_flag;
static int nconn;
static struct sockaddr_in addr;
static int epfd;
static int get_percent = 90, nkeys = 10000, value_bytes = 64;
static uint64_t think_ns;
static char value[4096];
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static char own[256]; /* memload's members of the summary */

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int open_conn(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	c->busy = 0;
	c->due_ns = 0;
	c->rlen = 0;
	c->wlen = c->woff = 0;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

/* The connection failed or the server closed it: count it, fail its request, reconnect. */
static void drop_conn(struct conn *c)
{
	if (c->busy)
		ls_record(c->start_ns, ls_now_ns(CLOCK_MONOTONIC) - c->start_ns, 1);
	c->busy = 0;
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	ls_dropped(); /* the main loop reconnects it */
}

static void send_request(struct conn *c)
{
	unsigned key = rnd() % (unsigned)nkeys;
	c->is_get = (int)(rnd() % 100) < get_percent;
	if (c->is_get)
		c->wlen = (size_t)snprintf(c->wbuf, sizeof(c->wbuf), "get wfkey:%u\r\n", key);
	else
		c->wlen = (size_t)snprintf(c->wbuf, sizeof(c->wbuf), "set wfkey:%u 0 0 %d\r\n", key, value_bytes);
	c->woff = 0;
	c->start_ns = ls_now_ns(CLOCK_MONOTONIC);
	c->busy = 1;
	c->rlen = 0;
	struct iovec iov[3] = { { c->wbuf, c->wlen }, { value, (size_t)value_bytes }, { (void *)"\r\n", 2 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = c->is_get ? 1 : 3 };
	ssize_t want = (ssize_t)c->wlen + (c->is_get ? 0 : value_bytes + 2);
	ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
	if (n != want) /* loopback with a tiny request: a short send means the connection is gone */
		drop_conn(c);
}

/* 1: a complete answer (ok or not) in rbuf, 0: need more bytes. */
static int parse_answer(struct conn *c, int *ok)
{
	char *end = memmem(c->rbuf, c->rlen, "\r\n", 2);
	if (!end)
		return 0;
	if (!c->is_get) {
		*ok = (size_t)(end - c->rbuf) == 6 && memcmp(c->rbuf, "STORED", 6) == 0;
		return 1;
	}
	if ((size_t)(end - c->rbuf) == 3 && memcmp(c->rbuf, "END", 3) == 0) {
		*ok = 1;
		return 1;
	}
	if (strncmp(c->rbuf, "VALUE ", 6) != 0) {
		*ok = 0;
		return 1;
	}
	/* VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n */
	unsigned flags, bytes;
	char key[256];
	*end = 0;
	int fields = sscanf(c->rbuf, "VALUE %255s %u %u", key, &flags, &bytes);
	*end = '\r';
	if (fields != 3) {
		*ok = 0;
		return 1;
	}
	size_t need = (size_t)(end - c->rbuf) + 2 + bytes + 2 + 5;
	if (c->rlen < need)
		return 0;
	*ok = bytes == (unsigned)value_bytes && memcmp(c->rbuf + need - 5, "END\r\n", 5) == 0;
	return 1;
}

static void on_readable(struct conn *c, uint64_t deadline)
{
	for (;;) {
		if (c->rlen == RBUF) { /* an answer larger than we ever ask for */
			drop_conn(c);
			return;
		}
		ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			drop_conn(c);
			return;
		}
		if (n < 0)
			break;
		c->rlen += (size_t)n;
	}
	int ok = 0;
	if (!c->busy) { /* bytes nobody asked for */
		c->rlen = 0;
		return;
	}
	if (!parse_answer(c, &ok))
		return;
	uint64_t t = ls_now_ns(CLOCK_MONOTONIC);
	ls_record(c->start_ns, t - c->start_ns, !ok);
	c->busy = 0;
	if (!stop_flag && t < deadline) {
		if (think_ns)
			c->due_ns = t + think_ns;
		else
			send_request(c);
	}
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: memload HOST PORT CONNS SECONDS OUTPREFIX [GET_PERCENT] [KEYS] [VALUE_BYTES]\n");
		return 2;
	}
	nconn = atoi(argv[3]);
	double seconds = atof(argv[4]);
	if (argc > 6)
		get_percent = atoi(argv[6]);
	if (argc > 7)
		nkeys = atoi(argv[7]);
	if (argc > 8)
		value_bytes = atoi(argv[8]);
	if (argc > 9)
		think_ns = (uint64_t)atoll(argv[9]) * 1000u;
	if (nconn < 1 || nconn > MAXCONN || !(seconds > 0) || nkeys < 1 || get_percent < 0 || get_percent > 100 ||
	    value_bytes < 1 || value_bytes > (int)sizeof(value)) {
		fprintf(stderr, "memload: bad arguments\n");
		return 2;
	}
	memset(value, 'v', sizeof(value));
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "memload: bad address %s\n", argv[1]);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	snprintf(own, sizeof(own), "\"connections\":%d,\"getPercent\":%d,\"keys\":%d,\"valueBytes\":%d",
		 nconn, get_percent, nkeys, value_bytes);
	if (ls_open(argv[5]) < 0) {
		fprintf(stderr, "memload: cannot write %s.samples: %s\n", argv[5], strerror(errno));
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < nconn; i++) {
		if (open_conn(&conns[i]) < 0) {
			fprintf(stderr, "memload: connect %s:%s: %s\n", argv[1], argv[2], strerror(errno));
			return 1;
		}
	}
	ls_start();
	uint64_t deadline = ls.base_mono_ns + (uint64_t)(seconds * 1e9);
	ls_write_summary(0, own);
	for (int i = 0; i < nconn; i++)
		send_request(&conns[i]);

	uint64_t drain_until = 0;
	struct epoll_event evs[64];
	for (;;) {
		uint64_t t = ls_now_ns(CLOCK_MONOTONIC);
		if ((stop_flag || t >= deadline) && !drain_until)
			drain_until = t + 2000000000ull;
		if (drain_until) {
			int busy = 0;
			for (int i = 0; i < nconn; i++)
				busy += conns[i].fd >= 0 && conns[i].busy;
			if (!busy || t >= drain_until)
				break;
		}
		ls_tick(t, own);
		int n = epoll_wait(epfd, evs, 64, think_ns ? 1 : 50);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd >= 0)
				on_readable(c, deadline);
		}
		if (think_ns && !stop_flag && t < deadline) {
			uint64_t t2 = ls_now_ns(CLOCK_MONOTONIC);
			for (int i = 0; i < nconn; i++)
				if (conns[i].fd >= 0 && !conns[i].busy && conns[i].due_ns && conns[i].due_ns <= t2) {
					conns[i].due_ns = 0;
					send_request(&conns[i]);
				}
		}
		/* Reconnect dropped connections (one connect each on loopback). */
		if (!stop_flag && t < deadline)
			for (int i = 0; i < nconn; i++)
				if (conns[i].fd < 0 && open_conn(&conns[i]) == 0)
					send_request(&conns[i]);
	}
	/* Requests still unanswered after the drain: failed. */
	for (int i = 0; i < nconn; i++)
		if (conns[i].fd >= 0 && conns[i].busy)
			ls_record(conns[i].start_ns, ls_now_ns(CLOCK_MONOTONIC) - conns[i].start_ns, 1);
	ls_finish(own);
	fprintf(stderr, "memload: %llu requests, %llu failed, %llu dropped connections\n",
		(unsigned long long)ls.requests, (unsigned long long)ls.failed, (unsigned long long)ls.dropped);
	return 0;
}
