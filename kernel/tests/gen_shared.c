// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 2: everything that is not pinned is one memory.  Heap, stack,
 * .data, .bss, anonymous, file-backed (private and shared) and anonymous
 * shared pages written in one generation are visible in all others at
 * once, including pages first touched after wf_create, and also while a
 * thread in the other generation is running concurrently.
 */
#include "wftest.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>

static int data_var = 1;
static int bss_var;
static char bss_big[64 * 4096];

struct area {
	const char *name;
	volatile unsigned char *p;
	size_t len;
};

static struct area areas[16];
static int nareas;

static void add(const char *name, void *p, size_t len)
{
	areas[nareas].name = name;
	areas[nareas].p = p;
	areas[nareas].len = len;
	nareas++;
}

/* Write a pattern in generation @from and check it in generation @to. */
static void cross_check(int from, int to, unsigned char v)
{
	for (int i = 0; i < nareas; i++) {
		MUST(wf_migrate(from));
		for (size_t o = 0; o < areas[i].len; o += PAGE)
			areas[i].p[o] = v + (o / PAGE);
		MUST(wf_migrate(to));
		for (size_t o = 0; o < areas[i].len; o += PAGE) {
			unsigned char got = areas[i].p[o];

			CHECK(got == (unsigned char)(v + o / PAGE),
			      "%s+%zu written in gen %d: gen %d reads %u want %u",
			      areas[i].name, o, from, to, got,
			      (unsigned char)(v + o / PAGE));
		}
	}
}

static int g1;
static volatile long request, reply;
#define ROUNDS 10000

/* Gen-1 thread: answers each request seen in shared memory, spinning. */
static void *answerer(void *arg)
{
	(void)arg;
	MUST(wf_migrate(g1));
	for (long k = 1; k <= ROUNDS; k++) {
		while (request != k)
			sched_yield();
		reply = k;
	}
	return NULL;
}

int main(void)
{
	uintptr_t ts, te;
	char path[] = "/tmp/wfgen-shared-XXXXXX";
	int stack_var = 0;
	unsigned char *heap_before = malloc(3 * PAGE);
	int fd = mkstemp(path);

	if (fd < 0 || ftruncate(fd, 4 * PAGE))
		return 2;
	unlink(path);
	void *anon_before = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *anon_shared = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	void *file_shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
	void *file_private = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE, fd, 2 * PAGE);
	memset(anon_before, 1, PAGE);	/* one page touched before create */

	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	g1 = MUST(wf_create());

	/* Areas made after create, and pages first touched after create. */
	unsigned char *heap_after = malloc(200 * 1024);
	void *anon_after = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	add("heap_before", heap_before, 3 * PAGE);
	add("heap_after", heap_after, 200 * 1024);
	add("stack", &stack_var, 1);
	add("data", &data_var, 1);
	add("bss", &bss_var, 1);
	add("bss_big", bss_big, sizeof(bss_big));
	add("anon_before", anon_before, 4 * PAGE);
	add("anon_after", anon_after, 8 * PAGE);
	add("anon_shared", anon_shared, 4 * PAGE);
	add("file_shared", file_shared, 2 * PAGE);
	add("file_private", file_private, 2 * PAGE);

	cross_check(g1, 0, 10);
	cross_check(0, g1, 20);
	int g2 = MUST(wf_create());

	cross_check(g2, g1, 30);
	cross_check(g1, g2, 40);
	cross_check(0, g2, 50);

	/* MAP_SHARED file pages reach the file. */
	MUST(wf_migrate(g1));
	((char *)file_shared)[7] = 'Q';
	MUST(wf_migrate(0));
	char c = 0;

	CHECK(pread(fd, &c, 1, 7) == 1 && c == 'Q', "file sees gen1's write");
	/* ... and write() to the file is visible through the mapping in g2. */
	MUST(pwrite(fd, "R", 1, 8));
	MUST(wf_migrate(g2));
	CHECK(((char *)file_shared)[8] == 'R', "gen2 sees the file write");
	MUST(wf_migrate(0));

	/* Concurrent: a spinning gen-1 thread and gen 0 talk through memory. */
	pthread_t th;

	MUST(wf_migrate(0));
	pthread_create(&th, NULL, answerer, NULL);
	for (long k = 1; k <= ROUNDS; k++) {
		request = k;
		while (reply != k)
			sched_yield();
	}
	pthread_join(th, NULL);
	printf("live handshake: %d rounds\n", ROUNDS);

	MUST(wf_delete(g1));
	MUST(wf_delete(g2));
	return wft_done("gen_shared");
}
