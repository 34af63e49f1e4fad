/**
 * Corpus units through the full pipeline (classifyPatch, via classify-unit.ts): a build per
 * base tree, the base trees tried in order (placement.ts), each result cached under its key.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { writeAtomic } from '../common/fs.ts';
import { cacheRoot } from '../paths.ts';
import { patchApplies } from '../stages/apply-patch.ts';
import { triagePatch } from '../triage/index.ts';
import { classifyUnit, type UnitClassification } from './classify-unit.ts';
import { unbuildableVerdict } from './unbuildable.ts';
import { changesBuildSystem, unitTreeMethod } from './unit-tree-build.ts';
import { newestResultFor, unitKey } from './keys.ts';
import type { Manifest } from './manifest.ts';
import { describePlacement, isSharedBase, placementKey, placementsFor, sharedBase, type Placement } from './placement.ts';
import { ensurePackagePrerequisites } from './prerequisites.ts';
import type { UnitResult } from './results.ts';
import { treeAt, treeWithout, treeWithoutRanges, unitPatchFile, withoutMailSignature } from './tree.ts';
import { chooseBuildCommand } from '../stages/build-command.ts';
import { describeTree } from '../stages/source.ts';
import { originalBuild } from '../stages/original-build.ts';
import { classifyOnBase } from './compile-only/confirm-base.ts';
import type { CorpusUnit } from './units.ts';

/** Does the unit apply at this tree? (stages/apply-patch.ts: applied for real to a copy of the files it touches) */
export async function appliesAt(tree: string, patchFile: string): Promise<boolean> {
  return (await patchApplies(tree, patchFile, join(tmpdir(), 'wfpatch-corpus-apply'))).ok;
}

export type PlacedClassification =
  | { readonly kind: 'classified'; readonly placement: Placement; readonly cls: UnitClassification; readonly seconds: number }
  /** The last base tree could not be made (the series without the unit does not apply). */
  | { readonly kind: 'no-base'; readonly placement: Placement; readonly why: string; readonly seconds: number }
  | { readonly kind: 'applies-nowhere'; readonly placement: Placement; readonly seconds: number };

/**
 * Classifies a unit on the first base tree that works. Skipped: a tree that cannot be made,
 * one the unit does not apply to alone (off its series position), and one whose original does
 * not build — the last one tried says why it failed.
 */
export async function classifyAtPlacements(
  manifest: Manifest,
  unit: CorpusUnit,
  placements: readonly Placement[],
  patchFile: string,
  buildCmd: string | null,
  log: (line: string) => void,
): Promise<PlacedClassification> {
  let seconds = 0;
  for (const [n, placement] of placements.entries()) {
    const last = n === placements.length - 1;
    let tree: string;
    try {
      tree = await placementTree(manifest, unit, placement, log);
    } catch (error) {
      // The series without this unit does not apply (a later patch needs it): no such base.
      if (!(error instanceof UserError)) throw error;
      if (last) return { kind: 'no-base', placement, why: error.message.split('\n')[0]!, seconds };
      continue;
    }
    if (isSharedBase(placement, unit) && !(await appliesAt(tree, patchFile))) {
      log(`does not apply alone (${describePlacement(placement)}); trying the next base`);
      continue;
    }
    log(`classifying (${describePlacement(placement)})`);
    const started = performance.now();
    const cls = await classifyUnit({ patchFile, tree, buildCmd, ...(manifest.services ? { services: manifest.services } : {}) });
    seconds = Math.round((seconds + (performance.now() - started) / 1000) * 10) / 10;
    const retry = whyTryNextBase(cls, placement, unit);
    if (retry && !last) {
      log(`${cls.reason.slice(0, 200)}; ${retry}, trying ${describePlacement(placements[n + 1]!)}`);
      continue;
    }
    return { kind: 'classified', placement, cls, seconds };
  }
  return { kind: 'applies-nowhere', placement: placements[placements.length - 1]!, seconds };
}

