/* One transition at a time, driven by the patcher thread (control.c): apply a patch or roll the
 * newest one back, in local mode (generations) or global mode (barrier). Every step is logged;
 * a failure at any step leaves the process running its previous code. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "transition.h"

#define MAX_STACK 256

/* The running transition. */
struct transition {
	bool active;
	bool global;
	bool rollback;
	bool has_patch;
	bool began;          /* threads were asked to move: their statistics count */
	bool patch_kept;     /* the patch moved onto the stack: don't unload it */
	int seq;
	int reply_fd;
	int threads;
	char path[4096];
	struct wf_loaded patch;
	uint64_t trigger_ns;
	uint64_t deadline_ns;
	long new_gen, old_gen;
	double create_us, load_us, quiescence_ms;
};

struct applied {
	struct wf_loaded patch;
	long gen;       /* local: the generation with this patch */
	long prev_gen;  /* local: the generation before it */
	bool prev_deleted;
	int seq;        /* the apply's */
};

static struct applied stack[MAX_STACK];
static int depth;
static long current_gen; /* local: the newest generation (0: the original) */
static struct transition tr;
static int seq;
static int n_applied, n_rejected, n_rolled_back;

bool wf_transition_active(void)
{
	return tr.active;
}

static void event_common(struct wf_json *j, const char *event)
{
	wf_event_begin(j, event);
	wf_json_int(j, "seq", tr.seq);
}

static double since_trigger_ms(void)
{
	return (double)(wf_now_ns() - tr.trigger_ns) / 1e6;
}

static void summary(const char *outcome, const char *reason)
{
	double max_ms = 0, sum_ms = 0, max_stall = 0;
	int count = 0;
	if (tr.began)
		wf_threads_stats(&max_ms, &sum_ms, &count, &max_stall);
	struct wf_json j;
	event_common(&j, "summary");
	wf_json_str(&j, "mode", tr.global ? "global" : "local");
	wf_json_str(&j, "action", tr.rollback ? "rollback" : "apply");
	wf_json_str(&j, "patch", tr.path[0] ? tr.path : NULL);
	wf_json_str(&j, "outcome", outcome);
	if (reason)
		wf_json_str(&j, "reason", reason);
	wf_json_int(&j, "threads", tr.threads);
	wf_json_int(&j, "migrated", count);
	wf_json_num(&j, "max_thread_ms", max_ms);
	wf_json_num(&j, "mean_thread_ms", count ? sum_ms / count : 0);
	wf_json_num(&j, "total_ms", since_trigger_ms());
	if (!tr.global)
		wf_json_num(&j, "create_us", tr.create_us);
	wf_json_num(&j, "load_us", tr.load_us);
	if (tr.global) {
		wf_json_num(&j, "quiescence_ms", tr.quiescence_ms);
		wf_json_num(&j, "max_stall_ms", max_stall);
	}
	wf_json_int(&j, "depth", depth);
	wf_event_emit_to(&j, tr.reply_fd);
}

/* Ends the transition with an error; the process keeps its previous code. */
static void reject(const char *reason)
{
	wf_warn("%s%s rejected: %s", tr.rollback ? "rollback" : "patch ", tr.path, reason);
	summary("rejected", reason);
	struct wf_json j;
	event_common(&j, "rejected");
	wf_json_str(&j, "patch", tr.path[0] ? tr.path : NULL);
	wf_json_str(&j, "reason", reason);
	wf_event_emit_to(&j, tr.reply_fd);
	n_rejected++;
	if (tr.has_patch && !tr.patch_kept)
		wf_patch_unload(&tr.patch);
	memset(&tr, 0, sizeof(tr));
	tr.reply_fd = -1;
}

