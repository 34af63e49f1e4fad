/* The patch the loader's mutation run starts from (tests/fuzzload.c is its target): a local
 * symbol by file and position, a libc call through a trampoline, a string, a global. */
#include <stdio.h>

extern int helper_ref(void) __asm__("\"__wfsym:1:fuzz_helper:fuzzload.c\"");
extern int fuzz_global;

int fuzz_victim_v2(char *buf, int len)
{
	return snprintf(buf, (size_t)len, "%d", helper_ref() + fuzz_global);
}
