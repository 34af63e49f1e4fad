/* Patch v2: version() returns 2. Calls the target's static helper() (a local symbol, reached
 * by file and position) and adds one. */
extern int helper_ref(void) __asm__("\"__wfsym:1:helper:patchable.c\"");

int version_v2(void)
{
	return helper_ref() + 1;
}
