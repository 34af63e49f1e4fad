/**
 * The compile-only walk on a build that compiles a copy of its sources (nginx's debian/rules
 * copies src/ into debian/build-bin and compiles that): the copied tree is found from the
 * compile database, kept in step as patches are undone, and a patch to the original file is
 * measured through the copy's translation unit — not called "not compiled".
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copiedTrees, diffPaths, syncCopies } from '../pipeline/src/common/copied-trees.ts';
import { walkSeries, type WalkVerdict } from '../pipeline/src/corpus/compile-only/walk.ts';
import { parseSeries } from '../pipeline/src/corpus/series.ts';
import { ensureCreateDiffObject } from '../pipeline/src/stages/create-diff-object.ts';
import { put } from './helpers/tree-files.ts';

const before = '#include "a.h"\nint step(int x)\n{\n\treturn x + STEP;\n}\n';
const after = '#include "a.h"\nint step(int x)\n{\n\tif (x < 0)\n\t\treturn 0;\n\treturn x + STEP;\n}\n';
const header = '#define STEP 1\n';

describe('copied source trees', () => {
  it('are found from compiled sources the unbuilt tree lacks, whose path ends in a file it has with the same bytes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'copies-'));
    try {
      const pristine = join(root, 'pristine');
      const built = join(root, 'built');
      const sources = { 'src/core/a.c': before, 'src/core/a.h': header, 'src/b.c': 'int b;\n' };
      await put(pristine, sources);
      await put(built, { ...sources, 'debian/build-bin/src/core/a.c': before, 'debian/build-bin/src/b.c': 'int b;\n', 'gen/src/b.c': 'int generated;\n', 'gen/x.c': 'int x;\n' });
      const roots = await copiedTrees(built, pristine, ['src/b.c', 'debian/build-bin/src/core/a.c', 'debian/build-bin/src/b.c', 'gen/src/b.c', 'gen/x.c']);
      // gen/src/b.c ends like src/b.c but holds other bytes: generated, not a copy.
      expect(roots).toEqual(['debian/build-bin']);

      await writeFile(join(built, 'src/core/a.c'), after);
      expect(await syncCopies(built, roots, ['src/core/a.c', 'src/core/a.h'])).toEqual(['debian/build-bin/src/core/a.c']);
      expect(await readFile(join(built, 'debian/build-bin/src/core/a.c'), 'utf8')).toBe(after);
      await rm(join(built, 'src/b.c'));
      expect(await syncCopies(built, roots, ['src/b.c'])).toEqual(['debian/build-bin/src/b.c']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('follow a compiled source that is a symbolic link (exim4: its build folder links ../src/*.c) to the copy it is in', async () => {
    const root = await mkdtemp(join(tmpdir(), 'copies-'));
    try {
      const pristine = join(root, 'pristine');
      const built = join(root, 'built');
      await put(pristine, { 'src/smtp_in.c': before });
      await put(built, { 'src/smtp_in.c': before, 'b-light/src/smtp_in.c': before, 'b-heavy/src/smtp_in.c': before });
      for (const b of ['b-light', 'b-heavy']) {
        await mkdir(join(built, b, 'build'), { recursive: true });
        await symlink('../src/smtp_in.c', join(built, b, 'build/smtp_in.c'));
      }
      await symlink('/etc/hostname', join(built, 'outside.c'));
      const roots = await copiedTrees(built, pristine, ['b-light/build/smtp_in.c', 'b-heavy/build/smtp_in.c', 'outside.c']);
      expect(roots).toEqual(['b-heavy', 'b-light']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('reads the files a diff names, strip components removed, /dev/null skipped', () => {
    const diff = '--- a/src/x.c\t2024-01-01\n+++ b/src/x.c\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n--- /dev/null\n+++ b/src/new.c\n@@ -0,0 +1 @@\n+c\n';
    expect(diffPaths(diff, 1)).toEqual(['src/x.c', 'src/new.c']);
  });
});

describe('a compile-only walk over a build that compiles a copy of src/ (real compiles, real create-diff-object)', () => {
  beforeAll(async () => {
    await ensureCreateDiffObject();
  });

  it("measures a patch to src/a.c through the copy's unit, and leaves the copy as the unpatched source", { timeout: 120_000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'copies-walk-'));
    try {
      const unpatched = join(root, 'unpatched');
      await put(unpatched, { 'src/a.c': before, 'src/a.h': header });
      const pristine = join(root, 'pristine');
      await put(pristine, { 'src/a.c': after, 'src/a.h': header });
      const diff = await execa('diff', ['-u', '--label', 'a/src/a.c', '--label', 'b/src/a.c', join(unpatched, 'src/a.c'), join(pristine, 'src/a.c')], { reject: false });
      expect(diff.exitCode).toBe(1);
      await put(pristine, { 'debian/patches/series': 'fix-negative.patch\n', 'debian/patches/fix-negative.patch': diff.stdout + '\n' });
      // The built tree: the whole series applied, and the build's copy of src/ (as nginx's
      // config.arch step makes it) is what the compiler is given.
      const tree = join(root, 'tree');
      await execa('cp', ['-a', pristine, tree]);
      await mkdir(join(tree, 'build-bin'), { recursive: true });
      await execa('cp', ['-a', join(tree, 'src'), join(tree, 'build-bin')]);
      const database = [{ directory: join(tree, 'build-bin'), compiler: 'gcc', args: ['-O2', '-ffunction-sections', '-fdata-sections', '-c', 'src/a.c'], source: 'build-bin/src/a.c' }];

      const copies = await copiedTrees(tree, pristine, database.map((u) => u.source));
      expect(copies).toEqual(['build-bin']);
      const verdicts: WalkVerdict[] = [];
      await walkSeries({
        tree,
        series: parseSeries(await readFile(join(tree, 'debian/patches/series'), 'utf8')),
        database,
        units: [{ id: 'fix-negative.patch', start: 0, count: 1 }],
        scratch: join(root, 'scratch'),
        objectsCache: join(root, 'objects'),
        jobs: 1,
        limit: 10,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        copies,
        log: () => {},
        done: async (_unit, v) => {
          verdicts.push(v);
        },
      });
      expect(verdicts).toHaveLength(1);
      // Without following the copy this was 'no-code' ("src/a.c: not compiled in this configuration").
      expect(verdicts[0], JSON.stringify(verdicts[0])).toMatchObject({ verdict: 'kpatchable', objects: 1, compiled: 1 });
      expect(await readFile(join(tree, 'build-bin/src/a.c'), 'utf8')).toBe(before);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
