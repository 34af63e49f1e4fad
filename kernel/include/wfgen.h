/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * wfgen.h - address-space generations, user interface (x86-64).
 *
 * The system calls of the CONFIG_AS_GENERATIONS kernel series in
 * kernel/patches/ (numbers as in the research prototype).  Each wrapper
 * returns what the kernel returns: >= 0 on success, -1 with errno set on
 * failure (see kernel/README.md for the semantics of each call).
 */
#ifndef WFGEN_H
#define WFGEN_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define __NR_as_generation_create	1000
#define __NR_as_generation_migrate	1001
#define __NR_as_generation_pin		1002
#define __NR_as_generation_delete	1003

/* Mark [addr, addr+len) private per generation; before the first wf_create. */
static inline int wf_pin(void *addr, size_t len)
{
	return (int)syscall(__NR_as_generation_pin, addr, len);
}

/* New generation cloned from the caller's current view; returns its id (> 0). */
static inline int wf_create(void)
{
	return (int)syscall(__NR_as_generation_create);
}

/* Move the calling thread to generation id; returns the previous id.
 * id < 0 only returns the current id. */
static inline int wf_migrate(int id)
{
	return (int)syscall(__NR_as_generation_migrate, id);
}

/* Drop generation id (> 0); it goes away when its last thread leaves. */
static inline int wf_delete(int id)
{
	return (int)syscall(__NR_as_generation_delete, id);
}

/* The calling thread's generation. */
static inline int wf_current(void)
{
	return wf_migrate(-1);
}

/*
 * The same operations through prctl(2) (kernel patch 0005), for processes whose
 * seccomp filter allows prctl but not syscalls 1000-1003 (systemd's
 * SystemCallFilter=@system-service), plus the write call that only prctl has.
 * On a kernel without them prctl fails with EINVAL.
 */
#define PR_AS_GENERATION	0x41534731
#define PR_AS_GEN_CREATE	1
#define PR_AS_GEN_MIGRATE	2
#define PR_AS_GEN_PIN		3
#define PR_AS_GEN_DELETE	4
#define PR_AS_GEN_WRITE		5

/* PR_AS_GEN_WRITE's argument (struct pr_as_gen_write of the kernel's prctl.h). */
struct wf_gen_write {
	uint64_t addr;		/* destination, pinned in generation id */
	uint64_t buf;		/* source, in the caller's memory */
	uint64_t len;		/* 1 .. 1 MiB */
	int32_t id;		/* generation, > 0, no thread running in it */
	uint32_t flags;		/* 0 */
};

static inline int wf_pr_create(void)
{
	return prctl(PR_AS_GENERATION, PR_AS_GEN_CREATE, 0UL, 0UL, 0UL);
}

static inline int wf_pr_migrate(int id)
{
	return prctl(PR_AS_GENERATION, PR_AS_GEN_MIGRATE, (unsigned long)(long)id,
		     0UL, 0UL);
}

static inline int wf_pr_pin(void *addr, size_t len)
{
	return prctl(PR_AS_GENERATION, PR_AS_GEN_PIN, (unsigned long)addr,
		     (unsigned long)len, 0UL);
}

static inline int wf_pr_delete(int id)
{
	return prctl(PR_AS_GENERATION, PR_AS_GEN_DELETE, (unsigned long)(long)id,
		     0UL, 0UL);
}

/* Copy len bytes from buf into generation id's own copy of its pinned pages at
 * addr; user mappings are not changed, so this needs no writable code. */
static inline int wf_pr_write(int id, void *addr, const void *buf, size_t len)
{
	struct wf_gen_write w = {
		.addr = (uintptr_t)addr, .buf = (uintptr_t)buf, .len = len, .id = id,
	};

	return prctl(PR_AS_GENERATION, PR_AS_GEN_WRITE, (unsigned long)&w,
		     (unsigned long)sizeof(w), 0UL);
}

#endif /* WFGEN_H */
