#ifndef PATCHABLE_H
#define PATCHABLE_H
extern volatile int global_zero;
int version(void);
int slow_version(int ms);
unsigned long long_compute(int ms);
int lib_version(void);
int unwind_depth(void);
int tiny(void);
#endif
