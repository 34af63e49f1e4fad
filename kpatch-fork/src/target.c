/*
 * The target binary (--binary): its build-id, and whether every reference the
 * patch keeps resolves in it.
 *
 * Locals are found like kpatch's sympos: the binary's .symtab lists each
 * input object's locals after that object's STT_FILE symbol.  Among the
 * blocks carrying our file name we pick the one whose locals are all known to
 * the original object, then number same-named locals across all blocks with
 * that file name, in .symtab order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cdo.h"

static int load(const char *path, unsigned char **buf, size_t *size, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		fclose(f);
		snprintf(err, errlen, "%s: not a regular file", path);
		return EXIT_USAGE;
	}
	*buf = xzalloc(st.st_size + 1);
	*size = st.st_size;
	if (st.st_size && fread(*buf, 1, st.st_size, f) != (size_t)st.st_size) {
		fclose(f);
		snprintf(err, errlen, "%s: read error", path);
		return EXIT_USAGE;
	}
	fclose(f);
	return 0;
}

static void read_syms(struct target *t, Elf_Scn *scn, GElf_Shdr *sh, bool dynamic)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t n;
	const char *file = NULL;
	unsigned block = 0;

	if (!data || sh->sh_entsize != sizeof(Elf64_Sym))
		return;
	n = data->d_size / sizeof(Elf64_Sym);
	t->syms = xrealloc(t->syms, (t->nsyms + n) * sizeof(*t->syms));
	for (size_t i = 1; i < n; i++) {
		GElf_Sym s;
		struct tsym *y;
		const char *name;

		if (!gelf_getsym(data, (int)i, &s))
			continue;
		name = elf_strptr(t->elf, sh->sh_link, s.st_name);
		if (!name)
			continue;
		if (GELF_ST_TYPE(s.st_info) == STT_FILE) {
			file = name;
			block++;
			continue;
		}
		y = &t->syms[t->nsyms++];
		y->name = name;
		y->type = GELF_ST_TYPE(s.st_info);
		y->bind = GELF_ST_BIND(s.st_info);
		y->defined = s.st_shndx != SHN_UNDEF;
		y->size = s.st_size;
		y->value = s.st_value;
		if (y->bind == STB_LOCAL && !dynamic) {
			y->file = file;
			y->block = block;
		}
	}
}

int read_target(struct target *t, const char *path, char *err, size_t errlen)
{
	GElf_Ehdr eh;
	Elf_Scn *scn = NULL;
	int rc;

	t->path = path;
	rc = load(path, &t->buf, &t->bufsize, err, errlen);
	if (rc)
		return rc;
	elf_version(EV_CURRENT);
	if (t->bufsize < EI_NIDENT || memcmp(t->buf, ELFMAG, SELFMAG)) {
		snprintf(err, errlen, "%s: not an ELF file", path);
		return EXIT_BADINPUT;
	}
	t->elf = elf_memory((char *)t->buf, t->bufsize);
	if (!t->elf || !gelf_getehdr(t->elf, &eh) || gelf_getclass(t->elf) != ELFCLASS64) {
		snprintf(err, errlen, "%s: not an ELF64 file", path);
		return EXIT_BADINPUT;
	}
	if (eh.e_machine != EM_X86_64 || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
		snprintf(err, errlen, "%s: not an x86-64 executable or shared object", path);
		return EXIT_BADINPUT;
	}
	while ((scn = elf_nextscn(t->elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if ((sh.sh_flags & SHF_EXECINSTR) && (sh.sh_flags & SHF_ALLOC)) {
			t->text = xrealloc(t->text, (t->ntext + 1) * sizeof(*t->text));
			t->text[t->ntext].addr = sh.sh_addr;
			t->text[t->ntext].offset = sh.sh_type == SHT_NOBITS ? 0 : sh.sh_offset;
			t->text[t->ntext++].size = sh.sh_type == SHT_NOBITS ? 0 : sh.sh_size;
		}
		if (sh.sh_type == SHT_SYMTAB)
			read_syms(t, scn, &sh, false);
		else if (sh.sh_type == SHT_DYNSYM)
			read_syms(t, scn, &sh, true);
		else if (sh.sh_type == SHT_NOTE && !t->build_id[0]) {
			Elf_Data *data = elf_getdata(scn, NULL);
			GElf_Nhdr nh;
			size_t off = 0, noff, doff;

			while (data && (off = gelf_getnote(data, off, &nh, &noff, &doff)) > 0) {
				if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
				    !memcmp((char *)data->d_buf + noff, "GNU", 4) && nh.n_descsz <= 64) {
					for (size_t k = 0; k < nh.n_descsz; k++)
						sprintf(t->build_id + 2 * k, "%02x",
							((unsigned char *)data->d_buf)[doff + k]);
					break;
				}
			}
		} else if (sh.sh_type == SHT_DYNAMIC) {
			Elf_Data *data = elf_getdata(scn, NULL);
			GElf_Dyn dyn;

			for (int k = 0; data && gelf_getdyn(data, k, &dyn); k++) {
				const char *n;

				if (dyn.d_tag == DT_NULL)
					break;
				if (dyn.d_tag != DT_NEEDED)
					continue;
				n = elf_strptr(t->elf, sh.sh_link, dyn.d_un.d_val);
				if (!n)
					continue;
				t->libs = xrealloc(t->libs, (t->nlibs + 1) * sizeof(*t->libs));
				t->libs[t->nlibs++] = (char *)n;
			}
		}
	}
	if (!t->build_id[0]) {
		snprintf(err, errlen, "%s: no GNU build-id note (link with -Wl,--build-id)", path);
		return EXIT_BADINPUT;
	}
	return 0;
}

/*
 * A program that loads the target (--loaded-by): a module dlopen()ed by it
 * takes the symbols the program exports (linked with -Wl,-E), as the dynamic
 * linker's global scope and libwfpatch's dlsym(RTLD_DEFAULT) see them.  Only
 * its dynamic symbols count, and the DT_NEEDED libraries it brings.
 */
