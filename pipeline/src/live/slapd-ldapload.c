/*
 * ldapload: a closed-loop LDAP search client that records every request's latency and checks
 * every answer (wfbuild live slapd). Speaks LDAPv3 in raw BER over plain sockets, so it needs
 * no libldap (the guest runs the enabled build's libldap inside slapd; the client stays apart).
 *
 *   ldapload HOST PORT CONNS SECONDS OUTPREFIX BASE USERS [THINK_US]
 *   ldapload dump HOST PORT BASE
 *
 * Load mode: CONNS connections (anonymous: LDAPv3 needs no bind), one search in flight on each:
 * a base-scope search of `cn=userK,ou=people,BASE` (K random below USERS) with the filter
 * (objectClass=*). Failed: anything but exactly one entry with that DN followed by a
 * SearchResultDone with resultCode 0, or no answer when the connection closed. Each connection
 * waits THINK_US (default 0) between an answer and its next search. Output files: those of
 * load-samples.h (OUTPREFIX.samples, OUTPREFIX.json), as memload writes them, so the same
 * analysis reads both.
 *
 * Dump mode: one subtree search of BASE on a new connection; prints "entries N hash H", H an
 * FNV-1a hash over every entry's bytes (DN and attributes, in the order slapd sends them: mdb
 * returns entries in id order, so equal directories give equal hashes). Exit 0 on resultCode 0.
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
	int busy;
	unsigned user;    /* the entry asked for */
	int entries;      /* entries received for the search in flight */
	int bad;          /* a wrong entry came */
	uint32_t msgid;
	uint64_t start_ns;
	uint64_t due_ns;
	size_t rlen;
	unsigned char rbuf[RBUF];
};

static struct conn conns[MAXCONN];
static volatile sig_atomic_t stop_flag;
static int nconn, nusers;
static const char *base;
static struct sockaddr_in addr;
static int epfd;
static uint64_t think_ns;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
/* ldapload's members of OUTPREFIX.json (load-samples.h). */
static char own[128];

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

/* ---- BER ---- */

/* Appends tag, length and value; returns the new length or 0 if it does not fit. */
static size_t ber_put(unsigned char *buf, size_t len, size_t cap, unsigned char tag, const void *v, size_t n)
{
	size_t head = n < 0x80 ? 2 : n < 0x100 ? 3 : 4;
	if (n > 0xffff || len + head + n > cap)
		return 0;
	buf[len++] = tag;
	if (n < 0x80) {
		buf[len++] = (unsigned char)n;
	} else if (n < 0x100) {
		buf[len++] = 0x81;
		buf[len++] = (unsigned char)n;
	} else {
		buf[len++] = 0x82;
		buf[len++] = (unsigned char)(n >> 8);
		buf[len++] = (unsigned char)n;
	}
	memcpy(buf + len, v, n);
	return len + n;
}

static size_t ber_int(unsigned char *buf, size_t len, size_t cap, unsigned char tag, uint32_t v)
{
	unsigned char b[5];
	size_t n = 0;
	/* Big-endian, minimal, non-negative (a leading 0 when the top bit is set). */
	int shift = 24;
	while (shift > 0 && ((v >> shift) & 0xff) == 0)
		shift -= 8;
	if ((v >> shift) & 0x80)
		b[n++] = 0;
	for (; shift >= 0; shift -= 8)
		b[n++] = (unsigned char)(v >> shift);
	return ber_put(buf, len, cap, tag, b, n);
}

/* A SearchRequest for `dn` (scope 0 base, 2 subtree), filter (objectClass=*), all attributes. */
static size_t search_request(unsigned char *out, size_t cap, uint32_t msgid, const char *dn, int scope)
{
	unsigned char req[1024], msg[1100];
	size_t r = 0, m = 0;
	r = ber_put(req, r, sizeof(req), 0x04, dn, strlen(dn));
	if (!r)
		return 0;
	r = ber_int(req, r, sizeof(req), 0x0a, (uint32_t)scope);
	r = ber_int(req, r, sizeof(req), 0x0a, 0);      /* derefAliases: never */
	r = ber_int(req, r, sizeof(req), 0x02, 0);      /* sizeLimit */
	r = ber_int(req, r, sizeof(req), 0x02, 0);      /* timeLimit */
	r = ber_put(req, r, sizeof(req), 0x01, "\0", 1); /* typesOnly FALSE */
	r = ber_put(req, r, sizeof(req), 0x87, "objectClass", 11); /* present filter */
	r = ber_put(req, r, sizeof(req), 0x30, "", 0);  /* attributes: all user attributes */
	if (!r)
		return 0;
	m = ber_int(msg, m, sizeof(msg), 0x02, msgid);
	m = ber_put(msg, m, sizeof(msg), 0x63, req, r); /* [APPLICATION 3] */
	if (!m)
		return 0;
	return ber_put(out, 0, cap, 0x30, msg, m);
}

