/**
 * A unit that changes the build system, measured on its own tree: the unbuilt base tree with
 * the unit applied, configured and built from scratch through the compiler wrapper, exactly as
 * the base was (stages/original-build.ts, so it is cached under its contents like any original
 * build), and its objects compared with the base build's.
 *
 * Why not the pipeline's patched build (a copy of the built base, patched, the build command
 * re-run): a Debian build does not run twice in one tree. dh_autoreconf "only runs once",
 * a `configure-stamp` keeps configure from re-running (apache2), rules refuse a tree they have
 * already prepared (openldap's override_dh_auto_configure stops on the schema it copied in
 * itself: "debian/rules:54: build Error 2"), and a patch to a file the build regenerates
 * (apache2's fhs_compliance.patch changes `configure`) does not even apply to the built tree.
 * Built from scratch, configure sees the unit's Makefile.in/configure.ac, so the objects show
 * what the unit changes through flags and generated headers. The objects are then judged by
 * the pipeline's own stages (object diff, bundles) unchanged.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { copyTree, exists, sameBytes } from '../common/fs.ts';
import { cacheRoot } from '../paths.ts';
import { applyPatch } from '../stages/apply-patch.ts';
import { BuildFailed } from '../stages/build-command.ts';
import { buildDepsStage } from '../stages/build-deps.ts';
import { needsBuild, type Candidate, type ClassifyOptions, type PatchedBuild, type Stage, type StageContext, type StageInput, type StageTask } from '../stages/context.ts';
import { partitionCandidates } from '../stages/ignore.ts';
import { objectDiffStage } from '../stages/object-diff.ts';
import { originalBuild, originalBuildStage } from '../stages/original-build.ts';
import { sweepWork } from '../stages/patched-build.ts';
import { assembleReport, writeOut } from '../stages/report.ts';
import { describeTree, sourceStage } from '../stages/source.ts';
import { triageStage } from '../stages/triage.ts';
import { bundleStage } from '../stages/bundle.ts';
import type { Report } from '../report/types.ts';
import type { CompileEntry } from '../wrapper/index.ts';
import type { Triage } from '../triage/index.ts';

/** How build-system units are measured: part of their result keys, so results of the earlier way are not reused. */
export const unitTreeMethod = 'build-system units: the unit tree built from scratch (1)';

/** Whether a unit is measured on its own tree: it touches a build-system file or generator input. */
export function changesBuildSystem(triage: Pick<Triage, 'files'>): boolean {
  return triage.files.some((f) => f.kind === 'build-system');
}

/** The last compile of each object (configure probes compile conftest.o many times). */
function lastCompiles(log: readonly { kind: string }[]): CompileEntry[] {
  const byObject = new Map<string, CompileEntry>();
  for (const e of log) if (e.kind === 'compile') byObject.set((e as CompileEntry).object, e as CompileEntry);
  return [...byObject.values()];
}

/**
 * Stage 4 for a build-system unit: the unit's tree built from scratch; every object it compiles
 * that differs from the base build's (or that the base build did not have) is a candidate.
 */
