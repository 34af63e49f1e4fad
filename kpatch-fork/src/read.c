/*
 * Pass 1 (read): load a relocatable x86-64 ELF64 object into the model.
 *
 * Everything that later passes index with is validated here (section links,
 * symbol section indices, relocation symbols and offsets), so the other passes
 * can trust the model.  Any violation is "malformed input" (exit 2), never a
 * crash: this is the code the fuzzer exercises.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cdo.h"

static int fail(struct object *obj, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct object *obj, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(obj->err, sizeof(obj->err), "%s: ", obj->path);
	va_start(ap, fmt);
	vsnprintf(obj->err + n, sizeof(obj->err) - n, fmt, ap);
	va_end(ap);
	return code;
}

int read_object(struct object *obj, const char *path)
{
	FILE *f;
	struct stat st;
	unsigned char *buf;

	obj->path = path;
	f = fopen(path, "rb");
	if (!f)
		return fail(obj, EXIT_USAGE, "cannot open: %s", strerror(errno));
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		fclose(f);
		return fail(obj, EXIT_USAGE, "not a regular file");
	}
	buf = xzalloc(st.st_size + 1);
	if (st.st_size && fread(buf, 1, st.st_size, f) != (size_t)st.st_size) {
		fclose(f);
		free(buf);
		return fail(obj, EXIT_USAGE, "read error");
	}
	fclose(f);
	return read_object_mem(obj, path, buf, st.st_size);
}

static enum sec_kind classify(struct section *s)
{
	GElf_Shdr *sh = &s->sh;
	bool named = false;

	if (sh->sh_type == SHT_GROUP)
		return K_GROUP;
	if (sh->sh_type == SHT_RELA)
		return K_RELA;
	if (!(sh->sh_flags & SHF_ALLOC))
		return K_OTHER;
	if (!strcmp(s->name, ".eh_frame"))
		return K_EH;
	if (!strncmp(s->name, ".gcc_except_table", 17))
		return K_LSDA;
	if (sh->sh_flags & SHF_EXECINSTR)
		return K_TEXT;
	if (sh->sh_type == SHT_INIT_ARRAY || sh->sh_type == SHT_FINI_ARRAY ||
	    sh->sh_type == SHT_PREINIT_ARRAY || sh->sh_type == SHT_NOTE)
		return K_OTHER;
	if ((sh->sh_flags & SHF_MERGE) && (sh->sh_flags & SHF_STRINGS))
		return K_STRINGS;
	for (size_t i = 0; i < s->nsyms; i++)
		if (!sym_is_anon_value(s->syms[i]))
			named = true;
	if (named)
		return K_DATA;
	if (s->nsyms && !strncmp(s->syms[0]->name, "DW.ref.", 7))
		return K_VALUE;
	/* compiler-made tables of pointers (CSWTCH.N in PIC code), and the
	 * symbol-less pointer constants GCC loads to build a local array
	 * (.data.rel.ro.local), are read-only after relocation: values, not
	 * program state */
	if (!strncmp(s->name, ".data.rel.ro", 12) && !(sh->sh_flags & SHF_TLS))
		return K_VALUE;
	if ((sh->sh_flags & SHF_WRITE) || (sh->sh_flags & SHF_TLS))
		return K_DATA;
	return K_VALUE;
}

/* The named symbol (or anonymous data) a relocation really points at. */
void resolve_rela(struct object *obj, struct rela *r)
{
	struct symbol *s = r->sym;
	struct section *sec = s->sec;

	(void)obj;
	r->tsym = s;
	r->tsec = sec;
	r->toff = r->addend;
	if (!sec)
		return;
	if (s->type == STT_SECTION) {
		int64_t o = r->addend + (is_pcrel(r->type) ? 4 : 0);
		struct symbol *best = NULL;

		if (sec->kind == K_STRINGS || sec->nsyms == 0) {
			r->tsym = NULL;
			return;
		}
		for (size_t i = 0; i < sec->nsyms; i++) {
			struct symbol *c = sec->syms[i];

			if ((int64_t)c->st.st_value <= o &&
			    o < (int64_t)(c->st.st_value + (c->st.st_size ? c->st.st_size : 1))) {
				best = c;
				break;
			}
		}
		if (!best && sec->nsyms == 1)
			best = sec->syms[0];
		if (!best) {
			/* past the end of an object, or before the first one */
			for (size_t i = 0; i < sec->nsyms; i++)
				if ((int64_t)sec->syms[i]->st.st_value <= (o < 0 ? 0 : o))
					best = sec->syms[i];
		}
		if (!best) {
			r->tsym = NULL;
			return;
		}
		r->tsym = best;
		r->toff = r->addend - (int64_t)best->st.st_value;
		return;
	}
	if (s->type == STT_NOTYPE && s->bind == STB_LOCAL &&
	    (sec->kind == K_STRINGS || sec->kind == K_VALUE || !strncmp(s->name, ".L", 2))) {
		/* assembler labels such as .LC0 in a literal pool */
		r->tsym = NULL;
		r->toff = (int64_t)s->st.st_value + r->addend;
	}
}