/**
 * Why a classification on this base says nothing about the unit, so the next base is tried:
 * the tree without the unit does not build; or, applied alone on the update base, the unit
 * does not compile because it needs an earlier update unit (haproxy's h2 path check calls a
 * function the update's previous patch adds) — its own series position holds that unit.
 */
function placementTree(manifest: Manifest, unit: CorpusUnit, p: Placement, log: (line: string) => void): Promise<string> {
  if (p.kind === 'series-prefix') return treeAt(manifest, p.at, log);
  if (p.kind === 'series-without-unit') return treeWithout(manifest, unit, log);
  return treeWithoutRanges(manifest, p.without, log);
}

/** Series patches in the tree a placement applies a unit to. */
function appliedAtOf(manifest: Manifest, unit: CorpusUnit, p: Placement): number {
  if (p.kind === 'series-prefix') return p.at;
  if (p.kind === 'series-without-unit') return manifest.seriesLength - unit.patches.length;
  return manifest.seriesLength - p.without.reduce((n, [a, b]) => n + b - a, 0);
}

export function whyTryNextBase(cls: Pick<UnitClassification, 'originalBuildFailed' | 'patchedBuildFailed'>, placement: Placement, unit: Pick<CorpusUnit, 'start'>): string | undefined {
  if (cls.originalBuildFailed) return 'the tree before this unit does not build';
  if (cls.patchedBuildFailed && isSharedBase(placement, unit)) return `it does not build alone (${describePlacement(placement)})`;
  return undefined;
}

/**
 * A unit no base tree builds without (every one tried failed its original build) is classified
 * from what it changes (unbuildable.ts); other results are returned as they are.
 */
export async function withUnbuildable(placed: PlacedClassification, patchFile: string, unitId: string): Promise<PlacedClassification> {
  if (placed.kind !== 'classified' || !placed.cls.originalBuildFailed) return placed;
  const files = triagePatch(withoutMailSignature(await readFile(patchFile, 'utf8')), unitId).files;
  const v = unbuildableVerdict(files, placed.cls.reason);
  return v ? { ...placed, cls: { ...placed.cls, ...v } } : placed;
}

/**
 * Whether classifying the unit builds the package: triage finds a compiled file. nodejs also
 * compiles its JavaScript library (lib/ *.js files, via js2c into the binary), which triage counts
 * as not compiled, so there a lib/ change needs the build too.
 */
async function needsBuild(manifest: Manifest, unit: CorpusUnit): Promise<boolean> {
  const tree = await treeAt(manifest, unit.start);
  const text = (await Promise.all(unit.patches.map((p) => readFile(join(tree, 'debian', 'patches', p), 'utf8')))).map(withoutMailSignature).join('');
  try {
    if (triagePatch(text, unit.id).touchesCompiledCode) return true;
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return true; // triage cannot read it: the full pipeline run will say why (a failed unit)
  }
  return manifest.package === 'nodejs' && /^\+\+\+ (b\/)?lib\/.*\.js/m.test(text);
}

/**
 * Whether the unit changes the build system (triage), read from the base version's patches:
 * such a unit is measured on its own tree built from scratch (unit-tree-build.ts), and its
 * result key says so, so a result of the earlier incremental way is not taken for it.
 */
async function buildSystemUnit(manifest: Manifest, unit: CorpusUnit): Promise<boolean> {
  const patches = join(await treeAt(manifest, 0), 'debian', 'patches');
  const text = (await Promise.all(unit.patches.map((p) => readFile(join(patches, p), 'utf8')))).map(withoutMailSignature).join('');
  try {
    return changesBuildSystem(triagePatch(text, unit.id));
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return false; // triage cannot read it: the run says why (a failed unit)
  }
}

function failedResult(pkg: string, unit: CorpusUnit, placement: Placement, key: string, reason: string, seconds: number): UnitResult {
  return {
    package: pkg, unit: unit.id, cves: unit.cves, views: unit.views, base: placement.kind,
    appliedAt: placement.kind === 'series-prefix' ? placement.at : -1,
    verdict: 'failed', reason, reasons: [reason], objects: 0, seconds, key,
  };
}

