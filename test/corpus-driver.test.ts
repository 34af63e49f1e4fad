import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { mergeResults, type PackageResults } from '../pipeline/src/corpus/results-file.ts';
import { parseJobs, parseView } from '../pipeline/src/corpus/options.ts';
import { preferredBase, selectUnits } from '../pipeline/src/corpus/placement.ts';
import { unitKey } from '../pipeline/src/corpus/keys.ts';
import { verdictOf } from '../pipeline/src/corpus/classify-unit.ts';
import { readManifest } from '../pipeline/src/corpus/manifest.ts';
import { packageRow } from '../pipeline/src/corpus/results.ts';
import { repoRoot } from '../pipeline/src/paths.ts';

const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');

describe('unit selection and bases', () => {
  it('uses update units where a package has them, else its series walk', async () => {
    const memcached = await readManifest('memcached');
    const openldap = await readManifest('openldap');
    expect(selectUnits(memcached, 'corpus').map((u) => u.id)).toEqual(['0008-CVE-2026-47783-CVE-2026-47784.patch', '0009-CVE-2023-46852.patch', 'CVE-2023-46853.patch']);
    expect(selectUnits(memcached, 'series')).toHaveLength(memcached.units.length);
    expect(selectUnits(openldap, 'corpus')).toHaveLength(openldap.units.length);
    expect(selectUnits(openldap, 'update')).toEqual([]);
    const selected = selectUnits(memcached, 'corpus');
    // Update view: every unit on the version before the update (one original build).
    expect(selected.map((u) => preferredBase(u, selected, true))).toEqual([6, 6, 6]);
    // Series walk: on top of the patches before it.
    expect(selected.map((u) => preferredBase(u, selected, false))).toEqual([6, 7, 8]);
  });

  it('keys a unit by everything that decides its verdict', async () => {
    const manifest = await readManifest('memcached');
    const unit = manifest.units[8]!;
    const base = { manifest, unit, appliedAt: 6, buildCmd: null, tools: { createDiffObject: 'a', pipeline: 'b' } };
    const key = unitKey(base);
    expect(unitKey({ ...base })).toBe(key);
    expect(unitKey({ ...base, appliedAt: 8 })).not.toBe(key);
    expect(unitKey({ ...base, tools: { createDiffObject: 'c', pipeline: 'b' } })).not.toBe(key);
    expect(unitKey({ ...base, unit: { ...unit, sha256: '0'.repeat(64) } })).not.toBe(key);
    expect(unitKey({ ...base, manifest: { ...manifest, baseVersion: '1.6.18-1+deb12u2' } })).not.toBe(key);
  });

  it('keeps earlier results of packages not run now, only for the same view', () => {
    const pkg = (name: string): PackageResults => ({ package: name, baseVersion: '1', update: { kind: 'none', note: '' }, view: 'corpus', usesUpdateView: false, units: [], row: packageRow(name, '1', [], 0) });
    const previous = { schema: 1 as const, distribution: 'bookworm' as const, view: 'corpus' as const, generatedAt: '', tools: {}, packages: [pkg('samba'), pkg('memcached')], total: { row: packageRow('total', '', [], 0), ratios: {} as never } };
    expect(mergeResults(previous, [pkg('memcached')], ['openldap', 'memcached', 'samba'], 'corpus').map((p) => p.package)).toEqual(['memcached', 'samba']);
    expect(mergeResults(previous, [pkg('memcached')], ['openldap', 'memcached', 'samba'], 'series').map((p) => p.package)).toEqual(['memcached']);
  });

  it('maps pipeline outcomes to verdicts; a create-diff-object error is a failure, not text-only', () => {
    const base = { notes: [], objects: [] };
    expect(verdictOf({ ...base, outcome: 'kpatchable', textOnly: true, reasons: [] }).verdict).toBe('kpatchable');
    expect(verdictOf({ ...base, outcome: 'no-compiled-code', textOnly: null, reasons: [], notes: ['x.o: recompiled, identical bytes'] })).toMatchObject({ verdict: 'no-code', reason: 'x.o: recompiled, identical bytes' });
    const data = { object: 'a.o', kind: 'data', symbol: 'settings', what: 'changed .data' };
    expect(verdictOf({ ...base, outcome: 'not-text-only', textOnly: false, reasons: [data] })).toMatchObject({ verdict: 'not-text-only', reason: 'a.o: settings: changed .data' });
    const unpatchable = { object: 'b.o', kind: 'unpatchable', symbol: 'f', what: 'static local changed' };
    expect(verdictOf({ ...base, outcome: 'not-kpatchable', textOnly: true, reasons: [unpatchable] })).toMatchObject({ verdict: 'text-only', reason: 'b.o: f: static local changed' });
    const error = { object: 'c.o', kind: 'error', symbol: null, what: 'create-diff-object exit 1' };
    expect(verdictOf({ ...base, outcome: 'not-kpatchable', textOnly: null, reasons: [error] }).verdict).toBe('failed');
  });
});

