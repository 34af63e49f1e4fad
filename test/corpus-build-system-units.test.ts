/**
 * Corpus units that change the build system (corpus/unit-tree-build.ts), on a small Debian
 * package (test/fixtures/build-system-units/): greetd takes its flags from Makefile.in and
 * configure, its debian/rules runs configure once behind a stamp (as apache2's do) and
 * dh_autoreconf regenerates the shipped, hand-written `configure`. The old way — re-running the
 * build command on a copy of the built tree — measured the -D change as "no compiled code"
 * (configure did not run again) and failed the `configure` change (it does not apply to the
 * regenerated file). Real builds through the compiler wrapper, create-diff-object, wfpatch-ctl.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyUnit } from '../pipeline/src/corpus/classify-unit.ts';
import { ensureWfpatchCtl } from '../pipeline/src/corpus/confirm.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';

const fixture = join(import.meta.dirname, 'fixtures', 'build-system-units');
const services = { longRunning: ['^greetd$'], programs: [], note: 'the fixture server' };

describe('build-system units measured on their own tree, built from scratch (real Debian builds)', () => {
  let root: string;
  let tree: string;
  beforeAll(async () => {
    await ensureCreateDiffObject();
    await ensureWfpatchCtl();
    root = await mkdtemp(join(tmpdir(), 'build-system-units-'));
    tree = join(root, 'tree');
    await cp(join(fixture, 'tree'), tree, { recursive: true });
    return () => rm(root, { recursive: true, force: true });
  });
  const classify = (patch: string) => classifyUnit({ patchFile: join(fixture, 'patches', patch), tree, buildCmd: null, services });

  it('a Makefile.in change of a -D flag changes the compiled code: judged as usual (kpatch-able, confirmed in the binary)', { timeout: 900_000 }, async () => {
    const v = await classify('raise-greeting-limit.patch');
    expect(v, JSON.stringify(v)).toMatchObject({ verdict: 'kpatchable', originalBuildFailed: false });
    expect(v.objects).toBeGreaterThanOrEqual(1);
    expect(v.confirmation).toMatchObject({ confirmed: true, binaries: ['greetd'] });
  });

  it('a change to the generated configure, which the build regenerates, is measured on the tree it applies to', { timeout: 900_000 }, async () => {
    const v = await classify('default-port.patch');
    expect(v, JSON.stringify(v)).toMatchObject({ verdict: 'kpatchable' });
    expect(v.confirmation).toMatchObject({ confirmed: true });
  });

  it('a Makefile.in change that no compiled object shows is no-code, with that reason', { timeout: 900_000 }, async () => {
    const v = await classify('conf-dir.patch');
    expect(v, JSON.stringify(v)).toMatchObject({ verdict: 'no-code', reason: expect.stringMatching(/build-system change that changes no compiled object/) });
  });
});
