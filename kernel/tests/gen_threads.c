// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 4: a thread created in generation N starts in N; thread exit
 * in any generation and process exit with live generations free
 * everything; no leak after 1,000 create/migrate/delete cycles (MemFree
 * counted with the per-CPU free lists, and Slab, over two rounds).
 * Usage: gen_threads [cycles]
 */
#include "wftest.h"
#include <pthread.h>
#include <sys/wait.h>

static volatile unsigned char *shared;

static void *report_gen(void *arg)
{
	*(int *)arg = wf_current();
	return NULL;
}

/* Thread that migrates to the generation in arg, touches memory, exits there. */
static void *visit(void *arg)
{
	int g = (int)(long)arg;

	if (wf_migrate(g) < 0)
		return (void *)1L;
	for (int i = 0; i < 8; i++)
		shared[i * PAGE] += 1;
	return NULL;
}

static void cycle(void)
{
	int g = MUST(wf_create());
	pthread_t th;
	void *ret;

	pthread_create(&th, NULL, visit, (void *)(long)g);
	pthread_join(th, &ret);
	CHECK(ret == NULL, "visitor failed");
	MUST(wf_migrate(g));
	shared[0]++;
	MUST(wf_migrate(0));
	MUST(wf_delete(g));
}

/*
 * Free memory in KiB: MemFree plus the pages on the per-CPU free lists
 * (the "count:" lines of /proc/zoneinfo), which MemFree leaves out.  Those
 * lists hold up to pcp->high pages per CPU and zone (thousands with the
 * debug config's zones), so they swing MemFree by megabytes with no page
 * lost; with them counted, a page held by the kernel is a page not free.
 */
static long free_kib(void)
{
	long free = wft_meminfo("MemFree"), pcp = 0, n;
	char line[256];
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (!f || free < 0)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %ld", &n) == 1)
			pcp += n;
	fclose(f);
	return free + pcp * (PAGE / 1024);
}

static void write_proc(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(value, f);
		fclose(f);
	}
}

/*
 * Let freed memory settle before a reading: RCU-freed tasks and mms gone,
 * page cache and reclaimable slab dropped, free pages compacted.
 */
static void settle(void)
{
	sync();
	write_proc("/proc/sys/vm/drop_caches", "3\n");
	write_proc("/proc/sys/vm/compact_memory", "1\n");
	sleep(1);
	write_proc("/proc/sys/vm/drop_caches", "3\n");
	sleep(1);
}

/*
 * One measured round of @cycles cycles; returns the free memory it lost
 * (KiB). What the kernel caches within a bound (lazily purged vmap areas,
 * memcg charge stocks, slab partial pages, RCU frees still in flight on a
 * starved emulated CPU) can move one round by a few MiB either way, and the
 * next round gives it back; a leak only ever grows.
 */
static long round_checked(int round, int cycles)
{
	long free0, free1, slab0, slab1;

	settle();
	free0 = free_kib();
	slab0 = wft_meminfo("Slab");
	for (int i = 0; i < cycles; i++)
		cycle();
	settle();
	free1 = free_kib();
	slab1 = wft_meminfo("Slab");
	printf("round %d, %d cycles: free %ld -> %ld KiB, Slab %ld -> %ld KiB (MemFree %ld KiB)\n",
	       round, cycles, free0, free1, slab0, slab1, wft_meminfo("MemFree"));
	/* A gross leak shows within one round. */
	CHECK(free0 - free1 < 4096, "round %d: free memory dropped by %ld KiB",
	      round, free0 - free1);
	CHECK(slab1 - slab0 < 1024, "round %d: Slab grew by %ld KiB",
	      round, slab1 - slab0);
	return free0 - free1;
}

int main(int argc, char **argv)
{
	int cycles = argc > 1 ? atoi(argv[1]) : 1000;
	uintptr_t ts, te;
	int g1, g2, seen = -1;
	pthread_t th;

	shared = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* An anonymous page pinned twice (overlapping ranges): each generation
	 * copies it; a leaked copy per cycle would show in MemFree. */
	char *priv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(priv, 'p', 2 * PAGE);
	MUST(wf_pin(priv, 2 * PAGE));
	MUST(wf_pin(priv + PAGE, PAGE));
	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	MUST(wf_pin((void *)ts, PAGE));
	g1 = MUST(wf_create());
	g2 = MUST(wf_create());

	/* Threads start in their creator's generation. */
	pthread_create(&th, NULL, report_gen, &seen);
	pthread_join(th, NULL);
	CHECK(seen == 0, "thread from gen 0 started in %d", seen);
	MUST(wf_migrate(g1));
	pthread_create(&th, NULL, report_gen, &seen);
	pthread_join(th, NULL);
	CHECK(seen == g1, "thread from gen %d started in %d", g1, seen);
	MUST(wf_migrate(g2));
	pthread_create(&th, NULL, report_gen, &seen);
	pthread_join(th, NULL);
	CHECK(seen == g2, "thread from gen %d started in %d", g2, seen);

	/* Deleting the generation a thread runs in: it stays until it leaves. */
	MUST(wf_delete(g2));
	CHECK(wf_current() == g2, "still in deleted gen");
	shared[0] = 7;
	CHECK(wf_migrate(0) == g2, "left deleted gen");
	CHECK_ERR(wf_migrate(g2), EINVAL);
	CHECK(shared[0] == 7, "write from deleted gen visible");
	MUST(wf_delete(g1));

	/* Process exit with live generations and threads in them. */
	for (int i = 0; i < 20; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			int g = wf_create();

			if (g < 0)
				_exit(3);
			pthread_create(&th, NULL, visit, (void *)(long)g);
			pthread_join(th, NULL);
			wf_create();
			wf_migrate(g);
			pthread_create(&th, NULL, visit, (void *)(long)g);
			_exit(0);	/* with a thread still running in g */
		}
		int st;

		waitpid(pid, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %x", st);
	}

	/* Warm up, then two measured rounds: a per-cycle leak fails both. */
	for (int i = 0; i < 50; i++)
		cycle();
	long lost = round_checked(1, cycles);

	lost += round_checked(2, cycles);
	/*
	 * One leaked generation costs > 16 KiB (mm_struct, pgd, tables): even one
	 * page lost every third cycle is > 2.6 MiB over both rounds.
	 */
	printf("both rounds, %d cycles: free memory lost %ld KiB\n", 2 * cycles, lost);
	CHECK(lost < 2048, "both rounds: free memory dropped by %ld KiB", lost);
	return wft_done("gen_threads");
}
