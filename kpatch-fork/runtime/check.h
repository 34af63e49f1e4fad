/* The loader's dry run against a binary on disk (check.c), for `wfpatch-ctl check`. */
#ifndef WF_CHECK_H
#define WF_CHECK_H

#include <stdio.h>

/* Checks BUNDLE against BINARY as wf_patch_load would, without a process: prints one line per
 * problem ("error: ...") and a summary line to `out`. Returns 0 when the runtime would load it,
 * 1 when it would refuse (reasons printed), -1 when BINARY cannot be read (err set). */
int wf_check(const char *bundle, const char *binary, FILE *out, char *err);

#endif
