/*
 * Pass 3 (compare): decide which functions changed.
 *
 * Two sections are the same when their bytes are equal and their relocations
 * are pairwise equivalent: same offset and type, and a target that is "the
 * same thing" — the correlated symbol at the same offset, or, for anonymous
 * read-only data (string literals, jump tables, float constants, __func__),
 * the same value.  Comparing literals by value is what keeps a patch that
 * moves strings around in .rodata.str* from marking every user as changed.
 */
#include <stdio.h>
#include <string.h>
#include "cdo.h"

static bool section_equal(struct section *a, struct section *b, int depth);

static unsigned char byte_at(const struct section *s, uint64_t off)
{
	return s->data && off < s->size ? s->data[off] : 0;
}

/* Compare one data object's initializer: bytes and relocations in its range.
 * NULL when equal, else why not. */
const char *object_diff(struct symbol *a, struct symbol *b, int depth)
{
	static char why[200];
	struct section *sa = a->sec, *sb = b->sec;
	size_t ia = 0, ib = 0;

	if (a->st.st_size != b->st.st_size) {
		snprintf(why, sizeof(why), "size changed from %llu to %llu bytes",
			 (unsigned long long)a->st.st_size, (unsigned long long)b->st.st_size);
		return why;
	}
	if ((sa->sh.sh_flags ^ sb->sh.sh_flags) & (SHF_WRITE | SHF_TLS)) {
		snprintf(why, sizeof(why), "moved from %s to %s", sa->name, sb->name);
		return why;
	}
	for (uint64_t k = 0; k < a->st.st_size; k++) {
		if (byte_at(sa, a->st.st_value + k) != byte_at(sb, b->st.st_value + k)) {
			snprintf(why, sizeof(why), "initializer changed (byte %llu)", (unsigned long long)k);
			return why;
		}
	}
	for (;;) {
		struct rela *ra = NULL, *rb = NULL;

		while (ia < sa->nrelas && sa->relas[ia].offset < a->st.st_value)
			ia++;
		while (ib < sb->nrelas && sb->relas[ib].offset < b->st.st_value)
			ib++;
		if (ia < sa->nrelas && sa->relas[ia].offset < a->st.st_value + a->st.st_size)
			ra = &sa->relas[ia];
		if (ib < sb->nrelas && sb->relas[ib].offset < b->st.st_value + b->st.st_size)
			rb = &sb->relas[ib];
		if (!ra && !rb)
			return NULL;
		if (!ra || !rb || ra->offset - a->st.st_value != rb->offset - b->st.st_value ||
		    !rela_equal(ra, rb, depth + 1)) {
			snprintf(why, sizeof(why), "initializer changed (pointer at byte %llu)",
				 (unsigned long long)((ra ? ra->offset - a->st.st_value : rb->offset - b->st.st_value)));
			return why;
		}
		ia++;
		ib++;
	}
}


static bool in_range(const struct section *s, int64_t off)
{
	return s->data && off >= 0 && (uint64_t)off < s->size;
}

static bool is_string_start(const struct section *s, int64_t off)
{
	return in_range(s, off) && (off == 0 || s->data[off - 1] == '\0');
}

static bool strings_equal(struct section *a, int64_t oa, struct section *b, int64_t ob, uint32_t type)
{
	int64_t adj = is_pcrel(type) ? 4 : 0;

	/* a rip-relative operand followed by an immediate has a larger bias;
	 * pick the first bias that lands both offsets on a string start */
	if (adj) {
		for (int64_t t = 4; t <= 8; t++) {
			if (is_string_start(a, oa + t) && is_string_start(b, ob + t)) {
				adj = t;
				break;
			}
		}
	}
	oa += adj;
	ob += adj;
	if (!in_range(a, oa) || !in_range(b, ob))
		return oa - adj == ob - adj && section_equal(a, b, 3);
	while (in_range(a, oa) && in_range(b, ob)) {
		if (a->data[oa] != b->data[ob])
			return false;
		if (a->data[oa] == '\0')
			return true;
		oa++;
		ob++;
	}
	return false;
}

/* merged constants (.rodata.cst8 and friends): compare the one entry used */
static bool const_equal(struct section *a, int64_t oa, struct section *b, int64_t ob, uint32_t type)
{
	uint64_t es = a->sh.sh_entsize;
	int64_t adj = is_pcrel(type) ? 4 : 0;

	if (!es || es != b->sh.sh_entsize || !a->data || !b->data)
		return false;
	for (int64_t t = adj; t <= (adj ? 8 : 0); t++) {
		int64_t x = oa + t, y = ob + t;

		if (x >= 0 && y >= 0 && x % es == 0 && y % es == 0 &&
		    (uint64_t)x + es <= a->size && (uint64_t)y + es <= b->size)
			return !memcmp(a->data + x, b->data + y, es);
	}
	return false;
}

