/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the in-guest generation tests. */
#ifndef WFTEST_H
#define WFTEST_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "../include/wfgen.h"

static int wft_failures;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			wft_failures++;                                    \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,      \
				__LINE__, #cond);                          \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
		}                                                          \
	} while (0)

/* A call that must succeed; aborts the test otherwise. */
#define MUST(expr)                                                         \
	({                                                                 \
		long __r = (long)(expr);                                   \
		if (__r < 0) {                                             \
			fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, \
				__LINE__, #expr, strerror(errno));         \
			exit(2);                                           \
		}                                                          \
		__r;                                                       \
	})

/* Expect a -1/errno failure. */
#define CHECK_ERR(expr, err)                                               \
	do {                                                               \
		errno = 0;                                                 \
		long __r = (long)(expr);                                   \
		CHECK(__r == -1 && errno == (err),                         \
		      "got %ld errno %d (%s), want errno %d (%s)", __r,    \
		      errno, strerror(errno), (err), strerror(err));       \
	} while (0)

static inline int wft_done(const char *name)
{
	if (wft_failures) {
		printf("%s: %d FAILED checks\n", name, wft_failures);
		return 1;
	}
	printf("%s: PASS\n", name);
	return 0;
}

#define PAGE 4096UL

/* The r-x mapping of our own executable (static binaries: one of them). */
static inline int wft_text_range(uintptr_t *start, uintptr_t *end)
{
	extern char __executable_start[], etext[];

	*start = (uintptr_t)__executable_start & ~(PAGE - 1);
	*end = ((uintptr_t)etext + PAGE - 1) & ~(PAGE - 1);
	return 0;
}

/* Free and slab memory from /proc/meminfo, in KiB. */
static inline long wft_meminfo(const char *key)
{
	char line[256];
	long val = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			val = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return val;
}

#endif
