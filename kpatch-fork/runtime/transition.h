/* The transition logic (transition.c), driven by the patcher's event loop (control.c). One
 * direction only: control.c starts and polls transitions and learns from the return values when
 * one has ended; transition.c knows nothing of the loop or its clients (a request's reply_fd is
 * just where its event lines go as well). */
#ifndef WF_TRANSITION_H
#define WF_TRANSITION_H

#include "internal.h"

enum wf_req_kind { WF_REQ_NEXT, WF_REQ_APPLY, WF_REQ_ROLLBACK };

struct wf_request {
	enum wf_req_kind kind;
	char path[4096];     /* WF_REQ_APPLY; for WF_REQ_NEXT filled from WF_PATCH_QUEUE */
	const char *source;  /* "signal", "socket", "cyclic" */
	int reply_fd;        /* the event lines go here as well as to the log (a client), or -1 */
	uint64_t ns;         /* when the trigger arrived */
};

/* Starts a transition (none may be active). True if it has already ended (rejected, or nothing
 * to wait for). */
WF_HIDDEN bool wf_transition_start(const struct wf_request *req);
/* Advances the active transition; true if it ended in this call. */
WF_HIDDEN bool wf_transition_poll(void);
WF_HIDDEN bool wf_transition_active(void);
/* Local mode: deletes the rolled-back generations no thread runs in any more and unmaps their
 * patches; true while some still wait (the caller tries again later). */
WF_HIDDEN bool wf_transition_reap(void);
WF_HIDDEN void wf_transition_totals(void);
/* Writes the status event to the log and to fd. */
WF_HIDDEN void wf_transition_status(int fd);

#endif
