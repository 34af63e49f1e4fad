// SPDX-License-Identifier: GPL-2.0
/*
 * KSM under generations: identical unpinned pages of a process with
 * generations (MADV_MERGEABLE) are merged by ksmd, which is forced to scan
 * fast through /sys/kernel/mm/ksm; the nine semantics hold while pages are
 * merged and un-merged again by writes (copy-on-write of a KSM page) from
 * any generation.
 */
#include "gen_feature.h"

#define KSM "/sys/kernel/mm/ksm/"

static long max_sharing;

/*
 * Wait for three full ksmd scans: the pass under way may have passed our
 * pages before they were written, the next records their checksums, the
 * third merges the pages whose checksum did not change.
 */
static void ksm_poke(struct feat *f)
{
	long start = feat_read_long(KSM "full_scans"), sharing;

	(void)f;
	for (int i = 0; i < 2000 && feat_read_long(KSM "full_scans") < start + 3; i++)
		usleep(5000);
	sharing = feat_read_long(KSM "pages_sharing");
	if (sharing > max_sharing)
		max_sharing = sharing;
}

int main(int argc, char **argv)
{
	struct feat f = { .name = "gen_ksm", .poke = ksm_poke };
	long sharing;

	if (argc > 2 && !strcmp(argv[1], "exec-child"))
		return feat_exec_child(f.name, argv[2]);
	if (access(KSM "run", F_OK)) {
		printf("gen_ksm: no %s (kernel without KSM)\n", KSM);
		return 1;
	}
	feat_init(&f, argc, argv);
	MUST(feat_write_file(KSM "sleep_millisecs", "1"));
	MUST(feat_write_file(KSM "pages_to_scan", "5000"));
	MUST(feat_write_file(KSM "run", "1"));
	f.len = 256 * PAGE;
	f.area = mmap(NULL, f.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f.area == MAP_FAILED)
		return 2;
	/* Marked mergeable from a generation; the pages are written from another. */
	MUST(wf_migrate(f.g2));
	MUST(madvise(f.area, f.len, MADV_MERGEABLE));
	MUST(wf_migrate(f.g1));
	feat_fill(&f, 0x40);
	MUST(wf_migrate(0));
	ksm_poke(&f);
	sharing = feat_read_long(KSM "pages_sharing");
	printf("gen_ksm: %ld pages sharing after the first scans\n", sharing);
	CHECK(sharing >= 200, "ksmd merged only %ld of 255 identical pages", sharing);
	MUST(wf_migrate(f.g2));
	CHECK(feat_verify(&f, 0x40, "merged") == 0, "merged pages read wrong in g2");
	MUST(wf_migrate(0));
	feat_check_all(&f, 3000);
	printf("gen_ksm: at most %ld pages sharing during the checks, %ld at the end\n", max_sharing,
	       feat_read_long(KSM "pages_sharing"));
	MUST(feat_write_file(KSM "run", "2"));	/* unmerge everything */
	CHECK(feat_verify(&f, 0x40, "unmerged") == 0, "content changed by unmerging");
	return wft_done("gen_ksm");
}
