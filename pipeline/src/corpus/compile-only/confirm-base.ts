/**
 * "Confirmed against the binary" for compile-only verdicts of bookworm-update units. The walk
 * judges a unit on top of the whole series before it, where no binary exists; the binary users
 * run is the update's base (the tree before the first update unit), which the pipeline builds
 * through the compiler wrapper once (cached). Here the unit is measured again on that build:
 * the translation units it affects are compiled from the build's own log in a copy of the built
 * tree, before and after applying the unit (copies the build compiles follow, copies.ts);
 * create-diff-object runs with --binary against each long-running binary the objects are linked
 * into; the patch objects are linked into a bundle per binary and the loader's dry run
 * (`wfpatch-ctl check`) resolves them in that binary. No package build per unit. The same
 * confirmation (confirmObjects) checks the series walk's units against the binaries of the
 * tree before each, rebuilt incrementally (relink.ts).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { copyTree, exists, sameBytes } from '../../common/fs.ts';
import { buildId, writeBundle } from '../../bundle/index.ts';
import { crossObjectNotes, judgeFirst, resolveAcrossObjects, type Judged } from '../../stages/cross-object.ts';
import { originalBinary } from '../../stages/binaries.ts';
import type { OriginalBuild } from '../../stages/context.ts';
import { linkMap, type CompileEntry } from '../../wrapper/index.ts';
import type { ObjectReport, Reason } from '../../report/types.ts';
import { classifyOutcome } from '../../stages/classify.ts';
import { verdictOf } from '../classify-unit.ts';
import type { UnitVerdict } from '../results.ts';
import { checkBundle, confirmVerdict, type BundleCheck } from '../confirm.ts';
import { isLongRunning, type Services } from '../services.ts';
import { loadingPrograms } from '../../stages/loaded-by.ts';
import { libraryDir } from '../../stages/library-dir.ts';
import { affectedUnits } from './affected.ts';
import { compileUnits, objectName } from './compile.ts';
import { copiesOf, copiedTrees, syncCopies } from '../../common/copied-trees.ts';
import { fromBuildLog, rebase, type TranslationUnit } from './database.ts';

export interface BaseInput {
  /** The update base's original build (the wrapper's log and linked binaries). */
  readonly base: OriginalBuild;
  /** The same tree unbuilt (to find copied trees). */
  readonly pristine: string;
  /** The unit as one -p1 patch file. */
  readonly patchFile: string;
  /** Tree-relative files the unit touches. */
  readonly touched: readonly string[];
  readonly services?: Services;
  /** A scratch folder (removed afterwards). */
  readonly work: string;
  readonly jobs: number;
  readonly env: Record<string, string>;
}

export type BaseConfirmation =
  /** Bundles were written and dry-run: the checks decide (confirmVerdict). */
  | { readonly kind: 'checked'; readonly checks: BundleCheck[] }
  /** The unit could not be measured on the base the same way: not confirmed, why. */
  | { readonly kind: 'unconfirmed'; readonly why: string };

/** Which binaries each compiled source's object goes into, per the build's link log. */
function binariesBySource(base: OriginalBuild): Map<string, string[]> {
  const links = linkMap(base.log);
  const out = new Map<string, string[]>();
  for (const e of base.log) {
    if (e.kind !== 'compile' || e.sources.length !== 1) continue;
    const entry = e as CompileEntry;
    const bins = links.get(entry.object) ?? [];
    out.set(entry.sources[0]!, [...new Set([...(out.get(entry.sources[0]!) ?? []), ...bins])]);
  }
  return out;
}

interface Measured {
  readonly objects: ObjectReport[];
  readonly reasons: Reason[];
  readonly notes: string[];
  /** Patch objects per binary (create-diff-object said 'patch'). */
  readonly perBinary: Map<string, string[]>;
  readonly compiled: number;
}

/** A unit's objects, compiled before and after it (compile.ts' objectName in each folder). */
export interface UnitObjects {
  readonly units: readonly TranslationUnit[];
  readonly before: string;
  readonly after: string;
}

/**
 * Each changed object judged against the binaries of `build` it is linked into (all of them,
 * or only the long-running ones): create-diff-object --binary, and --loaded-by for a module.
 * A unit's source that did not exist before it (no "before" object) is judged as a new object.
 */
