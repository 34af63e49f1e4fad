/** The guest-VM harness and the kernel build, for test suites and other pipeline stages. */
export { runInVm, checkRunOptions, qemuBinary, type RunInVmOptions, type RunInVmResult } from './run.ts';
export { detectKernelFailure, consoleTail } from './console.ts';
export { guestResultsDir } from './init-script.ts';
export type { GuestFile } from './initramfs.ts';
export * from '../kernel/index.ts';
