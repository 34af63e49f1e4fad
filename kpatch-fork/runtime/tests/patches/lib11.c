/* Patch lib11: lib_version() in libwftarget.so returns 11. */
int lib_version_v11(void)
{
	return 11;
}
