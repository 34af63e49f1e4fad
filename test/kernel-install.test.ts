// The debian variant's linux-image package installed on a Debian 12 PC and booted, then
// removed again (issue 15). The PC: a debootstrap'd bookworm root (systemd, initramfs-tools,
// grub-pc, Debian's linux-image-amd64) on an ext4 partition of a raw disk image, GRUB in its
// boot sector, booted by QEMU/TCG's SeaBIOS from a virtio disk (pipeline/src/kernel/machine.ts).
// Three boots, each ended by kernel/tests/install-check.sh (a systemd oneshot unit):
//   1. Debian's kernel: `dpkg -i` the package; Debian's hooks make the initrd and the GRUB entry.
//   2. GRUB's default entry, which is now the wfpatch kernel: generation programs run, no
//      splat, no failed unit; then `dpkg -r` the package inside the running machine.
//   3. GRUB's default is Debian's kernel again.
//
// It needs the debian variant's build (hours on two shared cores, like kernel-debian.test.ts)
// and root (loop devices, mount, chroot), so it runs only when asked:
//   npm run test:kernel-install       (WFGEN_INSTALL=1 vitest run test/kernel-install.test.ts)
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { packageKernel, type KernelPackage } from '../pipeline/src/kernel/index.ts';
import { makeDebianMachine, type Machine } from '../pipeline/src/kernel/machine.ts';
import { bootMachine, type BootResult } from '../pipeline/src/kernel/machine-boot.ts';
import { detectKernelFailure } from '../pipeline/src/vm/console.ts';

const asked = process.env.WFGEN_INSTALL === '1';
const isRoot = process.getuid?.() === 0;
const skipReason = !asked
  ? 'kernel-install: skipped (needs the debian variant kernel, hours to build; run: npm run test:kernel-install)'
  : !isRoot
    ? 'kernel-install: skipped (needs root: loop devices, mount, chroot)'
    : undefined;
if (skipReason) console.log(skipReason);

const testsDir = join(repoRoot, 'kernel/tests');
const guestDir = '/var/lib/wfpatch-install';
/** Generation programs run on the installed kernel (static, so they need nothing from the root). */
const programs: [name: string, args: string][] = [
  ['gen_pinned', ''],
  ['gen_forkexec', ''],
  ['gen_thp', ''],
];

let pkg: KernelPackage;
let release: string;
let machine: Machine;
const boots: BootResult[] = [];

/** WFCHECK key=value lines of one boot, in order. */
function checks(boot: BootResult): [string, string][] {
  return boot.console
    .split(/\r?\n/)
    .map((l) => /WFCHECK ([a-z-]+)=(.*)$/.exec(l.trimEnd()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], m[2]]);
}
function values(boot: BootResult, key: string): string[] {
  return checks(boot).filter(([k]) => k === key).map(([, v]) => v);
}
function value(boot: BootResult, key: string): string | undefined {
  return values(boot, key)[0];
}
/**
 * The console without what systemd units printed: journald passes their lines to the kernel
 * log, so they carry printk timestamps ("[ 66.1] install-check.sh[370]: depmod: WARNING: …"),
 * and a program's "WARNING:" is not a kernel report.
 */
function kernelConsole(boot: BootResult): string {
  return boot.console
    .split(/\r?\n/)
    .filter((l) => !/\[\s*\d+\.\d+\] [\w.@-]+\[\d+\]: /.test(l))
    .join('\n');
}

