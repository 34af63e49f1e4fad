/**
 * Issue #16, the CI part of the outside-package set (corpus/outside/): chrony, nfs-utils and
 * rsyslog — Debian 12 packages the project was not developed on, each with its newest Debian
 * patch that changes C code, applied to the tree without it — run through the real CLI exactly as
 * `npm run bench:outside -- --small` does. Per package: the verdict a reader of the patch wrote
 * down in corpus/outside/packages.json before anything ran, no spurious changed object, the
 * bundle's installed path, an incremental patched build, and (nfs-utils) exactly the archive
 * member the reader expected the patch to carry (fsloc.o, which rpc.mountd never linked).
 *
 * Build dependencies are installed by wfbuild itself (as root). Original builds live in the
 * shared content-addressed store, so a warm run takes seconds (13 s here); a cold one 15–18 minutes
 * on a loaded 2-core machine.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';
import type { Report } from '../pipeline/src/report/types.ts';

interface Expected {
  readonly outcome: string;
  readonly textOnly: boolean;
  readonly binaries: readonly { readonly build: string; readonly installed: string }[];
  readonly unresolved?: readonly string[];
  /** Archive members the shipped binary never linked that the patch must carry (nfs-utils' fsloc.o). */
  readonly carried?: readonly { readonly object: string; readonly defines: readonly string[] }[];
}
interface Entry {
  readonly package: string;
  readonly small: boolean;
  readonly expected: Expected;
}
interface Row {
  readonly package: string;
  readonly got: string;
  readonly match: string;
  readonly seconds: number | null;
  readonly spurious: readonly string[];
  readonly missingExpected: readonly string[];
  readonly detail: string;
}

const data = JSON.parse(await readFile(join(repoRoot, 'corpus/outside/packages.json'), 'utf8')) as { packages: Entry[] };
const small = data.packages.filter((p) => p.small);

let out: string;
let exitCode: number | undefined;
let output: string;
const rows = new Map<string, Row>();
const reports = new Map<string, Report>();

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'wfbuild-outside-'));
  const started = performance.now();
  // The harness as a user runs it; WFPATCH_CACHE (an empty one under `npm test`) is inherited.
  const run = await execa('npm', ['run', '--silent', 'bench:outside', '--', '--small', '--out', out], { cwd: repoRoot, reject: false, all: true, stdin: 'ignore' });
  exitCode = run.exitCode;
  output = run.all ?? '';
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { rows: Row[] };
  for (const row of results.rows) rows.set(row.package, row);
  for (const p of small) {
    const report = await readFile(join(out, p.package, 'report.json'), 'utf8').catch(() => null);
    if (report) reports.set(p.package, JSON.parse(report) as Report);
  }
  console.log(`bench:outside --small: ${((performance.now() - started) / 1000).toFixed(1)} s in all`);
  for (const row of results.rows) console.log(`  ${row.package}: ${row.seconds ?? '-'} s (wfbuild), ${row.got}`);
  await rm(out, { recursive: true, force: true });
}, 90 * 60_000);

describe('npm run bench:outside -- --small', () => {
  it('runs the three CI packages and exits 0 (every one matched)', () => {
    expect([...rows.keys()].sort()).toEqual(small.map((p) => p.package).sort());
    expect(exitCode, output).toBe(0);
  });

  describe.each(small.map((p) => [p.package, p] as const))('%s', (name, p) => {
    it(`gets the reader's verdict: ${p.expected.outcome}`, () => {
      const row = rows.get(name)!;
      expect(row.got, row.detail).toBe(p.expected.outcome);
      expect(reports.get(name)?.textOnly).toBe(p.expected.textOnly);
      expect(row.match).toBe('yes');
    });

    it('reports no spurious changed object, and every expected one', () => {
      const row = rows.get(name)!;
      expect(row.spurious).toEqual([]);
      expect(row.missingExpected).toEqual([]);
      expect(reports.get(name)?.ignored ?? []).toEqual([]);
    });

    it('rebuilt incrementally: the original build\'s own make/ninja steps, not the whole build command', () => {
      const report = reports.get(name)!;
      expect(report.patchedBuild?.how).toMatch(/^re-ran the original build's make\/ninja invocation\(s\)/);
      // Only the patched files and what includes a patched header, not the whole package.
      expect(report.patchedBuild?.recompiled).toBeLessThanOrEqual(6);
    });

    it('names the shipped binary and, for a kpatch-able fix, its installed path', () => {
      const report = reports.get(name)!;
      const built = p.expected.binaries.map((b) => b.build);
      expect(report.objects.flatMap((o) => o.binaries).some((b) => built.includes(b))).toBe(true);
      if (p.expected.outcome === 'kpatchable') {
        expect(report.bundles.map((b) => b.installedPath).sort()).toEqual(p.expected.binaries.map((b) => b.installed).sort());
      }
    });

    if (p.expected.carried) {
      const carried = p.expected.carried;
      it(`carries ${carried.map((c) => c.object).join(', ')} into the bundle, and only for the binary that holds the changed object`, () => {
        const report = reports.get(name)!;
        const verdicts = report.objects.flatMap((o) => o.verdicts);
        // The one shipped binary holding the changed unit gets the bundle; nothing is left unresolved.
        expect(verdicts.map((v) => v.binary)).toEqual(p.expected.binaries.map((b) => b.build));
        expect(verdicts.map((v) => (v.carried ?? []).map((c) => ({ object: c.object, defines: [...c.defines].sort() })))).toEqual([carried]);
        expect((verdicts[0]!.verdict as { unresolved: string[] }).unresolved).toEqual([]);
        expect(report.reasons).toEqual([]);
      });
    }

    if (p.expected.unresolved) {
      const unresolved = p.expected.unresolved;
      it(`leaves exactly ${unresolved.join(', ')} unresolved in the shipped binary`, () => {
        const report = reports.get(name)!;
        const symbols = report.reasons.filter((r) => r.kind === 'unpatchable' && r.object !== null).map((r) => r.symbol);
        expect([...new Set(symbols)].sort()).toEqual([...unresolved].sort());
      });
    }
  });
});
