import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { fetchPackage, parsePackageSpec } from '../common/debian-source.ts';
import { copyTree } from '../common/fs.ts';
import { withLock } from '../common/lock.ts';
import { ensureBuildDeps } from '../common/build-deps.ts';
import { cacheRoot as defaultCacheRoot } from '../paths.ts';
import { wrapperVersion } from '../wrapper/index.ts';
import { appsRoot, findEnablement, type Enablement } from './apps.ts';
import { addChangelogEntry, addToSeries, changelogDate, checkApplies, enabledVersion, isApplied } from './debian.ts';
import { dropFromSeries, resolveSeriesNames, seriesNames, shippedFiles, withoutSuffix } from './without.ts';
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
  /**
   * Patches of the package's own series to leave out (names as in debian/patches/series, with
   * or without .patch): the build a fix from that series is made into a live patch against
   * (the original is the series without it). A distinct cache entry and version.
   */
  readonly without?: readonly string[];
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
  /** The series patches left out (their names in debian/patches/series). */
  readonly without: readonly string[];
  /** The build's outermost makes, binaries as linked, installed paths: see enable/original.ts. */
  readonly shipped: Readonly<Record<string, string>>;
  /** The build command and environment (what a patched build re-runs when it cannot replay the makes). */
  readonly build: { readonly command: string; readonly env: Readonly<Record<string, string>> };
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
  readonly without: readonly string[];
  /** Linked output (tree-relative) → the path the .debs install it at. */
  readonly shipped: Record<string, string>;
}

/**
 * Bump when what an enabled-build cache entry holds changes.
 * 2: built in place (no rename: the recorded makes name their folder), makes.json, linked/,
 *    shipped and without in meta.json.
 */
const cacheFormat = 2;

function cacheKey(name: string, version: string, enablement: Enablement, lib: LibwfpatchSnapshot, env: Record<string, string>, wrapper: string, without: readonly string[]): string {
  return createHash('sha256')
    .update(JSON.stringify([cacheFormat, name, version, enablement.name, enablement.sha256, lib.sha256, debianBinaryBuild.display, env, wrapper, ...(without.length ? [without] : [])]))
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
    without: meta.without,
    // Derived from the entry's own .debs and build log, so taken with today's rule (an entry
    // built before hard links counted has slapd missing from its meta.json's map).
    shipped: await shippedFiles(dir, meta.debs.map((d) => join(dir, 'debs', d))),
    build: { command: meta.build.command, env: meta.build.env },
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

/** `without` resolved against the series of NAME=VERSION (fetched into the source cache if it is not there). */
async function seriesNamesOf(name: string, version: string, without: readonly string[], root: string): Promise<string[]> {
  const source = await fetchPackage(`${name}=${version}`, join(root, 'wfbuild', 'sources'));
  const series = seriesNames(await readFile(join(source.dir, 'debian/patches/series'), 'utf8').catch(() => ''));
  return resolveSeriesNames(series, without, `${name} ${version}`);
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
  // Named as the series names them, before the cache key: one entry however a name is spelled.
  const without = opts.without?.length ? await seriesNamesOf(name, version, opts.without, opts.cacheRoot ?? defaultCacheRoot) : [];
  const enablement = await findEnablement(name, opts.appsDir ?? appsRoot);
  await mkdir(join(opts.cacheRoot ?? defaultCacheRoot, 'enable'), { recursive: true });
  // The physical path: the build records it (its makes' folders), and a patched build replays them there.
  const cache = await realpath(join(opts.cacheRoot ?? defaultCacheRoot, 'enable'));
  const lib = await snapshotLibwfpatch(cache, opts.runtimeDir);
  const env = { ...debianBinaryBuild.env, ...libwfpatchBuildEnv(lib) };
  const key = cacheKey(name, version, enablement, lib, env, await wrapperVersion(), without);
  const final = join(cache, `${name}_${version.replace(/^\d+:/, '')}${without.length ? withoutSuffix(without).replace('~', '-') : ''}-${key}`);
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
    if (!without.length) await checkApplies(source.dir, enablement, `${name} ${version}`);
    await ensureBuildDeps({ tree: source.dir, installFrom: `${name}=${version}`, label: `${name} ${version}`, log: say });
    // Older layouts built in a temporary sibling: any left over belong to killed builds.
    for (const stale of (await readdir(cache)).filter((n) => n.startsWith(`${basename(final)}.tmp-`))) {
      await rm(join(cache, stale), { recursive: true, force: true });
    }
    // Built in place under the lock; meta.json, written last, marks it complete (a killed
    // build leaves a folder without it, removed here).
    await rm(final, { recursive: true, force: true });
    await mkdir(final, { recursive: true });
    try {
      const tree = join(final, 'tree');
      if (without.length) {
        // The series without those patches: unpacked unpatched from the .dsc, the series
        // edited, then dpkg-source applies what is left (with the enablement patch).
        say(`unpacking ${name} ${version} without applying its series; leaving out ${without.join(', ')}`);
        const dsc = join(dirname(source.dir), `${name}_${version.replace(/^\d+:/, '')}.dsc`);
        const x = await execa('dpkg-source', ['--skip-patches', '-x', dsc, tree], { reject: false, all: true });
        if (x.exitCode !== 0) throw new UserError(`dpkg-source -x ${dsc} failed:\n${x.all ?? ''}`);
        await dropFromSeries(tree, without, `${name} ${version}`);
      } else {
        say(`copying the source tree into ${final}`);
        await copyTree(source.dir, tree);
      }
      await addToSeries(tree, enablement);
      const enabled = `${enabledVersion(version)}${withoutSuffix(without)}`;
      await addChangelogEntry(tree, {
        source: name,
        version: enabled,
        text: `Enable live patching with libwfpatch (debian/patches/${enablement.name}, built by wfbuild enable)${without.length ? `; without ${without.join(', ')} (the build a fix from the series is live-patched onto)` : ''}.`,
        maintainer: 'wfbuild <wfbuild@localhost>',
        date: changelogDate(new Date()),
      });
      say(`${debianBinaryBuild.display} of ${name} ${enabled} (nice, through the compiler wrapper; minutes)`);
      const result = await buildBinaryPackages(final, env);
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
        without,
        shipped: await shippedFiles(final, result.debs),
      };
      await writeFile(join(final, 'meta.json.tmp'), `${JSON.stringify(meta, null, 2)}\n`);
      await rename(join(final, 'meta.json.tmp'), join(final, 'meta.json'));
    } catch (error) {
      await rm(final, { recursive: true, force: true });
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
