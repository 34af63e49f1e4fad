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
#include <unistd.h>
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

#endif /* WFGEN_H */
