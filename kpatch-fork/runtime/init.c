/* wf_init: configuration from the environment, the log, pinning the code for local mode, and
 * the patcher thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "transition.h"

struct wf_settings wf_settings;
struct wf_configuration wf_config;

static double env_double(const char *name, double def, double min)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return def;
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || *end || d < min) {
		wf_warn("ignoring %s=%s: expected a number >= %g", name, v, min);
		return def;
	}
	return d;
}

static void at_exit(void)
{
	wf_transition_totals();
}

/* The page-aligned span of a module's code that is pinned. */
static uintptr_t pin_lo(const struct wf_module *m)
{
	return m->text_lo & ~4095ul;
}

static uintptr_t pin_hi(const struct wf_module *m)
{
	return (m->text_hi + 4095) & ~4095ul;
}

/* Local mode: make the code of every module private per generation, before any generation
 * exists (the kernel refuses later). */
static void pin_code(void)
{
	bool exe_only = getenv("WF_PIN") && !strcmp(getenv("WF_PIN"), "exe");
	for (size_t i = 0; i < wf_module_count(); i++) {
		struct wf_module *m = wf_module_at(i);
		if (!m->text_hi || (exe_only && !m->is_exe) || !strncmp(m->name, "linux-vdso", 10))
			continue;
		uintptr_t lo = pin_lo(m), hi = pin_hi(m);
		long rc = wf_gen_pin(lo, hi - lo);
		if (rc == 0) {
			m->pinned = true;
			continue;
		}
		if (m->is_exe || rc == -ENOSYS || rc == -EPERM) {
			if (rc == -ENOSYS)
				snprintf(wf_settings.generations_error, WF_ERRLEN,
					 "local mode unavailable: this kernel has no address-space generations (syscall 1002: ENOSYS); boot the wfpatch kernel or set WF_GLOBAL=1");
			else if (rc == -EPERM)
				snprintf(wf_settings.generations_error, WF_ERRLEN,
					 "local mode unavailable: a generation already exists, so the code cannot be pinned (wf_init must run first)");
			else
				snprintf(wf_settings.generations_error, WF_ERRLEN,
					 "local mode unavailable: pinning the code of %s failed: %s", m->path, strerror((int)-rc));
			wf_settings.generations = false;
			break;
		}
		wf_warn("cannot pin the code of %s (%s): local mode cannot patch it", m->path, strerror((int)-rc));
	}
}

/* The pinned ranges, as the init event lists them. */
static void log_pinned(struct wf_json *j)
{
	wf_json_array(j, "pinned");
	for (size_t i = 0; i < wf_module_count(); i++) {
		struct wf_module *m = wf_module_at(i);
		if (!m->pinned)
			continue;
		wf_json_object(j, NULL);
		wf_json_str(j, "module", m->path);
		wf_json_hex(j, "start", pin_lo(m));
		wf_json_uint(j, "bytes", pin_hi(m) - pin_lo(m));
		wf_json_end(j);
	}
	wf_json_end(j);
}

static struct wf_configuration pending;

static void init_once(void)
{
	{
		wf_config = pending;
		wf_settings.auto_threads = wf_config.thread_count == NULL;
		const char *g = getenv("WF_GLOBAL");
		wf_settings.global = g && *g && strcmp(g, "0") != 0;
		wf_settings.cyclic = env_double("WF_CYCLIC", 0, 0);
		wf_settings.global_timeout = env_double("WF_GLOBAL_TIMEOUT", 10, 0.001);
		wf_settings.rollback_depth = (int)env_double("WF_ROLLBACK_DEPTH", 1, 0);
		const char *q = getenv("WF_PATCH_QUEUE");
		wf_settings.queue = q ? strdup(q) : NULL;
		wf_log_open(getenv("WF_LOGFILE"));
		wf_threads_init();
		wf_modules_scan();

		if (!wf_settings.global) {
			wf_settings.generations = true;
			pin_code();
			if (!wf_settings.generations)
				wf_warn("%s", wf_settings.generations_error);
			else
				wf_text_wx_init();
		}
		struct wf_module *exe = wf_module_at(0);
		struct wf_json j;
		wf_event_begin(&j, "init");
		wf_json_str(&j, "mode", wf_settings.global ? "global" : "local");
		wf_json_str(&j, "exe", exe ? exe->path : NULL);
		wf_json_str(&j, "build_id", exe ? exe->build_id : NULL);
		wf_json_str(&j, "threads", wf_settings.auto_threads ? (wf_config.track_threads ? "tracked" : "automatic") : "thread_count");
		char sock[64];
		snprintf(sock, sizeof(sock), "@wfpatch.%d", (int)getpid());
		wf_json_str(&j, "socket", sock);
		if (!wf_settings.global) {
			wf_json_bool(&j, "generations", wf_settings.generations);
			wf_json_bool(&j, "wx", wf_settings.wx);
			log_pinned(&j);
			if (!wf_settings.generations)
				wf_json_str(&j, "error", wf_settings.generations_error);
		}
		wf_json_str(&j, "queue", wf_settings.queue);
		if (wf_settings.cyclic > 0)
			wf_json_num(&j, "cyclic_s", wf_settings.cyclic);
		wf_event_emit(&j);
		atexit(at_exit);
		wf_autoload();
		wf_control_start();
	}
}

void wf_init(struct wf_configuration config)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&m);
	pending = config;
	pthread_once(&once, init_once);
	pthread_mutex_unlock(&m);
}
