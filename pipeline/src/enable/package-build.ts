import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExitCode, UserError } from '../cli/errors.ts';
import { runBuild, type BuildCommand } from '../stages/build-command.ts';
import { installShims, readRecords, wrapperEnv, writeBuildLog } from '../wrapper/index.ts';
import { readMakeRecords } from '../wrapper/make-records.ts';

/** Debian's binary build, without the test suite (it runs the server for minutes). */
export const enableBuildOptions = 'nocheck parallel=2';

export const debianBinaryBuild: BuildCommand = {
  display: 'dpkg-buildpackage -b -uc -us',
  argv: ['dpkg-buildpackage', '-b', '-uc', '-us'],
  env: { DEB_BUILD_OPTIONS: enableBuildOptions },
};

export interface PackageBuild {
  /** The .deb files, moved into `<work>/debs/`. */
  readonly debs: readonly string[];
  readonly ms: number;
}

/**
 * Builds the binary packages of `<work>/tree` with dpkg-buildpackage, through the compiler
 * wrapper (the same flags as wfbuild's original builds, so a later `wfbuild PATCH --enabled`
 * rebuild of this tree compares objects made the same way, and the shipped binary is the one
 * its bundles target). dpkg-buildpackage writes the .debs next to the tree; they are moved into
 * `<work>/debs/`, the compiler calls become `<work>/build-log.jsonl`, the outermost makes
 * `<work>/makes.json` (what a patched build re-runs), the binaries as linked `<work>/linked/`,
 * the output `<work>/build.log`: the layout of wfbuild's original builds, so that
 * `wfbuild PATCH --enabled` takes this build as its original (enable/original.ts).
 */
export async function buildBinaryPackages(work: string, env: Record<string, string>): Promise<PackageBuild> {
  const tree = join(work, 'tree');
  const shims = join(work, 'shims');
  const records = join(work, 'records');
  await installShims(shims);
  await mkdir(records);
  const started = Date.now();
  const output = await runBuild(debianBinaryBuild, tree, { ...env, ...wrapperEnv(shims, records, tree) }, 'enabled package build');
  const ms = Date.now() - started;
  await writeFile(join(work, 'build.log'), output);
  const log = await readRecords(tree, records, join(work, 'linked'));
  await writeFile(join(work, 'makes.json'), `${JSON.stringify(await readMakeRecords(tree, records), null, 1)}\n`);
  if (!log.some((e) => e.kind === 'compile')) {
    throw new UserError(`${debianBinaryBuild.display} compiled nothing through the compiler wrapper`, ExitCode.buildFailed);
  }
  await writeBuildLog(join(work, 'build-log.jsonl'), log);
  await rm(records, { recursive: true, force: true });
  const debDir = join(work, 'debs');
  await mkdir(debDir);
  const debs: string[] = [];
  for (const name of (await readdir(work)).filter((n) => n.endsWith('.deb')).sort()) {
    await rename(join(work, name), join(debDir, name));
    debs.push(join(debDir, name));
  }
  if (debs.length === 0) throw new UserError(`${debianBinaryBuild.display} produced no .deb`, ExitCode.buildFailed);
  return { debs, ms };
}
