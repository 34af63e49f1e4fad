/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The nine semantics (kernel/README.md), checked on memory that a
 * memory-management feature (THP, KSM, NUMA balancing, swap, userfaultfd,
 * memory cgroups) acts on.  A test provides the area and a "poke" that makes
 * the feature act on it now (collapse/split huge pages, let ksmd merge,
 * migrate or NUMA-scan, page out, ...); feat_check_all() pokes between and
 * during every check:
 *
 *  1 pinned pages diverge (generation 0 'A', g1 'B', g2 'C')
 *  2 the area is one memory: a pattern written in one generation is read
 *    back in the others after the poke
 *  3 mprotect in one generation applies in all (a write faults in another)
 *  4 a thread starts in its creator's generation
 *  5 fork from g1 gives g1's view; execve from a generation leaves none
 *  6 a pthread mutex/condvar that lives in the area works across generations
 *  7 process_vm_readv and /proc/self/maps see the one memory
 *  8 threads migrating between three generations while writing the area
 *    (and the poke running) never lose a write
 *  9 errnos: pin after create (EPERM), unknown id (EINVAL), delete 0 (EPERM)
 *
 * The area's pages all get the same pattern (so KSM can merge them); the
 * last page holds the futex objects of check 6.
 */
#ifndef GEN_FEATURE_H
#define GEN_FEATURE_H

#include "wftest.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>

struct feat {
	const char *name;
	unsigned char *area;	/* page aligned, unpinned */
	size_t len;		/* bytes, >= 4 pages */
	void (*poke)(struct feat *f);
	int g1, g2;
	int shared;		/* MAP_SHARED area: a fork child's writes reach us */
};

static unsigned char feat_pin[4 * PAGE] __attribute__((aligned(4096)));
static char feat_self[4096];

/* Pattern byte at @off for @seed: the same in every page. */
static inline unsigned char feat_pat(unsigned char seed, size_t off)
{
	return (unsigned char)(seed * 31 + (off % PAGE) * 7 + 1);
}

static inline size_t feat_data_len(struct feat *f)
{
	return f->len - PAGE;
}

static void feat_poke(struct feat *f)
{
	if (f->poke)
		f->poke(f);
}

/* Small helpers for /proc and /sys knobs. */
static inline int feat_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static inline long feat_read_long(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/* A counter from /proc/vmstat, or -1. */
static inline long feat_vmstat(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long val = -1;
	FILE *fp = fopen("/proc/vmstat", "r");

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, key, n) && line[n] == ' ')
			val = strtol(line + n + 1, NULL, 10);
	fclose(fp);
	return val;
}

/* Sum of a field (e.g. "AnonHugePages", "Swap") in /proc/self/smaps for [p, p+len). */
static inline long feat_smaps_kb(void *p, size_t len, const char *key)
{
	char line[512];
	unsigned long lo, hi, a = (unsigned long)p, b = a + len;
	size_t n = strlen(key);
	int in = 0;
	long sum = 0;
	FILE *fp = fopen("/proc/self/smaps", "r");

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = lo < b && hi > a;
			continue;
		}
		if (in && !strncmp(line, key, n) && line[n] == ':')
			sum += strtol(line + n + 1, NULL, 10);
	}
	fclose(fp);
	return sum;
}

/* Must be called before any generation exists: pins feat_pin, makes g1 and g2. */
static void feat_init(struct feat *f, int argc, char **argv);

static void feat_fill(struct feat *f, unsigned char seed)
{
	for (size_t o = 0; o < feat_data_len(f); o++)
		f->area[o] = feat_pat(seed, o);
}

/* True if the area holds the pattern of @seed (silent). */
static inline int feat_holds(struct feat *f, unsigned char seed)
{
	for (size_t o = 0; o < feat_data_len(f); o++)
		if (f->area[o] != feat_pat(seed, o))
			return 0;
	return 1;
}

/* Number of wrong bytes in the area for @seed (reported once). */
static long feat_verify(struct feat *f, unsigned char seed, const char *what)
{
	long bad = 0;

	for (size_t o = 0; o < feat_data_len(f); o++) {
		if (f->area[o] != feat_pat(seed, o)) {
			if (!bad)
				fprintf(stderr, "%s: %s: byte %zu is %u want %u (gen %d)\n",
					f->name, what, o, f->area[o], feat_pat(seed, o),
					wf_current());
			bad++;
		}
	}
	return bad;
}

