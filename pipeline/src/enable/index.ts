import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { fetchPackage, parsePackageSpec } from '../stages/source.ts';
import { copyTree } from '../common/fs.ts';
import { withLock } from '../common/lock.ts';
import { ensureBuildDeps } from '../common/build-deps.ts';
import { cacheRoot as defaultCacheRoot } from '../paths.ts';
import { wrapperVersion } from '../wrapper/index.ts';
import { appsRoot, findEnablement, type Enablement } from './apps.ts';
import { addChangelogEntry, addToSeries, changelogDate, checkApplies, enabledVersion, isApplied } from './debian.ts';
import { libwfpatchBuildEnv, snapshotLibwfpatch, type LibwfpatchSnapshot } from './libwfpatch.ts';
import { buildBinaryPackages, debianBinaryBuild } from './package-build.ts';

export { enabledVersion } from './debian.ts';

export interface EnableOptions {
  /** NAME=VERSION: the Debian source package and its exact version. */
  readonly package: string;
  /** Copy the .debs here too. */
  readonly out?: string;
  /** Default corpus/apps. */
  readonly appsDir?: string;
  /** Default $WFPATCH_CACHE (/var/cache/wfpatch). */
  readonly cacheRoot?: string;
  /** libwfpatch's folder (default kpatch-fork/runtime, built). */
  readonly runtimeDir?: string;
  readonly onOutput?: (line: string) => void;
}

export interface EnableResult {
  readonly package: string;
  readonly sourceVersion: string;
  /** `<sourceVersion>+wfpatch1`. */
  readonly version: string;
  readonly key: string;
  /** The cache entry: meta.json, debs/, tree/ (the build tree), build-log.jsonl, build.log. */
  readonly dir: string;
  readonly tree: string;
  readonly debs: readonly string[];
  /** The .debs copied to --out. */
  readonly copied: readonly string[];
  readonly cached: boolean;
  /** How long dpkg-buildpackage took when this entry was built. */
  readonly buildMs: number;
  readonly patch: string;
}

interface Meta {
  readonly format: number;
  readonly package: string;
  readonly sourceVersion: string;
  readonly version: string;
  readonly key: string;
  readonly patch: { readonly file: string; readonly sha256: string };
  readonly libwfpatch: { readonly dir: string; readonly sha256: string };
  readonly build: { readonly command: string; readonly env: Record<string, string>; readonly wrapper: string; readonly builtIn: string; readonly ms: number };
  readonly debs: readonly string[];
  readonly builtAt: string;
}

/** Bump when what an enabled-build cache entry holds changes. */
const cacheFormat = 1;

function cacheKey(name: string, version: string, enablement: Enablement, lib: LibwfpatchSnapshot, env: Record<string, string>, wrapper: string): string {
  return createHash('sha256')
    .update(JSON.stringify([cacheFormat, name, version, enablement.name, enablement.sha256, lib.sha256, debianBinaryBuild.display, env, wrapper]))
    .digest('hex')
    .slice(0, 16);
}

