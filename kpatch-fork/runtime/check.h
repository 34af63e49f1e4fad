/* The loader's dry run against a binary on disk (check.c), for `wfpatch-ctl check`. */
#ifndef WF_CHECK_H
#define WF_CHECK_H

#include <stdio.h>

/* Checks BUNDLE against BINARY as wf_patch_load would, without a process: prints one line per
 * problem ("error: ...") and a summary line to `out`. `loaded_by`: the programs that dlopen()
 * BINARY (a module), whose exported symbols and libraries resolve its references too.
 * `library_path` (NULL for none): colon-separated directories searched for needed libraries
 * before the run path and the system's directories (a build's own libraries).
 * Returns 0 when the runtime would load it, 1 when it would refuse (reasons printed), -1 when
 * BINARY or a loading program cannot be read (err set). */
int wf_check(const char *bundle, const char *binary, const char *const *loaded_by, unsigned nloaded_by,
	     const char *library_path, FILE *out, char *err);

#endif
