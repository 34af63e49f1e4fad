/* Between the patcher's event loop (control.c) and the transition logic (transition.c). */
#ifndef WF_TRANSITION_H
#define WF_TRANSITION_H

#include "internal.h"

enum wf_req_kind { WF_REQ_NEXT, WF_REQ_APPLY, WF_REQ_ROLLBACK };

struct wf_request {
	enum wf_req_kind kind;
	char path[4096];     /* WF_REQ_APPLY; for WF_REQ_NEXT filled from WF_PATCH_QUEUE */
	const char *source;  /* "signal", "socket", "cyclic" */
	int client;          /* control-socket connection to report to, or -1 */
	uint64_t ns;         /* when the trigger arrived */
};

struct transition {
	bool active;
	bool global;
	bool rollback;
	bool has_patch;
	bool began;          /* threads were asked to move: their statistics count */
	bool patch_kept;     /* the patch moved onto the stack: don't unload it */
	int seq;
	int client;
	int threads;
	char path[4096];
	struct wf_loaded patch;
	uint64_t trigger_ns;
	uint64_t deadline_ns;
	long new_gen, old_gen;
	double create_us, load_us, quiescence_ms;
};

WF_HIDDEN void wf_transition_start(const struct wf_request *req);
WF_HIDDEN void wf_transition_poll(void);
WF_HIDDEN bool wf_transition_active(void);
WF_HIDDEN uint64_t wf_transition_deadline(void);
WF_HIDDEN void wf_transition_totals(void);
WF_HIDDEN void wf_transition_status(int fd);
/* control.c: the request from this client is finished; close its connection. */
WF_HIDDEN void wf_client_done(int fd);

#endif
