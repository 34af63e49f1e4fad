import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from './text.ts';
import { exists } from './fs.ts';
import type { SourceTree } from '../stages/context.ts';

// Debian source trees, fetched or given: shared by the source stage and by `wfbuild enable`
// (which the source stage calls for --enabled), so neither imports the other for them.

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
