/* Runs a program under the seccomp filters a systemd unit with MemoryDenyWriteExecute=yes and
 * SystemCallFilter=@system-service installs (test/runtime-wx.test.ts), made with libseccomp the
 * way systemd makes them and loaded before exec:
 *   --mdwe           mmap asking for PROT_WRITE|PROT_EXEC, mprotect/pkey_mprotect asking for
 *                    PROT_EXEC and shmat with SHM_EXEC fail with EPERM (systemd 252,
 *                    seccomp_memory_deny_write_execute());
 *   --syscalls FILE  an allow-list, one name a line ('#' comments): any other system call kills
 *                    the process (SIGSYS), as SystemCallFilter= does by default.
 * Usage: wfsandbox [--mdwe] [--syscalls FILE] -- PROGRAM [ARG...] */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

static void die(const char *what, int rc)
{
	fprintf(stderr, "wfsandbox: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(125);
}

static void load_mdwe(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rc;
	if (!ctx)
		die("seccomp_init", ENOMEM);
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), 1,
			      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE, PROT_EXEC | PROT_WRITE));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pkey_mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(shmat), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC));
	if (rc)
		die("MemoryDenyWriteExecute rules", rc);
	rc = seccomp_load(ctx);
	if (rc)
		die("seccomp_load (MemoryDenyWriteExecute)", rc);
	seccomp_release(ctx);
}

static void load_allow_list(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	int rc, n = 0;
	if (!f)
		die(path, errno);
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		die("seccomp_init", ENOMEM);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "#\r\n \t")] = 0;
		if (!line[0])
			continue;
		int nr = seccomp_syscall_resolve_name(line);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a system call on x86-64, as systemd skips it */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc)
			die(line, rc);
		n++;
	}
	fclose(f);
	rc = seccomp_load(ctx);
	if (rc)
		die("seccomp_load (SystemCallFilter)", rc);
	seccomp_release(ctx);
	fprintf(stderr, "wfsandbox: %d system calls allowed\n", n);
}

int main(int argc, char **argv)
{
	int mdwe = 0, i;
	const char *allow = NULL;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mdwe"))
			mdwe = 1;
		else if (!strcmp(argv[i], "--syscalls") && i + 1 < argc)
			allow = argv[++i];
		else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: wfsandbox [--mdwe] [--syscalls FILE] -- PROGRAM [ARG...]\n");
		return 125;
	}
	/* Both filters stay for the program: the strictest action of all filters wins. */
	if (mdwe)
		load_mdwe();
	if (allow)
		load_allow_list(allow);
	execv(argv[i], argv + i);
	die(argv[i], errno);
	return 125;
}
