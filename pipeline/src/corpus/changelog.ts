/**
 * debian/changelog entries: used when the registry no longer has the version before an
 * update, to tell which CVEs that update fixed with patches (see corpus/README.md).
 */
import { cveIds } from './cve.ts';
import { upstreamVersion } from './debversion.ts';

export interface ChangelogEntry {
  readonly version: string;
  readonly distribution: string;
  readonly body: string;
}

export function parseChangelog(text: string): ChangelogEntry[] {
  const entries: ChangelogEntry[] = [];
  let current: { version: string; distribution: string; lines: string[] } | undefined;
  for (const line of text.split('\n')) {
    const head = /^[a-z0-9][a-z0-9+.-]* \(([^)]+)\) ([^;]+);/.exec(line);
    if (head) {
      if (current) entries.push({ version: current.version, distribution: current.distribution, body: current.lines.join('\n') });
      current = { version: head[1]!, distribution: head[2]!.trim(), lines: [] };
    } else if (current) current.lines.push(line);
  }
  if (current) entries.push({ version: current.version, distribution: current.distribution, body: current.lines.join('\n') });
  return entries;
}

const bookworm = /^bookworm(-security|-updates|-proposed-updates)?$/;

export type UpdateKind = 'patches' | 'changelog' | 'new-upstream' | 'none';

export interface ChangelogUpdates {
  readonly kind: Exclude<UpdateKind, 'patches'>;
  /** Versions of the bookworm update entries that added patches (newest first). */
  readonly versions: string[];
  /** CVE ids those entries name. */
  readonly cves: string[];
  readonly note: string;
  /** The update entries' text, and the text of every entry before them (kind 'changelog'). */
  readonly updateText?: string;
  readonly older?: { version: string; body: string }[];
}

/**
 * Reads the changelog of the newest version: bookworm entries after the entry that brought
 * the current upstream version are patch updates; a bookworm entry that itself changed the
 * upstream version means Debian took a new upstream release.
 */
export function changelogUpdates(entries: readonly ChangelogEntry[]): ChangelogUpdates {
  const newest = entries[0];
  if (!newest) return { kind: 'none', versions: [], cves: [], note: 'empty changelog' };
  const upstream = upstreamVersion(newest.version);
  const sameUpstream: ChangelogEntry[] = [];
  for (const entry of entries) {
    if (upstreamVersion(entry.version) !== upstream) break;
    sameUpstream.push(entry);
  }
  const first = sameUpstream[sameUpstream.length - 1]!;
  const updates = sameUpstream.slice(0, -1).filter((e) => bookworm.test(e.distribution));
  if (updates.length > 0) {
    const cves = cveIds(updates.map((e) => e.body).join('\n'));
    return {
      kind: 'changelog',
      versions: updates.map((e) => e.version),
      cves,
      updateText: updates.map((e) => e.body).join('\n'),
      older: entries.filter((e) => !updates.includes(e)).map((e) => ({ version: e.version, body: e.body })),
      note: `${updates.map((e) => e.version).join(', ')} patched ${upstream} (after ${first.version}); the registry no longer has the version before, so the update's patches are those fixing the CVEs its changelog names`,
    };
  }
  const previous = entries[sameUpstream.length];
  if (bookworm.test(first.distribution) && previous) {
    return {
      kind: 'new-upstream',
      versions: [first.version],
      cves: cveIds(first.body),
      note: `${first.version} is a new upstream release (${upstreamVersion(previous.version)} → ${upstream}), not patches on the previous version`,
    };
  }
  return { kind: 'none', versions: [], cves: [], note: `${newest.version} (${newest.distribution}) is bookworm's release version; no bookworm update since` };
}
