/* Threads and their quiescence points. Worker threads call wf_local_quiescence() or
 * wf_global_quiescence(); the fast path is one load and compare. The patcher thread starts and
 * finishes transitions:
 *   local:  every tracked thread migrates to the target generation at its next point, on its
 *           own (one syscall), and nobody waits for anybody;
 *   global: every tracked thread parks at its next global point until the patcher releases all.
 * Threads are tracked from their first call (or wf_thread_birth) until they exit (a
 * thread-specific-data destructor, or wf_thread_death). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

struct wf_thread {
	struct wf_thread *next, *prev;
	char name[48];
	pid_t tid;
	int epoch;        /* last transition this thread handled */
	long gen;         /* the generation it runs in */
	int done_epoch;   /* transition in which it migrated / parked */
	uint64_t done_ns;
	uint64_t stall_ns;
	bool logged;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t release_cv = PTHREAD_COND_INITIALIZER;
static pthread_key_t key;
static __thread struct wf_thread *self;
static struct wf_thread *threads;
static int nthreads;

static int epoch;             /* read without the lock in the fast path */
static enum wf_state state;
static long target_gen;
static uint64_t trigger_ns;
static unsigned release_count;
static int parked;
static int expected;          /* thread_count mode */
static int counted;           /* thread_count mode: migrated or parked */
static int notify = -1;
static bool round_global;
static uint64_t release_ns;

static void wake_patcher(void)
{
	uint64_t one = 1;
	if (notify >= 0) {
		ssize_t w = write(notify, &one, sizeof(one));
		(void)w;
	}
}

