// Seed: C++ exceptions, a template instance (COMDAT), a vtable.
#include <stdexcept>
struct Base { virtual ~Base() {} virtual int f(int x) { return x; } };
template <class T> __attribute__((noinline)) T sq(T t) { return t * t; }
int run(int x)
{
	try {
		if (x < 0) throw std::runtime_error("neg");
		return sq(x) + Base().f(x);
	} catch (const std::exception &) {
		return -1;
	}
}
