import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { installShims, readRecords, wrapperEnv, type CompileEntry } from '../wrapper/index.ts';
import { bindMountAvailable, runBuild } from './build-command.ts';
import { applyPatch } from './apply-patch.ts';
import { needsBuild, type BuildCommand, type Candidate, type OriginalBuild, type PatchedBuild, type Stage } from './context.ts';
import { alive } from '../common/lock.ts';
import { copyTree, exists, sameBytes } from '../common/fs.ts';

export type { Candidate, PatchedBuild } from './context.ts';

/**
 * Stage 4, patched build: a copy of the original build, patched and rebuilt by the same
 * command; the recompiled objects whose bytes differ are the candidates for the object diff.
 */
export const patchedBuildStage: Stage = {
  key: 'patchedBuild',
  title: () => 'apply the patch and rebuild incrementally',
  async run(ctx, task) {
    if (!needsBuild(ctx)) return task.skip('no compiled code touched');
    const original = ctx.original!;
    const patched = await patchedBuild(original, ctx.cmd!, ctx.input.patchPath, ctx.triage!.name, join(ctx.input.cache, 'work'), ctx.tree!.debian);
    ctx.patched = patched;
    ctx.scratch = join(dirname(patched.tree), 'scratch');
    await mkdir(ctx.scratch, { recursive: true });
    const compiledSources = new Set(original.log.flatMap((e) => (e.kind === 'compile' ? e.sources : [])));
    for (const f of ctx.triage!.files) {
      if ((f.kind === 'c-source' || f.kind === 'cxx-source' || f.kind === 'asm') && !compiledSources.has(f.path)) {
        ctx.notes.push(`${f.path}: not compiled by this build (${ctx.cmd!.display})`);
      }
    }
    for (const object of patched.unchanged) ctx.notes.push(`${object}: recompiled, identical bytes`);
    task.title = `patched build: ${patched.recompiled.length} recompiled, ${patched.candidates.length} changed`;
  },
};

/** Removes work folders (`<pid>-…`, `check-<pid>-…`) of runs that were killed. */
export async function sweepWork(workRoot: string): Promise<void> {
  const names = await readdir(workRoot).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(/^(?:check-)?(\d+)-/.exec(name)?.[1] ?? 0);
    if (pid > 0 && pid !== process.pid && !alive(pid)) await rm(join(workRoot, name), { recursive: true, force: true });
  }
}

/**
 * Copies the original build, applies the patch and reruns the same build command: make sees
 * only the patched files as new, so only what depends on them is recompiled (and recorded).
 */
export async function patchedBuild(
  original: OriginalBuild,
  cmd: BuildCommand,
  patchFile: string,
  patchName: string,
  workRoot: string,
  debian: boolean,
): Promise<PatchedBuild> {
  await mkdir(workRoot, { recursive: true });
  // The owner's pid leads the name so sweepWork() can tell a killed run's leftovers.
  const work = join(workRoot, `${process.pid}-${createHash('sha256').update(`${patchFile}${Date.now()}`).digest('hex').slice(0, 12)}`);
  await mkdir(work);
  const cleanup = (): Promise<void> => rm(work, { recursive: true, force: true });
  try {
    const tree = join(work, 'tree');
    await copyTree(original.tree, tree);
    await applyPatch(tree, patchFile, patchName);
    // dh skips the whole build sequence while this stamp exists.
    if (debian) await rm(join(tree, 'debian/debhelper-build-stamp'), { force: true });
    const shims = join(work, 'shims');
    const records = join(work, 'records');
    await installShims(shims);
    await mkdir(records);
    // Built at the original's path when we can (see runBuild), else in place in the copy.
    const buildPath = (await bindMountAvailable()) ? original.tree : tree;
    await runBuild(cmd, tree, wrapperEnv(shims, records, buildPath), `patched build (${patchName} applied)`, buildPath === tree ? undefined : buildPath, 'patched');
    const log = await readRecords(buildPath, records);
    const recompiled = log.filter((e): e is CompileEntry => e.kind === 'compile');
    const candidates: Candidate[] = [];
    const unchanged: string[] = [];
    for (const entry of recompiled) {
      const before = join(original.tree, entry.object);
      const hasOriginal = await exists(before);
      if (hasOriginal && (await sameBytes(before, join(tree, entry.object)))) unchanged.push(entry.object);
      else candidates.push({ object: entry.object, source: entry.sources[0], hasOriginal });
    }
    return { tree, log, recompiled, candidates, unchanged, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
