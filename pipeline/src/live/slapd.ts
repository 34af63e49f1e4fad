/**
 * `wfbuild live slapd`: the enabled slapd (openldap 2.5.13+dfsg-5+wfpatch1, back-mdb) under
 * load in the guest, patched cyclically with bundles of units of Debian's own series, local then
 * global mode from one boot; judged by the same analysis as memcached (analyze.ts), whose input
 * files ldapload writes in memload's format.
 *
 * What runs in the guest: the slapd binary and back-mdb from the enabled build (`wfbuild
 * enable`); libldap from the enabled build *without* getaddrinfo-is-threadsafe and libslapi from
 * the enabled build *without* slapi-errorlog-file — each the original build of its unit's bundle
 * (bundle.ts), so every bundle finds its target's build-id. The other code in those libraries is
 * the same as the enabled build's. They travel as one tarball: the host's ldd cannot resolve
 * slapd's libslapi (it is not installed here), so their host dependencies are found with ldd
 * under LD_LIBRARY_PATH and passed as ordinary files.
 */
import { copyFile, mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import type { EnableResult } from '../enable/index.ts';
import type { Report } from '../stages/index.ts';
import { parseLdd } from '../vm/libs.ts';
import { bundleFromSeries } from './bundle.ts';

/** The Debian package slapd is enabled at (Debian 12's current one). */
export const slapdPackage = 'openldap=2.5.13+dfsg-5';

/** The series units `wfbuild live slapd` patches by default: one in libldap, one in libslapi. */
export const defaultSlapdUnits: readonly string[] = ['getaddrinfo-is-threadsafe', 'slapi-errorlog-file'];

export interface SlapdBundle {
  readonly unit: string;
  readonly bundle: string;
  /** The shared library it targets (the unit's original build), by its soname. */
  readonly soname: string;
  readonly target: string;
  readonly buildId: string | null;
}

/** The soname-style name of a library file (libldap-2.5.so.0.1.8 → libldap-2.5.so.0). */
export function sonameOf(file: string): string {
  const m = /^(.*\.so\.\d+)(\.\d+)*$/.exec(basename(file));
  return m ? m[1]! : basename(file);
}

/**
 * The bundle of each unit against the enabled build without it. A unit of slapd's series may
 * touch several binaries (a library and a program linking the same object); the run patches
 * the shared library slapd loads, so the bundle for a `*.so*` is taken.
 */
export async function slapdBundles(units: readonly string[], say: (line: string) => void): Promise<SlapdBundle[]> {
  const out: SlapdBundle[] = [];
  for (const unit of units) {
    const built = await bundleFromSeries(slapdPackage, unit, { onOutput: say });
    const report = JSON.parse(await readFile(join(dirname(built.bundle), 'report.json'), 'utf8')) as Report;
    const lib = report.bundles.find((b) => b.file && /\.so(\.|$)/.test(basename(b.binary)));
    if (!lib?.file) throw new UserError(`${unit}: no bundle for a shared library among ${report.bundles.map((b) => b.binary).join(', ') || 'none'}`);
    out.push({ unit, bundle: join(dirname(built.bundle), lib.file), soname: sonameOf(lib.binary), target: lib.originalPath, buildId: lib.buildId });
  }
  return out;
}

/** A file of the enabled build (libtool's real binary in .libs/ when there is one). */
async function built(buildDir: string, rel: string): Promise<string> {
  const libs = join(buildDir, dirname(rel), '.libs', basename(rel));
  for (const candidate of [libs, join(buildDir, rel)]) {
    if (await exists(candidate)) return realpath(candidate);
  }
  throw new UserError(`the enabled build has no ${rel} (looked in ${buildDir})`, ExitCode.internal);
}

export interface SlapdPayload {
  /** The tarball the guest unpacks into /opt/wfslapd. */
  readonly tarball: string;
  /** Host libraries slapd and back-mdb need besides their own (each placed at its host path). */
  readonly hostLibs: readonly string[];
  /** OpenLDAP's slapd-mtread from the enabled build (it runs with the host's libldap). */
  readonly mtread: string;
  /** What went into the tarball, by guest path, and where each came from. */
  readonly contents: Readonly<Record<string, string>>;
}

/**
 * Stages slapd, back-mdb, core.schema, the three libraries, ldapmodify / ldapsearch and the
 * do-nothing SLAPI plugin (`plugin`, built on the host) into `work/opt`, packs them, and lists
 * their host dependencies.
 */
export async function stageSlapd(enabled: EnableResult, bundles: readonly SlapdBundle[], work: string, plugin: string): Promise<SlapdPayload> {
  const b = join(enabled.tree, 'debian', 'build');
  const staging = join(work, 'opt');
  for (const d of ['bin', 'lib', 'modules', 'schema']) await mkdir(join(staging, d), { recursive: true });
  const contents: Record<string, string> = {
    slapd: await built(b, 'servers/slapd/slapd'),
    'modules/back_mdb.so': await built(b, 'servers/slapd/back-mdb/back_mdb.so'),
    'schema/core.schema': await realpath(join(enabled.tree, 'servers/slapd/schema/core.schema')),
    'lib/liblber-2.5.so.0': await built(b, 'libraries/liblber/liblber-2.5.so.0'),
    'lib/libldap-2.5.so.0': await built(b, 'libraries/libldap/libldap-2.5.so.0'),
    'lib/libslapi-2.5.so.0': await built(b, 'servers/slapd/slapi/libslapi-2.5.so.0'),
    // OpenLDAP's own clients, to configure a SLAPI plugin through cn=config and read it back.
    'bin/ldapmodify': await built(b, 'clients/tools/ldapmodify'),
    'bin/ldapsearch': await built(b, 'clients/tools/ldapsearch'),
    'modules/wf-slapi-plugin.so': plugin,
  };
  for (const bundle of bundles) contents[`lib/${bundle.soname}`] = bundle.target;
  for (const [rel, host] of Object.entries(contents)) await copyFile(host, join(staging, rel));
  const tarball = join(work, 'wfslapd.tar');
  await execa('tar', ['-C', staging, '-cf', tarball, '.']);
  const hostLibs = new Set<string>();
  for (const file of [join(staging, 'slapd'), join(staging, 'modules/back_mdb.so'), join(staging, 'bin/ldapmodify'), join(staging, 'bin/ldapsearch')]) {
    const r = await execa('ldd', [file], { env: { LC_ALL: 'C', LD_LIBRARY_PATH: join(staging, 'lib') }, reject: false, all: true });
    if (r.exitCode !== 0) throw new UserError(`ldd ${file}: ${r.all ?? ''}`, ExitCode.internal);
    for (const lib of parseLdd(file, r.all ?? '')) if (!lib.startsWith(staging)) hostLibs.add(lib);
  }
  const mtread = await built(b, 'tests/progs/slapd-mtread');
  await writeFile(join(work, 'wfslapd-contents.json'), `${JSON.stringify(contents, null, 2)}\n`);
  return { tarball, hostLibs: [...hostLibs].sort(), mtread, contents };
}
