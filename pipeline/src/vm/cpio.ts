import { open } from 'node:fs/promises';

/**
 * A minimal writer for the "newc" cpio format the kernel unpacks as initramfs. Writing it
 * ourselves lets the image carry root-owned files and device nodes without running as root
 * and without a shell pipeline around cpio(1).
 */
export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(ino: number, name: string, mode: number, data: Buffer, rdevMajor = 0, rdevMinor = 0): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const header = Buffer.from(
    '070701' +
      [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0].map(hex8).join(''),
  );
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}

/** Writes the entries (paths relative to /, parents before children) and the trailer. */
export async function writeCpio(path: string, entries: readonly CpioEntry[]): Promise<void> {
  const handle = await open(path, 'w');
  try {
    let ino = 1;
    for (const entry of entries) {
      const name = entry.path.replace(/^\/+/, '');
      let parts: Buffer[];
      switch (entry.kind) {
        case 'dir':
          parts = record(ino++, name, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0));
          break;
        case 'file':
          parts = record(ino++, name, S_IFREG | (entry.mode & 0o7777), entry.data);
          break;
        case 'symlink':
          parts = record(ino++, name, S_IFLNK | 0o777, Buffer.from(entry.target));
          break;
        case 'chardev':
          parts = record(ino++, name, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), entry.major, entry.minor);
          break;
      }
      for (const part of parts) if (part.length > 0) await handle.write(part);
    }
    for (const part of record(0, 'TRAILER!!!', 0, Buffer.alloc(0))) if (part.length > 0) await handle.write(part);
  } finally {
    await handle.close();
  }
}
