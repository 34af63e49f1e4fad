/**
 * One corpus package: its selected units classified in compile-only mode (compile-only/) or
 * through the full pipeline (full-pipeline.ts), and its row of the results table.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../paths.ts';
import { classifyCompileOnly, profiles } from './compile-only/index.ts';
import { classifyAtPlacements, classifyWithFullPipeline, withUnbuildable } from './full-pipeline.ts';
import { resultsCache, unitKey } from './keys.ts';
import { readManifest } from './manifest.ts';
import { describePlacement, placementsFor, preferredBase, selectUnits, type View } from './placement.ts';
import { ensurePackagePrerequisites } from './prerequisites.ts';
import { packageRow } from './results.ts';
import type { PackageResults } from './results-file.ts';
import { treeAt, unitPatchFile } from './tree.ts';
import { chooseBuildCommand } from '../stages/build-command.ts';
import { describeTree } from '../stages/source.ts';
import { originalBuild } from '../stages/original-build.ts';
import type { OriginalBuild } from '../stages/context.ts';
import type { CorpusUnit } from './units.ts';

export interface RunOptions {
  readonly packages: readonly string[];
  readonly jobs: number;
  readonly view: View;
  readonly outDir: string;
  /**
   * Run no package build: units without a cached result are classified only when they need no
   * build (triage finds no compiled file); the rest are reported as pending.
   */
  readonly noBuilds: boolean;
  /** Classify every package with the full pipeline (a build per unit), not compile-only. */
  readonly fullBuilds: boolean;
  /** Compile-only mode: most translation units one unit may compile (undefined: per package). */
  readonly limit: number | undefined;
  /** --units: only these units are classified anew; the others come from the cache. */
  readonly units?: ReadonlySet<string>;
  readonly log: (line: string) => void;
}

export async function classifyPackage(pkg: string, opts: RunOptions, tools: object): Promise<PackageResults> {
  const manifest = await readManifest(pkg);
  const selected = selectUnits(manifest, opts.view);
  const usesUpdateView = opts.view !== 'series' && selected.some((u) => u.views.includes('update'));
  const buildCmd = opts.jobs === 2 ? null : `DEB_BUILD_OPTIONS='nocheck nostrip parallel=${opts.jobs}' debian/rules build`;
  const cacheDir = join(resultsCache, pkg);
  await mkdir(cacheDir, { recursive: true });
  const done = { package: pkg, baseVersion: manifest.baseVersion, update: manifest.update, view: opts.view, usesUpdateView };
  // Compile-only update units are confirmed on the update base's build (compile-only/confirm-base.ts):
  // the tree before the first update unit, built once through the compiler wrapper (cached).
  let baseBuild: Promise<{ base: OriginalBuild; pristine: string }> | undefined;
  const updateBase = async (unit: CorpusUnit) => {
    if (!usesUpdateView || !unit.views.includes('update') || profiles[pkg]?.how !== 'build-log') return null;
    baseBuild ??= (async () => {
      const pristine = await treeAt(manifest, preferredBase(unit, selected, true), opts.log);
      const source = await describeTree(pristine);
      const cmd = await chooseBuildCommand(source, undefined);
      opts.log(`${pkg}: the update base's original build through the compiler wrapper (${cmd.display}; cached)`);
      return { base: await originalBuild(source, cmd, join(cacheRoot, 'wfbuild', 'orig'), () => {}), pristine };
    })();
    const { base, pristine } = await baseBuild;
    const patchFile = await unitPatchFile(manifest, unit, await treeAt(manifest, unit.start, opts.log), join(cacheRoot, 'corpus', 'patches', pkg));
    return { base, pristine, patchFile };
  };
  if (profiles[pkg] && !opts.fullBuilds) {
    // Compile-only mode (corpus/README.md): units in series order on one configured tree.
    const out = await classifyCompileOnly(manifest, selected, {
      jobs: opts.jobs,
      limit: opts.limit,
      tools,
      cacheDir,
      log: opts.log,
      noBuilds: opts.noBuilds,
      ...(opts.units ? { only: opts.units } : {}),
      keyOf: (unit, mode) => unitKey({ manifest, unit, appliedAt: unit.start, buildCmd: mode, tools }),
      inputsOf: (unit) => unitKey({ manifest, unit, appliedAt: unit.start, buildCmd: `compile-only ${profiles[pkg]!.name}`, tools: null }),
      ensurePrerequisites: () => ensurePackagePrerequisites(manifest, opts.log),
      updateBase,
      fallback: async (unit) => {
        await ensurePackagePrerequisites(manifest, opts.log);
        const patchFile = await unitPatchFile(manifest, unit, await treeAt(manifest, unit.start, opts.log), join(cacheRoot, 'corpus', 'patches', pkg));
        // As the full pipeline's series walk: the tree before the unit, else (it does not
        // build without a later patch) the whole series without the unit.
        const placements = placementsFor(unit, unit.start, manifest.seriesLength);
        // No tree without the unit builds (openldap's contrib-makefiles): classified from what it changes.
        const placed = await withUnbuildable(await classifyAtPlacements(manifest, unit, placements, patchFile, buildCmd, (line) => opts.log(`${pkg} ${unit.id}: ${line}`)), patchFile, unit.id);
        if (placed.kind !== 'classified') return null;
        const { cls } = placed;
        // Everything the full pipeline found (new data, per-binary verdicts, the bundles' dry run), and where it measured.
        return {
          verdict: cls.verdict,
          reason: cls.reason,
          reasons: [...cls.reasons, `measured ${describePlacement(placed.placement)}`],
          objects: cls.objects,
          ...(cls.liveWithNewData !== undefined ? { liveWithNewData: cls.liveWithNewData } : {}),
          ...(cls.perBinary !== undefined ? { perBinary: cls.perBinary } : {}),
          ...(cls.confirmation !== undefined ? { confirmation: cls.confirmation } : {}),
          compiled: 0,
          seconds: 0,
        };
      },
    });
    const seconds = out.units.reduce((sum, u) => sum + u.seconds, 0) + out.prepareSeconds;
    return { ...done, compileOnly: true, units: out.units, row: packageRow(pkg, manifest.baseVersion, out.units, seconds) };
  }
  const units = await classifyWithFullPipeline(manifest, selected, { cacheDir, buildCmd, tools, usesUpdateView, noBuilds: opts.noBuilds, ...(opts.units ? { only: opts.units } : {}), log: opts.log });
  const seconds = units.reduce((sum, u) => sum + u.seconds, 0);
  return { ...done, units, row: packageRow(pkg, manifest.baseVersion, units, seconds) };
}
