import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, utimes } from 'node:fs/promises';
import { execa } from 'execa';
import { dirname, join } from 'node:path';
import { installShims, readRecords, wrapperEnv, type CompileEntry } from '../wrapper/index.ts';
import { replayable, replayEnv, type MakeInvocation } from '../wrapper/make-records.ts';
import { BuildFailed, bindMountAvailable, runBuild } from './build-command.ts';
import { reproducibleEnv } from './reproducible.ts';
import { partitionCandidates } from './ignore.ts';
import { applyPatch } from './apply-patch.ts';
import { needsBuild, type BuildCommand, type Candidate, type OriginalBuild, type PatchedBuild, type Stage } from './context.ts';
import { alive } from '../common/lock.ts';
import { copyTree, exists, sameBytes } from '../common/fs.ts';
import { copiedTrees, syncCopies } from '../common/copied-trees.ts';

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
    // A patch to the build system may change what configure or a generator makes: then the
    // whole build command runs again, not only the recorded makes.
    const buildSystem = ctx.triage!.files.some((f) => f.kind === 'build-system');
    const touchedFiles = ctx.triage!.files.map((f) => f.path);
    const built = await patchedBuild(original, ctx.cmd!, ctx.input.patchPath, ctx.triage!.name, join(ctx.input.cache, 'work'), ctx.tree!.debian, buildSystem, touchedFiles, ctx.tree!.dir);
    ctx.patched = built; // set at once: classifyPatch cleans the work copy up even if what follows throws
    // The patched copies (a build compiling copies of the tree) are the patch's files too.
    const touched = [...ctx.triage!.files.map((f) => f.path), ...built.copies];
    const split = await partitionCandidates(original, built, touched, buildSystem, original.tree);
    const patched = { ...built, candidates: split.kept };
    ctx.patched = patched;
    ctx.ignored.push(...split.ignored);
    ctx.notes.push(...split.notes);
    ctx.scratch = join(dirname(patched.tree), 'scratch');
    await mkdir(ctx.scratch, { recursive: true });
    const compiledSources = new Set(original.log.flatMap((e) => (e.kind === 'compile' ? e.sources : [])));
    if (patched.copies.length) ctx.notes.push(`the build compiles copies of the tree: patched ${patched.copies.join(', ')} as well`);
    for (const f of ctx.triage!.files) {
      const copied = patched.copies.some((c) => c.endsWith(`/${f.path}`));
      if ((f.kind === 'c-source' || f.kind === 'cxx-source' || f.kind === 'asm') && !compiledSources.has(f.path) && !copied) {
        ctx.notes.push(`${f.path}: not compiled by this build (${ctx.cmd!.display})`);
      }
    }
    for (const object of patched.unchanged) ctx.notes.push(`${object}: recompiled, identical bytes`);
    // Last: a unit with no changed code is summed up by its first note (corpus reasons).
    ctx.notes.push(`patched build: ${patched.how}`);
    const ignored = split.ignored.length ? `, ${split.ignored.length} ignored (${[...new Set(split.ignored.map((i) => i.why))].join(', ')})` : '';
    task.title = `patched build: ${patched.recompiled.length} recompiled, ${patched.candidates.length} changed${ignored}`;
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
 * What the patched build runs: the original build's outermost make invocations, each with
 * its recorded arguments, directory and environment (so configure and dh's other steps do
 * not run again), when every compile of the original ran under one of them and the patch
 * leaves the build system alone; else the whole build command.
 */
interface RebuildPlan {
  /** Null: the whole build command. */
  readonly replay: { cmd: BuildCommand; env: Record<string, string> }[] | null;
  readonly how: string;
}

