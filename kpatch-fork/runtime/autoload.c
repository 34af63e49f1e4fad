/* Autoload at wf_init: the fixes installed for this process's build-ids, applied in file-name
 * order before the application starts its threads, so a restarted service is as fixed as a
 * running one. A hot-fix package installs them as /usr/lib/wfpatch/<build-id>/<NNNN>-<name>.wfp.
 *
 *   WF_PATCH_DIR=DIR   load DIR's *.wfp instead of the build-id folders
 *   WF_NO_AUTOLOAD=1   load nothing
 *
 * Without WF_ROLLBACK_DEPTH, the rollback depth follows the installed fixes
 * (wf_autoload_rollback_depth), so a package's prerm can roll every one of them back.
 *
 * Each file goes through the ordinary transition (transition.c), started from the thread calling
 * wf_init before the patcher thread exists: in local mode that thread moves to the new generation
 * itself, so the threads it starts afterwards are born there. A file the loader refuses (corrupt,
 * wrong build-id) is rejected like any patch — logged with its reason, recorded for `inventory`
 * — and the process starts with the fixes that did load. If a transition must wait for threads
 * that already exist (wf_init called late), the remaining files go to the patcher's queue. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "transition.h"

#define WF_PATCH_ROOT "/usr/lib/wfpatch"
#define MAX_FILES 256
/* How long autoload waits for a transition that has threads to wait for before handing over. */
#define SYNC_WAIT_MS 2000

static int is_wfp(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 4 && !strcmp(d->d_name + n - 4, ".wfp");
}

/* The string value of `"key":"…"` in one JSON line (escapes kept minimal: \" and \\). */
static void json_field(const char *line, const char *key, char *out, size_t cap)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(line, pat);
	out[0] = 0;
	if (!p)
		return;
	p += strlen(pat);
	size_t n = 0;
	for (; *p && *p != '"' && n + 1 < cap; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[n++] = *p;
	}
	out[n] = 0;
}

/* Reads the transition's event lines from the socket: "applied", or "rejected" and the reason. */
static void outcome_from(int fd, char *outcome, size_t ocap, char *reason, size_t rcap)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t r;
	while (len + 1 < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	buf[len] = 0;
	snprintf(outcome, ocap, "unknown");
	reason[0] = 0;
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char ev[32];
		json_field(line, "event", ev, sizeof(ev));
		if (!strcmp(ev, "done")) {
			snprintf(outcome, ocap, "applied");
		} else if (!strcmp(ev, "rejected")) {
			snprintf(outcome, ocap, "rejected");
			json_field(line, "reason", reason, rcap);
		}
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Applies one file now; false if the transition is still waiting for threads (handed over). */
static bool apply_now(const char *path)
{
	/* A socket pair, not a pipe: event lines reach a reply fd through send(). */
	int p[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p)) {
		wf_inventory_autoload(path, "rejected", strerror(errno));
		return true;
	}
	int sz = 1 << 20;
	setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	struct wf_request req = { .kind = WF_REQ_APPLY, .source = "autoload", .reply_fd = p[1], .ns = wf_now_ns() };
	snprintf(req.path, sizeof(req.path), "%s", path);
	bool done = wf_transition_start(&req);
	for (long waited = 0; !done && waited < SYNC_WAIT_MS; waited++) {
		sleep_ms(1);
		done = wf_transition_poll();
	}
	char outcome[16], reason[WF_ERRLEN];
	if (!done) {
		/* The patcher finishes it; its last lines go nowhere once the socket buffer is full. */
		wf_inventory_autoload(path, "queued", "the transition waits for running threads: the patcher finishes it");
		close(p[0]);
		return false;
	}
	close(p[1]);
	outcome_from(p[0], outcome, sizeof(outcome), reason, sizeof(reason));
	close(p[0]);
	wf_inventory_autoload(path, outcome, reason);
	return true;
}

static int load_dir(const char *dir, bool *sync)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, is_wfp, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : -1;
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (*sync) {
			*sync = apply_now(path);
		} else {
			wf_control_enqueue_apply(path, "autoload");
			wf_inventory_autoload(path, "queued", NULL);
		}
		free(names[i]);
	}
	free(names);
	return n;
}

/* The installed fixes for this process: the *.wfp in WF_PATCH_DIR, or in the build-id folders of
 * its loaded modules. Counted again at every apply, since a package upgrade adds files while the
 * process runs. */
static int installed_fixes(void)
{
	const char *dir = getenv("WF_PATCH_DIR");
	struct dirent **names;
	int total = 0;
	for (size_t i = 0; i < ((dir && *dir) ? 1 : wf_module_count()); i++) {
		char d[PATH_MAX];
		if (dir && *dir) {
			snprintf(d, sizeof(d), "%s", dir);
		} else {
			struct wf_module *m = wf_module_at(i);
			if (!m->build_id[0])
				continue;
			snprintf(d, sizeof(d), "%s/%s", WF_PATCH_ROOT, m->build_id);
		}
		int n = scandir(d, &names, is_wfp, NULL);
		if (n < 0)
			continue;
		for (int k = 0; k < n; k++)
			free(names[k]);
		free(names);
		total += n;
	}
	return total;
}

/* -1 until wf_autoload has looked; then whether WF_ROLLBACK_DEPTH was given. */
static int depth_given = -1;

/* Unless WF_ROLLBACK_DEPTH says otherwise, keep a previous generation for every installed fix
 * (at least one): a hot-fix package's prerm rolls all of them back, newest first, and each
 * rollback needs the generation before its patch. Called by the transition before it deletes
 * generations (patcher thread, or wf_init's thread before the patcher exists: no lock). */
void wf_autoload_rollback_depth(void)
{
	if (depth_given < 0) {
		const char *v = getenv("WF_ROLLBACK_DEPTH");
		depth_given = v && *v;
	}
	if (depth_given)
		return;
	int n = installed_fixes();
	wf_settings.rollback_depth = n > 1 ? n : 1;
}

void wf_autoload(void)
{
	wf_autoload_rollback_depth();
	const char *off = getenv("WF_NO_AUTOLOAD");
	const char *dir = getenv("WF_PATCH_DIR");
	struct wf_json j;
	if (off && !strcmp(off, "1")) {
		wf_event_begin(&j, "autoload");
		wf_inventory_autoload_dir(dir, "WF_NO_AUTOLOAD=1");
		wf_json_str(&j, "skipped", "WF_NO_AUTOLOAD=1");
		wf_event_emit(&j);
		return;
	}
	bool sync = true;
	int files = 0;
	char shown[4096];
	if (dir && *dir) {
		snprintf(shown, sizeof(shown), "%s", dir);
		int n = load_dir(dir, &sync);
		if (n < 0)
			wf_warn("autoload: cannot read WF_PATCH_DIR %s: %s", dir, strerror(errno));
		files += n > 0 ? n : 0;
	} else {
		/* Every loaded module's folder: a fix may target a library as well as the executable. */
		snprintf(shown, sizeof(shown), "%s/<build-id>", WF_PATCH_ROOT);
		for (size_t i = 0; i < wf_module_count(); i++) {
			struct wf_module *m = wf_module_at(i);
			if (!m->build_id[0])
				continue;
			char d[PATH_MAX];
			snprintf(d, sizeof(d), "%s/%s", WF_PATCH_ROOT, m->build_id);
			int n = load_dir(d, &sync);
			files += n > 0 ? n : 0;
		}
	}
	wf_inventory_autoload_dir(shown, NULL);
	wf_event_begin(&j, "autoload");
	wf_json_str(&j, "dir", shown);
	wf_json_int(&j, "files", files);
	wf_event_emit(&j);
}