bool rela_equal(struct rela *a, struct rela *b, int depth)
{
	if (a->type != b->type)
		return false;
	if (a->tsym && b->tsym) {
		struct symbol *x = a->tsym, *y = b->tsym;

		if (sym_is_anon_value(x) && sym_is_anon_value(y) && x->sec && y->sec &&
		    x->type == y->type) {
			/* __func__.3 vs __func__.5: same text and same offset */
			if (a->toff != b->toff || x->st.st_size != y->st.st_size)
				return false;
			if (x->sec->kind == K_STRINGS)
				return strings_equal(x->sec, (int64_t)x->st.st_value + a->toff,
						     y->sec, (int64_t)y->st.st_value + b->toff, 0);
			return section_equal(x->sec, y->sec, depth + 1);
		}
		if (is_ro_local(x) && is_ro_local(y))
			/* a local constant (a CHECK()'s static AssertionInfo, a
			 * static const table): compared by value, like literals */
			return a->toff == b->toff && depth < 4 && !object_diff(x, y, depth);
		return x->twin == y && a->toff == b->toff;
	}
	if (a->tsym || b->tsym || !a->tsec || !b->tsec)
		return false;
	if (a->tsec->kind == K_STRINGS && b->tsec->kind == K_STRINGS)
		return strings_equal(a->tsec, a->toff, b->tsec, b->toff, a->type);
	if (a->tsec->kind != b->tsec->kind)
		return false;
	if (a->toff == b->toff && section_equal(a->tsec, b->tsec, depth + 1))
		return true;
	if ((a->tsec->sh.sh_flags & SHF_MERGE) && (b->tsec->sh.sh_flags & SHF_MERGE))
		return const_equal(a->tsec, a->toff, b->tsec, b->toff, a->type);
	return false;
}

static bool section_equal(struct section *a, struct section *b, int depth)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (depth > 4)
		return false;	/* absurdly deep value chains: call it changed */
	if (a->sh.sh_type != b->sh.sh_type || a->size != b->size ||
	    (a->sh.sh_flags & ~(uint64_t)SHF_GROUP) != (b->sh.sh_flags & ~(uint64_t)SHF_GROUP))
		return false;
	if (a->data && b->data && memcmp(a->data, b->data, a->size))
		return false;
	if (a->nrelas != b->nrelas)
		return false;
	if (a->comparing)
		return true;	/* a table pointing back at its own code */
	a->comparing = true;
	for (size_t i = 0; i < a->nrelas; i++) {
		if (a->relas[i].offset != b->relas[i].offset ||
		    !rela_equal(&a->relas[i], &b->relas[i], depth)) {
			a->comparing = false;
			return false;
		}
	}
	a->comparing = false;
	if (a->kind == K_TEXT && !section_equal(a->lsda, b->lsda, depth + 1))
		return false;
	return true;
}

/* Is there a call to glibc's assertion failure routine soon after @from? */
static bool assert_call_follows(const struct section *s, uint64_t from)
{
	for (size_t i = 0; i < s->nrelas; i++) {
		const struct rela *r = &s->relas[i];
		const char *n = r->sym->name;

		if (r->offset >= from && r->offset < from + 48 &&
		    (!strcmp(n, "__assert_fail") || !strcmp(n, "__assert_perror_fail") || !strcmp(n, "__assert")))
			return true;
	}
	return false;
}

/*
 * A change that only moves source lines changes the __LINE__ that assert()
 * passes to __assert_fail (mov $line,%edx right before the call).  The
 * function does the same thing; like kpatch with the kernel's WARN/BUG line
 * numbers, do not call that a change.
 */
static bool assert_line_only(struct section *a, struct section *b)
{
	if (a->size != b->size || !a->data || !b->data || a->nrelas != b->nrelas)
		return false;
	for (size_t i = 0; i < a->nrelas; i++)
		if (a->relas[i].offset != b->relas[i].offset || !rela_equal(&a->relas[i], &b->relas[i], 0))
			return false;
	if (!section_equal(a->lsda, b->lsda, 1))
		return false;
	for (size_t i = 0; i < a->size;) {
		bool ok = false;

		if (a->data[i] == b->data[i]) {
			i++;
			continue;
		}
		for (size_t p = i >= 4 ? i - 4 : 0; p <= i && !ok; p++) {
			if (a->data[p] == 0xba && b->data[p] == 0xba && p + 5 <= a->size && i < p + 5 &&
			    assert_call_follows(b, p + 5)) {
				ok = true;
				i = p + 5;
			}
		}
		if (!ok)
			return false;
	}
	return true;
}

void compare(struct diff *d)
{
	struct object *p = d->patched;

	for (size_t i = 1; i < p->nsecs; i++) {
		struct section *s = &p->secs[i];

		if (s->kind != K_TEXT || !s->nsyms)
			continue;
		if (!s->twin)
			s->status = ST_NEW;
		else
			s->status = section_equal(s->twin, s, 0) ? ST_SAME : ST_CHANGED;
		if (s->status == ST_CHANGED && assert_line_only(s->twin, s)) {
			s->status = ST_SAME;
			strlist_add(&d->notes, "%s: only assert() line numbers changed; not replaced", s->name);
		}
		for (size_t j = 0; j < s->nsyms; j++) {
			struct symbol *f = s->syms[j];

			f->status = f->twin ? s->status : ST_NEW;
		}
	}
}
