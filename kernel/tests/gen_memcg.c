// SPDX-License-Identifier: GPL-2.0
/*
 * A memory cgroup limit hit by pinned copies.  Pages a generation copies
 * (anonymous pinned pages at wf_create, and pinned page-cache pages on the
 * first write in a generation) are charged to the process's memory cgroup,
 * so its limit holds for them: wf_create fails with ENOMEM, or the cgroup's
 * OOM killer ends the process, as for any other memory; it never grows past
 * the limit and the kernel never splats.  The same programs run to the end
 * without the limit (the limit is what stops them), and under a limit that
 * fits, the nine semantics hold on memory in the cgroup.
 */
#include "gen_feature.h"
#include <sys/mount.h>
#include <sys/stat.h>

#define CGROOT "/sys/fs/cgroup"
#define PIN_MB 32

/* A fresh cgroup per run: memory.peak and memory.events count from its creation. */
static char cg[128];
static int runs;

static void new_cgroup(const char *max)
{
	char path[192];

	snprintf(cg, sizeof(cg), CGROOT "/wfgen-memcg-%d", runs++);
	if (mkdir(cg, 0755)) {
		fprintf(stderr, "mkdir %s: %s\n", cg, strerror(errno));
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/memory.swap.max", cg);
	feat_write_file(path, "0");
	snprintf(path, sizeof(path), "%s/memory.max", cg);
	MUST(feat_write_file(path, max));
}

static int join_cgroup(void)
{
	char path[192], me[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(me, sizeof(me), "%d", getpid());
	return feat_write_file(path, me);
}

static long cg_read(const char *file, const char *key)
{
	char path[256], line[256];
	size_t n = key ? strlen(key) : 0;
	long val = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		if (!key)
			val = strtol(line, NULL, 10);
		else if (!strncmp(line, key, n) && line[n] == ' ')
			val = strtol(line + n + 1, NULL, 10);
	}
	fclose(fp);
	return val;
}

/* Child: anonymous pinned memory, copied by every wf_create. Exit 0 done, 10 ENOMEM. */
static int create_copies(void)
{
	size_t len = PIN_MB << 20;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 2;
	memset(p, 0x5a, len);
	MUST(wf_pin(p, len));
	for (int i = 0; i < 4; i++) {
		if (wf_create() < 0)
			return errno == ENOMEM ? 10 : 3;
	}
	return 0;
}

/* Child: pinned private file pages, shared at create, copied on each generation's first write. */
static int cow_copies(void)
{
	size_t len = PIN_MB << 20;
	char path[] = "/tmp/wfgen-memcg-XXXXXX";
	int fd = mkstemp(path), g[4];
	unsigned char *p;

	if (fd < 0 || ftruncate(fd, len))
		return 2;
	unlink(path);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return 2;
	for (size_t o = 0; o < len; o += PAGE)
		(void)*(volatile unsigned char *)(p + o);
	MUST(wf_pin(p, len));
	for (int i = 0; i < 4; i++)
		g[i] = MUST(wf_create());
	for (int i = 0; i < 4; i++) {
		MUST(wf_migrate(g[i]));
		for (size_t o = 0; o < len; o += PAGE)
			p[o] = (unsigned char)i;
	}
	return 0;
}

/* Runs @fn in a child in a new cgroup with memory.max = @max ("max": none). */
static int in_cgroup(int (*fn)(void), const char *max)
{
	pid_t pid;
	int st;

	new_cgroup(max);
	pid = fork();
	if (pid == 0) {
		if (join_cgroup())
			_exit(4);
		_exit(fn());
	}
	waitpid(pid, &st, 0);
	return st;
}

static void limit_case(const char *name, int (*fn)(void))
{
	long peak;
	int st;

	st = in_cgroup(fn, "max");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s without a limit: status %#x", name, st);
	printf("gen_memcg %s: no limit, status %#x, peak %ld KiB\n", name, st,
	       cg_read("memory.peak", NULL) >> 10);
	st = in_cgroup(fn, "48M");
	peak = cg_read("memory.peak", NULL);
	printf("gen_memcg %s: limit 48M, status %#x (%s), peak %ld KiB, max events %ld, oom_kill %ld\n",
	       name, st, WIFSIGNALED(st) ? "killed" : WEXITSTATUS(st) == 10 ? "ENOMEM" : "exited",
	       peak >> 10, cg_read("memory.events", "max"), cg_read("memory.events", "oom_kill"));
	CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || (WIFEXITED(st) && WEXITSTATUS(st) == 10),
	      "%s: the limit did not stop the copies (status %#x)", name, st);
	CHECK(peak < 0 || peak <= (48L << 20), "%s: cgroup peak %ld above its limit", name, peak);
	CHECK(cg_read("memory.events", "max") > 0, "%s: memory.events max did not count", name);
}

int main(int argc, char **argv)
{
	struct feat f = { .name = "gen_memcg" };

	if (argc > 2 && !strcmp(argv[1], "exec-child"))
		return feat_exec_child(f.name, argv[2]);
	mkdir(CGROOT, 0755);
	mount("cgroup2", CGROOT, "cgroup2", 0, NULL);
	feat_write_file(CGROOT "/cgroup.subtree_control", "+memory");
	if (access(CGROOT "/cgroup.controllers", F_OK)) {
		printf("gen_memcg: no cgroup2 at %s (kernel without cgroups)\n", CGROOT);
		return 1;
	}
	new_cgroup("max");
	if (access(CGROOT "/wfgen-memcg-0/memory.max", F_OK)) {
		printf("gen_memcg: no memory controller in %s\n", CGROOT);
		return 1;
	}
	limit_case("copies at wf_create", create_copies);
	limit_case("copies on write", cow_copies);

	/* The nine semantics for a process in a cgroup, under a limit that fits. */
	new_cgroup("64M");
	MUST(join_cgroup());
	feat_init(&f, argc, argv);
	f.len = 1024 * PAGE;
	f.area = mmap(NULL, f.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f.area == MAP_FAILED)
		return 2;
	feat_check_all(&f, 3000);
	feat_write_file(CGROOT "/cgroup.procs", "0");
	return wft_done("gen_memcg");
}
