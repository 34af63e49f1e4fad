import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { LinuxSource } from './source.ts';
import { applyPatch, revertPatch, sha256, type SeriesPatch } from './series.ts';
import { exists } from '../common/fs.ts';

/**
 * One unpacked linux-source tree per tarball, reused across builds: switching to another
 * series reverts the patches that differ and applies the new ones, so make only rebuilds
 * what they touch. `applied.json` records what is applied (with the patch text, so a
 * revert uses exactly what was applied even if the file on disk changed since).
 */
export interface SourceTree {
  /** The kernel source folder (contains Makefile). */
  readonly path: string;
  /** Changes whenever the tree is unpacked afresh; build folders built from another id are stale. */
  readonly id: string;
}

interface TreeState {
  id: string;
  applied: SeriesPatch[];
}


async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

function treeBase(kernelCache: string, source: LinuxSource): string {
  const tag = `${source.packageVersion.replace(/[^A-Za-z0-9.+-]/g, '_')}-${sha256(source.fingerprint).slice(0, 8)}`;
  return join(kernelCache, 'src', tag);
}

/** Unpacks the tarball into a temporary folder and renames it into place when complete. */
async function unpack(base: string, source: LinuxSource, log: (line: string) => void): Promise<void> {
  const tmp = `${base}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  log(`unpacking ${source.tarball}`);
  await execa('nice', ['-n', '10', 'tar', '-xJf', source.tarball, '-C', tmp]);
  const state: TreeState = { id: randomUUID(), applied: [] };
  await writeJsonAtomic(join(tmp, 'state.json'), state);
  await rm(base, { recursive: true, force: true });
  await rename(tmp, base);
}

/** Files a -p1 patch touches (from its ---/+++ lines), relative to the tree. */
export function touchedFiles(patch: SeriesPatch): string[] {
  const files = new Set<string>();
  for (const match of patch.content.matchAll(/^(?:---|\+\+\+) ([^\t\n]+)/gm)) {
    const name = match[1].trim();
    if (name === '/dev/null') continue;
    const stripped = name.split('/').slice(1).join('/');
    if (stripped !== '' && !stripped.split('/').includes('..')) files.add(stripped);
  }
  return [...files];
}

/**
 * Rehearses a series switch on copies of only the files involved, so a patch that does not
 * apply fails without touching the real tree: touching it would give reverted files new
 * mtimes and turn the next build of the working series into a (near) full rebuild.
 */
async function rehearse(tree: string, revert: readonly SeriesPatch[], apply: readonly SeriesPatch[]): Promise<'ok' | 'revert-failed'> {
  const scratch = await mkdtemp(join(dirname(tree), '.rehearse-'));
  try {
    for (const file of new Set([...revert, ...apply].flatMap(touchedFiles))) {
      if (!(await exists(join(tree, file)))) continue;
      await mkdir(dirname(join(scratch, file)), { recursive: true });
      await copyFile(join(tree, file), join(scratch, file));
    }
    for (const patch of revert) if (!(await revertPatch(scratch, patch))) return 'revert-failed';
    for (const patch of apply) await applyPatch(scratch, patch);
    return 'ok';
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Makes the tree carry exactly `patches`, in order. Caller holds the kernel lock. */
export async function prepareTree(
  kernelCache: string,
  source: LinuxSource,
  patches: readonly SeriesPatch[],
  log: (line: string) => void,
): Promise<SourceTree> {
  const base = treeBase(kernelCache, source);
  const path = join(base, 'linux-source-6.1');
  if (!(await exists(join(base, 'state.json'))) || !(await exists(join(path, 'Makefile')))) {
    await unpack(base, source, log);
  }
  const statePath = join(base, 'state.json');
  const state = JSON.parse(await readFile(statePath, 'utf8')) as TreeState;
  let common = 0;
  while (
    common < state.applied.length &&
    common < patches.length &&
    state.applied[common].name === patches[common].name &&
    state.applied[common].sha256 === patches[common].sha256
  ) {
    common++;
  }
  const toRevert = state.applied.slice(common).reverse();
  const toApply = patches.slice(common);
  if (toRevert.length + toApply.length === 0) return { path, id: state.id };
  // Throws (naming the patch and hunk) before the real tree changes.
  if ((await rehearse(path, toRevert, toApply)) === 'revert-failed') {
    log('the applied series does not revert cleanly (tree edited by hand?): unpacking a fresh tree');
    await rm(base, { recursive: true, force: true });
    return prepareTree(kernelCache, source, patches, log);
  }
  while (state.applied.length > common) {
    const last = state.applied[state.applied.length - 1];
    log(`reverting ${last.name}`);
    if (!(await revertPatch(path, last))) {
      log(`${last.name} does not revert cleanly: unpacking a fresh tree`);
      await rm(base, { recursive: true, force: true });
      return prepareTree(kernelCache, source, patches, log);
    }
    state.applied.pop();
    await writeJsonAtomic(statePath, state);
  }
  for (const patch of toApply) {
    log(`applying ${patch.name}`);
    await applyPatch(path, patch);
    state.applied.push(patch);
    await writeJsonAtomic(statePath, state);
  }
  return { path, id: state.id };
}