beforeAll(async () => {
  if (skipReason) return;
  pkg = await packageKernel({ variant: 'debian' });
  release = pkg.packageName.replace(/^linux-image-/, '');
  const work = await mkdtemp(join(tmpdir(), 'wfpatch-install-'));
  const files = [{ host: pkg.deb, guest: `${guestDir}/${basename(pkg.deb)}` }];
  for (const [name] of programs) {
    const bin = join(work, name);
    await execa('gcc', ['-static', '-O2', '-pthread', '-Wall', '-Wno-unused-result', '-o', bin, join(testsDir, `${name}.c`)]);
    files.push({ host: bin, guest: `${guestDir}/${name}` });
  }
  await writeFile(join(work, 'programs'), programs.map(([n, a]) => `${n} ${a}`.trim()).join('\n') + '\n');
  await writeFile(join(work, 'package'), `${pkg.packageName}\n`);
  files.push({ host: join(work, 'programs'), guest: `${guestDir}/programs` }, { host: join(work, 'package'), guest: `${guestDir}/package` });
  const started = performance.now();
  machine = await makeDebianMachine({
    dir: join(work, 'machine'),
    files: files.map((f) => ({ ...f, mode: f.guest.includes('/gen_') ? 0o755 : 0o644 })),
    bootCheck: join(testsDir, 'install-check.sh'),
  });
  console.log(`machine: ${machine.image}, Debian kernel ${machine.stockRelease}, root UUID ${machine.rootUuid} (${Math.round((performance.now() - started) / 1000)} s)`);
  for (const phase of ['install', 'run', 'back']) {
    const t = performance.now();
    const boot = await bootMachine(machine.image, { timeoutSec: 1800 });
    boots.push(boot);
    console.log(`boot ${phase}: ${Math.round((performance.now() - t) / 1000)} s, powered off: ${boot.poweredOff}\n${checks(boot).map(([k, v]) => `  ${k}=${v}`).join('\n')}`);
    await writeFile(join(work, `console-${phase}.log`), boot.console);
    if (!boot.poweredOff) break;
  }
  console.log(`consoles in ${work}`);
  await rm(machine.image, { force: true });
}, 6 * 3_600_000);

describe.skipIf(skipReason !== undefined)('the debian variant package on a Debian 12 PC', () => {
  it('boot 1 (Debian\'s kernel): dpkg -i installs it, Debian\'s hooks make the initrd and the GRUB entries', () => {
    const b = boots[0];
    expect(b.poweredOff, b.console.slice(-3000)).toBe(true);
    expect(value(b, 'phase')).toBe('install');
    expect(value(b, 'uname')).toBe(machine.stockRelease);
    expect(machine.stockRelease).toMatch(/^6\.1\.0-\d+-amd64$/);
    expect(value(b, 'root')).toBe('/dev/vda1');
    expect(values(b, 'dpkg-install')).toEqual([`0 ${basename(pkg.deb)}`]);
    const boot = values(b, 'boot-file');
    for (const f of [`vmlinuz-${release}`, `initrd.img-${release}`, `config-${release}`, `System.map-${release}`]) expect(boot).toContain(f);
    const entries = values(b, 'grub-entry');
    expect(entries).toContain(`Debian GNU/Linux, with Linux ${release}`);
    expect(entries).toContain(`Debian GNU/Linux, with Linux ${machine.stockRelease}`);
    expect(value(b, 'done')).toBe('install');
  });

  it('boot 2 (GRUB\'s default): runs the wfpatch kernel from the disk, generation programs pass, no splat, no failed unit', () => {
    const b = boots[1];
    expect(b.poweredOff, b.console.slice(-3000)).toBe(true);
    expect(value(b, 'phase')).toBe('run');
    expect(value(b, 'uname')).toBe(release);
    expect(release).toBe('6.1.192-wfpatch');
    expect(value(b, 'root')).toBe('/dev/vda1');
    expect(value(b, 'cmdline')).toContain(`root=UUID=${machine.rootUuid}`);
    expect(values(b, 'failed-unit')).toEqual([]);
    for (const [name] of programs) {
      expect(b.console).toContain(`${name}: PASS`);
      expect(values(b, 'program')).toContain(`${name} rc=0`);
    }
    expect(detectKernelFailure(kernelConsole(b))).toBeNull();
  });

  it('going back: dpkg -r in the running machine, the next boot is Debian\'s kernel', () => {
    expect(values(boots[1], 'dpkg-remove')).toEqual([`0 ${pkg.packageName}`]);
    // its postrm hooks removed the initrd and the GRUB entry; Debian's kernel is left
    const left = values(boots[1], 'boot-file');
    expect(left.filter((f) => f.includes(release))).toEqual([]);
    expect(left).toContain(`vmlinuz-${machine.stockRelease}`);
    expect(left).toContain(`initrd.img-${machine.stockRelease}`);
    const b = boots[2];
    expect(b.poweredOff, b.console.slice(-3000)).toBe(true);
    expect(value(b, 'phase')).toBe('back');
    expect(value(b, 'uname')).toBe(machine.stockRelease);
    expect(value(b, 'package')).toMatch(new RegExp(`^${pkg.packageName.replace(/\./g, '\\.')} status=(?!ii)`));
    expect(values(b, 'failed-unit')).toEqual([]);
  });
});
