/**
 * Which changed objects are no patch target, and why — said in the report (`ignored`), never
 * dropped silently:
 * - `unlinked`: no recorded link or archive consumes it (a compiler probe in a Makefile that
 *   builds an object and throws it away, an object only put into an archive nothing links);
 * - `noise`: its bytes differ, but none of the files it is compiled from is one the patch
 *   touches (an embedded build id, date, host name or path the build makes anew each time).
 *   Only decided when the patch leaves the build system alone: a changed Makefile may change
 *   any object through its flags. libtool's dlpreopen symbol table (`.libs/<program>S.c`,
 *   written from the linked objects' symbols and deleted by every link) is the build's too.
 */
import { join } from 'node:path';
import { exists } from '../common/fs.ts';
import { linkMap, type BuildLogEntry, type CompileEntry, type LinkEntry } from '../wrapper/index.ts';
import type { Candidate, IgnoredObject, OriginalBuild, PatchedBuild } from './context.ts';
import { compileInputs } from './reach.ts';

export interface Partition {
  readonly kept: Candidate[];
  readonly ignored: IgnoredObject[];
  readonly notes: string[];
}

function lastCompile(log: readonly BuildLogEntry[], object: string): CompileEntry | undefined {
  return log.filter((e): e is CompileEntry => e.kind === 'compile' && e.object === object).at(-1);
}

/** Arguments only one of the two compile commands has (a date or build id passed with -D, say). */
function argsDiff(before: CompileEntry | undefined, after: CompileEntry): string {
  if (!before) return '';
  const removed = before.args.filter((a) => !after.args.includes(a));
  const added = after.args.filter((a) => !before.args.includes(a));
  if (removed.length + added.length === 0) return '';
  return `; its compile command differs: ${[...removed.map((a) => `-${a}`), ...added.map((a) => `+${a}`)].join(' ')}`;
}

async function unlinkedWhy(cand: Candidate, original: OriginalBuild, patched: PatchedBuild): Promise<string> {
  const archives = [...original.log, ...patched.log].filter((e): e is LinkEntry => e.kind === 'link' && e.inputs.includes(cand.object)).map((e) => e.output);
  if (archives.length > 0) return `only put into ${[...new Set(archives)].join(', ')}, which no recorded link uses: in no binary the build made`;
  const kept = (await exists(join(original.tree, cand.object))) || (await exists(join(patched.tree, cand.object)));
  return kept
    ? 'no recorded link or archive uses it: in no binary the build made'
    : 'compiled and then deleted by the build (a compiler probe?); no recorded link or archive uses it';
}

/** libtool's generated `<dir>/.libs/<program>S.c` (lt_preloaded_symbols, squid's `src/.libs/squidS.c`). */
export function isLibtoolSymbolTable(source: string): boolean {
  return /(^|\/)\.libs\/[^/]+S\.c$/.test(source);
}

export async function partitionCandidates(original: OriginalBuild, patched: PatchedBuild, touched: readonly string[], buildSystem: boolean, recordedTree: string): Promise<Partition> {
  const kept: Candidate[] = [];
  const ignored: IgnoredObject[] = [];
  const notes: string[] = [];
  const [before, after] = [linkMap(original.log), linkMap(patched.log)];
  const patchFiles = new Set(touched);
  for (const cand of patched.candidates) {
    const finals = [...(before.get(cand.object) ?? []), ...(after.get(cand.object) ?? [])];
    if (finals.length === 0) {
      ignored.push({ object: cand.object, source: cand.source, why: 'unlinked', what: await unlinkedWhy(cand, original, patched) });
      continue;
    }
    if (!buildSystem && isLibtoolSymbolTable(cand.source)) {
      const what = "libtool's dlpreopen symbol table, which every link of the program writes from its objects' symbols and deletes: made by the build, not the patch (the running program's table is its own)";
      ignored.push({ object: cand.object, source: cand.source, why: 'noise', what });
      continue;
    }
    const entry = lastCompile(patched.log, cand.object);
    // An object compiled from a file the patch touches is the patch's, whatever -M says.
    if (buildSystem || !entry || patchFiles.has(cand.source)) {
      kept.push(cand);
      continue;
    }
    const inputs = await compileInputs(entry, patched.tree, recordedTree);
    if (inputs === null) {
      notes.push(`${cand.object}: could not list the files it is compiled from; judged as changed`);
      kept.push(cand);
    } else if (inputs.some((f) => patchFiles.has(f))) {
      kept.push(cand);
    } else {
      const what = `differs from the original build's object, but none of the ${inputs.length} files it is compiled from is one the patch touches: the difference comes from the build (an embedded date, build id, host name or path)${argsDiff(lastCompile(original.log, cand.object), entry)}`;
      ignored.push({ object: cand.object, source: cand.source, why: 'noise', what });
    }
  }
  return { kept, ignored, notes };
}
