/* The modules loaded in this process (the executable and its shared libraries): where they
 * are, their build-ids (from PT_NOTE in memory) and their symbol tables (from the file on disk,
 * or from /usr/lib/debug/.build-id/ when the file is stripped). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAX_MODULES 512

static struct wf_module *modules[MAX_MODULES];
static size_t nmodules;

static void read_build_id(const struct dl_phdr_info *info, char *hex)
{
	hex[0] = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		size_t align = ph->p_align == 8 ? 8 : 4;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			size_t name_len = (n->n_namesz + align - 1) & ~(align - 1);
			size_t desc_len = (n->n_descsz + align - 1) & ~(align - 1);
			const unsigned char *name = p + sizeof(*n);
			const unsigned char *desc = name + name_len;
			if (desc + desc_len > end)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
			    n->n_descsz > 0 && n->n_descsz <= 64) {
				for (size_t k = 0; k < n->n_descsz; k++)
					sprintf(hex + 2 * k, "%02x", desc[k]);
				return;
			}
			p = desc + desc_len;
		}
	}
}

static int scan_one(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	bool *first = data;
	bool is_exe = *first;
	*first = false;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	if (!is_exe && !*name)
		return 0; /* the vdso without a name */

	uintptr_t lo = UINTPTR_MAX, hi = 0, tlo = UINTPTR_MAX, thi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
		if (s < lo)
			lo = s;
		if (e > hi)
			hi = e;
		if (ph->p_flags & PF_X) {
			if (s < tlo)
				tlo = s;
			if (e > thi)
				thi = e;
		}
	}
	if (hi == 0)
		return 0;

	for (size_t i = 0; i < nmodules; i++)
		if (modules[i]->base == info->dlpi_addr && modules[i]->lo == lo &&
		    !strcmp(modules[i]->name, name))
			return 0; /* already known */
	if (nmodules == MAX_MODULES)
		return 0;

	struct wf_module *m = calloc(1, sizeof(*m));
	if (!m)
		return 0;
	snprintf(m->name, sizeof(m->name), "%s", name);
	if (is_exe) {
		ssize_t n = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
		m->path[n > 0 ? n : 0] = 0;
	} else {
		snprintf(m->path, sizeof(m->path), "%s", name);
	}
	m->is_exe = is_exe;
	m->base = info->dlpi_addr;
	m->lo = lo;
	m->hi = hi;
	m->text_lo = tlo == UINTPTR_MAX ? 0 : tlo;
	m->text_hi = thi;
	read_build_id(info, m->build_id);
	modules[nmodules++] = m;
	return 0;
}

int wf_modules_scan(void)
{
	bool first = true;
	dl_iterate_phdr(scan_one, &first);
	return (int)nmodules;
}

size_t wf_module_count(void)
{
	return nmodules;
}

struct wf_module *wf_module_at(size_t i)
{
	return i < nmodules ? modules[i] : NULL;
}

struct wf_module *wf_module_by_build_id(const char *hex)
{
	for (size_t i = 0; i < nmodules; i++)
		if (modules[i]->build_id[0] && !strcmp(modules[i]->build_id, hex))
			return modules[i];
	return NULL;
}

struct wf_module *wf_module_containing(uintptr_t addr)
{
	for (size_t i = 0; i < nmodules; i++)
		if (addr >= modules[i]->lo && addr < modules[i]->hi)
			return modules[i];
	return NULL;
}

/* Maps a file read-only; NULL with err on failure. */
static unsigned char *map_file(const char *path, size_t *size, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		wf_errf(err, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		wf_errf(err, "%s is not an ELF file", path);
		close(fd);
		return NULL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		wf_errf(err, "cannot map %s: %s", path, strerror(errno));
		return NULL;
	}
	*size = (size_t)st.st_size;
	return p;
}

