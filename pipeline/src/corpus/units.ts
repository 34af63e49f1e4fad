/**
 * Turns a package's patch series into corpus units (one fix each) and marks which of them a
 * bookworm update added or changed. Pure: the inputs are the series and patch contents.
 */
import { createHash } from 'node:crypto';
import { compareCve, cveIds, patchCves } from './cve.ts';
import type { SeriesEntry } from './series.ts';

export interface PatchFile {
  readonly entry: SeriesEntry;
  readonly content: string;
}

export type UnitView = 'update' | 'series';

export interface CorpusUnit {
  /** Stable within a package: the CVE directory, the CVE id, or the first patch's path. */
  readonly id: string;
  /** Position of the first patch in the series: the unit applies on top of patches [0, start). */
  readonly start: number;
  /** Paths below debian/patches, in series order. */
  readonly patches: readonly string[];
  /** -p level per patch (series options), parallel to patches. */
  readonly strip: readonly number[];
  /** sha256 over the patches' contents in order (resumability key part). */
  readonly sha256: string;
  readonly cves: readonly string[];
  readonly cveSources: readonly string[];
  readonly views: readonly UnitView[];
  readonly why: string;
}

/** Directory part of a series path ('' for top-level patches). */
function dirOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * The grouping rule (corpus/README.md): consecutive series entries form one unit when
 * (a) they live in the same directory and that directory's name carries a CVE id
 *     (samba's CVE-2018-14628/01…06), or
 * (b) their file names carry the same non-empty set of CVE ids
 *     (nodejs' CVE-2026-21637.patch and CVE-2026-21637_post1.patch).
 * Everything else is one unit per patch.
 */
export function groupSeries(entries: readonly SeriesEntry[]): SeriesEntry[][] {
  const groups: SeriesEntry[][] = [];
  const key = (entry: SeriesEntry): string | undefined => {
    const dir = dirOf(entry.path);
    if (dir !== '' && cveIds(dir).length > 0) return `dir:${dir}`;
    const ids = cveIds(baseOf(entry.path));
    return ids.length > 0 ? `file:${dirOf(entry.path)}:${ids.join(',')}` : undefined;
  };
  let previousKey: string | undefined;
  for (const entry of entries) {
    const k = key(entry);
    const last = groups[groups.length - 1];
    if (k !== undefined && k === previousKey && last) last.push(entry);
    else groups.push([entry]);
    previousKey = k;
  }
  return groups;
}

function unitId(group: readonly SeriesEntry[]): string {
  const first = group[0]!;
  if (group.length === 1) return first.path;
  const dir = dirOf(first.path);
  if (dir !== '' && cveIds(dir).length > 0) return dir;
  return cveIds(baseOf(first.path)).join('+');
}

export function sha256(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(Buffer.byteLength(part)));
    hash.update('\0');
    hash.update(part);
  }
  return hash.digest('hex');
}

/**
 * What a patch changes: each file it touches and its removed and added lines, without the
 * header, hunk positions, context or index lines. Tools that export a series from git (gbp pq)
 * rewrite every patch when an update adds one — new blob ids, shifted hunks — so a patch whose
 * content differs can still make the same change (openssh 1:9.2p1-2+deb12u7 → deb12u10
 * rewrote 30 of its 53 patches that way).
 */
export function changeOf(patch: string): string {
  const out: string[] = [];
  let inDiff = false;
  for (const line of patch.split('\n')) {
    if (line.startsWith('+++ ')) {
      inDiff = true;
      // a/b/ prefixes and timestamps differ between exporters.
      out.push(`file ${line.slice(4).split('\t')[0]!.replace(/^[^/]+\//, '')}`);
    } else if (line.startsWith('--- ') || line.startsWith('diff ') || line.startsWith('index ')) {
      continue;
    } else if (inDiff && (line.startsWith('+') || line.startsWith('-'))) {
      out.push(line);
    }
  }
  return out.join('\n');
}

/** Whether two versions of a patch make the same change (a refresh is not an update). */
export function sameChange(before: string, after: string): boolean {
  if (before === after) return true;
  const change = changeOf(before);
  // Text without a diff in it is compared whole.
  return change !== '' && change === changeOf(after);
}

/** What the update view compares against: the oldest version's patches by path. */
export interface UpdateBaseline {
  readonly version: string;
  /** path → content of every patch in the oldest version's series. */
  readonly patches: ReadonlyMap<string, string>;
}

export interface UnitContext {
  readonly version: string;
  /** Set when the update view applies (same upstream version, an older Debian revision). */
  readonly baseline?: UpdateBaseline;
}

/** Builds the units of one version's series; contents are looked up by series path. */
export function buildUnits(patches: readonly PatchFile[], context: UnitContext): CorpusUnit[] {
  const groups = groupSeries(patches.map((p) => p.entry));
  const content = new Map(patches.map((p) => [p.entry.path, p.content]));
  const total = patches.length;
  const units: CorpusUnit[] = [];
  const seen = new Map<string, number>();
  for (const group of groups) {
    const texts = group.map((entry) => content.get(entry.path) ?? '');
    const cves = new Set<string>();
    const sources = new Set<string>();
    group.forEach((entry, i) => {
      const evidence = patchCves(entry.path, texts[i]!, entry.comments);
      evidence.cves.forEach((id) => cves.add(id));
      evidence.sources.forEach((s) => sources.add(s));
    });
    let id = unitId(group);
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    if (n > 0) id = `${id}#${n + 1}`;

    const views: UnitView[] = ['series'];
    const first = group[0]!;
    const position = group.length === 1
      ? `patch ${first.index + 1} of ${total}`
      : `patches ${first.index + 1}–${first.index + group.length} of ${total}`;
    let why = `series walk: ${position} in ${context.version}, applied on top of the ones before it`;
    if (context.baseline) {
      const added = group.filter((e) => !context.baseline!.patches.has(e.path));
      const changed = group.filter((e) => {
        const before = context.baseline!.patches.get(e.path);
        return before !== undefined && !sameChange(before, content.get(e.path) ?? '');
      });
      if (added.length > 0 || changed.length > 0) {
        views.unshift('update');
        const what = [
          added.length > 0 ? `added ${added.map((e) => baseOf(e.path)).join(', ')}` : '',
          changed.length > 0 ? `changed ${changed.map((e) => baseOf(e.path)).join(', ')}` : '',
        ].filter(Boolean).join('; ');
        why = `bookworm update: ${context.version} ${what} relative to ${context.baseline.version}; ${why}`;
      }
    }
    units.push({
      id,
      start: first.index,
      patches: group.map((e) => e.path),
      strip: group.map((e) => e.strip),
      sha256: sha256(texts),
      cves: [...cves].sort(compareCve),
      cveSources: [...sources],
      views,
      why,
    });
  }
  return units;
}

/** Patches the oldest version had that the newest one dropped (reported, not classified). */
export function droppedPatches(baseline: UpdateBaseline, newest: readonly SeriesEntry[]): string[] {
  const now = new Set(newest.map((e) => e.path));
  return [...baseline.patches.keys()].filter((path) => !now.has(path));
}