/* Reads a tag and length at p (of n bytes); returns the header size, 0 if incomplete, -1 if bad. */
static int ber_head(const unsigned char *p, size_t n, unsigned char *tag, size_t *len)
{
	if (n < 2)
		return 0;
	*tag = p[0];
	if (p[1] < 0x80) {
		*len = p[1];
		return 2;
	}
	int k = p[1] & 0x7f;
	if (k < 1 || k > 4)
		return -1;
	if (n < (size_t)(2 + k))
		return 0;
	size_t l = 0;
	for (int i = 0; i < k; i++)
		l = l << 8 | p[2 + i];
	*len = l;
	return 2 + k;
}

/*
 * One LDAPMessage from buf: its size (0: incomplete, -1: malformed); its protocolOp tag, the op's
 * content (op, oplen) and the message id.
 */
static long ber_message(const unsigned char *buf, size_t n, uint32_t *msgid, unsigned char *optag, const unsigned char **op, size_t *oplen)
{
	unsigned char tag;
	size_t len;
	int h = ber_head(buf, n, &tag, &len);
	if (h <= 0)
		return h;
	if (tag != 0x30)
		return -1;
	if (n < h + len)
		return 0;
	const unsigned char *p = buf + h, *end = buf + h + len;
	size_t l;
	int h2 = ber_head(p, (size_t)(end - p), &tag, &l);
	if (h2 <= 0 || tag != 0x02 || l > 4 || p + h2 + l > end)
		return -1;
	uint32_t id = 0;
	for (size_t i = 0; i < l; i++)
		id = id << 8 | p[h2 + i];
	*msgid = id;
	p += h2 + l;
	int h3 = ber_head(p, (size_t)(end - p), optag, oplen);
	if (h3 <= 0 || p + h3 + *oplen > end)
		return -1;
	*op = p + h3;
	return (long)(h + len);
}

/* The DN of a SearchResultEntry (its first element), or -1. */
static int entry_dn(const unsigned char *op, size_t oplen, const unsigned char **dn, size_t *dnlen)
{
	unsigned char tag;
	int h = ber_head(op, oplen, &tag, dnlen);
	if (h <= 0 || tag != 0x04 || h + *dnlen > oplen)
		return -1;
	*dn = op + h;
	return 0;
}

/* The resultCode of an LDAPResult (SearchResultDone's content), or -1. */
static int result_code(const unsigned char *op, size_t oplen)
{
	unsigned char tag;
	size_t l;
	int h = ber_head(op, oplen, &tag, &l);
	if (h <= 0 || tag != 0x0a || l < 1 || l > 4 || h + l > oplen)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < l; i++)
		rc = rc << 8 | op[h + i];
	return rc;
}

/* ---- load ---- */

