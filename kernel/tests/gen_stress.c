// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 8: stress.  N threads (default 64) migrate between three
 * generations M times each (default 10,000), writing a sequence number and
 * a checksummed block after every move and checking the previous ones,
 * while mapper threads mmap/munmap/mprotect areas, fault pages in one
 * generation and verify checksums in another.  No write may be lost; the
 * kernel must not splat (the harness checks the console) or hang (alarm).
 * Usage: gen_stress [iterations] [threads]
 */
#include "wftest.h"
#include <pthread.h>
#include <stdatomic.h>

#define MAPPERS 4
#define BLOCK 256

static int gens[3];
static long iters = 10000;
static int nthreads = 64;
static volatile long *seq;		/* one per migrator */
static uint32_t (*blocks)[BLOCK];	/* one per migrator */
static atomic_long errors, maps_done;
static atomic_int running;

static uint32_t mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352d;
	x ^= x >> 15;
	return x;
}

static void *migrator(void *arg)
{
	long i = (long)arg;
	uint32_t *b = blocks[i];

	for (long k = 1; k <= iters; k++) {
		if (wf_migrate(gens[(i + k) % 3]) < 0) {
			atomic_fetch_add(&errors, 1);
			break;
		}
		if (seq[i] != k - 1)
			atomic_fetch_add(&errors, 1);
		if (k > 1 && b[(k - 1) % BLOCK] != mix(i * 1000003 + k - 1))
			atomic_fetch_add(&errors, 1);
		seq[i] = k;
		b[k % BLOCK] = mix(i * 1000003 + k);
	}
	wf_migrate(0);
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static void *mapper(void *arg)
{
	long i = (long)arg;
	unsigned r = i;

	while (atomic_load(&running) > 0) {
		size_t pages = 1 + (r = mix(r)) % 32;
		uint32_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED) {
			atomic_fetch_add(&errors, 1);
			break;
		}
		wf_migrate(gens[r % 3]);
		for (size_t p = 0; p < pages; p++)
			m[p * PAGE / 4 + (r & 15)] = mix(r + p);
		wf_migrate(gens[(r + 1) % 3]);
		for (size_t p = 0; p < pages; p++)
			if (m[p * PAGE / 4 + (r & 15)] != mix(r + p))
				atomic_fetch_add(&errors, 1);
		if (r & 1) {
			mprotect(m, pages * PAGE, PROT_READ);
			wf_migrate(gens[(r + 2) % 3]);
			if (m[r & 15] != mix(r))
				atomic_fetch_add(&errors, 1);
			mprotect(m, pages * PAGE, PROT_READ | PROT_WRITE);
		}
		if (r & 2)
			madvise(m, pages * PAGE, MADV_DONTNEED);
		munmap(m, pages * PAGE);
		atomic_fetch_add(&maps_done, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uintptr_t ts, te;

	if (argc > 1)
		iters = atol(argv[1]);
	if (argc > 2)
		nthreads = atoi(argv[2]);
	alarm(1200);
	pthread_t *th = calloc(nthreads + MAPPERS, sizeof(*th));

	seq = calloc(nthreads, sizeof(*seq));
	blocks = calloc(nthreads, sizeof(*blocks));
	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	gens[0] = 0;
	gens[1] = MUST(wf_create());
	gens[2] = MUST(wf_create());
	atomic_store(&running, nthreads);
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, migrator, (void *)i))
			return 2;
	for (long i = 0; i < MAPPERS; i++)
		pthread_create(&th[nthreads + i], NULL, mapper, (void *)i);
	for (int i = 0; i < nthreads + MAPPERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < nthreads; i++)
		CHECK(seq[i] == iters, "thread %d seq %ld", i, seq[i]);
	CHECK(atomic_load(&maps_done) > 0, "no mapping change ran");
	CHECK(atomic_load(&errors) == 0, "%ld lost or wrong writes",
	      atomic_load(&errors));
	printf("%d threads x %ld migrations, %ld map cycles\n", nthreads, iters,
	       atomic_load(&maps_done));
	return wft_done("gen_stress");
}
