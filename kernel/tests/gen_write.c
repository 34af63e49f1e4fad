// SPDX-License-Identifier: GPL-2.0
/*
 * PR_AS_GEN_WRITE and the PR_AS_GENERATION prctl (kernel patch 0005).
 *
 * Code is changed in one generation without any user mapping becoming
 * writable: the kernel writes into that generation's own copy of a pinned
 * page.  Checked: the written generation sees the new bytes (and runs the
 * new code), generation 0 and generations created before do not, a
 * generation created from the written one inherits them, writes across a
 * page boundary, an r-x anonymous "arena" that only the written generation
 * gets code in; generation 0 writes unpinned private anonymous memory, which
 * every generation sees (new code mapped r-x), and never its pinned pages;
 * every errno (nothing is written on a refused call), that the prctl
 * operations behave like syscalls 1000-1003, and a bounded random-argument
 * run of every PR_AS_GENERATION operation in a child process.
 */
#include "wftest.h"
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sys/wait.h>

__attribute__((noinline, noipa, aligned(64))) int answer(void)
{
	return 42;
}

static int (*volatile answer_ptr)(void) = answer;
static atomic_int stop;
static atomic_long wrong, calls;

/* mov $43, %eax; ret */
static const unsigned char ret43[] = { 0xb8, 0x2b, 0, 0, 0, 0xc3 };
/* mov $44, %eax; ret */
static const unsigned char ret44[] = { 0xb8, 0x2c, 0, 0, 0, 0xc3 };
/* mov $7, %eax; ret */
static const unsigned char ret7[] = { 0xb8, 0x07, 0, 0, 0, 0xc3 };

/* A thread that stays in generation 0 the whole time. */
static void *gen0_caller(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (answer_ptr() != 42)
			atomic_fetch_add(&wrong, 1);
		atomic_fetch_add(&calls, 1);
	}
	return NULL;
}

/* answer() as seen from generation id; the caller comes back where it was. */
static int answer_in(int id)
{
	int prev = (int)MUST(wf_pr_migrate(id));
	int v = answer_ptr();

	MUST(wf_pr_migrate(prev));
	return v;
}

/* The permissions /proc/self/maps shows for addr, e.g. "r-xp". */
static void perms_of(void *addr, char out[5])
{
	unsigned long lo, hi;
	char line[512], p[5];
	FILE *f = fopen("/proc/self/maps", "r");

	strcpy(out, "????");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 &&
		    (uintptr_t)addr >= lo && (uintptr_t)addr < hi)
			memcpy(out, p, 5);
	fclose(f);
}

static int raw_write(int id, uintptr_t addr, const void *buf, size_t len,
		     unsigned int flags, unsigned long size, unsigned long arg5)
{
	struct wf_gen_write w = {
		.addr = addr, .buf = (uintptr_t)buf, .len = len, .id = id,
		.flags = flags,
	};

	return prctl(PR_AS_GENERATION, PR_AS_GEN_WRITE, (unsigned long)&w,
		     size, arg5);
}

/* Operations behave the same through prctl and through the syscalls. */
static void check_equivalence(int g)
{
	CHECK_ERR(wf_pr_migrate(123456), EINVAL);
	CHECK_ERR(wf_migrate(123456), EINVAL);
	CHECK_ERR(wf_pr_delete(0), EPERM);
	CHECK_ERR(wf_delete(0), EPERM);
	CHECK_ERR(wf_pr_delete(-3), EINVAL);
	CHECK_ERR(wf_delete(-3), EINVAL);
	CHECK_ERR(wf_pr_delete(123456), EINVAL);
	CHECK_ERR(wf_pr_pin((void *)((uintptr_t)answer & ~(PAGE - 1)), PAGE), EPERM);
	CHECK_ERR(wf_pin((void *)((uintptr_t)answer & ~(PAGE - 1)), PAGE), EPERM);
	CHECK(wf_pr_migrate(-1) == 0, "current via prctl");
	/* In by syscall, out by prctl and the other way round. */
	CHECK(wf_migrate(g) == 0, "syscall migrate");
	CHECK(wf_pr_migrate(-1) == g, "prctl sees %d", wf_pr_migrate(-1));
	CHECK(wf_pr_migrate(0) == g, "prctl migrate back");
	CHECK(wf_current() == 0, "syscall sees %d", wf_current());
	/* Unknown operation, unused arguments not 0, id not an int. */
	CHECK_ERR(prctl(PR_AS_GENERATION, 99, 0UL, 0UL, 0UL), EINVAL);
	CHECK_ERR(prctl(PR_AS_GENERATION, PR_AS_GEN_CREATE, 1UL, 0UL, 0UL),
		  EINVAL);
	CHECK_ERR(prctl(PR_AS_GENERATION, PR_AS_GEN_MIGRATE, 0UL, 1UL, 0UL),
		  EINVAL);
	CHECK_ERR(prctl(PR_AS_GENERATION, PR_AS_GEN_MIGRATE, 1UL << 40, 0UL,
			0UL), EINVAL);
	CHECK_ERR(prctl(PR_AS_GENERATION, PR_AS_GEN_DELETE, 1UL << 40, 0UL,
			0UL), EINVAL);
	CHECK_ERR(prctl(PR_AS_GENERATION, PR_AS_GEN_PIN, 0UL, 0UL, 1UL),
		  EINVAL);
}

