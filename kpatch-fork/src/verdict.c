/*
 * The verdict: a JSON summary of the diff, written whenever --verdict is
 * given, whatever the exit code.  Field names are documented in FORMAT.md and
 * are stable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cdo.h"

static void jstr(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);	/* names are bytes; keep the JSON ASCII */
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void jlist(FILE *f, const struct strlist *l, bool raw)
{
	fputc('[', f);
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			fputc(',', f);
		if (raw)
			fputs(l->v[i], f);
		else
			jstr(f, l->v[i]);
	}
	fputc(']', f);
}

static const char *bind_name(unsigned char b)
{
	return b == STB_LOCAL ? "local" : b == STB_WEAK ? "weak" : b == STB_GNU_UNIQUE ? "unique" : "global";
}

static void func_entry(FILE *f, struct diff *d, struct symbol *s, bool *first)
{
	struct record *rec = NULL;

	for (size_t i = 0; i < d->nrecs; i++)
		if (d->recs[i].newsym == s)
			rec = &d->recs[i];
	fputs(*first ? "\n    " : ",\n    ", f);
	*first = false;
	fputs("{\"name\":", f);
	jstr(f, s->name);
	fputs(",\"origName\":", f);
	jstr(f, s->twin ? s->twin->name : NULL);
	fputs(",\"section\":", f);
	jstr(f, s->sec->name);
	fprintf(f, ",\"binding\":\"%s\",\"size\":%llu", bind_name(s->bind), (unsigned long long)s->st.st_size);
	if (s->twin)
		fprintf(f, ",\"origSize\":%llu", (unsigned long long)s->twin->st.st_size);
	else
		fputs(",\"origSize\":null", f);
	fputs(",\"reason\":", f);
	jstr(f, s->sec->why_included);
	fputs(",\"record\":", f);
	if (rec && !rec->dropped && rec->old)
		jstr(f, rec->old->name ? rec->old->name : extref_name(rec->old));
	else
		fputs("null", f);
	fputc('}', f);
}

static void funcs(FILE *f, struct diff *d, const char *key, int which)
{
	struct object *p = d->patched;
	bool first = true;

	fprintf(f, "  \"%s\": [", key);
	for (size_t i = 1; i < p->nsyms; i++) {
		struct symbol *s = &p->syms[i];
		int w;

		if ((s->type != STT_FUNC && s->type != STT_GNU_IFUNC) || !s->sec || s->sec->kind != K_TEXT)
			continue;
		if (s->status == ST_NEW)
			w = 1;
		else if (s->status == ST_CHANGED)
			w = 0;
		else if (s->sec->include)
			w = 2;
		else
			continue;
		if (w == which)
			func_entry(f, d, s, &first);
	}
	fputs(first ? "],\n" : "\n  ],\n", f);
}

/* Functions of the original that the patched object no longer has (inlined
 * now, or deleted): their old code stays in the process, unused by new code. */
static void removed(FILE *f, struct diff *d)
{
	struct object *o = d->orig;
	bool first = true;

	fputs("  \"removedFunctions\": [", f);
	for (size_t i = 1; i < o->nsyms; i++) {
		struct symbol *s = &o->syms[i];

		if ((s->type != STT_FUNC && s->type != STT_GNU_IFUNC) || !s->sec || s->twin)
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		jstr(f, s->name);
	}
	fputs("],\n", f);
}

