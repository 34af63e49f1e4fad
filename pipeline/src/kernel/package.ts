import { copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { withLock } from '../common/lock.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { buildKernel, configuredTree, kernelCacheDir, kernelInputs, make, type BuildKernelOptions } from './build.ts';
import { requirePrerequisites, type Prerequisite } from './prerequisites.ts';

/** What `make bindeb-pkg` needs besides the kernel build's own prerequisites. */
export const packagePrerequisites: readonly Prerequisite[] = [
  { what: 'dpkg-buildpackage', path: 'dpkg-buildpackage', debianPackage: 'dpkg-dev' },
  { what: 'fakeroot', path: 'fakeroot', debianPackage: 'fakeroot' },
  { what: 'rsync', path: 'rsync', debianPackage: 'rsync' },
  { what: 'kmod', path: 'kmod', debianPackage: 'kmod' },
  { what: 'cpio', path: 'cpio', debianPackage: 'cpio' },
];

export interface KernelPackage {
  /** linux-image-<release>_<version>_amd64.deb */
  deb: string;
  /** Every .deb bindeb-pkg made (image, headers, libc-dev). */
  debs: string[];
  packageName: string;
  packageVersion: string;
  cached: boolean;
}

/** Fields of a .deb's control file. */
export async function debFields(deb: string): Promise<Record<string, string>> {
  const { stdout } = await execa('dpkg-deb', ['-f', deb]);
  const fields: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (m) fields[m[1]] = m[2];
  }
  return fields;
}

async function imageDeb(dir: string): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const name = names.find((n) => /^linux-image-.*\.deb$/.test(n) && !n.includes('-dbg'));
  return name === undefined ? undefined : join(dir, name);
}

async function describe(dir: string, cached: boolean): Promise<KernelPackage> {
  const deb = await imageDeb(dir);
  if (deb === undefined) throw new UserError(`no linux-image .deb in ${dir}`, ExitCode.buildFailed);
  const fields = await debFields(deb);
  const debs = (await readdir(dir)).filter((n) => n.endsWith('.deb')).map((n) => join(dir, n));
  return { deb, debs, packageName: fields.Package ?? '', packageVersion: fields.Version ?? '', cached };
}

/**
 * The kernel of `opts.variant` as Debian packages, made by the kernel's own `make
 * bindeb-pkg` in the variant's build folder (so nothing is compiled twice), kept next to
 * the bzImage in the variant's cache folder. The package version is Debian's
 * linux-source version plus "+wfpatch1" (e.g. 6.1.192-3+wfpatch1).
 */
export async function packageKernel(opts: BuildKernelOptions): Promise<KernelPackage> {
  await requirePrerequisites(packagePrerequisites);
  const build = await buildKernel(opts);
  const outDir = dirname(build.bzImage);
  if ((await imageDeb(outDir)) !== undefined) return describe(outDir, true);
  const inputs = await kernelInputs(opts);
  const { log, jobs, buildDir } = inputs;
  return withLock(
    join(kernelCacheDir, 'lock'),
    async () => {
      if ((await imageDeb(outDir)) !== undefined) return describe(outDir, true);
      const tree = await configuredTree(inputs);
      // bindeb-pkg writes its .debs next to the build folder; start from none.
      const parent = dirname(buildDir);
      for (const n of await readdir(parent)) if (n.endsWith('.deb') || n.endsWith('.buildinfo') || n.endsWith('.changes')) await rm(join(parent, n));
      log(`packaging ${build.version} (make bindeb-pkg -j${jobs})`);
      await make(tree, buildDir, ['bindeb-pkg', `KDEB_PKGVERSION=${inputs.source.packageVersion}+wfpatch1`, 'KDEB_COMPRESS=xz'], jobs, log, join(buildDir, 'package.log'));
      const debs = (await readdir(parent)).filter((n) => n.endsWith('.deb'));
      if (!debs.some((n) => n.startsWith('linux-image-'))) throw new UserError(`make bindeb-pkg made no linux-image .deb (see ${join(buildDir, 'package.log')})`, ExitCode.buildFailed);
      const tmp = join(outDir, `.debs-${process.pid}`);
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      for (const n of debs) await copyFile(join(parent, n), join(tmp, n));
      // The image last: its presence is what marks the set complete.
      for (const n of debs.filter((d) => !d.startsWith('linux-image-'))) await rename(join(tmp, n), join(outDir, n));
      for (const n of debs.filter((d) => d.startsWith('linux-image-'))) await rename(join(tmp, n), join(outDir, n));
      await rm(tmp, { recursive: true, force: true });
      await writeFile(join(outDir, 'package.txt'), `${debs.join('\n')}\n`);
      return describe(outDir, false);
    },
    (owner) => log(`waiting for the kernel build lock (held by pid ${owner})`),
  );
}
