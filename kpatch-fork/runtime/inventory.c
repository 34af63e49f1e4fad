/* What `wfbuild status` asks a running process (the control socket's `inventory` request): every
 * tracked thread and the generation it runs in, when each applied patch came in and in which
 * mode, and what autoload found in the patch folder at wf_init.
 *
 * Locking: the records here are written and read only by the thread that runs transitions — the
 * patcher thread, or the thread calling wf_init before the patcher exists (autoload) — so they
 * need no lock. The thread list is read through quiescence.c, under its lock. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define MAX_RECORDS 256

struct applied_rec {
	char path[4096];
	double time;    /* epoch seconds */
	bool global;
};

struct autoload_rec {
	char path[4096];
	char outcome[16]; /* applied, rejected, queued */
	char reason[WF_ERRLEN];
};

static struct applied_rec applied[MAX_RECORDS];
static int napplied;
static struct autoload_rec autoloaded[MAX_RECORDS];
static int nautoloaded;
static char autoload_dir[4096];
static char autoload_off[128];

static double now_epoch(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Mirrors transition.c's stack: an apply pushes, a rollback pops the newest. */
void wf_inventory_finished(bool rollback, const char *path)
{
	if (rollback) {
		if (napplied > 0)
			napplied--;
		return;
	}
	if (napplied == MAX_RECORDS)
		return;
	struct applied_rec *r = &applied[napplied++];
	snprintf(r->path, sizeof(r->path), "%s", path ? path : "");
	r->time = now_epoch();
	r->global = wf_settings.global;
}

void wf_inventory_autoload_dir(const char *dir, const char *off)
{
	snprintf(autoload_dir, sizeof(autoload_dir), "%s", dir ? dir : "");
	snprintf(autoload_off, sizeof(autoload_off), "%s", off ? off : "");
}

void wf_inventory_autoload(const char *path, const char *outcome, const char *reason)
{
	if (nautoloaded == MAX_RECORDS)
		return;
	struct autoload_rec *r = &autoloaded[nautoloaded++];
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->outcome, sizeof(r->outcome), "%s", outcome);
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
}

static void one_thread(void *arg, const char *name, pid_t tid, long gen)
{
	struct wf_json *j = arg;
	wf_json_object(j, NULL);
	wf_json_int(j, "tid", tid);
	wf_json_str(j, "name", name);
	wf_json_int(j, "gen", gen);
	wf_json_end(j);
}

void wf_inventory_emit(int fd)
{
	struct wf_json j;
	wf_event_begin(&j, "inventory");
	wf_json_str(&j, "mode", wf_settings.global ? "global" : "local");
	struct wf_module *exe = wf_module_at(0);
	wf_json_str(&j, "exe", exe ? exe->path : NULL);
	wf_json_str(&j, "build_id", exe ? exe->build_id : NULL);
	wf_json_array(&j, "modules");
	for (size_t i = 0; i < wf_module_count(); i++) {
		struct wf_module *m = wf_module_at(i);
		if (!m->build_id[0])
			continue;
		wf_json_object(&j, NULL);
		wf_json_str(&j, "path", m->path);
		wf_json_str(&j, "build_id", m->build_id);
		wf_json_bool(&j, "pinned", m->pinned);
		wf_json_end(&j);
	}
	wf_json_end(&j);
	wf_json_array(&j, "applied");
	for (int i = 0; i < napplied; i++) {
		wf_json_object(&j, NULL);
		wf_json_str(&j, "patch", applied[i].path[0] ? applied[i].path : NULL);
		wf_json_num(&j, "time", applied[i].time);
		wf_json_str(&j, "mode", applied[i].global ? "global" : "local");
		wf_json_end(&j);
	}
	wf_json_end(&j);
	wf_json_object(&j, "autoload");
	wf_json_str(&j, "dir", autoload_dir[0] ? autoload_dir : NULL);
	wf_json_str(&j, "off", autoload_off[0] ? autoload_off : NULL);
	wf_json_array(&j, "files");
	for (int i = 0; i < nautoloaded; i++) {
		wf_json_object(&j, NULL);
		wf_json_str(&j, "patch", autoloaded[i].path);
		wf_json_str(&j, "outcome", autoloaded[i].outcome);
		if (autoloaded[i].reason[0])
			wf_json_str(&j, "reason", autoloaded[i].reason);
		wf_json_end(&j);
	}
	wf_json_end(&j);
	wf_json_end(&j);
	wf_json_array(&j, "threads");
	wf_threads_each(one_thread, &j);
	wf_json_end(&j);
	wf_event_emit_to(&j, fd);
}
