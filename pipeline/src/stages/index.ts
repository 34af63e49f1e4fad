/**
 * `wfbuild PATCH`: from a Debian source patch to a classification (and bundles), in stages run
 * in this order — each in its own file, each stage's time in report.json's `timings`.
 */
import { join, resolve } from 'node:path';
import { Listr, type ListrTask } from 'listr2';
import { UserError } from '../cli/errors.ts';
import { cacheRoot } from '../paths.ts';
import type { Report } from '../report/types.ts';
import type { ClassifyOptions, Stage, StageContext, StageInput } from './context.ts';
import { triageStage } from './triage.ts';
import { sourceStage } from './source.ts';
import { buildDepsStage } from './build-deps.ts';
import { originalBuildStage } from './original-build.ts';
import { patchedBuildStage, sweepWork } from './patched-build.ts';
import { objectDiffStage } from './object-diff.ts';
import { bundleStage } from './bundle.ts';
import { assembleReport, defaultOut, writeOut } from './report.ts';

export type { Report } from '../report/types.ts';
export { exitCodeFor } from '../report/types.ts';
export type { ClassifyOptions } from './context.ts';
export { defaultOut } from './report.ts';

/** The stages before the report, in order (pipeline/README.md, "Stages"). */
export const stages: readonly Stage[] = [triageStage, sourceStage, buildDepsStage, originalBuildStage, patchedBuildStage, objectDiffStage, bundleStage];

/** A stage as a listr2 task that records its time and shows it in its title. */
function timed(stage: Stage, input: StageInput): ListrTask<StageContext> {
  return {
    title: stage.title(input),
    task: async (ctx, task) => {
      const start = performance.now();
      try {
        await stage.run(ctx, task);
      } finally {
        ctx.timings[stage.key] = Math.round(performance.now() - start);
        task.title = `${task.title} (${(ctx.timings[stage.key] / 1000).toFixed(1)} s)`;
      }
    },
  };
}

/**
 * Classifies a patch; the original build is cached (cacheRoot/wfbuild/orig/<key>), so
 * classifying many patches of one package builds it once. Throws UserError for bad input
 * (exit code inside); returns the report for every classification, including "no compiled
 * code changed".
 */
export async function classifyPatch(opts: ClassifyOptions): Promise<Report> {
  if ((opts.package === undefined) === (opts.source === undefined)) {
    throw new UserError('give exactly one of --package NAME[=VERSION] and --source DIR');
  }
  if (opts.enabled && (opts.package === undefined || (opts.after ?? []).length > 0 || opts.buildCmd !== undefined)) {
    throw new UserError('--enabled takes --package NAME=VERSION (the build of wfbuild enable), without --after or --build-cmd');
  }
  const input: StageInput = {
    options: opts,
    patchPath: resolve(opts.patch),
    // Absolute: the compiler wrapper writes its records from whatever folder make is in.
    cache: resolve(opts.cache ?? cacheRoot, 'wfbuild'),
    writeBundles: opts.bundles ?? true,
  };
  const out = opts.out === undefined ? defaultOut(opts.patch) : opts.out === null ? null : resolve(opts.out);
  const ctx: StageContext = { input, objects: [], reasons: [], notes: [], ignored: [], bundles: [], unbundled: [], perBinary: new Map(), timings: {} };
  await sweepWork(join(input.cache, 'work'));
  const tasks = new Listr<StageContext>(
    stages.map((stage) => timed(stage, input)),
    {
      renderer: opts.renderer ?? 'default',
      fallbackRenderer: 'simple',
      exitOnError: true,
      rendererOptions: { collapseSubtasks: false },
    } as ConstructorParameters<typeof Listr<StageContext>>[1],
  );
  try {
    await tasks.run(ctx);
    const report = assembleReport(ctx);
    if (out !== null) await writeOut(out, report, input.writeBundles ? ctx.scratch ?? null : null);
    return report;
  } finally {
    await ctx.patched?.cleanup();
  }
}
