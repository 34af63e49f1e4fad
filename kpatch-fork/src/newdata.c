/*
 * Pass 4b (newdata, only with --new-data): new variables travel in the patch,
 * as kpatch allows.
 *
 * A variable the patched object defines and the original does not is
 * program state that does not exist yet, so nothing running can depend on
 * it: the patch defines it, the runtime allocates it next to the new code
 * with its initial value (zero for .bss, the object's bytes for .data and
 * .rodata, relocated), and only the new code refers to it.  It is still not
 * "text-only" in the paper's sense (that column stays comparable); the
 * verdict's liveWithNewData says the patch is live-patchable with new data.
 *
 * Refused (not text-only, as without the flag): thread-local variables (the
 * running threads' TLS blocks have no room for them), variables in COMDAT
 * groups or with weak/unique binding (the program-wide single instance could
 * already exist elsewhere), common symbols, and new variables sharing their
 * section with existing ones (built without -fdata-sections).  Changes to
 * EXISTING data stay "not text-only" (include.c).
 */
#include <stdio.h>
#include <string.h>
#include "cdo.h"

static bool is_new(const struct symbol *s)
{
	return !s->twin || !s->twin->sec;
}

/* Why a new variable cannot be carried in the patch, or NULL. */
const char *new_data_refusal(const struct symbol *s)
{
	if (s->type == STT_TLS || (s->sec && (s->sec->sh.sh_flags & SHF_TLS)))
		return "thread-local: the running threads' TLS blocks have no room for it";
	if (!s->sec)
		return "a common symbol: build with -fno-common";
	if (s->sec->group || s->bind == STB_WEAK || s->bind == STB_GNU_UNIQUE)
		return "weak, unique or in a COMDAT group: the one program-wide instance may exist already";
	for (size_t i = 0; i < s->sec->nsyms; i++)
		if (!is_new(s->sec->syms[i]))
			return "shares its section with existing data (build with -fdata-sections)";
	return NULL;
}

bool new_data_candidate(struct diff *d, struct symbol *s)
{
	if (!d->allow_new_data || !s->sec || s->type != STT_OBJECT || s->sec->kind != K_DATA || !is_new(s))
		return false;
	if (sym_is_anon_value(s) || is_ro_local(s))
		return false;	/* compiler values and local constants: copied (include.c) */
	if (new_data_refusal(s))
		return false;
	/* a new global may be used by another object of the same bundle: always
	 * carried (a new static used by no patched code is left out below) */
	if (s->bind != STB_LOCAL && !s->sec->include) {
		s->sec->include = true;
		s->sec->why_included = "new global data";
	}
	return true;
}

void new_data(struct diff *d)
{
	struct object *p = d->patched;

	for (size_t i = 1; i < p->nsyms; i++) {
		struct symbol *s = &p->syms[i];
		bool bss;

		if (!new_data_candidate(d, s))
			continue;
		if (!s->sec->include) {
			strlist_add(&d->notes, "new data object %s is used by no patched code: left out", s->name);
			continue;
		}
		bss = s->sec->sh.sh_type == SHT_NOBITS;
		data_entry(&d->new_data_json, s, bss ? "new data object, carried in the patch (zero-initialised)"
						      : "new data object, carried in the patch (initialised)");
		data_entry(&d->carried_data_json, s, bss ? "zero-initialised" :
			   (s->sec->sh.sh_flags & SHF_WRITE) ? "initialised" : "constant");
		new_data_reason(d, s->name, "new data object %s (carried in the patch, starts from its initial value)",
				s->name);
	}
}
