/* JSON-lines log (WF_LOGFILE, default stderr): one event per line, written with one write(2)
 * so lines from concurrent writers never interleave. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int log_fd = 2;

void wf_log_open(const char *path)
{
	if (!path || !*path)
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		wf_warn("cannot open WF_LOGFILE %s: %s; logging to stderr", path, strerror(errno));
		return;
	}
	log_fd = fd;
}

uint64_t wf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void wf_warn(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(2, "wfpatch: ", 9);
	w = write(2, line, (size_t)n);
	(void)w;
}

int wf_errf(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, WF_ERRLEN, fmt, ap);
	va_end(ap);
	return -1;
}

void wf_event_begin(struct wf_json *j, const char *event)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	wf_json_init(j);
	j->label = event;
	wf_json_object(j, NULL);
	wf_json_fixed(j, "time", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, 6);
	wf_json_int(j, "pid", (int)getpid());
	wf_json_str(j, "event", event);
}

static void write_all(int fd, const char *buf, size_t len, bool sock)
{
	while (len > 0) {
		/* A client that went away must not kill the process with SIGPIPE. */
		ssize_t w = sock ? send(fd, buf, len, MSG_NOSIGNAL) : write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		buf += w;
		len -= (size_t)w;
	}
}

void wf_event_emit_to(struct wf_json *j, int out)
{
	wf_json_end(j);
	size_t len;
	const char *line = wf_json_line(j, &len);
	char fallback[200];
	if (!line) {
		/* Out of memory: still one valid line, with the event's name (a literal of ours). */
		const char *name = j->label ? j->label : "unknown";
		for (const char *c = name; *c; c++) {
			if (!((*c >= 'a' && *c <= 'z') || *c == '_')) {
				name = "unknown";
				break;
			}
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int n = snprintf(fallback, sizeof(fallback),
				 "{\"time\":%lld.%06ld,\"pid\":%d,\"event\":\"%.64s\",\"error\":\"the log line could not be written\"}\n",
				 (long long)ts.tv_sec, ts.tv_nsec / 1000, (int)getpid(), name);
		line = fallback;
		len = (size_t)n;
	}
	write_all(log_fd, line, len, false);
	if (out >= 0)
		write_all(out, line, len, true);
	wf_json_free(j);
}

void wf_event_emit(struct wf_json *j)
{
	wf_event_emit_to(j, -1);
}
