// wfbuild kernel package: the kernel's own `make bindeb-pkg` on the built tree gives a
// linux-image-6.1.*-wfpatch .deb with the kernel in /boot. Runs on the debug variant (the
// one CI builds anyway); kernel-debian.test.ts checks the Debian variant's package.
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { packageKernel, type KernelPackage } from '../pipeline/src/kernel/index.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
let pkg: KernelPackage;

beforeAll(async () => {
  pkg = await packageKernel({ variant: 'debug' });
}, 3_600_000);

describe('wfbuild kernel package', () => {
  it('makes a linux-image-6.1.*-wfpatch .deb with its name and version in the control file', async () => {
    expect(pkg.packageName).toMatch(/^linux-image-6\.1\.\d+-wfpatch$/);
    expect(pkg.packageVersion).toMatch(/^6\.1\.\d+-\d+\+wfpatch1$/);
    const info = (await execa('dpkg-deb', ['-I', pkg.deb])).stdout;
    expect(info).toContain(`Package: ${pkg.packageName}`);
    expect(info).toContain(`Version: ${pkg.packageVersion}`);
    expect(info).toContain('Architecture: amd64');
  });

  it('contains the kernel as /boot/vmlinuz-<release>, its config and System.map', async () => {
    const release = pkg.packageName.replace(/^linux-image-/, '');
    const files = (await execa('dpkg-deb', ['-c', pkg.deb])).stdout;
    expect(files).toMatch(new RegExp(`\\./boot/vmlinuz-${release.replace(/\./g, '\\.')}\\n`));
    expect(files).toContain(`./boot/config-${release}`);
    expect(files).toContain(`./boot/System.map-${release}`);
  });

  it('a second call reuses the packages; the command prints them', async () => {
    const again = await packageKernel({ variant: 'debug' });
    expect(again.cached).toBe(true);
    expect(again.deb).toBe(pkg.deb);
    const out = await execa(wfbuild, ['kernel', 'package', '--variant', 'debug', '--quiet']);
    expect(out.stdout).toContain(`package ${pkg.packageName} ${pkg.packageVersion} (cached)`);
    expect(out.stdout).toContain(`deb ${pkg.deb}`);
  }, 600_000);
});
