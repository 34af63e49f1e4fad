/**
 * `wfbuild package`: one cumulative hot-fix .deb from wfbuild outputs for one target build.
 * Everything is read and checked before anything is written (outputs.ts), then the .deb is
 * built in a scratch folder and renamed into place (deb.ts).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';
import { repoRoot } from '../paths.ts';
import { libcDependency, writeDeb } from './deb.ts';
import { commonTarget, readLiveFix, readNotLiveFix } from './outputs.ts';
import { parseTargetPackage, planPackage, type PackagePlan, type TargetPackage } from './plan.ts';

export interface PackageOptions {
  readonly outputs: readonly string[];
  readonly notLive: readonly string[];
  readonly outDir: string;
  /** BINARY=VERSION; default: the reports' package (name and version). */
  readonly depends?: string;
  /** The release counter N of …+wfpatchK.N; default the number of fixes. */
  readonly release?: number;
  readonly maintainer?: string;
  /** RFC 2822 date for the changelog; default now. */
  readonly date?: string;
  /**
   * Depend on <binary>-dbgsym of the exact version: the runtime resolves the target's local and
   * non-exported symbols through its .symtab, which a stripped Debian binary has only in the
   * -dbgsym package's /usr/lib/debug/.build-id file. Default: when the reports name a Debian
   * package (dpkg-buildpackage strips the binary into -dbgsym); not for --source builds.
   */
  readonly dbgsym?: boolean;
}

export interface PackageResult {
  readonly deb: string;
  readonly plan: PackagePlan;
}

export async function wfbuildVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export const defaultMaintainer = 'wfpatch hot-fixes <hotfix@wfpatch.invalid>';

export async function buildHotfixPackage(opts: PackageOptions): Promise<PackageResult> {
  const fixes = [];
  for (const dir of opts.outputs) fixes.push(await readLiveFix(dir));
  const notLive = [];
  for (const dir of opts.notLive) notLive.push(await readNotLiveFix(dir));
  const target = commonTarget(fixes);
  let pkg: TargetPackage;
  const fromDebianPackage = fixes[0].report.package !== null;
  if (opts.depends !== undefined) pkg = parseTargetPackage(opts.depends);
  else {
    const p = fixes[0].report.package;
    if (p === null) throw new UserError(`${fixes[0].outDir} was built from --source, so it names no Debian package: give --depends BINARY=VERSION`);
    for (const f of fixes) {
      if (f.report.package?.name !== p.name || f.report.package?.version !== p.version) {
        throw new UserError(`outputs for two different targets: ${fixes[0].outDir} is for ${p.name} ${p.version}, ${f.outDir} for ${f.report.package?.name ?? '--source'} ${f.report.package?.version ?? ''}`);
      }
    }
    pkg = parseTargetPackage(`${p.name}=${p.version}`);
  }
  const architecture = (await execa('dpkg', ['--print-architecture'])).stdout.trim();
  const plan = planPackage({
    fixes,
    notLive,
    target: pkg,
    buildId: target.buildId,
    targetPath: target.path,
    release: opts.release ?? fixes.length + notLive.length,
    maintainer: opts.maintainer ?? defaultMaintainer,
    architecture,
    wfbuildVersion: await wfbuildVersion(),
    extraDepends: [...((opts.dbgsym ?? fromDebianPackage) ? [`${pkg.name}-dbgsym (= ${pkg.version})`] : []), await libcDependency()],
  });
  const date = opts.date ?? (await execa('date', ['-R'])).stdout.trim();
  const deb = await writeDeb(plan, opts.outDir, date);
  return { deb, plan };
}
