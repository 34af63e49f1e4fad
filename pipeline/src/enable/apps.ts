import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { repoRoot } from '../paths.ts';

/** Where the enablement patches live: corpus/apps/<source package>/<one>.patch. */
export const appsRoot: string = join(repoRoot, 'corpus', 'apps');

/** An application's enablement patch (a DEP-3 patch of our own: links libwfpatch, places quiescence points). */
export interface Enablement {
  readonly package: string;
  /** Absolute path of the patch file. */
  readonly patch: string;
  /** Its file name: the name it gets in debian/patches/. */
  readonly name: string;
  readonly sha256: string;
  /** The patch as the repository shows it (for messages and meta.json). */
  readonly display: string;
}

async function enabledPackages(appsDir: string): Promise<string[]> {
  const entries = await readdir(appsDir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

/**
 * The enablement patch for a source package: the one `*.patch` file in `<appsDir>/<name>/`.
 * No folder, no patch or several patches is bad input, named as such.
 */
export async function findEnablement(name: string, appsDir: string = appsRoot): Promise<Enablement> {
  const dir = join(appsDir, name);
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (!entries) {
    const known = await enabledPackages(appsDir);
    throw new UserError(`no enablement patch for ${name}: ${relative(repoRoot, dir) || dir} does not exist (enablement patches exist for: ${known.join(', ') || 'none'})`);
  }
  const patches = entries.filter((e) => e.isFile() && e.name.endsWith('.patch')).map((e) => e.name).sort();
  if (patches.length !== 1) {
    throw new UserError(`${relative(repoRoot, dir) || dir}: expected exactly one enablement patch (*.patch), found ${patches.length}${patches.length ? `: ${patches.join(', ')}` : ''}`);
  }
  const patch = join(dir, patches[0]);
  const sha256 = createHash('sha256').update(await readFile(patch)).digest('hex');
  const rel = relative(repoRoot, patch);
  return { package: name, patch, name: patches[0], sha256, display: rel.startsWith('..') ? patch : rel };
}