async function judgeAgainstBuild(build: OriginalBuild, objects: UnitObjects, services: Services | undefined, longRunningOnly: boolean, scratch: string, notes: string[]): Promise<Measured> {
  const bySource = binariesBySource(build);
  const measured: Measured = { objects: [], reasons: [], notes, perBinary: new Map(), compiled: objects.units.length };
  await mkdir(scratch, { recursive: true });
  const all: Judged[] = [];
  for (const tu of objects.units) {
    const before = join(objects.before, objectName(tu.source));
    const after = join(objects.after, objectName(tu.source));
    const isNew = !(await exists(before));
    if (!isNew && (await sameBytes(before, after))) continue;
    const binaries = (bySource.get(tu.source) ?? []).filter((b) => !longRunningOnly || !services || isLongRunning(services, b));
    if (binaries.length === 0) {
      notes.push(`${tu.source}: changed, but linked into no ${longRunningOnly ? 'long-running ' : ''}binary of this build`);
      continue;
    }
    const targets = await Promise.all(binaries.map(async (b) => ({ name: b, path: await originalBinary(build, b), loadedBy: await loadersOf(build, services, b), libraryDir: await libraryDir(build.linked) })));
    all.push(await judgeFirst({ object: tu.source, source: tu.source, original: isNew ? null : before, patched: after, sourceExisted: !isNew, targets, scratch }));
  }
  // A function one object's patch adds (or renames: new parameters, a new mangled name) and
  // another calls resolves within the bundle, as in the full pipeline.
  await resolveAcrossObjects(all);
  for (const j of all) {
    measured.objects.push(j.judged.report);
    measured.reasons.push(...j.judged.reasons);
    notes.push(...j.judged.notes, ...crossObjectNotes(j));
    for (const [binary, patch] of j.judged.patches) measured.perBinary.set(binary, [...(measured.perBinary.get(binary) ?? []), patch]);
  }
  return measured;
}

/**
 * The unit measured on the base build: affected units compiled before and after applying it
 * alone, then judged against the build's binaries (judgeAgainstBuild). `then` runs while the
 * work copy still exists (its patch objects).
 */
type Unmeasurable = { kind: 'unmeasurable'; why: string; noUnits?: boolean };

async function measureOnBase<T>(input: BaseInput, longRunningOnly: boolean, then: (m: Measured, scratch: string) => Promise<T>): Promise<T | Unmeasurable> {
  const { base } = input;
  const tree = join(input.work, 'tree');
  await rm(input.work, { recursive: true, force: true });
  await mkdir(input.work, { recursive: true });
  try {
    await copyTree(base.tree, tree);
    const database = fromBuildLog(base.log, base.tree).map((u) => rebase(u, base.tree, tree));
    const roots = await copiedTrees(base.tree, input.pristine, database.map((u) => u.source));
    const copies = (await Promise.all(input.touched.map((f) => copiesOf(tree, roots, f)))).flat();
    const affected = await affectedUnits(tree, [...input.touched, ...copies], database);
    const notes = affected.uncompiledSources.filter((f) => !copies.some((c) => c.endsWith(`/${f}`))).map((f) => `${f}: not compiled by this build`);
    const units = affected.units.map((a) => a.unit);
    if (units.length === 0) return { kind: 'unmeasurable', why: notes[0] ?? 'no compiled unit is affected', noUnits: true };
    const beforeFailures = await compileUnits(units, join(input.work, 'before'), input.jobs, input.env);
    if (beforeFailures.length > 0) return { kind: 'unmeasurable', why: `${beforeFailures[0]!.source} does not compile: ${beforeFailures[0]!.error}` };
    const applied = await execa('patch', ['-p1', '--batch', '--no-backup-if-mismatch', '-r', '-', '-i', input.patchFile], { cwd: tree, reject: false, all: true, stdin: 'ignore' });
    if (applied.exitCode !== 0) return { kind: 'unmeasurable', why: 'the unit does not apply alone' };
    await syncCopies(tree, roots, input.touched);
    const afterFailures = await compileUnits(units, join(input.work, 'after'), input.jobs, input.env);
    if (afterFailures.length > 0) return { kind: 'unmeasurable', why: `with the unit, ${afterFailures[0]!.source} does not compile: ${afterFailures[0]!.error}` };
    const scratch = join(input.work, 'scratch');
    const objects = { units, before: join(input.work, 'before'), after: join(input.work, 'after') };
    return await then(await judgeAgainstBuild(base, objects, input.services, longRunningOnly, scratch, notes), scratch);
  } finally {
    await rm(input.work, { recursive: true, force: true });
  }
}

/** The files of the programs that dlopen() `binary` in the base build (the manifest's services.loadedBy). */
async function loadersOf(base: OriginalBuild, services: Services | undefined, binary: string): Promise<string[]> {
  return Promise.all(loadingPrograms(services?.loadedBy, binary).map((p) => originalBinary(base, p)));
}

/** Links each binary's patch objects into a bundle and dry-runs it in that binary (and the programs loading it). */
async function checkBundles(base: OriginalBuild, perBinary: ReadonlyMap<string, readonly string[]>, patchFile: string, scratch: string, services?: Services): Promise<BundleCheck[]> {
  const checks: BundleCheck[] = [];
  for (const [binary, patches] of perBinary) {
    const path = await originalBinary(base, binary);
    const file = join(scratch, `${binary.replace(/\//g, '__')}.wfp`);
    const meta = { format: 1, patch: patchFile, sha256: '', cves: [], target: { path: binary, buildId: await buildId(path) } } as const;
    const bundle = await writeBundle([...patches], meta, file, scratch);
    checks.push(bundle.ok ? await checkBundle(file, path, binary, await loadersOf(base, services, binary), await libraryDir(base.linked)) : { binary, ok: false, line: `bundle does not link: ${bundle.error}` });
  }
  return checks;
}