static void finish(void)
{
	summary(tr.rollback ? "rolled-back" : "applied", NULL);
	struct wf_json j;
	event_common(&j, "done");
	wf_json_str(&j, "action", tr.rollback ? "rollback" : "apply");
	wf_json_num(&j, "ms", since_trigger_ms());
	wf_json_int(&j, "depth", depth);
	if (!tr.global)
		wf_json_int(&j, "gen", current_gen);
	wf_event_emit_to(&j, tr.reply_fd);
	if (tr.rollback)
		n_rolled_back++;
	else
		n_applied++;
	wf_inventory_finished(tr.rollback, tr.path);
	if (wf_config.patch_done)
		wf_config.patch_done();
	memset(&tr, 0, sizeof(tr));
	tr.reply_fd = -1;
}

static void log_loaded(void)
{
	struct wf_loaded *p = &tr.patch;
	struct wf_json j;
	event_common(&j, "patch_loaded");
	wf_json_str(&j, "patch", p->path);
	wf_json_str(&j, "target", p->target->path);
	wf_json_str(&j, "build_id", p->target->build_id);
	wf_json_hex(&j, "at", (uintptr_t)p->region);
	wf_json_int(&j, "region_bytes", (long long)p->region_size);
	wf_json_bool(&j, "wx", p->wx);
	wf_json_hex(&j, "text_at", p->text_addr);
	wf_json_int(&j, "text_bytes", (long long)p->text_bytes);
	wf_json_int(&j, "rodata_bytes", (long long)p->rodata_bytes);
	wf_json_int(&j, "data_bytes", (long long)p->data_bytes);
	wf_json_int(&j, "sections", p->nsections);
	wf_json_int(&j, "relocations", p->nrelocs);
	wf_json_int(&j, "got_slots", p->ngot);
	wf_json_int(&j, "plt_entries", p->nplt);
	wf_json_int(&j, "functions", (long long)p->nfuncs);
	wf_json_num(&j, "load_us", tr.load_us);
	if (p->meta)
		wf_json_raw(&j, "meta", p->meta[0] == '{' ? p->meta : NULL);
	wf_event_emit_to(&j, tr.reply_fd);
}

static void log_jumps(void)
{
	struct wf_loaded *p = &tr.patch;
	struct wf_json j;
	event_common(&j, "jumps_written");
	wf_json_uint(&j, "count", p->nfuncs);
	wf_json_array(&j, "functions");
	for (size_t i = 0; i < p->nfuncs; i++) {
		const struct wf_func *f = &p->funcs[i];
		wf_json_object(&j, NULL);
		wf_json_str(&j, "name", f->name);
		wf_json_hex(&j, "old", f->old_addr);
		wf_json_hex(&j, "new", f->new_addr);
		wf_json_uint(&j, "jump", f->jump_len);
		wf_json_end(&j);
	}
	wf_json_end(&j);
	wf_json_int(&j, "eh_frames_registered", p->eh_registered);
	if (!tr.global)
		wf_json_int(&j, "gen", tr.new_gen);
	wf_event_emit_to(&j, tr.reply_fd);
}

/* Local mode: drop generations no rollback can reach any more. */
static void delete_old_generations(void)
{
	wf_autoload_rollback_depth();
	for (int k = 0; k < depth - wf_settings.rollback_depth; k++) {
		struct applied *a = &stack[k];
		if (a->prev_deleted || a->prev_gen == 0)
			continue;
		long rc = wf_gen_delete(a->prev_gen);
		a->prev_deleted = true;
		struct wf_json j;
		event_common(&j, "generation_deleted");
		wf_json_int(&j, "gen", a->prev_gen);
		if (rc < 0)
			wf_json_str(&j, "error", strerror((int)-rc));
		wf_event_emit_to(&j, tr.reply_fd);
	}
}

/* Frees a rolled-back patch: its .eh_frame deregistered, its region and code mapping unmapped,
 * its records freed. `why_kept` non-NULL: it stays mapped (its records are freed all the same),
 * for the reason given. Called only once no thread can run the patch's code any more: see the
 * callers. Logged under the rollback's seq, to fd as well (its client) if >= 0. */
