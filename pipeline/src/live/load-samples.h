/*
 * load-samples.h: what every load client of `wfbuild live` records, in one format the host's
 * analysis (analyze.ts) reads: OUTPREFIX.samples, every request's start and latency, and
 * OUTPREFIX.json, the running totals and the clock. memload.c and slapd-ldapload.c include it.
 *
 * OUTPREFIX.samples: "WFLS1\n", then per request two LEB128 varints: the start's distance from
 * the previous request's start (ns, zigzag: starts are not ordered across connections), and
 * latency_ns << 1 | failed. OUTPREFIX.json is rewritten through a temporary name (a reader
 * never sees half of it): format, final, requests, failed, droppedConnections, maxLatencyNs,
 * clocksource, resolutionNs (the smallest step measured), getresNs (what clock_getres states),
 * baseMonoNs / baseRealNs (the same moment on both clocks: the host maps patch moments onto
 * the samples with them), endMonoNs, and the client's own members.
 *
 * Header-only, all static: a client is one file compiled alone (`gcc -O2 client.c`), and one
 * thread calls these (the clients are single-threaded epoll loops).
 */
#ifndef WF_LOAD_SAMPLES_H
#define WF_LOAD_SAMPLES_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static struct {
	FILE *file;
	char prefix[4000];
	uint64_t prev_start_ns;
	uint64_t requests, failed, dropped, max_latency_ns;
	uint64_t base_mono_ns, base_real_ns;
	uint64_t last_flush_ns, last_summary_ns;
	long resolution_ns, getres_ns;
	char clocksource[64];
} ls;

static uint64_t ls_now_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The smallest step the monotonic clock makes, measured (clock_getres only states it). */
static void ls_measure_clock(void)
{
	struct timespec r;
	clock_getres(CLOCK_MONOTONIC, &r);
	ls.getres_ns = r.tv_sec * 1000000000L + r.tv_nsec;
	long best = -1;
	for (int i = 0; i < 2000; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		do
			clock_gettime(CLOCK_MONOTONIC, &b);
		while (b.tv_sec == a.tv_sec && b.tv_nsec == a.tv_nsec);
		long d = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
		if (best < 0 || d < best)
			best = d;
	}
	ls.resolution_ns = best;
	snprintf(ls.clocksource, sizeof(ls.clocksource), "unknown");
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f) {
		if (fgets(ls.clocksource, sizeof(ls.clocksource), f))
			ls.clocksource[strcspn(ls.clocksource, "\n\"\\")] = 0;
		fclose(f);
	}
}

/* Creates PREFIX.samples and measures the clock; -1 with errno when the file cannot be made. */
static int ls_open(const char *prefix)
{
	char path[4100];
	snprintf(ls.prefix, sizeof(ls.prefix), "%s", prefix);
	snprintf(path, sizeof(path), "%s.samples", ls.prefix);
	ls.file = fopen(path, "w");
	if (!ls.file)
		return -1;
	fputs("WFLS1\n", ls.file);
	ls_measure_clock();
	return 0;
}

/* The moment the load starts: the base of the first sample's start and of the summary's clocks. */
static void ls_start(void)
{
	ls.base_mono_ns = ls_now_ns(CLOCK_MONOTONIC);
	ls.base_real_ns = ls_now_ns(CLOCK_REALTIME);
	ls.prev_start_ns = ls.base_mono_ns;
	ls.last_flush_ns = ls.last_summary_ns = ls.base_mono_ns;
}

static void ls_put_varint(uint64_t v)
{
	while (v >= 0x80) {
		putc((int)(v & 0x7f) | 0x80, ls.file);
		v >>= 7;
	}
	putc((int)v, ls.file);
}

/* One request: started at start_ns (CLOCK_MONOTONIC), answered (or given up) latency_ns later. */
static void ls_record(uint64_t start_ns, uint64_t latency_ns, int failed)
{
	int64_t delta = (int64_t)(start_ns - ls.prev_start_ns);
	ls.prev_start_ns = start_ns;
	ls_put_varint(((uint64_t)delta << 1) ^ (uint64_t)(delta >> 63));
	ls_put_varint(latency_ns << 1 | (failed ? 1 : 0));
	ls.requests++;
	if (failed)
		ls.failed++;
	if (latency_ns > ls.max_latency_ns)
		ls.max_latency_ns = latency_ns;
}

/* A connection the server closed or that failed (the client reconnects it). */
static void ls_dropped(void)
{
	ls.dropped++;
}

/*
 * Writes PREFIX.json; `own` is the client's members as JSON text without braces (e.g.
 * "\"client\":\"ldapload\",\"connections\":16"), or "".
 */
static void ls_write_summary(int final, const char *own)
{
	char path[4100], tmp[4200];
	snprintf(path, sizeof(path), "%s.json", ls.prefix);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f,
		"{\"format\":1,%s%s\"final\":%s,\"requests\":%llu,\"failed\":%llu,\"droppedConnections\":%llu,"
		"\"maxLatencyNs\":%llu,\"clocksource\":\"%s\",\"resolutionNs\":%ld,\"getresNs\":%ld,"
		"\"baseMonoNs\":%llu,\"baseRealNs\":%llu,\"endMonoNs\":%llu}\n",
		own, *own ? "," : "", final ? "true" : "false", (unsigned long long)ls.requests,
		(unsigned long long)ls.failed, (unsigned long long)ls.dropped,
		(unsigned long long)ls.max_latency_ns, ls.clocksource, ls.resolution_ns, ls.getres_ns,
		(unsigned long long)ls.base_mono_ns, (unsigned long long)ls.base_real_ns,
		(unsigned long long)ls_now_ns(CLOCK_MONOTONIC));
	fclose(f);
	rename(tmp, path);
}

/*
 * Called from the client's loop at `now_ns`: the samples reach the file every 250 ms and the
 * summary every second, so a run killed mid-way leaves what it measured until then.
 */
static void ls_tick(uint64_t now_ns, const char *own)
{
	if (now_ns - ls.last_flush_ns > 250000000ull) {
		fflush(ls.file);
		ls.last_flush_ns = now_ns;
	}
	if (now_ns - ls.last_summary_ns > 1000000000ull) {
		ls_write_summary(0, own);
		ls.last_summary_ns = now_ns;
	}
}

/* Closes the samples and writes the final summary. */
static void ls_finish(const char *own)
{
	fclose(ls.file);
	ls.file = NULL;
	ls_write_summary(1, own);
}

#endif
