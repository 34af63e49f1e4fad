/** What a corpus package needs before anything is built: its sources and build dependencies. */
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from '../common/text.ts';
import type { Manifest } from './manifest.ts';
import { dscPath, ensureSources, treeAt } from './tree.ts';

/** The PATH package builds run with (Debian's, without /usr/local and user shims). */
export const debianPath = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Installs the package's build dependencies when dpkg-checkbuilddeps says some are missing. */
async function ensureBuildDeps(manifest: Manifest, tree: string, log: (line: string) => void): Promise<void> {
  const check = await execa('dpkg-checkbuilddeps', ['-B'], { cwd: tree, reject: false, all: true });
  if (check.exitCode === 0) return;
  log(`${manifest.package}: installing build dependencies (apt-get build-dep)`);
  const result = await execa('apt-get', ['build-dep', '-y', '-q', '--arch-only', dscPath(manifest)], { env: { DEBIAN_FRONTEND: 'noninteractive' }, reject: false, all: true });
  if (result.exitCode !== 0) throw new UserError(`apt-get build-dep ${manifest.package} failed:\n${tail(result.all ?? '', 10)}`, ExitCode.missingPrerequisite);
}

/** The base version's sources in the cache (downloaded again if the cache was emptied) and the build dependencies installed. */
export async function ensurePackagePrerequisites(manifest: Manifest, log: (line: string) => void): Promise<void> {
  await ensureSources(manifest);
  await ensureBuildDeps(manifest, await treeAt(manifest, 0, log), log);
}
