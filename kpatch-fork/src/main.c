/*
 * create-diff-object ORIG.o PATCHED.o --output PATCH.o [--verdict V.json] [--binary ELF] [--new-data]
 *                    [--provided NAME]... [--loaded-by PROGRAM]... [--library-dir DIR]...
 *
 * Runs the passes in order; see cdo.h and FORMAT.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cdo.h"

static const char usage[] =
	"usage: create-diff-object ORIG.o PATCHED.o --output PATCH.o [--verdict VERDICT.json] [--binary ELF] [--new-data]\n"
	"                          [--provided NAME]... [--loaded-by PROGRAM]... [--library-dir DIR]...\n"
	"  --new-data: new static/global variables travel in the patch (exit 0; verdict liveWithNewData)\n"
	"  --provided NAME: with --binary, a global another patch object of the same bundle defines\n"
	"                   (a function the patch adds in another file): resolved, not an error\n"
	"  --loaded-by PROGRAM: with --binary, a program that dlopen()s the binary (a module): the\n"
	"                   symbols it exports and its libraries resolve references, as at run time\n"
	"  --library-dir DIR: with --binary, a directory of the build's own libraries (by DT_NEEDED\n"
	"                   name), searched before the system's: where the package installs them\n"
	"exit codes: 0 patch written, 1 usage or I/O error, 2 malformed or mismatched input,\n"
	"            3 nothing to patch, 4 not text-only (data changed), 5 a change this tool cannot patch\n";

static struct diff D;
static const char *verdict_path, *output_path;

static int finish(int code)
{
	struct stat st;

	D.exit_code = code;
	if (code != 0 && output_path && !stat(output_path, &st) && S_ISREG(st.st_mode))
		unlink(output_path);	/* a stale patch from an earlier run would lie */
	if (verdict_path && write_verdict(&D, verdict_path, output_path) && code == 0)
		code = EXIT_USAGE;
	if (D.error[0])
		fprintf(stderr, "create-diff-object: %s\n", D.error);
	return code;
}

int main(int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL }, *binary = NULL;
	const char **loaders = NULL;
	size_t nloaders = 0;
	static struct object orig, patched;
	static struct target target;
	int npos = 0, rc;
	bool any;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--output") || !strcmp(a, "-o") || !strcmp(a, "--verdict") ||
		    !strcmp(a, "--binary")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "create-diff-object: %s needs a value\n%s", a, usage);
				return EXIT_USAGE;
			}
			if (a[2] == 'v')
				verdict_path = argv[++i];
			else if (a[2] == 'b')
				binary = argv[++i];
			else
				output_path = argv[++i];
		} else if (!strcmp(a, "--provided")) {
			const char **grown;

			if (i + 1 >= argc) {
				fprintf(stderr, "create-diff-object: %s needs a value\n%s", a, usage);
				return EXIT_USAGE;
			}
			grown = realloc(D.provided, (D.nprovided + 1) * sizeof(*D.provided));
			if (!grown) {
				fprintf(stderr, "create-diff-object: out of memory\n");
				return EXIT_USAGE;
			}
			D.provided = grown;
			D.provided[D.nprovided++] = argv[++i];
		} else if (!strcmp(a, "--loaded-by")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr, "create-diff-object: %s needs a program\n%s", a, usage);
				return EXIT_USAGE;
			}
			loaders = xrealloc(loaders, (nloaders + 1) * sizeof(*loaders));
			loaders[nloaders++] = argv[++i];
		} else if (!strcmp(a, "--library-dir")) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr, "create-diff-object: %s needs a directory\n%s", a, usage);
				return EXIT_USAGE;
			}
			target.libdirs = xrealloc(target.libdirs, (target.nlibdirs + 1) * sizeof(*target.libdirs));
			target.libdirs[target.nlibdirs++] = argv[++i];
		} else if (!strcmp(a, "--new-data")) {
			D.allow_new_data = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			return 0;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "create-diff-object: unknown option %s\n%s", a, usage);
			return EXIT_USAGE;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "create-diff-object: too many arguments\n%s", usage);
			return EXIT_USAGE;
		}
	}
	if (npos != 2 || !output_path) {
		fprintf(stderr, "%s", usage);
		return EXIT_USAGE;
	}
	if (nloaders && !binary) {
		fprintf(stderr, "create-diff-object: --loaded-by needs --binary (the module it loads)\n%s", usage);
		return EXIT_USAGE;
	}
	if (target.nlibdirs && !binary) {
		fprintf(stderr, "create-diff-object: --library-dir needs --binary (whose libraries it holds)\n%s", usage);
		return EXIT_USAGE;
	}
	D.text_only = D.patchable = true;
	D.orig_path = pos[0];
	D.patched_path = pos[1];

	/* pass 1: read */
	D.orig = &orig;
	D.patched = &patched;
	rc = read_object(&orig, pos[0]);
	if (!rc)
		rc = read_object(&patched, pos[1]);
	if (rc) {
		snprintf(D.error, sizeof(D.error), "%s", orig.err[0] ? orig.err : patched.err);
		D.orig = orig.err[0] ? NULL : &orig;
		D.patched = NULL;
		return finish(rc);
	}
	if (binary) {
		rc = read_target(&target, binary, D.error, sizeof(D.error));
		for (size_t k = 0; !rc && k < nloaders; k++)
			rc = read_loader(&target, loaders[k], D.error, sizeof(D.error));
		if (rc)
			return finish(rc);
		D.target = &target;
	}
	/* pass 2: correlate */
	rc = correlate(&D);
	if (rc)
		return finish(rc);
	/* pass 3: compare */
	compare(&D);
	D.compared = true;
	/* pass 4: include */
	include(&D);
	/* pass 5: rewrite references */
	rewrite(&D);
	if (D.target)
		check_target(&D);

	any = false;
	for (size_t i = 1; i < patched.nsecs; i++)
		if (patched.secs[i].include && patched.secs[i].kind == K_TEXT)
			any = true;
	if (D.data_changed) {
		/* the first reason that is a data change (not new data the patch carries) */
		const char *why = D.text_reasons.v[0];

		for (size_t i = 0; i < D.nreasons; i++)
			if (!strcmp(D.reasons[i].kind, "data")) {
				why = D.reasons[i].what;
				break;
			}
		snprintf(D.error, sizeof(D.error), "not text-only: %s", why);
		return finish(EXIT_NOTTEXT);
	}
	if (!any)
		return finish(EXIT_NOCHANGE);
	if (!D.patchable) {
		snprintf(D.error, sizeof(D.error), "cannot patch: %s", D.patch_reasons.v[0]);
		return finish(EXIT_UNPATCHABLE);
	}
	/* pass 6: write */
	rc = write_output(&D, output_path);
	return finish(rc);
}
