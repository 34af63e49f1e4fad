/**
 * Issue #16: a Debian tree's build dependencies are checked (dpkg-checkbuilddeps) before the
 * original build and, as root, installed with apt-get build-dep; otherwise exit 13 names them.
 * A small Debian tree made from the smallc fixture, whose debian/control names `sl` (a 60 KiB
 * leaf package) and, in a second tree, a package that does not exist.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Report } from '../pipeline/src/report/types.ts';
import { parseCheckBuildDeps, splitDependencyList } from '../pipeline/src/common/build-deps.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const smallc = new URL('./fixtures/smallc/', import.meta.url).pathname;
const textPatch = join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch');
const isRoot = process.getuid?.() === 0;
const tiny = 'sl';

let scratch: string;
let cache: string;

/** smallc with a debian/ folder whose Build-Depends is `deps`. */
async function debianTree(name: string, deps: string): Promise<string> {
  const dir = join(scratch, name);
  await cp(join(smallc, 'tree'), dir, { recursive: true });
  await mkdir(join(dir, 'debian'));
  await writeFile(
    join(dir, 'debian/control'),
    `Source: smallc-wfpatch-test\nSection: misc\nPriority: optional\nMaintainer: wfpatch tests <tests@example.org>\nBuild-Depends: ${deps}\nStandards-Version: 4.6.2\n\nPackage: smallc-wfpatch-test\nArchitecture: any\nDepends: \${misc:Depends}\nDescription: wfpatch test tree\n A tiny program.\n`,
  );
  await writeFile(
    join(dir, 'debian/changelog'),
    'smallc-wfpatch-test (1.0-1) unstable; urgency=medium\n\n  * Test tree.\n\n -- wfpatch tests <tests@example.org>  Mon, 30 Nov 2026 10:00:00 +0000\n',
  );
  await writeFile(join(dir, 'debian/rules'), '#!/usr/bin/make -f\nbuild-arch:\n\t$(MAKE) -j2\nbuild: build-arch\n.PHONY: build build-arch\n');
  await chmod(join(dir, 'debian/rules'), 0o755);
  return dir;
}

function run(args: string[]) {
  return execa(wfbuild, args, { reject: false, all: true, env: { WFPATCH_CACHE: cache } });
}

async function installed(pkg: string): Promise<boolean> {
  const r = await execa('dpkg-query', ['-W', '-f=${Status}', pkg], { reject: false });
  return r.stdout.includes('install ok installed');
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-deps-'));
  cache = join(scratch, 'cache');
  // As root the test installs `sl` itself: remove it first, so the install really happens.
  if (isRoot && (await installed(tiny))) await execa('apt-get', ['remove', '-y', '-q', tiny], { env: { DEBIAN_FRONTEND: 'noninteractive' } });
}, 300_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('dpkg-checkbuilddeps output', () => {
  it('keeps versions, alternatives and qualifiers with their package', () => {
    expect(splitDependencyList('asciidoctor libcap-dev (>= 1:2.10) [linux-any] libfoo | libbar (<< 2) libx <!nocheck>')).toEqual([
      'asciidoctor',
      'libcap-dev (>= 1:2.10) [linux-any]',
      'libfoo | libbar (<< 2)',
      'libx <!nocheck>',
    ]);
    expect(parseCheckBuildDeps('dpkg-checkbuilddeps: error: Unmet build dependencies: libwrap0-dev libkrb5-dev (>= 1.0)\n')).toEqual({
      depends: ['libwrap0-dev', 'libkrb5-dev (>= 1.0)'],
      conflicts: [],
    });
  });
});

describe('wfbuild --source on a Debian tree with missing build dependencies', () => {
  it('a package that cannot be installed: exit 13 naming it, nothing built', async () => {
    const tree = await debianTree('unknown-dep', 'wfpatch-no-such-build-dep (>= 1.0)');
    const result = await run([textPatch, '--source', tree, '--out', join(scratch, 'out-unknown')]);
    expect(result.exitCode, result.all).toBe(13);
    expect(result.stderr).toMatch(/wfpatch-no-such-build-dep \(>= 1\.0\)/);
    expect(result.stderr).toMatch(/apt-get build-dep --arch-only \//);
  }, 300_000);

  it(`${tiny} (not installed): ${isRoot ? 'installed by wfbuild, then the build runs' : 'exit 13 naming it'}`, async () => {
    const tree = await debianTree('tiny-dep', `${tiny}, make`);
    const out = join(scratch, 'out-tiny');
    const result = await run([textPatch, '--source', tree, '--out', out]);
    if (isRoot) {
      expect(result.exitCode, result.all).toBe(0);
      expect(await installed(tiny)).toBe(true);
      const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
      expect(report.buildCommand).toBe('debian/rules build-arch');
      expect(report.timings.buildDeps).toBeGreaterThan(0);
    } else {
      expect(result.exitCode, result.all).toBe(13);
      expect(result.stderr).toMatch(new RegExp(`build dependencies of .* are not installed \\(missing: ${tiny}\\)`));
    }
  }, 600_000);
});
