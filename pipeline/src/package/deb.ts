/**
 * Writes the hot-fix .deb: the package tree in a scratch folder, built with dpkg-deb
 * (--root-owner-group), then renamed into the output folder — so a failure leaves nothing there.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { runtimeDir } from '../enable/libwfpatch.ts';
import { changelogEntry, controlFile, copyrightFile, lintianOverrides } from './control.ts';
import type { PackagePlan } from './plan.ts';
import { postinst, postrm, prerm } from './scripts.ts';

/** wfpatch-ctl, built (make is a no-op when it is current) and stripped for the package. */
async function controlClient(into: string): Promise<void> {
  const made = await execa('make', ['-s', '-C', runtimeDir, 'build/wfpatch-ctl'], { reject: false, all: true });
  if (made.exitCode !== 0) throw new UserError(`cannot build wfpatch-ctl: ${made.all}`, ExitCode.buildFailed);
  await mkdir(dirname(into), { recursive: true });
  await execa('strip', ['--remove-section=.comment', '--remove-section=.note', '-o', into, join(runtimeDir, 'build', 'wfpatch-ctl')]);
  await chmod(into, 0o755);
}

async function put(root: string, path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const full = join(root, path);
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, data);
  await chmod(full, mode);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out.sort();
}

/** Installed-Size: KiB, each file rounded up, as dpkg-gencontrol counts. */
async function installedSize(files: readonly string[]): Promise<number> {
  let kib = 0;
  for (const f of files) kib += Math.ceil((await stat(f)).size / 1024);
  return Math.max(kib, 1);
}

export function debFileName(plan: PackagePlan): string {
  const version = plan.version.replace(/^\d+:/, '');
  return `${plan.name}_${version}_${plan.architecture}.deb`;
}

export async function writeDeb(plan: PackagePlan, outDir: string, date: string): Promise<string> {
  const scratch = await mkdtemp(join(tmpdir(), 'wfbuild-package-'));
  try {
    const root = join(scratch, 'root');
    for (const f of plan.fixes) {
      await put(root, f.wfpPath, f.fix.bundleBytes);
      await put(root, f.jsonPath, JSON.stringify(f.metadata, null, 2) + '\n');
    }
    await controlClient(join(root, plan.ctlPath));
    const doc = join('/usr/share/doc', plan.name);
    await put(root, join(doc, 'copyright'), copyrightFile(plan));
    await put(root, join(doc, 'changelog.Debian.gz'), gzipSync(changelogEntry(plan, date), { level: 9 }));
    await put(root, join('/usr/share/lintian/overrides', plan.name), lintianOverrides(plan));
    const payload = await filesUnder(root);
    const md5 = await Promise.all(
      payload.map(async (p) => `${createHash('md5').update(await readFile(p)).digest('hex')}  ${relative(root, p)}`),
    );
    await put(root, 'DEBIAN/control', controlFile(plan, await installedSize(payload)));
    await put(root, 'DEBIAN/md5sums', md5.join('\n') + '\n');
    await put(root, 'DEBIAN/postinst', postinst(plan), 0o755);
    await put(root, 'DEBIAN/prerm', prerm(plan), 0o755);
    await put(root, 'DEBIAN/postrm', postrm(plan), 0o755);
    // Directories 0755 whatever the umask.
    await execa('find', [root, '-type', 'd', '-exec', 'chmod', '0755', '{}', '+']);
    const built = join(scratch, debFileName(plan));
    const r = await execa('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, built], { reject: false, all: true });
    if (r.exitCode !== 0) throw new UserError(`dpkg-deb --build failed: ${r.all}`, ExitCode.internal);
    await mkdir(outDir, { recursive: true });
    const final = join(outDir, debFileName(plan));
    // Same file system as outDir first, then an atomic rename.
    const staged = join(outDir, `.${debFileName(plan)}.tmp-${process.pid}`);
    await copyFile(built, staged);
    await rename(staged, final);
    return final;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** libc6 (>= the newest GLIBC_ symbol version wfpatch-ctl uses). */
export async function libcDependency(): Promise<string> {
  const made = await execa('make', ['-s', '-C', runtimeDir, 'build/wfpatch-ctl'], { reject: false, all: true });
  if (made.exitCode !== 0) throw new UserError(`cannot build wfpatch-ctl: ${made.all}`, ExitCode.buildFailed);
  const dyn = (await execa('objdump', ['-T', join(runtimeDir, 'build', 'wfpatch-ctl')])).stdout;
  const versions = [...dyn.matchAll(/GLIBC_(\d+(?:\.\d+)*)/g)].map((m) => m[1]);
  const newest = versions.sort((a, b) => {
    const pa = a.split('.').map(Number);
    const pb = b.split('.').map(Number);
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
    return 0;
  }).at(-1);
  return newest ? `libc6 (>= ${newest})` : 'libc6';
}