static void check_pinned(struct feat *f, const char *when)
{
	const int gens[3] = { 0, f->g1, f->g2 };
	const unsigned char want[3] = { 'A', 'B', 'C' };
	int prev = wf_current();

	for (int i = 0; i < 3; i++) {
		MUST(wf_migrate(gens[i]));
		for (size_t o = 0; o < sizeof(feat_pin); o += 511)
			if (feat_pin[o] != want[i]) {
				CHECK(0, "%s 1 (%s): pinned byte %zu in gen %d is %c want %c",
				      f->name, when, o, gens[i], feat_pin[o], want[i]);
				break;
			}
	}
	MUST(wf_migrate(prev));
}

static void check_one_memory(struct feat *f)
{
	const int gens[3] = { 0, f->g1, f->g2 };

	for (int w = 0; w < 3; w++) {
		unsigned char seed = (unsigned char)(0x40 + w);

		MUST(wf_migrate(gens[w]));
		feat_fill(f, seed);
		feat_poke(f);
		for (int r = 0; r < 3; r++) {
			MUST(wf_migrate(gens[(w + r) % 3]));
			CHECK(feat_verify(f, seed, "2") == 0,
			      "%s 2: pattern written in gen %d wrong in gen %d",
			      f->name, gens[w], gens[(w + r) % 3]);
		}
	}
	/* One distinct byte per page, written in g2, seen in 0 and g1. */
	MUST(wf_migrate(f->g2));
	for (size_t o = 0; o < feat_data_len(f); o += PAGE)
		f->area[o + 17] = (unsigned char)(o / PAGE * 13 + 5);
	feat_poke(f);
	for (int r = 0; r < 2; r++) {
		long bad = 0;

		MUST(wf_migrate(gens[r]));
		for (size_t o = 0; o < feat_data_len(f); o += PAGE)
			bad += f->area[o + 17] != (unsigned char)(o / PAGE * 13 + 5);
		CHECK(bad == 0, "%s 2: %ld per-page markers from g2 lost in gen %d",
		      f->name, bad, gens[r]);
	}
	MUST(wf_migrate(0));
	feat_fill(f, 0x40);
}

static sigjmp_buf feat_jmp;

static void feat_segv(int sig)
{
	(void)sig;
	siglongjmp(feat_jmp, 1);
}

/* True if writing *p faults. */
static int write_faults(volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = feat_segv }, old;
	int faulted = 0;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(feat_jmp, 1) == 0)
		*p = *p;
	else
		faulted = 1;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static void check_mappings(struct feat *f)
{
	MUST(wf_migrate(f->g1));
	MUST(mprotect(f->area, feat_data_len(f), PROT_READ));
	MUST(wf_migrate(0));
	CHECK(write_faults(f->area + PAGE), "%s 3: mprotect from g1 not seen in gen 0", f->name);
	MUST(wf_migrate(f->g2));
	CHECK(write_faults(f->area), "%s 3: mprotect from g1 not seen in g2", f->name);
	MUST(mprotect(f->area, feat_data_len(f), PROT_READ | PROT_WRITE));
	feat_poke(f);
	MUST(wf_migrate(f->g1));
	CHECK(!write_faults(f->area + 2 * PAGE), "%s 3: mprotect back from g2 not seen in g1", f->name);
	CHECK(feat_verify(f, 0x40, "3") == 0, "%s 3: content changed by mprotect", f->name);
	MUST(wf_migrate(0));
}

static void *report_gen(void *arg)
{
	*(int *)arg = wf_current();
	return NULL;
}

static void check_thread_start(struct feat *f)
{
	pthread_t th;
	int got = -1;

	MUST(wf_migrate(f->g2));
	pthread_create(&th, NULL, report_gen, &got);
	pthread_join(th, NULL);
	MUST(wf_migrate(0));
	CHECK(got == f->g2, "%s 4: thread created in g2 started in %d", f->name, got);
}

static int fork_child(struct feat *f)
{
	int bad = 0;

	if (feat_pin[100] != 'B')
		bad++, fprintf(stderr, "%s 5: child pinned %c want B\n", f->name, feat_pin[100]);
	if (wf_current() != 0)
		bad++, fprintf(stderr, "%s 5: child in gen %d\n", f->name, wf_current());
	if (feat_verify(f, 0x40, "5 child"))
		bad++;
	/* The child's copy is its own: writing it leaves the parent alone. */
	if (!f->shared)
		f->area[3] ^= 0xff;
	return bad;
}

