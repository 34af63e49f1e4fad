/* The loader's dry run (`wfpatch-ctl check BUNDLE BINARY`): everything wf_patch_load decides
 * before it touches a process, decided against a binary on disk instead of a running one —
 * the patch object validated by the same reader (loader.c), its build-id against the binary's,
 * every undefined symbol resolved by the same lookups (modules.c: __wfsym locals by file and
 * position, globals in the binary's .symtab/.dynsym, then the dynamic symbols of the libraries
 * it needs, as dlsym would find them; for a module, with --loaded-by, first the programs that
 * dlopen() it and their libraries: the global scope dlsym(RTLD_DEFAULT) searches), every
 * relocation checked for what the loader can apply,
 * and every .wfpatch.funcs record checked for its old function's place and room for the jump.
 * Nothing is mapped or executed; the binary is read, never run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

#define MAX_LIBS 128
#define WFSYM_PREFIX "__wfsym:"

struct image {
	struct wf_module mod;	/* link-time addresses: base 0 */
	bool pic;		/* ET_DYN: loaded at an address unknown here */
	char needed[MAX_LIBS][256];
	unsigned nneeded;
	char runpath[1024];
	bool loader;		/* a program that loads the target (--loaded-by) */
};

struct checker {
	struct image target;
	struct image *libs[MAX_LIBS];
	unsigned nlibs;
	char missing[MAX_LIBS][256];
	unsigned nmissing;
	unsigned nloaders;	/* of libs: the loading programs, each before its libraries */
	unsigned errors;
	FILE *out;
	const char *library_path;	/* --library-dir: colon-separated, searched first */
};

static void fail(struct checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct checker *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("error: ", c->out);
	vfprintf(c->out, fmt, ap);
	fputc('\n', c->out);
	va_end(ap);
	c->errors++;
}

/* Reads what the runtime learns from the program headers in memory: segments, build-id, and
 * from the dynamic section: DT_NEEDED and the run path. */
static int read_image(const char *path, struct image *im, char *err)
{
	memset(im, 0, sizeof(*im));
	snprintf(im->mod.path, sizeof(im->mod.path), "%s", path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return wf_errf(err, "cannot open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		close(fd);
		return wf_errf(err, "%s is not an ELF file", path);
	}
	size_t size = (size_t)st.st_size;
	unsigned char *f = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return wf_errf(err, "cannot map %s: %s", path, strerror(errno));
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
	int rc = 0;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)) {
		rc = wf_errf(err, "%s is not an x86-64 executable or shared library", path);
		goto out;
	}
	im->pic = eh->e_type == ET_DYN;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum) {
		rc = wf_errf(err, "%s: malformed program headers", path);
		goto out;
	}
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
	uintptr_t lo = UINTPTR_MAX, hi = 0, tlo = UINTPTR_MAX, thi = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD) {
			uintptr_t s = ph[i].p_vaddr, e = s + ph[i].p_memsz;
			lo = s < lo ? s : lo;
			hi = e > hi ? e : hi;
			if (ph[i].p_flags & PF_X) {
				tlo = s < tlo ? s : tlo;
				thi = e > thi ? e : thi;
			}
		}
		if (ph[i].p_type == PT_NOTE && ph[i].p_offset <= size && ph[i].p_filesz <= size - ph[i].p_offset) {
			const unsigned char *p = f + ph[i].p_offset, *end = p + ph[i].p_filesz;
			size_t align = ph[i].p_align == 8 ? 8 : 4;
			while (p + sizeof(Elf64_Nhdr) <= end && !im->mod.build_id[0]) {
				const Elf64_Nhdr *n = (const Elf64_Nhdr *)p;
				size_t nl = (n->n_namesz + align - 1) & ~(align - 1), dl = (n->n_descsz + align - 1) & ~(align - 1);
				const unsigned char *name = p + sizeof(*n), *desc = name + nl;
				if (nl > (size_t)(end - name) || dl > (size_t)(end - desc))
					break;
				if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4) && n->n_descsz &&
				    n->n_descsz <= 64)
					for (size_t k = 0; k < n->n_descsz; k++)
						sprintf(im->mod.build_id + 2 * k, "%02x", desc[k]);
				p = desc + dl;
			}
		}
	}
	im->mod.lo = lo == UINTPTR_MAX ? 0 : lo;
	im->mod.hi = hi;
	im->mod.text_lo = tlo == UINTPTR_MAX ? 0 : tlo;
	im->mod.text_hi = thi;
	/* DT_NEEDED and DT_RUNPATH/DT_RPATH through the section headers (a built binary has them). */
	if (eh->e_shentsize == sizeof(Elf64_Shdr) && eh->e_shoff <= size &&
	    (size - eh->e_shoff) / sizeof(Elf64_Shdr) >= eh->e_shnum) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(f + eh->e_shoff);
		for (unsigned i = 0; i < eh->e_shnum; i++) {
			if (sh[i].sh_type != SHT_DYNAMIC || sh[i].sh_link >= eh->e_shnum)
				continue;
			const Elf64_Shdr *d = &sh[i], *s = &sh[d->sh_link];
			if (d->sh_offset > size || d->sh_size > size - d->sh_offset || s->sh_offset > size ||
			    s->sh_size > size - s->sh_offset)
				break;
			const Elf64_Dyn *dyn = (const Elf64_Dyn *)(f + d->sh_offset);
			const char *str = (const char *)(f + s->sh_offset);
			for (size_t k = 0; k < d->sh_size / sizeof(*dyn) && dyn[k].d_tag != DT_NULL; k++) {
				if (dyn[k].d_un.d_val >= s->sh_size)
					continue;
				const char *v = str + dyn[k].d_un.d_val;
				if (dyn[k].d_tag == DT_NEEDED && im->nneeded < MAX_LIBS)
					snprintf(im->needed[im->nneeded++], sizeof(im->needed[0]), "%s", v);
				else if (dyn[k].d_tag == DT_RUNPATH || dyn[k].d_tag == DT_RPATH)
					snprintf(im->runpath, sizeof(im->runpath), "%s", v);
			}
			break;
		}
	}
