/* A shared library the test program uses; patch lib11 replaces lib_version in it. lib_base is
 * an interposable global, so -fPIC code reaches it through the GOT (a loader-made GOT slot in
 * the patch). */
int lib_base = 10;

__attribute__((noipa)) int lib_version(void)
{
	return lib_base;
}
