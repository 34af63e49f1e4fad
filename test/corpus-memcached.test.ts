/**
 * The memcached part of the corpus, for real: the registry's sources, Debian's build through the
 * pipeline, create-diff-object. The first run on a machine builds memcached (minutes); later
 * runs reuse the pipeline's original build and the corpus result cache.
 */
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';
import type { ResultsFile } from '../pipeline/src/corpus/results-file.ts';

const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');

describe('wfbuild corpus --packages memcached', () => {
  it('classifies the three units of 1.6.18-1+deb12u1, then resumes from the cache', { timeout: 1_800_000 }, async () => {
    const out = await mkdtemp(join(tmpdir(), 'corpus-memcached-'));
    try {
      const first = await execa('node', [wfbuild, 'corpus', '--packages', 'memcached', '--out', out], { reject: false, all: true });
      expect(first.exitCode, first.all).toBe(0);
      const results = JSON.parse(await readFile(join(out, 'bookworm.json'), 'utf8')) as ResultsFile;
      expect(results.packages.map((p) => p.package)).toEqual(['memcached']);
      const memcached = results.packages[0]!;
      expect(memcached.baseVersion).toBe('1.6.18-1+deb12u1');
      const byUnit = new Map(memcached.units.map((u) => [u.unit, u]));
      expect([...byUnit.keys()]).toEqual(['0008-CVE-2026-47783-CVE-2026-47784.patch', '0009-CVE-2023-46852.patch', 'CVE-2023-46853.patch']);
      // All three are applied to 1.6.18-1 as shipped (its 6 patches), one original build.
      expect(memcached.units.map((u) => [u.base, u.appliedAt])).toEqual([['series-prefix', 6], ['series-prefix', 6], ['series-prefix', 6]]);
      // Debian builds memcached without the proxy and without the SASL password database, so
      // none of the three fixes changes a compiled object — and the reasons say which file.
      expect(byUnit.get('0008-CVE-2026-47783-CVE-2026-47784.patch')).toMatchObject({ verdict: 'no-code', cves: ['CVE-2026-47783', 'CVE-2026-47784'] });
      expect(byUnit.get('0008-CVE-2026-47783-CVE-2026-47784.patch')!.reason).toMatch(/sasl_defs/);
      expect(byUnit.get('0009-CVE-2023-46852.patch')).toMatchObject({ verdict: 'no-code', reason: expect.stringMatching(/proto_proxy\.c/) });
      expect(byUnit.get('CVE-2023-46853.patch')).toMatchObject({ verdict: 'no-code', reason: expect.stringMatching(/proxy_request\.c/) });
      expect(memcached.row).toMatchObject({ units: { all: 3, cve: 3 }, noCode: { all: 3, cve: 3 }, failed: { all: 0, cve: 0 } });
      const md = await readFile(join(out, 'bookworm.md'), 'utf8');
      expect(md).toContain('| patches (CVE) | 3 (3) | 3 (3) |');
      expect(md).toContain('| memcached | 0009-CVE-2023-46852.patch | CVE-2023-46852 | update, series | no-code |');

      // Resumable: the same inputs are not classified again.
      const second = await execa('node', [wfbuild, 'corpus', '--packages', 'memcached', '--out', out], { reject: false, all: true });
      expect(second.exitCode, second.all).toBe(0);
      expect(second.stderr.split('\n').filter((l) => l.includes('(cached)'))).toHaveLength(3);
      expect(second.stderr).not.toMatch(/classifying/);
      const again = JSON.parse(await readFile(join(out, 'bookworm.json'), 'utf8')) as ResultsFile;
      expect(again.packages[0]!.units.map((u) => [u.unit, u.verdict, u.key])).toEqual(memcached.units.map((u) => [u.unit, u.verdict, u.key]));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