out:
	munmap(f, size);
	return rc;
}

/* A library by name: first the directories given with --library-dir (the build's own
 * libraries, which its package installs where the run path points), then where the dynamic
 * linker would look: the run path ($ORIGIN expanded), LD_LIBRARY_PATH, then Debian's
 * multiarch and default directories. */
static bool find_library(const struct checker *c, const struct image *from, const char *name, char *path, size_t cap)
{
	if (strchr(name, '/'))
		return snprintf(path, cap, "%s", name) < (int)cap && access(path, R_OK) == 0;
	char origin[PATH_MAX];
	snprintf(origin, sizeof(origin), "%s", from->mod.path);
	char *slash = strrchr(origin, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(origin, sizeof(origin), ".");
	const char *env = getenv("LD_LIBRARY_PATH");
	char dirs[8192];
	snprintf(dirs, sizeof(dirs), "%s:%s:%s:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64:/lib:/usr/lib",
		 c->library_path ? c->library_path : "", from->runpath, env ? env : "");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char dir[PATH_MAX];
		if (!strncmp(d, "$ORIGIN", 7))
			snprintf(dir, sizeof(dir), "%s%s", origin, d + 7);
		else if (!strncmp(d, "${ORIGIN}", 9))
			snprintf(dir, sizeof(dir), "%s%s", origin, d + 9);
		else
			snprintf(dir, sizeof(dir), "%s", d);
		if (snprintf(path, cap, "%s/%s", dir, name) < (int)cap && access(path, R_OK) == 0)
			return true;
	}
	return false;
}

/* The libraries `root` needs, transitively, in the dynamic linker's breadth-first order,
 * appended to the search list (once each). */
static void load_libraries(struct checker *c, struct image *root)
{
	struct image *queue[MAX_LIBS + 1];
	unsigned head = 0, tail = 0;
	queue[tail++] = root;
	while (head < tail) {
		struct image *im = queue[head++];
		for (unsigned i = 0; i < im->nneeded; i++) {
			bool known = false;
			for (unsigned k = 0; k < c->nlibs && !known; k++)
				known = !strcmp(c->libs[k]->mod.name, im->needed[i]);
			for (unsigned k = 0; k < c->nmissing && !known; k++)
				known = !strcmp(c->missing[k], im->needed[i]);
			if (known || c->nlibs == MAX_LIBS)
				continue;
			char path[PATH_MAX], err[WF_ERRLEN];
			struct image *lib = calloc(1, sizeof(*lib));
			if (!lib || !find_library(c, im, im->needed[i], path, sizeof(path)) || read_image(path, lib, err)) {
				free(lib);
				if (c->nmissing < MAX_LIBS)
					snprintf(c->missing[c->nmissing++], sizeof(c->missing[0]), "%s", im->needed[i]);
				continue;
			}
			snprintf(lib->mod.name, sizeof(lib->mod.name), "%s", im->needed[i]);
			c->libs[c->nlibs++] = lib;
			if (tail < MAX_LIBS + 1)
				queue[tail++] = lib;
		}
	}
}