static void retire_patch(struct wf_loaded *p, const char *why_kept, int rb_seq, int fd)
{
	if (!p->path[0] || (!p->region && !p->text_map))
		return; /* a migration without a patch, or nothing mapped */
	struct wf_json j;
	wf_event_begin(&j, why_kept ? "patch_kept" : "patch_unloaded");
	wf_json_int(&j, "seq", rb_seq);
	wf_json_str(&j, "patch", p->path);
	wf_json_int(&j, "bytes", (long long)(p->region_size + p->text_map_size));
	if (why_kept)
		wf_json_str(&j, "reason", why_kept);
	wf_event_emit_to(&j, fd);
	if (why_kept) {
		free(p->funcs);
		p->funcs = NULL;
		return;
	}
	wf_deregister_eh_frame(p);
	wf_patch_unload(p);
}

/*
 * Local mode: a rolled-back generation and its patch, kept until no thread runs in the
 * generation any more.
 *
 * Why waiting is needed at all: every tracked thread has left the rolled-back generation when
 * the rollback is done, each at a quiescence point, where nothing a patch replaces — and so none
 * of this patch's code — is on its stack. The patch's jumps exist only in that generation (older
 * ones never had them; those created from it were rolled back and deleted before it), so from
 * any other generation its code is unreachable. What may be left in it is a thread that is not
 * tracked at that moment: one that left live patching to sleep (memcached's background threads
 * do, for up to hours) and re-joins — migrating to the newest generation — only when it wakes,
 * or an untracked thread born there. Such a thread may return into the patch's code. The
 * kernel tells whether any thread is left: rewriting the generation's own jump bytes is refused
 * (EBUSY) while one runs there. So the generation is deleted and the code unmapped only once
 * the kernel has said it is empty. Until the delete nothing can enter it: only the runtime
 * migrates threads, always to the newest generation, and only a thread inside could clone into
 * it; after the delete it cannot be migrated to at all.
 *
 * Stacked patches: a generation created while this patch was applied (a later patch's, applied
 * after it and rolled back before it) carries this patch's jumps too. If that one still waits
 * here, this patch's code is reachable from it, so the patch is freed only after it.
 */
struct retired {
	struct wf_loaded patch;
	long gen;
	int seq;        /* the rollback's */
	int apply_seq;  /* the apply's */
};
#define MAX_RETIRED 64
static struct retired retired[MAX_RETIRED];
static int nretired;

static void log_gen_deleted(long gen, long rc, int rb_seq, int fd)
{
	struct wf_json j;
	wf_event_begin(&j, "generation_deleted");
	wf_json_int(&j, "seq", rb_seq);
	wf_json_int(&j, "gen", gen);
	if (rc < 0)
		wf_json_str(&j, "error", strerror((int)-rc));
	wf_event_emit_to(&j, fd);
}

/* A generation made while the patch applied at apply_seq and rolled back at rb_seq was in place
 * (so carrying its jumps) still waits. */
static bool later_waits(int apply_seq, int rb_seq)
{
	for (int i = 0; i < nretired; i++)
		if (retired[i].apply_seq > apply_seq && retired[i].apply_seq < rb_seq)
			return true;
	return false;
}

/* Deletes a rolled-back generation and frees its patch if the kernel says no thread runs there
 * and no generation made on top of it waits; true if so (or if it can never tell: then the
 * generation goes and the code stays mapped). */
static bool try_retire(struct wf_loaded *p, long gen, int apply_seq, int rb_seq, int fd, bool last_chance)
{
	int idle = p->path[0] ? wf_text_gen_idle(p, gen) : 0;
	if (idle == 0 && later_waits(apply_seq, rb_seq))
		idle = -EBUSY;
	if (idle == -EBUSY && !last_chance)
		return false;
	log_gen_deleted(gen, wf_gen_delete(gen), rb_seq, fd);
	char why[WF_ERRLEN];
	if (idle == -EBUSY)
		snprintf(why, sizeof(why), "a thread still runs in generation %ld (or one made on top of it), and %d rolled-back generations wait already",
			 gen, MAX_RETIRED);
	else if (idle < 0 && idle != -ENOENT) /* -ENOENT: no jumps, the code was never reachable */
		snprintf(why, sizeof(why), "cannot ask the kernel whether generation %ld is empty: %s", gen,
			 strerror(-idle));
	retire_patch(p, idle == 0 || idle == -ENOENT ? NULL : why, rb_seq, fd);
	return true;
}

