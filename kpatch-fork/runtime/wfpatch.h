/*
 * libwfpatch — wait-free live patching of multi-threaded processes.
 *
 * API-compatible with the research prototype's userland (wf-userland.h): call wf_init() early
 * in main(), and let every worker thread call wf_local_quiescence() / wf_global_quiescence()
 * at points where it runs no code that a patch may replace (e.g. the top of its event loop).
 *
 * A patch is applied on a trigger: the signal SIGPATCH (SIGRTMIN+0) takes the next file of
 * WF_PATCH_QUEUE, a request on the control socket (abstract unix socket "@wfpatch.<pid>",
 * used by `wfbuild apply --pid PID BUNDLE`) names a file, and WF_CYCLIC=<seconds> triggers
 * periodically (benchmarks).
 *
 * Environment:
 *   WF_PATCH_QUEUE   ';'-separated patch files, applied in order, one per trigger
 *   WF_GLOBAL=1      global quiescence (all threads park at a barrier); default: local mode
 *                    with address-space generations (needs the kernel extension)
 *   WF_LOGFILE       JSON-lines log (default: stderr)
 *   WF_CYCLIC        seconds between automatic triggers
 *   WF_GLOBAL_TIMEOUT  seconds to wait for global quiescence before giving up (default 10)
 *   WF_ROLLBACK_DEPTH  previous generations kept for rollback (default: the number of
 *                    installed fixes for the process's build-ids, at least 1)
 *
 * See kpatch-fork/runtime/README.md.
 */
#ifndef WFPATCH_H
#define WFPATCH_H

#include <signal.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SIGPATCH (SIGRTMIN + 0)

struct wf_configuration {
	/*
	 * The application calls wf_thread_birth()/wf_thread_death() for its threads. When
	 * neither this nor thread_count is given (a zeroed configuration), every thread that
	 * calls a quiescence function is tracked automatically from its first call until it
	 * exits.
	 */
	bool track_threads;
	/* Optional: the number of threads that take part in a transition. */
	int (*thread_count)(bool global);
	/* Optional: kick the application so its threads reach their quiescence points. */
	void (*trigger_global_quiescence)(void);
	void (*trigger_local_quiescence)(void);
	/* Optional: called when a thread migrated (local) or parked (global). */
	void (*thread_migrated)(int remaining);
	/* Optional: called after the patch was written. */
	void (*patch_applied)(void);
	/* Optional: called after all threads migrated (local) or resumed (global). */
	void (*patch_done)(void);
};

void wf_init(struct wf_configuration config);

/* The calling thread is at a global quiescence point (also a local one). `threads` is for
 * statistics only: the thread counts as one. */
void wf_global_quiescence(char *name, unsigned int threads);

/* The calling thread is at a local quiescence point: it migrates to the newest generation. */
void wf_local_quiescence(char *name);

/* Is a transition of that kind (global or local) under way? */
bool wf_transition_ongoing(bool global);

/* A thread starts or ends taking part (a birth is a quiescence point). */
void wf_thread_birth(char *name);
void wf_thread_death(char *name);

#ifdef __cplusplus
}
#endif

#endif