static void unregister(struct wf_thread *t)
{
	pthread_mutex_lock(&lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		threads = t->next;
	if (t->next)
		t->next->prev = t->prev;
	nthreads--;
	bool ongoing = state != WF_IDLE;
	/* thread_count mode: a thread that leaves before it moved is not waited for any more. */
	if (ongoing && !wf_settings.auto_threads && t->done_epoch != epoch)
		expected--;
	/* Migrated (or arrived) but gone before the patcher logged it: log it here. */
	bool unlogged = t->done_epoch == epoch && !t->logged;
	double ms = (double)(t->done_ns - trigger_ns) / 1e6;
	pthread_mutex_unlock(&lock);
	if (unlogged) {
		struct wf_json j;
		wf_event_begin(&j, round_global ? "arrived" : "migrated");
		wf_json_str(&j, "thread", t->name);
		wf_json_int(&j, "tid", t->tid);
		wf_json_num(&j, "ms", ms);
		if (!round_global)
			wf_json_int(&j, "gen", t->gen);
		wf_event_emit(&j);
	}
	if (ongoing) {
		struct wf_json j;
		wf_event_begin(&j, "thread_exit");
		wf_json_str(&j, "thread", t->name);
		wf_json_int(&j, "tid", t->tid);
		wf_event_emit(&j);
	}
	free(t);
	wake_patcher();
}

static void destructor(void *p)
{
	if (p)
		unregister(p);
	self = NULL;
}

void wf_threads_init(void)
{
	pthread_key_create(&key, destructor);
	notify = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int wf_notify_fd(void)
{
	return notify;
}

enum wf_state wf_state_get(void)
{
	return __atomic_load_n(&state, __ATOMIC_ACQUIRE);
}

static struct wf_thread *me(const char *name)
{
	if (self)
		return self;
	struct wf_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	snprintf(t->name, sizeof(t->name), "%s", name ? name : "?");
	t->tid = gettid();
	t->epoch = -1; /* take the slow path once */
	t->done_epoch = -1;
	if (wf_settings.generations) {
		long g = wf_gen_migrate(-1);
		t->gen = g >= 0 ? g : 0;
	}
	pthread_mutex_lock(&lock);
	t->next = threads;
	if (threads)
		threads->prev = t;
	threads = t;
	nthreads++;
	pthread_mutex_unlock(&lock);
	self = t;
	pthread_setspecific(key, t);
	return t;
}

/* Called with the lock held. */
static int local_remaining_locked(void)
{
	if (!wf_settings.auto_threads)
		return expected - counted;
	int n = 0;
	for (struct wf_thread *t = threads; t; t = t->next)
		n += t->gen != target_gen;
	return n;
}

static int global_missing_locked(void)
{
	if (!wf_settings.auto_threads)
		return expected - parked;
	int n = 0;
	for (struct wf_thread *t = threads; t; t = t->next)
		n += t->done_epoch != epoch;
	return n;
}

static void local_slow(struct wf_thread *t)
{
	pthread_mutex_lock(&lock);
	if (state != WF_GLOBAL && wf_settings.generations && t->gen != target_gen) {
		long g = target_gen;
		bool counting = state == WF_LOCAL;
		pthread_mutex_unlock(&lock);
		/* The migration itself needs no lock: the target cannot change before this thread
		 * has moved, because the transition waits for it. */
		long rc = wf_gen_migrate(g);
		uint64_t now = wf_now_ns();
		pthread_mutex_lock(&lock);
		if (rc >= 0)
			t->gen = g;
		else
			wf_warn("thread %s: migrate to generation %ld failed: %s", t->name, g, strerror((int)-rc));
		int remaining = 0;
		if (counting) {
			t->done_epoch = epoch;
			t->done_ns = now;
			t->logged = false;
			counted++;
			remaining = local_remaining_locked();
		}
		t->epoch = epoch;
		pthread_mutex_unlock(&lock);
		if (counting) {
			if (wf_config.thread_migrated)
				wf_config.thread_migrated(remaining);
			wake_patcher();
		}
		return;
	}
	if (state != WF_GLOBAL)
		t->epoch = epoch;
	pthread_mutex_unlock(&lock);
}

void wf_local_quiescence(char *name)
{
	struct wf_thread *t = me(name);
	if (!t || __atomic_load_n(&epoch, __ATOMIC_ACQUIRE) == t->epoch)
		return;
	local_slow(t);
}

void wf_global_quiescence(char *name, unsigned int threads_represented)
{
	(void)threads_represented; /* statistics only, as in the prototype */
	struct wf_thread *t = me(name);
	if (!t || __atomic_load_n(&epoch, __ATOMIC_ACQUIRE) == t->epoch)
		return;
	pthread_mutex_lock(&lock);
	if (state != WF_GLOBAL) {
		pthread_mutex_unlock(&lock);
		local_slow(t); /* every global point is also a local one */
		return;
	}
	if (t->done_epoch == epoch) {
		pthread_mutex_unlock(&lock);
		return;
	}
	t->done_epoch = epoch;
	t->done_ns = wf_now_ns();
	t->logged = false;
	parked++;
	int remaining = global_missing_locked();
	unsigned r = release_count;
	pthread_mutex_unlock(&lock);
	if (wf_config.thread_migrated)
		wf_config.thread_migrated(remaining);
	wake_patcher();
	pthread_mutex_lock(&lock);
	while (release_count == r)
		pthread_cond_wait(&release_cv, &lock);
	t->stall_ns = wf_now_ns() - t->done_ns;
	t->epoch = epoch;
	pthread_mutex_unlock(&lock);
}

bool wf_transition_ongoing(bool global)
{
	enum wf_state s = wf_state_get();
	return global ? s == WF_GLOBAL : s == WF_LOCAL;
}

void wf_thread_birth(char *name)
{
	me(name);
	wf_global_quiescence(name, 1); /* a birth is a quiescence point */
}

void wf_thread_death(char *name)
{
	(void)name;
	struct wf_thread *t = self;
	if (!t)
		return;
	pthread_setspecific(key, NULL);
	self = NULL;
	unregister(t);
}

static void reset_round_locked(uint64_t trig)
{
	trigger_ns = trig;
	release_ns = 0;
	counted = 0;
	parked = 0;
	for (struct wf_thread *t = threads; t; t = t->next) {
		t->logged = false;
		t->stall_ns = 0;
	}
}

int wf_local_begin(long gen, uint64_t trig)
{
	int n = wf_settings.auto_threads ? 0 : wf_config.thread_count(false);
	pthread_mutex_lock(&lock);
	reset_round_locked(trig);
	round_global = false;
	expected = n;
	target_gen = gen;
	__atomic_store_n(&state, WF_LOCAL, __ATOMIC_RELEASE);
	__atomic_add_fetch(&epoch, 1, __ATOMIC_RELEASE);
	int remaining = local_remaining_locked();
	pthread_mutex_unlock(&lock);
	return remaining;
}

int wf_local_remaining(void)
{
	pthread_mutex_lock(&lock);
	int n = local_remaining_locked();
	pthread_mutex_unlock(&lock);
	return n;
}

void wf_local_end(void)
{
	pthread_mutex_lock(&lock);
	__atomic_store_n(&state, WF_IDLE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
}

/*
 * Returns the threads taking part, counted under the lock that publishes the
 * round: counted afterwards, threads that parked in between would be missed.
 */
int wf_global_begin(uint64_t trig)
{
	int n = wf_settings.auto_threads ? 0 : wf_config.thread_count(true);
	pthread_mutex_lock(&lock);
	reset_round_locked(trig);
	round_global = true;
	expected = n;
	__atomic_store_n(&state, WF_GLOBAL, __ATOMIC_RELEASE);
	__atomic_add_fetch(&epoch, 1, __ATOMIC_RELEASE);
	int missing = global_missing_locked();
	pthread_mutex_unlock(&lock);
	return missing;
}

int wf_global_missing(void)
{
	pthread_mutex_lock(&lock);
	int n = global_missing_locked();
	pthread_mutex_unlock(&lock);
	return n;
}

void wf_global_release(void)
{
	pthread_mutex_lock(&lock);
	__atomic_store_n(&state, WF_IDLE, __ATOMIC_RELEASE);
	release_ns = wf_now_ns();
	release_count++;
	pthread_cond_broadcast(&release_cv);
	pthread_mutex_unlock(&lock);
}

struct progress {
	char name[48];
	pid_t tid;
	double ms;
	long gen;
};

void wf_threads_log_progress(void)
{
	struct progress p[64];
	size_t n;
	bool global;
	do {
		n = 0;
		pthread_mutex_lock(&lock);
		global = state == WF_GLOBAL;
		for (struct wf_thread *t = threads; t && n < 64; t = t->next) {
			if (t->done_epoch != epoch || t->logged)
				continue;
			t->logged = true;
			memcpy(p[n].name, t->name, sizeof(p[n].name));
			p[n].tid = t->tid;
			p[n].ms = (double)(t->done_ns - trigger_ns) / 1e6;
			p[n].gen = t->gen;
			n++;
		}
		int remaining = global ? global_missing_locked() : local_remaining_locked();
		pthread_mutex_unlock(&lock);
		for (size_t i = 0; i < n; i++) {
			struct wf_json j;
			wf_event_begin(&j, global ? "arrived" : "migrated");
			wf_json_str(&j, "thread", p[i].name);
			wf_json_int(&j, "tid", p[i].tid);
			wf_json_num(&j, "ms", p[i].ms);
			if (!global)
				wf_json_int(&j, "gen", p[i].gen);
			wf_json_int(&j, "remaining", remaining);
			wf_event_emit(&j);
		}
	} while (n == 64);
}

void wf_threads_stats(double *max_ms, double *sum_ms, int *count, double *max_stall_ms)
{
	*max_ms = *sum_ms = *max_stall_ms = 0;
	*count = 0;
	pthread_mutex_lock(&lock);
	for (struct wf_thread *t = threads; t; t = t->next) {
		if (t->done_epoch != epoch)
			continue;
		double ms = (double)(t->done_ns - trigger_ns) / 1e6;
		/* A parked thread stalls from its arrival until the release. */
		double stall = round_global && release_ns ? (double)(release_ns - t->done_ns) / 1e6 : 0;
		if (ms > *max_ms)
			*max_ms = ms;
		if (stall > *max_stall_ms)
			*max_stall_ms = stall;
		*sum_ms += ms;
		(*count)++;
	}
	pthread_mutex_unlock(&lock);
}

void wf_threads_missing_names(char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = 0;
	pthread_mutex_lock(&lock);
	for (struct wf_thread *t = threads; t; t = t->next) {
		bool missing = state == WF_GLOBAL ? t->done_epoch != epoch : t->gen != target_gen;
		if (!missing)
			continue;
		int n = snprintf(buf + o, cap - o, "%s%s(%d)", o ? ", " : "", t->name, t->tid);
		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
	pthread_mutex_unlock(&lock);
}

/* inventory.c: every tracked thread and its generation, under the lock (fn must not block). */
void wf_threads_each(void (*fn)(void *arg, const char *name, pid_t tid, long gen), void *arg)
{
	pthread_mutex_lock(&lock);
	for (struct wf_thread *t = threads; t; t = t->next)
		fn(arg, t->name, t->tid, t->gen);
	pthread_mutex_unlock(&lock);
}
