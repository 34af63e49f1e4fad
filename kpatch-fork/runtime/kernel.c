/* The generation calls of the kernel extension (kernel/include/wfgen.h, kernel/README.md).
 * prctl(PR_AS_GENERATION, ...) first: seccomp allow-lists for services (systemd's
 * SystemCallFilter=@system-service) let prctl through but kill a process that calls the
 * syscalls 1000-1003. A kernel whose prctl does not know the option (EINVAL) gets the syscalls,
 * as the research prototype's did. Our own wrappers so the runtime builds without the kernel
 * tree; each returns the call's result or -errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

enum {
	WF_NR_CREATE = 1000,
	WF_NR_MIGRATE = 1001,
	WF_NR_PIN = 1002,
	WF_NR_DELETE = 1003,
};

#define WF_PR_AS_GENERATION 0x41534731
enum { WF_PR_CREATE = 1, WF_PR_MIGRATE = 2, WF_PR_PIN = 3, WF_PR_DELETE = 4, WF_PR_WRITE = 5 };

/* struct pr_as_gen_write of the kernel's uapi prctl.h */
struct wf_pr_write {
	uint64_t addr;
	uint64_t buf;
	uint64_t len;
	int32_t id;
	uint32_t flags;
};

/* The kernel refuses larger writes; patch code is far smaller, but stay general. */
#define WF_WRITE_CHUNK (1ul << 20)

static long ret(long rc)
{
	return rc < 0 ? -errno : rc;
}

/* -1 undecided, 0 syscalls, 1 prctl. Decided once with a call that changes nothing; a race
 * between two first callers decides the same. */
static int mode = -1;

bool wf_gen_has_prctl(void)
{
	int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
	if (m < 0) {
		const char *s = getenv("WF_GEN_SYSCALLS");
		if (s && *s && strcmp(s, "0") != 0)
			m = 0;
		else
			m = prctl(WF_PR_AS_GENERATION, WF_PR_MIGRATE, -1L, 0L, 0L) >= 0;
		__atomic_store_n(&mode, m, __ATOMIC_RELAXED);
	}
	return m == 1;
}

static long pr(unsigned long op, unsigned long a, unsigned long b)
{
	return ret(prctl(WF_PR_AS_GENERATION, op, a, b, 0L));
}

long wf_gen_create(void)
{
	return wf_gen_has_prctl() ? pr(WF_PR_CREATE, 0, 0) : ret(syscall(WF_NR_CREATE));
}

long wf_gen_migrate(long id)
{
	return wf_gen_has_prctl() ? pr(WF_PR_MIGRATE, (unsigned long)id, 0) : ret(syscall(WF_NR_MIGRATE, id));
}

long wf_gen_pin(uintptr_t addr, size_t len)
{
	return wf_gen_has_prctl() ? pr(WF_PR_PIN, addr, len) : ret(syscall(WF_NR_PIN, addr, len));
}

long wf_gen_delete(long id)
{
	return wf_gen_has_prctl() ? pr(WF_PR_DELETE, (unsigned long)id, 0) : ret(syscall(WF_NR_DELETE, id));
}

long wf_gen_write(long id, uintptr_t addr, const void *buf, size_t len)
{
	if (!wf_gen_has_prctl())
		return -ENOSYS;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < WF_WRITE_CHUNK ? len - done : WF_WRITE_CHUNK;
		struct wf_pr_write w = {
			.addr = addr + done,
			.buf = (uintptr_t)buf + done,
			.len = n,
			.id = (int32_t)id,
		};
		long rc = pr(WF_PR_WRITE, (uintptr_t)&w, sizeof(w));
		if (rc < 0)
			return rc;
		done += n;
	}
	return 0;
}