enum where { W_NONE, W_TARGET, W_LIBRARY, W_WEAK_NULL };

struct resolved {
	enum where where;
	struct wf_symval v;
	const char *lib;
};

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
	if (!colon || colon == p || (size_t)(colon - p) >= ncap)
		return -1;
	memcpy(name, p, (size_t)(colon - p));
	name[colon - p] = 0;
	*file = colon + 1;
	return 0;
}

/* As relocate.c's resolve(): the target first, then what the dynamic linker exports. */
static void resolve_one(struct checker *c, const Elf64_Sym *sym, const char *name, struct resolved *r)
{
	char err[WF_ERRLEN];
	if (!strncmp(name, WFSYM_PREFIX, strlen(WFSYM_PREFIX))) {
		unsigned long pos;
		char local[256];
		const char *file;
		if (parse_wfsym(name, &pos, local, sizeof(local), &file))
			fail(c, "malformed local symbol reference '%s'", name);
		else if (wf_module_lookup_local(&c->target.mod, local, file, pos, &r->v, err))
			fail(c, "%s", err);
		else
			r->where = W_TARGET;
		return;
	}
	if (!name[0]) {
		fail(c, "relocation against an unnamed undefined symbol");
		return;
	}
	if (!wf_module_lookup_global(&c->target.mod, name, &r->v, err)) {
		r->where = W_TARGET;
		return;
	}
	for (unsigned i = 0; i < c->nlibs; i++) {
		struct wf_module *m = &c->libs[i]->mod;
		/* dlsym sees a library's exported (dynamic) symbols, GNU indirect functions
		 * (glibc's strlen, memcpy, …) included: it returns the implementation they pick */
		wf_module_lookup_global(m, name, &r->v, err); /* reads the symbol tables */
		for (size_t k = 1; m->dynsym && k < m->ndynsym; k++) {
			const Elf64_Sym *d = &m->dynsym[k];
			int type = ELF64_ST_TYPE(d->st_info);
			if (d->st_shndx == SHN_UNDEF || ELF64_ST_BIND(d->st_info) == STB_LOCAL || d->st_name >= m->dynstr_size ||
			    (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_OBJECT && type != STT_NOTYPE) ||
			    strcmp(m->dynstr + d->st_name, name))
				continue;
			r->v.addr = d->st_value;
			r->v.size = d->st_size;
			r->v.type = type;
			r->where = W_LIBRARY;
			r->lib = c->libs[i]->loader ? m->path : m->name;
			return;
		}
	}
	if (ELF64_ST_BIND(sym->st_info) == STB_WEAK) {
		r->where = W_WEAK_NULL;
		return;
	}
	char missing[512] = "";
	for (unsigned i = 0; i < c->nmissing; i++)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s", i ? ", " : "; libraries not found: ",
			 c->missing[i]);
	if (!c->nloaders) {
		fail(c, "unresolved symbol %s (not in %s, not exported by the %u libraries it needs%s)", name,
		     c->target.mod.path, c->nlibs, missing);
		return;
	}
	char loaders[1024] = "";
	for (unsigned i = 0; i < c->nlibs; i++)
		if (c->libs[i]->loader)
			snprintf(loaders + strlen(loaders), sizeof(loaders) - strlen(loaders), "%s%s", loaders[0] ? ", " : "",
				 c->libs[i]->mod.path);
	fail(c, "unresolved symbol %s (not in %s, not exported by the program%s loading it (%s) or the %u libraries they need%s)",
	     name, c->target.mod.path, c->nloaders > 1 ? "s" : "", loaders, c->nlibs - c->nloaders, missing);
}

