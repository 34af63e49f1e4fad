import { stat } from 'node:fs/promises';
import { execa } from 'execa';
import { linuxSourcePackage, linuxSourceTarball } from './prerequisites.ts';

/** Identity of the linux-source tarball a kernel is built from (part of the cache key). */
export interface LinuxSource {
  readonly tarball: string;
  /** Debian package version, e.g. 6.1.192-2. */
  readonly packageVersion: string;
  /** Size and mtime of the tarball: catches a re-installed or hand-replaced tarball too. */
  readonly fingerprint: string;
}

export async function linuxSource(): Promise<LinuxSource> {
  const info = await stat(linuxSourceTarball);
  const query = await execa('dpkg-query', ['-W', '-f', '${Version}', linuxSourcePackage], { reject: false });
  const packageVersion = query.exitCode === 0 && query.stdout.trim() !== '' ? query.stdout.trim() : 'unknown';
  return {
    tarball: linuxSourceTarball,
    packageVersion,
    fingerprint: `${info.size}:${Math.floor(info.mtimeMs)}`,
  };
}
