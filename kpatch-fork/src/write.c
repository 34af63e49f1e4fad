/*
 * Pass 6 (write): emit the patch object described in FORMAT.md.
 *
 * The file is written to a temporary name in the output's directory and
 * renamed into place only when complete, so a reader never sees half a patch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cdo.h"

struct strtab {
	char *buf;
	size_t len, cap;
};

static unsigned str_add(struct strtab *t, const char *s)
{
	size_t n = strlen(s) + 1;
	unsigned off;

	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 64;
		t->buf = xrealloc(t->buf, t->cap);
	}
	off = t->len;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	return off;
}

struct outsec {
	const char *name;
	GElf_Shdr sh;
	void *data;
	size_t size;
	Elf_Type type;
	struct section *src;	/* copied section, or NULL */
	struct outsec *relfor;	/* for a .rela section: the section it applies to */
	Elf64_Rela *relas;
	size_t nrelas;
	unsigned idx;
	unsigned secsym;
};

struct out {
	struct outsec *s;
	size_t n;
	Elf64_Sym *syms;
	size_t nsyms, cap;
	struct strtab str, shstr;
};

static struct outsec *add_sec(struct out *o, const char *name, uint32_t type, uint64_t flags,
			      uint64_t align, void *data, size_t size)
{
	struct outsec *s;

	o->s = xrealloc(o->s, (o->n + 1) * sizeof(*o->s));
	s = &o->s[o->n];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->sh.sh_type = type;
	s->sh.sh_flags = flags;
	s->sh.sh_addralign = align ? align : 1;
	s->data = data;
	s->size = size;
	s->type = ELF_T_BYTE;
	s->idx = ++o->n;	/* index 0 is the null section */
	return s;
}

static unsigned add_sym(struct out *o, const char *name, unsigned char bind, unsigned char type,
			unsigned shndx, uint64_t value, uint64_t size)
{
	Elf64_Sym *y;

	if (o->nsyms == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 64;
		o->syms = xrealloc(o->syms, o->cap * sizeof(*o->syms));
	}
	y = &o->syms[o->nsyms];
	memset(y, 0, sizeof(*y));
	y->st_name = name && *name ? str_add(&o->str, name) : 0;
	y->st_info = ELF64_ST_INFO(bind, type);
	y->st_shndx = shndx;
	y->st_value = value;
	y->st_size = size;
	return o->nsyms++;
}

static int rela_index(struct rela *r, uint64_t *info_sym)
{
	if (r->ext)
		*info_sym = r->ext->out_idx;
	else if (r->osym)
		*info_sym = r->osym->out_idx;
	else if (r->osec && r->osec->out_idx)
		*info_sym = r->osec->out_secsym;
	else
		return -1;
	return 0;
}

static int emit(struct out *o, const char *tmp, char *err, size_t errlen)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	Elf *elf;
	GElf_Ehdr eh;

	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	elf = elf_begin(fd, ELF_C_WRITE, NULL);
	if (!elf || !gelf_newehdr(elf, ELFCLASS64) || !gelf_getehdr(elf, &eh))
		goto fail;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_REL;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_shstrndx = o->n;	/* .shstrtab is last */
	if (!gelf_update_ehdr(elf, &eh))
		goto fail;
	for (size_t i = 0; i < o->n; i++) {
		struct outsec *s = &o->s[i];
		Elf_Scn *scn = elf_newscn(elf);
		Elf_Data *data = scn ? elf_newdata(scn) : NULL;
		GElf_Shdr sh;

		if (!data || !gelf_getshdr(scn, &sh))
			goto fail;
		data->d_buf = s->sh.sh_type == SHT_NOBITS ? NULL : s->data;
		data->d_size = s->size;
		data->d_type = s->type;
		data->d_align = s->sh.sh_addralign;
		data->d_version = EV_CURRENT;
		sh = s->sh;
		sh.sh_size = s->size;
		if (!gelf_update_shdr(scn, &sh))
			goto fail;
	}
	if (!gelf_getehdr(elf, &eh))
		goto fail;
	eh.e_shstrndx = o->n;
	if (!gelf_update_ehdr(elf, &eh) || elf_update(elf, ELF_C_WRITE) < 0)
		goto fail;
	elf_end(elf);
	if (fsync(fd) || close(fd)) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
	if (elf)
		elf_end(elf);
	close(fd);
	return -1;
}

