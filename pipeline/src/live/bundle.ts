/**
 * A live-patch bundle from one patch of a Debian package's own series, built by wfbuild against
 * an *enabled* build: Debian's source with that patch reverted and the enablement patch applied
 * (the state of the server before the fix), built through wfbuild's compiler wrapper with
 * libwfpatch linked exactly as `wfbuild enable` links it; then the patch as the fix.
 *
 * Not the enable cache entry itself: wfbuild has no `--enabled` option yet (the original build
 * stage builds its own tree and keys its cache on it), so this goes through `--source DIR
 * --build-cmd` with the libwfpatch environment in the command. The bundle's target is therefore
 * wfbuild's original build of that tree (`originalPath`), and that binary is the one to run.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';
import { copyTree, exists } from '../common/fs.ts';
import { withLock } from '../common/lock.ts';
import { findEnablement } from '../enable/apps.ts';
import { libwfpatchBuildEnv, snapshotLibwfpatch } from '../enable/libwfpatch.ts';
import { cacheRoot as defaultCacheRoot } from '../paths.ts';
import { classifyPatch, type Report } from '../stages/index.ts';
import { fetchPackage, parsePackageSpec } from '../stages/source.ts';
import { shellQuote } from '../vm/init-script.ts';

export interface SeriesBundle {
  /** The bundle file (.wfp). */
  readonly bundle: string;
  /** The enabled binary the bundle targets (run this one). */
  readonly binary: string;
  readonly buildId: string | null;
  readonly patch: string;
  readonly outcome: string;
}

/**
 * Builds (or reuses) the bundle for `patchName` (e.g. `0007-uninitialized-variables`) of
 * `pkg` (NAME=VERSION). The prepared tree stays in $WFPATCH_CACHE/live/, untouched after it is
 * made, so wfbuild's original-build cache hits on the next call.
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
  const enablement = await findEnablement(spec.name);
  const lib = await snapshotLibwfpatch(join(root, 'enable'), undefined);
  const env = libwfpatchBuildEnv(lib);
  const key = createHash('sha256').update(JSON.stringify([pkg, file, enablement.sha256, lib.sha256])).digest('hex').slice(0, 16);
  const dir = join(root, 'live', `${spec.name}_${spec.version}-minus-${file.replace(/\.(patch|diff)$/, '')}-${key}`);
  const tree = join(dir, 'tree');
  const patchCopy = join(dir, file);

  await withLock(`${dir}.lock`, async () => {
    if (await exists(join(dir, 'ready'))) return;
    say(`preparing ${spec.name} ${spec.version} without ${file}, with ${enablement.name}`);
    await rm(dir, { recursive: true, force: true });
    const temp = `${dir}.tmp-${process.pid}`;
    await rm(temp, { recursive: true, force: true });
    await mkdir(temp, { recursive: true });
    await copyTree(source.dir, join(temp, 'tree'));
    const patch = async (args: string[], what: string, input: string): Promise<void> => {
      const r = await execa('patch', ['-p1', '--batch', '--silent', ...args], { cwd: join(temp, 'tree'), inputFile: input, reject: false });
      if (r.exitCode !== 0) throw new UserError(`${what} does not apply to ${pkg}: ${(r.stdout + r.stderr).trim()}`);
    };
    await patch(['-R'], `reverting ${file}`, fix);
    await patch([], enablement.name, enablement.patch);
    await writeFile(join(temp, file), await readFile(fix));
    await writeFile(join(temp, 'ready'), `${new Date().toISOString()}\n`);
    // Published at its final path before any build, so wfbuild's cache key (path + listing) stays the same.
    await rename(temp, dir);
  });

  const buildCmd = `${Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')} debian/rules build`;
  const out = join(dir, 'bundle');
  // Made before (the prepared tree never changes): reuse while its target binary is still cached.
  const previous = await readFile(join(out, 'report.json'), 'utf8').then((t) => JSON.parse(t) as Report, () => null);
  const pb = previous?.bundles[0];
  if (previous?.outcome === 'kpatchable' && pb?.file && (await exists(pb.originalPath)) && (await exists(join(out, pb.file)))) {
    return { bundle: join(out, pb.file), binary: pb.originalPath, buildId: pb.buildId, patch: file, outcome: previous.outcome };
  }
  say(`wfbuild ${file} --source ${tree} (the enabled build; the original is built once, minutes)`);
  const report = await classifyPatch({ patch: patchCopy, source: tree, buildCmd, out, bundles: true, renderer: 'silent', cache: root });
  const b = report.bundles[0];
  if (report.outcome !== 'kpatchable' || !b || !b.file) {
    throw new UserError(`${file} is ${report.outcome} against the enabled build: no bundle (${report.reasons.map((r) => r.what).join('; ')})`);
  }
  return { bundle: join(out, b.file), binary: b.originalPath, buildId: b.buildId, patch: file, outcome: report.outcome };
}
