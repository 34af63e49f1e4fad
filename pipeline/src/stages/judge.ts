/**
 * The object-pair judge: one changed object, original against patched, as the full pipeline
 * and the corpus' compile-only walk both see it. create-diff-object per target binary, the
 * data layout check, the new-object case, and the ObjectReport with its reasons and notes —
 * written once, so a unit gets the same reasons in both modes.
 */
import { join } from 'node:path';
import type { ObjectReport, ObjectVerdict, Reason } from '../report/types.ts';
import { createDiffObject, verdictReasons } from './create-diff-object.ts';
import { compareLayouts, objectLayouts, type LayoutChange } from './layout.ts';

/** A binary the object is linked into; path null: judge the object pair alone (compile-only). */
export interface Target {
  /** As reported (tree-relative), '' for the object pair alone. */
  readonly name: string;
  readonly path: string | null;
}

export interface ObjectPair {
  /** The name reasons and notes use (an object path, or the source in compile-only mode). */
  readonly object: string;
  readonly source: string;
  /** The original object; null when there is none (a new object). */
  readonly original: string | null;
  readonly patched: string;
  /** For a new object: whether its source existed before the patch (not compiled then) or the patch adds it. */
  readonly sourceExisted: boolean;
  readonly targets: readonly Target[];
  /** Folder for create-diff-object's patch objects and verdicts. */
  readonly scratch: string;
  readonly onProgress?: (line: string) => void;
}

export interface Judgement {
  readonly report: ObjectReport;
  readonly reasons: readonly Reason[];
  readonly notes: readonly string[];
  /** Patch object per target name (create-diff-object said 'patch'). */
  readonly patches: ReadonlyMap<string, string>;
}

/** A flat file name for a tree-relative path. */
function flat(path: string): string {
  return path.replace(/\//g, '__');
}

function newObjectReason(pair: ObjectPair): Reason {
  const why = pair.sourceExisted ? `its source ${pair.source} was not compiled before` : `the unit adds ${pair.source}`;
  return { object: pair.object, kind: 'new-object', symbol: null, what: `new object file (${why}): new code and data cannot be compared` };
}

async function layoutChanges(pair: ObjectPair & { original: string }, notes: string[]): Promise<LayoutChange[]> {
  const [before, after] = await Promise.all([objectLayouts(pair.original), objectLayouts(pair.patched)]);
  if (before && after) return compareLayouts(before, after);
  notes.push(`${pair.object}: no DWARF type information, data layout not checked`);
  return [];
}

export async function judgeObjectPair(pair: ObjectPair): Promise<Judgement> {
  const reasons: Reason[] = [];
  const notes: string[] = [];
  const patches = new Map<string, string>();
  const verdicts: ObjectVerdict[] = [];
  const binaries = pair.targets.filter((t) => t.path !== null).map((t) => t.name);
  if (pair.original === null) {
    for (const target of pair.targets) {
      verdicts.push({ binary: target.name, outcome: 'new-object', exitCode: null, verdict: null });
      reasons.push(newObjectReason(pair));
    }
    return { report: { object: pair.object, source: pair.source, binaries, verdicts }, reasons, notes, patches };
  }
  const original = pair.original;
  const changes = await layoutChanges({ ...pair, original }, notes);
  for (const change of changes) reasons.push({ object: pair.object, kind: 'layout', symbol: change.type, what: `data layout of ${change.type} changed: ${change.what}` });
  for (const target of pair.targets) {
    pair.onProgress?.(target.path === null ? pair.object : `${pair.object} against ${target.name}`);
    const base = join(pair.scratch, target.path === null ? flat(pair.object) : `${flat(pair.object)}@${flat(target.name)}`);
    const result = await createDiffObject(original, pair.patched, target.path, `${base}.o`, `${base}.verdict.json`);
    verdicts.push({ binary: target.name, outcome: result.outcome, exitCode: result.exitCode, verdict: result.verdict });
    reasons.push(...verdictReasons(pair.object, result));
    if (result.outcome === 'nothing') notes.push(`${pair.object}: changed bytes, no changed code or data (create-diff-object: nothing to patch)`);
    if (result.output) patches.set(target.name, result.output);
  }
  return { report: { object: pair.object, source: pair.source, binaries, verdicts, ...(changes.length ? { layoutChanges: changes } : {}) }, reasons, notes, patches };
}
