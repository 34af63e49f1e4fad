/* Patch slow2: slow_version() returns 2 at once. */
int slow_version_v2(int ms)
{
	(void)ms;
	return 2;
}
