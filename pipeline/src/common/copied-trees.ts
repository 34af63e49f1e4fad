/**
 * Builds that compile a copy of the sources. nginx's debian/rules copies src/ (and auto/, conf/)
 * into debian/build-bin at configure time and compiles the copy there, so the compile database
 * names debian/build-bin/src/http/ngx_http_request.c where a patch changes
 * src/http/ngx_http_request.c; exim4's copies the whole tree into b-exim4-daemon-light and
 * b-exim4-daemon-heavy and compiles each copy's build-Linux-x86_64/smtp_in.c, a symbolic link to
 * ../src/smtp_in.c. A walk that only reverse-applies patches to the sources, or a patched build
 * that only patches them, would compile the copy unchanged and find the touched file "not
 * compiled" — exim4's PROXYv2 fix was "no compiled code" that way.
 *
 * A copied tree is found from the database alone: a compiled source that the unbuilt tree does
 * not have (the build made it), whose path ends in a path the unbuilt tree has, with the same
 * bytes, lies in a copy of the tree rooted at the rest of its path (`debian/build-bin`). The
 * walk then keeps every copied file in step with its original after each reverse-applied patch,
 * and counts the copy's units as compiling the file the patch touches.
 */
import { copyFile, lstat, readFile, realpath, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { exists, sameBytes } from './fs.ts';

/**
 * Tree-relative folders (`debian/build-bin`) that hold a copy of the source tree, judged from
 * the compiled sources: `built` is the tree the database's sources are in, `pristine` the same
 * sources before the build.
 */
export async function copiedTrees(built: string, pristine: string, sources: readonly string[]): Promise<string[]> {
  const roots = new Set<string>();
  const builtReal = await realpath(built);
  for (const named of new Set(sources)) {
    const source = await withinTree(builtReal, built, named);
    if (source === null) continue;
    if (await exists(join(pristine, source))) continue;
    const parts = source.split('/');
    // Known roots first: a build compiles hundreds of files from one copy.
    const known = [...roots].find((r) => source.startsWith(`${r}/`));
    const splits = known ? [known.split('/').length] : parts.map((_, i) => i).slice(1);
    for (const i of splits) {
      const rest = parts.slice(i).join('/');
      if (!(await exists(join(pristine, rest)))) continue;
      if (await sameBytes(join(built, source), join(pristine, rest))) {
        roots.add(parts.slice(0, i).join('/'));
        break;
      }
    }
  }
  return [...roots].sort();
}

/**
 * A compiled source as the file it is: a symbolic link (exim's build folder links every source
 * from ../src) is followed to its target, named relative to the tree; null when it leads out of
 * the tree or nowhere.
 */
async function withinTree(builtReal: string, built: string, source: string): Promise<string | null> {
  const path = join(built, source);
  const st = await lstat(path).catch(() => null);
  if (!st) return null;
  if (!st.isSymbolicLink()) return source;
  const target = await realpath(path).catch(() => null);
  if (target === null) return null;
  const rel = relative(builtReal, target);
  return rel.startsWith('..') || rel.startsWith('/') ? null : rel;
}

/** Where a tree-relative file has copies in `tree` (only copies that exist). */
export async function copiesOf(tree: string, roots: readonly string[], file: string): Promise<string[]> {
  const found: string[] = [];
  for (const root of roots) if (await exists(join(tree, root, file))) found.push(`${root}/${file}`);
  return found;
}

/**
 * Brings every existing copy of these files in line with the file (copied over, or removed
 * when the file is gone: a reverse-applied patch that had added it). Returns the copies touched.
 */
export async function syncCopies(tree: string, roots: readonly string[], files: readonly string[]): Promise<string[]> {
  const synced: string[] = [];
  for (const file of files) {
    const present = await exists(join(tree, file));
    for (const copy of await copiesOf(tree, roots, file)) {
      if (!present) await rm(join(tree, copy), { force: true });
      else if (await sameBytes(join(tree, file), join(tree, copy))) continue;
      else await copyFile(join(tree, file), join(tree, copy));
      synced.push(copy);
    }
  }
  return synced;
}

/** The files a unified diff names (old and new side), with `strip` leading components removed. */
export function diffPaths(text: string, strip: number): string[] {
  const paths = new Set<string>();
  for (const m of text.matchAll(/^(?:---|\+\+\+) ([^\t\n]+)/gm)) {
    const raw = m[1]!.trim();
    if (raw === '/dev/null') continue;
    const parts = raw.split('/');
    if (parts.length <= strip) continue;
    paths.add(parts.slice(strip).join('/'));
  }
  return [...paths];
}

/** diffPaths of a series patch file. */
export async function patchFilePaths(file: string, strip: number): Promise<string[]> {
  return diffPaths(await readFile(file, 'utf8'), strip);
}
