// The generation suite's guest programs (kernel/tests/gen_*.c), shared by the debug-variant
// test (kernel-generations.test.ts) and the Debian-variant run (kernel-debian.test.ts).

/** Program and arguments, in run order (the benchmark is not a test). */
export function suitePrograms(stress: string): [name: string, args: string][] {
  return [
    ['gen_errno', '4'],
    ['gen_pinned', ''],
    ['gen_shared', ''],
    ['gen_mappings', ''],
    ['gen_threads', '1000'],
    ['gen_futex', '20000'],
    ['gen_forkexec', ''],
    ['gen_introspect', ''],
    ['gen_stress', stress],
    // The memory-management features of a distribution kernel (debug.config turns them on).
    ['gen_thp', ''],
    ['gen_ksm', ''],
    ['gen_numa', ''],
    ['gen_swap', ''],
    ['gen_uffd', ''],
    ['gen_memcg', ''],
  ];
}

/** gen_numa needs two NUMA nodes: a fake topology on the guest's command line. */
export const featureKernelArgs: readonly string[] = ['numa=fake=2'];