export const unitTreeBuildStage: Stage = {
  key: 'patchedBuild',
  title: () => "build the unit's tree from scratch (configure re-run)",
  async run(ctx, task) {
    if (!needsBuild(ctx)) return task.skip('no compiled code touched');
    const original = ctx.original!;
    const name = ctx.triage!.name;
    const work = join(ctx.input.cache, 'work', `${process.pid}-unit-${createHash('sha256').update(`${ctx.input.patchPath}${Date.now()}`).digest('hex').slice(0, 12)}`);
    await mkdir(work, { recursive: true });
    const cleanup = (): Promise<void> => rm(work, { recursive: true, force: true });
    try {
      // Same folder name as the base tree: a tree without a changelog is identified by it.
      const tree = join(work, basename(ctx.tree!.dir));
      await copyTree(ctx.tree!.dir, tree);
      await applyPatch(tree, ctx.input.patchPath, name);
      let built;
      try {
        built = await originalBuild(await describeTree(tree), ctx.cmd!, join(ctx.input.cache, 'orig'), (line) => (task.output = line));
      } catch (error) {
        // The unit breaks the build: that is this unit's failure, not a base that does not build.
        if (!(error instanceof BuildFailed)) throw error;
        throw new BuildFailed(`patched build (${name} applied to the unbuilt tree, built from scratch) failed: ${error.message.replace(/^original build of [^\n]*? failed /, '')}`, 'patched', error.logDir);
      }
      const compiled = lastCompiles(built.log);
      const candidates: Candidate[] = [];
      const unchanged: string[] = [];
      for (const entry of compiled) {
        const before = join(original.tree, entry.object);
        const hasOriginal = await exists(before);
        if (hasOriginal && (await sameBytes(before, join(built.tree, entry.object)))) unchanged.push(entry.object);
        else candidates.push({ object: entry.object, source: entry.sources[0]!, hasOriginal });
      }
      const how = `built the unit's tree from scratch (${name} applied to the unbuilt tree; ${ctx.cmd!.display}, configure re-run; original build ${built.key}${built.cached ? ', cached' : ''}) and compared its ${compiled.length} objects with the base build's`;
      const patched: PatchedBuild = { tree: built.tree, log: built.log, recompiled: compiled, candidates, unchanged, how, copies: [], cleanup };
      ctx.patched = patched;
      const touched = ctx.triage!.files.map((f) => f.path);
      // A build-system change may change any object through its flags: only objects in no
      // binary (configure's probes) are set aside.
      const split = await partitionCandidates(original, patched, touched, true, original.tree);
      ctx.patched = { ...patched, candidates: split.kept };
      ctx.ignored.push(...split.ignored);
      const rebuilt = new Set(compiled.map((e) => e.object));
      const dropped = lastCompiles(original.log).filter((e) => !rebuilt.has(e.object) && !e.object.includes('conftest'));
      // First: a unit with no changed object is summed up by its first note (corpus reasons).
      if (split.kept.length === 0) {
        ctx.notes.push(`a build-system change that changes no compiled object: its tree, configured and built from scratch, compiles ${unchanged.length} objects byte for byte as the base build${split.ignored.length ? ` (${split.ignored.length} others differ but are in no binary: ${split.ignored.map((i) => i.object).slice(0, 3).join(', ')})` : ''}`);
      }
      ctx.notes.push(...split.notes);
      if (dropped.length) ctx.notes.push(`the unit's build no longer compiles ${dropped.length} object(s) of the base build: ${dropped.slice(0, 5).map((e) => e.object).join(', ')}`);
      ctx.scratch = join(work, 'scratch');
      await mkdir(ctx.scratch, { recursive: true });
      ctx.notes.push(`patched build: ${how}`);
      task.title = `unit's tree built: ${compiled.length} objects, ${split.kept.length} changed`;
    } catch (error) {
      ctx.patched = undefined;
      await cleanup();
      throw error;
    }
  },
};

const noTask = (): StageTask => ({ title: '', output: '', skip: () => {} });

/**
 * classifyPatch (stages/index.ts) for a build-system unit: the same stages, with the unit's tree
 * built from scratch in place of the incremental patched build. Throws UserError as classifyPatch does.
 */
export async function classifyOnUnitTree(opts: ClassifyOptions & { readonly source: string }): Promise<Report> {
  const input: StageInput = { options: opts, patchPath: resolve(opts.patch), cache: resolve(opts.cache ?? cacheRoot, 'wfbuild'), writeBundles: opts.bundles ?? true };
  const ctx: StageContext = { input, objects: [], reasons: [], notes: [], ignored: [], bundles: [], unbundled: [], perBinary: new Map(), timings: {} };
  await sweepWork(join(input.cache, 'work'));
  try {
    for (const stage of [triageStage, sourceStage, buildDepsStage, originalBuildStage, unitTreeBuildStage, objectDiffStage, bundleStage]) {
      const start = performance.now();
      try {
        await stage.run(ctx, noTask());
      } finally {
        ctx.timings[stage.key] = Math.round(performance.now() - start);
      }
    }
    const report = assembleReport(ctx);
    if (opts.out) await writeOut(resolve(opts.out), report, input.writeBundles ? ctx.scratch ?? null : null);
    return report;
  } finally {
    await ctx.patched?.cleanup();
  }
}