/**
 * An update unit on the shared base whose original build recorded no make invocation to re-run
 * (a rules file calling make by its path, seen by an older wrapper): the pipeline's patched build would be the whole
 * package build again for every unit. A unit that leaves the build system alone is measured by
 * recompiling what it affects with the build's own compiler calls instead
 * (compile-only/confirm-base.ts, classifyOnBase). Null: the full pipeline as usual.
 */
async function recompiledOnBase(manifest: Manifest, unit: CorpusUnit, placement: Placement, patchFile: string, unitId: string, buildCmd: string | null, log: (line: string) => void) {
  if (placement.kind === 'series-without-unit') return null;
  let triage: ReturnType<typeof triagePatch>;
  try {
    triage = triagePatch(withoutMailSignature(await readFile(patchFile, 'utf8')), unitId);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return null;
  }
  if (!triage.touchesCompiledCode || triage.files.some((f) => f.kind === 'build-system')) return null;
  let tree: string;
  try {
    tree = await placementTree(manifest, unit, placement, log);
  } catch (error) {
    // No such base (a later patch needs an update unit): classifyAtPlacements tries the next.
    if (!(error instanceof UserError)) throw error;
    return null;
  }
  if (!(await appliesAt(tree, patchFile))) return null;
  const source = await describeTree(tree);
  let base;
  try {
    base = await originalBuild(source, await chooseBuildCommand(source, buildCmd ?? undefined), join(cacheRoot, 'wfbuild', 'orig'), () => {});
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    return null; // the full pipeline says why
  }
  if (base.makes.length > 0) return null;
  log(`the base build recorded no make invocation to re-run: recompiling the affected units from its log`);
  return classifyOnBase({
    base,
    pristine: tree,
    patchFile,
    touched: triage.files.map((f) => f.path),
    ...(manifest.services ? { services: manifest.services } : {}),
    work: join(cacheRoot, 'corpus', 'walk', `${manifest.package}-${process.pid}.base`),
    jobs: 2,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
}

export interface FullPipelineOptions {
  /** Where each unit's result is cached (one JSON file per key). */
  readonly cacheDir: string;
  readonly buildCmd: string | null;
  readonly tools: object;
  /** Every update unit on one shared base (placement.ts, sharedBase). */
  readonly usesUpdateView: boolean;
  /** Build nothing: uncached units that need a build come back as pending (or an earlier tools' result). */
  readonly noBuilds: boolean;
  /** --units: only these units may build; the others are reported as with noBuilds. */
  readonly only?: ReadonlySet<string>;
  readonly log: (line: string) => void;
}

export async function classifyWithFullPipeline(manifest: Manifest, selected: readonly CorpusUnit[], opts: FullPipelineOptions): Promise<UnitResult[]> {
  const pkg = manifest.package;
  const { cacheDir, buildCmd, tools } = opts;
  let prepared = false;
  const units: UnitResult[] = [];
  for (const [i, unit] of selected.entries()) {
    const label = `${pkg} [${i + 1}/${selected.length}] ${unit.id}`;
    const placements = placementsFor(unit, sharedBase(manifest.units, selected, opts.usesUpdateView) ?? unit.start, manifest.seriesLength);
    const method = (await buildSystemUnit(manifest, unit)) ? `${buildCmd ?? 'default'}; ${unitTreeMethod}` : buildCmd;
    const keyOf = (p: Placement) => unitKey({ manifest, unit, appliedAt: placementKey(p), buildCmd: method, tools });
    // A finished unit costs nothing, not even a tree: look for any placement's result first.
    let cached: UnitResult | undefined;
    for (const placement of placements) {
      const text = await readFile(join(cacheDir, `${keyOf(placement)}.json`), 'utf8').catch(() => undefined);
      if (text !== undefined) {
        cached = JSON.parse(text) as UnitResult;
        break;
      }
    }
    if (cached) {
      opts.log(`${label}: ${cached.verdict} (cached)`);
      units.push({ ...cached, views: unit.views, cves: unit.cves });
      continue;
    }
    if ((opts.noBuilds || (opts.only && !opts.only.has(unit.id))) && (await needsBuild(manifest, unit))) {
      // Tools move while a long run goes on (the pipeline's sources are part of the key): a
      // reporting run takes the newest result for the same unit and patch, flagged as such.
      const inputs = placements.map((p) => unitKey({ manifest, unit, appliedAt: placementKey(p), buildCmd, tools: null }));
      const older = await newestResultFor(cacheDir, unit.id, inputs);
      if (older) {
        opts.log(`${label}: ${older.verdict} (cached, earlier tools)`);
        units.push({ ...older, views: unit.views, cves: unit.cves, earlierTools: true });
        continue;
      }
      opts.log(`${label}: pending (no cached result; --no-builds)`);
      units.push({ ...failedResult(pkg, unit, placements[0]!, keyOf(placements[0]!), 'not classified yet', 0), verdict: 'pending' });
      continue;
    }
    if (!prepared) {
      await ensurePackagePrerequisites(manifest, opts.log);
      prepared = true;
    }
    const patchDir = join(cacheRoot, 'corpus', 'patches', pkg);
    const patchFile = await unitPatchFile(manifest, unit, await treeAt(manifest, unit.start, opts.log), patchDir);
    if (opts.usesUpdateView) {
      const started = performance.now();
      const onBase = await recompiledOnBase(manifest, unit, placements[0]!, patchFile, unit.id, buildCmd, (line) => opts.log(`${label}: ${line}`));
      if (onBase) {
        const at = placements[0]!;
        const { compiled: _compiled, how, ...v } = onBase;
        const result: UnitResult = {
          package: pkg, unit: unit.id, cves: unit.cves, views: unit.views, base: at.kind,
          appliedAt: appliedAtOf(manifest, unit, at),
          ...v,
          seconds: Math.round((performance.now() - started) / 100) / 10,
          key: keyOf(at),
          inputs: unitKey({ manifest, unit, appliedAt: placementKey(at), buildCmd, tools: null }),
          mode: how,
        };
        await writeAtomic(join(cacheDir, `${result.key}.json`), JSON.stringify(result, null, 2) + '\n');
        opts.log(`${label}: ${result.verdict}${result.reason ? ` — ${result.reason.slice(0, 200)}` : ''} (${result.seconds} s, ${how})`);
        units.push(result);
        continue;
      }
    }
    const placed = await withUnbuildable(await classifyAtPlacements(manifest, unit, placements, patchFile, buildCmd, (line) => opts.log(`${label}: ${line}`)), patchFile, unit.id);
    const { placement, seconds } = placed;
    const result: UnitResult =
      placed.kind === 'classified'
        ? {
            package: pkg,
            unit: unit.id,
            cves: unit.cves,
            views: unit.views,
            base: placement.kind,
            appliedAt: appliedAtOf(manifest, unit, placement),
            verdict: placed.cls.verdict,
            reason: placed.cls.reason,
            reasons: placed.cls.reasons,
            objects: placed.cls.objects,
            ...(placed.cls.liveWithNewData !== undefined ? { liveWithNewData: placed.cls.liveWithNewData } : {}),
            ...(placed.cls.confirmation !== undefined ? { confirmation: placed.cls.confirmation } : {}),
            ...(placed.cls.perBinary !== undefined ? { perBinary: placed.cls.perBinary } : {}),
            seconds,
            key: keyOf(placement),
            inputs: unitKey({ manifest, unit, appliedAt: placementKey(placement), buildCmd, tools: null }),
          }
        : failedResult(pkg, unit, placement, keyOf(placement), placed.kind === 'no-base' ? `no base tree: ${placed.why}` : 'applies at no base tried', seconds);
    await writeAtomic(join(cacheDir, `${result.key}.json`), JSON.stringify(result, null, 2) + '\n');
    opts.log(`${label}: ${result.verdict}${result.reason ? ` — ${result.reason.slice(0, 200)}` : ''} (${result.seconds} s)`);
    units.push(result);
  }
  return units;
}
