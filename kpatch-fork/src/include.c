/*
 * Pass 4 (include): choose what goes into the patch and judge it.
 *
 *  - changed and new functions, with their .cold parts (a cold part jumps
 *    back into its own function's body, so the two travel together);
 *  - the anonymous read-only data the chosen code uses (literals, jump
 *    tables, constants, __func__, DW.ref.* personality/typeinfo slots) and the
 *    exception tables of chosen functions, transitively;
 *  - .eh_frame records for the chosen code.
 * Named data objects are program state: a new or changed one makes the
 * patch "not text-only".  Records for .wfpatch.funcs are made here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cdo.h"

static const char *json_escape_min(const char *s)
{
	/* names go into JSON fragments below; escape just enough */
	size_t n = 0;
	char *o;

	for (const char *p = s; *p; p++)
		n += (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? 6 : 1;
	o = xzalloc(n + 1);
	n = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			o[n++] = '\\', o[n++] = *p;
		else if ((unsigned char)*p < 0x20)
			n += sprintf(o + n, "\\u%04x", (unsigned char)*p);
		else
			o[n++] = *p;
	}
	return o;
}

void data_entry(struct strlist *l, struct symbol *s, const char *reason)
{
	strlist_add(l, "{\"name\":\"%s\",\"section\":\"%s\",\"binding\":\"%s\",\"size\":%llu,\"reason\":\"%s\"}",
		    json_escape_min(s->name), json_escape_min(s->sec ? s->sec->name : ""),
		    s->bind == STB_LOCAL ? "local" : s->bind == STB_WEAK ? "weak" : "global",
		    (unsigned long long)s->st.st_size, json_escape_min(reason));
}

/*
 * A data section named like a C identifier is one the linker collects: the
 * program finds its entries between __start_NAME and __stop_NAME (FRR's
 * xref_array of log call sites, tables of handlers or tests).  The running
 * program walked it once; an entry a patch adds or removes is never seen.
 */
