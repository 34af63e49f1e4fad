/**
 * The object-pair judge: one changed object, original against patched, as the full pipeline
 * and the corpus' compile-only walk both see it. create-diff-object per target binary, the
 * data layout check, the new-object case, and the ObjectReport with its reasons and notes —
 * written once, so a unit gets the same reasons in both modes.
 */
import { join } from 'node:path';
import type { ObjectReport, ObjectVerdict, Reason } from '../report/types.ts';
import { createDiffObject, verdictReasons, type DiffResult } from './create-diff-object.ts';
import { compareLayouts, objectLayouts, type LayoutChange } from './layout.ts';
import { carriedNote, combine, type CarriedMember, type MemberFinder } from './carry.ts';

/** A binary the object is linked into; path null: judge the object pair alone (compile-only). */
export interface Target {
  /** As reported (tree-relative), '' for the object pair alone. */
  readonly name: string;
  readonly path: string | null;
  /** The files of the programs that dlopen() it (a module): create-diff-object --loaded-by. */
  readonly loadedBy?: readonly string[];
  /** The build's own libraries by soname (library-dir.ts): create-diff-object --library-dir. */
  readonly libraryDir?: string | null;
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
  /**
   * Archive members a target's link left out, for names the patched code newly needs
   * (carry.ts); absent in compile-only mode, where there is no binary to resolve against.
   */
  readonly members?: (target: Target) => MemberFinder | null;
  /**
   * Globals other patch objects for the same target define (new functions the patch adds in
   * other files): passed as `--provided`, they resolve within the bundle.
   */
  readonly provided?: (target: Target) => readonly string[];
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

function unresolvedOf(result: DiffResult): string[] {
  const v = result.verdict as { unresolved?: unknown } | null;
  return Array.isArray(v?.unresolved) ? v.unresolved.filter((s): s is string => typeof s === 'string' && !s.startsWith('__wfsym:')) : [];
}

/**
 * create-diff-object again with the archive members that define what did not resolve, as
 * the linker would pull them in — repeated while carried members need further members. The
 * carried verdict is kept only when it makes a patch; otherwise the first verdict stands
 * (carrying a member with variables must not turn "unresolved" into "new data") and a note
 * says what was tried.
 */
async function withMembers(
  pair: ObjectPair,
  original: string,
  target: Target,
  base: string,
  first: DiffResult,
  finder: MemberFinder,
  notes: string[],
): Promise<{ result: DiffResult; carried: CarriedMember[] }> {
  const carried: CarriedMember[] = [];
  let result = first;
  for (let round = 1; round <= 8; round++) {
    const more = (await finder(unresolvedOf(result))).filter((m) => !carried.some((c) => c.object === m.object));
    if (!more.length) break;
    carried.push(...more);
    const combined = `${base}.carried${round}.in.o`;
    await combine(pair.patched, carried, combined);
    result = await createDiffObject(original, combined, target.path, `${base}.carried${round}.o`, `${base}.carried${round}.verdict.json`, pair.provided?.(target) ?? [], target.loadedBy ?? [], target.libraryDir ?? null);
    if (result.outcome !== 'not-patchable') break;
  }
  if (!carried.length) return { result: first, carried: [] };
  if (result.outcome === 'patch') {
    notes.push(carriedNote(pair.object, target.name, carried));
    return { result, carried };
  }
  notes.push(`${pair.object}: carrying ${carried.map((m) => m.object).join(', ')} (archive members ${target.name} never linked, defining ${carried.flatMap((m) => m.defines).join(', ')}) gave create-diff-object exit ${result.exitCode} (${result.outcome}): the verdict without them stands`);
  return { result: first, carried: [] };
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
    let result = await createDiffObject(original, pair.patched, target.path, `${base}.o`, `${base}.verdict.json`, pair.provided?.(target) ?? [], target.loadedBy ?? [], target.libraryDir ?? null);
    let carried: CarriedMember[] = [];
    const finder = result.outcome === 'not-patchable' ? (pair.members?.(target) ?? null) : null;
    if (finder) ({ result, carried } = await withMembers(pair, original, target, base, result, finder, notes));
    verdicts.push({
      binary: target.name,
      outcome: result.outcome,
      exitCode: result.exitCode,
      verdict: result.verdict,
      ...(carried.length ? { carried: carried.map((m) => ({ object: m.object, defines: m.defines })) } : {}),
    });
    reasons.push(...verdictReasons(pair.object, result));
    if (result.outcome === 'nothing') notes.push(`${pair.object}: changed bytes, no changed code or data (create-diff-object: nothing to patch)`);
    if (result.output) patches.set(target.name, result.output);
  }
  return { report: { object: pair.object, source: pair.source, binaries, verdicts, ...(changes.length ? { layoutChanges: changes } : {}) }, reasons, notes, patches };
}
