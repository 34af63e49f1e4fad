// SPDX-License-Identifier: GPL-2.0
/*
 * Reclaim and swap-out under generations: swap on zram (the guest has no
 * disk), memory pressure from a memory cgroup limit smaller than the area,
 * plus MADV_PAGEOUT as the poke.  The area is private anonymous memory; a
 * second run uses MAP_SHARED anonymous (shmem) pages.  Swapped-out pages
 * are faulted back in from any generation; the nine semantics hold.
 */
#include "gen_feature.h"
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#define CG "/sys/fs/cgroup/wfgen-swap"

static long max_swapped_kb;

static void swap_poke(struct feat *f)
{
	long kb;

	madvise(f->area, feat_data_len(f), MADV_PAGEOUT);
	kb = feat_smaps_kb(f->area, f->len, "Swap");
	if (kb > max_swapped_kb)
		max_swapped_kb = kb;
}

/* zram0 as a 256 MiB swap device: a version-1 swap header, then swapon. */
static int zram_swap(void)
{
	static unsigned char page[PAGE];
	const long pages = (256L << 20) / PAGE;
	int fd;

	if (feat_write_file("/sys/block/zram0/disksize", "256M"))
		return -1;
	fd = open("/dev/zram0", O_WRONLY);
	if (fd < 0)
		return -1;
	*(uint32_t *)(page + 1024) = 1;			/* version */
	*(uint32_t *)(page + 1028) = pages - 1;		/* last_page */
	memcpy(page + PAGE - 10, "SWAPSPACE2", 10);
	if (write(fd, page, PAGE) != PAGE) {
		close(fd);
		return -1;
	}
	close(fd);
	return swapon("/dev/zram0", 0);
}

static void run(struct feat *f, int flags, const char *what)
{
	long swapped;

	f->len = 24L << 20;
	f->shared = flags == MAP_SHARED;
	f->area = mmap(NULL, f->len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
	if (f->area == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	/* Filled from g1 under the cgroup's 16 MiB limit: reclaim swaps while it goes. */
	MUST(wf_migrate(f->g1));
	feat_fill(f, 0x40);
	MUST(wf_migrate(0));
	swapped = feat_smaps_kb(f->area, f->len, "Swap");
	printf("gen_swap (%s): %ld KiB of the area swapped out by the cgroup limit\n", what, swapped);
	CHECK(swapped > 0, "%s: the memory cgroup limit swapped nothing out", what);
	MUST(wf_migrate(f->g2));
	CHECK(feat_verify(f, 0x40, "swapped in") == 0, "%s: swapped-in pages wrong in g2", what);
	MUST(wf_migrate(0));
	feat_check_all(f, 3000);
	printf("gen_swap (%s): up to %ld KiB swapped out during the checks\n", what, max_swapped_kb);
	CHECK(max_swapped_kb > 0, "%s: MADV_PAGEOUT swapped nothing out", what);
	munmap(f->area, f->len);
	max_swapped_kb = 0;
}

int main(int argc, char **argv)
{
	struct feat f = { .name = "gen_swap", .poke = swap_poke };
	char pid[32];

	if (argc > 2 && !strcmp(argv[1], "exec-child"))
		return feat_exec_child(f.name, argv[2]);
	if (zram_swap()) {
		printf("gen_swap: cannot set up swap on /dev/zram0: %s\n", strerror(errno));
		return 1;
	}
	mkdir("/sys/fs/cgroup", 0755);
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	feat_write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	mkdir(CG, 0755);
	snprintf(pid, sizeof(pid), "%d", getpid());
	if (feat_write_file(CG "/memory.max", "16M") || feat_write_file(CG "/cgroup.procs", pid)) {
		printf("gen_swap: cannot limit memory in %s: %s\n", CG, strerror(errno));
		return 1;
	}
	feat_init(&f, argc, argv);
	run(&f, MAP_PRIVATE, "private");
	run(&f, MAP_SHARED, "shared");
	feat_write_file("/sys/fs/cgroup/cgroup.procs", pid);
	swapoff("/dev/zram0");
	return wft_done("gen_swap");
}
