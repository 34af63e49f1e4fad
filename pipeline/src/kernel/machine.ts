/**
 * A Debian 12 PC on a disk image, to install a kernel package the way an operator does: a
 * debootstrap'd root with systemd, initramfs-tools, GRUB and Debian's own kernel, on an ext4
 * partition of an MBR-partitioned raw image, with GRUB installed to the image's boot sector
 * (QEMU's SeaBIOS boots it like a BIOS PC) and a grub.cfg made by update-grub. Nothing here
 * knows the kernel under test: the package is installed later, by dpkg inside the machine.
 *
 * Making the image needs root: loop devices with partition scanning, mount, chroot. It is
 * booted by machine-boot.ts.
 */
import { chmod, copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { debianRootfs } from '../vm/rootfs.ts';
import { requirePrerequisites, type Prerequisite } from './prerequisites.ts';

/** What the machine's root holds besides debootstrap's default set (which has systemd). */
export const machinePackages: readonly string[] = ['grub-pc', 'initramfs-tools', 'linux-image-amd64', 'systemd-sysv'];

export const machinePrerequisites: readonly Prerequisite[] = [
  { what: 'sfdisk', path: 'sfdisk', debianPackage: 'fdisk' },
  { what: 'losetup', path: 'losetup', debianPackage: 'mount' },
  { what: 'mkfs.ext4', path: 'mkfs.ext4', debianPackage: 'e2fsprogs' },
  { what: 'debootstrap', path: 'debootstrap', debianPackage: 'debootstrap' },
];

/** A file put into the machine's root before its first boot. */
export interface MachineFile {
  readonly host: string;
  /** Absolute path in the machine. */
  readonly guest: string;
  readonly mode?: number;
}

export interface MachineOptions {
  /** Folder for the image (and the mount point while it is made). */
  readonly dir: string;
  readonly files?: readonly MachineFile[];
  /**
   * A program run once at the end of every boot by a systemd oneshot unit, its output on
   * the serial console; it decides what the boot does and powers the machine off.
   */
  readonly bootCheck?: string;
  readonly sizeMiB?: number;
  readonly onOutput?: (line: string) => void;
}

export interface Machine {
  readonly image: string;
  /** The root file system's UUID (fstab, grub.cfg). */
  readonly rootUuid: string;
  /** Debian's own kernel release installed in the root, e.g. 6.1.0-41-amd64. */
  readonly stockRelease: string;
}

/** The partition table: one bootable Linux partition from 1 MiB (room for GRUB's core.img). */
export const partitionTable = 'label: dos\nstart=2048, type=83, bootable\n';

/** /etc/default/grub's settings for a headless PC: serial console, short menu, full kernel log. */
export const grubDefaults: Readonly<Record<string, string>> = {
  GRUB_TIMEOUT: '1',
  GRUB_CMDLINE_LINUX_DEFAULT: '""',
  GRUB_CMDLINE_LINUX: '"console=ttyS0,115200"',
  GRUB_TERMINAL: '"serial console"',
  GRUB_SERIAL_COMMAND: '"serial --unit=0 --speed=115200"',
};

/** `text` (a shell-variable file) with each key set to its value, replacing earlier lines. Pure. */
export function withSettings(text: string, settings: Readonly<Record<string, string>>): string {
  const kept = text.split('\n').filter((line) => {
    const key = /^\s*#?\s*([A-Z_]+)=/.exec(line)?.[1];
    return key === undefined || !(key in settings);
  });
  while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
  return [...kept, ...Object.entries(settings).map(([k, v]) => `${k}=${v}`), ''].join('\n');
}

/** The oneshot unit that runs `program` after the machine reached multi-user.target. */
export function bootCheckUnit(program: string): string {
  return [
    '[Unit]',
    'Description=wfpatch install test: check this boot, then power off',
    'After=multi-user.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${program}`,
    'StandardOutput=journal+console',
    'StandardError=journal+console',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

async function run(cmd: string, args: readonly string[], log?: (line: string) => void): Promise<string> {
  log?.(`machine: ${cmd} ${args.join(' ')}`);
  const r = await execa(cmd, args, { all: true, reject: false });
  if (r.exitCode !== 0) {
    throw new UserError(`${cmd} ${args.join(' ')} failed (exit ${r.exitCode}):\n${(r.all ?? '').split('\n').slice(-20).join('\n')}`, ExitCode.internal);
  }
  return r.stdout;
}

/** Debian's kernel release in `root` (from /boot/vmlinuz-*-amd64). */
async function stockKernel(root: string): Promise<string> {
  const out = await run('ls', [join(root, 'boot')]);
  const release = out.split('\n').map((n) => /^vmlinuz-(.*-amd64)$/.exec(n)?.[1]).find((r) => r !== undefined);
  if (release === undefined) throw new UserError(`no Debian kernel in ${join(root, 'boot')}`, ExitCode.internal);
  return release;
}

/**
 * A /dev for the chroot: a tmpfs with the few nodes the tools use (copies of the host's) and
 * the /dev/disk/by-uuid link udev would make, which update-grub needs to write root=UUID=…
 * instead of the loop partition's name. The host's own /dev is not touched.
 */
async function chrootDev(dev: string, loop: string, part: string, rootUuid: string): Promise<void> {
  await run('mount', ['-t', 'tmpfs', '-o', 'mode=755', 'wfpatch-machine-dev', dev]);
  await run('cp', ['-a', '/dev/null', '/dev/zero', '/dev/random', '/dev/urandom', loop, part, dev]);
  await mkdir(join(dev, 'disk/by-uuid'), { recursive: true });
  await symlink(`../../${basename(part)}`, join(dev, 'disk/by-uuid', rootUuid));
}

/**
 * The machine's disk image in `opts.dir/disk.img`, made from the cached debootstrap root. The
 * loop device, mounts and chroot binds are undone on every path out.
 */
export async function makeDebianMachine(opts: MachineOptions): Promise<Machine> {
  await requirePrerequisites(machinePrerequisites);
  const log = opts.onOutput;
  const root = await debianRootfs({ variant: 'default', packages: machinePackages, onOutput: log });
  await mkdir(opts.dir, { recursive: true });
  const image = join(opts.dir, 'disk.img');
  const mnt = join(opts.dir, 'mnt');
  await rm(image, { force: true });
  await run('truncate', ['-s', `${opts.sizeMiB ?? 3072}M`, image]);
  await execa('sfdisk', ['--quiet', image], { input: partitionTable });
  const loop = (await run('losetup', ['--find', '--show', '--partscan', image], log)).trim();
  const mounted: string[] = [];
  try {
    const part = `${loop}p1`;
    for (let i = 0; i < 20 && !(await exists(part)); i++) await new Promise((r) => setTimeout(r, 100));
    // In some containers the scan at attach makes no partition device; partx asks again.
    if (!(await exists(part))) await run('partx', ['--add', loop], log);
    for (let i = 0; i < 20 && !(await exists(part)); i++) await new Promise((r) => setTimeout(r, 100));
    if (!(await exists(part))) throw new UserError(`${part} did not appear (loop partition scanning)`, ExitCode.internal);
    await run('mkfs.ext4', ['-q', '-L', 'debian-root', part], log);
    const rootUuid = (await run('blkid', ['-s', 'UUID', '-o', 'value', part])).trim();
    await mkdir(mnt, { recursive: true });
    await run('mount', [part, mnt], log);
    mounted.push(mnt);
    await run('cp', ['-a', `${root}/.`, mnt], log);
    const stockRelease = await stockKernel(mnt);
    await writeFile(join(mnt, 'etc/fstab'), `UUID=${rootUuid} / ext4 errors=remount-ro 0 1\n`);
    await writeFile(join(mnt, 'etc/hostname'), 'wfpatch-machine\n');
    const grubFile = join(mnt, 'etc/default/grub');
    await writeFile(grubFile, withSettings(await readFile(grubFile, 'utf8'), grubDefaults));
    for (const f of opts.files ?? []) {
      const to = join(mnt, f.guest);
      await mkdir(join(to, '..'), { recursive: true });
      await copyFile(f.host, to);
      if (f.mode !== undefined) await chmod(to, f.mode);
    }
    if (opts.bootCheck !== undefined) {
      const program = `/usr/local/sbin/${basename(opts.bootCheck)}`;
      await copyFile(opts.bootCheck, join(mnt, program));
      await chmod(join(mnt, program), 0o755);
      await writeFile(join(mnt, 'etc/systemd/system/wfpatch-boot-check.service'), bootCheckUnit(program));
      await mkdir(join(mnt, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
      await symlink('../wfpatch-boot-check.service', join(mnt, 'etc/systemd/system/multi-user.target.wants/wfpatch-boot-check.service'));
    }
    for (const fs of ['proc', 'sys']) {
      await run('mount', ['--bind', `/${fs}`, join(mnt, fs)]);
      mounted.push(join(mnt, fs));
    }
    await chrootDev(join(mnt, 'dev'), loop, part, rootUuid);
    mounted.push(join(mnt, 'dev'));
    // The machine's own tools, as the installer runs them: the initrd of Debian's kernel,
    // GRUB in the disk's boot sector, grub.cfg from /etc/default/grub.
    if (!(await exists(join(mnt, `boot/initrd.img-${stockRelease}`)))) await run('chroot', [mnt, 'update-initramfs', '-c', '-k', stockRelease], log);
    await run('chroot', [mnt, 'grub-install', '--target=i386-pc', loop], log);
    await run('chroot', [mnt, 'update-grub'], log);
    return { image, rootUuid, stockRelease };
  } finally {
    for (const m of mounted.reverse()) await execa('umount', [m], { reject: false });
    await execa('losetup', ['-d', loop], { reject: false });
  }
}
