// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 7: how tools see a process with generations (the decisions are
 * in kernel/README.md):
 *  - /proc/PID/maps and /proc/PID/task/TID/maps: the one VMA list, the same
 *    from every generation;
 *  - process_vm_readv, /proc/PID/mem and ptrace(PEEKDATA) of a thread in
 *    generation 1: unpinned memory is the one memory; pinned ranges read
 *    as generation 0 (the base view);
 *  - a core dump of a process with generations works and holds
 *    generation 0's view of pinned ranges.
 */
#include "wftest.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

static unsigned char *pin;
static volatile long shared_var;
static int g1;
static volatile pid_t g1_tid;
static volatile int go;

static void put_marker(unsigned char *p, int gen)
{
	/* "GEN?MARK" built byte by byte, so no copy sits in .rodata. */
	p[0] = 'G'; p[1] = 'E'; p[2] = 'N'; p[3] = '0' + gen;
	p[4] = 'M'; p[5] = 'A'; p[6] = 'R'; p[7] = 'K';
}

static void *g1_thread(void *arg)
{
	(void)arg;
	MUST(wf_migrate(g1));
	put_marker(pin, 1);
	shared_var = 0x5151;
	g1_tid = syscall(SYS_gettid);
	while (!go)
		usleep(1000);
	return NULL;
}

static char *slurp(const char *path)
{
	static char bufs[2][65536];
	static int which;
	char *b = bufs[which++ & 1];
	int fd = open(path, O_RDONLY);
	ssize_t n, off = 0;

	if (fd < 0)
		return NULL;
	while ((n = read(fd, b + off, sizeof(bufs[0]) - 1 - off)) > 0)
		off += n;
	close(fd);
	b[off] = 0;
	return b;
}

static void setup(void)
{
	uintptr_t ts, te;
	pthread_t th;

	pin = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	put_marker(pin, 0);
	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	MUST(wf_pin(pin, PAGE));
	g1 = MUST(wf_create());
	pthread_create(&th, NULL, g1_thread, NULL);
	while (!g1_tid)
		usleep(1000);
}

