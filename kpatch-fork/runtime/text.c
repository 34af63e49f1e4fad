/* Writing into the running program's code: the jump at the entry of every replaced function,
 * and (global-mode rollback) restoring the bytes it replaced. In local mode the patcher thread
 * runs this in the new generation, where the executable's text is pinned, so the write lands
 * in that generation's private copy only. Also registers the patch's .eh_frame. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
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

int wf_text_write_jumps(struct wf_loaded *p, char *err)
{
	for (size_t i = 0; i < p->nfuncs; i++) {
		struct wf_func *f = &p->funcs[i];
		unsigned char jmp[14];
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

void wf_register_eh_frame(struct wf_loaded *p)
{
	static void (*reg)(void *);
	if (!p->neh_frames)
		return;
	if (!reg) {
		reg = (void (*)(void *))dlsym(RTLD_DEFAULT, "__register_frame");
		if (!reg) {
			void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_GLOBAL);
			if (h)
				reg = (void (*)(void *))dlsym(h, "__register_frame");
		}
	}
	if (!reg)
		return;
	for (unsigned i = 0; i < p->neh_frames; i++)
		reg(p->eh_frames[i]);
	p->eh_registered = p->neh_frames;
}