int read_loader(struct target *t, const char *path, char *err, size_t errlen)
{
	struct target *l;
	GElf_Ehdr eh;
	Elf_Scn *scn = NULL;
	int rc;

	t->loaders = xrealloc(t->loaders, (t->nloaders + 1) * sizeof(*t->loaders));
	l = &t->loaders[t->nloaders];
	memset(l, 0, sizeof(*l));
	l->path = path;
	rc = load(path, &l->buf, &l->bufsize, err, errlen);
	if (rc) {
		snprintf(err + strlen(err), errlen - strlen(err), " (--loaded-by)");
		return rc;
	}
	elf_version(EV_CURRENT);
	if (l->bufsize < EI_NIDENT || memcmp(l->buf, ELFMAG, SELFMAG) ||
	    !(l->elf = elf_memory((char *)l->buf, l->bufsize)) || !gelf_getehdr(l->elf, &eh) ||
	    gelf_getclass(l->elf) != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
		snprintf(err, errlen, "%s: --loaded-by needs an x86-64 executable or shared object, this is not one", path);
		return EXIT_BADINPUT;
	}
	while ((scn = elf_nextscn(l->elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_DYNSYM) {
			read_syms(l, scn, &sh, true);
		} else if (sh.sh_type == SHT_DYNAMIC) {
			Elf_Data *data = elf_getdata(scn, NULL);
			GElf_Dyn dyn;

			for (int k = 0; data && gelf_getdyn(data, k, &dyn) && dyn.d_tag != DT_NULL; k++) {
				const char *n;

				if (dyn.d_tag != DT_NEEDED || !(n = elf_strptr(l->elf, sh.sh_link, dyn.d_un.d_val)))
					continue;
				l->libs = xrealloc(l->libs, (l->nlibs + 1) * sizeof(*l->libs));
				l->libs[l->nlibs++] = (char *)n;
			}
		}
	}
	t->nloaders++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Which STT_FILE block of the binary is the original object? */
static void choose_block(struct diff *d)
{
	struct target *t = d->target;
	struct object *o = d->orig;
	char **names = xzalloc(o->nsyms * sizeof(*names));
	size_t nn = 0;
	unsigned best = 0, ties = 0;
	long best_score = -1;

	for (size_t i = 1; i < o->nsyms; i++) {
		struct symbol *s = &o->syms[i];

		/* name and size: two statics of one name in two files usually differ in size */
		if (s->bind == STB_LOCAL && s->sec && (s->type == STT_FUNC || s->type == STT_OBJECT))
			names[nn++] = xasprintf("%s %llu", s->name, (unsigned long long)s->st.st_size);
	}
	qsort(names, nn, sizeof(*names), cmp_str);
	for (size_t i = 0; i < t->nsyms;) {
		unsigned b = t->syms[i].block;
		size_t j = i;
		long score = 0;
		bool foreign = false;

		if (!b || !t->syms[i].file || strcmp(t->syms[i].file, o->file)) {
			i++;
			continue;
		}
		for (; j < t->nsyms && t->syms[j].block == b; j++) {
			char *n;

			if (t->syms[j].type != STT_FUNC && t->syms[j].type != STT_OBJECT)
				continue;
			n = xasprintf("%s %llu", t->syms[j].name, (unsigned long long)t->syms[j].size);
			if (bsearch(&n, names, nn, sizeof(*names), cmp_str))
				score++;
			else
				foreign = true;
			free(n);
		}
		if (!foreign && score > best_score) {
			best_score = score;
			best = b;
			ties = 0;
		} else if (!foreign && score == best_score) {
			ties++;
		}
		i = j;
	}
	t->chosen_block = best;
	if (best && ties)
		strlist_add(&d->notes, "%u blocks of %s in %s match this object equally; the first is used",
			    ties + 1, o->file, t->path);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
}

static bool global_defined(struct target *t, const char *name, bool *imported)
{
	*imported = false;
	for (size_t i = 0; i < t->nsyms; i++) {
		struct tsym *y = &t->syms[i];

		if (y->bind == STB_LOCAL || strcmp(y->name, name))
			continue;
		if (y->defined)
			return true;
		*imported = true;
	}
	return false;
}

/* Whether library @lib (a DT_NEEDED name) exports @name: the first file of that name in
 * @t's --library-dir directories, then the system's, is read. */
static bool lib_defines(const struct target *t, const char *lib, const char *name)
{
	static const char *system_dirs[] = { "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
					     "/usr/lib", "/lib", NULL };
	size_t nsystem = sizeof(system_dirs) / sizeof(*system_dirs) - 1;
	bool found = false;

	for (size_t k = 0; k < t->nlibdirs + nsystem && !found; k++) {
		const char *dir = k < t->nlibdirs ? t->libdirs[k] : system_dirs[k - t->nlibdirs];
		struct target lt = { 0 };
		char path[4096], err[64];
		Elf_Scn *scn = NULL;

		if (snprintf(path, sizeof(path), "%s/%s", dir, lib) >= (int)sizeof(path))
			continue;
		if (access(path, R_OK) || load(path, &lt.buf, &lt.bufsize, err, sizeof(err)))
			continue;
		lt.elf = elf_memory((char *)lt.buf, lt.bufsize);
		while (lt.elf && (scn = elf_nextscn(lt.elf, scn))) {
			GElf_Shdr sh;

			if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_DYNSYM)
				read_syms(&lt, scn, &sh, true);
		}
		for (size_t i = 0; i < lt.nsyms; i++)
			if (lt.syms[i].defined && lt.syms[i].bind != STB_LOCAL && !strcmp(lt.syms[i].name, name))
				found = true;
		if (lt.elf)
			elf_end(lt.elf);
		free(lt.syms);
		free(lt.buf);
		break;
	}
	return found;
}

/*
 * Bytes free at a function's address in the binary: up to the next symbol or
 * the end of its section (a function shorter than the 5-byte jump can still be
 * redirected when alignment padding follows it).
 */
static uint64_t room_in_binary(struct target *t, uint64_t addr, uint64_t size)
{
	uint64_t end = 0;

	for (size_t i = 0; i < t->ntext; i++)
		if (addr >= t->text[i].addr && addr < t->text[i].addr + t->text[i].size)
			end = t->text[i].addr + t->text[i].size;
	if (!end)
		return size;
	for (size_t i = 0; i < t->nsyms; i++) {
		struct tsym *y = &t->syms[i];

		if (y->defined && y->value > addr && y->value < end &&
		    (y->type == STT_FUNC || y->type == STT_NOTYPE || y->type == STT_OBJECT))
			end = y->value;
	}
	return end - addr;
}

/* Address of the original function behind record @r in the binary (0 if not found). */
static uint64_t addr_in_binary(struct diff *d, struct record *r)
{
	struct target *t = d->target;
	struct extref *e = r->old;
	unsigned pos = 0;

	for (size_t i = 0; i < t->nsyms; i++) {
		struct tsym *y = &t->syms[i];

		if (!y->defined || strcmp(y->name, e->plain))
			continue;
		if (!e->local) {
			if (y->bind != STB_LOCAL)
				return y->value;
			continue;
		}
		if (y->bind == STB_LOCAL && y->block && y->file && !strcmp(y->file, e->file) &&
		    ++pos == (e->sympos ? e->sympos : 1))
			return y->value;
	}
	return 0;
}

/* The binary's bytes at [addr, addr + size), or NULL. */
static const unsigned char *bytes_in_binary(struct target *t, uint64_t addr, uint64_t size)
{
	for (size_t i = 0; i < t->ntext; i++) {
		uint64_t a = t->text[i].addr, n = t->text[i].size, off = t->text[i].offset;

		if (addr >= a && addr - a <= n && n - (addr - a) >= size && off + n <= t->bufsize)
			return t->buf + off + (addr - a);
	}
	return NULL;
}

/*
 * Is the binary's function the original object's code?  Bytes must match
 * except where the linker writes: relocated fields, and the instruction bytes
 * before a GOTPCRELX field (it may relax mov to lea, call * to call).
 * A mismatch means the object is not what the binary was built from, or a
 * weak function was overridden.
 */
static bool same_code(struct symbol *o, const unsigned char *bin)
{
	struct section *s = o->sec;
	uint64_t lo = o->st.st_value, hi = lo + o->st.st_size;
	unsigned char *mask;
	bool same = true;

	if (!s->data)
		return true;
	mask = xzalloc(o->st.st_size + 1);
	for (size_t i = 0; i < s->nrelas; i++) {
		struct rela *r = &s->relas[i];
		int w = rela_width(r->type);
		uint64_t from = r->offset, to = r->offset + (w > 0 ? w : 0);

		if ((r->type >= R_X86_64_DTPMOD64 && r->type <= R_X86_64_TPOFF32) ||
		    (r->type >= R_X86_64_GOTPC32_TLSDESC && r->type <= R_X86_64_TLSDESC)) {
			free(mask);
			return true;	/* TLS relaxation rewrites whole sequences: no verdict */
		}
		if (r->type == R_X86_64_GOTPCRELX || r->type == R_X86_64_REX_GOTPCRELX ||
		    r->type == R_X86_64_GOTPCREL)
			from = from >= 3 ? from - 3 : 0;
		for (uint64_t k = from; k < to; k++)
			if (k >= lo && k < hi)
				mask[k - lo] = 1;
	}
	for (uint64_t k = 0; k < o->st.st_size && same; k++)
		if (!mask[k] && s->data[lo + k] != bin[k])
			same = false;
	free(mask);
	return same;
}

static void check_local(struct diff *d, struct extref *e)
{
	struct target *t = d->target;
	bool hidden = !e->file[0];
	unsigned pos = 0, found = 0;

	e->checked = true;
	if (!hidden && !t->chosen_block) {
		e->how = "no STT_FILE block of the binary's .symtab matches this object's locals (names and sizes): the binary was not built from this object, or is stripped";
		return;
	}
	for (size_t i = 0; i < t->nsyms; i++) {
		struct tsym *y = &t->syms[i];

		if (!y->block || !y->file || strcmp(y->file, e->file) || strcmp(y->name, e->plain) || !y->defined)
			continue;
		pos++;
		if (hidden ? !found : y->block == t->chosen_block) {
			found = pos;
			if (!hidden)
				break;
		}
	}
	if (!found) {
		e->how = hidden ? "hidden symbol not found among the binary's linker-made locals"
				: "local symbol not found in the binary (inlined or discarded at link time?)";
		return;
	}
	e->sympos = found;
	e->resolved = true;
	e->how = hidden ? (pos > 1 ? "hidden symbol, local in the binary (several of that name: the first)"
				   : "hidden symbol, local in the binary")
			: "local symbol in the binary";
}

/*
 * A global the object references with default visibility but another object
 * of the link defined hidden (nfs-utils: xlog.c defines xlog hidden, its
 * header does not say so): the linker made it a local of the binary under the
 * empty STT_FILE block.  Resolved like a hidden reference, and then named like
 * one (__wfsym:<pos>:<name>:), so the loader finds the same local.
 */
static void check_linker_local(struct diff *d, struct extref *e)
{
	const char *how = e->how;

	e->local = true;
	e->file = "";
	check_local(d, e);
	if (e->resolved) {
		e->how = "defined hidden by another object of the link: a linker-made local in the binary";
		return;
	}
	e->local = false;
	e->sympos = 0;
	e->how = how;
}

/* "not defined in the binary, the libraries it needs, or exported by LOADER…" */
static const char *loaders_searched(struct target *t)
{
	char *s = xasprintf("not defined in the binary or the libraries it needs, nor exported by the program%s that load%s it (",
			    t->nloaders > 1 ? "s" : "", t->nloaders > 1 ? "" : "s");

	for (size_t p = 0; p < t->nloaders; p++) {
		char *n = xasprintf("%s%s%s", s, p ? ", " : "", t->loaders[p].path);

		free(s);
		s = n;
	}
	{
		char *n = xasprintf("%s) or their libraries", s);

		free(s);
		s = n;
	}
	return s;
}

void check_target(struct diff *d)
{
	struct target *t = d->target;

	choose_block(d);
	for (size_t i = 0; i < d->nexts; i++) {
		struct extref *e = d->exts[i];
		bool imported;

		if (e->local) {
			check_local(d, e);
			if (!e->resolved && e->orig)
				e->orig->unresolved = true;
			continue;
		}
		e->checked = true;
		if (global_defined(t, e->plain, &imported)) {
			e->resolved = true;
			e->how = "defined in the binary";
		} else if (imported) {
			e->resolved = true;
			e->how = "imported by the binary from a shared library";
		} else {
			/* the runtime's dlsym(RTLD_DEFAULT): the global scope, the loading
			 * program and the libraries it needs first, then the binary's own */
			for (size_t p = 0; p < t->nloaders && !e->resolved; p++) {
				struct target *l = &t->loaders[p];

				if (global_defined(l, e->plain, &imported)) {
					e->resolved = true;
					e->how = xasprintf("exported by %s, which loads the binary", l->path);
				}
				for (size_t k = 0; k < l->nlibs && !e->resolved; k++) {
					if (lib_defines(t, l->libs[k], e->plain)) {
						e->resolved = true;
						e->how = xasprintf("defined in %s, which %s loads", l->libs[k], l->path);
					}
				}
			}
			for (size_t k = 0; k < t->nlibs && !e->resolved; k++) {
				if (lib_defines(t, t->libs[k], e->plain)) {
					e->resolved = true;
					e->how = xasprintf("defined in %s, which the binary loads", t->libs[k]);
				}
			}
			for (size_t k = 0; k < d->nprovided && !e->resolved; k++) {
				if (!strcmp(d->provided[k], e->plain)) {
					e->resolved = true;
					e->how = "defined by another patch object of the same bundle (--provided)";
				}
			}
			if (!e->resolved)
				e->how = e->bind == STB_WEAK ? "weak reference not defined anywhere (resolves to 0)"
				       : t->nloaders ? loaders_searched(t)
						     : "not defined in the binary or the libraries it needs";
			if (!e->resolved && e->bind != STB_WEAK)
				check_linker_local(d, e);
			if (e->bind == STB_WEAK)
				e->resolved = true;
		}
	}
	/* a replaced function the binary does not have (inlined everywhere,
	 * discarded COMDAT): nothing to redirect, its new code is just new */
	for (size_t i = 0; i < d->nrecs; i++) {
		struct extref *old = d->recs[i].old;

		if (old->checked && !old->resolved) {
			bool used = false;

			d->recs[i].dropped = true;
			strlist_add(&d->notes, "%s is not in the binary: nothing to redirect, no record written",
				    d->recs[i].oldsym->name);
			/* keep it listed as unresolved only if code also uses it */
			for (size_t k = 0; k < d->patched->nsecs && !used; k++) {
				struct section *s = &d->patched->secs[k];
				struct rela *rv = s->kind == K_EH ? s->out_relas : s->relas;
				size_t n = s->kind == K_EH ? s->out_nrelas : s->nrelas;

				if (!s->include)
					continue;
				for (size_t j = 0; j < n && !used; j++)
					used = rv[j].ext == old;
			}
			if (!used)
				old->how = NULL;
		}
	}
	for (size_t i = 0; i < d->nrecs; i++) {
		struct symbol *o = d->recs[i].oldsym;
		const unsigned char *bin;
		uint64_t addr, room;

		if (d->recs[i].dropped || !d->recs[i].old->resolved || !(addr = addr_in_binary(d, &d->recs[i])))
			continue;
		bin = bytes_in_binary(t, addr, o->st.st_size);
		if (bin && !same_code(o, bin)) {
			if (o->sec->group)
				strlist_add(&d->notes, "%s: the binary kept another object's copy of this COMDAT function (its code differs); it is redirected all the same",
					    o->name);
			else
				not_patchable(d, o->name,
					      "%s in %s is not the code of %s (built differently, or a weak function overridden)",
					      o->name, t->path, d->orig->path);
		}
		if (o->st.st_size >= 5)
			continue;
		room = room_in_binary(t, addr, o->st.st_size);
		if (room < 5)
			not_patchable(d, o->name, "%s has %llu bytes in %s, less than the 5-byte jump that redirects it",
				      o->name, (unsigned long long)room, t->path);
		else
			strlist_add(&d->notes, "%s is %llu bytes; the jump that redirects it uses the %llu bytes free up to the next symbol",
				    o->name, (unsigned long long)o->st.st_size, (unsigned long long)room);
	}
	for (size_t i = 0; i < d->nexts; i++) {
		struct extref *e = d->exts[i];

		if (e->checked && !e->resolved && e->how) {
			not_patchable(d, e->plain, "%s does not resolve in %s: %s", e->plain, t->path, e->how);
		}
	}
}