static bool collected_section(const struct section *s)
{
	const char *n = s->name;

	if (s->kind != K_DATA || !((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || *n == '_'))
		return false;
	for (; *n; n++)
		if (!((*n >= 'A' && *n <= 'Z') || (*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
			return false;
	return true;
}

static uint64_t collected_bytes(const struct object *o, const char *name)
{
	uint64_t n = 0;

	for (size_t i = 1; i < o->nsecs; i++)
		if (!strcmp(o->secs[i].name, name) && collected_section(&o->secs[i]))
			n += o->secs[i].size;
	return n;
}

/*
 * Said first: it is the cause, and the objects behind the added entry (its
 * statics, renumbered for every later entry) would otherwise be named instead.
 */
static void check_collected(struct diff *d)
{
	struct object *o = d->orig, *p = d->patched;

	for (int side = 0; side < 2; side++) {
		struct object *here = side ? o : p, *there = side ? p : o;

		for (size_t i = 1; i < here->nsecs; i++) {
			const struct section *s = &here->secs[i];
			uint64_t before, after;
			bool first = true;

			if (!collected_section(s))
				continue;
			for (size_t k = 1; k < i; k++)
				if (!strcmp(here->secs[k].name, s->name))
					first = false;
			/* each name once; one only the original has is reported from its side */
			if (!first || (side && collected_bytes(there, s->name)))
				continue;
			before = collected_bytes(o, s->name);
			after = collected_bytes(p, s->name);
			if (before != after)
				not_text_only(d, NULL,
					      "%s entries %s %s (%llu bytes), a section the linker collects for the program to walk at start-up (__start_%s), so the running program never sees the change",
					      after > before ? "adds" : "removes", after > before ? "to" : "from", s->name,
					      (unsigned long long)(after > before ? after - before : before - after), s->name);
		}
	}
}

static void check_data(struct diff *d)
{
	struct object *p = d->patched;

	check_collected(d);

	for (size_t i = 1; i < p->nsyms; i++) {
		struct symbol *s = &p->syms[i];
		const char *why;

		if (s->st.st_shndx == SHN_COMMON) {
			/* -fcommon tentative definitions have no section */
			if (!s->twin) {
				data_entry(&d->new_data_json, s, "new data object (common)");
				not_text_only(d, s->name, "new data object %s (common)", s->name);
			} else if (s->twin->st.st_size != s->st.st_size) {
				data_entry(&d->changed_data_json, s, "size changed (common)");
				not_text_only(d, s->name, "data object %s: size changed from %llu to %llu bytes (common)",
					      s->name, (unsigned long long)s->twin->st.st_size,
					      (unsigned long long)s->st.st_size);
			}
			continue;
		}
		if (!s->sec || (s->type != STT_OBJECT && s->type != STT_TLS) || s->sec->kind != K_DATA ||
		    sym_is_anon_value(s) || is_ro_local(s))
			continue;
		if (!s->twin || !s->twin->sec) {
			const char *refusal;

			if (new_data_candidate(d, s))
				continue;	/* the newdata pass decides, once it knows the users */
			refusal = d->allow_new_data ? new_data_refusal(s) : NULL;
			data_entry(&d->new_data_json, s, "new data object");
			if (refusal)
				not_text_only(d, s->name, "new data object %s (%s)", s->name, refusal);
			else
				not_text_only(d, s->name, "new data object %s", s->name);
			continue;
		}
		why = object_diff(s->twin, s, 0);
		if (why) {
			data_entry(&d->changed_data_json, s, why);
			if (collected_section(s->sec))
				not_text_only(d, s->name,
					      "entry %s of %s, a section the linker collects for the program to walk at start-up (__start_%s), changed (%s), so the running program keeps the old entry",
					      s->name, s->sec->name, s->sec->name, why);
			else
				not_text_only(d, s->name, "data object %s: %s", s->name, why);
		}
	}
	/* a new or removed constructor changes what runs at start-up */
	for (size_t i = 1; i < p->nsecs; i++) {
		struct section *s = &p->secs[i];

		if (s->sh.sh_type == SHT_INIT_ARRAY || s->sh.sh_type == SHT_PREINIT_ARRAY) {
			struct section *t = NULL;

			for (size_t k = 1; k < d->orig->nsecs; k++)
				if (!strcmp(d->orig->secs[k].name, s->name))
					t = &d->orig->secs[k];
			if (!t || t->nrelas != s->nrelas) {
				not_text_only(d, NULL, "start-up constructors changed (%s)", s->name);
			}
		}
	}
}

/*
 * Code that only runs at start-up (constructors listed in .init_array, C++
 * _GLOBAL__sub_I_ initializers) already ran in the live process: a change to
 * it changes the program's initial data, which patching code cannot redo.
 */
static void check_initializers(struct diff *d)
{
	struct object *p = d->patched;

	for (size_t i = 1; i < p->nsecs; i++) {
		struct section *s = &p->secs[i];

		if (s->kind != K_TEXT || s->status == ST_SAME || !s->nsyms)
			continue;
		for (size_t j = 0; j < s->nsyms; j++) {
			struct symbol *f = s->syms[j];
			bool init = !strncmp(f->name, "_GLOBAL__sub_I_", 15);

			for (size_t k = 1; k < p->nsecs && !init; k++) {
				struct section *a = &p->secs[k];

				if (a->sh.sh_type != SHT_INIT_ARRAY && a->sh.sh_type != SHT_PREINIT_ARRAY)
					continue;
				for (size_t r = 0; r < a->nrelas && !init; r++)
					init = a->relas[r].tsym == f || (a->relas[r].tsec == s && !a->relas[r].tsym);
			}
			if (init)
				not_text_only(d, f->name, "start-up initializer %s changed: it already ran in the live process",
					      f->name);
		}
	}
}

static void mark(struct section *s, const char *why, bool *progress)
{
	if (!s || s->include)
		return;
	s->include = true;
	s->why_included = why;
	*progress = true;
}

static bool is_tls_rela(uint32_t t)
{
	return (t >= R_X86_64_DTPMOD64 && t <= R_X86_64_TPOFF32) ||
	       (t >= R_X86_64_GOTPC32_TLSDESC && t <= R_X86_64_TLSDESC);
}

static void walk_relas(struct diff *d, struct section *s, struct rela *relas, size_t n, bool *progress)
{
	for (size_t j = 0; j < n; j++) {
		struct rela *r = &relas[j];
		struct symbol *t = r->tsym;

		if (is_tls_rela(r->type)) {
			not_patchable(d, t ? t->name : r->sym->name, "%s uses thread-local storage (%s): TLS relocations are not supported",
				    s->name, t ? t->name : r->sym->name);
		}
		if (t && t->sec && t->sec->kind == K_VALUE)
			mark(t->sec, "data used by patched code", progress);
		else if (t && is_ro_local(t) && (!t->twin || object_diff(t->twin, t, 0)))
			mark(t->sec, "changed constant used by patched code", progress);
		else if (t && new_data_candidate(d, t))
			mark(t->sec, "new data used by patched code", progress);
		else if (t && t->sec && t->sec->kind == K_TEXT && t->status == ST_NEW)
			mark(t->sec, "new function", progress);
		else if (!t && r->tsec) {
			switch (r->tsec->kind) {
			case K_STRINGS:
			case K_VALUE:
			case K_LSDA:
				mark(r->tsec, "data used by patched code", progress);
				break;
			case K_TEXT:
				if (!r->tsec->include) {
					not_patchable(d, NULL, "%s refers to code in %s that belongs to no function",
						    s->name, r->tsec->name);
				}
				break;
			default:
				not_patchable(d, NULL, "%s refers to anonymous data in %s",
					    s->name, r->tsec->name);
			}
		}
	}
}

/* Changed or new local constants: copied for the code that uses them, or,
 * used by no patched code, a data change after all. */
static void check_ro_locals(struct diff *d)
{
	struct object *p = d->patched;

	for (size_t i = 1; i < p->nsyms; i++) {
		struct symbol *s = &p->syms[i];
		const char *why;

		if (!is_ro_local(s))
			continue;
		why = !s->twin ? "new constant" : object_diff(s->twin, s, 0);
		if (!why)
			continue;
		if (s->sec->include) {
			data_entry(&d->copied_data_json, s, why);
		} else if (!s->twin) {
			data_entry(&d->new_data_json, s, "new data object");
			not_text_only(d, s->name, "new data object %s", s->name);
		} else {
			data_entry(&d->changed_data_json, s, why);
			not_text_only(d, s->name, "data object %s: %s", s->name, why);
		}
	}
}

static void add_record(struct diff *d, struct symbol *f)
{
	for (size_t i = 0; i < d->nrecs; i++) {
		struct symbol *o = d->recs[i].newsym;

		if (o->sec == f->sec && o->st.st_value == f->st.st_value)
			return;	/* alias (C++ C1/C2 constructors): one jump is enough */
	}
	d->recs = xrealloc(d->recs, (d->nrecs + 1) * sizeof(*d->recs));
	memset(&d->recs[d->nrecs], 0, sizeof(*d->recs));
	d->recs[d->nrecs].newsym = f;
	d->recs[d->nrecs].oldsym = f->twin;
	d->nrecs++;
}

void include(struct diff *d)
{
	struct object *p = d->patched;
	struct section *eh = NULL;
	bool progress = true;

	check_data(d);
	check_initializers(d);

	for (size_t i = 1; i < p->nsecs; i++) {
		struct section *s = &p->secs[i];

		if (s->kind == K_TEXT && s->nsyms && s->status != ST_SAME)
			mark(s, s->status == ST_NEW ? "new" : "changed", &progress);
		if (s->kind == K_EH)
			eh = s;
	}
	while (progress) {
		progress = false;
		for (size_t i = 1; i < p->nsyms; i++) {
			struct symbol *c = &p->syms[i];

			if (!c->parent || !c->sec || !c->parent->sec)
				continue;
			if (c->sec->include && !c->parent->sec->include)
				mark(c->parent->sec, "its .cold part changed", &progress);
			if (c->parent->sec->include && !c->sec->include)
				mark(c->sec, "cold part of a patched function", &progress);
		}
		for (size_t i = 1; i < p->nsecs; i++) {
			struct section *s = &p->secs[i];

			if (!s->include)
				continue;
			if (s->kind == K_TEXT)
				mark(s->lsda, "exception table of a patched function", &progress);
			walk_relas(d, s, s->relas, s->nrelas, &progress);
		}
	}
	if (eh) {
		char err[256];

		/* .eh_frame records for the chosen code, and what they use
		 * (personality and LSDA pointers) */
		if (build_eh_frame(p, eh, err, sizeof(err))) {
			not_patchable(d, NULL, "%s", err);
		} else if (eh->out_size) {
			eh->include = true;
			eh->why_included = "unwind information for patched code";
			do {
				progress = false;
				walk_relas(d, eh, eh->out_relas, eh->out_nrelas, &progress);
				for (size_t i = 1; i < p->nsecs; i++)
					if (p->secs[i].include && p->secs[i].kind != K_EH)
						walk_relas(d, &p->secs[i], p->secs[i].relas, p->secs[i].nrelas, &progress);
			} while (progress);
		}
	}

	check_ro_locals(d);
	if (d->allow_new_data)
		new_data(d);
	for (size_t i = 1; i < p->nsecs; i++) {
		struct section *s = &p->secs[i];

		if (s->kind != K_TEXT || !s->include)
			continue;
		if (s->nsyms > 1 && !s->group && s->syms[0]->st.st_value != s->syms[s->nsyms - 1]->st.st_value)
			strlist_add(&d->notes, "%s holds %zu functions (compile with -ffunction-sections): all are replaced",
				    s->name, s->nsyms);
		for (size_t j = 0; j < s->nsyms; j++) {
			struct symbol *f = s->syms[j];

			if (f->type != STT_FUNC && f->type != STT_GNU_IFUNC)
				continue;
			if (f->type == STT_GNU_IFUNC) {
				not_patchable(d, f->name, "%s is a GNU indirect function resolver", f->name);
			}
			f->include = true;
			if (f->twin && !f->parent)
				add_record(d, f);
		}
	}
	for (size_t i = 0; i < d->nrecs; i++) {
		struct symbol *o = d->recs[i].oldsym;
		uint64_t room = old_room(o);

		/* the linker pads a function up to its section alignment, so a
		 * 4-byte function aligned to 16 usually still has room for the
		 * jump; with --binary, check_target() measures the real room */
		if (!d->target && o->st.st_size && room < 5)
			not_patchable(d, o->name,
				      "%s is %llu bytes (with alignment padding), shorter than the 5-byte jump that redirects it",
				      o->name, (unsigned long long)room);
	}
}
