/*
 * Pass 2 (correlate): pair each patched symbol and section with its original.
 *
 * Globals pair by exact name.  Locals pair by their normalized name (GCC's
 * per-file numbering removed).  When several candidates share a name,
 * numbered static locals pair by a function that uses them (so "counter" in
 * f() never pairs with "counter" in g()), then identical contents pair, then
 * order of appearance.  Last, C++ function statics renamed only by a moved
 * __LINE__ in their name pair when that is unambiguous.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cdo.h"

struct cand {
	const char *key;
	struct symbol *sym;
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->sym->idx < y->sym->idx ? -1 : x->sym->idx > y->sym->idx;
}

static bool correlatable(const struct symbol *s)
{
	if (s->idx == 0 || s->type == STT_SECTION || s->type == STT_FILE || !s->name[0])
		return false;
	if (s->bind == STB_LOCAL)
		return s->sec && strncmp(s->name, ".L", 2);
	return true;
}

static struct cand *candidates(struct object *obj, size_t *n)
{
	struct cand *v = xzalloc(obj->nsyms * sizeof(*v));
	size_t k = 0;

	for (size_t i = 0; i < obj->nsyms; i++) {
		struct symbol *s = &obj->syms[i];

		if (!correlatable(s))
			continue;
		if (s->bind != STB_LOCAL)
			v[k].key = xasprintf("G:%s", s->name);
		else
			v[k].key = xasprintf("L:%s", s->norm);
		v[k++].sym = s;
	}
	qsort(v, k, sizeof(*v), cmp_cand);
	*n = k;
	return v;
}

static bool same_bytes(const struct symbol *a, const struct symbol *b)
{
	const struct section *sa = a->sec, *sb = b->sec;

	if (!sa || !sb || a->st.st_size != b->st.st_size)
		return false;
	if (!sa->data || !sb->data)
		return !sa->data && !sb->data;
	return !memcmp(sa->data + a->st.st_value, sb->data + b->st.st_value, a->st.st_size);
}

static void pair(struct symbol *a, struct symbol *b)
{
	a->twin = b;
	b->twin = a;
}

static bool same_user(const struct symbol *a, const struct symbol *b)
{
	return a->user && b->user && !strcmp(a->user, b->user);
}

static void pair_group(struct cand *a, size_t na, struct cand *b, size_t nb)
{
	/* numbered static locals of one name in several functions: by the
	 * function using them (count.0 in f() is count.3 in f() after) */
	if (na > 1 || nb > 1) {
		for (size_t i = 0; i < na; i++)
			for (size_t j = 0; j < nb; j++)
				if (!a[i].sym->twin && !b[j].sym->twin && a[i].sym->type == b[j].sym->type &&
				    same_user(a[i].sym, b[j].sym))
					pair(a[i].sym, b[j].sym);
	}
	/* clones whose numbers swapped: identical bodies pair first */
	if (na > 1 || nb > 1) {
		for (size_t i = 0; i < na; i++)
			for (size_t j = 0; j < nb; j++)
				if (!a[i].sym->twin && !b[j].sym->twin &&
				    a[i].sym->type == b[j].sym->type && same_bytes(a[i].sym, b[j].sym))
					pair(a[i].sym, b[j].sym);
	}
	for (size_t i = 0, j = 0; i < na && j < nb;) {
		if (a[i].sym->twin) {
			i++;
			continue;
		}
		if (b[j].sym->twin) {
			j++;
			continue;
		}
		pair(a[i++].sym, b[j++].sym);
	}
}

/*
 * How many digit runs differ between two names that are equal elsewhere:
 * -1 when the text between the digit runs differs.
 */
static int digit_runs_apart(const char *a, const char *b)
{
	int apart = 0;

	while (*a && *b) {
		bool da = *a >= '0' && *a <= '9', db = *b >= '0' && *b <= '9';

		if (da != db)
			return -1;
		if (!da) {
			if (*a++ != *b++)
				return -1;
			continue;
		}
		const char *ea = a, *eb = b;

		while (*ea >= '0' && *ea <= '9')
			ea++;
		while (*eb >= '0' && *eb <= '9')
			eb++;
		if (ea - a != eb - b || strncmp(a, b, (size_t)(ea - a)))
			apart++;
		a = ea;
		b = eb;
	}
	return *a || *b ? -1 : apart;
}

