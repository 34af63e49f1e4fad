/** File helpers every part of the pipeline uses. */
import { access, readFile, rename, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';

export async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** Writes through a temporary sibling and a rename, so a reader never sees half a file. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp-${process.pid}`, text);
  await rename(`${path}.tmp-${process.pid}`, path);
}

/** Copies a tree (reflinks where the file system can), keeping mtimes so make sees nothing new. */
export async function copyTree(from: string, to: string): Promise<void> {
  const result = await execa('cp', ['-a', '--reflink=auto', from, to], { reject: false, all: true });
  if (result.exitCode !== 0) throw new UserError(`copying ${from} to ${to} failed: ${result.all}`, ExitCode.internal);
}

export async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)]);
  return x.equals(y);
}