static int cmp_rela(const void *a, const void *b)
{
	const struct rela *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return 0;
}

static int cmp_sym_value(const void *a, const void *b)
{
	const struct symbol *x = *(struct symbol *const *)a, *y = *(struct symbol *const *)b;

	if (x->st.st_value != y->st.st_value)
		return x->st.st_value < y->st.st_value ? -1 : 1;
	/* globals first among aliases, then symtab order */
	if ((x->bind == STB_LOCAL) != (y->bind == STB_LOCAL))
		return x->bind == STB_LOCAL ? 1 : -1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int read_relas(struct object *obj, struct section *rs)
{
	Elf_Scn *scn = elf_getscn(obj->elf, rs->idx);
	Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
	struct section *base;
	size_t n;

	if (!obj->symtab || rs->sh.sh_link != obj->symtab->idx)
		return fail(obj, EXIT_BADINPUT, "relocation section %s does not use the symbol table", rs->name);
	if (rs->sh.sh_info == 0 || rs->sh.sh_info >= obj->nsecs)
		return fail(obj, EXIT_BADINPUT, "relocation section %s applies to bad section index %u",
			    rs->name, (unsigned)rs->sh.sh_info);
	base = &obj->secs[rs->sh.sh_info];
	if (base->sh.sh_type == SHT_RELA || base->sh.sh_type == SHT_NULL || base->rela)
		return fail(obj, EXIT_BADINPUT, "relocation section %s applies to %s", rs->name, base->name);
	if (rs->sh.sh_entsize != sizeof(Elf64_Rela) || rs->sh.sh_size % sizeof(Elf64_Rela))
		return fail(obj, EXIT_BADINPUT, "relocation section %s has a bad entry size", rs->name);
	if (!data || data->d_size != rs->sh.sh_size)
		return fail(obj, EXIT_BADINPUT, "cannot read relocation section %s: %s", rs->name, elf_errmsg(-1));
	n = rs->sh.sh_size / sizeof(Elf64_Rela);
	base->rela = rs;
	rs->base = base;
	base->relas = xzalloc(n * sizeof(struct rela));
	base->nrelas = n;
	for (size_t i = 0; i < n; i++) {
		GElf_Rela gr;
		struct rela *r = &base->relas[i];
		size_t symi;
		int w;

		if (!gelf_getrela(data, (int)i, &gr))
			return fail(obj, EXIT_BADINPUT, "bad relocation %zu in %s", i, rs->name);
		symi = GELF_R_SYM(gr.r_info);
		r->type = GELF_R_TYPE(gr.r_info);
		r->offset = gr.r_offset;
		r->addend = gr.r_addend;
		w = rela_width(r->type);
		if (w < 0)
			return fail(obj, EXIT_BADINPUT, "relocation %zu in %s has unsupported type %u",
				    i, rs->name, r->type);
		if (symi >= obj->nsyms || (symi == 0 && r->type != R_X86_64_NONE))
			return fail(obj, EXIT_BADINPUT, "relocation %zu in %s uses bad symbol index %zu",
				    i, rs->name, symi);
		if (base->sh.sh_type == SHT_NOBITS || r->offset > base->size ||
		    base->size - r->offset < (uint64_t)w)
			return fail(obj, EXIT_BADINPUT, "relocation %zu in %s is outside %s",
				    i, rs->name, base->name);
		r->sym = &obj->syms[symi];
	}
	qsort(base->relas, n, sizeof(struct rela), cmp_rela);
	return 0;
}

static int read_symbols(struct object *obj)
{
	struct section *st = obj->symtab;
	Elf_Scn *scn = elf_getscn(obj->elf, st->idx);
	Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
	size_t strndx = st->sh.sh_link;

	if (st->sh.sh_entsize != sizeof(Elf64_Sym) || st->sh.sh_size % sizeof(Elf64_Sym) ||
	    st->sh.sh_size == 0)
		return fail(obj, EXIT_BADINPUT, "symbol table has a bad entry size");
	if (strndx == 0 || strndx >= obj->nsecs || obj->secs[strndx].sh.sh_type != SHT_STRTAB)
		return fail(obj, EXIT_BADINPUT, "symbol table has no string table");
	if (!data || data->d_size != st->sh.sh_size)
		return fail(obj, EXIT_BADINPUT, "cannot read the symbol table: %s", elf_errmsg(-1));
	obj->strtab = &obj->secs[strndx];
	obj->nsyms = st->sh.sh_size / sizeof(Elf64_Sym);
	obj->syms = xzalloc(obj->nsyms * sizeof(struct symbol));
	if (st->sh.sh_info > obj->nsyms)
		return fail(obj, EXIT_BADINPUT, "symbol table's first-global index is out of range");
	for (size_t i = 0; i < obj->nsyms; i++) {
		struct symbol *s = &obj->syms[i];
		unsigned shndx;

		s->idx = i;
		if (!gelf_getsym(data, (int)i, &s->st))
			return fail(obj, EXIT_BADINPUT, "cannot read symbol %zu", i);
		s->type = GELF_ST_TYPE(s->st.st_info);
		s->bind = GELF_ST_BIND(s->st.st_info);
		s->name = elf_strptr(obj->elf, strndx, s->st.st_name);
		if (!s->name)
			return fail(obj, EXIT_BADINPUT, "symbol %zu has a bad name offset", i);
		shndx = s->st.st_shndx;
		if (shndx == SHN_XINDEX)
			return fail(obj, EXIT_BADINPUT, "extended section indices are not supported");
		if (shndx != SHN_UNDEF && shndx < SHN_LORESERVE) {
			if (shndx >= obj->nsecs)
				return fail(obj, EXIT_BADINPUT, "symbol %s is in bad section %u", s->name, shndx);
			s->sec = &obj->secs[shndx];
		} else if (shndx >= SHN_LORESERVE && shndx != SHN_ABS && shndx != SHN_COMMON) {
			return fail(obj, EXIT_BADINPUT, "symbol %s has reserved section index %#x", s->name, shndx);
		}
		if (s->type == STT_SECTION) {
			if (!s->sec)
				return fail(obj, EXIT_BADINPUT, "section symbol %zu has no section", i);
			s->name = s->sec->name;
			if (!s->sec->secsym)
				s->sec->secsym = s;
		}
		if (s->type == STT_FILE && !obj->file && s->name[0])
			obj->file = s->name;
		if ((i < st->sh.sh_info) != (s->bind == STB_LOCAL) && i)
			return fail(obj, EXIT_BADINPUT, "symbol %s is on the wrong side of the local/global split", s->name);
		s->norm = s->bind == STB_LOCAL ? normalize_name(s->name) : s->name;
		if (s->sec && s->sec->sh.sh_type != SHT_NULL &&
		    (s->type == STT_FUNC || s->type == STT_OBJECT || s->type == STT_TLS ||
		     s->type == STT_GNU_IFUNC)) {
			struct section *sec = s->sec;

			if (s->st.st_value > sec->sh.sh_size || sec->sh.sh_size - s->st.st_value < s->st.st_size)
				return fail(obj, EXIT_BADINPUT, "symbol %s lies outside section %s", s->name, sec->name);
			sec->syms = xrealloc(sec->syms, (sec->nsyms + 1) * sizeof(*sec->syms));
			sec->syms[sec->nsyms++] = s;
		}
	}
	if (!obj->file)
		obj->file = "";
	return 0;
}

static int read_group(struct object *obj, struct section *g)
{
	const unsigned char *p = g->data;

	if (!p || g->size < 4 || g->size % 4)
		return fail(obj, EXIT_BADINPUT, "group section %s is malformed", g->name);
	for (size_t o = 4; o < g->size; o += 4) {
		uint32_t m;

		memcpy(&m, p + o, 4);
		if (m == 0 || m >= obj->nsecs)
			return fail(obj, EXIT_BADINPUT, "group section %s names bad section %u", g->name, m);
		obj->secs[m].group = g;
	}
	return 0;
}

/* Index sections by name so .text.X can find .gcc_except_table.X quickly. */
static int cmp_sec_name(const void *a, const void *b)
{
	return strcmp((*(struct section *const *)a)->name, (*(struct section *const *)b)->name);
}

static void pair_lsda(struct object *obj)
{
	struct section **v = xzalloc(obj->nsecs * sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < obj->nsecs; i++)
		if (obj->secs[i].kind == K_TEXT)
			v[n++] = &obj->secs[i];
	qsort(v, n, sizeof(*v), cmp_sec_name);
	for (size_t i = 0; i < obj->nsecs; i++) {
		struct section *l = &obj->secs[i], key, *kp = &key, **hit;
		char *want;

		if (l->kind != K_LSDA || strncmp(l->name, ".gcc_except_table.", 18))
			continue;
		/* main() and friends live in .text.startup.X, cold-only
		 * functions in .text.unlikely.X */
		static const char *const prefixes[] = { ".text.", ".text.startup.", ".text.unlikely.",
							".text.hot.", ".text.exit." };

		hit = NULL;
		for (size_t k = 0; k < sizeof(prefixes) / sizeof(*prefixes) && !hit; k++) {
			want = xasprintf("%s%s", prefixes[k], l->name + 18);
			key.name = want;
			hit = bsearch(&kp, v, n, sizeof(*v), cmp_sec_name);
			free(want);
		}
		if (hit)
			(*hit)->lsda = l;
	}
	free(v);
}

int read_object_mem(struct object *obj, const char *name, unsigned char *buf, size_t size)
{
	GElf_Ehdr eh;
	size_t shnum, shstrndx;
	int rc;

	obj->path = name;
	obj->buf = buf;
	obj->bufsize = size;
	if (size < 4 || memcmp(buf, ELFMAG, SELFMAG))
		return fail(obj, EXIT_BADINPUT, "not an ELF file");
	if (size < EI_NIDENT)
		return fail(obj, EXIT_BADINPUT, "truncated ELF header");
	if (buf[EI_CLASS] == ELFCLASS32)
		return fail(obj, EXIT_BADINPUT, "32-bit ELF object; only x86-64 ELF64 objects are supported");
	if (buf[EI_CLASS] != ELFCLASS64)
		return fail(obj, EXIT_BADINPUT, "unknown ELF class %u", buf[EI_CLASS]);
	if (buf[EI_DATA] != ELFDATA2LSB)
		return fail(obj, EXIT_BADINPUT, "big-endian ELF object; only x86-64 is supported");
	if (size < sizeof(Elf64_Ehdr))
		return fail(obj, EXIT_BADINPUT, "truncated ELF header");
	elf_version(EV_CURRENT);
	obj->elf = elf_memory((char *)buf, size);
	if (!obj->elf || elf_kind(obj->elf) != ELF_K_ELF || !gelf_getehdr(obj->elf, &eh))
		return fail(obj, EXIT_BADINPUT, "cannot parse ELF: %s", elf_errmsg(-1));
	if (eh.e_machine != EM_X86_64)
		return fail(obj, EXIT_BADINPUT, "machine type %u is not x86-64 (62)", eh.e_machine);
	if (eh.e_type != ET_REL)
		return fail(obj, EXIT_BADINPUT, "not a relocatable object (ELF type %u); pass the .o files", eh.e_type);
	if (elf_getshdrnum(obj->elf, &shnum) || elf_getshdrstrndx(obj->elf, &shstrndx))
		return fail(obj, EXIT_BADINPUT, "cannot read section headers: %s", elf_errmsg(-1));
	if (shnum == 0 || shnum > 1000000)
		return fail(obj, EXIT_BADINPUT, "bad section count %zu", shnum);
	if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > size ||
	    (size - eh.e_shoff) / sizeof(Elf64_Shdr) < shnum)
		return fail(obj, EXIT_BADINPUT, "section header table is truncated");
	if (shstrndx >= shnum)
		return fail(obj, EXIT_BADINPUT, "bad section name table index");

	obj->nsecs = shnum;
	obj->secs = xzalloc(shnum * sizeof(struct section));
	for (size_t i = 0; i < shnum; i++) {
		struct section *s = &obj->secs[i];
		Elf_Scn *scn = elf_getscn(obj->elf, i);

		s->idx = i;
		if (!scn || !gelf_getshdr(scn, &s->sh))
			return fail(obj, EXIT_BADINPUT, "cannot read section header %zu", i);
		if (i == 0) {
			s->name = "";
			continue;
		}
		s->name = elf_strptr(obj->elf, shstrndx, s->sh.sh_name);
		if (!s->name)
			return fail(obj, EXIT_BADINPUT, "section %zu has a bad name offset", i);
		s->size = s->sh.sh_size;
		if (s->sh.sh_type != SHT_NOBITS && s->sh.sh_type != SHT_NULL) {
			if (s->sh.sh_offset > size || size - s->sh.sh_offset < s->sh.sh_size)
				return fail(obj, EXIT_BADINPUT, "section %s is truncated", s->name);
			s->data = buf + s->sh.sh_offset;
		}
		if (s->sh.sh_type == SHT_SYMTAB) {
			if (obj->symtab)
				return fail(obj, EXIT_BADINPUT, "more than one symbol table");
			obj->symtab = s;
		}
		if (s->sh.sh_type == SHT_REL)
			return fail(obj, EXIT_BADINPUT, "SHT_REL section %s: x86-64 objects use SHT_RELA", s->name);
		/* GCC's LTO objects hold GIMPLE, not code: diffing them would
		 * find "nothing changed" whatever the patch did */
		if (!strncmp(s->name, ".gnu.lto_", 9) || !strncmp(s->name, ".gnu.debuglto_", 14) ||
		    !strcmp(s->name, ".llvm.lto"))
			return fail(obj, EXIT_BADINPUT, "LTO object (%s): build with -fno-lto", s->name);
	}
	if (obj->symtab) {
		rc = read_symbols(obj);
		if (rc)
			return rc;
	} else {
		/* an empty object (a file whose code is all #ifdef'd out, as
		 * strip leaves it): no symbols at all; relocations would be an
		 * error below */
		for (size_t i = 1; i < shnum; i++)
			if ((obj->secs[i].sh.sh_flags & SHF_ALLOC) && obj->secs[i].sh.sh_size &&
			    obj->secs[i].sh.sh_type != SHT_NOTE)
				return fail(obj, EXIT_BADINPUT, "no symbol table (stripped object?)");
		obj->nsyms = 1;
		obj->syms = xzalloc(sizeof(struct symbol));
		obj->syms[0].name = obj->syms[0].norm = "";
		obj->file = "";
	}
	for (size_t i = 1; i < shnum; i++) {
		struct section *s = &obj->secs[i];

		if (s->nsyms > 1)
			qsort(s->syms, s->nsyms, sizeof(*s->syms), cmp_sym_value);
		if (s->sh.sh_type == SHT_GROUP && (rc = read_group(obj, s)))
			return rc;
	}
	for (size_t i = 1; i < shnum; i++)
		obj->secs[i].kind = classify(&obj->secs[i]);
	for (size_t i = 1; i < shnum; i++)
		if (obj->secs[i].sh.sh_type == SHT_RELA && (rc = read_relas(obj, &obj->secs[i])))
			return rc;
	for (size_t i = 1; i < shnum; i++) {
		struct section *s = &obj->secs[i];

		for (size_t j = 0; j < s->nrelas; j++)
			resolve_rela(obj, &s->relas[j]);
	}
	pair_lsda(obj);

	/* static locals (counter.3): remember a function using them, so two
	 * statics called "counter" in different functions stay apart */
	for (size_t i = 1; i < shnum; i++) {
		struct section *s = &obj->secs[i];

		if (s->kind != K_TEXT || !s->nsyms)
			continue;
		for (size_t j = 0; j < s->nrelas; j++) {
			struct symbol *t = s->relas[j].tsym;

			if (t && t->bind == STB_LOCAL && t->type == STT_OBJECT && !t->user &&
			    strcmp(t->norm, t->name))
				t->user = s->syms[0]->norm;
		}
	}
	/* .cold parts belong to their function */
	for (size_t i = 1; i < obj->nsyms; i++) {
		struct symbol *s = &obj->syms[i];
		const char *c;

		if (s->type != STT_FUNC || !s->sec || !(c = strstr(s->norm, ".cold")))
			continue;
		for (size_t j = 1; j < obj->nsyms; j++) {
			struct symbol *p = &obj->syms[j];

			if (p != s && p->type == STT_FUNC && p->sec &&
			    strlen(p->norm) == (size_t)(c - s->norm) && !strncmp(p->norm, s->norm, c - s->norm)) {
				s->parent = p;
				break;
			}
		}
	}
	return 0;
}
