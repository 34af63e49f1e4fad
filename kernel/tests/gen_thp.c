// SPDX-License-Identifier: GPL-2.0
/*
 * Transparent huge pages under generations: unpinned memory backed by huge
 * pages (MADV_HUGEPAGE in "madvise" mode, then plain memory in "always"
 * mode) keeps the nine semantics while threads migrate and the huge pages
 * are split (mprotect of one page) and collapsed again (MADV_COLLAPSE,
 * khugepaged).  Generations other than 0 map the huge pages 4 KiB at a
 * time; generation 0 keeps them huge (AnonHugePages in smaps).
 */
#include "gen_feature.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HPAGE (2UL << 20)
#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"

static long collapses;

/*
 * Split the huge PMDs, then collapse them again.  Toggling MADV_DONTFORK on one
 * page splits the VMA and so the huge PMD around it, and merges the VMA back,
 * without ever taking write access away from threads that write the area.
 */
static void thp_poke(struct feat *f)
{
	MUST(madvise(f->area + HPAGE + PAGE, PAGE, MADV_DONTFORK));
	MUST(madvise(f->area + HPAGE + PAGE, PAGE, MADV_DOFORK));
	if (madvise(f->area, f->len, MADV_COLLAPSE) == 0)
		collapses++;
}

static unsigned char *huge_area(size_t len, int advise)
{
	unsigned char *raw = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *p;

	if (raw == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	p = (unsigned char *)(((uintptr_t)raw + HPAGE - 1) & ~(HPAGE - 1));
	if (advise)
		MUST(madvise(p, len, MADV_HUGEPAGE));
	return p;
}

static void run(const char *mode, int advise, struct feat *f)
{
	long huge;

	CHECK(feat_write_file(THP_DIR "enabled", mode) == 0, "cannot set THP mode %s", mode);
	f->len = 8 * HPAGE;
	f->area = huge_area(f->len, advise);
	/* First touch from g1: the huge page fault happens on behalf of a generation. */
	MUST(wf_migrate(f->g1));
	feat_fill(f, 0x40);
	MUST(wf_migrate(0));
	huge = feat_smaps_kb(f->area, f->len, "AnonHugePages");
	printf("gen_thp (%s): %ld KiB AnonHugePages after a first touch from g1\n", mode, huge);
	CHECK(huge >= 2048, "%s: no huge page was used (AnonHugePages %ld KiB)", mode, huge);
	feat_check_all(f, 3000);
	huge = feat_smaps_kb(f->area, f->len, "AnonHugePages");
	printf("gen_thp (%s): %ld KiB AnonHugePages at the end, %ld collapses\n", mode, huge, collapses);
}

/* The bracketed word of "always [madvise] never", to restore it at the end. */
static void mode_now(char *mode, size_t len)
{
	char buf[128] = "", *a, *b;
	int fd = open(THP_DIR "enabled", O_RDONLY);

	*mode = 0;
	if (fd < 0)
		return;
	if (read(fd, buf, sizeof(buf) - 1) > 0 && (a = strchr(buf, '[')) && (b = strchr(a, ']'))) {
		*b = 0;
		snprintf(mode, len, "%s", a + 1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct feat f = { .name = "gen_thp", .poke = thp_poke };
	char mode[32];

	if (argc > 2 && !strcmp(argv[1], "exec-child"))
		return feat_exec_child(f.name, argv[2]);
	if (access(THP_DIR "enabled", F_OK)) {
		printf("gen_thp: no %s (kernel without THP)\n", THP_DIR);
		return 1;
	}
	mode_now(mode, sizeof(mode));
	feat_write_file(THP_DIR "khugepaged/scan_sleep_millisecs", "10");
	feat_write_file(THP_DIR "khugepaged/alloc_sleep_millisecs", "10");
	feat_write_file(THP_DIR "defrag", "always");
	feat_init(&f, argc, argv);
	run("madvise", 1, &f);
	run("always", 0, &f);
	if (*mode)
		feat_write_file(THP_DIR "enabled", mode);
	return wft_done("gen_thp");
}
