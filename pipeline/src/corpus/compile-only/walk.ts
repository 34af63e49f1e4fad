/**
 * The compile-only corpus mode's walk: one configured tree per package (the whole series
 * applied), copied once, then walked backwards through the series. At each unit the tree holds
 * the series up to and including the unit: the units the patch touches are compiled ("after"),
 * the unit is reverse-applied, compiled again ("before"), and create-diff-object compares each
 * pair of objects. So a package costs one configure (or one build) and a few compiles per
 * unit, never a build per unit.
 *
 * Units are thereby measured on top of every series patch before them — for a bookworm update
 * that is how Debian ships them (appended in order), the series-walk rule for the rest.
 * create-diff-object runs without --binary (the package is not linked here): a kpatch-able
 * verdict is at the object level; the `confirm` hook then checks it against a binary while the
 * tree is before the unit (relink.ts: the wrapper build's copy rebuilt to that state, told of
 * every undone patch through `undone`), as corpus/README.md states with the table.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { tail } from '../../common/text.ts';
import { triagePatch, type TouchedFile } from '../../triage/index.ts';
import { judgeObjectPair } from '../../stages/judge.ts';
import { classifyOutcome } from '../../stages/classify.ts';
import type { ObjectReport, Reason } from '../../report/types.ts';
import { verdictOf } from '../classify-unit.ts';
import type { Services } from '../services.ts';
import type { UnitVerdict } from '../results.ts';
import type { SeriesEntry } from '../series.ts';
import { commitsOf, withoutMailSignature } from '../tree.ts';

export { commitsOf } from '../tree.ts';
import { affectedUnits } from './affected.ts';
import { compileUnits, objectName, type CompileFailure } from './compile.ts';
import type { TranslationUnit } from './database.ts';
import type { UnitObjects } from './confirm-base.ts';
import { exists, sameBytes } from '../../common/fs.ts';
import { copiesOf, diffPaths, syncCopies } from '../../common/copied-trees.ts';

/** Files a package's build turns into data in its binaries (nodejs: js2c embeds lib/ *.js). */
export interface EmbeddedData {
  readonly pattern: RegExp;
  readonly why: string;
}

export interface WalkUnit {
  readonly id: string;
  /** Series positions [start, start + count). */
  readonly start: number;
  readonly count: number;
}

export interface WalkVerdict extends UnitVerdict {
  /** Translation units compiled (each twice). */
  readonly compiled: number;
  /** Objects from the cache: how long compiling them took when they were compiled. */
  readonly cachedCompileSeconds?: number;
  readonly seconds: number;
  /** Where a kpatch-able verdict was checked against a binary (said in the result's mode). */
  readonly checkedOn?: string;
}

/** What a compiled unit was judged on: its objects before and after it, and its patch texts. */
export interface Measured {
  readonly objects: UnitObjects;
  readonly texts: readonly string[];
  /** Tree-relative files its patches touch. */
  readonly touched: readonly string[];
}

export interface WalkOptions {
  /** A private copy of the configured tree with the whole series applied (modified in place). */
  readonly tree: string;
  readonly series: readonly SeriesEntry[];
  readonly database: readonly TranslationUnit[];
  /** Units to classify (sorted or not); the walk stops at the first one's start. */
  readonly units: readonly WalkUnit[];
  readonly scratch: string;
  /** Compiled objects per unit, kept between runs. */
  readonly objectsCache: string;
  readonly jobs: number;
  /** Most translation units one unit may compile; more is a failed unit with the count. */
  readonly limit: number;
  readonly embedded?: EmbeddedData;
  /** The package's long-running binaries and other programs (its manifest): verdicts per binary. */
  readonly services?: Services;
  readonly env: Record<string, string>;
  /**
   * Folders holding a copy of the source tree that the build compiles (copies.ts; nginx:
   * debian/build-bin): kept in step with the sources as patches are undone.
   */
  readonly copies?: readonly string[];
  readonly log: (line: string) => void;
  /**
   * Called after each series patch is undone, with the files it changed in the tree (and their
   * build-time copies): relink.ts follows them in its built copy.
   */
  readonly undone?: (entry: SeriesEntry, files: readonly string[]) => void;
  /**
   * Called for a kpatch-able unit, the tree now before it, with the objects it was judged on:
   * returns the verdict confirmed against a binary (or left unconfirmed, with why).
   */
  readonly confirm?: (unit: WalkUnit, verdict: Omit<WalkVerdict, 'seconds'>, measured: Measured) => Promise<Omit<WalkVerdict, 'seconds'>>;
  /** Called with each unit's verdict as soon as it is known (the caller caches it). */
  readonly done: (unit: WalkUnit, verdict: WalkVerdict) => Promise<void>;
}


