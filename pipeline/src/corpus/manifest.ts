/**
 * corpus/bookworm/<package>.json: what the corpus measures for one package. Generated from
 * the registry by `wfbuild corpus manifest`; read (and checked) by the driver.
 */
import { writeFile, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../paths.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { parseSeries } from './series.ts';
import { parseChangelog, changelogUpdates, type UpdateKind } from './changelog.ts';
import { buildUnits, droppedPatches, type CorpusUnit, type PatchFile, type UpdateBaseline } from './units.ts';
import { upstreamVersion } from './debversion.ts';
import { debianTarball, fetchVersion, indexedVersions, unpackDebianDir, readIfExists, type IndexedVersion } from './registry.ts';
import { compareCve } from './cve.ts';
import { servicesFor, type Services } from './services.ts';

/** The paper's six servers. */
export const paperPackages = ['openldap', 'apache2', 'memcached', 'samba', 'mariadb', 'nodejs'] as const;
/** More multi-threaded or event-driven network servers Debian 12 updated with patches (issue 14: wider). */
export const widerPackages = ['bind9', 'unbound', 'squid', 'nginx', 'dovecot', 'mosquitto', 'exim4', 'openssh', 'cups', 'strongswan', 'haproxy', 'frr'] as const;
/** Every package of the corpus, in table order. */
export const corpusPackages = [...paperPackages, ...widerPackages] as const;
/** corpus/bookworm; WFBUILD_CORPUS_MANIFESTS points elsewhere (tests with broken manifests). */
export const manifestDir: string = process.env.WFBUILD_CORPUS_MANIFESTS ?? join(repoRoot, 'corpus', 'bookworm');

export interface VersionRecord {
  readonly version: string;
  readonly suites: string[];
  /** complete: every file fetched; partial: some 404 (listed); unavailable: none usable. */
  readonly status: 'complete' | 'partial' | 'unavailable';
  /** Whether its debian/patches could be read (its debian.tar.* was delivered). */
  readonly patchesReadable: boolean;
  readonly missing: { file: string; reason: string }[];
}

export interface Manifest {
  readonly schema: 1;
  readonly package: string;
  readonly distribution: 'bookworm';
  readonly generatedBy: string;
  /** The version whose sources are built and whose series the units come from. */
  readonly baseVersion: string;
  /** sha256 of the base version's .dsc (the resumability key includes it). */
  readonly baseDscSha256: string;
  readonly versions: VersionRecord[];
  readonly update: {
    readonly kind: UpdateKind;
    /** The older version compared against (kind 'patches'). */
    readonly from?: string;
    readonly note: string;
    /** Patches the older version had and the base version dropped. */
    readonly dropped?: string[];
  };
  readonly seriesLength: number;
  /** Its long-running binaries and other programs (services.ts): verdicts per binary. */
  readonly services?: Services;
  readonly units: CorpusUnit[];
}

async function readPatches(debianRoot: string): Promise<PatchFile[]> {
  const seriesText = await readIfExists(join(debianRoot, 'debian', 'patches', 'series'));
  if (seriesText === undefined) return [];
  const entries = parseSeries(seriesText);
  const files: PatchFile[] = [];
  for (const entry of entries) {
    const content = await readIfExists(join(debianRoot, 'debian', 'patches', entry.path));
    if (content === undefined) throw new UserError(`series names ${entry.path}, which debian/patches lacks (${debianRoot})`, ExitCode.usage);
    files.push({ entry, content });
  }
  return files;
}

/** Fetches every indexed version of a package and derives its manifest (see corpus/README.md). */
export async function generateManifest(pkg: string, log: (line: string) => void = () => {}): Promise<Manifest> {
  const indexed = await indexedVersions(pkg);
  const records: VersionRecord[] = [];
  const byVersion = new Map<string, IndexedVersion>();
  for (const iv of indexed) {
    byVersion.set(iv.version, iv);
    log(`${pkg} ${iv.version} (${iv.suites.join(', ') || 'no suite'}): fetching`);
    const result = await fetchVersion(pkg, iv);
    const tar = debianTarball(pkg, iv);
    const patchesReadable = tar !== undefined && result.fetched.includes(tar.name);
    const status = result.missing.length === 0 ? 'complete' : patchesReadable ? 'partial' : 'unavailable';
    for (const m of result.missing) log(`${pkg} ${iv.version}: ${m.file} unavailable (${m.reason})`);
    records.push({ version: iv.version, suites: iv.suites, status, patchesReadable, missing: result.missing });
  }
  const buildable = records.filter((r) => r.status === 'complete');
  const base = buildable[buildable.length - 1];
  if (!base) {
    throw new UserError(`${pkg}: the registry delivers no complete version (${records.map((r) => `${r.version}: ${r.status}`).join('; ')})`, ExitCode.missingPrerequisite);
  }
  const baseIndexed = byVersion.get(base.version)!;
  const baseRoot = await unpackDebianDir(pkg, baseIndexed);
  const patches = await readPatches(baseRoot);

  // The update view: the oldest version whose patches are readable, if it is the same
  // upstream release; otherwise fall back to what the changelog says (corpus/README.md).
  const oldest = records.find((r) => r.patchesReadable);
  let baseline: UpdateBaseline | undefined;
  let update: Manifest['update'];
  let changelogCves: string[] = [];
  let changelogTexts: ChangelogTexts | undefined;
  if (oldest && oldest.version !== base.version && upstreamVersion(oldest.version) === upstreamVersion(base.version)) {
    const oldRoot = await unpackDebianDir(pkg, byVersion.get(oldest.version)!);
    const oldPatches = await readPatches(oldRoot);
    baseline = { version: oldest.version, patches: new Map(oldPatches.map((p) => [p.entry.path, p.content])) };
    update = {
      kind: 'patches',
      from: oldest.version,
      note: `${base.version} compared with ${oldest.version}, the oldest version the registry still delivers debian/patches for`,
      dropped: droppedPatches(baseline, patches.map((p) => p.entry)),
    };
  } else {
    const changelog = parseChangelog((await readIfExists(join(baseRoot, 'debian', 'changelog'))) ?? '');
    const fromChangelog = changelogUpdates(changelog);
    changelogCves = fromChangelog.kind === 'changelog' ? fromChangelog.cves : [];
    if (fromChangelog.updateText !== undefined && fromChangelog.older !== undefined) changelogTexts = { update: fromChangelog.updateText, older: fromChangelog.older };
    update = { kind: fromChangelog.kind, note: fromChangelog.note };
  }
  let units = buildUnits(patches, { version: base.version, baseline });
  if (changelogCves.length > 0) units = markChangelogUpdates(units, changelogCves, base.version, changelogTexts);
  return {
    schema: 1,
    package: pkg,
    distribution: 'bookworm',
    generatedBy: 'wfbuild corpus manifest',
    baseVersion: base.version,
    baseDscSha256: baseIndexed.files.find((f) => f.name.endsWith('.dsc'))?.sha256 ?? '',
    versions: records,
    update,
    seriesLength: patches.length,
    ...(servicesFor(pkg) ? { services: servicesFor(pkg)! } : {}),
    units,
  };
}

export interface ChangelogTexts {
  /** The bookworm update entries. */
  readonly update: string;
  /** Every entry before them. */
  readonly older: readonly { readonly version: string; readonly body: string }[];
}

/**
 * A patch Debian has carried since before the update and keeps last in its series (exim4's
 * 90_localscan_dlopen.dpatch, after the update's 76…84): the changelog names it in older
 * entries and never in the update's. Its name is looked for with and without its extension.
 */
function olderPatch(unit: CorpusUnit, texts: ChangelogTexts | undefined): string | undefined {
  if (!texts || unit.cves.length > 0) return undefined;
  const names = unit.patches.map((p) => p.split('/').pop()!);
  const mentions = (text: string, name: string) => text.includes(name) || text.includes(name.replace(/\.(d?patch|diff)$/, ''));
  if (names.some((n) => mentions(texts.update, n))) return undefined;
  const entries = names.map((n) => texts.older.find((e) => mentions(e.body, n)));
  return entries.every(Boolean) ? entries[0]!.version : undefined;
}

/**
 * Debian appends an update's patches to the end of the series, so the update is the tail of
 * the series from the first unit fixing a CVE that the update's changelog entry names (this
 * also catches a patch whose CVE the changelog misspells, as nodejs' deb12u2 entry does) —
 * except a patch the changelog shows Debian carried before the update (olderPatch).
 */
export function markChangelogUpdates(units: readonly CorpusUnit[], changelogCves: readonly string[], version: string, texts?: ChangelogTexts): CorpusUnit[] {
  const named = new Set(changelogCves);
  const first = units.findIndex((u) => u.cves.some((id) => named.has(id)));
  if (first < 0) return [...units];
  return units.map((u, i) => {
    if (i < first) return u;
    const older = olderPatch(u, texts);
    if (older) return { ...u, why: `not in the bookworm update: debian/changelog names it in ${older}, before the update, and not in the update's entries; ${u.why}` };
    const hit = u.cves.filter((id) => named.has(id));
    const reason = hit.length > 0
      ? `debian/changelog names ${hit.join(', ')} in a bookworm update of ${upstreamVersion(version)}`
      : `follows the update's first patch in the series (appended with it)`;
    return { ...u, views: ['update', ...u.views], why: `bookworm update: ${reason}; ${u.why}` };
  });
}

export function manifestPath(pkg: string, dir: string = manifestDir): string {
  return join(dir, `${pkg}.json`);
}

/** Writes atomically (temporary file, then rename): never a half-written manifest. */
export async function writeManifest(manifest: Manifest, dir: string = manifestDir): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = manifestPath(manifest.package, dir);
  await writeFile(`${path}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  await rename(`${path}.tmp`, path);
  return path;
}

/** Reads and checks a manifest; a malformed one is a clear usage error, not a crash later. */
export async function readManifest(pkg: string, dir: string = manifestDir): Promise<Manifest> {
  const path = manifestPath(pkg, dir);
  const text = await readIfExists(path);
  if (text === undefined) throw new UserError(`no manifest ${path}: run 'wfbuild corpus manifest --packages ${pkg}'`, ExitCode.usage);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${path}: not JSON (${(error as Error).message})`, ExitCode.usage);
  }
  return checkManifest(data, path);
}

