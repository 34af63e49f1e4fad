/* libwfpatch benchmark: local (generations) vs global (barrier) under a steady call load.
 *
 *   bench both PATCH [THREADS] [SECONDS]   runs itself twice (local, then global) and prints the
 *                                          two columns side by side; JSON to $WFVM_RESULTS
 *   bench one                              one run in the mode of WF_GLOBAL (used by "both")
 *
 * Each worker loops: quiescence point, version(), a little work, a 200 µs pause. Per worker it measures the
 * time from the trigger until it runs the new code, and the longest gap between two
 * iterations around the patch (the stall it saw). The runtime's own log supplies the
 * generation create time, the patch load time and the time to global quiescence. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "patchable.h"
#include "wfpatch.h"

#define MAX_THREADS 64

static atomic_bool stop;
static _Atomic double t_trigger = -1;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct worker {
	pthread_t th;
	char name[32];
	double switched_ms; /* trigger -> first call of the new code */
	double max_gap_ms;  /* longest gap between iterations after the trigger */
	long calls;
};
static struct worker workers[MAX_THREADS];

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->switched_ms = -1;
	double prev = now_ms();
	while (!atomic_load(&stop)) {
		wf_global_quiescence(w->name, 1);
		int v = version();
		double t = now_ms();
		double trig = atomic_load(&t_trigger);
		if (trig >= 0 && prev >= trig - 1 && t - prev > w->max_gap_ms)
			w->max_gap_ms = t - prev;
		if (v == 2 && w->switched_ms < 0 && trig >= 0)
			w->switched_ms = t - trig;
		prev = t;
		w->calls++;
		/* A request's worth of work, then a short pause: a steady load that leaves the CPUs
		 * to the patcher, so the gaps measure the patch, not the scheduler. */
		for (volatile int i = 0; i < 2000; i++)
			;
		usleep(200);
	}
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The value of "key": in the last log line with "event":"<event>" (-1 if none). */
static double log_field(const char *path, const char *event, const char *key)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char line[16384], ev[64], k[64];
	snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
	snprintf(k, sizeof(k), "\"%s\":", key);
	double v = -1;
	while (fgets(line, sizeof(line), f)) {
		char *p;
		if (strstr(line, ev) && (p = strstr(line, k)))
			v = strtod(p + strlen(k), NULL);
	}
	fclose(f);
	return v;
}

static int run_one(int nthreads, double seconds)
{
	struct wf_configuration config = { 0 };
	wf_init(config);
	for (int i = 0; i < nthreads; i++) {
		snprintf(workers[i].name, sizeof(workers[i].name), "w%d", i);
		pthread_create(&workers[i].th, NULL, worker_main, &workers[i]);
	}
	usleep((useconds_t)(seconds * 1e6 / 2)); /* warm up */
	atomic_store(&t_trigger, now_ms());
	kill(getpid(), SIGPATCH);
	double deadline = now_ms() + 60000;
	for (;;) {
		int done = 0;
		for (int i = 0; i < nthreads; i++)
			done += workers[i].switched_ms >= 0;
		if (done == nthreads || now_ms() > deadline)
			break;
		usleep(1000);
	}
	usleep((useconds_t)(seconds * 1e6 / 2));
	atomic_store(&stop, true);
	double sw[MAX_THREADS], gaps[MAX_THREADS], all = 0;
	bool ok = true;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(workers[i].th, NULL);
		sw[i] = workers[i].switched_ms;
		gaps[i] = workers[i].max_gap_ms;
		ok &= sw[i] >= 0;
		if (sw[i] > all)
			all = sw[i];
	}
	qsort(sw, (size_t)nthreads, sizeof(double), cmp);
	qsort(gaps, (size_t)nthreads, sizeof(double), cmp);
	const char *log = getenv("WF_LOGFILE");
	const char *g = getenv("WF_GLOBAL");
	bool global = g && strcmp(g, "0");
	printf("{\"mode\":\"%s\",\"ok\":%s,\"threads\":%d,\"switch_min_ms\":%.3f,\"switch_median_ms\":%.3f,"
	       "\"switch_max_ms\":%.3f,\"all_switched_ms\":%.3f,\"stall_median_ms\":%.3f,\"stall_max_ms\":%.3f,"
	       "\"create_us\":%.1f,\"load_us\":%.1f,\"quiescence_ms\":%.3f,\"runtime_total_ms\":%.3f}\n",
	       global ? "global" : "local", ok ? "true" : "false", nthreads, sw[0], sw[nthreads / 2],
	       sw[nthreads - 1], all, gaps[nthreads / 2], gaps[nthreads - 1],
	       log ? log_field(log, "summary", "create_us") : -1, log ? log_field(log, "summary", "load_us") : -1,
	       log ? log_field(log, "summary", "quiescence_ms") : -1, log ? log_field(log, "summary", "total_ms") : -1);
	fflush(stdout);
	return ok ? 0 : 1;
}