int write_output(struct diff *d, const char *path)
{
	struct object *p = d->patched;
	struct out o = { 0 };
	struct outsec *symtab, *strtab, *shstrtab;
	size_t funcs_idx = 0;	/* index into o.s + 1; o.s moves as it grows */
	size_t ncontent, nrec = 0, firstglobal;
	unsigned char *fdata = NULL;
	char *tmp, err[600];
	int rc;

	/* content sections, in the patched object's order, .eh_frame last */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 1; i < p->nsecs; i++) {
			struct section *s = &p->secs[i];
			struct outsec *os;

			if (!s->include || (s->kind == K_EH) != (pass == 1))
				continue;
			os = add_sec(&o, s->name, s->sh.sh_type, s->sh.sh_flags & ~(uint64_t)SHF_GROUP,
				     s->sh.sh_addralign, s->kind == K_EH ? s->out_data : s->data,
				     s->kind == K_EH ? s->out_size : s->size);
			os->sh.sh_entsize = s->sh.sh_entsize;
			os->src = s;
			s->out_idx = os->idx;
		}
	}
	for (size_t i = 0; i < d->nrecs; i++)
		if (!d->recs[i].dropped)
			nrec++;
	if (nrec) {
		fdata = xzalloc(nrec * 32);
		struct outsec *funcs = add_sec(&o, ".wfpatch.funcs", SHT_PROGBITS, 0, 8, fdata, nrec * 32);

		funcs->sh.sh_entsize = 32;
		funcs_idx = funcs->idx;
	}
	if (d->target && d->target->build_id[0]) {
		char *t = xasprintf("build-id=%s", d->target->build_id);

		add_sec(&o, ".wfpatch.target", SHT_PROGBITS, 0, 1, t, strlen(t) + 1);
	}
	add_sec(&o, ".note.GNU-stack", SHT_PROGBITS, 0, 1, NULL, 0);
	ncontent = o.n;

	str_add(&o.str, "");
	/* symbols: null, file, section symbols, defined locals | defined globals, undefined */
	add_sym(&o, NULL, STB_LOCAL, STT_NOTYPE, SHN_UNDEF, 0, 0);
	add_sym(&o, p->file, STB_LOCAL, STT_FILE, SHN_ABS, 0, 0);
	for (size_t i = 0; i < ncontent; i++) {
		struct outsec *s = &o.s[i];

		if (s->src || s->idx == funcs_idx) {
			s->secsym = add_sym(&o, NULL, STB_LOCAL, STT_SECTION, s->idx, 0, 0);
			if (s->src)
				s->src->out_secsym = s->secsym;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			firstglobal = o.nsyms;
		for (size_t i = 1; i < p->nsyms; i++) {
			struct symbol *s = &p->syms[i];

			if (s->out_bind == 0xff || (s->out_bind == STB_LOCAL) != (pass == 0))
				continue;
			s->out_idx = add_sym(&o, s->name, s->out_bind, s->type, s->sec->out_idx,
					     s->st.st_value, s->st.st_size);
			/* locals carry no visibility (ld warns about hidden locals) */
			o.syms[s->out_idx].st_other = s->out_bind == STB_LOCAL ? 0 : s->st.st_other;
		}
	}
	for (size_t i = 0; i < d->nrecs; i++)
		if (!d->recs[i].dropped)
			d->recs[i].old->used = true;
	for (size_t i = 1; i < p->nsecs; i++) {
		struct section *s = &p->secs[i];
		struct rela *rv = s->kind == K_EH ? s->out_relas : s->relas;
		size_t n = s->kind == K_EH ? s->out_nrelas : s->nrelas;

		for (size_t j = 0; s->include && j < n; j++)
			if (rv[j].ext)
				rv[j].ext->used = true;
	}
	for (size_t i = 0; i < d->nexts; i++) {
		struct extref *e = d->exts[i];

		if (!e->used)
			continue;
		e->name = (char *)extref_name(e);
		e->out_idx = add_sym(&o, e->name, e->bind, e->type, SHN_UNDEF, 0, 0);
	}

	/* relocation sections */
	for (size_t i = 0; i < ncontent; i++) {
		struct outsec *s = &o.s[i];
		struct rela *rv;
		size_t n;

		if (s->idx == funcs_idx) {
			Elf64_Rela *r = xzalloc(nrec * 2 * sizeof(*r));
			size_t k = 0;

			for (size_t j = 0; j < d->nrecs; j++) {
				struct record *rec = &d->recs[j];
				uint64_t sizes[2] = { rec->oldsym->st.st_size, rec->newsym->st.st_size };

				if (rec->dropped)
					continue;
				memcpy(fdata + k * 32 + 16, sizes, 16);
				r[2 * k].r_offset = k * 32;
				r[2 * k].r_info = ELF64_R_INFO(rec->old->out_idx, R_X86_64_64);
				r[2 * k + 1].r_offset = k * 32 + 8;
				r[2 * k + 1].r_info = ELF64_R_INFO(rec->newsym->out_idx, R_X86_64_64);
				k++;
			}
			s->relas = r;
			s->nrelas = 2 * nrec;
			continue;
		}
		if (!s->src)
			continue;
		rv = s->src->kind == K_EH ? s->src->out_relas : s->src->relas;
		n = s->src->kind == K_EH ? s->src->out_nrelas : s->src->nrelas;
		if (!n)
			continue;
		s->relas = xzalloc(n * sizeof(*s->relas));
		for (size_t j = 0; j < n; j++) {
			uint64_t symi;

			if (rela_index(&rv[j], &symi)) {
				snprintf(d->error, sizeof(d->error), "internal error: unmapped relocation in %s",
					 s->name);
				return EXIT_UNPATCHABLE;
			}
			s->relas[j].r_offset = rv[j].offset;
			s->relas[j].r_info = ELF64_R_INFO(symi, rv[j].type);
			s->relas[j].r_addend = rv[j].oaddend;
		}
		s->nrelas = n;
	}
	for (size_t i = 0; i < ncontent; i++) {
		if (o.s[i].nrelas) {
			struct outsec *rs;
			char *name = xasprintf(".rela%s", o.s[i].name);
			struct outsec *target = &o.s[i];

			rs = add_sec(&o, name, SHT_RELA, SHF_INFO_LINK, 8, target->relas,
				     target->nrelas * sizeof(Elf64_Rela));
			target = &o.s[i];	/* add_sec may move the array */
			rs->type = ELF_T_RELA;
			rs->sh.sh_entsize = sizeof(Elf64_Rela);
			rs->sh.sh_info = target->idx;
		}
	}
	symtab = add_sec(&o, ".symtab", SHT_SYMTAB, 0, 8, NULL, 0);
	strtab = add_sec(&o, ".strtab", SHT_STRTAB, 0, 1, NULL, 0);
	(void)strtab;
	shstrtab = add_sec(&o, ".shstrtab", SHT_STRTAB, 0, 1, NULL, 0);
	symtab = &o.s[o.n - 3];
	symtab->data = o.syms;
	symtab->size = o.nsyms * sizeof(Elf64_Sym);
	symtab->type = ELF_T_SYM;
	symtab->sh.sh_entsize = sizeof(Elf64_Sym);
	symtab->sh.sh_link = o.n - 1;	/* .strtab */
	symtab->sh.sh_info = firstglobal;
	for (size_t i = 0; i < o.n; i++)
		if (o.s[i].sh.sh_type == SHT_RELA)
			o.s[i].sh.sh_link = symtab->idx;
	str_add(&o.shstr, "");
	for (size_t i = 0; i < o.n; i++)
		o.s[i].sh.sh_name = str_add(&o.shstr, o.s[i].name);
	o.s[o.n - 2].data = o.str.buf;
	o.s[o.n - 2].size = o.str.len;
	shstrtab = &o.s[o.n - 1];
	shstrtab->data = o.shstr.buf;
	shstrtab->size = o.shstr.len;

	tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	rc = emit(&o, tmp, err, sizeof(err));
	if (!rc && rename(tmp, path)) {
		snprintf(err, sizeof(err), "cannot rename %s to %s: %s", tmp, path, strerror(errno));
		rc = -1;
	}
	if (rc) {
		unlink(tmp);
		snprintf(d->error, sizeof(d->error), "%s", err);
		return EXIT_USAGE;
	}
	free(tmp);
	return 0;
}
