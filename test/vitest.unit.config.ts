/**
 * `npm run test:unit`: the fast inner loop — the suites that boot no guest and build no
 * package (the smallc fixture's make runs are seconds), in under a minute. test/README.md.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export const unitSuites: readonly string[] = [
  'test/imports.test.ts',
  'test/triage.test.ts',
  'test/wfbuild.test.ts',
  'test/build-env.test.ts',
  'test/after.test.ts',
  'test/rebuild.test.ts',
  'test/cli.test.ts',
  'test/corpus-driver.test.ts',
  'test/corpus-manifest.test.ts',
  'test/corpus-table.test.ts',
  'test/corpus-samba-prepare.test.ts',
  'test/corpus-copies.test.ts',
  'test/corpus-confirm-base.test.ts',
  'test/corpus-walk-confirm.test.ts',
  'test/corpus-loaded-by.test.ts',
  'test/corpus-confirm-module.test.ts',
  'test/live-latency.test.ts',
  'test/kernel-config.test.ts',
  'test/kernel-machine.test.ts',
];

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: [...unitSuites],
    testTimeout: 120_000,
    // These suites share no build cache (wfbuild.test.ts has its own), so two files may run at once.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
