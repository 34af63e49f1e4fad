/**
 * The C main of the long-running programs the apply tests patch: one worker thread that, 400
 * times 10 ms apart, passes a global quiescence point, calls the function under test and prints
 * its answer; when the patch is done it stops a few lines later, so the output shows the old code
 * and then the new. The tests differ only in what the worker calls and prints.
 */
export interface WorkerProgram {
  /** Lines after the standard includes (headers, prototypes of the function under test). */
  readonly preamble: string;
  /** The buffer the call fills. */
  readonly bufBytes: number;
  /** The statements of one step, using `i` and `buf` (the call, then a printf). */
  readonly step: string;
  /** How many lines after the patch the worker still prints. */
  readonly linesAfterPatch: number;
}

export function workerProgram(p: WorkerProgram): string {
  return `#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include "wfpatch.h"
${p.preamble}
static volatile int cur, stop_at = 400;
static void *worker(void *arg)
{
	char buf[${p.bufBytes}];
	(void)arg;
	for (int i = 0; i < stop_at; i++) {
		cur = i;
		wf_global_quiescence("worker", 1);
${p.step.replace(/^/gm, '\t\t')}
		fflush(stdout);
		usleep(10000);
	}
	return NULL;
}
static void done(void) { stop_at = cur + ${p.linesAfterPatch}; }
int main(void)
{
	struct wf_configuration config = { 0 };
	pthread_t t;
	config.patch_done = done;
	wf_init(config);
	pthread_create(&t, NULL, worker, NULL);
	pthread_join(t, NULL);
	return 0;
}
`;
}