/** A series patch that does not reverse-apply: the walk cannot go back past it. */
export class ReverseApplyFailed extends Error {
  constructor(readonly entry: SeriesEntry, output: string) {
    super(`debian/patches/${entry.path} does not reverse-apply: ${tail(output, 4)}`);
    this.name = 'ReverseApplyFailed';
  }
}

/**
 * Undoes one series patch. A file of several commits is undone commit by commit, newest
 * first: undone at once, an older commit's hunk would meet a line a newer one changed.
 */
async function reverseApply(tree: string, entry: SeriesEntry, copies: readonly string[] = [], undone?: WalkOptions['undone']): Promise<void> {
  const text = await readFile(join(tree, 'debian', 'patches', entry.path), 'utf8');
  for (const part of commitsOf(text).reverse()) {
    const args = ['-R', `-p${entry.strip}`, '--batch', '--no-backup-if-mismatch', '-r', '-'];
    const result = await execa('patch', args, { cwd: tree, reject: false, all: true, input: part });
    if (result.exitCode !== 0) throw new ReverseApplyFailed(entry, result.all ?? '');
  }
  const files = diffPaths(text, entry.strip);
  const synced = copies.length > 0 ? await syncCopies(tree, copies, files) : [];
  undone?.(entry, [...files, ...synced]);
}

function reasonLine(r: Reason): string {
  return [r.object, r.symbol, r.what].filter((x) => x !== null && x !== '').join(': ');
}

/**
 * A unit's patch files triaged one by one (a git format-patch mail's headers between two diffs
 * are no diff syntax), their files and verdicts merged.
 */
export function triageAll(texts: readonly string[], id: string): { files: TouchedFile[]; touchesCompiledCode: boolean } {
  // One mail at a time, each without its "-- " signature (bug-16018-v4-17-lts-v8.patch is 38).
  const parts = texts.flatMap(commitsOf).map((t) => triagePatch(withoutMailSignature(t), id));
  const files = new Map<string, TouchedFile>();
  for (const part of parts) for (const f of part.files) files.set(f.path, f);
  return { files: [...files.values()], touchesCompiledCode: parts.some((p) => p.touchesCompiledCode) };
}

/**
 * The verdict of a unit that needs no compiling, whatever the tree: one that changes no
 * compiled file (no-code), or one that changes a file the build embeds as data. Null otherwise.
 */
export function verdictWithoutCompiling(texts: readonly string[], id: string, embedded: EmbeddedData | undefined): Omit<WalkVerdict, 'seconds'> | null {
  const triage = triageAll(texts, id);
  const data = embedded ? triage.files.filter((f) => embedded.pattern.test(f.path)) : [];
  if (data.length > 0) {
    const what = `${data.map((f) => f.path).join(', ')}: ${embedded!.why}`;
    // data the binary embeds: no new variable a patch could carry
    return { verdict: 'not-text-only', reason: what, reasons: [what], objects: 0, compiled: 0, liveWithNewData: false };
  }
  if (!triage.touchesCompiledCode) {
    const kinds = [...new Set(triage.files.map((f) => f.kind))].join(', ');
    return { verdict: 'no-code', reason: `only ${kinds} files change: nothing to compile`, reasons: [], objects: 0, compiled: 0 };
  }
  // Build files and generator inputs change what is compiled, which only a new configure and
  // build would show: this mode does not guess.
  const unmeasured = triage.files.filter((f) => f.kind === 'build-system' || /\.(y|l|ypp|ll)$/.test(f.path)).map((f) => f.path);
  if (unmeasured.length > 0) {
    const why = `${unmeasured.join(', ')}: a build-system file or generator input changes; compile-only mode does not re-run configure or generators (wfbuild corpus --full-builds measures it)`;
    return { verdict: 'failed', reason: why, reasons: [why], objects: 0, compiled: 0 };
  }
  return null;
}

export function compileFailed(failures: readonly CompileFailure[], when: string, compiled: number): Omit<WalkVerdict, 'seconds'> {
  const why = `${failures[0]!.source}: does not compile ${when} (compile-only mode): ${failures[0]!.error}`;
  return { verdict: 'failed', reason: why, reasons: failures.map((f) => `${f.source}: ${f.error}`), objects: 0, compiled };
}

export type Classified = Omit<WalkVerdict, 'seconds'> & { readonly measured?: Measured };

