/* The patcher thread: one poll loop over the trigger sources — SIGPATCH (through a self-pipe),
 * the control socket, WF_CYCLIC's timer — and the workers' migration notifications. Requests
 * are queued and run one transition at a time. transition.c reports through its return values
 * when a transition has ended; this loop then answers (closes) the client that asked for it.
 *
 * Control socket: abstract unix stream socket "@wfpatch.<pid>", one request line per
 * connection, answered with the JSON log lines of that request; the last line's event is
 * "done", "rejected" or "status". Requests:
 *   apply <path>    apply the patch file
 *   next            apply the next file of WF_PATCH_QUEUE (what SIGPATCH does)
 *   rollback        undo the newest patch
 *   status          report the applied patches
 *   inventory       threads and their generations, when each patch came in, autoload's outcomes
 *   fork            time one fork() of this process (forkprobe.c)
 * Only the process's own user (or root) may connect. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"
#include "transition.h"

#define MAX_CLIENTS 16
#define MAX_QUEUE 64

static int sig_pipe[2] = { -1, -1 };
/* The same name twice: exact length (socat, Python, C) and padded to sizeof(sun_path) with
 * NULs, which is how Node's net.connect() addresses abstract sockets. */
static int listen_fd[2] = { -1, -1 };
static struct client {
	int fd;
	char buf[4200];
	size_t len;
	bool busy; /* its request is queued or running */
} clients[MAX_CLIENTS];
static struct wf_request queue[MAX_QUEUE];
static size_t q_head, q_len;
static int running_client = -1; /* the client of the running transition, or -1 */
static char **patch_queue;
static size_t patch_queue_len, patch_queue_pos;

static void on_sigpatch(int sig)
{
	(void)sig;
	int saved = errno;
	char c = 1;
	ssize_t w = write(sig_pipe[1], &c, 1);
	(void)w;
	errno = saved;
}

/* The request of this client is answered: close its connection. */
static void client_done(int fd)
{
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd == fd && clients[i].busy) {
			close(fd);
			clients[i].fd = -1;
			clients[i].busy = false;
			clients[i].len = 0;
		}
	}
}

static void enqueue(enum wf_req_kind kind, const char *path, const char *source, int client)
{
	if (q_len == MAX_QUEUE) {
		wf_warn("request queue full: %s trigger dropped", source);
		if (client >= 0) {
			struct wf_json j;
			wf_event_begin(&j, "rejected");
			wf_json_str(&j, "reason", "request queue full");
			wf_event_emit_to(&j, client);
			client_done(client);
		}
		return;
	}
	struct wf_request *r = &queue[(q_head + q_len++) % MAX_QUEUE];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->source = source;
	r->reply_fd = client;
	r->ns = wf_now_ns();
	if (path)
		snprintf(r->path, sizeof(r->path), "%s", path);
}

void wf_control_enqueue_apply(const char *path, const char *source)
{
	enqueue(WF_REQ_APPLY, path, source, -1);
	/* Wake the patcher's poll (its eventfd), so the queue runs without another trigger. */
	uint64_t one = 1;
	ssize_t w = write(wf_notify_fd(), &one, sizeof(one));
	(void)w;
}

static void run_queue(void)
{
	while (!wf_transition_active() && q_len > 0) {
		struct wf_request r = queue[q_head];
		q_head = (q_head + 1) % MAX_QUEUE;
		q_len--;
		if (r.kind == WF_REQ_NEXT) {
			/* One file per trigger, in order; past the end, a migration without a patch. */
			if (patch_queue_pos < patch_queue_len)
				snprintf(r.path, sizeof(r.path), "%s", patch_queue[patch_queue_pos++]);
			else
				r.path[0] = 0;
		}
		if (wf_transition_start(&r))
			client_done(r.reply_fd);
		else
			running_client = r.reply_fd;
	}
}

static void client_request(struct client *c, char *line)
{
	struct wf_json j;
	char *arg = strchr(line, ' ');
	if (arg)
		*arg++ = 0;
	if (!strcmp(line, "apply") && arg && *arg) {
		c->busy = true;
		enqueue(WF_REQ_APPLY, arg, "socket", c->fd);
	} else if (!strcmp(line, "next") && !arg) {
		c->busy = true;
		enqueue(WF_REQ_NEXT, NULL, "socket", c->fd);
	} else if (!strcmp(line, "rollback") && !arg) {
		c->busy = true;
		enqueue(WF_REQ_ROLLBACK, NULL, "socket", c->fd);
	} else if (!strcmp(line, "inventory") && !arg) {
		c->busy = true;
		wf_inventory_emit(c->fd);
		client_done(c->fd);
	} else if (!strcmp(line, "status") && !arg) {
		c->busy = true;
		wf_transition_status(c->fd);
		client_done(c->fd);
	} else if (!strcmp(line, "fork") && !arg) {
		c->busy = true;
		wf_fork_probe(c->fd);
		client_done(c->fd);
	} else {
		wf_event_begin(&j, "rejected");
		wf_json_str(&j, "reason", "unknown request (expected: apply PATH | next | rollback | status | inventory | fork)");
		wf_event_emit_to(&j, c->fd);
		c->busy = true;
		client_done(c->fd);
	}
}

