// SPDX-License-Identifier: GPL-2.0
/*
 * NUMA balancing under generations (guest booted with numa=fake=2):
 * kernel.numa_balancing=1 with a fast scanner makes the process's base PTEs
 * prot_none behind its back; the hinting faults come from threads in any
 * generation.  The poke also migrates the area's pages to the other node
 * (move_pages), so the nine semantics are checked while pages move.
 */
#include "gen_feature.h"
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define MPOL_MF_MOVE (1 << 1)
#define SCHED_DBG "/sys/kernel/debug/sched/numa_balancing/"

static long moved;
static int target = 1;

static void numa_poke(struct feat *f)
{
	unsigned long n = feat_data_len(f) / PAGE;
	void **pages = calloc(n, sizeof(*pages));
	int *nodes = calloc(n, sizeof(int)), *status = calloc(n, sizeof(int));

	for (unsigned long i = 0; i < n; i++) {
		pages[i] = f->area + i * PAGE;
		nodes[i] = target;
	}
	if (syscall(SYS_move_pages, 0, n, pages, nodes, status, MPOL_MF_MOVE) == 0)
		for (unsigned long i = 0; i < n; i++)
			moved += status[i] == target;
	target ^= 1;
	/* Let the scanner turn some PTEs prot_none (scan period 10 ms). */
	usleep(30000);
	free(pages);
	free(nodes);
	free(status);
}

int main(int argc, char **argv)
{
	struct feat f = { .name = "gen_numa", .poke = numa_poke };
	long updates, faults;

	if (argc > 2 && !strcmp(argv[1], "exec-child"))
		return feat_exec_child(f.name, argv[2]);
	if (access("/sys/devices/system/node/node1", F_OK) ||
	    access("/proc/sys/kernel/numa_balancing", F_OK)) {
		printf("gen_numa: needs NUMA balancing and two nodes (boot with numa=fake=2)\n");
		return 1;
	}
	mkdir("/sys/kernel/debug", 0755);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	feat_write_file(SCHED_DBG "scan_delay_ms", "0");
	feat_write_file(SCHED_DBG "scan_period_min_ms", "10");
	feat_write_file(SCHED_DBG "scan_period_max_ms", "50");
	feat_write_file(SCHED_DBG "scan_size_mb", "64");
	MUST(feat_write_file("/proc/sys/kernel/numa_balancing", "1"));
	updates = feat_vmstat("numa_pte_updates");
	faults = feat_vmstat("numa_hint_faults");
	CHECK(updates >= 0 && faults >= 0, "no NUMA counters in /proc/vmstat (CONFIG_VM_EVENT_COUNTERS off?)");
	feat_init(&f, argc, argv);
	f.len = 1024 * PAGE;
	f.area = mmap(NULL, f.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f.area == MAP_FAILED)
		return 2;
	feat_check_all(&f, 5000);
	updates = feat_vmstat("numa_pte_updates") - updates;
	faults = feat_vmstat("numa_hint_faults") - faults;
	printf("gen_numa: %ld pages moved between nodes, %ld PTEs made prot_none, %ld hinting faults\n",
	       moved, updates, faults);
	CHECK(moved > 0, "move_pages moved nothing");
	CHECK(updates > 0 && faults > 0, "NUMA balancing never scanned the process (%ld/%ld)",
	      updates, faults);
	return wft_done("gen_numa");
}