static bool line_named(const struct symbol *s)
{
	return !s->twin && s->type == STT_OBJECT && s->sec && !strncmp(s->name, "_ZZ", 3);
}

/* The one unpaired symbol of @in nearest to @s by digit runs, or NULL when none or a tie. */
static struct symbol *nearest(struct object *in, const struct symbol *s)
{
	struct symbol *best = NULL;
	int min = 0, ties = 0;

	for (size_t m = 1; m < in->nsyms; m++) {
		struct symbol *c = &in->syms[m];
		int apart;

		if (!line_named(c) || c->st.st_size != s->st.st_size)
			continue;
		apart = digit_runs_apart(c->name, s->name);
		if (apart <= 0)
			continue;
		if (!best || apart < min) {
			best = c;
			min = apart;
			ties = 0;
		} else if (apart == min) {
			ties++;
		}
	}
	return ties ? NULL : best;
}

/*
 * Statics whose name carries __LINE__ (Node.js' TRACE_EVENT keeps its state in
 * "trace_event_unique_atomic<line>", many in one function, told apart by
 * GCC's discriminators "_5", "__57_"): a line moved above them renames them.
 * Left over after pairing by name, an original and a patched static of one
 * size that are each other's only nearest name (fewest differing numbers,
 * the rest of the name equal) are the same variable.
 */
static void pair_line_named(struct object *o, struct object *p)
{
	for (size_t k = 1; k < p->nsyms; k++) {
		struct symbol *b = &p->syms[k], *a;

		if (!line_named(b))
			continue;
		a = nearest(o, b);
		if (a && nearest(p, a) == b)
			pair(a, b);
	}
}

int correlate(struct diff *d)
{
	struct object *o = d->orig, *p = d->patched;
	struct cand *a, *b;
	size_t na, nb, i = 0, j = 0, defined = 0, paired = 0;

	if (strcmp(o->file, p->file)) {
		snprintf(d->error, sizeof(d->error),
			 "the objects come from different source files (%s: \"%s\", %s: \"%s\")",
			 o->path, o->file, p->path, p->file);
		return EXIT_BADINPUT;
	}
	a = candidates(o, &na);
	b = candidates(p, &nb);
	while (i < na && j < nb) {
		int c = strcmp(a[i].key, b[j].key);
		size_t ei = i, ej = j;

		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0) {
			j++;
			continue;
		}
		while (ei < na && !strcmp(a[ei].key, a[i].key))
			ei++;
		while (ej < nb && !strcmp(b[ej].key, b[j].key))
			ej++;
		pair_group(a + i, ei - i, b + j, ej - j);
		i = ei;
		j = ej;
	}
	for (size_t k = 0; k < na; k++)
		free((char *)a[k].key);
	for (size_t k = 0; k < nb; k++)
		free((char *)b[k].key);
	free(a);
	free(b);
	pair_line_named(o, p);

	/* a symbol whose type changed is not the same thing */
	for (size_t k = 0; k < p->nsyms; k++) {
		struct symbol *s = &p->syms[k];

		if (s->twin && s->twin->type != s->type && s->sec && s->twin->sec) {
			s->twin->twin = NULL;
			s->twin = NULL;
		}
	}
	/* sections follow their first function or object */
	for (size_t k = 1; k < p->nsecs; k++) {
		struct section *s = &p->secs[k];

		if (s->nsyms && s->syms[0]->twin && s->syms[0]->twin->sec) {
			s->twin = s->syms[0]->twin->sec;
			s->twin->twin = s;
		}
	}
	for (size_t k = 1; k < o->nsyms; k++) {
		struct symbol *s = &o->syms[k];

		if (s->sec && (s->type == STT_FUNC || s->type == STT_OBJECT)) {
			defined++;
			if (s->twin)
				paired++;
		}
	}
	if (defined >= 2 && paired == 0 && !o->file[0]) {
		snprintf(d->error, sizeof(d->error),
			 "the objects share no function or object: %s and %s are not two builds of one file",
			 o->path, p->path);
		return EXIT_BADINPUT;
	}
	return 0;
}
