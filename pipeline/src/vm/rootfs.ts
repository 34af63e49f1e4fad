/**
 * A minimal Debian 12 root file system made with debootstrap from Debian's registry: the
 * machine a guest test runs as (dpkg with a small database, Debian's own maintainer scripts and
 * boot chain), instead of the build host's own root. Cached under a key of everything that
 * decides its contents, built under a lock, moved into place only when complete.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot as defaultCacheRoot } from '../paths.ts';
import { exists } from '../common/fs.ts';
import { withLock } from '../common/lock.ts';

export interface RootfsSpec {
  /** Debian suite; bookworm is the Debian 12 this project targets. */
  readonly suite?: string;
  /** debootstrap variant: minbase (dpkg, apt, no init) or the default (systemd, ifupdown, …). */
  readonly variant?: 'minbase' | 'default';
  /** Extra packages (debootstrap --include), resolved with their dependencies. */
  readonly packages?: readonly string[];
  readonly mirror?: string;
  /** Default $WFPATCH_CACHE. */
  readonly cacheRoot?: string;
  readonly onOutput?: (line: string) => void;
}

/** Bumped when the way a root is made changes, so old entries are not reused. */
const formatVersion = 1;

const defaultMirror = 'http://deb.debian.org/debian';

/** The cache key: what decides the root's contents. Pure. */
export function rootfsKey(spec: RootfsSpec): string {
  const parts = [
    `format=${formatVersion}`,
    `suite=${spec.suite ?? 'bookworm'}`,
    `variant=${spec.variant ?? 'minbase'}`,
    `mirror=${spec.mirror ?? defaultMirror}`,
    `packages=${[...(spec.packages ?? [])].sort().join(',')}`,
  ];
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 24);
}

/**
 * The root's folder, made on first use (about 30 s for minbase with the registry near). The
 * folder is shared by every caller with the same spec: treat it as read-only (export it under
 * an overlay, or copy it).
 */
export async function debianRootfs(spec: RootfsSpec = {}): Promise<string> {
  const root = spec.cacheRoot ?? defaultCacheRoot;
  const suite = spec.suite ?? 'bookworm';
  const key = rootfsKey(spec);
  const dir = join(root, 'rootfs', `${suite}-${key}`);
  const done = join(dir, '.complete');
  if (await exists(done)) return join(dir, 'root');
  await withLock(join(root, 'rootfs', `${suite}-${key}.lock`), async () => {
    if (await exists(done)) return;
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const args = [
      ...(spec.variant === 'default' ? [] : ['--variant=minbase']),
      ...(spec.packages && spec.packages.length > 0 ? [`--include=${[...spec.packages].sort().join(',')}`] : []),
      suite, join(tmp, 'root'), spec.mirror ?? defaultMirror,
    ];
    spec.onOutput?.(`rootfs: debootstrap ${args.join(' ')}`);
    const run = await execa('debootstrap', args, { all: true, reject: false });
    if (run.exitCode !== 0) {
      const log = join(tmp, 'debootstrap.log');
      await writeFile(log, run.all ?? '');
      throw new Error(`debootstrap failed (exit ${run.exitCode}); log: ${log}\n${(run.all ?? '').split('\n').slice(-15).join('\n')}`);
    }
    await writeFile(join(tmp, 'spec.json'), `${JSON.stringify({ suite, variant: spec.variant ?? 'minbase', packages: spec.packages ?? [], mirror: spec.mirror ?? defaultMirror }, null, 2)}\n`);
    await writeFile(join(tmp, '.complete'), '');
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  });
  return join(dir, 'root');
}
