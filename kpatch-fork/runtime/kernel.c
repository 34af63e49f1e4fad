/* The generation syscalls of the kernel extension (kernel/include/wfgen.h), x86-64 numbers as
 * in the research prototype. Our own wrappers so the runtime builds without the kernel tree;
 * each returns the syscall's result or -errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

enum {
	WF_NR_CREATE = 1000,
	WF_NR_MIGRATE = 1001,
	WF_NR_PIN = 1002,
	WF_NR_DELETE = 1003,
};

static long ret(long rc)
{
	return rc < 0 ? -errno : rc;
}

long wf_gen_create(void)
{
	return ret(syscall(WF_NR_CREATE));
}

long wf_gen_migrate(long id)
{
	return ret(syscall(WF_NR_MIGRATE, id));
}

long wf_gen_pin(uintptr_t addr, size_t len)
{
	return ret(syscall(WF_NR_PIN, addr, len));
}

long wf_gen_delete(long id)
{
	return ret(syscall(WF_NR_DELETE, id));
}
