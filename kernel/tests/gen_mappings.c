// SPDX-License-Identifier: GPL-2.0
/*
 * Semantics 3: mapping changes made in any generation take effect in all
 * of them: mmap, munmap, mprotect, mremap, brk, madvise(MADV_DONTNEED),
 * mlock.  Faults are caught with a SIGSEGV handler and siglongjmp.
 */
#include "wftest.h"
#include <setjmp.h>
#include <signal.h>

static sigjmp_buf jb;
static volatile int faults;

static void on_segv(int sig)
{
	(void)sig;
	faults++;
	siglongjmp(jb, 1);
}

/* 1 if reading *p faults in the calling thread's generation. */
static int read_faults(volatile char *p)
{
	if (sigsetjmp(jb, 1))
		return 1;
	(void)*p;
	return 0;
}

static int write_faults(volatile char *p)
{
	if (sigsetjmp(jb, 1))
		return 1;
	*p = 1;
	return 0;
}

static long vmlck(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmLck:", 6))
			v = atol(line + 6);
	if (f)
		fclose(f);
	return v;
}

int main(void)
{
	uintptr_t ts, te;
	int gs[3];

	signal(SIGSEGV, on_segv);
	wft_text_range(&ts, &te);
	MUST(wf_pin((void *)ts, te - ts));
	gs[0] = 0;
	gs[1] = MUST(wf_create());
	gs[2] = MUST(wf_create());

	for (int a = 0; a < 3; a++) {
		int b = (a + 1) % 3, c = (a + 2) % 3;
		int ga = gs[a], gb = gs[b], gc = gs[c];

		/* mmap in a, used in b and c (b touches first). */
		MUST(wf_migrate(ga));
		char *m = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(m != MAP_FAILED, "mmap");
		MUST(wf_migrate(gb));
		for (int i = 0; i < 16; i++)
			m[i * PAGE] = 'b';
		MUST(wf_migrate(gc));
		CHECK(m[3 * PAGE] == 'b', "mmap from %d used in %d seen in %d",
		      ga, gb, gc);

		/* mprotect read-only in a: writes fault in b and c. */
		MUST(wf_migrate(ga));
		MUST(mprotect(m, 4 * PAGE, PROT_READ));
		MUST(wf_migrate(gb));
		CHECK(write_faults(m + PAGE), "mprotect from %d: write in %d",
		      ga, gb);
		CHECK(!read_faults(m + PAGE), "still readable in %d", gb);
		MUST(wf_migrate(gc));
		CHECK(write_faults(m), "mprotect from %d: write in %d", ga, gc);
		MUST(mprotect(m, 4 * PAGE, PROT_READ | PROT_WRITE));
		MUST(wf_migrate(gb));
		CHECK(!write_faults(m), "mprotect back from %d: write in %d",
		      gc, gb);

		/* madvise(DONTNEED) in a: b and c read zeroes. */
		MUST(wf_migrate(ga));
		MUST(madvise(m + 4 * PAGE, 2 * PAGE, MADV_DONTNEED));
		MUST(wf_migrate(gb));
		CHECK(m[4 * PAGE] == 0 && m[5 * PAGE] == 0,
		      "DONTNEED from %d seen in %d", ga, gb);
		m[4 * PAGE] = 'x';
		MUST(wf_migrate(gc));
		CHECK(m[4 * PAGE] == 'x', "refilled page shared");

		/* mremap in b: new address valid everywhere, old one gone. */
		MUST(wf_migrate(gb));
		char *r = mremap(m, 16 * PAGE, 32 * PAGE, MREMAP_MAYMOVE);
		CHECK(r != MAP_FAILED, "mremap");
		MUST(wf_migrate(gc));
		CHECK(r[3 * PAGE] == 'b' && r[4 * PAGE] == 'x',
		      "mremap from %d seen in %d", gb, gc);
		r[20 * PAGE] = 'g';
		MUST(wf_migrate(ga));
		CHECK(r[20 * PAGE] == 'g', "grown part shared");
		if (r != m)
			CHECK(read_faults(m), "old address unmapped in %d", ga);

		/* munmap in c: faults in a and b. */
		MUST(wf_migrate(gc));
		MUST(munmap(r, 32 * PAGE));
		MUST(wf_migrate(ga));
		CHECK(read_faults(r + 3 * PAGE), "munmap from %d: read in %d",
		      gc, ga);
		MUST(wf_migrate(gb));
		CHECK(read_faults(r + 20 * PAGE), "munmap from %d: read in %d",
		      gc, gb);

		/* brk: grow in a, use in b, shrink in c, fault in a. */
		MUST(wf_migrate(ga));
		char *old = sbrk(0);
		CHECK(sbrk(8 * PAGE) != (void *)-1, "sbrk grow");
		MUST(wf_migrate(gb));
		old[5 * PAGE] = 'k';
		MUST(wf_migrate(gc));
		CHECK(old[5 * PAGE] == 'k', "brk area shared");
		CHECK(sbrk(-8 * PAGE) != (void *)-1, "sbrk shrink");
		MUST(wf_migrate(ga));
		CHECK(read_faults(old + 5 * PAGE), "brk shrink from %d seen in %d",
		      gc, ga);

		/* mmap MAP_FIXED over an area another generation has cached. */
		char *f = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		memset(f, 'o', 4 * PAGE);
		MUST(wf_migrate(gb));
		CHECK(f[PAGE] == 'o', "cached in %d", gb);
		MUST(wf_migrate(gc));
		CHECK(mmap(f, 4 * PAGE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == f,
		      "MAP_FIXED");
		MUST(wf_migrate(gb));
		CHECK(f[PAGE] == 0, "MAP_FIXED from %d seen in %d", gc, gb);
		munmap(f, 4 * PAGE);

		/* mlock in a counts for the process. */
		MUST(wf_migrate(ga));
		char *l = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		long before = vmlck();
		CHECK(mlock(l, 4 * PAGE) == 0, "mlock");
		MUST(wf_migrate(gb));
		CHECK(vmlck() == before + 16, "VmLck %ld -> %ld", before, vmlck());
		l[PAGE] = 'l';
		MUST(wf_migrate(gc));
		CHECK(l[PAGE] == 'l', "mlocked page shared");
		CHECK(munlock(l, 4 * PAGE) == 0, "munlock");
		munmap(l, 4 * PAGE);
	}
	MUST(wf_migrate(0));
	printf("caught %d expected faults\n", faults);
	return wft_done("gen_mappings");
}