static void check_errno(int g, unsigned char *data, unsigned char *unpinned)
{
	unsigned char before[16], now[16];
	int dead;

	CHECK_ERR(wf_pr_write(-1, data, "x", 1), EINVAL);
	CHECK_ERR(wf_pr_write(123456, data, "x", 1), EINVAL);
	CHECK_ERR(wf_pr_write(g, data, "x", 0), EINVAL);
	CHECK_ERR(wf_pr_write(g, data, data, (1 << 20) + 1), EINVAL);
	CHECK_ERR(raw_write(g, (uintptr_t)data, "x", 1, 1, sizeof(struct wf_gen_write), 0), EINVAL);
	CHECK_ERR(raw_write(g, (uintptr_t)data, "x", 1, 0, sizeof(struct wf_gen_write) - 1, 0), EINVAL);
	CHECK_ERR(raw_write(g, (uintptr_t)data, "x", 1, 0, sizeof(struct wf_gen_write), 1), EINVAL);
	CHECK_ERR(prctl(PR_AS_GENERATION, PR_AS_GEN_WRITE, 16UL, sizeof(struct wf_gen_write), 0UL), EFAULT);
	CHECK_ERR(wf_pr_write(g, data, NULL, 8), EFAULT);
	CHECK_ERR(wf_pr_write(g, data, (void *)16, 8), EFAULT);
	/* Not pinned: the heap-like page, the stack, kernel addresses, wrap. */
	CHECK_ERR(wf_pr_write(g, unpinned, "x", 1), EINVAL);
	CHECK_ERR(wf_pr_write(g, before, "x", 1), EINVAL);
	CHECK_ERR(wf_pr_write(g, (void *)0xffff888000000000UL, "x", 1), EINVAL);
	CHECK_ERR(wf_pr_write(g, (void *)(0x7ffffffff000UL), data, 8192), EINVAL);
	CHECK_ERR(raw_write(g, UINT64_MAX - 4, "xxxxxxxx", 8, 0, sizeof(struct wf_gen_write), 0), EINVAL);
	/* Partly pinned (the data pages end where unpinned begins): nothing written. */
	MUST(wf_pr_migrate(g));
	memcpy(before, data + 2 * PAGE - 8, 16);
	MUST(wf_pr_migrate(0));
	CHECK_ERR(wf_pr_write(g, data + 2 * PAGE - 8, "ABCDEFGHIJKLMNOP", 16), EINVAL);
	MUST(wf_pr_migrate(g));
	memcpy(now, data + 2 * PAGE - 8, 16);
	MUST(wf_pr_migrate(0));
	CHECK(!memcmp(before, now, 8), "a refused write changed the pinned part");
	/* A generation a thread runs in (here the caller itself) is busy. */
	MUST(wf_pr_migrate(g));
	CHECK_ERR(wf_pr_write(g, data, "x", 1), EBUSY);
	MUST(wf_pr_migrate(0));
	/* A deleted generation is gone for the write, as for migrate. */
	dead = (int)MUST(wf_pr_create());
	MUST(wf_pr_delete(dead));
	CHECK_ERR(wf_pr_write(dead, data, "x", 1), EINVAL);
}

/*
 * Generation 0: unpinned private anonymous memory, the one memory, so every
 * generation sees the code at once; never pinned pages, files or shared
 * memory.
 */