/** Classifies one unit whose patches are applied last in `tree`; leaves them reverse-applied. */
async function classifyAt(unit: WalkUnit, texts: readonly string[], opts: WalkOptions): Promise<Classified> {
  const entries = opts.series.slice(unit.start, unit.start + unit.count);
  const unapply = async () => {
    for (const entry of [...entries].reverse()) await reverseApply(opts.tree, entry, opts.copies, opts.undone);
  };
  const quick = verdictWithoutCompiling(texts, unit.id, opts.embedded);
  if (quick) {
    await unapply();
    return quick;
  }
  const triage = triageAll(texts, unit.id);
  const touched = triage.files.map((f) => f.path);
  // A file the build compiles a copy of (copies.ts) is compiled through that copy.
  const copyOf = new Map<string, string>();
  for (const file of touched) for (const copy of await copiesOf(opts.tree, opts.copies ?? [], file)) copyOf.set(copy, file);
  const affected = await affectedUnits(opts.tree, [...touched, ...copyOf.keys()], opts.database);
  const compiledViaCopy = new Set(affected.units.filter((a) => copyOf.has(a.unit.source)).map((a) => copyOf.get(a.unit.source)!));
  const notes = [
    ...affected.uncompiledSources.filter((s) => !copyOf.has(s) && !compiledViaCopy.has(s)).map((s) => `${s}: not compiled in this configuration`),
    ...affected.unusedHeaders.filter((h) => !copyOf.has(h)).map((h) => `${h}: included by no compiled unit`),
  ];
  // Said last: a unit without changed code is summed up by its first note.
  const copyNotes = [...compiledViaCopy].map((s) => `${s}: compiled as its build-time copy ${[...copyOf].filter(([, f]) => f === s).map(([c]) => c).join(', ')}`);
  if (affected.units.length === 0) {
    await unapply();
    return { verdict: 'no-code', reason: notes[0] ?? 'no compiled unit is affected', reasons: notes, objects: 0, compiled: 0 };
  }
  if (affected.units.length > opts.limit) {
    await unapply();
    const why = `compile-only limit: ${affected.units.length} translation units are affected (limit ${opts.limit}; ${affected.units[0]!.why})`;
    return { verdict: 'failed', reason: why, reasons: [why], objects: 0, compiled: 0 };
  }
  const units = affected.units.map((a) => a.unit);
  // The objects outlive the run (keyed by the patch text and the units compiled), so a new
  // create-diff-object re-judges a unit without compiling it again.
  const objectsKey = createHash('sha256').update(JSON.stringify([texts, units.map((u) => [u.source, u.compiler])])).digest('hex').slice(0, 16);
  const dir = join(opts.objectsCache, `${unit.id.replace(/[^\w.-]+/g, '_')}-${objectsKey}`);
  let cachedCompileSeconds = 0;
  const compileStarted = performance.now();
  if (await exists(join(dir, '.complete'))) {
    opts.log(`  ${units.length} translation unit(s): objects from the cache`);
    // The compile time measured when they were compiled (older markers hold only a date).
    const marker = await readFile(join(dir, '.complete'), 'utf8');
    cachedCompileSeconds = (JSON.parse(marker.startsWith('{') ? marker : '{}') as { seconds?: number }).seconds ?? 0;
    await unapply();
  } else {
    await rm(dir, { recursive: true, force: true });
    opts.log(`  compiling ${units.length} translation unit(s) with the patch`);
    const afterFailures = await compileUnits(units, join(dir, 'after'), opts.jobs, opts.env);
    await unapply();
    if (afterFailures.length > 0) {
      await rm(dir, { recursive: true, force: true });
      return compileFailed(afterFailures, 'with the patch applied', units.length);
    }
    opts.log(`  compiling ${units.length} translation unit(s) without it`);
    // A source the unit adds has no "before": its object is new (see below).
    const existing: TranslationUnit[] = [];
    for (const u of units) if (await exists(join(opts.tree, u.source))) existing.push(u);
    const beforeFailures = await compileUnits(existing, join(dir, 'before'), opts.jobs, opts.env);
    if (beforeFailures.length > 0) {
      await rm(dir, { recursive: true, force: true });
      return compileFailed(beforeFailures, 'before the patch', units.length);
    }
    const compileSeconds = Math.round((performance.now() - compileStarted) / 100) / 10;
    await writeFile(join(dir, '.complete'), JSON.stringify({ compiledAt: new Date().toISOString(), seconds: compileSeconds }) + '\n');
  }
  return { ...(await judgeCompiled({ id: unit.id, units, dir, scratch: opts.scratch, notes, lastNotes: copyNotes, texts, touched, ...(opts.services ? { services: opts.services } : {}) })), cachedCompileSeconds };
}

export interface CompiledUnits {
  readonly id: string;
  /** The affected translation units; each one's objects are dir/before/<objectName> (absent: new) and dir/after/<objectName>. */
  readonly units: readonly TranslationUnit[];
  readonly dir: string;
  readonly scratch: string;
  /** Notes said first (the first sums up a unit without changed code); appended to. */
  readonly notes: string[];
  /** Notes said last. */
  readonly lastNotes?: readonly string[];
  /** Sources the unit stops compiling (configure-unit.ts), with why: their objects leave the build. */
  readonly removed?: readonly { readonly source: string; readonly why: string }[];
  readonly texts: readonly string[];
  readonly touched: readonly string[];
  readonly services?: Services;
}