static int feat_exec_gen;

/* In a forked child with generations of its own: execve from one of them. */
static void *exec_thread(void *arg)
{
	struct feat *f = arg;
	char g[16];

	MUST(wf_migrate(feat_exec_gen));
	if (feat_verify(f, 0x40, "5 before execve"))
		_exit(5);
	snprintf(g, sizeof(g), "%d", feat_exec_gen);
	execl(feat_self, feat_self, "exec-child", g, (char *)NULL);
	perror("execl");
	_exit(3);
}

/* argv[1] == "exec-child": the new image must have no generations. */
static int feat_exec_child(const char *name, const char *g1)
{
	errno = 0;
	if (wf_current() != 0 || wf_migrate(atoi(g1)) != -1 || errno != EINVAL) {
		fprintf(stderr, "%s 5: generations survived execve\n", name);
		return 1;
	}
	return 0;
}

static void check_fork_exec(struct feat *f)
{
	pid_t pid;
	int st;

	MUST(wf_migrate(f->g1));
	feat_poke(f);
	/* Every page present before fork (a child has no userfaultfd handler). */
	CHECK(feat_verify(f, 0x40, "5 before fork") == 0, "%s 5: area wrong in g1", f->name);
	pid = fork();
	if (pid == 0)
		_exit(fork_child(f));
	MUST(wf_migrate(0));
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s 5: fork child status %#x", f->name, st);
	CHECK(f->area[3] == feat_pat(0x40, 3), "%s 5: child's write reached the parent", f->name);
	MUST(wf_migrate(f->g2));
	CHECK(feat_verify(f, 0x40, "5 after fork") == 0, "%s 5: area changed by fork", f->name);
	MUST(wf_migrate(0));

	pid = fork();
	if (pid == 0) {
		pthread_t th;

		/* fork gave an ordinary process: make it generations of its own. */
		feat_exec_gen = MUST(wf_create());
		pthread_create(&th, NULL, exec_thread, f);
		pthread_join(th, NULL);
		_exit(4);
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s 5: execve child status %#x", f->name, st);
}

struct feat_sync {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long turn;
};

#define FEAT_ROUNDS 300

static void *pong(void *arg)
{
	struct feat *f = arg;
	struct feat_sync *s = (void *)(f->area + f->len - PAGE);

	MUST(wf_migrate(f->g1));
	for (long k = 1; k <= FEAT_ROUNDS; k++) {
		pthread_mutex_lock(&s->mu);
		while (s->turn != 2 * k - 1)
			pthread_cond_wait(&s->cv, &s->mu);
		s->turn++;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static void check_futex(struct feat *f)
{
	struct feat_sync *s = (void *)(f->area + f->len - PAGE);
	pthread_t th;

	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->turn = 0;
	MUST(wf_migrate(f->g2));
	pthread_create(&th, NULL, pong, f);
	for (long k = 1; k <= FEAT_ROUNDS; k++) {
		pthread_mutex_lock(&s->mu);
		s->turn++;
		pthread_cond_broadcast(&s->cv);
		while (s->turn != 2 * k)
			pthread_cond_wait(&s->cv, &s->mu);
		pthread_mutex_unlock(&s->mu);
		if (k % 100 == 0)
			feat_poke(f);
	}
	pthread_join(th, NULL);
	MUST(wf_migrate(0));
	CHECK(s->turn == 2 * FEAT_ROUNDS, "%s 6: ping-pong ended at %ld", f->name, s->turn);
}

static void check_introspect(struct feat *f)
{
	size_t n = feat_data_len(f) < 16 * PAGE ? feat_data_len(f) : 16 * PAGE;
	unsigned char *buf = malloc(n);
	struct iovec local = { buf, n }, remote = { f->area, n };
	char m0[8192] = "", m1[8192] = "";
	int fd;

	MUST(wf_migrate(f->g1));
	feat_poke(f);
	CHECK(process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n,
	      "%s 7: process_vm_readv: %s", f->name, strerror(errno));
	CHECK(!memcmp(buf, f->area, n), "%s 7: process_vm_readv differs from g1's view", f->name);
	fd = open("/proc/self/maps", O_RDONLY);
	read(fd, m1, sizeof(m1) - 1);
	close(fd);
	MUST(wf_migrate(0));
	fd = open("/proc/self/maps", O_RDONLY);
	read(fd, m0, sizeof(m0) - 1);
	close(fd);
	CHECK(!strcmp(m0, m1), "%s 7: /proc/self/maps differs between gen 0 and g1", f->name);
	free(buf);
}

#define FEAT_THREADS 6

struct feat_worker {
	struct feat *f;
	int idx;
	long iters;
	long lost;
	pthread_t th;
};

/* Set while check 8's threads write the area (a poke must not drop their data). */
static volatile int feat_in_stress;

/* Each worker owns every FEAT_THREADS-th 8-byte word of the area. */
static void *worker(void *arg)
{
	struct feat_worker *w = arg;
	struct feat *f = w->f;
	const int gens[3] = { 0, f->g1, f->g2 };
	size_t words = feat_data_len(f) / 8;
	volatile uint64_t *a = (volatile uint64_t *)f->area;

	for (long k = 0; k < w->iters; k++) {
		size_t i = ((size_t)k * 4099 * FEAT_THREADS + w->idx) % words;
		uint64_t v = ((uint64_t)w->idx << 48) | (uint64_t)k;

		i -= i % FEAT_THREADS;
		i += w->idx;
		if (i >= words)
			continue;
		MUST(wf_migrate(gens[k % 3]));
		a[i] = v;
		MUST(wf_migrate(gens[(k + 1) % 3]));
		if (a[i] != v)
			w->lost++;
	}
	MUST(wf_migrate(0));
	return NULL;
}

static void check_stress(struct feat *f, long iters)
{
	struct feat_worker w[FEAT_THREADS];
	long lost = 0;

	feat_in_stress = 1;
	for (int i = 0; i < FEAT_THREADS; i++) {
		w[i] = (struct feat_worker){ .f = f, .idx = i, .iters = iters };
		pthread_create(&w[i].th, NULL, worker, &w[i]);
	}
	for (int k = 0; k < 3; k++)
		feat_poke(f);
	for (int i = 0; i < FEAT_THREADS; i++) {
		pthread_join(w[i].th, NULL);
		lost += w[i].lost;
	}
	feat_in_stress = 0;
	CHECK(lost == 0, "%s 8: %ld writes lost by migrating threads", f->name, lost);
	printf("%s 8: %d threads x %ld migrations, %ld lost\n", f->name, FEAT_THREADS, 2 * iters, lost);
	feat_fill(f, 0x40);
}

static void check_errno(struct feat *f)
{
	CHECK_ERR(wf_pin(feat_pin, PAGE), EPERM);
	CHECK_ERR(wf_migrate(0x7ffffff0), EINVAL);
	CHECK_ERR(wf_delete(0), EPERM);
	CHECK(wf_current() == 0, "%s 9: main thread in gen %d", f->name, wf_current());
}

static void feat_init(struct feat *f, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (readlink("/proc/self/exe", feat_self, sizeof(feat_self) - 1) < 0) {
		perror("readlink /proc/self/exe");
		exit(2);
	}
	memset(feat_pin, 'A', sizeof(feat_pin));
	MUST(wf_pin(feat_pin, sizeof(feat_pin)));
	f->g1 = MUST(wf_create());
	MUST(wf_migrate(f->g1));
	memset(feat_pin, 'B', sizeof(feat_pin));
	MUST(wf_migrate(0));
	f->g2 = MUST(wf_create());
	MUST(wf_migrate(f->g2));
	memset(feat_pin, 'C', sizeof(feat_pin));
	MUST(wf_migrate(0));
}

/* Every check, in order, on @f's area (initialised here). */
static void feat_check_all(struct feat *f, long stress_iters)
{
	feat_fill(f, 0x40);
	check_pinned(f, "start");
	check_one_memory(f);
	check_mappings(f);
	check_thread_start(f);
	check_fork_exec(f);
	check_futex(f);
	check_introspect(f);
	check_stress(f, stress_iters);
	check_errno(f);
	check_pinned(f, "end");
	CHECK(feat_verify(f, 0x40, "end") == 0, "%s: area wrong at the end", f->name);
	printf("%s: nine semantics checked\n", f->name);
}

#endif