static void check_shared(int g, unsigned char *data)
{
	unsigned char *code = mmap(NULL, 2 * PAGE, PROT_READ | PROT_EXEC,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *shm = mmap(NULL, PAGE, PROT_READ,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char *file = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE,
				   open("/proc/self/exe", O_RDONLY), 0);
	char perms[5];

	if (code == MAP_FAILED || shm == MAP_FAILED || file == MAP_FAILED) {
		CHECK(0, "mmap failed");
		return;
	}
	MUST(wf_pr_write(0, code + PAGE - 2, ret7, sizeof(ret7)));
	MUST(wf_pr_write(0, code, ret44, sizeof(ret44)));
	CHECK(((int (*)(void))code)() == 44, "generation 0 runs the new code");
	CHECK(!memcmp(code + PAGE - 2, ret7, sizeof(ret7)), "across pages");
	MUST(wf_pr_migrate(g));
	CHECK(((int (*)(void))code)() == 44, "generation %d runs it too", g);
	MUST(wf_pr_migrate(0));
	perms_of(code, perms);
	CHECK(!strcmp(perms, "r-xp"), "new code mapping is %s", perms);
	/* Generation 0's pinned pages (text, data): the original, never. */
	CHECK_ERR(wf_pr_write(0, (void *)answer, ret43, sizeof(ret43)), EPERM);
	CHECK_ERR(wf_pr_write(0, data, "x", 1), EPERM);
	CHECK(answer_ptr() == 42, "generation 0's text changed");
	CHECK_ERR(wf_pr_write(0, shm, "x", 1), EINVAL);
	CHECK_ERR(wf_pr_write(0, file, "x", 1), EINVAL);
	CHECK(shm[0] == 0, "shared memory written");
	/* Partly unmapped: refused before anything is written. */
	munmap(code + PAGE, PAGE);
	CHECK_ERR(wf_pr_write(0, code + PAGE - 4, "ABCDEFGH", 8), EINVAL);
	CHECK(code[PAGE - 4] != 'A', "a refused write changed the mapped part");
	munmap(code, PAGE);
	munmap(shm, PAGE);
	munmap(file, PAGE);
}

static unsigned long rnd_state = 88172645463325252UL;

static unsigned long rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/*
 * Random operations and arguments in a child (its own generations); the
 * write's destinations are its pinned text and data, a scratch r-x mapping,
 * unmapped, kernel and wrapping addresses, never the child's heap or stack,
 * and the child stays in generation 0, so it survives what the kernel
 * accepts (random migrations are gen_errno's).  The kernel must neither
 * oops nor hang (the harness fails on any splat).
 */
static void check_random(uintptr_t ts, uintptr_t te, unsigned char *data,
			 int iterations)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		unsigned char *scratch = mmap(NULL, 4 * PAGE, PROT_READ | PROT_EXEC,
					      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		static unsigned char src[3 * PAGE];
		uintptr_t dst[] = {
			ts, te - 8, (uintptr_t)data, (uintptr_t)data + PAGE - 5,
			(uintptr_t)scratch, (uintptr_t)scratch + 3 * PAGE + 100,
			0, 4096, 0xffff888000000000UL, UINT64_MAX - 16,
			0x7ffffffff000UL - 8,
		};
		int i, ok = 0;

		for (i = 0; i < iterations; i++) {
			struct wf_gen_write w = {
				.addr = dst[rnd() % (sizeof(dst) / sizeof(dst[0]))],
				.buf = rnd() % 8 ? (uintptr_t)src : rnd(),
				.len = rnd() % 4 ? rnd() % (2 * PAGE) : rnd(),
				.id = (int)(rnd() % 6) - 1,
				.flags = rnd() % 16 ? 0 : (unsigned int)rnd(),
			};
			unsigned long op = rnd() % 7;
			long r;

			if (op == PR_AS_GEN_WRITE)
				r = prctl(PR_AS_GENERATION, op, (unsigned long)&w,
					  rnd() % 8 ? sizeof(w) : rnd() % 64, 0UL);
			else if (op == PR_AS_GEN_PIN)
				r = prctl(PR_AS_GENERATION, op, dst[rnd() % 6] & ~(PAGE - 1),
					  rnd() % (8 * PAGE), 0UL);
			else if (op == PR_AS_GEN_MIGRATE)
				/* Never into a generation whose text was scribbled on. */
				r = prctl(PR_AS_GENERATION, op, rnd() % 2 ? 0UL : -1UL,
					  0UL, 0UL);
			else
				r = prctl(PR_AS_GENERATION, op, rnd() % 8, 0UL, 0UL);
			ok += r >= 0;
		}
		printf("gen_write: random run, %d of %d calls succeeded\n", ok,
		       iterations);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "random run: status %d", status);
}

