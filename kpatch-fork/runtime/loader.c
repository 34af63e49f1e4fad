/* Reading a patch object (kpatch-fork/FORMAT.md) and validating all of it — header, section
 * and symbol bounds, relocation types and targets, the .wfpatch.* sections — before anything
 * in the process is touched. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAX_PATCH_SIZE (512ul << 20)

int wf_reloc_width(unsigned type)
{
	switch (type) {
	case R_X86_64_NONE:
		return 0;
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_32:
	case R_X86_64_32S:
		return 4;
	case R_X86_64_64:
	case R_X86_64_PC64:
		return 8;
	default:
		return -1;
	}
}

const char *wf_obj_secname(const struct wf_obj *obj, unsigned idx)
{
	return obj->shstr + obj->sh[idx].sh_name;
}

const char *wf_obj_symname(const struct wf_obj *obj, const Elf64_Sym *sym)
{
	return obj->strtab + sym->st_name;
}

bool wf_obj_is_loaded(const struct wf_obj *obj, unsigned idx)
{
	const Elf64_Shdr *s = &obj->sh[idx];
	return idx > 0 && (s->sh_flags & SHF_ALLOC) && s->sh_type != SHT_NOTE &&
	       s->sh_type != SHT_GROUP && strncmp(wf_obj_secname(obj, idx), ".wfpatch", 8) != 0;
}

static int read_file(const char *path, struct wf_obj *obj, char *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return wf_errf(err, "cannot open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return wf_errf(err, "%s is not a regular file", path);
	}
	if ((size_t)st.st_size > MAX_PATCH_SIZE) {
		close(fd);
		return wf_errf(err, "%s is larger than %lu MiB", path, MAX_PATCH_SIZE >> 20);
	}
	obj->size = (size_t)st.st_size;
	obj->buf = malloc(obj->size + 1);
	if (!obj->buf) {
		close(fd);
		return wf_errf(err, "out of memory reading %s", path);
	}
	size_t got = 0;
	while (got < obj->size) {
		ssize_t r = read(fd, obj->buf + got, obj->size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got != obj->size)
		return wf_errf(err, "short read on %s", path);
	return 0;
}

static bool in_file(const struct wf_obj *obj, uint64_t off, uint64_t len)
{
	return off <= obj->size && len <= obj->size - off;
}

static int check_header(struct wf_obj *obj, char *err)
{
	if (obj->size < SELFMAG || memcmp(obj->buf, ELFMAG, SELFMAG))
		return wf_errf(err, "not an ELF file (bad magic)");
	if (obj->size < sizeof(Elf64_Ehdr))
		return wf_errf(err, "truncated: %zu bytes is smaller than an ELF header", obj->size);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)obj->buf;
	obj->eh = eh;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return wf_errf(err, "ELF class %u, expected ELFCLASS64", eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return wf_errf(err, "not little-endian");
	if (eh->e_machine != EM_X86_64)
		return wf_errf(err, "machine %u, expected EM_X86_64", eh->e_machine);
	if (eh->e_type != ET_REL)
		return wf_errf(err, "ELF type %u, expected ET_REL (a relocatable patch object)", eh->e_type);
	if (eh->e_shentsize != sizeof(Elf64_Shdr))
		return wf_errf(err, "section header size %u", eh->e_shentsize);
	if (eh->e_shnum == 0 || eh->e_shstrndx == SHN_UNDEF || eh->e_shstrndx >= eh->e_shnum)
		return wf_errf(err, "no section headers or bad string table index (extended numbering unsupported)");
	if (!in_file(obj, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
		return wf_errf(err, "truncated: section headers at 0x%lx beyond the file's %zu bytes",
			       (unsigned long)eh->e_shoff, obj->size);
	if (eh->e_shoff % 8)
		return wf_errf(err, "misaligned section headers");
	obj->sh = (const Elf64_Shdr *)(obj->buf + eh->e_shoff);
	obj->shnum = eh->e_shnum;
	return 0;
}

static int check_sections(struct wf_obj *obj, char *err)
{
	const Elf64_Shdr *ss = &obj->sh[obj->eh->e_shstrndx];
	if (ss->sh_type != SHT_STRTAB || !in_file(obj, ss->sh_offset, ss->sh_size) || ss->sh_size == 0 ||
	    obj->buf[ss->sh_offset + ss->sh_size - 1] != 0)
		return wf_errf(err, "bad section name table");
	obj->shstr = (const char *)obj->buf + ss->sh_offset;
	obj->shstr_size = ss->sh_size;

	for (unsigned i = 1; i < obj->shnum; i++) {
		const Elf64_Shdr *s = &obj->sh[i];
		if (s->sh_name >= obj->shstr_size)
			return wf_errf(err, "section %u: name offset out of bounds", i);
		const char *name = wf_obj_secname(obj, i);
		if (s->sh_type != SHT_NOBITS && !in_file(obj, s->sh_offset, s->sh_size))
			return wf_errf(err, "truncated: section %s [0x%lx, +0x%lx) beyond the file's %zu bytes",
				       name, (unsigned long)s->sh_offset, (unsigned long)s->sh_size, obj->size);
		if (s->sh_addralign > 4096)
			return wf_errf(err, "section %s: alignment %lu too large", name,
				       (unsigned long)s->sh_addralign);
		if (s->sh_type == SHT_REL)
			return wf_errf(err, "section %s: SHT_REL is not used on x86-64", name);
		if (s->sh_type == SHT_SYMTAB) {
			if (obj->symtab)
				return wf_errf(err, "more than one symbol table");
			obj->symtab = i;
		}
		if (!strcmp(name, ".wfpatch.funcs"))
			obj->funcs = i;
	}
	if (!obj->symtab)
		return wf_errf(err, "no symbol table");

	const Elf64_Shdr *st = &obj->sh[obj->symtab];
	if (st->sh_entsize != sizeof(Elf64_Sym) || st->sh_size % sizeof(Elf64_Sym) ||
	    st->sh_link == 0 || st->sh_link >= obj->shnum)
		return wf_errf(err, "malformed symbol table");
	const Elf64_Shdr *str = &obj->sh[st->sh_link];
	if (str->sh_type != SHT_STRTAB || str->sh_size == 0 ||
	    obj->buf[str->sh_offset + str->sh_size - 1] != 0)
		return wf_errf(err, "malformed symbol string table");
	if (st->sh_offset % 8)
		return wf_errf(err, "misaligned symbol table");
	obj->syms = (const Elf64_Sym *)(obj->buf + st->sh_offset);
	obj->nsyms = st->sh_size / sizeof(Elf64_Sym);
	obj->strtab = (const char *)obj->buf + str->sh_offset;
	obj->strtab_size = str->sh_size;
	return 0;
}

static int check_symbols(struct wf_obj *obj, char *err)
{
	for (size_t i = 1; i < obj->nsyms; i++) {
		const Elf64_Sym *s = &obj->syms[i];
		if (s->st_name >= obj->strtab_size)
			return wf_errf(err, "symbol %zu: name offset out of bounds", i);
		const char *name = wf_obj_symname(obj, s);
		int type = ELF64_ST_TYPE(s->st_info);
		if (s->st_shndx == SHN_COMMON)
			return wf_errf(err, "symbol %s: common symbols are not supported (build with -fno-common)", name);
		if (s->st_shndx == SHN_XINDEX)
			return wf_errf(err, "symbol %s: extended section index unsupported", name);
		if (type == STT_TLS)
			return wf_errf(err, "symbol %s: thread-local storage is not supported", name);
		if (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_ABS || type == STT_FILE)
			continue;
		if (s->st_shndx >= obj->shnum)
			return wf_errf(err, "symbol %s: section index %u out of bounds", name, s->st_shndx);
		const Elf64_Shdr *sec = &obj->sh[s->st_shndx];
		if (s->st_value > sec->sh_size || s->st_size > sec->sh_size - s->st_value)
			return wf_errf(err, "symbol %s: [0x%lx, +0x%lx) outside its section %s (0x%lx bytes)", name,
				       (unsigned long)s->st_value, (unsigned long)s->st_size,
				       wf_obj_secname(obj, s->st_shndx), (unsigned long)sec->sh_size);
	}
	return 0;
}

static int check_relocations(struct wf_obj *obj, char *err)
{
	for (unsigned i = 1; i < obj->shnum; i++) {
		const Elf64_Shdr *r = &obj->sh[i];
		if (r->sh_type != SHT_RELA)
			continue;
		const char *name = wf_obj_secname(obj, i);
		if (r->sh_entsize != sizeof(Elf64_Rela) || r->sh_size % sizeof(Elf64_Rela) || r->sh_offset % 8)
			return wf_errf(err, "%s: malformed relocation section", name);
		if (r->sh_link != obj->symtab)
			return wf_errf(err, "%s: relocations against a different symbol table", name);
		if (r->sh_info == 0 || r->sh_info >= obj->shnum)
			return wf_errf(err, "%s: target section %u out of bounds", name, r->sh_info);
		bool loaded = wf_obj_is_loaded(obj, r->sh_info);
		bool funcs = r->sh_info == obj->funcs && obj->funcs;
		if (!loaded && !funcs)
			continue; /* debug info and the like: not applied */
		if (funcs)
			obj->funcs_rela = i;
		const Elf64_Shdr *t = &obj->sh[r->sh_info];
		if (t->sh_type == SHT_NOBITS)
			return wf_errf(err, "%s: relocations against a NOBITS section", name);
		const Elf64_Rela *rel = (const Elf64_Rela *)(obj->buf + r->sh_offset);
		size_t n = r->sh_size / sizeof(Elf64_Rela);
		for (size_t k = 0; k < n; k++) {
			unsigned type = ELF64_R_TYPE(rel[k].r_info);
			size_t sym = ELF64_R_SYM(rel[k].r_info);
			int width = wf_reloc_width(type);
			if (width < 0)
				return wf_errf(err, "%s: unsupported relocation type %u at offset 0x%lx", name, type,
					       (unsigned long)rel[k].r_offset);
			if (width == 0)
				continue;
			if (sym == 0 || sym >= obj->nsyms)
				return wf_errf(err, "%s: relocation %zu names symbol %zu of %zu", name, k, sym,
					       obj->nsyms);
			if (rel[k].r_offset > t->sh_size || (uint64_t)width > t->sh_size - rel[k].r_offset)
				return wf_errf(err, "%s: relocation at 0x%lx outside %s (0x%lx bytes)", name,
					       (unsigned long)rel[k].r_offset, wf_obj_secname(obj, r->sh_info),
					       (unsigned long)t->sh_size);
			const Elf64_Sym *s = &obj->syms[sym];
			if (s->st_shndx != SHN_UNDEF && s->st_shndx != SHN_ABS &&
			    !wf_obj_is_loaded(obj, s->st_shndx))
				return wf_errf(err, "%s: relocation against %s in section %s, which is not loaded", name,
					       wf_obj_symname(obj, s), wf_obj_secname(obj, s->st_shndx));
			if (loaded)
				obj->nrelocs++;
		}
	}
	return 0;
}