bool wf_transition_reap(void)
{
	/* Until nothing more goes: a generation made on top of an older one has to go first. */
	for (bool progress = true; progress;) {
		progress = false;
		for (int i = 0; i < nretired && !progress; i++) {
			struct retired *r = &retired[i];
			if (try_retire(&r->patch, r->gen, r->apply_seq, r->seq, -1, false)) {
				retired[i] = retired[--nretired];
				progress = true;
			}
		}
	}
	return nretired > 0;
}

static void push_applied(long gen, long prev)
{
	struct applied *a = &stack[depth++];
	a->patch = tr.patch;
	a->gen = gen;
	a->prev_gen = prev;
	a->prev_deleted = false;
	a->seq = tr.seq;
	tr.patch_kept = true;
}

static int load(char *err)
{
	if (!tr.path[0]) {
		tr.has_patch = false;
		return 0; /* an empty transition (WF_CYCLIC with an empty queue): migration only */
	}
	uint64_t t0 = wf_now_ns();
	if (wf_patch_load(tr.path, &tr.patch, err))
		return -1;
	tr.load_us = (double)(wf_now_ns() - t0) / 1e3;
	tr.has_patch = true;
	if (!tr.global && !tr.patch.target->pinned) {
		wf_patch_unload(&tr.patch);
		tr.has_patch = false;
		return wf_errf(err, "the code of %s was not pinned at wf_init: local mode cannot patch it",
			       tr.patch.target->path);
	}
	log_loaded();
	return 0;
}

static void start_local_apply(void)
{
	char err[WF_ERRLEN];
	if (!wf_settings.generations) {
		reject(wf_settings.generations_error);
		return;
	}
	if (load(err)) {
		reject(err);
		return;
	}
	uint64_t t0 = wf_now_ns();
	long gen = wf_gen_create();
	tr.create_us = (double)(wf_now_ns() - t0) / 1e3;
	if (gen < 0) {
		snprintf(err, sizeof(err), "wf_create failed: %s", strerror((int)-gen));
		reject(err);
		return;
	}
	/* W^X: the code goes into the new generation before any thread (the patcher too) runs there. */
	if (tr.has_patch && tr.patch.wx && wf_text_write_gen(&tr.patch, gen, err)) {
		wf_gen_delete(gen);
		reject(err);
		return;
	}
	long prev = wf_gen_migrate(gen);
	if (prev < 0) {
		snprintf(err, sizeof(err), "patcher cannot migrate to generation %ld: %s", gen, strerror((int)-prev));
		wf_gen_delete(gen);
		reject(err);
		return;
	}
	tr.new_gen = gen;
	struct wf_json j;
	event_common(&j, "generation_created");
	wf_json_int(&j, "gen", gen);
	wf_json_int(&j, "from", prev);
	wf_json_num(&j, "create_us", tr.create_us);
	wf_event_emit_to(&j, tr.reply_fd);

	if (tr.has_patch) {
		if (!tr.patch.wx && wf_text_write_jumps(&tr.patch, err)) {
			wf_gen_migrate(prev);
			wf_gen_delete(gen);
			reject(err);
			return;
		}
		wf_register_eh_frame(&tr.patch);
		log_jumps();
	}
	push_applied(gen, prev);
	if (!tr.has_patch)
		stack[depth - 1].patch.path[0] = 0;
	current_gen = gen;
	tr.threads = wf_local_begin(gen, tr.trigger_ns);
	tr.began = true;
	event_common(&j, "migration_pending");
	wf_json_int(&j, "gen", gen);
	wf_json_int(&j, "threads", tr.threads);
	wf_event_emit_to(&j, tr.reply_fd);
	if (wf_config.trigger_local_quiescence)
		wf_config.trigger_local_quiescence();
	if (wf_config.patch_applied)
		wf_config.patch_applied();
	wf_transition_poll();
}

