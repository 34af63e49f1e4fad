// SPDX-License-Identifier: GPL-2.0
/*
 * userfaultfd under generations: an unpinned range registered for missing
 * faults (and write-protect faults where the kernel supports them on
 * anonymous memory) is filled by a handler thread with UFFDIO_COPY; threads
 * in generations 1 and 2 take the faults.  Because the range is one memory,
 * every page faults to the handler exactly once, whichever generation
 * touches it first; then the nine semantics are checked on it, with the
 * poke dropping pages (MADV_DONTNEED) so that faults reach the handler
 * again, and write-protecting the range.
 */
#include "gen_feature.h"
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

static int uffd;
static int have_wp;
static volatile long missing_faults, wp_faults;
static unsigned char fill_seed = 0x40;

static void *handler(void *arg)
{
	static unsigned char page[PAGE] __attribute__((aligned(4096)));
	struct feat *f = arg;

	(void)f;
	for (;;) {
		struct uffd_msg msg;
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };

		if (poll(&pfd, 1, -1) < 0 || read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		unsigned long addr = msg.arg.pagefault.address & ~(PAGE - 1);

		if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
			struct uffdio_writeprotect wp = {
				.range = { addr, PAGE }, .mode = 0,
			};

			wp_faults++;
			if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
				perror("UFFDIO_WRITEPROTECT");
			continue;
		}
		for (size_t o = 0; o < PAGE; o++)
			page[o] = feat_pat(fill_seed, o);
		struct uffdio_copy copy = { .dst = addr, .src = (unsigned long)page, .len = PAGE };

		missing_faults++;
		if (ioctl(uffd, UFFDIO_COPY, &copy) && errno != EEXIST)
			perror("UFFDIO_COPY");
	}
	return NULL;
}

/*
 * Drop some pages (they fault to the handler again, which refills them with
 * the pattern of seed 0x40, so only when that is what they hold) and
 * write-protect the whole range.
 */
static void uffd_poke(struct feat *f)
{
	if (!feat_in_stress && feat_holds(f, fill_seed))
		MUST(madvise(f->area, 8 * PAGE, MADV_DONTNEED));
	if (have_wp) {
		struct uffdio_writeprotect wp = {
			.range = { (unsigned long)f->area, feat_data_len(f) },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};

		MUST(ioctl(uffd, UFFDIO_WRITEPROTECT, &wp));
	}
}

int main(int argc, char **argv)
{
	struct feat f = { .name = "gen_uffd", .poke = uffd_poke };
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	pthread_t th;
	const int n = 512;
	long bad = 0;

	if (argc > 2 && !strcmp(argv[1], "exec-child"))
		return feat_exec_child(f.name, argv[2]);
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0) {
		printf("gen_uffd: userfaultfd: %s\n", strerror(errno));
		return 1;
	}
	MUST(ioctl(uffd, UFFDIO_API, &api));
	have_wp = !!(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	feat_init(&f, argc, argv);
	f.len = n * PAGE;
	f.area = mmap(NULL, f.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f.area == MAP_FAILED)
		return 2;
	/* Only the data pages: the futex page must not wait on the handler. */
	reg = (struct uffdio_register){
		.range = { (unsigned long)f.area, feat_data_len(&f) },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (have_wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	MUST(ioctl(uffd, UFFDIO_REGISTER, &reg));
	pthread_create(&th, NULL, handler, &f);

	/* Reads from g1 (even pages) and g2 (odd), then every page from gen 0. */
	MUST(wf_migrate(f.g1));
	for (int i = 0; i < n - 1; i += 2)
		bad += f.area[i * PAGE + 5] != feat_pat(0x40, 5);
	MUST(wf_migrate(f.g2));
	for (int i = 1; i < n - 1; i += 2)
		bad += f.area[i * PAGE + 5] != feat_pat(0x40, 5);
	MUST(wf_migrate(0));
	bad += feat_verify(&f, 0x40, "filled by the handler") != 0;
	MUST(wf_migrate(f.g1));
	bad += feat_verify(&f, 0x40, "filled by the handler, g1") != 0;
	MUST(wf_migrate(0));
	printf("gen_uffd: %ld missing faults for %d pages (write-protect faults %s)\n",
	       missing_faults, n - 1, have_wp ? "supported" : "not supported");
	CHECK(bad == 0, "pages filled by the handler read wrong");
	CHECK(missing_faults == n - 1, "%ld missing faults for %d pages: one memory faults once per page",
	      missing_faults, n - 1);
	feat_check_all(&f, 3000);
	printf("gen_uffd: %ld missing and %ld write-protect faults in all\n", missing_faults, wp_faults);
	CHECK(missing_faults > n - 1, "MADV_DONTNEED'd pages never faulted to the handler again");
	CHECK(!have_wp || wp_faults > 0, "no write-protect fault reached the handler");
	return wft_done("gen_uffd");
}