/**
 * The confirmation proper, shared by both uses (the update base here, the walk's relinked
 * tree in relink.ts): every changed object must make a patch for the binaries it goes into,
 * then each binary's bundle is dry-run. `where` starts each reason ("on the update base").
 */
async function confirmMeasured(build: OriginalBuild, m: Measured, patchFile: string, scratch: string, services: Services | undefined, where: string): Promise<BaseConfirmation> {
  for (const o of m.objects) {
    const refused = o.verdicts.find((v) => v.outcome !== 'patch' && v.outcome !== 'nothing');
    if (!refused) continue;
    const reason = m.reasons.find((r) => r.object === o.object && r.kind !== 'layout') ?? m.reasons[0];
    return { kind: 'unconfirmed', why: `${where}, create-diff-object --binary ${refused.binary}: ${refused.outcome}${reason ? ` (${reason.what.slice(0, 200)})` : ''}` };
  }
  if (m.perBinary.size === 0) return { kind: 'unconfirmed', why: `${where}, no long-running binary changes` };
  return { kind: 'checked', checks: await checkBundles(build, m.perBinary, patchFile, scratch, services) };
}

export interface BuildObjectsInput {
  /** A build through the compiler wrapper (its log; its binaries in `linked` or `tree`). */
  readonly build: OriginalBuild;
  /** The unit's objects, compiled from that build's compile calls before and after the unit. */
  readonly objects: UnitObjects;
  /** The unit as one patch file (named in each bundle). */
  readonly patchFile: string;
  readonly services?: Services;
  /** A scratch folder for patch objects and bundles (removed afterwards). */
  readonly scratch: string;
  /** Where the binaries are, to start the reasons with ("on the tree before the unit"). */
  readonly where: string;
}

/**
 * Confirms a unit whose objects are already compiled against a build's binaries: its objects
 * judged with --binary for each long-running binary they are linked into, bundles linked and
 * dry-run (confirmMeasured). The walk uses it on its relinked copy of the build (relink.ts).
 */
export async function confirmObjects(input: BuildObjectsInput): Promise<BaseConfirmation> {
  await rm(input.scratch, { recursive: true, force: true });
  try {
    const m = await judgeAgainstBuild(input.build, input.objects, input.services, true, input.scratch, []);
    return await confirmMeasured(input.build, m, input.patchFile, input.scratch, input.services, input.where);
  } finally {
    await rm(input.scratch, { recursive: true, force: true });
  }
}

/** Confirms a kpatch-able verdict of the walk on the base build (see the top of the file). */
export async function confirmOnBase(input: BaseInput): Promise<BaseConfirmation> {
  const where = 'on the update base';
  const out = await measureOnBase(input, true, (m, scratch) => confirmMeasured(input.base, m, input.patchFile, scratch, input.services, where));
  return 'why' in out && out.kind === 'unmeasurable' ? { kind: 'unconfirmed', why: `${where}, ${out.why}` } : (out as BaseConfirmation);
}

/**
 * The whole verdict of an update unit from the base build, for a package whose wrapper build
 * recorded no make invocation to re-run (its rules call make by path), where the full
 * pipeline's patched build would be the whole package build again, per unit. For a unit that
 * leaves the build system alone, recompiling what it affects with the build's own compiler
 * calls gives the objects that rebuild would. Null: not measurable this way (the caller uses
 * the full pipeline).
 */
export async function classifyOnBase(input: BaseInput): Promise<(UnitVerdict & { compiled: number; how: string }) | null> {
  const out = await measureOnBase(input, false, async (m, scratch) => {
    const cls = classifyOutcome({ touchesCompiledCode: true, objects: m.objects, reasons: m.reasons, unbundled: [] });
    if (cls.outcome === 'no-compiled-code' && m.objects.length === 0) m.notes.unshift(`${m.compiled} affected translation unit(s) compile to identical objects`);
    const mapped = verdictOf({ outcome: cls.outcome, textOnly: cls.textOnly, reasons: m.reasons, notes: m.notes, objects: m.objects }, input.services);
    if (mapped.verdict !== 'kpatchable') return { ...mapped, compiled: m.compiled };
    // Bundles only for the long-running binaries the verdict counts.
    const counted = new Map([...m.perBinary].filter(([b]) => !input.services || isLongRunning(input.services, b)));
    return { ...confirmVerdict(mapped, await checkBundles(input.base, counted, input.patchFile, scratch, input.services)), compiled: m.compiled };
  });
  if ('kind' in out && out.kind === 'unmeasurable') {
    const u = out as Unmeasurable;
    // Nothing this build compiles is touched: no compiled code, as the full pipeline would say.
    return u.noUnits ? { verdict: 'no-code', reason: u.why, reasons: [u.why], objects: 0, compiled: 0, how: "checked against the update base's build log" } : null;
  }
  const v = out as UnitVerdict & { compiled: number };
  return { ...v, how: `recompiled on the update base's build (${v.compiled} translation units before and after, the build's own compiler calls)` };
}
