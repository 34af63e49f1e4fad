/*
 * Fuzz harness for create-diff-object's reader and passes.
 *
 *   cdo-fuzz-afl INPUT [ORIG.o]
 *
 * INPUT is read as the patched object (the fuzzed bytes); ORIG.o, when given,
 * is a valid original it is diffed against, so correlate/compare/include/
 * eh_frame/write run on malformed-but-parsable inputs too.  Exit status is
 * the tool's (0..5); anything else — a signal, a sanitizer report — is a bug.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cdo.h"

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xzalloc(len + 1);
	if (len > 0 && fread(buf, 1, len, f) != (size_t)len)
		len = 0;
	fclose(f);
	*n = len;
	return buf;
}

int main(int argc, char **argv)
{
	static struct object orig, patched;
	static struct diff d;
	unsigned char *in, *ob;
	size_t n, on;
	char out[64], verdict[64];
	int rc;

	if (argc < 2)
		return 1;
	in = slurp(argv[1], &n);
	if (!in)
		return 1;
	rc = read_object_mem(&patched, "fuzzed", in, n);
	if (rc)
		return rc;
	if (argc > 2) {
		ob = slurp(argv[2], &on);
	} else {
		ob = xzalloc(n + 1);
		memcpy(ob, in, n);
		on = n;
	}
	if (!ob || read_object_mem(&orig, "orig", ob, on))
		return 1;
	d.orig = &orig;
	d.patched = &patched;
	d.text_only = d.patchable = true;
	rc = correlate(&d);
	if (rc)
		return rc;
	compare(&d);
	d.compared = true;
	include(&d);
	rewrite(&d);
	snprintf(out, sizeof(out), "/tmp/cdo-fuzz-%d.o", (int)getpid());
	if (d.text_only && d.patchable) {
		write_output(&d, out);
		unlink(out);
	}
	snprintf(verdict, sizeof(verdict), "/tmp/cdo-fuzz-%d.json", (int)getpid());
	write_verdict(&d, verdict, out);
	unlink(verdict);
	return 0;
}
