/**
 * A live-patch bundle from one patch of a Debian package's own series, built by `wfbuild PATCH
 * --package NAME=VERSION --enabled` against the enabled build of the series without that patch
 * (`wfbuild enable --without`, enable/original.ts): the running server is that build's
 * /usr/bin binary, installed from its .deb (stripped, with its -dbgsym .deb's debug file where
 * the runtime looks for the symbols of a stripped target), and the patch is the fix.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { withLock } from '../common/lock.ts';
import { enabledOriginal } from '../enable/original.ts';
import { cacheRoot as defaultCacheRoot } from '../paths.ts';
import { classifyPatch, type Report } from '../stages/index.ts';
import { fetchPackage, parsePackageSpec } from '../common/debian-source.ts';

export interface SeriesBundle {
  /** The bundle file (.wfp). */
  readonly bundle: string;
  /** The server binary the bundle targets, as its .deb installs it (stripped). */
  readonly binary: string;
  /** Where it is installed (/usr/bin/memcached). */
  readonly installedPath: string;
  /** Its debug file from the -dbgsym .deb, and where it goes (/usr/lib/debug/.build-id/xx/….debug). */
  readonly debugFile: string | null;
  readonly debugPath: string | null;
  readonly buildId: string | null;
  /** The enabled package's version (e.g. 1.6.18-1+wfpatch1~without.0007). */
  readonly version: string;
  readonly patch: string;
  readonly outcome: string;
}

/** The ELF build-id of a file (readelf -n), or null. */
export async function readBuildId(file: string): Promise<string | null> {
  const r = await execa('readelf', ['-n', file], { reject: false });
  return /Build ID:\s*([0-9a-f]+)/.exec(r.stdout)?.[1] ?? null;
}

/**
 * Builds (or reuses) the bundle for `patchName` (e.g. `0007-uninitialized-variables`) of `pkg`
 * (NAME=VERSION) and unpacks the enabled .debs it targets, under $WFPATCH_CACHE/live/.
 */
export async function bundleFromSeries(pkg: string, patchName: string, opts: { cacheRoot?: string; onOutput?: (line: string) => void } = {}): Promise<SeriesBundle> {
  const say = opts.onOutput ?? (() => {});
  const root = opts.cacheRoot ?? defaultCacheRoot;
  const spec = parsePackageSpec(pkg);
  if (spec.version === null) throw new UserError(`${pkg}: give NAME=VERSION`);
  const source = await fetchPackage(pkg, join(root, 'wfbuild', 'sources'));
  // Series entries are named as the series names them (openldap's have no extension); memcached's carry .patch.
  const asNamed = await exists(join(source.dir, 'debian/patches', patchName));
  const file = asNamed || patchName.endsWith('.patch') || patchName.endsWith('.diff') ? patchName : `${patchName}.patch`;
  const fix = join(source.dir, 'debian/patches', file);
  if (!(await exists(fix))) throw new UserError(`${pkg} has no debian/patches/${file}`);
  say(`the enabled build of ${pkg} without ${file} (wfbuild enable --without; cached after the first time)`);
  const { enabled } = await enabledOriginal(pkg, fix, { cacheRoot: root, onOutput: (l) => say(`enable: ${l}`) });
  const key = createHash('sha256').update(JSON.stringify([enabled.key, await readFile(fix, 'utf8')])).digest('hex').slice(0, 16);
  const dir = join(root, 'live', `${spec.name}_${enabled.version}-${file.replace(/\.(patch|diff)$/, '')}-${key}`);
  return withLock(`${dir}.lock`, async () => {
    const previous = await readFile(join(dir, 'bundle', 'report.json'), 'utf8').then((t) => JSON.parse(t) as Report, () => null);
    let report = previous;
    if (!(report?.outcome === 'kpatchable' && report.bundles[0]?.file && (await exists(join(dir, 'ready'))))) {
      say(`wfbuild ${file} --package ${pkg} --enabled`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      report = await classifyPatch({ patch: fix, package: pkg, enabled: true, out: join(dir, 'bundle'), bundles: true, renderer: 'silent', cache: root });
      const b = report.bundles[0];
      if (report.outcome !== 'kpatchable' || !b?.file) {
        throw new UserError(`${file} is ${report.outcome} against the enabled build: no bundle (${report.reasons.map((r) => r.what).join('; ')})`);
      }
      // The server as the .deb installs it, and its debug symbols (the runtime resolves a stripped target's locals through them).
      const unpacked = join(dir, 'root');
      for (const deb of enabled.debs) await execa('dpkg-deb', ['-x', deb, `${unpacked}.tmp`]);
      await rename(`${unpacked}.tmp`, unpacked);
      await execa('touch', [join(dir, 'ready')]);
    }
    const b = report!.bundles[0]!;
    const installedPath = b.installedPath ?? `/usr/bin/${b.binary}`;
    const binary = join(dir, 'root', installedPath);
    const id = await readBuildId(binary);
    if (id !== b.buildId) throw new UserError(`${binary} has build-id ${id ?? 'none'}, the bundle targets ${b.buildId}: the enabled build changed under the cached bundle; remove ${dir}`);
    const debugPath = id ? `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug` : null;
    const debugFile = debugPath && (await exists(join(dir, 'root', debugPath))) ? join(dir, 'root', debugPath) : null;
    return { bundle: join(dir, 'bundle', b.file!), binary, installedPath, debugFile, debugPath: debugFile ? debugPath : null, buildId: id, version: enabled.version, patch: file, outcome: report!.outcome };
  });
}