/**
 * Judges each compiled pair of objects with create-diff-object and maps the outcome to a
 * verdict: one code path for every unit compile-only mode measures (the walk's, and a
 * build-system unit's configured trees).
 */
export async function judgeCompiled(c: CompiledUnits): Promise<Classified> {
  const { units, dir, notes, texts, touched } = c;
  const work = join(c.scratch, c.id.replace(/[^\w.-]+/g, '_'));
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const objects: ObjectReport[] = [];
  const reasons: Reason[] = [];
  for (const tu of units) {
    const name = objectName(tu.source);
    const before = join(dir, 'before', name);
    const after = join(dir, 'after', name);
    // Only an added source has no "before" (compiled above from the sources that exist).
    const isNew = !(await exists(before));
    if (!isNew && (await sameBytes(before, after))) continue;
    const judged = await judgeObjectPair({ object: tu.source, source: tu.source, original: isNew ? null : before, patched: after, sourceExisted: !isNew, targets: [{ name: '', path: null }], scratch: work });
    reasons.push(...judged.reasons);
    notes.push(...judged.notes);
    objects.push(judged.report);
  }
  for (const { source, why } of c.removed ?? []) {
    // Its functions stay in the running process, no longer reachable from a rebuilt one: not a text change.
    reasons.push({ object: source, kind: 'removed-object', symbol: null, what: `${why}: its object leaves the build` });
    objects.push({ object: source, source, binaries: [], verdicts: [{ binary: '', outcome: 'not-text-only', exitCode: null, verdict: null }] });
  }
  notes.push(...(c.lastNotes ?? []));
  const cls = classifyOutcome({ touchesCompiledCode: true, objects, reasons, unbundled: [] });
  if (cls.outcome === 'no-compiled-code' && objects.length === 0) notes.unshift(`${units.length} affected translation unit(s) compile to identical objects`);
  const mapped = verdictOf({ outcome: cls.outcome, textOnly: cls.textOnly, reasons, notes, objects }, c.services);
  await rm(work, { recursive: true, force: true });
  const measured: Measured = { objects: { units: [...units], before: join(dir, 'before'), after: join(dir, 'after') }, texts, touched };
  return { ...mapped, reasons: mapped.reasons.length ? mapped.reasons : reasons.map(reasonLine), compiled: units.length, measured };
}

/** Walks the series backwards from its end to the first unit's start. */
export async function walkSeries(opts: WalkOptions): Promise<void> {
  const byEnd = new Map(opts.units.map((u) => [u.start + u.count, u]));
  const stop = Math.min(...opts.units.map((u) => u.start));
  let position = opts.series.length;
  await mkdir(opts.scratch, { recursive: true });
  while (position > stop) {
    const unit = byEnd.get(position);
    if (!unit) {
      await reverseApply(opts.tree, opts.series[position - 1]!, opts.copies, opts.undone);
      position--;
      continue;
    }
    const started = performance.now();
    const texts = await Promise.all(opts.series.slice(unit.start, position).map((e) => readFile(join(opts.tree, 'debian', 'patches', e.path), 'utf8')));
    opts.log(`${unit.id}: classifying (compile-only, on top of ${unit.start} series patches)`);
    let verdict: Omit<WalkVerdict, 'seconds'>;
    try {
      const { measured, ...classified } = await classifyAt(unit, texts.map(withoutMailSignature), opts);
      // The tree is now before the unit: its binaries (relink.ts) are the ones to confirm against.
      verdict = classified.verdict === 'kpatchable' && measured && opts.confirm ? await opts.confirm(unit, classified, measured) : classified;
    } catch (error) {
      if (!(error instanceof ReverseApplyFailed)) throw error;
      // The walk cannot go on past a patch that does not reverse-apply; every unit before it is unclassifiable here.
      const why = (error as Error).message.split('\n')[0]!;
      for (const u of opts.units.filter((x) => x.start <= unit.start)) {
        await opts.done(u, { verdict: 'failed', reason: `compile-only walk stopped: ${why}`, reasons: [why], objects: 0, compiled: 0, seconds: 0 });
      }
      return;
    }
    // Objects from the cache count with the time compiling them took: the cost of the unit.
    const seconds = (performance.now() - started) / 1000 + (verdict.cachedCompileSeconds ?? 0);
    await opts.done(unit, { ...verdict, seconds: Math.round(seconds * 10) / 10 });
    position = unit.start;
  }
}
