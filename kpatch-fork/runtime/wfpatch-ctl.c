/* wfpatch-ctl: the control-socket client for places without Node (the guest):
 *   wfpatch-ctl PID apply PATH | next | rollback | status | fork
 * Prints the runtime's JSON lines for the request; exit 0 when it ends "done" (or "status", "fork"),
 * 3 when "rejected" (the process keeps running), 2 on usage or connection errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: wfpatch-ctl PID apply PATH | next | rollback | status | fork\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
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
		    !strcmp(argv[2], "fork")) && argc == 3) {
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
		fputs(line, stdout);
		fflush(stdout);
		char *e = strstr(line, "\"event\":\"");
		if (e)
			sscanf(e + 9, "%63[^\"]", last);
	}
	if (!strcmp(last, "done") || !strcmp(last, "status") || !strcmp(last, "fork"))
		return 0;
	if (!strcmp(last, "rejected"))
		return 3;
	fprintf(stderr, "wfpatch-ctl: process %ld closed the connection without an outcome\n", pid);
	return 2;
}
