// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark (not a test): run in the bench kernel variant, prints one JSON
 * object per line; TCG time is not native time, so compare the ratios.
 *  - wf_create (+ wf_delete) vs fork() for a process with 1 MiB and with
 *    200 MiB resident;
 *  - wf_migrate vs a sched_yield() round trip between two threads on one
 *    CPU and vs a futex wake/wait round trip between two threads;
 *  - memory per generation (MemFree delta over several generations), lazy
 *    and after one thread touched all resident memory in it.
 * Usage: gen_bench [small_mib] [big_mib]
 */
#include "wftest.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void pin_cpu(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	sched_setaffinity(0, sizeof(s), &s);
}

static char *resident;
static size_t resident_len;

static void create_vs_fork(int mib)
{
	int n = mib > 16 ? 20 : 100;
	int *g = calloc(n, sizeof(*g));
	pid_t *p = calloc(n, sizeof(*p));
	double t0, tc, tf, tfw;

	resident_len = (size_t)mib << 20;
	resident = mmap(NULL, resident_len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(resident, 1, resident_len);
	/* Whole loops are timed: the guest clock may be coarse. */
	t0 = now_us();
	for (int i = 0; i < n; i++)
		g[i] = wf_create();
	tc = (now_us() - t0) / n;
	for (int i = 0; i < n; i++)
		wf_delete(g[i]);
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		p[i] = fork();
		if (p[i] == 0)
			_exit(0);
	}
	tf = (now_us() - t0) / n;
	for (int i = 0; i < n; i++)
		waitpid(p[i], NULL, 0);
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		pid_t c = fork();

		if (c == 0)
			_exit(0);
		waitpid(c, NULL, 0);
	}
	tfw = (now_us() - t0) / n;
	printf("{\"bench\":\"create_vs_fork\",\"resident_mib\":%d,\"runs\":%d,"
	       "\"create_us\":%.1f,\"fork_us\":%.1f,\"fork_wait_us\":%.1f,"
	       "\"fork_over_create\":%.2f}\n", mib, n, tc, tf, tfw, tf / tc);
	free(g);
	free(p);
}

static void *toucher(void *arg)
{
	wf_migrate((int)(long)arg);
	for (size_t o = 0; o < resident_len; o += PAGE)
		(void)((volatile char *)resident)[o];
	wf_migrate(0);
	return NULL;
}

static void memory_per_gen(int mib)
{
	enum { LAZY = 64, TOUCHED = 8 };
	int g[LAZY];
	long f0, f1, f2;

	/* Many generations, so per-CPU page lists do not hide the cost. */
	f0 = wft_meminfo("MemFree");
	for (int i = 0; i < LAZY; i++)
		g[i] = wf_create();
	f1 = wft_meminfo("MemFree");
	for (int i = 0; i < LAZY; i++)
		wf_delete(g[i]);
	sleep(1);
	f2 = wft_meminfo("MemFree");
	for (int i = 0; i < TOUCHED; i++) {
		pthread_t th;

		g[i] = wf_create();
		pthread_create(&th, NULL, toucher, (void *)(long)g[i]);
		pthread_join(th, NULL);
	}
	long f3 = wft_meminfo("MemFree");

	for (int i = 0; i < TOUCHED; i++)
		wf_delete(g[i]);
	printf("{\"bench\":\"memory_per_generation\",\"resident_mib\":%d,"
	       "\"lazy_kib\":%.1f,\"touched_kib\":%.1f}\n", mib,
	       (double)(f0 - f1) / LAZY, (double)(f2 - f3) / TOUCHED);
	munmap(resident, resident_len);
}

static atomic_int yield_stop;

static void *yielder(void *arg)
{
	(void)arg;
	pin_cpu(0);
	while (!atomic_load(&yield_stop))
		sched_yield();
	return NULL;
}

static atomic_int fword;

static long futex(atomic_int *a, int op, int v)
{
	return syscall(SYS_futex, a, op, v, NULL, NULL, 0);
}

static void *futex_partner(void *arg)
{
	long n = (long)arg;

	for (long i = 0; i < n; i++) {
		while (atomic_load(&fword) != 1)
			futex(&fword, FUTEX_WAIT_PRIVATE, 0);
		atomic_store(&fword, 0);
		futex(&fword, FUTEX_WAKE_PRIVATE, 1);
	}
	return NULL;
}

static void migrate_vs_switch(void)
{
	long n = 20000;
	int g = wf_create();
	double t0, tm, ty, tfx;
	pthread_t th;

	pin_cpu(0);
	t0 = now_us();
	for (long i = 0; i < n; i++) {
		wf_migrate(g);
		wf_migrate(0);
	}
	tm = (now_us() - t0) / (2 * n);

	pthread_create(&th, NULL, yielder, NULL);
	usleep(10000);
	t0 = now_us();
	for (long i = 0; i < n; i++)
		sched_yield();	/* each yield runs the other thread once */
	ty = (now_us() - t0) / n;
	atomic_store(&yield_stop, 1);
	pthread_join(th, NULL);

	long nf = 5000;

	pthread_create(&th, NULL, futex_partner, (void *)nf);
	t0 = now_us();
	for (long i = 0; i < nf; i++) {
		atomic_store(&fword, 1);
		futex(&fword, FUTEX_WAKE_PRIVATE, 1);
		while (atomic_load(&fword) != 0)
			futex(&fword, FUTEX_WAIT_PRIVATE, 1);
	}
	tfx = (now_us() - t0) / nf;
	pthread_join(th, NULL);
	wf_delete(g);
	printf("{\"bench\":\"migrate_vs_switch\",\"migrate_us\":%.2f,"
	       "\"yield_round_trip_us\":%.2f,\"futex_round_trip_us\":%.2f,"
	       "\"migrate_over_yield\":%.2f,\"migrate_over_futex\":%.2f}\n",
	       tm, ty, tfx, tm / ty, tm / tfx);
}

int main(int argc, char **argv)
{
	int small = argc > 1 ? atoi(argv[1]) : 1;
	int big = argc > 2 ? atoi(argv[2]) : 200;
	uintptr_t ts, te;

	wft_text_range(&ts, &te);
	if (wf_pin((void *)ts, te - ts)) {
		perror("wf_pin");
		return 2;
	}
	char cs[64] = "?";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");

	if (f) {
		if (fscanf(f, "%63s", cs) != 1)
			strcpy(cs, "?");
		fclose(f);
	}
	printf("{\"bench\":\"setup\",\"clocksource\":\"%s\",\"pinned_kib\":%lu}\n",
	       cs, (unsigned long)(te - ts) / 1024);
	migrate_vs_switch();
	create_vs_fork(small);
	memory_per_gen(small);
	create_vs_fork(big);
	memory_per_gen(big);
	return 0;
}
