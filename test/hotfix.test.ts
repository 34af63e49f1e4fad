/**
 * Issue #12 end to end in the guest with a Debian userland (`wfbuild vm run --userland`, local
 * mode on the generations kernel): fixtures/hotfix/guest.sh installs the enabled memcached with
 * dpkg, runs it under memload, then the hot-fix .debs go in (a corrupt one, .1), up (.2) and out
 * (`dpkg -r`, after a restart that autoloads both); hotfix-prepare.ts builds everything and holds
 * the checks (the same as test/hotfix-host.test.ts, plus every thread in the new generation).
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runInVm } from '../pipeline/src/vm/run.ts';
import { fixtures, guestEnv, hotfixChecks, prepareHotfix, type Prepared } from './hotfix-prepare.ts';

let prepared: Prepared;
let results: string;

// Not yet in `npm test`: the guest run has not passed (dpkg over 9p under TCG takes minutes per
// package, and the overlay's EXDEV fix is unverified in the guest); issue #12 stays open for it.
const enabled = process.env.WFPATCH_GUEST_USERLAND === '1';
if (!enabled) console.log('hotfix (guest): skipped unless WFPATCH_GUEST_USERLAND=1 — the userland guest run has not passed yet (issue #12); test/hotfix-host.test.ts runs the same dpkg sequence on the host');

beforeAll(async () => {
  if (!enabled) return;
  const say = (l: string): void => void process.stderr.write(`hotfix: ${l}\n`);
  prepared = await prepareHotfix(say);
  results = join(prepared.scratch, 'results');
  say('guest run (userland over 9p, TCG; minutes)');
  const run = await runInVm({
    userland: true,
    program: join(fixtures, 'guest.sh'),
    memMiB: 2048,
    cpus: 2,
    timeoutSec: 2400,
    outDir: results,
    env: guestEnv(prepared, false),
    onConsole: (t) => process.stderr.write(t),
  });
  expect(run.kernelFailure).toBeNull();
  expect(run.timedOut).toBe(false);
  expect(run.exitCode, run.console.slice(-3000)).toBe(0);
}, 3 * 3600_000);

afterAll(async () => {
  if (prepared) await rm(prepared.scratch, { recursive: true, force: true });
});

describe.skipIf(!enabled)('hot-fix packages in a Debian guest (local mode)', () => {
  hotfixChecks(() => ({ prepared, results, mode: 'local' }));
});
