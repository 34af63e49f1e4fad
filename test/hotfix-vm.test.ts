/**
 * `wfbuild vm run --userland=rootfs` (issue #12's guest userland): the guest is a small Debian
 * machine — a per-run copy of a debootstrap'd bookworm minbase root over virtio-9p — where dpkg
 * sees only the root's own few hundred packages, can install a .deb, and nothing it writes
 * reaches the cached root; a --share folder is there read-only at its host path. Bad input is
 * refused before anything boots.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';
import { debianRootfs } from '../pipeline/src/vm/rootfs.ts';

const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');
let scratch: string;

beforeAll(async () => {
  await mkdir('/var/tmp', { recursive: true });
  scratch = await mkdtemp('/var/tmp/wfpatch-hotfix-vm-');
  // A tiny package to install in the guest, built with dpkg-deb.
  const pkg = join(scratch, 'pkg');
  await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
  await mkdir(join(pkg, 'usr/share/wfvm-probe'), { recursive: true });
  await writeFile(join(pkg, 'usr/share/wfvm-probe/hello'), 'hello from a .deb\n');
  await writeFile(join(pkg, 'DEBIAN/control'), 'Package: wfvm-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: wfpatch <wfpatch@wfpatch.invalid>\nDepends: busybox\nDescription: probe package of the rootfs guest test\n');
  await execa('dpkg-deb', ['--root-owner-group', '--build', pkg, join(scratch, 'wfvm-probe_1.0_all.deb')]);
  await writeFile(join(scratch, 'guest.sh'), `#!/bin/sh
set -u
R=/results
dpkg-query -W -f '\${Package}\\n' | wc -l > $R/packages.txt
dpkg -i ${scratch}/wfvm-probe_1.0_all.deb > $R/dpkg.txt 2>&1; echo $? > $R/dpkg.rc
cat /usr/share/wfvm-probe/hello > $R/hello.txt
touch ${scratch}/written-by-guest 2>$R/share-write.txt; echo $? > $R/share-write.rc
busybox nc 2>&1 | head -n 1 > $R/nc.txt
cat /etc/debian_version > $R/debian_version.txt
exit 0
`);
  await chmod(join(scratch, 'guest.sh'), 0o755);
}, 600_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('wfbuild vm run --userland=rootfs', () => {
  it('boots a debootstrap root: a small dpkg database, dpkg -i works, a share is read-only, the cached root is untouched', async () => {
    const out = join(scratch, 'results');
    const r = await execa(wfbuild, ['vm', 'run', '--quiet', '--timeout', '900', '--mem', '1024', '--userland=rootfs', '--rootfs-package', 'busybox', '--share', scratch, '--out', out, '--', join(scratch, 'guest.sh')], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    const read = (n: string): Promise<string> => readFile(join(out, n), 'utf8');
    const packages = Number((await read('packages.txt')).trim());
    expect(packages).toBeGreaterThan(50); // minbase
    expect(packages).toBeLessThan(200); // not the host's database
    expect(await read('dpkg.rc')).toBe('0\n');
    expect(await read('hello.txt')).toBe('hello from a .deb\n');
    expect(await read('share-write.rc')).not.toBe('0\n');
    expect(await read('share-write.txt')).toMatch(/Read-only file system/);
    expect(await read('debian_version.txt')).toMatch(/^12\./);
    expect(await read('nc.txt')).toMatch(/BusyBox/); // the hot-fix guest script talks to memcached with it
    // The guest's dpkg wrote its per-run copy, not the cached root.
    const cached = await debianRootfs({ packages: ['busybox'] });
    expect(await readdir(join(cached, 'usr/share'))).not.toContain('wfvm-probe');
    expect((await readdir(scratch)).includes('written-by-guest')).toBe(false);
  }, 1_800_000);

  it('refuses bad --userland input with exit 2 before booting', async () => {
    const cases: [string[], RegExp][] = [
      [['--userland=floppy'], /--userland=floppy: expected host or rootfs/],
      [['--share', '/var/tmp'], /need --userland=rootfs/],
      [['--userland=rootfs', '--share', '/nonexistent/dir'], /\/nonexistent\/dir is not a folder/],
      [['--userland=rootfs', '--rootfs-package', 'Bad_Name'], /not a Debian package name/],
    ];
    for (const [args, message] of cases) {
      const r = await execa(wfbuild, ['vm', 'run', ...args, '--', '/bin/true'], { reject: false });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});
