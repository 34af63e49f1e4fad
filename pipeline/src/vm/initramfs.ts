import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, normalize, posix } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { writeCpio, type CpioEntry } from './cpio.ts';
import { sharedLibraries } from './libs.ts';
import { guestResultsDir } from './init-script.ts';

export const busyboxPath = '/bin/busybox';

/**
 * /init mounts a fresh tmpfs on /tmp, which would hide files placed there in the image;
 * they are stored here instead and copied into the tmpfs by /init.
 */
export const tmpStaging = '/.wfvm-tmp';

/** Where a guest path is stored in the image. */
function imagePath(guest: string): string {
  return guest === '/tmp' || guest.startsWith('/tmp/') ? `${tmpStaging}${guest.slice(4)}` : guest;
}

/** A host file to place in the guest. */
export interface GuestFile {
  host: string;
  /** Absolute guest path; default: the same path as on the host. */
  guest?: string;
}

const reserved = ['/init', '/bin/busybox', '/proc', '/sys', '/dev', tmpStaging];

export function guestPathFor(file: GuestFile): string {
  const guest = file.guest ?? file.host;
  if (!isAbsolute(guest) || guest.split('/').includes('..')) {
    throw new UserError(`guest path '${guest}' for ${file.host} must be absolute and must not contain '..'`);
  }
  const path = normalize(guest).replace(/\/+$/, '');
  if (reserved.some((r) => path === r || path.startsWith(`${r}/`))) {
    throw new UserError(`guest path ${path} is reserved by the harness (${reserved.join(', ')})`);
  }
  return path;
}

async function readHostFile(host: string): Promise<{ data: Buffer; mode: number }> {
  try {
    const info = await stat(host);
    if (!info.isFile()) throw new UserError(`${host} is not a regular file`);
    return { data: await readFile(host), mode: info.mode & 0o7777 };
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw new UserError(`cannot read ${host}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * Writes the initramfs: busybox, /init, the given files at their guest paths and every
 * shared library they need at the path the host's loader resolves it to.
 */
export async function buildInitramfs(path: string, init: string, files: readonly GuestFile[]): Promise<void> {
  const placed = new Map<string, CpioEntry>();
  const place = (guest: string, data: Buffer, mode: number): void => {
    placed.set(guest, { kind: 'file', path: imagePath(guest), data, mode });
  };
  const busybox = await readHostFile(busyboxPath).catch(() => {
    throw new UserError(`${busyboxPath} is missing: apt-get install -y busybox-static`, 13);
  });
  place('/bin/busybox', busybox.data, 0o755);
  place('/init', Buffer.from(init), 0o755);
  for (const file of files) {
    const { data, mode } = await readHostFile(file.host);
    place(guestPathFor(file), data, mode);
  }
  for (const lib of await sharedLibraries(files.map((f) => f.host))) {
    // Don't overwrite a file the caller placed at the same path on purpose.
    if (placed.has(lib)) continue;
    const { data, mode } = await readHostFile(lib);
    place(lib, data, mode | 0o555);
  }
  const dirs = new Set<string>(['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/proc', '/sys', '/dev', '/tmp', '/root', '/etc', guestResultsDir]);
  for (const path of [...dirs, ...[...placed.values()].map((e) => e.path)]) {
    for (let d = dirname(path); d !== '/'; d = posix.dirname(d)) dirs.add(d);
  }
  const entries: CpioEntry[] = [
    ...[...dirs].map((d): CpioEntry => ({ kind: 'dir', path: d, mode: d === '/tmp' ? 0o1777 : 0o755 })),
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    { kind: 'chardev', path: '/dev/console', major: 5, minor: 1 },
    { kind: 'chardev', path: '/dev/null', major: 1, minor: 3, mode: 0o666 },
    ...placed.values(),
  ];
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  await writeCpio(path, entries);
}