static int check_funcs(struct wf_obj *obj, char *err)
{
	if (!obj->funcs)
		return 0;
	const Elf64_Shdr *f = &obj->sh[obj->funcs];
	if (f->sh_type == SHT_NOBITS || f->sh_size % WF_FUNC_RECORD)
		return wf_errf(err, ".wfpatch.funcs: size %lu is not a multiple of %d", (unsigned long)f->sh_size,
			       WF_FUNC_RECORD);
	obj->nfuncs = f->sh_size / WF_FUNC_RECORD;
	if (obj->nfuncs && !obj->funcs_rela)
		return wf_errf(err, ".wfpatch.funcs has no relocations");
	/* Every record needs exactly one R_X86_64_64 at offset 0 and one at offset 8. */
	unsigned char *seen = calloc(obj->nfuncs ? obj->nfuncs : 1, 1);
	if (!seen)
		return wf_errf(err, "out of memory");
	const Elf64_Shdr *r = &obj->sh[obj->funcs_rela];
	const Elf64_Rela *rel = (const Elf64_Rela *)(obj->buf + r->sh_offset);
	size_t n = obj->funcs_rela ? r->sh_size / sizeof(Elf64_Rela) : 0;
	int rc = 0;
	for (size_t k = 0; k < n && !rc; k++) {
		size_t rec = rel[k].r_offset / WF_FUNC_RECORD, field = rel[k].r_offset % WF_FUNC_RECORD;
		const Elf64_Sym *s = &obj->syms[ELF64_R_SYM(rel[k].r_info)];
		if (ELF64_R_TYPE(rel[k].r_info) != R_X86_64_64 || (field != 0 && field != 8))
			rc = wf_errf(err, ".wfpatch.funcs: unexpected relocation at offset 0x%lx",
				     (unsigned long)rel[k].r_offset);
		else if (seen[rec] & (field ? 2 : 1))
			rc = wf_errf(err, ".wfpatch.funcs: record %zu relocated twice", rec);
		else if (field == 0 && s->st_shndx != SHN_UNDEF)
			rc = wf_errf(err, ".wfpatch.funcs: record %zu: old function %s must be undefined", rec,
				     wf_obj_symname(obj, s));
		else if (field == 8 && (s->st_shndx == SHN_UNDEF || s->st_shndx == SHN_ABS ||
					!(obj->sh[s->st_shndx].sh_flags & SHF_EXECINSTR)))
			rc = wf_errf(err, ".wfpatch.funcs: record %zu: new function %s is not patch code", rec,
				     wf_obj_symname(obj, s));
		else
			seen[rec] |= field ? 2 : 1;
	}
	for (size_t i = 0; i < obj->nfuncs && !rc; i++)
		if (seen[i] != 3)
			rc = wf_errf(err, ".wfpatch.funcs: record %zu lacks its old or new address relocation", i);
	free(seen);
	return rc;
}

