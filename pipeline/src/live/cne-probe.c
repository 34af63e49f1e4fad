/*
 * Which _logger_parse_cne runs in memcached: the original or the one a patch brought.
 *
 * Debian's 0007 only initialises `rport` in _logger_parse_cne / _logger_parse_cce; every address
 * family memcached accepts sets it anyway, so the `watch connevents` lines are the same before
 * and after the fix. What differs is the code that runs: both versions format the line with
 * __snprintf_chk, the original from memcached's text, the patched one from the patch's own code
 * mapping. This library, preloaded into the server by the live run (LIVE_CNE_PROBE=1), forwards
 * snprintf / __snprintf_chk to vsnprintf and, for a conn_new line, appends the caller's return
 * address to $CNE_PROBE_LOG ("0x…\n", one write). The guest then looks the address up in
 * /proc/PID/maps: memcached's file → the original ran; an anonymous r-x mapping → the patch's.
 * The patch's calls reach this too: libwfpatch resolves an undefined symbol it cannot find
 * defined in the target through dlsym(RTLD_DEFAULT), which finds the preloaded definition first.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char conn_new[] = "ts=%lld.%d gid=%llu type=conn_new ";

/* No stdio here: this runs inside snprintf's own replacement. */
static void note(const char *fmt, const void *caller)
{
	if (strncmp(fmt, conn_new, sizeof(conn_new) - 1) != 0)
		return;
	const char *path = getenv("CNE_PROBE_LOG");
	if (!path)
		return;
	char line[24];
	size_t n = 0;
	line[n++] = '0';
	line[n++] = 'x';
	uintptr_t a = (uintptr_t)caller;
	int shift = 60;
	while (shift > 0 && !((a >> shift) & 0xf))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		line[n++] = "0123456789abcdef"[(a >> shift) & 0xf];
	line[n++] = '\n';
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, n);
	(void)w;
	close(fd);
}

int snprintf(char *s, size_t maxlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(s, maxlen, fmt, ap);
	va_end(ap);
	note(fmt, __builtin_return_address(0));
	return r;
}

int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *fmt, ...)
{
	(void)flag;
	if (slen < maxlen)
		abort(); /* what glibc's check does (__chk_fail) */
	va_list ap;
	va_start(ap, fmt);
	int r = vsnprintf(s, maxlen, fmt, ap);
	va_end(ap);
	note(fmt, __builtin_return_address(0));
	return r;
}
