/** Small file helpers the corpus modules share. */
import { access, rename, writeFile } from 'node:fs/promises';

export async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** Writes through a temporary sibling and a rename, so a reader never sees half a file. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp-${process.pid}`, text);
  await rename(`${path}.tmp-${process.pid}`, path);
}
