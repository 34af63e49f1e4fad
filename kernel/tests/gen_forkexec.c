// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 5: fork() from a thread in generation N gives a child that is
 * an ordinary process with N's view (N's pinned code and data, no
 * generations of its own); execve from any thread tears all generations
 * down (the new image starts with none).
 */
#include "wftest.h"
#include <pthread.h>
#include <sys/wait.h>

__attribute__((noinline, noipa, aligned(64))) int answer(void)
{
	return 42;
}

static int (*volatile answer_ptr)(void) = answer;
static volatile int shared_var = 5;
static unsigned char *pin;
static int g1, g2;
static char self[4096];

/* Child side of the fork checks; exit code = number of failures. */
static int child_checks(int want_answer, unsigned char want_pin)
{
	int bad = 0;

	if (answer_ptr() != want_answer)
		bad++, fprintf(stderr, "child: answer %d want %d\n",
			       answer_ptr(), want_answer);
	if (pin[10] != want_pin)
		bad++, fprintf(stderr, "child: pin %c want %c\n", pin[10],
			       want_pin);
	if (wf_current() != 0)
		bad++, fprintf(stderr, "child: in gen %d\n", wf_current());
	errno = 0;
	if (wf_migrate(g1) != -1 || errno != EINVAL)
		bad++, fprintf(stderr, "child: has generation %d\n", g1);
	/* The child is a normal process: it may create its own. */
	int g = wf_create();

	if (g <= 0 || wf_migrate(g) != 0 || answer_ptr() != want_answer)
		bad++, fprintf(stderr, "child: own generation broken\n");
	shared_var = 99;	/* private to the child after fork */
	return bad;
}

static int fork_and_check(int want_answer, unsigned char want_pin)
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(child_checks(want_answer, want_pin));
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static void *exec_thread(void *arg)
{
	(void)arg;
	MUST(wf_migrate(g2));
	execl(self, self, "exec-child", (char *)NULL);
	perror("execl");
	exit(3);
}

static void *sleeper(void *arg)
{
	MUST(wf_migrate((int)(long)arg));
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	uintptr_t ts, te;
	pthread_t th;

	if (argc > 1 && !strcmp(argv[1], "exec-child")) {
		/* New image: no generations survive execve. */
		int cur = wf_current();

		errno = 0;
		int r = wf_migrate(1);

		CHECK(cur == 0, "exec'd image in gen %d", cur);
		CHECK(r == -1 && errno == EINVAL, "gen 1 survived exec");
		CHECK(answer_ptr() == 42, "fresh text");
		return wft_done("gen_forkexec(exec)");
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return 2;
	pin = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(pin, 'a', PAGE);
	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	MUST(wf_pin(pin, PAGE));
	g1 = MUST(wf_create());
	g2 = MUST(wf_create());

	MUST(wf_migrate(g1));
	uintptr_t fpage = (uintptr_t)answer & ~(PAGE - 1);

	MUST(mprotect((void *)fpage, 2 * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC));
	memcpy((void *)answer, "\xb8\x2b\0\0\0\xc3", 6);	/* 43 */
	memset(pin, 'b', PAGE);
	MUST(wf_migrate(0));

	CHECK(fork_and_check(42, 'a') == 0, "fork from gen 0");
	MUST(wf_migrate(g1));
	CHECK(fork_and_check(43, 'b') == 0, "fork from gen 1");
	MUST(wf_migrate(g2));
	CHECK(fork_and_check(42, 'a') == 0, "fork from gen 2");
	MUST(wf_migrate(0));
	CHECK(shared_var == 5, "child's writes stay in the child");
	CHECK(answer_ptr() == 42, "parent gen 0 unchanged");

	/* Fork from a second thread in generation 1 (vfork-like too). */
	MUST(wf_migrate(g1));
	pid_t vp = vfork();

	if (vp == 0)
		_exit(answer_ptr() == 43 ? 0 : 1);
	int st;

	waitpid(vp, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vfork child in gen 1");
	MUST(wf_migrate(0));

	/* execve from a thread in generation 2 while others sit in 0 and 1. */
	pid_t pid = fork();

	if (pid == 0) {
		int c1 = wf_create(), c2 = wf_create();

		g1 = c1;
		g2 = c2;
		pthread_create(&th, NULL, sleeper, (void *)(long)c1);
		pthread_create(&th, NULL, sleeper, (void *)0L);
		pthread_create(&th, NULL, exec_thread, NULL);
		for (;;)
			pause();
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec child status %x", st);
	return wft_done("gen_forkexec");
}
