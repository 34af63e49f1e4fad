/** Small source trees written by the corpus tests, and unified diffs between two versions of a file. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

/** Writes each tree-relative path's text under root, making folders as needed. */
export async function put(root: string, tree: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(tree)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

/** A `-p1` unified diff of one file from `before` to `after` (written under root/a and root/b). */
export async function diffOf(root: string, path: string, before: string, after: string): Promise<string> {
  await put(join(root, 'a'), { [path]: before });
  await put(join(root, 'b'), { [path]: after });
  const d = await execa('diff', ['-u', '--label', `a/${path}`, '--label', `b/${path}`, join(root, 'a', path), join(root, 'b', path)], { reject: false });
  return d.stdout + '\n';
}