static bool is_got(unsigned t)
{
	return t == R_X86_64_GOTPCREL || t == R_X86_64_GOTPCRELX || t == R_X86_64_REX_GOTPCRELX;
}

/* A program that loads the target: searched, with its libraries, before the target's own
 * libraries, as its dynamic symbols are in the global scope before the module is loaded. */
static int add_loader(struct checker *c, const char *path, char *err)
{
	struct image *im = calloc(1, sizeof(*im));
	if (!im)
		return wf_errf(err, "out of memory");
	if (c->nlibs == MAX_LIBS) {
		free(im);
		return wf_errf(err, "too many libraries to read (%d)", MAX_LIBS);
	}
	if (read_image(path, im, err)) {
		free(im);
		snprintf(err + strlen(err), WF_ERRLEN - strlen(err), " (--loaded-by)");
		return -1;
	}
	im->loader = true;
	snprintf(im->mod.name, sizeof(im->mod.name), "%s", path);
	c->libs[c->nlibs++] = im;
	c->nloaders++;
	load_libraries(c, im);
	return 0;
}

int wf_check(const char *bundle, const char *binary, const char *const *loaded_by, unsigned nloaded_by,
	     const char *library_path, FILE *out, char *err)
{
	struct checker *c = calloc(1, sizeof(*c));
	struct wf_obj obj;
	if (!c)
		return wf_errf(err, "out of memory");
	c->out = out;
	c->library_path = library_path;
	if (read_image(binary, &c->target, err)) {
		free(c);
		return -1;
	}
	c->target.mod.is_exe = false; /* symbols come from the file at mod.path */
	for (unsigned i = 0; i < nloaded_by; i++) {
		if (add_loader(c, loaded_by[i], err)) {
			for (unsigned k = 0; k < c->nlibs; k++)
				free(c->libs[k]);
			free(c);
			return -1;
		}
	}
	int rc = 0;
	if (wf_obj_read(bundle, &obj, err)) {
		fprintf(out, "error: %s: %s\n", bundle, err);
		for (unsigned k = 0; k < c->nlibs; k++)
			free(c->libs[k]);
		free(c);
		return 1;
	}
	if (!c->target.mod.build_id[0])
		fail(c, "%s has no build-id: the runtime finds its target by build-id", binary);
	else if (strcmp(obj.build_id, c->target.mod.build_id))
		fail(c, "wrong build-id: the patch is for %s, %s is %s", obj.build_id, binary, c->target.mod.build_id);
	if (!c->target.mod.text_hi)
		fail(c, "%s has no executable segment", binary);
	load_libraries(c, &c->target);

	struct resolved *res = calloc(obj.nsyms ? obj.nsyms : 1, sizeof(*res));
	bool *tried = calloc(obj.nsyms ? obj.nsyms : 1, sizeof(*tried));
	unsigned nrel = 0, nund = 0, nlib = 0, nweak = 0;
	if (!res || !tried) {
		rc = wf_errf(err, "out of memory");
		goto done;
	}
	for (unsigned i = 1; i < obj.shnum; i++) {
		const Elf64_Shdr *rs = &obj.sh[i];
		if (rs->sh_type != SHT_RELA || (!wf_obj_is_loaded(&obj, rs->sh_info) && i != obj.funcs_rela))
			continue;
		const Elf64_Rela *rel = (const Elf64_Rela *)(obj.buf + rs->sh_offset);
		for (size_t k = 0; k < rs->sh_size / sizeof(*rel); k++) {
			unsigned type = ELF64_R_TYPE(rel[k].r_info);
			size_t si = ELF64_R_SYM(rel[k].r_info);
			if (type == R_X86_64_NONE)
				continue;
			nrel++;
			const Elf64_Sym *s = &obj.syms[si];
			const char *name = wf_obj_symname(&obj, s);
			bool defined = s->st_shndx != SHN_UNDEF;
			if (!defined && !tried[si]) {
				tried[si] = true;
				nund++;
				resolve_one(c, s, name, &res[si]);
				nlib += res[si].where == W_LIBRARY;
				nweak += res[si].where == W_WEAK_NULL;
			}
			const char *sec = wf_obj_secname(&obj, rs->sh_info);
			if (type == R_X86_64_32 || type == R_X86_64_32S) {
				/* an absolute 32-bit address: only in a fixed-address executable */
				if (c->target.pic || (!defined && res[si].where == W_LIBRARY))
					fail(c, "%s: R_X86_64_%s to %s: a 32-bit absolute address, but %s is loaded at an address chosen at run time (build the patch with -fPIC)",
					     sec, type == R_X86_64_32 ? "32" : "32S", defined ? "patch data" : name,
					     defined ? binary : res[si].lib);
			} else if (!defined && res[si].where == W_LIBRARY && !is_got(type) &&
				   (type == R_X86_64_PC32 || type == R_X86_64_PC64) && res[si].v.type != STT_FUNC &&
				   res[si].v.type != STT_GNU_IFUNC) {
				/* relocate.c gives calls a trampoline; PC-relative data access cannot have one */
				fail(c, "%s: PC-relative reference to %s, data in %s: a library is mapped beyond ±2 GiB of %s",
				     sec, name, res[si].lib, binary);
			}
		}
	}

	/* .wfpatch.funcs: each old function in the target's code, with room for the jump. */
	unsigned nfuncs = 0;
	if (obj.funcs) {
		const Elf64_Shdr *r = &obj.sh[obj.funcs_rela];
		const Elf64_Rela *rel = (const Elf64_Rela *)(obj.buf + r->sh_offset);
		const unsigned char *fb = obj.buf + obj.sh[obj.funcs].sh_offset;
		for (size_t k = 0; k < r->sh_size / sizeof(*rel); k++) {
			if (rel[k].r_offset % WF_FUNC_RECORD)
				continue;
			size_t si = ELF64_R_SYM(rel[k].r_info);
			size_t rec = rel[k].r_offset / WF_FUNC_RECORD;
			const char *name = wf_obj_symname(&obj, &obj.syms[si]);
			nfuncs++;
			if (res[si].where != W_TARGET) {
				if (res[si].where != W_NONE)
					fail(c, "function %s: the old function must be in %s (found %s)", name, binary,
					     res[si].where == W_LIBRARY ? res[si].lib : "nowhere (weak)");
				continue;
			}
			uint64_t fields[4];
			memcpy(fields, fb + rec * WF_FUNC_RECORD, sizeof(fields));
			uintptr_t old = res[si].v.addr + (uintptr_t)rel[k].r_addend;
			size_t old_size = fields[2] ? fields[2] : res[si].v.size;
			if (old < c->target.mod.text_lo || old >= c->target.mod.text_hi) {
				fail(c, "function %s: old address 0x%lx is not in the code of %s", name, (unsigned long)old, binary);
				continue;
			}
			if (old_size > c->target.mod.text_hi - old)
				fail(c, "function %s: old size %zu runs past the code of %s", name, old_size, binary);
			else if (old_size < 5 && wf_module_room(&c->target.mod, old) < 5)
				fail(c, "function %s: %zu bytes and %zu free up to the next symbol: shorter than the 5-byte jump",
				     name, old_size, wf_module_room(&c->target.mod, old));
		}
	}
	size_t data = 0, text = 0;
	for (unsigned i = 1; i < obj.shnum; i++)
		if (wf_obj_is_loaded(&obj, i))
			*((obj.sh[i].sh_flags & SHF_EXECINSTR) ? &text : (obj.sh[i].sh_flags & SHF_WRITE) ? &data : &text) +=
				obj.sh[i].sh_size;
	char loaded[64] = "";
	if (c->nloaders)
		snprintf(loaded, sizeof(loaded), " and %u loading program%s", c->nloaders, c->nloaders > 1 ? "s" : "");
	fprintf(out, "%s: %s against %s (build-id %s): %u relocations, %u undefined symbols (%u in libraries, %u weak left 0), %u functions, %zu bytes of writable data; %u libraries%s read%s\n",
		c->errors ? "FAILED" : "ok", bundle, binary, c->target.mod.build_id[0] ? c->target.mod.build_id : "none", nrel,
		nund, nlib, nweak, nfuncs, data, c->nlibs - c->nloaders, loaded, c->nmissing ? " (some not found)" : "");
	rc = c->errors ? 1 : 0;
done:
	free(res);
	free(tried);
	for (unsigned i = 0; i < c->nlibs; i++)
		free(c->libs[i]);
	free(c);
	wf_obj_free(&obj);
	return rc;
}