static int check_target(struct wf_obj *obj, char *err)
{
	for (unsigned i = 1; i < obj->shnum; i++) {
		const char *name = wf_obj_secname(obj, i);
		const Elf64_Shdr *s = &obj->sh[i];
		bool target = !strcmp(name, ".wfpatch.target"), meta = !strcmp(name, ".wfpatch.meta");
		if (!target && !meta)
			continue;
		if (s->sh_type == SHT_NOBITS)
			return wf_errf(err, "%s has no contents", name);
		const char *p = (const char *)obj->buf + s->sh_offset, *end = p + s->sh_size;
		if (meta) {
			free(obj->meta);
			obj->meta = strndup(p, s->sh_size);
			continue;
		}
		while (p < end) {
			const char *nul = memchr(p, 0, (size_t)(end - p));
			size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
			if (len == 0) {
				p++;
				continue;
			}
			if (len < 10 || len > 9 + 128 || strncmp(p, "build-id=", 9))
				return wf_errf(err, ".wfpatch.target: unexpected entry '%.*s'", (int)(len > 60 ? 60 : len), p);
			char id[129];
			memcpy(id, p + 9, len - 9);
			id[len - 9] = 0;
			if (strspn(id, "0123456789abcdef") != len - 9)
				return wf_errf(err, ".wfpatch.target: build-id is not lowercase hex");
			if (obj->build_id[0] && strcmp(obj->build_id, id))
				return wf_errf(err, ".wfpatch.target: differing build-ids %s and %s in one patch",
					       obj->build_id, id);
			strcpy(obj->build_id, id);
			p += len + 1;
		}
	}
	if (!obj->build_id[0])
		return wf_errf(err, "no target build-id (.wfpatch.target): build it with create-diff-object --binary");
	return 0;
}

int wf_obj_read(const char *path, struct wf_obj *obj, char *err)
{
	memset(obj, 0, sizeof(*obj));
	if (read_file(path, obj, err) || check_header(obj, err) || check_sections(obj, err) ||
	    check_symbols(obj, err) || check_relocations(obj, err) || check_funcs(obj, err) ||
	    check_target(obj, err)) {
		wf_obj_free(obj);
		return -1;
	}
	return 0;
}

void wf_obj_free(struct wf_obj *obj)
{
	free(obj->buf);
	free(obj->meta);
	memset(obj, 0, sizeof(*obj));
}