static void start_local_rollback(void)
{
	char err[WF_ERRLEN];
	struct applied *top = &stack[depth - 1];
	if (top->prev_deleted) {
		snprintf(err, sizeof(err), "generation %ld before the newest patch was already deleted (WF_ROLLBACK_DEPTH=%d)",
			 top->prev_gen, wf_settings.rollback_depth);
		reject(err);
		return;
	}
	long rc = wf_gen_migrate(top->prev_gen);
	if (rc < 0) {
		snprintf(err, sizeof(err), "patcher cannot migrate to generation %ld: %s", top->prev_gen, strerror((int)-rc));
		reject(err);
		return;
	}
	tr.new_gen = top->prev_gen;
	tr.old_gen = top->gen;
	current_gen = top->prev_gen;
	tr.threads = wf_local_begin(top->prev_gen, tr.trigger_ns);
	tr.began = true;
	struct wf_json j;
	event_common(&j, "migration_pending");
	wf_json_int(&j, "gen", top->prev_gen);
	wf_json_int(&j, "threads", tr.threads);
	wf_json_str(&j, "rollback_of", top->patch.path);
	wf_event_emit_to(&j, tr.reply_fd);
	if (wf_config.trigger_local_quiescence)
		wf_config.trigger_local_quiescence();
	wf_transition_poll();
}

static void start_global(void)
{
	char err[WF_ERRLEN];
	if (!tr.rollback && load(err)) {
		reject(err);
		return;
	}
	tr.threads = wf_global_begin(tr.trigger_ns);
	tr.began = true;
	tr.deadline_ns = tr.trigger_ns + (uint64_t)(wf_settings.global_timeout * 1e9);
	if (wf_config.trigger_global_quiescence)
		wf_config.trigger_global_quiescence();
	wf_transition_poll();
}

bool wf_transition_start(const struct wf_request *req)
{
	memset(&tr, 0, sizeof(tr));
	tr.active = true;
	tr.reply_fd = req->reply_fd;
	tr.global = wf_settings.global;
	tr.rollback = req->kind == WF_REQ_ROLLBACK;
	tr.trigger_ns = req->ns ? req->ns : wf_now_ns();
	tr.seq = ++seq;
	snprintf(tr.path, sizeof(tr.path), "%s", req->path);

	struct wf_json j;
	event_common(&j, "trigger");
	wf_json_str(&j, "source", req->source);
	wf_json_str(&j, "action", tr.rollback ? "rollback" : "apply");
	wf_json_str(&j, "patch", tr.path[0] ? tr.path : NULL);
	wf_json_str(&j, "mode", tr.global ? "global" : "local");
	wf_event_emit_to(&j, tr.reply_fd);

	if (tr.rollback && depth == 0)
		reject("nothing to roll back: no patch is applied");
	else if (!tr.rollback && depth == MAX_STACK)
		reject("too many stacked patches");
	else if (tr.global)
		start_global();
	else if (tr.rollback)
		start_local_rollback();
	else
		start_local_apply();
	return !tr.active;
}

static void poll_local(void)
{
	wf_threads_log_progress();
	if (wf_local_remaining() > 0)
		return;
	wf_threads_log_progress(); /* those that migrated between the log and the count */
	wf_local_end();
	if (tr.rollback) {
		/* The generation and the patch go once no thread runs there (see struct retired). */
		struct applied *top = &stack[--depth];
		if (!try_retire(&top->patch, top->gen, top->seq, tr.seq, tr.reply_fd, nretired == MAX_RETIRED)) {
			struct retired *r = &retired[nretired++];
			r->patch = top->patch;
			r->gen = top->gen;
			r->seq = tr.seq;
			r->apply_seq = top->seq;
			struct wf_json j;
			event_common(&j, "generation_kept");
			wf_json_int(&j, "gen", top->gen);
			wf_json_str(&j, "reason", "a thread not tracked now (asleep) still runs there: deleted, and the patch unmapped, once it has left");
			wf_event_emit_to(&j, tr.reply_fd);
		}
		memset(&top->patch, 0, sizeof(top->patch));
	} else {
		delete_old_generations();
	}
	finish();
}

