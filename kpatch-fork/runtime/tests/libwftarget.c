/* A shared library the test program uses; patch lib11 replaces lib_version in it. lib_base is
 * an interposable global, so -fPIC code reaches it through the GOT (a loader-made GOT slot in
 * the patch); lib_hidden has hidden visibility, so the linker makes it a local of the library
 * (under an empty STT_FILE) and the patch names it __wfsym:1:lib_hidden: */
int lib_base = 10;
__attribute__((visibility("hidden"))) int lib_hidden;

__attribute__((noipa)) int lib_version(void)
{
	return lib_base + lib_hidden;
}