int write_verdict(struct diff *d, const char *path, const char *output)
{
	char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	bool first = true;

	if (!f) {
		fprintf(stderr, "create-diff-object: cannot write %s: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	fputs("{\n  \"format\": 1,\n  \"tool\": \"create-diff-object\",\n", f);
	fprintf(f, "  \"exitCode\": %d,\n  \"error\": ", d->exit_code);
	jstr(f, d->error[0] ? d->error : NULL);
	fputs(",\n  \"orig\": ", f);
	jstr(f, d->orig_path);
	fputs(",\n  \"patched\": ", f);
	jstr(f, d->patched_path);
	fputs(",\n  \"output\": ", f);
	jstr(f, d->exit_code == 0 ? output : NULL);
	fputs(",\n  \"file\": ", f);
	jstr(f, d->orig && d->orig->file ? d->orig->file : NULL);
	fputs(",\n  \"target\": ", f);
	if (d->target && d->target->build_id[0]) {
		fputs("{\"path\":", f);
		jstr(f, d->target->path);
		fputs(",\"buildId\":", f);
		jstr(f, d->target->build_id);
		fputs("}", f);
	} else {
		fputs("null", f);
	}
	fputs(",\n", f);
	if (d->compared) {
		funcs(f, d, "changedFunctions", 0);
		funcs(f, d, "newFunctions", 1);
		funcs(f, d, "includedFunctions", 2);
		removed(f, d);
	} else {
		fputs("  \"changedFunctions\": [],\n  \"newFunctions\": [],\n  \"includedFunctions\": [],\n"
		      "  \"removedFunctions\": [],\n", f);
	}
	fputs("  \"changedData\": ", f);
	jlist(f, &d->changed_data_json, true);
	fputs(",\n  \"newData\": ", f);
	jlist(f, &d->new_data_json, true);
	fputs(",\n  \"copiedData\": ", f);
	jlist(f, &d->copied_data_json, true);
	fputs(",\n  \"newDataCarried\": ", f);
	jlist(f, &d->carried_data_json, true);
	fprintf(f, ",\n  \"liveWithNewData\": %s", d->exit_code == 0 && !d->text_only ? "true" : "false");
	fprintf(f, ",\n  \"textOnly\": %s,\n  \"textOnlyReasons\": ", d->text_only ? "true" : "false");
	jlist(f, &d->text_reasons, false);
	fprintf(f, ",\n  \"patchable\": %s,\n  \"patchableReasons\": ", d->patchable ? "true" : "false");
	jlist(f, &d->patch_reasons, false);
	fputs(",\n  \"reasons\": [", f);
	for (size_t i = 0; i < d->nreasons; i++) {
		fputs(i ? ",\n    {\"kind\":" : "\n    {\"kind\":", f);
		jstr(f, d->reasons[i].kind);
		fputs(",\"symbol\":", f);
		jstr(f, d->reasons[i].symbol);
		fputs(",\"what\":", f);
		jstr(f, d->reasons[i].what);
		fputc('}', f);
	}
	if (d->error[0] && d->exit_code != 0 && d->exit_code != EXIT_NOTTEXT && d->exit_code != EXIT_UNPATCHABLE) {
		fputs(d->nreasons ? ",\n    {\"kind\":\"error\",\"symbol\":null,\"what\":" : "\n    {\"kind\":\"error\",\"symbol\":null,\"what\":", f);
		jstr(f, d->error);
		fputs("}\n  ]", f);
	} else {
		fputs(d->nreasons ? "\n  ]" : "]", f);
	}
	fputs(",\n  \"references\": [", f);
	for (size_t i = 0; i < d->nexts; i++) {
		struct extref *e = d->exts[i];

		if (!e->used && d->exit_code == 0)
			continue;
		fputs(first ? "\n    " : ",\n    ", f);
		first = false;
		fputs("{\"symbol\":", f);
		jstr(f, e->name ? e->name : extref_name(e));
		fputs(",\"name\":", f);
		jstr(f, e->plain);
		fprintf(f, ",\"local\":%s,\"resolved\":", e->local ? "true" : "false");
		fputs(e->checked ? (e->resolved ? "true" : "false") : "null", f);
		fputs(",\"how\":", f);
		jstr(f, e->checked ? e->how : NULL);
		fputc('}', f);
	}
	fputs(first ? "],\n" : "\n  ],\n", f);
	fputs("  \"unresolved\": [", f);
	first = true;
	for (size_t i = 0; i < d->nexts; i++) {
		struct extref *e = d->exts[i];

		if (!e->checked || e->resolved || !e->how)
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		jstr(f, e->name ? e->name : extref_name(e));
	}
	fputs("],\n  \"notes\": ", f);
	jlist(f, &d->notes, false);
	fputs("\n}\n", f);
	if (fclose(f) || rename(tmp, path)) {
		fprintf(stderr, "create-diff-object: cannot write %s: %s\n", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}