/* Finds the first section of `type` and its string table, with bounds checks. */
static bool find_symtab(const unsigned char *f, size_t size, unsigned type, const Elf64_Sym **syms,
			size_t *nsyms, const char **str, size_t *strsize)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
	    (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum)
		return false;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(f + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum)
			continue;
		const Elf64_Shdr *s = &sh[i], *t = &sh[s->sh_link];
		if (s->sh_offset > size || s->sh_size > size - s->sh_offset || t->sh_offset > size ||
		    t->sh_size > size - t->sh_offset || t->sh_size == 0 ||
		    f[t->sh_offset + t->sh_size - 1] != 0)
			return false;
		*syms = (const Elf64_Sym *)(f + s->sh_offset);
		*nsyms = s->sh_size / sizeof(Elf64_Sym);
		*str = (const char *)(f + t->sh_offset);
		*strsize = t->sh_size;
		return true;
	}
	return false;
}

static int load_syms(struct wf_module *m, char *err)
{
	if (m->syms_loaded) {
		if (m->syms_error[0])
			return wf_errf(err, "%s", m->syms_error);
		return 0;
	}
	m->syms_loaded = true;
	const char *path = m->is_exe ? "/proc/self/exe" : m->path;
	m->file = map_file(path, &m->file_size, m->syms_error);
	if (!m->file)
		return wf_errf(err, "%s", m->syms_error);
	find_symtab(m->file, m->file_size, SHT_DYNSYM, &m->dynsym, &m->ndynsym, &m->dynstr,
		    &m->dynstr_size);
	if (!find_symtab(m->file, m->file_size, SHT_SYMTAB, &m->symtab, &m->nsymtab, &m->symstr,
			 &m->symstr_size) && m->build_id[0]) {
		/* Stripped: look for the separate debug file Debian's -dbgsym packages install. */
		char dbg[512];
		snprintf(dbg, sizeof(dbg), "/usr/lib/debug/.build-id/%.2s/%s.debug", m->build_id,
			 m->build_id + 2);
		char ignored[WF_ERRLEN];
		size_t dsize;
		unsigned char *d = map_file(dbg, &dsize, ignored);
		if (d && find_symtab(d, dsize, SHT_SYMTAB, &m->symtab, &m->nsymtab, &m->symstr,
				     &m->symstr_size)) {
			m->dynfile = m->file;
			m->dynfile_size = m->file_size;
			m->file = d;
			m->file_size = dsize;
		}
	}
	return 0;
}

static bool usable(const Elf64_Sym *s)
{
	int type = ELF64_ST_TYPE(s->st_info);
	return s->st_shndx != SHN_UNDEF &&
	       (type == STT_FUNC || type == STT_OBJECT || type == STT_NOTYPE);
}

static int lookup_in(const struct wf_module *m, const Elf64_Sym *syms, size_t n, const char *str,
		     size_t strsize, const char *name, struct wf_symval *out)
{
	const Elf64_Sym *weak = NULL;
	for (size_t i = 1; i < n; i++) {
		const Elf64_Sym *s = &syms[i];
		int bind = ELF64_ST_BIND(s->st_info);
		/* STB_GNU_UNIQUE: a C++ inline function's static (and its guard), one per process */
		if ((bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) || !usable(s) ||
		    s->st_name >= strsize ||
		    strcmp(str + s->st_name, name))
			continue;
		if (bind == STB_WEAK) {
			if (!weak)
				weak = s;
			continue;
		}
		weak = s;
		break;
	}
	if (!weak)
		return -1;
	out->addr = (weak->st_shndx == SHN_ABS ? 0 : m->base) + weak->st_value;
	out->size = weak->st_size;
	out->type = ELF64_ST_TYPE(weak->st_info);
	return 0;
}

