/**
 * What one hot-fix package is, decided from its fixes and the target package (pure): its name,
 * version, the installed file names, each fix's metadata JSON.
 */
import { posix } from 'node:path';
import { UserError } from '../cli/errors.ts';
import type { LiveFix, NotLiveFix } from './outputs.ts';

export interface TargetPackage {
  /** The binary package the fixes patch, e.g. memcached. */
  readonly name: string;
  /** Its exact version, e.g. 1.6.18-1+deb12u1+wfpatch1. */
  readonly version: string;
}

export interface PlannedFix {
  readonly fix: LiveFix;
  /** 1-based position: the order the fixes are applied in. */
  readonly index: number;
  /** <NNNN>-<name>, the stem of the .wfp and .json. */
  readonly stem: string;
  readonly wfpPath: string;
  readonly jsonPath: string;
  readonly metadata: FixMetadata;
}

export interface FixMetadata {
  readonly format: 1;
  readonly package: string;
  readonly packageVersion: string;
  readonly index: number;
  readonly name: string;
  readonly file: string;
  readonly patch: { readonly name: string; readonly sha256: string };
  readonly cves: readonly string[];
  readonly description: string | null;
  readonly longDescription: string;
  readonly origin: string | null;
  readonly bugs: readonly string[];
  readonly target: { readonly path: string; readonly buildId: string; readonly package: string; readonly version: string };
  readonly bundle: { readonly sha256: string; readonly objects: readonly string[] };
  readonly wfbuild: { readonly version: string };
}

export interface PackagePlan {
  readonly name: string;
  readonly version: string;
  readonly target: TargetPackage;
  readonly buildId: string;
  readonly targetPath: string;
  readonly dir: string;
  readonly fixes: readonly PlannedFix[];
  readonly notLive: readonly NotLiveFix[];
  readonly maintainer: string;
  readonly architecture: string;
  /** Further Depends (e.g. the libc the control client needs). */
  readonly extraDepends: readonly string[];
  /** /usr/libexec/<name>/wfpatch-ctl, the control client the maintainer scripts use. */
  readonly ctlPath: string;
}

const debVersion = /^(?:\d+:)?[0-9][A-Za-z0-9.+~-]*$/;
const debName = /^[a-z0-9][a-z0-9+.-]+$/;

export function parseTargetPackage(spec: string): TargetPackage {
  const eq = spec.indexOf('=');
  const name = spec.slice(0, eq);
  const version = spec.slice(eq + 1);
  if (eq <= 0 || !debName.test(name) || !debVersion.test(version)) {
    throw new UserError(`--depends '${spec}': expected BINARY-PACKAGE=EXACT-VERSION, e.g. memcached=1.6.18-1+deb12u1+wfpatch1`);
  }
  return { name, version };
}

/**
 * …+wfpatchK.N: the release counter N grows with each cumulative release; a target version
 * without +wfpatchK (not an enabled build) gets +wfpatch1.N.
 */
export function packageVersion(target: TargetPackage, release: number): string {
  return /\+wfpatch\d+$/.test(target.version) ? `${target.version}.${release}` : `${target.version}+wfpatch1.${release}`;
}

/**
 * A file-name-safe stem (letters, digits, '.', '-', '_'), without the patch's own series number
 * (0007-foo → foo): the package numbers its fixes itself.
 */
function slug(name: string): string {
  return name.replace(/^\d{4}-/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'fix';
}

export function planPackage(opts: {
  fixes: readonly LiveFix[];
  notLive: readonly NotLiveFix[];
  target: TargetPackage;
  buildId: string;
  targetPath: string;
  release: number;
  maintainer: string;
  architecture: string;
  wfbuildVersion: string;
  extraDepends?: readonly string[];
}): PackagePlan {
  const name = `${opts.target.name}-livepatch`;
  const version = packageVersion(opts.target, opts.release);
  const dir = posix.join('/usr/lib/wfpatch', opts.buildId);
  const fixes = opts.fixes.map((fix, i): PlannedFix => {
    const index = i + 1;
    const stem = `${String(index).padStart(4, '0')}-${slug(fix.name)}`;
    const r = fix.report;
    const metadata: FixMetadata = {
      format: 1,
      package: name,
      packageVersion: version,
      index,
      name: fix.name,
      file: `${stem}.wfp`,
      patch: { name: r.patch.name, sha256: r.patch.sha256 },
      cves: r.cves,
      description: r.patch.description,
      longDescription: r.patch.longDescription,
      origin: r.patch.origin,
      bugs: r.patch.bugs,
      target: { path: opts.targetPath, buildId: opts.buildId, package: opts.target.name, version: opts.target.version },
      bundle: { sha256: fix.bundle.sha256 ?? '', objects: fix.bundle.objects },
      wfbuild: { version: opts.wfbuildVersion },
    };
    return { fix, index, stem, wfpPath: posix.join(dir, `${stem}.wfp`), jsonPath: posix.join(dir, `${stem}.json`), metadata };
  });
  return {
    name,
    version,
    target: opts.target,
    buildId: opts.buildId,
    targetPath: opts.targetPath,
    dir,
    fixes,
    notLive: opts.notLive,
    maintainer: opts.maintainer,
    architecture: opts.architecture,
    extraDepends: opts.extraDepends ?? [],
    ctlPath: posix.join('/usr/libexec', name, 'wfpatch-ctl'),
  };
}