static int connect_fd(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int open_conn(struct conn *c)
{
	c->fd = connect_fd();
	if (c->fd < 0)
		return -1;
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	c->busy = 0;
	c->due_ns = 0;
	c->rlen = 0;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

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

static void user_dn(char *out, size_t cap, unsigned user)
{
	snprintf(out, cap, "cn=user%u,ou=people,%s", user, base);
}

static void send_request(struct conn *c)
{
	char dn[512];
	unsigned char msg[1200];
	c->user = rnd() % (unsigned)nusers;
	user_dn(dn, sizeof(dn), c->user);
	c->msgid = c->msgid % 0x7fffffff + 1;
	size_t n = search_request(msg, sizeof(msg), c->msgid, dn, 0);
	c->entries = 0;
	c->bad = 0;
	c->start_ns = ls_now_ns(CLOCK_MONOTONIC);
	c->busy = 1;
	if (!n || send(c->fd, msg, n, MSG_NOSIGNAL) != (ssize_t)n)
		drop_conn(c);
}

static void on_readable(struct conn *c, uint64_t deadline)
{
	for (;;) {
		if (c->rlen == RBUF) {
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
	size_t off = 0;
	for (;;) {
		uint32_t id;
		unsigned char tag;
		const unsigned char *op;
		size_t oplen;
		long used = ber_message(c->rbuf + off, c->rlen - off, &id, &tag, &op, &oplen);
		if (used == 0)
			break;
		if (used < 0) {
			drop_conn(c);
			return;
		}
		off += (size_t)used;
		if (!c->busy || id != c->msgid)
			continue; /* a notice of disconnection (id 0) or a stale answer: not ours */
		if (tag == 0x64) { /* SearchResultEntry */
			const unsigned char *dn;
			size_t dnlen;
			char want[512];
			user_dn(want, sizeof(want), c->user);
			if (entry_dn(op, oplen, &dn, &dnlen) < 0 || dnlen != strlen(want) || strncasecmp((const char *)dn, want, dnlen))
				c->bad = 1;
			c->entries++;
		} else if (tag == 0x65) { /* SearchResultDone */
			uint64_t t = ls_now_ns(CLOCK_MONOTONIC);
			int ok = result_code(op, oplen) == 0 && c->entries == 1 && !c->bad;
			ls_record(c->start_ns, t - c->start_ns, !ok);
			c->busy = 0;
			if (!stop_flag && t < deadline) {
				if (think_ns)
					c->due_ns = t + think_ns;
				else
					send_request(c);
			}
		} else if (tag != 0x73) { /* anything but a referral: wrong */
			c->bad = 1;
		}
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
}

static int dump(const char *host, const char *port, const char *dnbase)
{
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		return 2;
	int fd = connect_fd();
	if (fd < 0) {
		fprintf(stderr, "ldapload dump: connect: %s\n", strerror(errno));
		return 1;
	}
	unsigned char req[1200];
	size_t n = search_request(req, sizeof(req), 1, dnbase, 2);
	if (!n || send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n)
		return 1;
	static unsigned char buf[1 << 22];
	size_t len = 0;
	uint64_t hash = 0xcbf29ce484222325ull;
	long entries = 0;
	for (;;) {
		uint32_t id;
		unsigned char tag;
		const unsigned char *op;
		size_t oplen;
		long used = ber_message(buf, len, &id, &tag, &op, &oplen);
		if (used < 0)
			return 1;
		if (used == 0) {
			if (len == sizeof(buf))
				return 1;
			ssize_t r = read(fd, buf + len, sizeof(buf) - len);
			if (r <= 0) {
				fprintf(stderr, "ldapload dump: connection closed before the search ended\n");
				return 1;
			}
			len += (size_t)r;
			continue;
		}
		if (tag == 0x64) {
			entries++;
			for (size_t i = 0; i < oplen; i++)
				hash = (hash ^ op[i]) * 0x100000001b3ull;
		} else if (tag == 0x65) {
			int rc = result_code(op, oplen);
			printf("entries %ld hash %016llx rc %d\n", entries, (unsigned long long)hash, rc);
			close(fd);
			return rc == 0 ? 0 : 1;
		}
		memmove(buf, buf + used, len - (size_t)used);
		len -= (size_t)used;
	}
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "dump"))
		return dump(argv[2], argv[3], argv[4]);
	if (argc < 8) {
		fprintf(stderr, "usage: ldapload HOST PORT CONNS SECONDS OUTPREFIX BASE USERS [THINK_US]\n"
				"       ldapload dump HOST PORT BASE\n");
		return 2;
	}
	nconn = atoi(argv[3]);
	double seconds = atof(argv[4]);
	const char *prefix = argv[5];
	base = argv[6];
	nusers = atoi(argv[7]);
	if (argc > 8)
		think_ns = (uint64_t)atoll(argv[8]) * 1000u;
	if (nconn < 1 || nconn > MAXCONN || !(seconds > 0) || nusers < 1 || strlen(base) > 400) {
		fprintf(stderr, "ldapload: bad arguments\n");
		return 2;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "ldapload: bad address %s\n", argv[1]);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	snprintf(own, sizeof(own), "\"client\":\"ldapload\",\"connections\":%d,\"users\":%d", nconn, nusers);
	if (ls_open(prefix) < 0) {
		fprintf(stderr, "ldapload: cannot write %s.samples: %s\n", prefix, strerror(errno));
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < nconn; i++) {
		if (open_conn(&conns[i]) < 0) {
			fprintf(stderr, "ldapload: connect %s:%s: %s\n", argv[1], argv[2], strerror(errno));
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
		if (!stop_flag && t < deadline)
			for (int i = 0; i < nconn; i++)
				if (conns[i].fd < 0 && open_conn(&conns[i]) == 0)
					send_request(&conns[i]);
	}
	for (int i = 0; i < nconn; i++)
		if (conns[i].fd >= 0 && conns[i].busy)
			ls_record(conns[i].start_ns, ls_now_ns(CLOCK_MONOTONIC) - conns[i].start_ns, 1);
	ls_finish(own);
	fprintf(stderr, "ldapload: %llu requests, %llu failed, %llu dropped connections\n",
		(unsigned long long)ls.requests, (unsigned long long)ls.failed, (unsigned long long)ls.dropped);
	return 0;
}
