// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 1: pinned ranges diverge between generations, including code.
 * The executable's text and one anonymous page are pinned; after
 * wf_create a write in one generation is invisible in the others, and a
 * function whose first bytes are rewritten in generation 1 keeps its old
 * result in generation 0 (also in a thread that stays in generation 0).
 */
#include "wftest.h"
#include <pthread.h>
#include <stdatomic.h>

__attribute__((noinline, noipa, aligned(64))) int answer(void)
{
	return 42;
}

static int (*volatile answer_ptr)(void) = answer;
static atomic_int stop;
static atomic_long wrong;

/* mov $43, %eax; ret */
static const unsigned char patch43[] = { 0xb8, 0x2b, 0, 0, 0, 0xc3 };
/* mov $44, %eax; ret */
static const unsigned char patch44[] = { 0xb8, 0x2c, 0, 0, 0, 0xc3 };

static void *gen0_caller(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		if (answer_ptr() != 42)
			atomic_fetch_add(&wrong, 1);
	return NULL;
}

int main(void)
{
	uintptr_t ts, te;
	unsigned char *pin;
	pthread_t th;
	int g1, g2;

	wft_text_range(&ts, &te);
	pin = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pin == MAP_FAILED)
		return 2;
	memset(pin, 'a', PAGE);

	MUST(wf_pin((void *)ts, te - ts));
	MUST(wf_pin(pin, PAGE));
	g1 = MUST(wf_create());
	CHECK(g1 > 0, "id %d", g1);
	CHECK(wf_current() == 0, "current %d", wf_current());

	pthread_create(&th, NULL, gen0_caller, NULL);

	/* Pinned data: write in 1, invisible in 0. */
	CHECK(wf_migrate(g1) == 0, "migrate returned previous id");
	CHECK(wf_current() == g1, "now in %d", wf_current());
	CHECK(pin[100] == 'a', "gen1 sees the snapshot");
	memset(pin, 'b', PAGE);
	CHECK(pin[100] == 'b', "gen1 sees its write");
	CHECK(wf_migrate(0) == g1, "previous id");
	CHECK(pin[100] == 'a', "gen0 still sees 'a', got %c", pin[100]);
	pin[5] = 'z';
	MUST(wf_migrate(g1));
	CHECK(pin[5] == 'b', "gen1 does not see gen0's write, got %c", pin[5]);

	/* Pinned code: rewrite answer() in generation 1. */
	uintptr_t fpage = (uintptr_t)answer & ~(PAGE - 1);

	MUST(mprotect((void *)fpage, 2 * PAGE,
		      PROT_READ | PROT_WRITE | PROT_EXEC));
	memcpy((void *)answer, patch43, sizeof(patch43));
	CHECK(answer_ptr() == 43, "gen1 runs the new code");
	MUST(wf_migrate(0));
	CHECK(answer_ptr() == 42, "gen0 runs the old code, got %d",
	      answer_ptr());
	CHECK(memcmp((void *)answer, patch43, sizeof(patch43)) != 0,
	      "gen0 text bytes unchanged");

	/* A generation created from generation 1 starts with 1's view. */
	MUST(wf_migrate(g1));
	g2 = MUST(wf_create());
	MUST(wf_migrate(g2));
	CHECK(answer_ptr() == 43, "gen2 cloned from gen1 runs 43, got %d",
	      answer_ptr());
	CHECK(pin[100] == 'b', "gen2 cloned gen1's data");
	memcpy((void *)answer, patch44, sizeof(patch44));
	CHECK(answer_ptr() == 44, "gen2 patched again");
	MUST(wf_migrate(g1));
	CHECK(answer_ptr() == 43, "gen1 keeps 43, got %d", answer_ptr());
	MUST(wf_migrate(0));
	CHECK(answer_ptr() == 42, "gen0 keeps 42, got %d", answer_ptr());

	usleep(200000);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	CHECK(atomic_load(&wrong) == 0,
	      "gen0 thread saw a wrong answer %ld times", atomic_load(&wrong));

	/* Write in gen 0's text (COW of the file page) stays in gen 0. */
	memcpy((void *)answer, patch44, sizeof(patch44));
	CHECK(answer_ptr() == 44, "gen0 patched");
	MUST(wf_migrate(g1));
	CHECK(answer_ptr() == 43, "gen1 unaffected by gen0's patch");
	MUST(wf_migrate(0));
	memcpy((void *)answer, "\xb8\x2a\0\0\0\xc3", 6);	/* back to 42 */

	MUST(wf_delete(g1));
	MUST(wf_delete(g2));
	return wft_done("gen_pinned");
}
