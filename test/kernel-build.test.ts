import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildKernel, defaultConfigDir, defaultPatchesDir, kernelCacheDir, type KernelBuild } from '../pipeline/src/vm/index.ts';
import { requirePrerequisites } from '../pipeline/src/kernel/prerequisites.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
let dir: string;
/** These tests take the kernel build lock, which another suite's build may hold for many minutes. */
const lockWaitTimeout = 2_400_000;
let first: KernelBuild;

async function outEntries(): Promise<string[]> {
  return readdir(join(kernelCacheDir, 'out')).catch(() => []);
}

/** The applied-series records of the unpacked source trees. */
async function treeStates(): Promise<string[]> {
  const srcDir = join(kernelCacheDir, 'src');
  const trees = (await readdir(srcDir).catch(() => [])).filter((n) => !n.includes('.tmp-'));
  return Promise.all(trees.map((t) => readFile(join(srcDir, t, 'state.json'), 'utf8').catch(() => '')));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wfkernel-test-'));
  first = await buildKernel({ variant: 'debug' });
}, 3_600_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('buildKernel', () => {
  it('reuses an unchanged build from the cache in well under a second', async () => {
    const before = (await stat(first.bzImage)).mtimeMs;
    const started = performance.now();
    const again = await buildKernel({ variant: 'debug' });
    const elapsed = performance.now() - started;
    expect(again.cached).toBe(true);
    expect(again.cacheKey).toBe(first.cacheKey);
    expect(again.bzImage).toBe(first.bzImage);
    expect((await stat(again.bzImage)).mtimeMs).toBe(before);
    expect(elapsed).toBeLessThan(1000);
    expect(again.version).toMatch(/^6\.1\.\d+/);
  });

  it('reports a patch that does not apply by name, with the rejected hunk, and caches nothing', async () => {
    const patches = join(dir, 'patches-broken');
    await cp(defaultPatchesDir(), patches, { recursive: true }).catch(() => undefined);
    await mkdir(patches, { recursive: true });
    await writeFile(join(patches, '0001-readme.patch'), [
      '--- a/README',
      '+++ b/README',
      '@@ -1,4 +1,5 @@',
      ' Linux kernel',
      ' ============',
      '+wfpatch test: a patch that applies',
      ' ',
      ' There are several guides for kernel developers and users. These guides can',
      '',
    ].join('\n'));
    await writeFile(join(patches, '0002-broken.patch'), [
      '--- a/Makefile',
      '+++ b/Makefile',
      '@@ -1,3 +1,3 @@',
      ' # SPDX-License-Identifier: GPL-2.0',
      '-VERSION = 5',
      '+VERSION = 7',
      ' PATCHLEVEL = 1',
      '',
    ].join('\n'));
    await writeFile(join(patches, 'series'), '# test series\n0001-readme.patch\n0002-broken.patch\n');
    const before = await outEntries();
    const treeBefore = await treeStates();
    const error = await buildKernel({ variant: 'debug', patchesDir: patches }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(12);
    expect((error as Error).message).toMatch(/patch 0002-broken\.patch does not apply/);
    expect((error as Error).message).toMatch(/Makefile: hunk #1 rejected/);
    expect((error as Error).message).toContain('-VERSION = 5');
    expect((error as Error).message).not.toContain('0001-readme');
    expect(await outEntries()).toEqual(before);
    // Rehearsed on copies: the shared source tree still carries the working series.
    expect(await treeStates()).toEqual(treeBefore);

    const cli = await execa(wfbuild, ['kernel', 'build', '--quiet', '--patches', patches], { reject: false });
    expect(cli.exitCode).toBe(12);
    expect(cli.stderr).toContain('patch 0002-broken.patch does not apply');
  }, lockWaitTimeout);

  it('fails, listing them, when config options are dropped by olddefconfig', async () => {
    const config = join(dir, 'config-dropped');
    await cp(defaultConfigDir(), config, { recursive: true });
    // IPV6_ROUTER_PREF depends on IPV6, which base.config turns off (PCI_MSI, the old example,
    // is on since the guest's virtio-9p userland needs it).
    await writeFile(join(config, 'zz-test.config'), 'CONFIG_IPV6_ROUTER_PREF=y\n');
    const before = await outEntries();
    const error = await buildKernel({ variant: 'debug', configDir: config }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/CONFIG_IPV6_ROUTER_PREF=y \(zz-test\.config\) is not set after olddefconfig/);
    expect(await outEntries()).toEqual(before);
  }, lockWaitTimeout);

  it('rejects an unknown variant and names the package of a missing prerequisite', async () => {
    await expect(buildKernel({ variant: 'fast' as never })).rejects.toThrow(/unknown kernel variant 'fast'/);
    await expect(
      requirePrerequisites([{ what: 'Linux source', path: '/nonexistent/linux-source-6.1.tar.xz', debianPackage: 'linux-source-6.1' }]),
    ).rejects.toThrow(/linux-source-6\.1[\s\S]*apt-get install -y linux-source-6\.1/);
  });

  it('prints the kernel version and cache key on the command line', async () => {
    const result = await execa(wfbuild, ['kernel', 'build', '--variant', 'debug', '--quiet']);
    expect(result.stdout).toContain(`kernel ${first.version} (cached)`);
    expect(result.stdout).toContain(`cache key ${first.cacheKey}`);
    const bad = await execa(wfbuild, ['kernel', 'build', '--variant', 'nope'], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('--variant must be debug or bench');
  });
});
