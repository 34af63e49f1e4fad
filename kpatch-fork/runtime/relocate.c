/* Placing a validated patch object in memory within ±2 GiB of its target module, resolving its
 * undefined symbols against the running program, making GOT slots and PLT-style trampolines,
 * and applying the x86-64 relocations. Nothing here touches the program's own code: a failure
 * unmaps the region and leaves the process as it was. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define PAGE 4096ul
#define REACH ((uintptr_t)2 << 30)
/* Keep the whole region this far inside the ±2 GiB window. */
#define MARGIN ((uintptr_t)64 << 20)
#define PLT_ENTRY 16
#define WFSYM_PREFIX "__wfsym:"

enum group { G_TEXT, G_RODATA, G_DATA, G_COUNT };

struct symres {
	uintptr_t addr;
	size_t size;
	int type;
	bool resolved;
	bool want_got, want_plt;
	uintptr_t got, plt;
};

struct layout {
	size_t off[G_COUNT];
	size_t size[G_COUNT];
	size_t *sec_off;    /* per section: offset inside its group */
	enum group *sec_grp;
	size_t got_off, plt_off; /* inside rodata / text */
	unsigned ngot, nplt;
};

static uintptr_t align_up(uintptr_t v, uintptr_t a)
{
	return a > 1 ? (v + a - 1) & ~(a - 1) : v;
}

static bool is_eh_frame(const struct wf_obj *obj, unsigned i)
{
	return !strcmp(wf_obj_secname(obj, i), ".eh_frame");
}

static enum group group_of(const Elf64_Shdr *s)
{
	if (s->sh_flags & SHF_EXECINSTR)
		return G_TEXT;
	if (s->sh_flags & SHF_WRITE)
		return G_DATA;
	return G_RODATA;
}

/* Parses "__wfsym:<sympos>:<name>:<file>" (FORMAT.md). */
static int parse_wfsym(const char *s, unsigned long *pos, char *name, size_t ncap, const char **file)
{
	const char *p = s + strlen(WFSYM_PREFIX);
	char *end;
	errno = 0;
	*pos = strtoul(p, &end, 10);
	if (end == p || *end != ':' || errno || *pos == 0)
		return -1;
	p = end + 1;
	const char *colon = strchr(p, ':');
	/* An empty <file> is allowed: hidden globals, listed under an empty STT_FILE. */
	if (!colon || colon == p || (size_t)(colon - p) >= ncap)
		return -1;
	memcpy(name, p, (size_t)(colon - p));
	name[colon - p] = 0;
	*file = colon + 1;
	return 0;
}

/* Resolves an undefined symbol of the patch. */
static int resolve(struct wf_module *target, const Elf64_Sym *sym, const char *name, struct symres *r,
		   char *err)
{
	struct wf_symval v;
	char lerr[WF_ERRLEN];
	if (!strncmp(name, WFSYM_PREFIX, strlen(WFSYM_PREFIX))) {
		unsigned long pos;
		char local[256];
		const char *file;
		if (parse_wfsym(name, &pos, local, sizeof(local), &file))
			return wf_errf(err, "malformed local symbol reference '%s'", name);
		if (wf_module_lookup_local(target, local, file, pos, &v, err))
			return -1;
	} else if (!name[0]) {
		return wf_errf(err, "relocation against an unnamed undefined symbol");
	} else if (wf_module_lookup_global(target, name, &v, lerr)) {
		/* Not in the target: another module's exported symbol, as the dynamic linker binds the
		 * target's own references: the global scope first (the main program's dynamic symbols,
		 * so a module dlopen()ed by a program linked with -Wl,-E finds what it exports, then
		 * the libraries loaded with it and those dlopen()ed RTLD_GLOBAL), then the target's
		 * local scope (itself and the libraries it needs, which a module dlopen()ed
		 * RTLD_LOCAL keeps out of the global scope). check.c searches in the same order. */
		dlerror();
		void *a = dlsym(RTLD_DEFAULT, name);
		if (!a && !target->is_exe && target->name[0]) {
			void *h = dlopen(target->name, RTLD_LAZY | RTLD_NOLOAD);
			if (h) {
				a = dlsym(h, name);
				dlclose(h);
			}
		}
		if (!a) {
			if (ELF64_ST_BIND(sym->st_info) == STB_WEAK) {
				r->addr = 0;
				r->resolved = true;
				return 0;
			}
			return wf_errf(err, "unresolved symbol %s (not in %s, not exported by any loaded library)",
				       name, target->path);
		}
		v.addr = (uintptr_t)a;
		v.size = 0;
		v.type = STT_NOTYPE;
		Dl_info info;
		const ElfW(Sym) *es = NULL;
		if (dladdr1(a, &info, (void **)&es, RTLD_DL_SYMENT) && es) {
			v.type = ELF64_ST_TYPE(es->st_info);
			v.size = es->st_size;
		}
	}
	r->addr = v.addr;
	r->size = v.size;
	r->type = v.type;
	r->resolved = true;
	return 0;
}

