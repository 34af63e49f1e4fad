/* A shared library the test program uses; patch lib11 replaces lib_version in it. */
__attribute__((noipa)) int lib_version(void)
{
	return 11;
}
