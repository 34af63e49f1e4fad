/**
 * `wfbuild package` on the host (issue #12): a cumulative hot-fix .deb from real wfbuild outputs
 * of the smallc fixture (two kpatch-able fixes, one data change that cannot be live), checked
 * with Debian's own tools — dpkg-deb for the fields and contents, lintian for errors — and the
 * bad inputs: outputs for two different builds, a live output that is not kpatch-able, a bundle
 * changed after wfbuild wrote it; each refused with a clear message and nothing written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Report } from '../pipeline/src/report/types.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const smallc = new URL('./fixtures/smallc/', import.meta.url).pathname;
const tree = join(smallc, 'tree');
const fix1 = join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch');
const fix2 = new URL('./fixtures/hotfix/0006-table-lookup-bound-CVE-2099-0006.patch', import.meta.url).pathname;
const dataFix = join(smallc, 'patches/0002-data-change.patch');

let scratch: string;
let cache: string;
const out = (name: string): string => join(scratch, name);

function run(args: string[]) {
  return execa(wfbuild, args, { reject: false, all: true, env: { WFPATCH_CACHE: cache } });
}

async function fields(deb: string): Promise<Record<string, string>> {
  const text = (await execa('dpkg-deb', ['-f', deb])).stdout;
  const result: Record<string, string> = {};
  let key = '';
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z-]+): ?(.*)$/.exec(line);
    if (m) {
      key = m[1];
      result[key] = m[2];
    } else if (key) result[key] += `\n${line}`;
  }
  return result;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-package-'));
  cache = join(scratch, 'cache');
  for (const [patch, name, code] of [
    [fix1, 'fix1', 0],
    [fix2, 'fix2', 0],
    [dataFix, 'data', 4],
  ] as const) {
    const r = await run([patch, '--source', tree, '--out', out(name)]);
    expect(r.exitCode, r.all).toBe(code);
  }
  // The same fix against another build of smallc (other flags: another build-id).
  const other = await run([fix1, '--source', tree, '--build-cmd', 'make CFLAGS="-O1 -g -Wall"', '--out', out('other-build')]);
  expect(other.exitCode, other.all).toBe(0);
}, 600_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('wfbuild package', () => {
  it('writes one cumulative .deb: exact Depends, every fix with its CVEs, the not-live one with its reason; lintian finds no error', async () => {
    const r = await run(['package', out('fix1'), out('fix2'), '--not-live', out('data'), '--depends', 'smallc=1.0-1', '--out', out('debs')]);
    expect(r.exitCode, r.all).toBe(0);
    expect(await readdir(out('debs'))).toEqual(['smallc-livepatch_1.0-1+wfpatch1.3_amd64.deb']);
    const deb = join(out('debs'), 'smallc-livepatch_1.0-1+wfpatch1.3_amd64.deb');
    const f = await fields(deb);
    expect(f.Package).toBe('smallc-livepatch');
    expect(f.Version).toBe('1.0-1+wfpatch1.3');
    expect(f.Depends).toMatch(/^smallc \(= 1\.0-1\), libc6 \(>= 2\.\d+\)$/);
    expect(f.Description).toContain('0001-text-only-CVE-2099-0001 (CVE-2099-0001): reject empty names in');
    expect(f.Description).toMatch(/0002-table-lookup-bound-CVE-2099-0006\s+\(CVE-2099-0006\): table_lookup:\s+refuse a max_items/);
    expect(f.Description).toMatch(/could not be made live \(1\)[\s\S]*0002-data-change \(CVE-2099-0002\)[\s\S]*Not live: table\.o: data object\s+limits: initializer changed/);

    const report1 = JSON.parse(await readFile(join(out('fix1'), 'report.json'), 'utf8')) as Report;
    const buildId = report1.bundles[0].buildId!;
    const listing = (await execa('dpkg-deb', ['-c', deb])).stdout;
    const dir = `./usr/lib/wfpatch/${buildId}/`;
    for (const name of ['0001-text-only-CVE-2099-0001', '0002-table-lookup-bound-CVE-2099-0006']) {
      expect(listing).toContain(`${dir}${name}.wfp`);
      expect(listing).toContain(`${dir}${name}.json`);
    }
    expect(listing).toContain('./usr/libexec/smallc-livepatch/wfpatch-ctl');

    // The payload: each .wfp is the bundle byte for byte, each JSON says what it is.
    const x = out('extracted');
    await execa('dpkg-deb', ['-x', deb, x]);
    const wfp = await readFile(join(x, dir, '0001-text-only-CVE-2099-0001.wfp'));
    expect(wfp.equals(await readFile(join(out('fix1'), 'smallc.wfp')))).toBe(true);
    const meta = JSON.parse(await readFile(join(x, dir, '0001-text-only-CVE-2099-0001.json'), 'utf8'));
    expect(meta).toMatchObject({
      index: 1,
      file: '0001-text-only-CVE-2099-0001.wfp',
      patch: { name: '0001-text-only-CVE-2099-0001.patch', sha256: createHash('sha256').update(await readFile(fix1)).digest('hex') },
      cves: ['CVE-2099-0001'],
      description: 'reject empty names in greet()',
      target: { path: 'smallc', buildId, package: 'smallc', version: '1.0-1' },
      wfbuild: { version: expect.stringMatching(/^\d+\.\d+\.\d+$/) },
    });
    expect(meta.longDescription).toContain('An empty name made greet() print');

    // The maintainer scripts are valid sh, and name the fixes in order.
    const control = out('control');
    await execa('dpkg-deb', ['-e', deb, control]);
    for (const s of ['postinst', 'prerm', 'postrm']) await execa('sh', ['-n', join(control, s)]);
    expect(await readFile(join(control, 'postinst'), 'utf8')).toContain('FIXES="0001-text-only-CVE-2099-0001.wfp 0002-table-lookup-bound-CVE-2099-0006.wfp"');

    const lintian = await execa('lintian', ['--no-tag-display-limit', deb], { reject: false, all: true });
    expect(lintian.all.split('\n').filter((l) => /^E: /.test(l)), lintian.all).toEqual([]);
  });

  it('a later release adds the next fix and counts up: .1 with one fix, .2 with both', async () => {
    const r1 = await run(['package', out('fix1'), '--depends', 'smallc=1.0-1+wfpatch1', '--out', out('releases')]);
    expect(r1.exitCode, r1.all).toBe(0);
    const r2 = await run(['package', out('fix1'), out('fix2'), '--depends', 'smallc=1.0-1+wfpatch1', '--out', out('releases')]);
    expect(r2.exitCode, r2.all).toBe(0);
    expect((await readdir(out('releases'))).sort()).toEqual(['smallc-livepatch_1.0-1+wfpatch1.1_amd64.deb', 'smallc-livepatch_1.0-1+wfpatch1.2_amd64.deb']);
    const cmp = await execa('dpkg', ['--compare-versions', '1.0-1+wfpatch1.2', 'gt', '1.0-1+wfpatch1.1'], { reject: false });
    expect(cmp.exitCode).toBe(0);
    expect((await fields(join(out('releases'), 'smallc-livepatch_1.0-1+wfpatch1.1_amd64.deb'))).Depends).toMatch(/^smallc \(= 1\.0-1\+wfpatch1\),/);
  });

  it('--dbgsym adds the exact -dbgsym package (a --source build has none by default; a Debian package build does)', async () => {
    const r = await run(['package', out('fix1'), '--depends', 'smallc=1.0-1+wfpatch1', '--dbgsym', '--out', out('dbgsym')]);
    expect(r.exitCode, r.all).toBe(0);
    expect((await fields(join(out('dbgsym'), 'smallc-livepatch_1.0-1+wfpatch1.1_amd64.deb'))).Depends).toMatch(/^smallc \(= 1\.0-1\+wfpatch1\), smallc-dbgsym \(= 1\.0-1\+wfpatch1\), libc6 \(>= 2\.\d+\)$/);
    const both = await run(['package', out('fix1'), '--depends', 'smallc=1.0-1', '--dbgsym', '--no-dbgsym', '--out', out('dbgsym-both')]);
    expect(both.exitCode).toBe(2);
    expect(both.all).toMatch(/--dbgsym and --no-dbgsym contradict/);
  });

  const refusals: [string, () => string[], RegExp][] = [
    ['outputs for two different builds', () => [out('fix1'), out('other-build')], /outputs for two different targets: .*build-id [0-9a-f]{40}.*build-id [0-9a-f]{40}/],
    ['a live output that is not kpatch-able', () => [out('fix1'), out('data')], /0002-data-change\.patch is not-text-only, not kpatch-able.*data object limits/],
    ['a folder that is no wfbuild output', () => [tree], /no report\.json/],
  ];
  for (const [what, outputs, message] of refusals) {
    it(`refuses ${what}: exit 2, the reason, nothing written`, async () => {
      const dest = out(`refused-${what.replace(/\W+/g, '-')}`);
      const r = await run(['package', ...outputs(), '--depends', 'smallc=1.0-1', '--out', dest]);
      expect(r.exitCode, r.all).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(await readdir(dest).catch(() => [])).toEqual([]);
    });
  }

  it('refuses a bundle changed after wfbuild wrote it (sha256 differs from report.json), nothing written', async () => {
    const copy = out('tampered');
    await cp(out('fix2'), copy, { recursive: true });
    const bytes = await readFile(join(copy, 'smallc.wfp'));
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(join(copy, 'smallc.wfp'), bytes);
    const r = await run(['package', out('fix1'), copy, '--depends', 'smallc=1.0-1', '--out', out('refused-tampered')]);
    expect(r.exitCode, r.all).toBe(2);
    expect(r.stderr).toMatch(/smallc\.wfp: sha256 [0-9a-f]{64} differs from report\.json's/);
    expect(await readdir(out('refused-tampered')).catch(() => [])).toEqual([]);
  });

  it('an output built with --source names no package: --depends is required', async () => {
    const r = await run(['package', out('fix1'), '--out', out('refused-nodep')]);
    expect(r.exitCode, r.all).toBe(2);
    expect(r.stderr).toMatch(/built from --source.*give --depends BINARY=VERSION/);
  });
});
