/**
 * Issue #12's dpkg flow on the host, in global mode (the host kernel has no generations):
 * fixtures/hotfix/guest.sh run under `unshare --mount --net --pid` on an overlay of / with a
 * tmpfs upper (fixtures/hotfix/hostns.sh), so dpkg installs the enabled memcached and the
 * hot-fix .debs for real and nothing reaches the host. The checks are hotfix-prepare.ts's, the
 * same as in the guest (test/hotfix.test.ts) except the generations.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { fixtures, guestEnv, hotfixChecks, prepareHotfix, type Prepared } from './hotfix-prepare.ts';

let prepared: Prepared;
let results: string;

beforeAll(async () => {
  prepared = await prepareHotfix((l) => void process.stderr.write(`hotfix-host: ${l}\n`));
  results = join(prepared.scratch, 'results');
  const work = join(prepared.scratch, 'ns');
  await mkdir(work);
  const env = Object.entries(guestEnv(prepared, true)).map(([k, v]) => `${k}=${v}`);
  const r = await execa('unshare', ['--mount', '--net', '--pid', '--fork', join(fixtures, 'hostns.sh'), work, results, 'env', ...env, 'sh', join(fixtures, 'guest.sh')], {
    reject: false,
    all: true,
    timeout: 900_000,
  });
  expect(r.exitCode, r.all).toBe(0);
}, 3 * 3600_000);

afterAll(async () => {
  if (prepared) await rm(prepared.scratch, { recursive: true, force: true });
});

describe('hot-fix packages on the host (global mode, overlay root in a namespace)', () => {
  hotfixChecks(() => ({ prepared, results, mode: 'global' }));
});
