/** What a corpus package needs before anything is built: its sources and build dependencies. */
import { ensureBuildDeps } from '../common/build-deps.ts';
import type { Manifest } from './manifest.ts';
import { ensureSources, treeAt } from './tree.ts';

/** The PATH package builds run with (Debian's, without /usr/local and user shims). */
export { debianPath } from '../stages/build-env.ts';

/** The base version's sources in the cache (downloaded again if the cache was emptied) and the build dependencies installed. */
export async function ensurePackagePrerequisites(manifest: Manifest, log: (line: string) => void): Promise<void> {
  const dsc = await ensureSources(manifest);
  // The same check and installer as wfbuild's, from the base version's .dsc.
  await ensureBuildDeps({ tree: await treeAt(manifest, 0, log), installFrom: dsc, label: manifest.package, log });
}