/* A process without generations (a fork child) has nothing to write to. */
static void check_child(int g, unsigned char *data)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		errno = 0;
		_exit(wf_pr_write(g, data, "x", 1) == -1 && errno == EINVAL ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child without generations: status %d", status);
}

int main(void)
{
	unsigned char *data, *arena, *unpinned;
	uintptr_t ts, te;
	pthread_t th;
	int g1, g2, g3;
	char perms[5];

	wft_text_range(&ts, &te);
	data = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* PROT_EXEC without PROT_WRITE: what MemoryDenyWriteExecute allows. */
	arena = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (data == MAP_FAILED || arena == MAP_FAILED)
		return 2;
	unpinned = data + 2 * PAGE;

	/* Pinned through prctl, the way a filtered service does. */
	MUST(wf_pr_pin((void *)ts, te - ts));
	MUST(wf_pr_pin(data, 2 * PAGE));
	MUST(wf_pr_pin(arena, PAGE));
	g2 = (int)MUST(wf_pr_create());	/* before any write */
	g1 = (int)MUST(wf_pr_create());
	CHECK(g1 > 0 && g2 > 0 && g1 != g2, "ids %d %d", g1, g2);
	check_equivalence(g1);

	pthread_create(&th, NULL, gen0_caller, NULL);

	/* Code: answer() returns 43 in g1 only; no mapping changed. */
	MUST(wf_pr_write(g1, (void *)answer, ret43, sizeof(ret43)));
	CHECK(answer_ptr() == 42, "generation 0 changed");
	CHECK(answer_in(g1) == 43, "g1 runs %d", answer_in(g1));
	CHECK(answer_in(g2) == 42, "g2, created before, runs %d", answer_in(g2));
	perms_of((void *)answer, perms);
	CHECK(!strcmp(perms, "r-xp"), "text is %s", perms);

	/* Code in an r-x anonymous page: only g1 has it. */
	MUST(wf_pr_write(g1, arena, ret7, sizeof(ret7)));
	CHECK(arena[0] == 0 && arena[1] == 0, "arena written in generation 0");
	MUST(wf_pr_migrate(g1));
	CHECK(((int (*)(void))arena)() == 7, "arena code in g1");
	MUST(wf_pr_migrate(0));
	perms_of(arena, perms);
	CHECK(!strcmp(perms, "r-xp"), "arena is %s", perms);

	/* Across a page boundary of pinned data. */
	MUST(wf_pr_write(g1, data + PAGE - 3, "hello, world", 12));
	CHECK(data[PAGE - 3] == 0 && data[PAGE] == 0, "data written in generation 0");
	MUST(wf_pr_migrate(g1));
	CHECK(!memcmp(data + PAGE - 3, "hello, world", 12), "g1 data");
	MUST(wf_pr_migrate(0));
	MUST(wf_pr_migrate(g2));
	CHECK(data[PAGE - 3] == 0, "g2 data changed");
	MUST(wf_pr_migrate(0));

	/* A generation created from g1 inherits its code; writing it leaves g1. */
	MUST(wf_pr_migrate(g1));
	g3 = (int)MUST(wf_pr_create());
	MUST(wf_pr_migrate(0));
	CHECK(answer_in(g3) == 43, "g3 from g1 runs %d", answer_in(g3));
	MUST(wf_pr_write(g3, (void *)answer, ret44, sizeof(ret44)));
	CHECK(answer_in(g3) == 44, "g3 runs %d", answer_in(g3));
	CHECK(answer_in(g1) == 43, "g1 after writing g3 runs %d", answer_in(g1));
	/* Rewriting a page g1 already owns. */
	MUST(wf_pr_write(g1, (void *)answer, ret44, sizeof(ret44)));
	CHECK(answer_in(g1) == 44, "g1 rewritten runs %d", answer_in(g1));
	CHECK(answer_ptr() == 42, "generation 0 changed");

	check_errno(g1, data, unpinned);
	check_shared(g1, data);
	check_child(g1, data);
	check_random(ts, te, data, 20000);

	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	CHECK(atomic_load(&wrong) == 0, "%ld wrong results in generation 0",
	      atomic_load(&wrong));
	MUST(wf_pr_delete(g1));
	MUST(wf_pr_delete(g2));
	MUST(wf_pr_delete(g3));
	printf("gen_write: %ld calls in generation 0 during the writes\n",
	       atomic_load(&calls));
	return wft_done("gen_write");
}
