import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from '../common/text.ts';
import { exists } from '../common/fs.ts';
import { chooseBuildCommand } from './build-command.ts';
import { explainReject, patchApplies } from './apply-patch.ts';
import { resolveEarlierPatches, treeWithEarlierPatches } from './after-patches.ts';
import type { SourceTree, Stage } from './context.ts';
import { enabledOriginal } from '../enable/original.ts';

export type { SourceTree } from './context.ts';

/**
 * Stage 2, source tree: fetch (apt-get source) or describe the tree, choose the build command,
 * and check that the patch applies — before any build, so a patch for another package or
 * version fails in seconds.
 */
export const sourceStage: Stage = {
  key: 'source',
  title: () => 'source tree',
  async run(ctx, task) {
    const { options, cache, patchPath } = ctx.input;
    const fetched = options.package !== undefined ? await fetchPackage(options.package, join(cache, 'sources')) : await describeTree(options.source!);
    // Build dependencies come from what was fetched or given, not from the prepared copy.
    if (fetched.debian) ctx.buildDepsFrom = fetched.package && options.package !== undefined ? `${fetched.package.name}=${fetched.package.version}` : fetched.dir;
    ctx.after = await resolveEarlierPatches(options.after ?? []);
    // --enabled: the tree and the original build are wfbuild enable's (cached, or built now).
    const enabled = options.enabled ? await enabledOriginal(options.package!, patchPath, { cacheRoot: dirname(cache), onOutput: (line) => (task.output = line) }) : null;
    const tree = enabled ? enabled.tree : ctx.after.length > 0 ? await treeWithEarlierPatches(fetched, ctx.after, join(cache, 'based')) : fetched;
    ctx.tree = tree;
    ctx.cmd = enabled ? enabled.cmd : await chooseBuildCommand(tree, options.buildCmd);
    if (enabled) ctx.original = enabled.original;
    const check = await patchApplies(tree.dir, patchPath, join(cache, 'work'));
    if (!check.ok) {
      const hint = ctx.after.length === 0 ? '\n(if it is written on top of earlier fixes of the same update, name them with --after P1.patch,P2.patch or a series file)' : '';
      throw new UserError(`${explainReject(check.output, ctx.triage!.name)}${hint}`, ExitCode.usage);
    }
    const id = tree.package ? `${tree.package.name} ${tree.package.version}` : tree.dir;
    const after = ctx.after.length > 0 ? ` after ${ctx.after.map((p) => p.name).join(', ')}` : '';
    task.title = `source tree: ${id}${after}; the patch applies`;
  },
};

/** Name and version from debian/changelog, or null for a tree without one. */
export async function debianIdentity(dir: string): Promise<{ name: string; version: string } | null> {
  if (!(await exists(join(dir, 'debian/changelog')))) return null;
  const result = await execa('dpkg-parsechangelog', ['-l', join(dir, 'debian/changelog')], { reject: false });
  if (result.exitCode !== 0) return null;
  const name = /^Source: (\S+)$/m.exec(result.stdout)?.[1];
  const version = /^Version: (\S+)$/m.exec(result.stdout)?.[1];
  return name && version ? { name, version } : null;
}

export async function describeTree(dir: string): Promise<SourceTree> {
  const abs = resolve(dir);
  const info = await stat(abs).catch(() => null);
  if (!info?.isDirectory()) throw new UserError(`--source ${dir}: not a folder`);
  return { dir: abs, package: await debianIdentity(abs), debian: await exists(join(abs, 'debian/rules')) };
}

/** Splits "name=version" (version optional) and checks the name is a Debian package name. */
export function parsePackageSpec(spec: string): { name: string; version: string | null } {
  const [name, version] = spec.split('=', 2);
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new UserError(`--package ${spec}: not a Debian source package name`);
  if (version !== undefined && !/^[0-9][A-Za-z0-9.+~:-]*$/.test(version)) throw new UserError(`--package ${spec}: not a Debian version`);
  return { name, version: version ?? null };
}

/**
 * Fetches a Debian source package with `apt-get source` (which also applies the package's own
 * patch series) into `<cacheDir>/<name>_<version>/`, once per version.
 */
export async function fetchPackage(spec: string, cacheDir: string): Promise<SourceTree> {
  const { name, version } = parsePackageSpec(spec);
  const target = version ? `${name}=${version}` : name;
  // An exact version already in the cache needs no registry round trip (apt-get takes seconds).
  if (version) {
    const cached = join(cacheDir, `${name}_${version.replace(/^\d+:/, '')}`);
    if (await exists(join(cached, '.complete'))) return describeTree(join(cached, 'tree'));
  }
  // --print-uris names the .dsc (and so the exact version) without downloading anything —
  // in an empty folder: in one that already holds the .dsc (people run `apt-get source` first)
  // apt prints "Skipping already downloaded file" instead of the URIs.
  const empty = await mkdtemp(join(tmpdir(), 'wfbuild-uris-'));
  const uris = await execa('apt-get', ['source', '--print-uris', '-q', target], { cwd: empty, reject: false, all: true, stdin: 'ignore' }).finally(() =>
    rm(empty, { recursive: true, force: true }),
  );
  const dsc = /'[^']*' (\S+?)_(\S+)\.dsc /.exec(uris.stdout);
  if (uris.exitCode !== 0 || !dsc) {
    throw new UserError(`apt-get source ${target}: no such source package or version in the registry\n${tail(uris.all ?? '', 5)}`, ExitCode.usage);
  }
  const fileVersion = dsc[2];
  const final = join(cacheDir, `${dsc[1]}_${fileVersion}`);
  if (await exists(join(final, '.complete'))) return describeTree(join(final, 'tree'));
  const temp = `${final}.tmp-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  const result = await execa('apt-get', ['source', '-q', target], { cwd: temp, reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  if (result.exitCode !== 0) {
    await rm(temp, { recursive: true, force: true });
    throw new UserError(`apt-get source ${target} failed:\n${tail(result.all ?? '', 10)}`, ExitCode.missingPrerequisite);
  }
  const dirs = (await readdir(temp, { withFileTypes: true })).filter((d) => d.isDirectory());
  if (dirs.length !== 1) {
    await rm(temp, { recursive: true, force: true });
    throw new UserError(`apt-get source ${target}: expected one unpacked tree, found ${dirs.length}`, ExitCode.internal);
  }
  await rename(join(temp, dirs[0].name), join(temp, 'tree'));
  if (!(await exists(join(temp, 'tree/debian/changelog')))) {
    await rm(temp, { recursive: true, force: true });
    throw new UserError(`apt-get source ${target}: the unpacked tree has no debian/changelog`, ExitCode.internal);
  }
  await rm(final, { recursive: true, force: true });
  await rename(temp, final);
  await writeFile(join(final, '.complete'), `${new Date().toISOString()}\n`);
  return describeTree(join(final, 'tree'));
}