static bool near_target(const struct wf_module *t, uintptr_t a)
{
	return a >= t->lo && a < t->hi;
}

static bool is_pc32(unsigned type)
{
	return type == R_X86_64_PC32 || type == R_X86_64_PLT32;
}

static bool is_got(unsigned type)
{
	return type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
}

/* Visits every relocation the loader applies: loaded sections' and .wfpatch.funcs'. */
#define for_each_rela(obj, i, rel, n)                                                              \
	for (unsigned i = 1; i < (obj)->shnum; i++)                                                  \
		if ((obj)->sh[i].sh_type == SHT_RELA &&                                                  \
		    (wf_obj_is_loaded(obj, (obj)->sh[i].sh_info) || i == (obj)->funcs_rela))             \
			for (const Elf64_Rela *rel = (const Elf64_Rela *)((obj)->buf + (obj)->sh[i].sh_offset), \
					      *rel##_end = rel + (obj)->sh[i].sh_size / sizeof(Elf64_Rela); \
			     rel < rel##_end; rel++)

static int resolve_all(struct wf_obj *obj, struct wf_module *target, struct symres *res, char *err)
{
	for_each_rela(obj, i, rel, n)
	{
		unsigned type = ELF64_R_TYPE(rel->r_info);
		size_t si = ELF64_R_SYM(rel->r_info);
		if (type == R_X86_64_NONE)
			continue;
		const Elf64_Sym *s = &obj->syms[si];
		struct symres *r = &res[si];
		if (s->st_shndx == SHN_UNDEF && !r->resolved) {
			if (resolve(target, s, wf_obj_symname(obj, s), r, err))
				return -1;
		}
		if (is_got(type))
			r->want_got = true;
		/* Calls to code outside the target module go through a trampoline we place next
		 * to the patch: a library can be anywhere in the address space. */
		if (is_pc32(type) && s->st_shndx == SHN_UNDEF && r->addr && !near_target(target, r->addr) &&
		    (type == R_X86_64_PLT32 || r->type == STT_FUNC || r->type == STT_GNU_IFUNC))
			r->want_plt = true;
	}
	return 0;
}

static void make_layout(struct wf_obj *obj, struct symres *res, struct layout *l)
{
	for (unsigned i = 1; i < obj->shnum; i++) {
		if (!wf_obj_is_loaded(obj, i))
			continue;
		const Elf64_Shdr *s = &obj->sh[i];
		enum group g = group_of(s);
		size_t off = align_up(l->size[g], s->sh_addralign);
		l->sec_grp[i] = g;
		l->sec_off[i] = off;
		/* .eh_frame gets a zero terminator so __register_frame knows where it ends. */
		l->size[g] = off + s->sh_size + (is_eh_frame(obj, i) ? 4 : 0);
	}
	for (size_t i = 0; i < obj->nsyms; i++) {
		l->ngot += res[i].want_got;
		l->nplt += res[i].want_plt;
	}
	l->got_off = align_up(l->size[G_RODATA], 8);
	l->size[G_RODATA] = l->got_off + 8ul * l->ngot;
	l->plt_off = align_up(l->size[G_TEXT], 16);
	l->size[G_TEXT] = l->plt_off + PLT_ENTRY * (size_t)l->nplt;
	size_t off = 0;
	for (int g = 0; g < G_COUNT; g++) {
		l->off[g] = off;
		off += align_up(l->size[g], PAGE);
	}
}

/* Maps `size` bytes so that all of them are within reach of the target module's code. */
void *wf_map_near(const struct wf_module *t, size_t size, int prot, char *err)
{
	uintptr_t lowest = t->hi > REACH - MARGIN ? t->hi - (REACH - MARGIN) : PAGE * 16;
	uintptr_t highest = t->lo + (REACH - MARGIN);
	const uintptr_t step = 4ul << 20;
	/* Below the module first: above it, brk's heap grows. */
	for (int dir = 0; dir < 2; dir++) {
		for (int k = 1; k < 400; k++) {
			uintptr_t a;
			if (dir == 0) {
				if (t->lo < k * step + size)
					break;
				a = (t->lo - k * step - size) & ~(PAGE - 1);
			} else {
				a = align_up(t->hi + (256ul << 20) + k * step, PAGE);
			}
			if (a < lowest || a + size > highest)
				break;
			void *p = mmap((void *)a, size, prot,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
			if (p == MAP_FAILED)
				continue;
			if ((uintptr_t)p != a) { /* a kernel that took the flag as a hint */
				munmap(p, size);
				continue;
			}
			return p;
		}
	}
	wf_errf(err, "no free address range of %zu bytes within ±2 GiB of %s", size, t->path);
	return NULL;
}

/* Where a byte of the region runs: code assembled for its own r-x mapping (W^X) runs at text_addr. */
static uintptr_t final_addr(const struct wf_loaded *out, const unsigned char *p)
{
	const unsigned char *stage = out->text_stage;
	if (out->wx && p >= stage && p < (const unsigned char *)out->region + out->region_size &&
	    (uintptr_t)(p - stage) < out->text_bytes)
		return out->text_addr + (uintptr_t)(p - stage);
	return (uintptr_t)p;
}

static int fits_s32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

static int apply_one(struct wf_obj *obj, const Elf64_Rela *rel, unsigned char *where, uintptr_t place,
		     uintptr_t S, const char *symname, char *err)
{
	unsigned type = ELF64_R_TYPE(rel->r_info);
	int64_t A = rel->r_addend;
	int64_t v;
	(void)obj;
	switch (type) {
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		v = (int64_t)(S + A - place);
		if (!fits_s32(v))
			return wf_errf(err, "relocation type %u to %s: target 0x%lx out of ±2 GiB reach of 0x%lx",
				       type, symname, (unsigned long)S, (unsigned long)place);
		{
			int32_t v32 = (int32_t)v;
			memcpy(where, &v32, 4);
		}
		return 0;
	case R_X86_64_32:
		v = (int64_t)(S + A);
		if (v < 0 || v > (int64_t)UINT32_MAX)
			return wf_errf(err, "R_X86_64_32 to %s: 0x%lx does not fit 32 bits (build the patch with -fPIC)",
				       symname, (unsigned long)v);
		{
			uint32_t u32 = (uint32_t)v;
			memcpy(where, &u32, 4);
		}
		return 0;
	case R_X86_64_32S:
		v = (int64_t)(S + A);
		if (!fits_s32(v))
			return wf_errf(err, "R_X86_64_32S to %s: 0x%lx does not fit 32 bits (build the patch with -fPIC)",
				       symname, (unsigned long)v);
		{
			int32_t v32 = (int32_t)v;
			memcpy(where, &v32, 4);
		}
		return 0;
	case R_X86_64_64: {
		uint64_t u = S + (uint64_t)A;
		memcpy(where, &u, 8);
		return 0;
	}
	case R_X86_64_PC64: {
		uint64_t u = S + (uint64_t)A - place;
		memcpy(where, &u, 8);
		return 0;
	}
	}
	return wf_errf(err, "unsupported relocation type %u", type);
}

static const char *display_name(const char *sym, char *buf, size_t cap)
{
	unsigned long pos;
	const char *file;
	if (!strncmp(sym, WFSYM_PREFIX, strlen(WFSYM_PREFIX)) && !parse_wfsym(sym, &pos, buf, cap, &file))
		return buf;
	snprintf(buf, cap, "%s", sym);
	return buf;
}

static int build_funcs(struct wf_obj *obj, struct wf_module *target, struct symres *res,
		       const unsigned char *funcs_buf, struct wf_loaded *out, char *err)
{
	out->nfuncs = obj->nfuncs;
	out->funcs = calloc(obj->nfuncs ? obj->nfuncs : 1, sizeof(*out->funcs));
	if (!out->funcs)
		return wf_errf(err, "out of memory");
	const Elf64_Shdr *r = &obj->sh[obj->funcs_rela];
	const Elf64_Rela *rel = (const Elf64_Rela *)(obj->buf + r->sh_offset);
	size_t n = obj->nfuncs ? r->sh_size / sizeof(Elf64_Rela) : 0;
	for (size_t k = 0; k < n; k++) {
		size_t rec = rel[k].r_offset / WF_FUNC_RECORD;
		if (rel[k].r_offset % WF_FUNC_RECORD == 0) {
			const Elf64_Sym *s = &obj->syms[ELF64_R_SYM(rel[k].r_info)];
			display_name(wf_obj_symname(obj, s), out->funcs[rec].name, sizeof(out->funcs[rec].name));
			out->funcs[rec].old_size = res[ELF64_R_SYM(rel[k].r_info)].size;
		}
	}
	for (size_t i = 0; i < obj->nfuncs; i++) {
		struct wf_func *f = &out->funcs[i];
		uint64_t rec[4];
		memcpy(rec, funcs_buf + i * WF_FUNC_RECORD, sizeof(rec));
		f->old_addr = rec[0];
		f->new_addr = rec[1];
		if (rec[2])
			f->old_size = rec[2];
		f->new_size = rec[3];
		if (f->old_addr < target->text_lo || f->old_addr >= target->text_hi)
			return wf_errf(err, "function %s: old address 0x%lx is not in the code of %s", f->name,
				       (unsigned long)f->old_addr, target->path);
		if (f->old_size > target->text_hi - f->old_addr)
			return wf_errf(err, "function %s: old size %zu runs past the code of %s", f->name,
				       f->old_size, target->path);
		int64_t d = (int64_t)(f->new_addr - (f->old_addr + 5));
		f->jump_len = fits_s32(d) ? 5 : 14;
		if (f->old_size < f->jump_len) {
			/* A tiny function: the jump may run into the alignment padding after it, up to
			 * the next symbol (FORMAT.md). */
			size_t room = wf_module_room(target, f->old_addr);
			if (room < f->jump_len)
				return wf_errf(err, "function %s: %zu bytes and %zu free up to the next symbol: shorter than the %zu-byte jump",
					       f->name, f->old_size, room, f->jump_len);
		}
	}
	/* A bundle may replace one old function from several objects (an inline function each
	 * emitted): the copies are equivalent, so the first record wins (FORMAT.md). */
	size_t kept = 0;
	for (size_t i = 0; i < out->nfuncs; i++) {
		bool dup = false;
		for (size_t j = 0; j < kept; j++)
			dup |= out->funcs[j].old_addr == out->funcs[i].old_addr;
		if (!dup)
			out->funcs[kept++] = out->funcs[i];
	}
	out->nfuncs = kept;
	return 0;
}

int wf_patch_load(const char *path, struct wf_loaded *out, char *err)
{
	struct wf_obj obj;
	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s", path);
	if (wf_obj_read(path, &obj, err))
		return -1;

	int rc = -1;
	struct symres *res = calloc(obj.nsyms, sizeof(*res));
	struct layout l = { 0 };
	l.sec_off = calloc(obj.shnum, sizeof(*l.sec_off));
	l.sec_grp = calloc(obj.shnum, sizeof(*l.sec_grp));
	unsigned char *funcs_buf = NULL;
	if (!res || !l.sec_off || !l.sec_grp) {
		wf_errf(err, "out of memory");
		goto out;
	}

	wf_modules_scan();
	struct wf_module *target = wf_module_by_build_id(obj.build_id);
	if (!target) {
		struct wf_module *exe = wf_module_at(0);
		wf_errf(err, "wrong build-id: the patch is for %s, which no loaded module has (executable %s is %s)",
			obj.build_id, exe ? exe->path : "?", exe && exe->build_id[0] ? exe->build_id : "without build-id");
		goto out;
	}
	if (!target->text_hi) {
		wf_errf(err, "%s has no executable segment", target->path);
		goto out;
	}
	out->target = target;

	if (resolve_all(&obj, target, res, err))
		goto out;
	make_layout(&obj, res, &l);
	size_t total = l.off[G_DATA] + align_up(l.size[G_DATA], PAGE);
	if (total == 0)
		total = PAGE;
	unsigned char *region = wf_map_near(target, total, PROT_READ | PROT_WRITE, err);
	if (!region)
		goto out;
	out->region = region;
	out->region_size = total;
	/* W^X: the code is assembled in the region (never executable) for its own r-x mapping,
	 * which the kernel fills once it is relocated. */
	out->text_stage = region + l.off[G_TEXT];
	out->text_addr = (uintptr_t)out->text_stage;
	if (wf_settings.wx && l.size[G_TEXT] && wf_text_place(out, l.size[G_TEXT], err))
		goto fail;

	/* Contents of the loaded sections (NOBITS stays zero from the anonymous mapping). */
	for (unsigned i = 1; i < obj.shnum; i++) {
		if (!wf_obj_is_loaded(&obj, i))
			continue;
		out->nsections++;
		const Elf64_Shdr *s = &obj.sh[i];
		unsigned char *dst = region + l.off[l.sec_grp[i]] + l.sec_off[i];
		if (s->sh_type != SHT_NOBITS)
			memcpy(dst, obj.buf + s->sh_offset, s->sh_size);
		if (is_eh_frame(&obj, i) && s->sh_size && out->neh_frames < 8)
			out->eh_frames[out->neh_frames++] = dst;
	}
	out->text_bytes = l.size[G_TEXT];
	out->rodata_bytes = l.size[G_RODATA];
	out->data_bytes = l.size[G_DATA];

	/* Defined symbols' addresses, then GOT slots and trampolines. */
	for (size_t i = 1; i < obj.nsyms; i++) {
		const Elf64_Sym *s = &obj.syms[i];
		if (s->st_shndx == SHN_ABS) {
			res[i].addr = s->st_value;
			res[i].resolved = true;
		} else if (s->st_shndx != SHN_UNDEF && s->st_shndx < obj.shnum && wf_obj_is_loaded(&obj, s->st_shndx)) {
			res[i].addr = final_addr(out, region + l.off[l.sec_grp[s->st_shndx]] +
							       l.sec_off[s->st_shndx] + s->st_value);
			res[i].size = s->st_size;
			res[i].resolved = true;
		}
	}
	unsigned got = 0, plt = 0;
	for (size_t i = 1; i < obj.nsyms; i++) {
		if (res[i].want_got) {
			res[i].got = (uintptr_t)region + l.off[G_RODATA] + l.got_off + 8ul * got++;
			memcpy((void *)res[i].got, &res[i].addr, 8);
		}
		if (res[i].want_plt) {
			/* jmp *0(%rip); .quad target; int3 int3 */
			unsigned char *e = region + l.off[G_TEXT] + l.plt_off + PLT_ENTRY * (size_t)plt++;
			static const unsigned char jmp[6] = { 0xff, 0x25, 0, 0, 0, 0 };
			memcpy(e, jmp, 6);
			memcpy(e + 6, &res[i].addr, 8);
			e[14] = e[15] = 0xcc;
			res[i].plt = final_addr(out, e);
		}
	}
	out->ngot = got;
	out->nplt = plt;

	/* Relocations. .wfpatch.funcs is relocated in a private copy: it is not loaded. */
	if (obj.funcs) {
		funcs_buf = malloc(obj.sh[obj.funcs].sh_size + 1);
		if (!funcs_buf) {
			wf_errf(err, "out of memory");
			goto fail;
		}
		memcpy(funcs_buf, obj.buf + obj.sh[obj.funcs].sh_offset, obj.sh[obj.funcs].sh_size);
	}
	for_each_rela(&obj, i, rel, n)
	{
		unsigned type = ELF64_R_TYPE(rel->r_info);
		if (type == R_X86_64_NONE)
			continue;
		unsigned tsec = obj.sh[i].sh_info;
		unsigned char *where;
		if ((int)i == (int)obj.funcs_rela && obj.funcs_rela)
			where = funcs_buf + rel->r_offset;
		else
			where = region + l.off[l.sec_grp[tsec]] + l.sec_off[tsec] + rel->r_offset;
		size_t si = ELF64_R_SYM(rel->r_info);
		struct symres *r = &res[si];
		const char *name = wf_obj_symname(&obj, &obj.syms[si]);
		if (ELF64_ST_TYPE(obj.syms[si].st_info) == STT_SECTION)
			name = wf_obj_secname(&obj, obj.syms[si].st_shndx);
		uintptr_t S = r->addr;
		if (is_got(type))
			S = r->got;
		else if (is_pc32(type) && r->want_plt)
			S = r->plt;
		if (apply_one(&obj, rel, where, final_addr(out, where), S, name, err))
			goto fail;
		if (wf_obj_is_loaded(&obj, tsec))
			out->nrelocs++;
	}
	if (build_funcs(&obj, target, res, funcs_buf, out, err))
		goto fail;
	if (out->wx && wf_text_fill(out, err))
		goto fail;

	/* Final protections: code r-x (W^X: its staging copy r--), read-only data and GOT r--,
	 * data rw-. */
	if ((l.size[G_TEXT] && mprotect(region + l.off[G_TEXT], align_up(l.size[G_TEXT], PAGE),
					PROT_READ | (out->wx ? 0 : PROT_EXEC))) ||
	    (l.size[G_RODATA] && mprotect(region + l.off[G_RODATA], align_up(l.size[G_RODATA], PAGE), PROT_READ))) {
		wf_errf(err, "mprotect of the patch region: %s", strerror(errno));
		goto fail;
	}
	out->meta = obj.meta ? strdup(obj.meta) : NULL;
	rc = 0;
	goto out;
fail:
	wf_patch_unload(out);
out:
	free(funcs_buf);
	free(res);
	free(l.sec_off);
	free(l.sec_grp);
	wf_obj_free(&obj);
	return rc;
}

void wf_patch_unload(struct wf_loaded *p)
{
	if (p->region)
		munmap(p->region, p->region_size);
	p->region = NULL;
	if (p->text_map)
		munmap(p->text_map, p->text_map_size);
	p->text_map = NULL;
	free(p->funcs);
	p->funcs = NULL;
	free(p->meta);
	p->meta = NULL;
}
