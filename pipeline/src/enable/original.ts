/**
 * `wfbuild PATCH --package NAME=VERSION --enabled`: the enabled build of `wfbuild enable` (its
 * cached build tree, compiler records, recorded makes, binaries as linked) taken as the
 * original build, so the bundles target exactly the binaries in its .debs (same build-id).
 *
 * Which enabled build: a patch that is one of the package's own series patches (same bytes, or
 * same file name) is a fix Debian already carries, so the running server is the series without
 * it: the enabled build `--without` that patch. Any other patch goes onto the enabled build of
 * the whole series.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import type { BuildCommand, OriginalBuild, SourceTree } from '../stages/context.ts';
import { fetchPackage, parsePackageSpec } from '../common/debian-source.ts';
import type { MakeInvocation } from '../wrapper/make-records.ts';
import { readBuildLog } from '../wrapper/index.ts';
import { cacheRoot as defaultCacheRoot } from '../paths.ts';
import { enablePackage, type EnableResult } from './index.ts';
import { seriesNames } from './without.ts';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** The series patch `patchFile` is (same bytes, else same file name), or null. */
export async function seriesPatchOf(tree: string, patchFile: string): Promise<string | null> {
  const names = seriesNames(await readFile(join(tree, 'debian/patches/series'), 'utf8').catch(() => ''));
  const bytes = sha256(await readFile(patchFile));
  for (const name of names) {
    const text = await readFile(join(tree, 'debian/patches', name)).catch(() => null);
    if (text && sha256(text) === bytes) return name;
  }
  return names.includes(basename(patchFile)) ? basename(patchFile) : null;
}

export interface EnabledOriginal {
  readonly enabled: EnableResult;
  readonly tree: SourceTree;
  /** What a patched build runs when it cannot replay the recorded makes: the build part of the enabled build. */
  readonly cmd: BuildCommand;
  readonly original: OriginalBuild;
}

/** The enabled build (built now if it is not cached) that `patchFile` is to be built against, as an original build. */
export async function enabledOriginal(pkg: string, patchFile: string, opts: { cacheRoot?: string; onOutput?: (line: string) => void } = {}): Promise<EnabledOriginal> {
  const spec = parsePackageSpec(pkg);
  if (spec.version === null) throw new UserError(`--enabled needs the exact version: --package ${spec.name}=VERSION`);
  const root = opts.cacheRoot ?? defaultCacheRoot;
  const source = await fetchPackage(pkg, join(root, 'wfbuild', 'sources'));
  const inSeries = await seriesPatchOf(source.dir, patchFile);
  if (inSeries) opts.onOutput?.(`${inSeries} is in ${spec.name} ${spec.version}'s own series: the enabled build without it`);
  const enabled = await enablePackage({ package: pkg, cacheRoot: root, ...(inSeries ? { without: [inSeries] } : {}), ...(opts.onOutput ? { onOutput: opts.onOutput } : {}) });
  const makesPath = join(enabled.dir, 'makes.json');
  if (!(await exists(makesPath))) throw new UserError(`${enabled.dir}: an enabled build from an older wfbuild (no makes.json); remove it and run wfbuild enable again`);
  const makes = JSON.parse(await readFile(makesPath, 'utf8')) as MakeInvocation[];
  const original: OriginalBuild = {
    key: enabled.key,
    dir: enabled.dir,
    tree: enabled.tree,
    log: await readBuildLog(join(enabled.dir, 'build-log.jsonl')),
    shipped: enabled.shipped,
    cached: true,
    makes,
    linked: join(enabled.dir, 'linked'),
  };
  const cmd: BuildCommand = { display: 'debian/rules build', argv: ['debian/rules', 'build'], env: enabled.build.env };
  return { enabled, tree: { dir: enabled.tree, package: { name: spec.name, version: enabled.version }, debian: true }, cmd, original };
}