int wf_module_lookup_global(struct wf_module *m, const char *name, struct wf_symval *out, char *err)
{
	if (load_syms(m, err) < 0)
		return -1;
	if (m->symtab && !lookup_in(m, m->symtab, m->nsymtab, m->symstr, m->symstr_size, name, out))
		return 0;
	if (m->dynsym && !lookup_in(m, m->dynsym, m->ndynsym, m->dynstr, m->dynstr_size, name, out))
		return 0;
	return wf_errf(err, "symbol %s not found in %s", name, m->path);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

int wf_module_lookup_local(struct wf_module *m, const char *name, const char *file,
			   unsigned long sympos, struct wf_symval *out, char *err)
{
	if (load_syms(m, err) < 0)
		return -1;
	if (!m->symtab)
		return wf_errf(err, "%s has no .symtab (stripped, no debug file): cannot find local %s in %s",
			       m->path, name, file);
	/* Two passes: the exact STT_FILE name first, then the same base name (a build may record
	 * "src/proxy.c" where the patch says "proxy.c"). */
	for (int pass = 0; pass < 2; pass++) {
		const char *cur = "";
		unsigned long seen = 0;
		for (size_t i = 1; i < m->nsymtab; i++) {
			const Elf64_Sym *s = &m->symtab[i];
			if (s->st_name >= m->symstr_size)
				continue;
			const char *sname = m->symstr + s->st_name;
			if (ELF64_ST_TYPE(s->st_info) == STT_FILE) {
				cur = sname;
				continue;
			}
			if (ELF64_ST_BIND(s->st_info) != STB_LOCAL || !usable(s) || strcmp(sname, name))
				continue;
			bool same = pass == 0 ? !strcmp(cur, file) : !strcmp(base_name(cur), base_name(file));
			if (!same || ++seen != sympos)
				continue;
			out->addr = m->base + s->st_value;
			out->size = s->st_size;
			out->type = ELF64_ST_TYPE(s->st_info);
			return 0;
		}
		if (seen)
			return wf_errf(err, "local %s in %s: position %lu requested, only %lu exist", name,
				       file, sympos, seen);
	}
	/* Hidden globals under an empty STT_FILE: a module may lack that FILE symbol; then a
	 * unique local of the name will do (FORMAT.md). */
	if (!*file) {
		const Elf64_Sym *only = NULL;
		size_t count = 0;
		for (size_t i = 1; i < m->nsymtab; i++) {
			const Elf64_Sym *s = &m->symtab[i];
			if (s->st_name < m->symstr_size && ELF64_ST_BIND(s->st_info) == STB_LOCAL && usable(s) &&
			    !strcmp(m->symstr + s->st_name, name)) {
				only = s;
				count++;
			}
		}
		if (count == 1 && sympos == 1) {
			out->addr = m->base + only->st_value;
			out->size = only->st_size;
			out->type = ELF64_ST_TYPE(only->st_info);
			return 0;
		}
		/* In an executable GNU ld leaves hidden symbols GLOBAL (with STV_HIDDEN). */
		if (count == 0 && sympos == 1 && !lookup_in(m, m->symtab, m->nsymtab, m->symstr, m->symstr_size, name, out))
			return 0;
	}
	return wf_errf(err, "local symbol %s of %s not found in %s", name, *file ? file : "(hidden globals)", m->path);
}

size_t wf_module_room(struct wf_module *m, uintptr_t addr)
{
	char err[WF_ERRLEN];
	uintptr_t next = m->text_hi;
	if (load_syms(m, err) < 0 || addr >= next)
		return 0;
	const Elf64_Sym *tabs[2] = { m->symtab, m->dynsym };
	size_t counts[2] = { m->nsymtab, m->ndynsym };
	for (int t = 0; t < 2; t++) {
		for (size_t i = 1; tabs[t] && i < counts[t]; i++) {
			const Elf64_Sym *s = &tabs[t][i];
			int type = ELF64_ST_TYPE(s->st_info);
			if (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_ABS || type == STT_FILE || type == STT_SECTION)
				continue;
			uintptr_t a = m->base + s->st_value;
			if (a > addr && a < next)
				next = a;
		}
	}
	return next - addr;
}