describe('wfbuild corpus: bad input', () => {
  it('rejects unknown packages, views and job counts with exit 2', async () => {
    expect(() => parseJobs('0')).toThrow(/1 to 64/);
    expect(() => parseView('all')).toThrow(/corpus, update, series/);
    for (const args of [['--packages', 'no-such-server'], ['--jobs', 'x'], ['--view', 'all'], ['--bogus'], ['--packages', 'memcached', '--units', ''], ['--packages', 'memcached', '--units', 'no-such-unit.patch']]) {
      const r = await execa('node', [wfbuild, 'corpus', ...args], { reject: false });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^wfbuild corpus: /);
    }
    const r = await execa('node', [wfbuild, 'corpus', 'manifest', '--packages', 'no-such-server'], { reject: false });
    expect(r.exitCode).toBe(2);
  });

  it('a malformed manifest stops the run with its path, and writes no results', async () => {
    const out = await mkdtemp(join(tmpdir(), 'corpus-'));
    try {
      const env = { WFBUILD_CORPUS_MANIFESTS: out };
      await execa('sh', ['-c', `printf '{"schema": 1, "package": "memcached"' > ${out}/memcached.json`]);
      const r = await execa('node', [wfbuild, 'corpus', '--packages', 'memcached', '--out', out], { reject: false, env });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/memcached\.json: not JSON/);
      await expect(readFile(join(out, 'bookworm.json'))).rejects.toThrow();
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe('appliesAt', () => {
  it('accepts a unit whose second diff deletes a file its first diff creates (patch --dry-run would not)', async () => {
    const { appliesAt } = await import('../pipeline/src/corpus/full-pipeline.ts');
    const dir = await mkdtemp(join(tmpdir(), 'corpus-apply-test-'));
    try {
      await execa('sh', ['-c', 'mkdir -p tree/src && printf "a\\nb\\nc\\n" > tree/src/x.c'], { cwd: dir });
      const unit = [
        '--- /dev/null', '+++ b/known-fail', '@@ -0,0 +1 @@', '+test', // first patch: creates a file
        '--- a/src/x.c', '+++ b/src/x.c', '@@ -1,3 +1,3 @@', ' a', '-b', '+B', ' c',
        'Second patch of the unit', '--- a/known-fail', '+++ /dev/null', '@@ -1 +0,0 @@', '-test', // deletes it again
        '--- a/src/x.c', '+++ b/src/x.c', '@@ -1,3 +1,3 @@', ' a', '-B', '+BB', ' c', '',
      ].join('\n');
      await execa('sh', ['-c', `cat > unit.patch <<'X'\n${unit}X`], { cwd: dir });
      const dry = await execa('patch', ['--dry-run', '-p1', '--batch', '-i', join(dir, 'unit.patch')], { cwd: join(dir, 'tree'), reject: false });
      expect(dry.exitCode).not.toBe(0);
      expect(await appliesAt(join(dir, 'tree'), join(dir, 'unit.patch'))).toBe(true);
      // The tree itself is untouched.
      expect(await readFile(join(dir, 'tree/src/x.c'), 'utf8')).toBe('a\nb\nc\n');
      await execa('sh', ['-c', 'printf "z\\n" > tree/src/x.c'], { cwd: dir });
      expect(await appliesAt(join(dir, 'tree'), join(dir, 'unit.patch'))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('placements and failure reasons', () => {
  it('tries the shared base, then the series position, then last without the unit', async () => {
    const { placementsFor } = await import('../pipeline/src/corpus/placement.ts');
    const unit = { id: 'x', start: 4, patches: ['a', 'b'], strip: [1, 1], sha256: '', cves: [], cveSources: [], views: ['series'] as const, why: '' };
    expect(placementsFor(unit, 2, 9)).toEqual([{ kind: 'series-prefix', at: 2 }, { kind: 'series-prefix', at: 4 }, { kind: 'series-without-unit' }]);
    expect(placementsFor(unit, 4, 9)).toEqual([{ kind: 'series-prefix', at: 4 }, { kind: 'series-without-unit' }]);
    // The last unit of the series: without it is the same tree as before it.
    expect(placementsFor(unit, 4, 6)).toEqual([{ kind: 'series-prefix', at: 4 }]);
  });

  it('moves on from the update base when the unit alone does not build there, not from its own position', async () => {
    const { whyTryNextBase } = await import('../pipeline/src/corpus/full-pipeline.ts');
    const unit = { start: 9 };
    const shared = { kind: 'series-prefix', at: 6 } as const;
    const own = { kind: 'series-prefix', at: 9 } as const;
    expect(whyTryNextBase({ originalBuildFailed: false, patchedBuildFailed: true }, shared, unit)).toMatch(/does not build alone \(applied after 6 series patches\)/);
    // On its own position a unit that does not build is a failed unit, said as such.
    expect(whyTryNextBase({ originalBuildFailed: false, patchedBuildFailed: true }, own, unit)).toBeUndefined();
    expect(whyTryNextBase({ originalBuildFailed: false, patchedBuildFailed: false }, shared, unit)).toBeUndefined();
    expect(whyTryNextBase({ originalBuildFailed: true }, own, unit)).toMatch(/tree before this unit does not build/);
  });

  it('takes the series without the update as the shared base when Debian keeps a patch after the update (exim4)', async () => {
    const { sharedBase, placementsFor, placementKey, describePlacement } = await import('../pipeline/src/corpus/placement.ts');
    const u = (id: string, start: number, n = 1) => ({ id, start, patches: Array.from({ length: n }, (_, i) => `${id}-${i}`), strip: [1], sha256: '', cves: [], cveSources: [], views: ['series'] as const, why: '' });
    const all = [u('a', 0), u('b', 1), u('fix1', 2), u('fix2', 3, 2), u('kept', 5), u('fix3', 6)];
    const update = [all[2]!, all[3]!, all[5]!];
    const base = sharedBase(all, update, true)!;
    expect(base).toEqual({ kind: 'series-without-update', without: [[2, 5], [6, 7]] });
    expect(describePlacement(base)).toBe("applied on the series without the update's patches 3–5, 7");
    expect(placementKey(base)).toBe('without:2-5,6-7');
    // Then the unit's own position, then without it.
    // Then its own position on that version (the update's units before it applied, the kept
    // patch too), then without it; the first unit's own position is the shared base itself.
    // Last, the patches before it alone: when a later patch needs the unit, no series without
    // it applies (openssh's selinux-role.patch needs gssapi.patch, the update's first unit).
    expect(placementsFor(all[3]!, base, 7)).toEqual([base, { kind: 'series-without-update', without: [[3, 5], [6, 7]] }, { kind: 'series-without-unit' }, { kind: 'series-prefix', at: 3 }]);
    expect(placementsFor(all[2]!, base, 7)).toEqual([base, { kind: 'series-without-unit' }, { kind: 'series-prefix', at: 2 }]);
    const { isSharedBase } = await import('../pipeline/src/corpus/placement.ts');
    expect(isSharedBase(base, all[3]!)).toBe(true);
    expect(isSharedBase({ kind: 'series-without-update', without: [[3, 5], [6, 7]] }, all[3]!)).toBe(false);
    // An update that is the series' tail keeps the tree before it (and its results' keys).
    expect(sharedBase(all.slice(0, 4), [all[2]!, all[3]!], true)).toEqual({ kind: 'series-prefix', at: 2 });
    expect(placementKey({ kind: 'series-prefix', at: 2 })).toBe(2);
    expect(sharedBase(all, update, false)).toBeUndefined();
  });

  it('keeps the telling line of a build failure, not make\'s closing line', async () => {
    const { failureReason } = await import('../pipeline/src/corpus/classify-unit.ts');
    const message = 'original build of apache2 2.4.68-1~deb12u1 failed (debian/rules build, exit 2):\nchecking for chosen layout... \nconfigure: error: invalid layout Debian\nmake[1]: *** [debian/rules:107: override_dh_auto_configure] Error 1\nmake: *** [debian/rules:102: build] Error 2';
    expect(failureReason(message)).toBe('original build of apache2 2.4.68-1~deb12u1 failed (debian/rules build, exit 2): … configure: error: invalid layout Debian');
    expect(failureReason('one line')).toBe('one line');
  });
});

describe('applyPatch (a unit of several patches, concatenated)', () => {
  it('applies a later diff that changes what an earlier diff of the same unit changed, and still refuses a real reject untouched', async () => {
    const { applyPatch } = await import('../pipeline/src/stages/apply-patch.ts');
    const { mkdtemp, writeFile, readFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'corpus-applypatch-'));
    try {
      await writeFile(join(dir, 'context.c'), 'one\ntwo\nthree\n');
      const first = '--- a/context.c\n+++ b/context.c\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n';
      const regression = '--- a/context.c\n+++ b/context.c\n@@ -1,3 +1,3 @@\n one\n-TWO\n+2\n three\n';
      await writeFile(join(dir, 'unit.patch'), first + regression);
      await applyPatch(dir, join(dir, 'unit.patch'), 'unit.patch');
      expect(await readFile(join(dir, 'context.c'), 'utf8')).toBe('one\n2\nthree\n');
      await writeFile(join(dir, 'bad.patch'), '--- a/context.c\n+++ b/context.c\n@@ -1,3 +1,3 @@\n one\n-nothing\n+x\n three\n');
      await expect(applyPatch(dir, join(dir, 'bad.patch'), 'bad.patch')).rejects.toThrow(/bad\.patch does not apply to this tree/);
      expect(await readFile(join(dir, 'context.c'), 'utf8')).toBe('one\n2\nthree\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