/* Runs `self one` with the mode's environment; its JSON line comes back through a pipe. */
static int child(const char *self, const char *patch, bool global, const char *threads, const char *seconds,
		 char *out, size_t cap)
{
	int p[2];
	if (pipe(p))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		char log[256];
		snprintf(log, sizeof(log), "/tmp/wfbench-%s.jsonl", global ? "global" : "local");
		unlink(log);
		setenv("WF_LOGFILE", log, 1);
		setenv("WF_PATCH_QUEUE", patch, 1);
		setenv("WF_GLOBAL", global ? "1" : "0", 1);
		execl(self, self, "one", threads, seconds, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0;
	ssize_t r;
	while (len < cap - 1 && (r = read(p[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = 0;
	close(p[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static double field(const char *json, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = strstr(json, k);
	return p ? strtod(p + strlen(k), NULL) : -1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "one"))
		return run_one(argc > 2 ? atoi(argv[2]) : 8, argc > 3 ? atof(argv[3]) : 1);
	if (argc < 3 || strcmp(argv[1], "both")) {
		fprintf(stderr, "usage: bench both PATCH [THREADS] [SECONDS] | bench one [THREADS] [SECONDS]\n");
		return 2;
	}
	const char *threads = argc > 3 ? argv[3] : "8", *seconds = argc > 4 ? argv[4] : "1";
	if (atoi(threads) < 1 || atoi(threads) > MAX_THREADS) {
		fprintf(stderr, "bench: THREADS must be 1..%d\n", MAX_THREADS);
		return 2;
	}
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 2;
	self[n] = 0;
	char local[4096], global[4096];
	int rl = child(self, argv[2], false, threads, seconds, local, sizeof(local));
	int rg = child(self, argv[2], true, threads, seconds, global, sizeof(global));
	printf("%s%s", local, global);
	static const struct {
		const char *key, *label;
	} rows[] = {
		{ "switch_min_ms", "trigger -> thread runs new code, fastest (ms)" },
		{ "switch_median_ms", "trigger -> thread runs new code, median (ms)" },
		{ "switch_max_ms", "trigger -> thread runs new code, slowest (ms)" },
		{ "all_switched_ms", "trigger -> all threads switched (ms)" },
		{ "stall_median_ms", "longest gap between calls, median thread (ms)" },
		{ "stall_max_ms", "longest gap between calls, worst thread (ms)" },
		{ "create_us", "wf_create (us)" },
		{ "load_us", "patch load + relocation (us)" },
		{ "quiescence_ms", "time to global quiescence (ms)" },
		{ "runtime_total_ms", "runtime: trigger -> done (ms)" },
	};
	printf("\n%-48s %12s %12s\n", "libwfpatch benchmark", "local", "global");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		double l = field(local, rows[i].key), g = field(global, rows[i].key);
		char ls[32] = "-", gs[32] = "-";
		if (l >= 0)
			snprintf(ls, sizeof(ls), "%.3f", l);
		if (g >= 0)
			snprintf(gs, sizeof(gs), "%.3f", g);
		printf("%-48s %12s %12s\n", rows[i].label, ls, gs);
	}
	const char *res = getenv("WFVM_RESULTS");
	if (res) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/runtime-bench.json", res);
		FILE *f = fopen(path, "w");
		if (f) {
			fprintf(f, "{\"local\":%.*s,\"global\":%.*s}\n", (int)strcspn(local, "\n"), local,
				(int)strcspn(global, "\n"), global);
			fclose(f);
		}
	}
	return rl || rg;
}