static void client_readable(struct client *c)
{
	ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		/* The client went away; a running request still finishes, just unreported. */
		if (!c->busy) {
			close(c->fd);
			c->fd = -1;
		}
		return;
	}
	c->len += (size_t)r;
	c->buf[c->len] = 0;
	char *nl = strchr(c->buf, '\n');
	if (!nl) {
		if (c->len == sizeof(c->buf) - 1) {
			close(c->fd);
			c->fd = -1;
			c->len = 0;
		}
		return;
	}
	*nl = 0;
	client_request(c, c->buf);
}

static void accept_client(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || (cred.uid != 0 && cred.uid != geteuid())) {
		close(fd);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].len = 0;
			clients[i].busy = false;
			return;
		}
	}
	close(fd);
}

static int open_socket(bool padded)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "wfpatch.%d", (int)getpid());
	socklen_t len = padded ? (socklen_t)sizeof(a)
			       : (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (bind(fd, (struct sockaddr *)&a, len) || listen(fd, 8)) {
		wf_warn("control socket @wfpatch.%d: %s", (int)getpid(), strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void parse_patch_queue(void)
{
	if (!wf_settings.queue)
		return;
	char *copy = strdup(wf_settings.queue), *save = NULL;
	for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		if (!*tok)
			continue;
		char **n = realloc(patch_queue, (patch_queue_len + 1) * sizeof(*n));
		if (!n)
			break;
		patch_queue = n;
		patch_queue[patch_queue_len++] = strdup(tok);
	}
	free(copy);
}

static void *patcher_main(void *arg)
{
	(void)arg;
	uint64_t cyclic_ns = wf_settings.cyclic > 0 ? (uint64_t)(wf_settings.cyclic * 1e9) : 0;
	uint64_t next_cyclic = cyclic_ns ? wf_now_ns() + cyclic_ns : 0;
	bool reap_pending = false;
	for (;;) {
		struct pollfd p[4 + MAX_CLIENTS];
		int idx[4 + MAX_CLIENTS];
		int n = 0;
		p[n] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
		idx[n++] = -1;
		p[n] = (struct pollfd){ .fd = wf_notify_fd(), .events = POLLIN };
		idx[n++] = -2;
		for (int k = 0; k < 2; k++) {
			if (listen_fd[k] >= 0) {
				p[n] = (struct pollfd){ .fd = listen_fd[k], .events = POLLIN };
				idx[n++] = -3;
			}
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (clients[i].fd >= 0 && !clients[i].busy) {
				p[n] = (struct pollfd){ .fd = clients[i].fd, .events = POLLIN };
				idx[n++] = i;
			}
		}
		uint64_t now = wf_now_ns();
		int64_t timeout_ms = -1;
		if (wf_transition_active())
			timeout_ms = 50; /* re-check: a thread may have exited */
		else if (reap_pending)
			timeout_ms = 200; /* a rolled-back generation waits for a sleeping thread to leave it */
		if (next_cyclic) {
			int64_t t = next_cyclic > now ? (int64_t)((next_cyclic - now) / 1000000) + 1 : 0;
			if (timeout_ms < 0 || t < timeout_ms)
				timeout_ms = t;
		}
		int rc = poll(p, (nfds_t)n, (int)timeout_ms);
		if (rc < 0 && errno != EINTR)
			continue;
		for (int i = 0; rc > 0 && i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (idx[i] == -1) {
				char buf[64];
				ssize_t r = read(sig_pipe[0], buf, sizeof(buf));
				for (ssize_t k = 0; k < r; k++)
					enqueue(WF_REQ_NEXT, NULL, "signal", -1);
			} else if (idx[i] == -2) {
				uint64_t v;
				ssize_t r = read(wf_notify_fd(), &v, sizeof(v));
				(void)r;
			} else if (idx[i] == -3) {
				accept_client(p[i].fd);
			} else {
				client_readable(&clients[idx[i]]);
			}
		}
		if (next_cyclic && wf_now_ns() >= next_cyclic) {
			enqueue(WF_REQ_NEXT, NULL, "cyclic", -1);
			while (next_cyclic <= wf_now_ns())
				next_cyclic += cyclic_ns;
		}
		if (wf_transition_poll()) {
			client_done(running_client);
			running_client = -1;
		}
		run_queue();
		if (!wf_transition_active())
			reap_pending = wf_transition_reap();
	}
	return NULL;
}

int wf_control_start(void)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	parse_patch_queue();
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC)) {
		wf_warn("pipe: %s", strerror(errno));
		return -1;
	}
	struct sigaction act = { 0 };
	act.sa_handler = on_sigpatch;
	act.sa_flags = SA_RESTART; /* workers blocked in read() keep blocking */
	sigemptyset(&act.sa_mask);
	if (sigaction(SIGPATCH, &act, NULL))
		wf_warn("sigaction(SIGPATCH): %s", strerror(errno));
	listen_fd[0] = open_socket(false);
	listen_fd[1] = open_socket(true);

	/* The patcher thread must not take SIGPATCH itself; blocking it everywhere else is the
	 * application's business. All other signals stay as the application set them. */
	pthread_t th;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = pthread_create(&th, NULL, patcher_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		wf_warn("cannot start the patcher thread: %s", strerror(err));
		return -1;
	}
	pthread_setname_np(th, "wf-patcher");
	pthread_detach(th);
	return 0;
}
