/* Small helpers shared by the passes: allocation, names, relocation facts. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include "cdo.h"

static void oom(void)
{
	fputs("create-diff-object: out of memory\n", stderr);
	exit(EXIT_USAGE);
}

void *xzalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

void strlist_add(struct strlist *l, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	if (strlist_has(l, s)) {
		free(s);
		return;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = s;
}

bool strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

/*
 * GCC numbers compiler-made local names with a per-translation-unit counter:
 * foo.isra.0, foo.constprop.3, foo.part.1, foo.cold.7, counter.2, __func__.4.
 * Any patch can shift those numbers, so names are correlated with every
 * all-digit dot component removed.
 */
const char *normalize_name(const char *name)
{
	size_t len = strlen(name);
	char *out = xzalloc(len + 1);
	const char *p = name;
	size_t o = 0;

	while (*p) {
		if (*p == '.' && p != name && isdigit((unsigned char)p[1])) {
			const char *q = p + 1;

			while (isdigit((unsigned char)*q))
				q++;
			if (*q == '.' || *q == '\0') {
				p = q;
				continue;
			}
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	return out;
}

bool is_pcrel(uint32_t type)
{
	switch (type) {
	case R_X86_64_PC32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
	case R_X86_64_GOTPC32:
		return true;
	default:
		return false;
	}
}

/* Bytes a relocation of @type patches in a relocatable object; -1 if the type
 * has no business in an ET_REL file or is unknown. */
int rela_width(uint32_t type)
{
	switch (type) {
	case R_X86_64_NONE:
	case R_X86_64_TLSDESC_CALL:
		return 0;
	case R_X86_64_8:
	case R_X86_64_PC8:
		return 1;
	case R_X86_64_16:
	case R_X86_64_PC16:
		return 2;
	case R_X86_64_PC32:
	case R_X86_64_GOT32:
	case R_X86_64_PLT32:
	case R_X86_64_GOTPCREL:
	case R_X86_64_32:
	case R_X86_64_32S:
	case R_X86_64_TLSGD:
	case R_X86_64_TLSLD:
	case R_X86_64_DTPOFF32:
	case R_X86_64_GOTTPOFF:
	case R_X86_64_TPOFF32:
	case R_X86_64_GOTPC32:
	case R_X86_64_SIZE32:
	case R_X86_64_GOTPC32_TLSDESC:
	case R_X86_64_GOTPCRELX:
	case R_X86_64_REX_GOTPCRELX:
		return 4;
	case R_X86_64_64:
	case R_X86_64_DTPMOD64:
	case R_X86_64_DTPOFF64:
	case R_X86_64_TPOFF64:
	case R_X86_64_PC64:
	case R_X86_64_GOTOFF64:
	case R_X86_64_GOT64:
	case R_X86_64_GOTPCREL64:
	case R_X86_64_GOTPC64:
	case R_X86_64_GOTPLT64:
	case R_X86_64_PLTOFF64:
	case R_X86_64_SIZE64:
		return 8;
	case R_X86_64_TLSDESC:
		return 16;
	default:
		return -1;
	}
}

/*
 * Compiler-made read-only objects that belong to the code using them rather
 * than being program state: the patch carries its own copy.
 */
bool sym_is_anon_value(const struct symbol *sym)
{
	const char *n = sym->norm ? sym->norm : sym->name;

	return !strcmp(n, "__func__") || !strcmp(n, "__FUNCTION__") ||
	       !strcmp(n, "__PRETTY_FUNCTION__") || !strcmp(n, "CSWTCH") ||
	       !strncmp(n, "DW.ref.", 7) || !strncmp(n, ".L", 2);
}

static void add_reason(struct diff *d, const char *kind, const char *symbol, char *what)
{
	struct strlist *l = !strcmp(kind, "unpatchable") ? &d->patch_reasons : &d->text_reasons;

	if (strlist_has(l, what)) {
		free(what);
		return;
	}
	strlist_add(l, "%s", what);
	d->reasons = xrealloc(d->reasons, (d->nreasons + 1) * sizeof(*d->reasons));
	d->reasons[d->nreasons].kind = kind;
	d->reasons[d->nreasons].symbol = symbol ? xstrdup(symbol) : NULL;
	d->reasons[d->nreasons].what = what;
	d->nreasons++;
}

/* The patch changes program state: not text-only (exit 4). */
void not_text_only(struct diff *d, const char *symbol, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	d->text_only = false;
	d->data_changed = true;
	add_reason(d, "data", symbol, s);
}

/* New data the patch carries (--new-data): not text-only in the paper's sense,
 * yet live-patchable (exit 0). */
void new_data_reason(struct diff *d, const char *symbol, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	d->text_only = false;
	add_reason(d, "new-data", symbol, s);
}

/* A change this tool cannot turn into a patch (exit 5). */
void not_patchable(struct diff *d, const char *symbol, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	d->patchable = false;
	add_reason(d, "unpatchable", symbol, s);
}

/*
 * Bytes at an old function's address the runtime may overwrite: its size,
 * rounded up to its section's alignment when it ends its section (the linker
 * pads the gap to the next section, which has at least that alignment in -O2
 * code built with -ffunction-sections).
 */
uint64_t old_room(const struct symbol *o)
{
	uint64_t align;

	if (!o->sec || o->st.st_value + o->st.st_size != o->sec->sh.sh_size)
		return o->st.st_size;
	align = o->sec->sh.sh_addralign ? o->sec->sh.sh_addralign : 1;
	return (o->st.st_size + align - 1) / align * align;
}

/*
 * A named constant alone in its section that only its users' code refers to:
 * a static const table, a C++ CHECK()'s function-local "static const
 * AssertionInfo args" (a pointer to a "file:line" string), const pointer
 * tables in .data.rel.ro.  Either local to this file, or the vague-linkage
 * copy (weak or unique, in a COMDAT group) of such a static inside an inline
 * function or a template instance, which every object using it carries.
 * When it changes, its users change with it and the patch carries a private
 * copy for them: being read-only, a copy reads the same as the one the
 * running program keeps (only comparing its address could tell them apart).
 */
bool is_ro_local(const struct symbol *sym)
{
	const struct section *s = sym->sec;
	/* _ZZ: a name local to a function (Itanium ABI); never a vtable or typeinfo,
	 * whose one copy the running program's objects point to. */
	bool vague = (sym->bind == STB_WEAK || sym->bind == STB_GNU_UNIQUE) && s && s->group &&
		     !strncmp(sym->name, "_ZZ", 3);

	if (sym->type != STT_OBJECT || (sym->bind != STB_LOCAL && !vague) || !s || s->kind != K_DATA || s->nsyms != 1)
		return false;
	if (s->sh.sh_flags & SHF_TLS)
		return false;
	return !(s->sh.sh_flags & SHF_WRITE) || !strncmp(s->name, ".data.rel.ro", 12);
}
