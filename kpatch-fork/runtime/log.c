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

void wf_json_escape(char *dst, size_t cap, const char *src)
{
	size_t o = 0;
	for (const unsigned char *s = (const unsigned char *)src; *s && o + 7 < cap; s++) {
		if (*s == '"' || *s == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)*s;
		} else if (*s < 0x20 || *s == 0x7f) {
			o += (size_t)snprintf(dst + o, cap - o, "\\u%04x", *s);
		} else {
			dst[o++] = (char)*s;
		}
	}
	dst[o] = 0;
}

static void append(struct wf_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(struct wf_json *j, const char *fmt, ...)
{
	if (j->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(j->buf + j->len, sizeof(j->buf) - j->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(j->buf) - j->len - 2) {
		j->overflow = true;
		return;
	}
	j->len += (size_t)n;
}

void wf_json_begin(struct wf_json *j, const char *event)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	j->len = 0;
	j->overflow = false;
	append(j, "{\"time\":%lld.%06ld,\"pid\":%d,\"event\":\"%s\"", (long long)ts.tv_sec,
	       ts.tv_nsec / 1000, (int)getpid(), event);
}

void wf_json_str(struct wf_json *j, const char *key, const char *val)
{
	if (!val) {
		append(j, ",\"%s\":null", key);
		return;
	}
	char esc[4096];
	wf_json_escape(esc, sizeof(esc), val);
	append(j, ",\"%s\":\"%s\"", key, esc);
}

void wf_json_int(struct wf_json *j, const char *key, long long val)
{
	append(j, ",\"%s\":%lld", key, val);
}

void wf_json_num(struct wf_json *j, const char *key, double val)
{
	append(j, ",\"%s\":%.3f", key, val);
}

void wf_json_bool(struct wf_json *j, const char *key, bool val)
{
	append(j, ",\"%s\":%s", key, val ? "true" : "false");
}

void wf_json_hex(struct wf_json *j, const char *key, uintptr_t val)
{
	append(j, ",\"%s\":\"0x%lx\"", key, (unsigned long)val);
}

void wf_json_raw(struct wf_json *j, const char *key, const char *json)
{
	append(j, ",\"%s\":%s", key, json && *json ? json : "null");
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

void wf_json_emit_to(struct wf_json *j, int out)
{
	if (j->overflow) {
		/* Never write a broken line: keep the event name and say it was cut. */
		char *ev = strstr(j->buf, "\"event\":\"");
		char name[64] = "unknown";
		if (ev)
			sscanf(ev + 9, "%63[^\"]", name);
		j->overflow = false;
		j->len = 0;
		append(j, "{\"event\":\"%s\",\"truncated\":true", name);
	}
	j->buf[j->len++] = '}';
	j->buf[j->len++] = '\n';
	write_all(log_fd, j->buf, j->len, false);
	if (out >= 0)
		write_all(out, j->buf, j->len, true);
	j->len -= 2;
}

void wf_json_emit(struct wf_json *j)
{
	wf_json_emit_to(j, -1);
}
