/* Writing into the running program's code: the jump at the entry of every replaced function,
 * and (global-mode rollback) restoring the bytes it replaced. Also registers the patch's
 * .eh_frame.
 *
 * Local mode keeps W^X (systemd's MemoryDenyWriteExecute= refuses mprotect adding PROT_EXEC and
 * writable+executable mappings): a patch's code is assembled, in memory that is never
 * executable, for its own PROT_READ|PROT_EXEC anonymous mapping near the target, which the
 * kernel fills (PR_AS_GEN_WRITE to generation 0 of unpinned memory: the one memory, so the code
 * is there in every generation, also for a thread returning through it after a rollback). The
 * entry jumps are written by the kernel into the new generation's own copies of the pinned
 * text, before any thread runs there. No user mapping is ever writable and executable, no
 * mprotect adds PROT_EXEC. Without the kernel's write call (or with WF_WX=0) the code is made
 * r-x by mprotect and the patcher thread, already in the new generation, writes the jumps
 * through a temporary rwx mapping, which lands in that generation only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define PAGE 4096ul

/* Other threads may be executing on these pages (in other generations, or untracked threads),
 * so the temporary protection keeps PROT_EXEC. */
static int poke(uintptr_t addr, const void *bytes, size_t len, char *err)
{
	uintptr_t start = addr & ~(PAGE - 1);
	size_t span = ((addr + len + PAGE - 1) & ~(PAGE - 1)) - start;
	if (mprotect((void *)start, span, PROT_READ | PROT_WRITE | PROT_EXEC))
		return wf_errf(err, "mprotect 0x%lx: %s", (unsigned long)start, strerror(errno));
	memcpy((void *)addr, bytes, len);
	__builtin___clear_cache((char *)addr, (char *)addr + len);
	if (mprotect((void *)start, span, PROT_READ | PROT_EXEC))
		return wf_errf(err, "mprotect 0x%lx back: %s", (unsigned long)start, strerror(errno));
	return 0;
}

/* The jump from f's old entry to its new code. */
static void make_jump(const struct wf_func *f, unsigned char jmp[14])
{
	if (f->jump_len == 5) {
		int32_t rel = (int32_t)(f->new_addr - (f->old_addr + 5));
		jmp[0] = 0xe9;
		memcpy(jmp + 1, &rel, 4);
	} else {
		/* jmp *0(%rip); .quad new */
		static const unsigned char ind[6] = { 0xff, 0x25, 0, 0, 0, 0 };
		memcpy(jmp, ind, 6);
		memcpy(jmp + 6, &f->new_addr, 8);
	}
}

int wf_text_write_jumps(struct wf_loaded *p, char *err)
{
	for (size_t i = 0; i < p->nfuncs; i++) {
		struct wf_func *f = &p->funcs[i];
		unsigned char jmp[14];
		make_jump(f, jmp);
		memcpy(f->saved, (const void *)f->old_addr, f->jump_len);
		if (poke(f->old_addr, jmp, f->jump_len, err)) {
			/* Undo the ones already written: never leave a half-applied patch. */
			while (i-- > 0)
				poke(p->funcs[i].old_addr, p->funcs[i].saved, p->funcs[i].jump_len, err);
			return -1;
		}
	}
	return 0;
}

int wf_text_restore(struct wf_loaded *p, char *err)
{
	for (size_t i = p->nfuncs; i-- > 0;) {
		struct wf_func *f = &p->funcs[i];
		if (poke(f->old_addr, f->saved, f->jump_len, err))
			return -1;
	}
	return 0;
}

/* The unwinder's __register_frame or __deregister_frame (libgcc_s). */
static void (*unwinder_fn(const char *name))(void *)
{
	void *f = dlsym(RTLD_DEFAULT, name);
	if (!f) {
		void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_GLOBAL);
		if (h)
			f = dlsym(h, name);
	}
	return (void (*)(void *))f;
}

void wf_register_eh_frame(struct wf_loaded *p)
{
	static void (*reg)(void *);
	if (!p->neh_frames)
		return;
	if (!reg)
		reg = unwinder_fn("__register_frame");
	if (!reg)
		return;
	for (unsigned i = 0; i < p->neh_frames; i++)
		reg(p->eh_frames[i]);
	p->eh_registered = p->neh_frames;
}

void wf_deregister_eh_frame(struct wf_loaded *p)
{
	static void (*dereg)(void *);
	if (!p->eh_registered)
		return;
	if (!dereg)
		dereg = unwinder_fn("__deregister_frame");
	/* Registered through the same library, so it is there; libgcc aborts on an unknown frame,
	 * hence only the ones registered. */
	for (unsigned i = 0; dereg && i < p->eh_registered; i++)
		dereg(p->eh_frames[i]);
	p->eh_registered = 0;
}

void wf_text_wx_init(void)
{
	const char *wx = getenv("WF_WX");
	wf_settings.wx = !(wx && !strcmp(wx, "0")) && wf_gen_has_prctl();
}

int wf_text_place(struct wf_loaded *p, size_t size, char *err)
{
	size_t span = (size + PAGE - 1) & ~(PAGE - 1);
	/* PROT_EXEC without PROT_WRITE: allowed by MemoryDenyWriteExecute. */
	void *a = wf_map_near(p->target, span, PROT_READ | PROT_EXEC, err);
	if (!a)
		return -1;
	p->text_map = a;
	p->text_map_size = span;
	p->text_addr = (uintptr_t)a;
	p->wx = true;
	return 0;
}

int wf_text_fill(struct wf_loaded *p, char *err)
{
	/* Generation 0 with unpinned memory: the one memory, in every generation alike. */
	long rc = wf_gen_write(0, p->text_addr, p->text_stage, p->text_bytes);
	if (rc < 0)
		return wf_errf(err, "writing %zu bytes of patch code at 0x%lx: %s", p->text_bytes,
			       (unsigned long)p->text_addr, strerror((int)-rc));
	return 0;
}

int wf_text_write_gen(struct wf_loaded *p, long gen, char *err)
{
	for (size_t i = 0; i < p->nfuncs; i++) {
		struct wf_func *f = &p->funcs[i];
		unsigned char jmp[14];
		make_jump(f, jmp);
		/* The caller still runs in the generation gen was cloned from: same bytes. */
		memcpy(f->saved, (const void *)f->old_addr, f->jump_len);
		long rc = wf_gen_write(gen, f->old_addr, jmp, f->jump_len);
		if (rc < 0)
			return wf_errf(err, "writing the jump of %s into generation %ld at 0x%lx: %s", f->name, gen,
				       (unsigned long)f->old_addr, strerror((int)-rc));
	}
	return 0;
}

int wf_text_gen_idle(const struct wf_loaded *p, long gen)
{
	if (!p->nfuncs)
		return -ENOENT;
	/* The jump the generation already holds at the first replaced entry, written again: the
	 * kernel refuses (EBUSY) while any thread runs in gen, and otherwise writes the same bytes. */
	const struct wf_func *f = &p->funcs[0];
	unsigned char jmp[14];
	make_jump(f, jmp);
	long rc = wf_gen_write(gen, f->old_addr, jmp, f->jump_len);
	return rc < 0 ? (int)rc : 0;
}
