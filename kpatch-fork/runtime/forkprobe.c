/* The `fork` control request: how long one fork() of this very process takes, for comparison
 * with wf_create (a generation copies the address space's page tables the way fork does, but
 * not the task, its files and signal state). The patcher thread forks; the child only calls
 * _exit (async-signal-safe, nothing of the application's runs in it); the parent measures
 * until fork() returns, then reaps the child. Runs between transitions: the control loop
 * handles it as it handles `status`, one request at a time. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

void wf_fork_probe(int out)
{
	struct wf_json j;
	uint64_t t0 = wf_now_ns();
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	uint64_t t1 = wf_now_ns();
	int err = pid < 0 ? errno : 0;
	int status = 0;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	uint64_t t2 = wf_now_ns();
	wf_event_begin(&j, "fork");
	if (err) {
		wf_json_str(&j, "error", strerror(err));
	} else {
		wf_json_num(&j, "fork_us", (double)(t1 - t0) / 1e3);
		wf_json_num(&j, "reap_us", (double)(t2 - t1) / 1e3);
	}
	wf_event_emit_to(&j, out);
}
