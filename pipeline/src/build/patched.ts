import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { installShims, readRecords, wrapperEnv, type BuildLogEntry, type CompileEntry } from '../wrapper/index.ts';
import { bindMountAvailable, runBuild, type BuildCommand } from './command.ts';
import type { OriginalBuild } from './original.ts';
import { alive } from '../common/lock.ts';
import { copyTree, exists, sameBytes } from '../common/fs.ts';

/** A recompiled object whose bytes differ from the original's. */
export interface Candidate {
  readonly object: string;
  readonly source: string;
  /** False when the original build had no such object (a file the patch adds to the build). */
  readonly hasOriginal: boolean;
}

export interface PatchedBuild {
  /** The patched copy of the tree (removed by cleanup()). */
  readonly tree: string;
  readonly log: readonly BuildLogEntry[];
  readonly recompiled: readonly CompileEntry[];
  readonly candidates: readonly Candidate[];
  /** Recompiled objects that came out byte-identical. */
  readonly unchanged: readonly string[];
  cleanup(): Promise<void>;
}


/**
 * Explains a failed `patch --dry-run`: names the file and hunk, and says when the files do not
 * exist at all (a patch for another package or version).
 */
export function explainReject(output: string, patchName: string): string {
  const problems: string[] = [];
  let file = '?';
  let missing = 0;
  for (const line of output.split('\n')) {
    const patching = /^(?:checking|patching) file (.*)$/.exec(line);
    if (patching) file = patching[1].replace(/^'(.*)'$/, '$1');
    const hunk = /^Hunk #(\d+) FAILED at (\d+)/.exec(line);
    if (hunk) problems.push(`${file}: hunk #${hunk[1]} (at line ${hunk[2]}) does not apply`);
    const nofile = /^can't find file to patch at input line (\d+)/.exec(line);
    if (nofile) missing++;
    if (/Reversed \(or previously applied\) patch detected/.test(line)) problems.push(`${file}: already applied (or reversed)`);
  }
  if (missing > 0) {
    const named = [...output.matchAll(/^\|?\+\+\+ (?:b\/)?(\S+)/gm)].map((m) => m[1]);
    problems.unshift(`${missing} file(s) to patch do not exist in the tree${named.length ? ` (${[...new Set(named)].join(', ')})` : ''}: is it a patch for another package or version?`);
  }
  if (problems.length === 0) problems.push(output.trim().split('\n').slice(-5).join('\n'));
  return `${patchName} does not apply to this tree:\n  ${[...new Set(problems)].join('\n  ')}`;
}

/** `patch -p1` with a dry run first, so a reject leaves no half-patched tree behind. */
export async function applyPatch(tree: string, patchFile: string, patchName: string): Promise<void> {
  const args = ['-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-i', patchFile];
  const dry = await execa('patch', ['--dry-run', ...args], { cwd: tree, reject: false, all: true, stdin: 'ignore' });
  if (dry.exitCode !== 0) throw new UserError(explainReject(dry.all ?? '', patchName), ExitCode.usage);
  const real = await execa('patch', args, { cwd: tree, reject: false, all: true, stdin: 'ignore' });
  if (real.exitCode !== 0) throw new UserError(explainReject(real.all ?? '', patchName), ExitCode.usage);
}

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
    await runBuild(cmd, tree, wrapperEnv(shims, records, buildPath), `patched build (${patchName} applied)`, buildPath === tree ? undefined : buildPath);
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