async function rebuildPlan(original: OriginalBuild, cmd: BuildCommand, buildSystem: boolean, buildPath: string, newShims: string, wrapper: Record<string, string>): Promise<RebuildPlan> {
  const check = await replayable(original.log, original.makes, original.tree);
  if (check.ok && !buildSystem) {
    const display = (make: MakeInvocation): string => `${make.tool} ${make.args.join(' ')}`.trim();
    // A make that compiled and linked nothing in the original (documentation, a generator
    // step) has nothing to redo for a patch that leaves the build system alone.
    const makes = original.makes.filter((make) => make.built !== false);
    const idle = original.makes.filter((make) => make.built === false);
    const replay = makes.map((make) => {
      // env -C: make runs in its recorded directory, at the path the build sees.
      const argv = ['env', '-C', join(buildPath, make.cwd), make.tool, ...make.args];
      return { cmd: { display: display(make), argv, env: replayEnv(make, join(original.dir, 'shims'), wrapper, newShims) }, env: {} };
    });
    const left = idle.length ? `; left out, as they compiled and linked nothing in the original build: ${idle.map((m) => `\`${display(m)}\` in ${m.cwd}`).join('; ')}` : '';
    return { replay, how: `re-ran the original build's make/ninja invocation(s): ${makes.map((m) => `\`${display(m)}\` in ${m.cwd}`).join('; ')}${left}` };
  }
  const why = buildSystem ? 'the patch changes the build system' : check.ok ? '' : check.why;
  return { replay: null, how: `re-ran the whole build command (${cmd.display}): ${why}` };
}

/**
 * Gives the patched files an mtime after every file of the tree. make and ninja decide by
 * mtimes, and `patch` stamps with the clock: a clock behind the tree's times (set back on a
 * shared machine, or a tree from a machine whose clock ran ahead) would leave the patched
 * files "older" than their objects, and nothing would be recompiled.
 */
async function newerThanTree(tree: string, touched: readonly string[]): Promise<void> {
  if (touched.length === 0) return;
  const listing = await execa('find', ['.', '-printf', '%T@\n'], { cwd: tree, maxBuffer: 1 << 28 });
  const newest = listing.stdout.split('\n').reduce((max, line) => (line && Number(line) > max ? Number(line) : max), Date.now() / 1000);
  const when = new Date(Math.ceil(newest + 1) * 1000);
  for (const file of touched) {
    const path = join(tree, file);
    if (await exists(path)) await utimes(path, when, when);
  }
}

/**
 * Copies the original build, applies the patch and re-runs the original's build steps: make
 * sees only the patched files as new, so only what depends on them is recompiled (and recorded).
 */
export async function patchedBuild(
  original: OriginalBuild,
  cmd: BuildCommand,
  patchFile: string,
  patchName: string,
  workRoot: string,
  debian: boolean,
  buildSystem = false,
  touched: readonly string[] = [],
  pristine: string | null = null,
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
    // A build that compiles a copy of the tree (made before make ran) would compile the copy
    // unpatched: the patch reaches the copies as it would have reached them before the build.
    const compiled = original.log.flatMap((e) => (e.kind === 'compile' ? e.sources : []));
    const roots = pristine === null ? [] : await copiedTrees(original.tree, pristine, compiled);
    const copies = await syncCopies(tree, roots, touched);
    await newerThanTree(tree, [...touched, ...copies]);
    // dh skips the whole build sequence while this stamp exists.
    if (debian) await rm(join(tree, 'debian/debhelper-build-stamp'), { force: true });
    const shims = join(work, 'shims');
    const records = join(work, 'records');
    await installShims(shims);
    await mkdir(records);
    // Built at the original's path when we can (see runBuild), else in place in the copy.
    const buildPath = (await bindMountAvailable()) ? original.tree : tree;
    const wrapper = { ...(await reproducibleEnv(tree)), ...wrapperEnv(shims, records, buildPath) };
    const plan = await rebuildPlan(original, cmd, buildSystem, buildPath, shims, wrapper);
    let how = plan.how;
    const what = `patched build (${patchName} applied)`;
    const at = buildPath === tree ? undefined : buildPath;
    try {
      for (const step of plan.replay ?? []) await runBuild(step.cmd, tree, step.env, what, at, 'patched');
    } catch (error) {
      // A recorded make that cannot run again as recorded (an environment that named a
      // temporary folder, say): the whole build command still gives the right objects, only slower.
      if (!(error instanceof BuildFailed)) throw error;
      how = `${plan.how}, which failed (${error.message.split('\n')[0]}); then re-ran the whole build command (${cmd.display})`;
      await runBuild(cmd, tree, wrapper, what, at, 'patched');
    }
    if (plan.replay === null) await runBuild(cmd, tree, wrapper, what, at, 'patched');
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
    return { tree, log, recompiled, candidates, unchanged, how, copies, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
