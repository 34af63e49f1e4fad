/* The functions the test patches replace. A separate translation unit, noipa, so callers in
 * wftest.c really call them through their entries. */
#include <execinfo.h>
#include <time.h>

#include "patchable.h"

volatile int global_zero;

/* A static function: patches reach it as __wfsym:1:helper:patchable.c. */
static __attribute__((noipa, used)) int helper(void)
{
	return 1;
}

__attribute__((noipa)) int version(void)
{
	return helper() + global_zero;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Busy for `ms` milliseconds without a quiescence point, then return the version this body
 * belongs to. */
__attribute__((noipa)) int slow_version(int ms)
{
	double end = now_s() + ms / 1000.0;
	volatile unsigned long spin = 0;
	while (now_s() < end)
		spin++;
	return 1;
}

/* A long computation: `ms` milliseconds of work between two quiescence points. */
__attribute__((noipa)) unsigned long long_compute(int ms)
{
	double end = now_s() + ms / 1000.0;
	unsigned long x = 0;
	while (now_s() < end)
		for (int i = 0; i < 1000; i++)
			x = x * 6364136223846793005ul + 1442695040888963407ul;
	return x;
}

/* How many frames the unwinder finds from here: through a patched copy of this function it
 * needs the patch's .eh_frame registered. */
__attribute__((noipa)) int unwind_depth(void)
{
	void *frames[64];
	int n = backtrace(frames, 64);
	return n;
}

/* Three bytes (xor; ret): a jump needs the alignment padding after it. */
__attribute__((noipa)) int tiny(void)
{
	return 0;
}
