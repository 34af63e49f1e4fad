/**
 * `--after P1.patch,P2.patch` (or a quilt series file): earlier fixes of the same update that
 * the patch is written on top of. They are applied to the source tree before anything is built,
 * so both the original build and the patched build contain them, and the classification
 * concerns only the patch itself (a running process that already has P1 and P2 gets it).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { copyTree, exists } from '../common/fs.ts';
import { applyPatch } from './apply-patch.ts';
import type { EarlierPatch, SourceTree } from './context.ts';

export type { EarlierPatch } from './context.ts';

const looksLikePatch = (text: string): boolean => /^(?:--- \S|\+\+\+ \S|diff |Index: )/m.test(text);

/**
 * The earlier patches in order: each argument is a patch, or a series file (one patch per line,
 * relative to the series file's folder, `#` comments; only -p1 entries, as wfbuild applies -p1).
 */
export async function resolveEarlierPatches(args: readonly string[]): Promise<EarlierPatch[]> {
  const out: EarlierPatch[] = [];
  for (const arg of args) {
    const path = resolve(arg);
    const text = await readFile(path, 'utf8').catch(() => {
      throw new UserError(`--after ${arg}: cannot read it`, ExitCode.usage);
    });
    if (looksLikePatch(text)) {
      out.push(await describe(path));
      continue;
    }
    for (const raw of text.split('\n')) {
      const line = raw.replace(/(^|\s)#.*$/, '').trim();
      if (!line) continue;
      const [name, ...opts] = line.split(/\s+/);
      if (opts.some((o) => /^-p\d+$/.test(o) && o !== '-p1')) throw new UserError(`--after ${arg}: ${name} is applied with ${opts.join(' ')}; only -p1 patches are supported`, ExitCode.usage);
      const entry = resolve(dirname(path), name!);
      if (!(await exists(entry))) throw new UserError(`--after ${arg}: ${name} (listed in the series) does not exist`, ExitCode.usage);
      out.push(await describe(entry));
    }
  }
  return out;
}

async function describe(path: string): Promise<EarlierPatch> {
  const body = await readFile(path);
  if (!looksLikePatch(body.toString('utf8'))) throw new UserError(`--after: ${path} is not a patch`, ExitCode.usage);
  return { name: basename(path), path, sha256: createHash('sha256').update(body).digest('hex') };
}

/**
 * The tree with the earlier patches applied, in the cache (`<cacheDir>/<key>/tree`), made once
 * per (tree, patches): the original build's cache key comes from the tree's listing, so the
 * same prepared tree (same mtimes) must be reused, not re-made. The key includes the source
 * tree's listing, so an edited --source tree gets a new one.
 */
export async function treeWithEarlierPatches(tree: SourceTree, patches: readonly EarlierPatch[], cacheDir: string): Promise<SourceTree> {
  const listing = await execa('find', ['.', '-path', './.git', '-prune', '-o', '-type', 'f', '-printf', '%P %s %T@\n'], { cwd: tree.dir });
  const key = createHash('sha256')
    .update(JSON.stringify([tree.dir, tree.package, listing.stdout.split('\n').sort(), patches.map((p) => p.sha256)]))
    .digest('hex')
    .slice(0, 24);
  const final = join(cacheDir, key);
  if (!(await exists(join(final, '.complete')))) {
    const temp = `${final}.tmp-${process.pid}`;
    await rm(temp, { recursive: true, force: true });
    await mkdir(temp, { recursive: true });
    try {
      await copyTree(tree.dir, join(temp, 'tree'));
      for (const [i, patch] of patches.entries()) {
        const before = patches.slice(0, i).map((p) => p.name);
        await applyPatch(join(temp, 'tree'), patch.path, before.length ? `${patch.name} (after ${before.join(', ')})` : patch.name);
      }
      await writeFile(join(temp, 'after.json'), JSON.stringify({ source: tree.dir, patches }, null, 2) + '\n');
      await writeFile(join(temp, '.complete'), `${new Date().toISOString()}\n`);
      if (await exists(join(final, '.complete'))) await rm(temp, { recursive: true, force: true });
      else {
        await rm(final, { recursive: true, force: true });
        await rename(temp, final);
      }
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      if (error instanceof UserError) throw new UserError(`--after: ${error.message}`, error.exitCode);
      throw error;
    }
  }
  return { ...tree, dir: join(final, 'tree') };
}
