/**
 * Series-walk verdicts confirmed against a binary (compile-only/relink.ts): the walk over a
 * real wrapper build of a small Debian package (test/fixtures/walk-confirm) keeps a built copy
 * of the whole series, brings its binaries to the series before each kpatch-able unit by
 * re-running the build's recorded makes, and dry-runs the unit's bundle there with
 * `wfpatch-ctl check`. Against the whole series' binary (what the walk had) the same objects
 * are refused: it holds later patches to the same function.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { confirmObjects, type BaseConfirmation } from '../pipeline/src/corpus/compile-only/confirm-base.ts';
import { fromBuildLog, rebase } from '../pipeline/src/corpus/compile-only/database.ts';
import { SeriesBinaries } from '../pipeline/src/corpus/compile-only/relink.ts';
import { walkSeries, type WalkVerdict } from '../pipeline/src/corpus/compile-only/walk.ts';
import { ensureWfpatchCtl } from '../pipeline/src/corpus/confirm.ts';
import { parseSeries } from '../pipeline/src/corpus/series.ts';
import { applySeriesPatch } from '../pipeline/src/corpus/tree.ts';
import type { Services } from '../pipeline/src/corpus/services.ts';
import { copyTree } from '../pipeline/src/common/fs.ts';
import { chooseBuildCommand } from '../pipeline/src/stages/build-command.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';
import { originalBuild, type OriginalBuild } from '../pipeline/src/stages/original-build.ts';
import { describeTree } from '../pipeline/src/stages/source.ts';

const fixture = fileURLToPath(new URL('./fixtures/walk-confirm/', import.meta.url));
const services: Services = { longRunning: ['^server$'], programs: [], note: 'walkserver' };

interface Walked {
  readonly verdicts: Map<string, WalkVerdict>;
  /** Each kpatch-able unit's objects confirmed against the whole series' binary instead. */
  readonly unrelinked: Map<string, BaseConfirmation>;
  readonly original: OriginalBuild;
}

/**
 * The package with `series` applied, built through the wrapper, then walked backwards with the
 * confirmations, over every patch but the build-system ones (`notUnits`: index.ts classifies
 * those with the full pipeline, the walk only undoes them).
 */
async function walk(root: string, series: readonly string[], notUnits: readonly string[] = []): Promise<Walked> {
  const pristine = join(root, 'walkserver');
  await cp(join(fixture, 'tree'), pristine, { recursive: true });
  await cp(join(fixture, 'patches'), join(pristine, 'debian/patches'), { recursive: true });
  await writeFile(join(pristine, 'debian/patches/series'), series.join('\n') + '\n');
  const entries = parseSeries(await readFile(join(pristine, 'debian/patches/series'), 'utf8'));
  for (const entry of entries) await applySeriesPatch(pristine, entry);
  const source = await describeTree(pristine);
  const original = await originalBuild(source, await chooseBuildCommand(source, undefined), join(root, 'orig'), () => {});
  expect(original.makes.length, 'dh_auto_build ran make through the shim').toBeGreaterThan(0);
  // As index.ts does for a build-log profile: the walk on a copy of the built tree.
  const tree = join(root, 'walk');
  await copyTree(original.tree, tree);
  const lines: string[] = [];
  const binaries = new SeriesBinaries({ original, walkTree: tree, work: join(root, 'bins'), services, log: (l) => lines.push(l) });
  const verdicts = new Map<string, WalkVerdict>();
  const unrelinked = new Map<string, BaseConfirmation>();
  try {
    await walkSeries({
      tree,
      series: entries,
      database: fromBuildLog(original.log, original.tree).map((u) => rebase(u, original.tree, tree)),
      units: entries.filter((e) => !notUnits.includes(e.path)).map((e) => ({ id: e.path, start: e.index, count: 1 })),
      scratch: join(root, 'scratch'),
      objectsCache: join(root, 'objects'),
      jobs: 2,
      limit: 10,
      services,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      log: (l) => lines.push(l),
      undone: (entry, files) => binaries.undone(entry.path, files),
      confirm: async (unit, v, measured) => {
        const patchFile = join(root, `${unit.id}.unit`);
        await writeFile(patchFile, measured.texts.join('\n'));
        unrelinked.set(unit.id, await confirmObjects({ build: original, objects: measured.objects, patchFile, services, scratch: join(root, 'unrelinked'), where: 'on the whole series' }));
        return binaries.confirmVerdict(unit.id, v, measured);
      },
      done: async (unit, v) => {
        verdicts.set(unit.id, v);
      },
    });
  } finally {
    await binaries.close();
  }
  expect(verdicts.size, lines.join('\n')).toBe(series.length - notUnits.length);
  return { verdicts, unrelinked, original };
}

describe('series-walk verdicts confirmed against the binaries of the series before each unit (real dh build, recorded makes re-run, wfpatch-ctl check)', () => {
  beforeAll(async () => {
    await ensureCreateDiffObject();
    await ensureWfpatchCtl();
  });

  it('confirms every unit on the rebuilt binaries, where the whole series\' binary refuses their "before" code', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'walk-confirm-'));
    try {
      // 0004 changes only a header, and this Makefile knows no header dependencies (as openldap's):
      // undone, its includer must be rebuilt all the same, or the binary keeps 0004's code.
      const { verdicts, unrelinked } = await walk(root, ['0001-clamp-negative.patch', '0002-greet-empty-buffer.patch', '0003-clamp-upper.patch', '0004-raise-clamp-max.patch']);
      expect([...verdicts.keys()].sort()).toHaveLength(4);
      for (const [id, v] of verdicts) {
        expect(v, `${id}: ${JSON.stringify(v)}`).toMatchObject({
          verdict: 'kpatchable',
          checkedOn: expect.stringMatching(/series before it/),
          confirmation: { confirmed: true, binaries: ['server'], how: expect.stringMatching(/^ok.*rebuilt from the series before the unit/) },
        });
      }
      // 0001's clamp() as the whole series built it already holds 0003's change: not the
      // code of the object before 0001, so create-diff-object --binary refuses it there.
      expect(unrelinked.get('0001-clamp-negative.patch')).toMatchObject({ kind: 'unconfirmed', why: expect.stringMatching(/^on the whole series, create-diff-object --binary server/) });
      expect(unrelinked.get('0003-clamp-upper.patch')).toMatchObject({ kind: 'unconfirmed' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('leaves a unit whose incremental rebuild fails, and every unit before it, kpatch-able but unconfirmed with why', { timeout: 600_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'walk-confirm-'));
    try {
      // With automake-style dependency files (a Debian patch to the Makefile, first in the series).
      const { verdicts } = await walk(root, ['track-header-deps.patch', '0001-clamp-negative.patch', '0002-clamp-limit-header.patch', '0002-greet-empty-buffer.patch'], ['track-header-deps.patch']);
      expect(verdicts.get('0002-greet-empty-buffer.patch')).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: true } });
      const failed = /^on the series before the unit, rebuilt: the incremental rebuild of the series before 0002-clamp-limit-header\.patch failed: .*clamp-limit\.h/;
      for (const id of ['0002-clamp-limit-header.patch', '0001-clamp-negative.patch']) {
        expect(verdicts.get(id), id).toMatchObject({ verdict: 'kpatchable', confirmation: { confirmed: false, binaries: [], how: expect.stringMatching(failed) } });
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
