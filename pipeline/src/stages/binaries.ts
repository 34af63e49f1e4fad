/**
 * Where the original build's linked file is: the wrapper's copy taken when it was linked, so
 * "which binary does this object go into" and its build-id never depend on what later steps
 * (install rules, dh_auto_install moving or relinking files) did to the tree.
 */
import { join } from 'node:path';
import { exists } from '../common/fs.ts';
import { capturedPath } from '../wrapper/index.ts';
import type { OriginalBuild } from './context.ts';

/** The captured copy of a linked output (tree-relative), else the file in the tree. */
export async function originalBinary(original: OriginalBuild, output: string): Promise<string> {
  const captured = capturedPath(original.linked, output);
  return (await exists(captured)) ? captured : join(original.tree, output);
}
