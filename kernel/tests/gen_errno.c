// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 9: every errno of the interface, then a bounded random run:
 * random ids, addresses and lengths against the four calls from several
 * threads, in child processes (a random pin may well make the child's own
 * stack private per generation and crash it; the kernel must not care).
 * Usage: gen_errno [seconds]
 */
#include "wftest.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned long rnd_addr(void)
{
	static const unsigned long bases[] = {
		0, 0x1000, 0x400000, 0x7ffffffff000UL, 0x800000000000UL,
		0xffff800000000000UL, 0xfffffffffffff000UL, 0x555555554000UL,
	};
	switch (rnd() % 4) {
	case 0:
		return bases[rnd() % 8] + (rnd() % 64) * PAGE;
	case 1:
		return rnd();
	case 2:
		return (unsigned long)&rng_state + (rnd() % 16 - 8) * PAGE;
	default:
		return (rnd() & 0x7fffffffffffUL) & ~(PAGE - 1);
	}
}

static long rnd_id(void)
{
	switch (rnd() % 4) {
	case 0:
		return (long)(rnd() % 8) - 2;
	case 1:
		return (int)rnd();
	case 2:
		return (long)rnd();
	default:
		return rnd() % 64;
	}
}

static void random_calls(uint64_t seed, long n)
{
	rng_state = seed | 1;
	for (long i = 0; i < n; i++) {
		switch (rnd() % 5) {
		case 0:
			syscall(__NR_as_generation_create);
			break;
		case 1:
			syscall(__NR_as_generation_migrate, rnd_id());
			break;
		case 2:
			syscall(__NR_as_generation_pin, rnd_addr(),
				rnd() % 3 ? rnd() % (64 * PAGE) : rnd());
			break;
		case 3:
			syscall(__NR_as_generation_delete, rnd_id());
			break;
		default:
			syscall(1000 + rnd() % 8, rnd(), rnd(), rnd());
			break;
		}
	}
}

static void *random_thread(void *arg)
{
	random_calls((uint64_t)(uintptr_t)arg, 600);
	return NULL;
}

static void random_child(uint64_t seed)
{
	pthread_t th[4];

	alarm(20);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, random_thread,
			       (void *)(uintptr_t)(seed * 4 + i + 1));
	random_calls(seed * 7 + 3, 600);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	_exit(0);
}

int main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 5;
	char path[] = "/tmp/wfgen-errno-XXXXXX";
	int fd = mkstemp(path);
	uintptr_t ts, te;

	if (fd < 0 || ftruncate(fd, PAGE))
		return 2;
	unlink(path);
	void *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
			    fd, 0);
	void *anon_shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *hole = mmap(NULL, 3 * PAGE, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole + PAGE, PAGE);

	/* Before any generation exists. */
	CHECK(wf_current() == 0, "current is 0");
	CHECK(wf_migrate(0) == 0, "migrate(0) in 0 is a no-op");
	CHECK_ERR(wf_migrate(1), EINVAL);
	CHECK_ERR(wf_migrate(12345), EINVAL);
	CHECK_ERR(wf_delete(0), EPERM);
	CHECK_ERR(wf_delete(1), EINVAL);
	CHECK_ERR(wf_delete(-3), EINVAL);
	wft_text_range(&ts, &te);
	CHECK_ERR(wf_pin((void *)(ts + 1), PAGE), EINVAL);	/* unaligned */
	CHECK_ERR(wf_pin((void *)ts, 0), EINVAL);		/* len 0 */
	CHECK_ERR(wf_pin((void *)0xffff800000000000UL, PAGE), EINVAL);
	CHECK_ERR(wf_pin((void *)0x7ffffffff000UL, 2 * PAGE), EINVAL);
	CHECK_ERR(wf_pin((void *)ts, (size_t)-PAGE), EINVAL);	/* wraps */
	CHECK_ERR(wf_pin(hole, 3 * PAGE), EINVAL);		/* not mapped */
	CHECK_ERR(wf_pin((void *)PAGE, PAGE), EINVAL);		/* not mapped */
	CHECK_ERR(wf_pin(shared, PAGE), EACCES);		/* MAP_SHARED */
	CHECK_ERR(wf_pin(anon_shared, PAGE), EACCES);
	CHECK(wf_pin(hole, PAGE) == 0, "pin of a mapped page");
	CHECK(wf_pin((void *)ts, te - ts) == 0, "pin text");
	CHECK(wf_pin((void *)ts, 1) == 0, "len rounds up");

	int g = MUST(wf_create());

	CHECK_ERR(wf_pin((void *)ts, PAGE), EPERM);		/* too late */
	CHECK(wf_migrate(-1) == 0, "-1 returns current");
	CHECK(wf_migrate(-100) == 0, "negative returns current");
	CHECK(wf_migrate(g) == 0, "migrate returns previous");
	CHECK(wf_migrate(-1) == g, "-1 returns current");
	CHECK(wf_migrate(g) == g, "migrate to current");
	CHECK_ERR(wf_migrate(g + 1000), EINVAL);
	CHECK(wf_current() == g, "failed migrate changes nothing");
	CHECK(wf_migrate(0) == g, "back to 0");
	CHECK(wf_delete(g) == 0, "delete");
	CHECK_ERR(wf_delete(g), EINVAL);			/* deleted */
	CHECK_ERR(wf_migrate(g), EINVAL);			/* deleted */
	CHECK_ERR(wf_delete(0), EPERM);
	int g2 = MUST(wf_create());

	CHECK(g2 != g, "ids are not reused at once (%d, %d)", g, g2);
	CHECK_ERR(wf_pin((void *)ts, PAGE), EPERM);
	MUST(wf_delete(g2));
	/* At most 1024 pinned ranges per process (a fresh child process). */
	pid_t lp = fork();

	if (lp == 0) {
		for (int i = 0; i < 1024; i++)
			if (wf_pin(hole, PAGE))
				_exit(1);
		errno = 0;
		_exit(wf_pin(hole, PAGE) == -1 && errno == ENOMEM ? 0 : 2);
	}
	int lst;

	waitpid(lp, &lst, 0);
	CHECK(WIFEXITED(lst) && WEXITSTATUS(lst) == 0, "pin limit: status %x",
	      lst);
	if (wft_failures)
		return wft_done("gen_errno");

	/* Bounded random run. */
	time_t end = time(NULL) + seconds;
	long children = 0, crashed = 0;

	while (time(NULL) < end) {
		pid_t pid = fork();

		if (pid == 0)
			random_child((uint64_t)time(NULL) * 1000 + children);
		int st;

		waitpid(pid, &st, 0);
		children++;
		if (!WIFEXITED(st))
			crashed++;
	}
	printf("random run: %ld children (%ld died of a signal, allowed)\n",
	       children, crashed);
	return wft_done("gen_errno");
}
