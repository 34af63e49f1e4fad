/**
 * Which files a compile reads: the recorded compile command re-run as `-M -MG` (the
 * preprocessor's dependency list) in the patched tree. An object whose list holds none of the
 * patch's files was not changed by the patch's code.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { execa } from 'execa';
import type { CompileEntry } from '../wrapper/index.ts';

/** Options that write an object or a dependency file, or take such a file: dropped for -M. */
const dropWithValue = new Set(['-o', '-MF', '-MT', '-MQ']);
const dropAlone = new Set(['-c', '-MD', '-MMD', '-MP', '-M', '-MM', '-MG', '-save-temps']);

function dependencyArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (dropWithValue.has(arg)) i++;
    else if (dropAlone.has(arg) || /^-Wp,-M/.test(arg) || (arg.startsWith('-o') && arg.length > 2)) continue;
    else out.push(arg);
  }
  return [...out, '-M', '-MG'];
}

/** Parses make-rule output (`obj.o: a.c b.h \`) into its prerequisites. */
function prerequisites(rule: string): string[] {
  const text = rule.replace(/\\\n/g, ' ');
  const colon = text.indexOf(': ');
  return (colon < 0 ? '' : text.slice(colon + 2)).split(/\s+/).filter((p) => p.length > 0);
}

/**
 * Tree-relative paths of the files the compile reads (system headers left out). `tree` is
 * where the compile runs now; `recordedTree` the path the build ran at (its absolute -I and
 * source paths point there). Null when the compiler cannot list them.
 */
export async function compileInputs(entry: CompileEntry, tree: string, recordedTree: string): Promise<string[] | null> {
  const cwd = join(tree, entry.cwd);
  const result = await execa(entry.tool, dependencyArgs(entry.args), { cwd, reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) return null;
  const files = new Set<string>();
  // Both spellings of each root: the compiler may print paths with symbolic links resolved.
  const roots = [...new Set([tree, recordedTree, ...(await Promise.all([tree, recordedTree].map((r) => realpath(r).catch(() => r))))])];
  for (const dep of prerequisites(result.stdout)) {
    const abs = normalize(isAbsolute(dep) ? dep : resolve(cwd, dep));
    for (const root of roots) {
      const rel = relative(root, abs);
      if (!rel.startsWith('..') && !isAbsolute(rel)) {
        files.add(rel);
        // A file reached through a symbolic link (exim's build folder links ../src/*.c) is
        // also the file it links to: a patch to the target reaches this object.
        const target = await realpath(join(tree, rel)).catch(() => null);
        const inTree = target === null ? null : relative(await realpath(tree).catch(() => tree), target);
        if (inTree && !inTree.startsWith('..') && !isAbsolute(inTree)) files.add(inTree);
        break;
      }
    }
  }
  return [...files].sort();
}
