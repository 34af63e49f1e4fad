// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 6: private futexes work across generations.  A 20,000-round
 * condition-variable ping-pong between a thread in generation 0 and one in
 * generation 1, a mutex hammered from three generations and a barrier
 * whose threads sit in different generations: no deadlock (alarm), no lost
 * wake-up, no lost increment.
 * Usage: gen_futex [rounds]
 */
#include "wftest.h"
#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn;		/* 0: ping's turn, 1: pong's */
static long rounds = 20000;
static long counter;
static int gens[3];
static pthread_barrier_t bar;

static void *pong(void *arg)
{
	MUST(wf_migrate((int)(long)arg));
	for (long i = 0; i < rounds; i++) {
		pthread_mutex_lock(&mu);
		while (turn != 1)
			pthread_cond_wait(&cv, &mu);
		turn = 0;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void *hammer(void *arg)
{
	int idx = (int)(long)arg;

	MUST(wf_migrate(gens[idx % 3]));
	for (int r = 0; r < 50; r++) {
		pthread_barrier_wait(&bar);
		for (int i = 0; i < 200; i++) {
			pthread_mutex_lock(&mu);
			counter++;
			pthread_mutex_unlock(&mu);
		}
		/* Hop generations between barrier rounds. */
		MUST(wf_migrate(gens[(idx + r) % 3]));
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uintptr_t ts, te;
	pthread_t th[6];

	if (argc > 1)
		rounds = atol(argv[1]);
	alarm(600);	/* a deadlock kills us with SIGALRM */
	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	gens[0] = 0;
	gens[1] = MUST(wf_create());
	gens[2] = MUST(wf_create());

	pthread_create(&th[0], NULL, pong, (void *)(long)gens[1]);
	for (long i = 0; i < rounds; i++) {
		pthread_mutex_lock(&mu);
		while (turn != 0)
			pthread_cond_wait(&cv, &mu);
		turn = 1;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&mu);
	}
	pthread_join(th[0], NULL);
	printf("ping-pong: %ld rounds\n", rounds);

	pthread_barrier_init(&bar, NULL, 6);
	for (long i = 0; i < 6; i++)
		pthread_create(&th[i], NULL, hammer, (void *)i);
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	CHECK(counter == 6L * 50 * 200, "counter %ld", counter);
	return wft_done("gen_futex");
}