async function fromCache(dir: string, copied: readonly string[] = []): Promise<EnableResult | null> {
  const text = await readFile(join(dir, 'meta.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  const meta = JSON.parse(text) as Meta;
  return {
    package: meta.package,
    sourceVersion: meta.sourceVersion,
    version: meta.version,
    key: meta.key,
    dir,
    tree: join(dir, 'tree'),
    debs: meta.debs.map((d) => join(dir, 'debs', d)),
    copied,
    cached: true,
    buildMs: meta.build.ms,
    patch: meta.patch.file,
  };
}

/** Copies the .debs into `out` (each through a temporary name, so none is ever half there). */
async function copyDebs(debs: readonly string[], out: string): Promise<string[]> {
  await mkdir(out, { recursive: true });
  const copied: string[] = [];
  for (const deb of debs) {
    const target = join(out, basename(deb));
    await copyFile(deb, `${target}.tmp-${process.pid}`);
    await rename(`${target}.tmp-${process.pid}`, target);
    copied.push(target);
  }
  return copied;
}

/**
 * `wfbuild enable`: the Debian source package NAME=VERSION with its enablement patch
 * (corpus/apps/NAME/) added to the series and a `+wfpatch1` changelog entry, built with
 * dpkg-buildpackage and linked with libwfpatch. The .debs and the build tree stay in
 * `$WFPATCH_CACHE/enable/<name>_<version>-<key>/`, key = hash of the enablement patch, the
 * libwfpatch build, the build command and environment; a second call is a cache hit. Built in a
 * temporary sibling and renamed into place: an error leaves nothing behind.
 */
export async function enablePackage(opts: EnableOptions): Promise<EnableResult> {
  const say = opts.onOutput ?? (() => {});
  const spec = parsePackageSpec(opts.package);
  if (spec.version === null) throw new UserError(`--package ${opts.package}: give the exact version, NAME=VERSION (apt-cache showsrc ${spec.name} lists them)`);
  const { name, version } = spec;
  const enablement = await findEnablement(name, opts.appsDir ?? appsRoot);
  const cache = join(opts.cacheRoot ?? defaultCacheRoot, 'enable');
  const lib = await snapshotLibwfpatch(cache, opts.runtimeDir);
  const env = { ...debianBinaryBuild.env, ...libwfpatchBuildEnv(lib) };
  const key = cacheKey(name, version, enablement, lib, env, await wrapperVersion());
  const final = join(cache, `${name}_${version.replace(/^\d+:/, '')}-${key}`);
  const out = opts.out === undefined ? undefined : resolve(opts.out);

  const hit = await fromCache(final);
  if (hit) return { ...hit, copied: out ? await copyDebs(hit.debs, out) : [] };

  const built = await withLock(`${final}.lock`, async () => {
    const again = await fromCache(final); // built by the process we waited for
    if (again) return again;
    say(`fetching ${name} ${version} (apt-get source)`);
    const source = await fetchPackage(`${name}=${version}`, join(opts.cacheRoot ?? defaultCacheRoot, 'wfbuild', 'sources'));
    if (!source.package || source.package.name !== name || source.package.version !== version) {
      throw new UserError(`apt-get source ${name}=${version} unpacked ${source.package ? `${source.package.name} ${source.package.version}` : 'a tree without debian/changelog'}`);
    }
    await checkApplies(source.dir, enablement, `${name} ${version}`);
    await ensureBuildDeps({ tree: source.dir, installFrom: `${name}=${version}`, label: `${name} ${version}`, log: say });
    // Temporary folders are made only under this lock: any left over belong to killed builds.
    for (const stale of (await readdir(cache)).filter((n) => n.startsWith(`${basename(final)}.tmp-`))) {
      await rm(join(cache, stale), { recursive: true, force: true });
    }
    const temp = `${final}.tmp-${process.pid}`;
    await mkdir(temp, { recursive: true });
    try {
      const tree = join(temp, 'tree');
      say(`copying the source tree into ${temp}`);
      await copyTree(source.dir, tree);
      await addToSeries(tree, enablement);
      const enabled = enabledVersion(version);
      await addChangelogEntry(tree, {
        source: name,
        version: enabled,
        text: `Enable live patching with libwfpatch (debian/patches/${enablement.name}, built by wfbuild enable).`,
        maintainer: 'wfbuild <wfbuild@localhost>',
        date: changelogDate(new Date()),
      });
      say(`${debianBinaryBuild.display} of ${name} ${enabled} (nice, through the compiler wrapper; minutes)`);
      const result = await buildBinaryPackages(temp, env);
      if (!(await isApplied(tree, enablement))) {
        throw new Error(`${tree}: the build left ${enablement.name} unapplied; the cached tree would not match its objects`);
      }
      const meta: Meta = {
        format: cacheFormat,
        package: name,
        sourceVersion: version,
        version: enabled,
        key,
        patch: { file: enablement.display, sha256: enablement.sha256 },
        libwfpatch: { dir: lib.dir, sha256: lib.sha256 },
        build: { command: debianBinaryBuild.display, env, wrapper: await wrapperVersion(), builtIn: tree, ms: result.ms },
        debs: result.debs.map((d) => basename(d)),
        builtAt: new Date().toISOString(),
      };
      await writeFile(join(temp, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
      await rm(final, { recursive: true, force: true });
      await rename(temp, final);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw error;
    }
    const fresh = await fromCache(final);
    if (!fresh) throw new Error(`${final}: meta.json missing right after publishing`);
    return { ...fresh, cached: false };
  }, (owner) => say(`waiting for process ${owner}, which builds the same enabled package`));
  return { ...built, copied: out ? await copyDebs(built.debs, out) : [] };
}

/** The enabled builds in the cache (for listings and tests). */
export async function cachedEnabledBuilds(root: string = defaultCacheRoot): Promise<string[]> {
  const dir = join(root, 'enable');
  if (!(await exists(dir))) return [];
  return (await readdir(dir)).filter((n) => !n.includes('.tmp-') && !n.endsWith('.lock') && n !== 'libwfpatch').sort();
}
