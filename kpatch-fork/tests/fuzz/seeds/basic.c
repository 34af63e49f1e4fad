/* Seed for the create-diff-object fuzz run: strings, a jump table, statics, a clone. */
#include <stdio.h>
int glob = 3;
static int counter;
static const char *names[] = { "zero", "one", "two" };
extern int a(int), b(int), c(int), d(int);
static int __attribute__((noinline)) helper(int x) { static int calls; calls++; return x * 3 + calls + counter; }
int sw(int x)
{
	switch (x) {
	case 0: return a(x);
	case 1: return b(x) + 1;
	case 2: return c(x) * 2;
	case 3: return d(x) - 3;
	case 4: return printf("%s: %s\n", __func__, names[x % 3]);
	default: return helper(x);
	}
}