export function checkManifest(data: unknown, where: string): Manifest {
  const fail = (what: string): never => {
    throw new UserError(`${where}: ${what}`, ExitCode.usage);
  };
  if (typeof data !== 'object' || data === null) fail('not an object');
  const m = data as Record<string, unknown>;
  if (m.schema !== 1) fail(`unknown schema ${String(m.schema)} (expected 1)`);
  if (typeof m.package !== 'string' || !/^[a-z0-9][a-z0-9+.-]+$/.test(m.package)) fail('package missing or malformed');
  if (typeof m.baseVersion !== 'string' || m.baseVersion === '') fail('baseVersion missing');
  if (!Array.isArray(m.units)) fail('units is not a list');
  if (m.services !== undefined) {
    const sv = m.services as Record<string, unknown>;
    const isRegex = (x: unknown) => {
      try {
        return typeof x === 'string' && new RegExp(x) !== null;
      } catch {
        return false;
      }
    };
    if (!Array.isArray(sv?.longRunning) || sv.longRunning.length === 0 || !sv.longRunning.every(isRegex)) fail('services.longRunning must name at least one binary (regular expressions)');
    if (!Array.isArray(sv.programs) || !sv.programs.every((p) => typeof (p as Record<string, unknown>)?.name === 'string' && isRegex((p as Record<string, unknown>).sources))) fail('services.programs malformed');
    if (sv.loadedBy !== undefined) {
      const rule = (r: unknown) => {
        const x = r as Record<string, unknown>;
        return isRegex(x?.modules) && typeof x.program === 'string' && x.program !== '' && !x.program.startsWith('/') && (x.why === undefined || typeof x.why === 'string');
      };
      if (!Array.isArray(sv.loadedBy) || !sv.loadedBy.every(rule)) fail('services.loadedBy must list {modules: regular expression over a binary\'s tree-relative path, program: the loading program\'s tree-relative path ($1… from modules), why?}');
    }
  }
  const ids = new Set<string>();
  (m.units as unknown[]).forEach((u, i) => {
    const unit = u as Record<string, unknown>;
    if (typeof unit?.id !== 'string') fail(`units[${i}].id missing`);
    if (ids.has(unit.id as string)) fail(`units[${i}].id '${String(unit.id)}' repeated`);
    ids.add(unit.id as string);
    if (!Number.isInteger(unit.start) || (unit.start as number) < 0) fail(`units[${i}].start is not a series index`);
    if (!Array.isArray(unit.patches) || unit.patches.length === 0 || unit.patches.some((p) => typeof p !== 'string' || p.includes('..'))) fail(`units[${i}].patches malformed`);
    if (!Array.isArray(unit.strip) || unit.strip.length !== (unit.patches as unknown[]).length) fail(`units[${i}].strip does not match patches`);
    if (!Array.isArray(unit.cves) || unit.cves.some((c) => typeof c !== 'string' || !/^CVE-\d{4}-\d{4,}$/.test(c))) fail(`units[${i}].cves malformed`);
    if (typeof unit.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(unit.sha256)) fail(`units[${i}].sha256 malformed`);
    if (!Array.isArray(unit.views) || unit.views.length === 0) fail(`units[${i}].views missing`);
  });
  return data as Manifest;
}

/** All CVE ids of a manifest's units, for summaries. */
export function manifestCves(manifest: Manifest): string[] {
  return [...new Set(manifest.units.flatMap((u) => u.cves))].sort(compareCve);
}