static void poll_global(void)
{
	wf_threads_log_progress();
	int missing = wf_global_missing();
	if (missing > 0) {
		if (wf_now_ns() < tr.deadline_ns)
			return;
		char names[320], reason[WF_ERRLEN];
		wf_threads_missing_names(names, sizeof(names));
		snprintf(reason, sizeof(reason),
			 "global quiescence not reached within %.1f s: %d thread(s) never reached a quiescence point: %s",
			 wf_settings.global_timeout, missing, names);
		struct wf_json j;
		event_common(&j, "quiescence_timeout");
		wf_json_num(&j, "ms", since_trigger_ms());
		wf_json_int(&j, "missing", missing);
		wf_json_str(&j, "threads", names);
		wf_event_emit_to(&j, tr.reply_fd);
		wf_global_release();
		reject(reason);
		return;
	}
	/* Threads that arrived after the progress log above but before the count: log them too. */
	wf_threads_log_progress();
	tr.quiescence_ms = since_trigger_ms();
	struct wf_json j;
	event_common(&j, "quiescence");
	wf_json_num(&j, "ms", tr.quiescence_ms);
	wf_event_emit_to(&j, tr.reply_fd);
	char err[WF_ERRLEN];
	if (tr.rollback) {
		struct applied *top = &stack[depth - 1];
		if (wf_text_restore(&top->patch, err)) {
			wf_global_release();
			reject(err);
			return;
		}
		depth--;
		event_common(&j, "jumps_removed");
		wf_json_str(&j, "patch", top->patch.path);
		wf_json_int(&j, "count", (long long)top->patch.nfuncs);
		wf_event_emit_to(&j, tr.reply_fd);
		/* The jumps are gone and every tracked thread is parked at a quiescence point, with
		 * none of the patch's code on its stack: no tracked thread can reach that code again.
		 * Global mode rests on every thread that runs patchable code being tracked (an
		 * untracked one could as well be executing the bytes a jump replaces); under that same
		 * rule the code can go, before anyone resumes. */
		retire_patch(&top->patch, NULL, tr.seq, tr.reply_fd);
	} else if (tr.has_patch) {
		if (wf_text_write_jumps(&tr.patch, err)) {
			wf_global_release();
			reject(err);
			return;
		}
		wf_register_eh_frame(&tr.patch);
		log_jumps();
		push_applied(0, 0);
	}
	if (wf_config.patch_applied && !tr.rollback)
		wf_config.patch_applied();
	wf_global_release();
	finish();
}

bool wf_transition_poll(void)
{
	if (!tr.active)
		return false;
	if (tr.global)
		poll_global();
	else
		poll_local();
	return !tr.active;
}

void wf_transition_totals(void)
{
	struct wf_json j;
	wf_event_begin(&j, "totals");
	wf_json_str(&j, "mode", wf_settings.global ? "global" : "local");
	wf_json_int(&j, "transitions", seq);
	wf_json_int(&j, "applied", n_applied);
	wf_json_int(&j, "rolled_back", n_rolled_back);
	wf_json_int(&j, "rejected", n_rejected);
	wf_json_int(&j, "depth", depth);
	wf_event_emit(&j);
}

void wf_transition_status(int fd)
{
	struct wf_json j;
	wf_event_begin(&j, "status");
	wf_json_str(&j, "mode", wf_settings.global ? "global" : "local");
	wf_json_bool(&j, "busy", tr.active);
	wf_json_int(&j, "depth", depth);
	wf_json_array(&j, "patches");
	for (int i = 0; i < depth; i++) {
		wf_json_object(&j, NULL);
		wf_json_str(&j, "patch", stack[i].patch.path);
		wf_json_int(&j, "gen", stack[i].gen);
		wf_json_uint(&j, "functions", stack[i].patch.nfuncs);
		wf_json_end(&j);
	}
	wf_json_end(&j);
	if (!wf_settings.global) {
		wf_json_bool(&j, "generations", wf_settings.generations);
		wf_json_int(&j, "gen", current_gen);
	}
	wf_event_emit_to(&j, fd);
}
