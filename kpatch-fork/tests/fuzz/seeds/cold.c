/* Seed: a .cold split and a .part clone. */
#include <stdio.h>
extern int g;
static void __attribute__((noinline, cold)) complain(int v) { fprintf(stderr, "bad %d\n", v); }
int scan(int *v, int n)
{
	int s = 0;
	for (int i = 0; i < n; i++) {
		if (v[i] < 0) { complain(v[i]); g++; continue; }
		s += v[i] * g;
	}
	return s;
}