int main(void)
{
	char path[64];
	unsigned char buf[8];

	setup();

	/* maps: the same list from both generations and from the task. */
	char *m0 = strdup(slurp("/proc/self/maps"));

	MUST(wf_migrate(g1));
	char *m1 = strdup(slurp("/proc/self/maps"));

	MUST(wf_migrate(0));
	snprintf(path, sizeof(path), "/proc/self/task/%d/maps", (int)g1_tid);
	char *mt = slurp(path);

	CHECK(m0 && m1 && !strcmp(m0, m1), "maps differ between generations");
	CHECK(mt && !strcmp(m0, mt), "task maps differ");

	/* process_vm_readv from a generation-1 thread. */
	MUST(wf_migrate(g1));
	CHECK(pin[3] == '1', "gen1 sees its marker");
	struct iovec local = { buf, 8 }, remote = { pin, 8 };

	CHECK(process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == 8,
	      "process_vm_readv");
	CHECK(buf[3] == '0', "process_vm_readv reads gen 0's pinned view, got %c",
	      buf[3]);
	long v = 0;
	struct iovec l2 = { &v, sizeof(v) }, r2 = { (void *)&shared_var,
						   sizeof(v) };
	CHECK(process_vm_readv(getpid(), &l2, 1, &r2, 1, 0) == sizeof(v) &&
	      v == 0x5151, "process_vm_readv of shared memory: %lx", v);

	/* /proc/self/mem, from generation 1 as well. */
	int fd = open("/proc/self/mem", O_RDWR);

	CHECK(fd >= 0, "open mem");
	CHECK(pread(fd, buf, 8, (off_t)(uintptr_t)pin) == 8 && buf[3] == '0',
	      "/proc/self/mem reads gen 0's pinned view");
	CHECK(pread(fd, &v, sizeof(v), (off_t)(uintptr_t)&shared_var) ==
	      sizeof(v) && v == 0x5151, "/proc/self/mem shared");
	v = 0x7777;
	CHECK(pwrite(fd, &v, sizeof(v), (off_t)(uintptr_t)&shared_var) ==
	      sizeof(v), "/proc/self/mem write");
	CHECK(shared_var == 0x7777, "mem write to shared memory seen in gen1");
	close(fd);
	MUST(wf_migrate(0));

	/* ptrace: a tracer attaches to the generation-1 thread of a child. */
	int pfd[2];

	MUST(pipe(pfd));
	pid_t child = fork();

	if (child == 0) {
		/* A forked child is an ordinary process: no generations. */
		_exit(wf_migrate(g1) == -1 && errno == EINVAL ? 0 : 1);
	}
	int st;

	waitpid(child, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child has no gen %d", g1);

	child = fork();
	if (child == 0) {
		close(pfd[0]);
		pthread_t th;

		/* Pins are per process: pin again in the child. */
		MUST(wf_pin(pin, PAGE));
		g1 = MUST(wf_create());
		g1_tid = 0;
		pthread_create(&th, NULL, g1_thread, NULL);
		while (!g1_tid)
			usleep(1000);
		pid_t t = g1_tid;

		write(pfd[1], &t, sizeof(t));
		for (;;)
			pause();
	}
	close(pfd[1]);
	pid_t tid;

	CHECK(read(pfd[0], &tid, sizeof(tid)) == sizeof(tid), "tid");
	CHECK(ptrace(PTRACE_SEIZE, tid, 0, 0) == 0, "seize: %s", strerror(errno));
	CHECK(ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0, "interrupt");
	CHECK(waitpid(tid, &st, __WALL) == tid, "wait tracee");
	errno = 0;
	long word = ptrace(PTRACE_PEEKDATA, tid, pin, 0);

	CHECK(errno == 0 && ((char *)&word)[3] == '0',
	      "PEEKDATA of a pinned page of a gen-1 thread reads gen 0");
	word = ptrace(PTRACE_PEEKDATA, tid, &shared_var, 0);
	CHECK(errno == 0 && word == 0x5151, "PEEKDATA shared: %lx", word);
	CHECK(ptrace(PTRACE_POKEDATA, tid, &shared_var, 0x4242) == 0, "POKE");
	CHECK(ptrace(PTRACE_DETACH, tid, 0, 0) == 0, "detach");
	kill(child, SIGKILL);
	waitpid(child, &st, 0);

	/* Core dump of a process with generations and a thread in gen 1. */
	int cp = open("/proc/sys/kernel/core_pattern", O_WRONLY);

	if (cp >= 0) {
		write(cp, "/tmp/core.%p", 12);
		close(cp);
	}
	child = fork();
	if (child == 0) {
		struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

		setrlimit(RLIMIT_CORE, &rl);
		g1_tid = 0;
		pthread_t th;

		MUST(wf_pin(pin, PAGE));
		g1 = MUST(wf_create());
		pthread_create(&th, NULL, g1_thread, NULL);
		while (!g1_tid)
			usleep(1000);
		MUST(wf_migrate(g1));
		abort();
	}
	waitpid(child, &st, 0);
	CHECK(WIFSIGNALED(st) && WCOREDUMP(st), "core dumped: status %x", st);
	snprintf(path, sizeof(path), "/tmp/core.%d", (int)child);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0, "core file %s", path);
	if (fd >= 0) {
		static char core[8 << 20];
		ssize_t n = read(fd, core, sizeof(core));
		char want[8];

		put_marker((unsigned char *)want, 0);
		CHECK(n > 0 && memmem(core, n, want, 8),
		      "core holds gen 0's pinned page (%zd bytes)", n);
		close(fd);
		unlink(path);
	}
	go = 1;
	return wft_done("gen_introspect");
}
