/**
 * Debian's source registry through apt: which versions the index lists (apt-cache madison,
 * showsrc) and which of their files can actually be fetched (apt-get source -d). Downloads
 * go to a cache outside the repository; nothing fetched is ever committed.
 */
import { createReadStream } from 'node:fs';
import { mkdir, stat, readdir, readFile, rename, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot } from '../paths.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { compareDebianVersions, versionWithoutEpoch } from './debversion.ts';
import { tail } from '../common/text.ts';

export const sourcesCache: string = join(cacheRoot, 'sources');

export interface SourceFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

export interface IndexedVersion {
  readonly version: string;
  /** Suites whose Sources index lists this version, e.g. bookworm, bookworm-security. */
  readonly suites: string[];
  readonly format: string;
  readonly files: SourceFile[];
}

/** Parses `apt-cache madison` lines of the form ' pkg | version | URI suite/component Sources'. */
export function parseMadison(text: string, pkg: string): Map<string, string[]> {
  const suites = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length !== 3 || cols[0] !== pkg || !cols[2]!.endsWith(' Sources')) continue;
    const suite = cols[2]!.split(/\s+/)[1]?.split('/')[0];
    if (!suite) continue;
    const list = suites.get(cols[1]!) ?? [];
    if (!list.includes(suite)) list.push(suite);
    suites.set(cols[1]!, list);
  }
  return suites;
}

/** Parses `apt-cache showsrc` stanzas: version, format and Checksums-Sha256 files. */
export function parseShowsrc(text: string, pkg: string): Map<string, { format: string; files: SourceFile[] }> {
  const out = new Map<string, { format: string; files: SourceFile[] }>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}: *(.*)$`, 'm').exec(stanza)?.[1]?.trim();
    if (field('Package') !== pkg) continue;
    const version = field('Version');
    if (!version) continue;
    const files: SourceFile[] = [];
    const block = /^Checksums-Sha256:\s*\n((?:[ \t].*\n?)*)/m.exec(stanza)?.[1] ?? '';
    for (const line of block.split('\n')) {
      const m = /^\s+([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(line);
      if (m) files.push({ sha256: m[1]!, size: Number(m[2]), name: m[3]! });
    }
    out.set(version, { format: field('Format') ?? '', files });
  }
  return out;
}

/** Every version of a source package the apt index lists, oldest first. */
export async function indexedVersions(pkg: string): Promise<IndexedVersion[]> {
  const madison = await execa('apt-cache', ['madison', pkg], { reject: false });
  const showsrc = await execa('apt-cache', ['showsrc', '--only-source', pkg], { reject: false });
  const suites = parseMadison(madison.stdout, pkg);
  const stanzas = parseShowsrc(showsrc.stdout, pkg);
  if (stanzas.size === 0) {
    throw new UserError(
      `apt knows no source package '${pkg}': are deb-src entries set up and 'apt-get update' run? (wfbuild setup does both)`,
      ExitCode.missingPrerequisite,
    );
  }
  return [...stanzas.entries()]
    .map(([version, s]) => ({ version, suites: suites.get(version) ?? [], format: s.format, files: s.files }))
    .sort((a, b) => compareDebianVersions(a.version, b.version));
}

export interface FetchResult {
  readonly version: string;
  /** Files present in the cache with the index's sha256. */
  readonly fetched: string[];
  /** Files the registry did not deliver, with apt's reason (e.g. '404  Not Found'). */
  readonly missing: { file: string; reason: string }[];
}

async function fileSha256(path: string): Promise<string | undefined> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Parses apt's 'E: Failed to fetch URL  REASON' lines into file name → reason. */
export function parseFetchFailures(output: string): Map<string, string> {
  const failures = new Map<string, string>();
  for (const line of output.split('\n')) {
    const m = /^E: Failed to fetch ([a-z]+:\/\/\S+)\s+(.*?)(\s*\[IP:.*\])?$/.exec(line.trim());
    if (!m) continue;
    const file = decodeURIComponent(m[1]!.slice(m[1]!.lastIndexOf('/') + 1));
    failures.set(file, m[2]!.trim() || 'failed');
  }
  return failures;
}

/**
 * Downloads one version's source files into the cache (apt-get source -d, which skips files
 * it already has) and reports which the registry could not deliver. Never throws for a
 * missing file: an index entry whose files 404 is recorded as unavailable.
 */
export async function fetchVersion(pkg: string, indexed: IndexedVersion): Promise<FetchResult> {
  const dir = join(sourcesCache, pkg);
  await mkdir(dir, { recursive: true });
  const have = async () => {
    const ok: string[] = [];
    for (const file of indexed.files) {
      if ((await fileSha256(join(dir, file.name))) === file.sha256) ok.push(file.name);
    }
    return ok;
  };
  let fetched = await have();
  let failures = new Map<string, string>();
  if (fetched.length < indexed.files.length) {
    const result = await execa('apt-get', ['source', '--download-only', '-q', `${pkg}=${indexed.version}`], {
      cwd: dir,
      reject: false,
      all: true,
      env: { DEBIAN_FRONTEND: 'noninteractive' },
    });
    failures = parseFetchFailures(result.all ?? '');
    fetched = await have();
    if (result.exitCode !== 0 && failures.size === 0 && fetched.length < indexed.files.length) {
      throw new UserError(`apt-get source -d ${pkg}=${indexed.version} failed:\n${tail((result.all ?? '').trim(), 8)}`, ExitCode.missingPrerequisite);
    }
  }
  const missing = indexed.files
    .filter((f) => !fetched.includes(f.name))
    .map((f) => ({ file: f.name, reason: failures.get(f.name) ?? 'not delivered (checksum mismatch or download error)' }));
  return { version: indexed.version, fetched, missing };
}

/** The debian.tar.* of a version, if it is a 3.0 (quilt) source. */
export function debianTarball(pkg: string, indexed: IndexedVersion): SourceFile | undefined {
  const prefix = `${pkg}_${versionWithoutEpoch(indexed.version)}.debian.tar.`;
  return indexed.files.find((f) => f.name.startsWith(prefix));
}

/**
 * Unpacks a version's debian/ directory (from its debian.tar.*) into the cache and returns the
 * directory that holds 'debian/'. Unpacked to a temporary name first so a crash never leaves a
 * half-unpacked tree that later runs would trust.
 */
export async function unpackDebianDir(pkg: string, indexed: IndexedVersion): Promise<string> {
  const tarball = debianTarball(pkg, indexed);
  if (!tarball) {
    throw new UserError(`${pkg} ${indexed.version}: no debian.tar.* (format '${indexed.format}'); only 3.0 (quilt) sources are supported`, ExitCode.usage);
  }
  const target = join(sourcesCache, pkg, 'debian', `${versionWithoutEpoch(indexed.version)}-${tarball.sha256.slice(0, 12)}`);
  try {
    await readdir(join(target, 'debian'));
    return target;
  } catch {
    // not unpacked yet
  }
  const temporary = `${target}.tmp-${process.pid}`;
  await rm(temporary, { recursive: true, force: true });
  await mkdir(temporary, { recursive: true });
  const result = await execa('tar', ['-xf', join(sourcesCache, pkg, tarball.name), '-C', temporary], { reject: false, all: true });
  if (result.exitCode !== 0) {
    await rm(temporary, { recursive: true, force: true });
    throw new UserError(`unpacking ${tarball.name} failed: ${result.all}`, ExitCode.buildFailed);
  }
  await rename(temporary, target);
  return target;
}

export async function readIfExists(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}
