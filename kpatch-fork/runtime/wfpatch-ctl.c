/* wfpatch-ctl: the control-socket client for places without Node (the guest, a package's
 * maintainer scripts):
 *   wfpatch-ctl PID apply PATH | next | rollback | status | inventory | fork
 *   wfpatch-ctl PID applied     the applied patches' paths, oldest first, one per line
 *   wfpatch-ctl pids BUILD_ID   the libwfpatch processes mapping a file with that build-id
 *   wfpatch-ctl check BUNDLE BINARY [--loaded-by PROGRAM]... [--library-dir DIR]...
 *                               (the loader's dry run, check.c: exit 0 loadable, 1 refused;
 *                               --loaded-by: a program that dlopen()s BINARY, a module;
 *                               --library-dir: where the build's own libraries are, searched
 *                               before the run path)
 * Prints the runtime's JSON lines for the request; exit 0 when it ends "done" (or "status",
 * "inventory", "fork"),
 * 3 when "rejected" (the process keeps running), 2 on usage or connection errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "ctl.h"

static int usage(void)
{
	fprintf(stderr, "usage: wfpatch-ctl PID apply PATH | next | rollback | status | inventory | fork | applied\n"
			"       wfpatch-ctl pids BUILD_ID\n"
			"       wfpatch-ctl check BUNDLE BINARY [--loaded-by PROGRAM]... [--library-dir DIR]...\n");
	return 2;
}

/* The "patch" values of a status line's "patches" array, one per line (JSON escapes undone). */
static void print_patch_paths(const char *line)
{
	const char *p = strstr(line, "\"patches\":[");
	const char *stop = p ? strchr(p, ']') : NULL;
	while (p && (p = strstr(p, "\"patch\":\"")) && (!stop || p < stop)) {
		for (p += 9; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			putchar(*p);
		}
		putchar('\n');
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "check")) {
		if (argc < 4 || argc % 2)
			return usage();
		const char *loaded_by[64];
		unsigned nloaded_by = 0;
		char library_path[8192] = "";
		for (int i = 4; i < argc; i += 2) {
			if (!argv[i + 1][0])
				return usage();
			if (!strcmp(argv[i], "--library-dir")) {
				size_t used = strlen(library_path);
				if (strchr(argv[i + 1], ':') ||
				    snprintf(library_path + used, sizeof(library_path) - used, "%s%s", used ? ":" : "",
					     argv[i + 1]) >= (int)(sizeof(library_path) - used))
					return usage();
				continue;
			}
			if (strcmp(argv[i], "--loaded-by") || nloaded_by == 64)
				return usage();
			loaded_by[nloaded_by++] = argv[i + 1];
		}
		char err[512];
		int rc = wf_check(argv[2], argv[3], loaded_by, nloaded_by, library_path[0] ? library_path : NULL, stdout, err);
		if (rc < 0) {
			fprintf(stderr, "wfpatch-ctl: %s\n", err);
			return 2;
		}
		return rc;
	}
	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "pids"))
		return argc == 3 ? wf_ctl_pids(argv[2]) : usage();
	/* applied: a status request whose answer is printed as the patches' paths. */
	bool paths_only = argc == 3 && !strcmp(argv[2], "applied");
	if (paths_only)
		argv[2] = "status";
	char *end;
	long pid = strtol(argv[1], &end, 10);
	if (*end || pid <= 0)
		return usage();
	char req[PATH_MAX + 16];
	if (!strcmp(argv[2], "apply") && argc == 4) {
		char abs[PATH_MAX];
		if (!realpath(argv[3], abs)) {
			fprintf(stderr, "wfpatch-ctl: %s: %s\n", argv[3], strerror(errno));
			return 2;
		}
		snprintf(req, sizeof(req), "apply %s\n", abs);
	} else if ((!strcmp(argv[2], "next") || !strcmp(argv[2], "rollback") || !strcmp(argv[2], "status") ||
		    !strcmp(argv[2], "inventory") || !strcmp(argv[2], "fork")) && argc == 3) {
		snprintf(req, sizeof(req), "%s\n", argv[2]);
	} else {
		return usage();
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "wfpatch.%ld", pid);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n))) {
		fprintf(stderr, "wfpatch-ctl: process %ld has no libwfpatch control socket (@wfpatch.%ld): %s\n", pid, pid,
			strerror(errno));
		return 2;
	}
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		fprintf(stderr, "wfpatch-ctl: write: %s\n", strerror(errno));
		return 2;
	}
	/* Echo every line; remember the last one's event. */
	FILE *in = fdopen(fd, "r");
	char line[65536], last[64] = "";
	while (in && fgets(line, sizeof(line), in)) {
		if (paths_only)
			print_patch_paths(line);
		else
			fputs(line, stdout);
		fflush(stdout);
		char *e = strstr(line, "\"event\":\"");
		if (e)
			sscanf(e + 9, "%63[^\"]", last);
	}
	if (!strcmp(last, "done") || !strcmp(last, "status") || !strcmp(last, "inventory") ||
	    !strcmp(last, "fork"))
		return 0;
	if (!strcmp(last, "rejected"))
		return 3;
	fprintf(stderr, "wfpatch-ctl: process %ld closed the connection without an outcome\n", pid);
	return 2;
}
