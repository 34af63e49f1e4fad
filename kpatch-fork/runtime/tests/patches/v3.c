/* Patch v3 (stacks on v2): version() returns 3. Uses libc functions the target never calls
 * (PLT-style trampolines), a string literal (.rodata) and, built with -fPIC, a GOT slot for
 * the target's global_zero. */
#include <stdio.h>
#include <stdlib.h>

extern volatile int global_zero;

int version_v3(void)
{
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", 3);
	return atoi(buf) + global_zero;
}
