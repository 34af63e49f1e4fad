/**
 * CVE ids a Debian patch fixes, from its file name, its directory, the series comments above
 * it and its DEP-3 header (the text before the diff starts).
 */

const cvePattern = /CVE[-_](\d{4})[-_](\d{4,7})/gi;

/** CVE ids mentioned in a piece of text, normalized (CVE-YYYY-NNNN), sorted, unique. */
export function cveIds(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(cvePattern)) found.add(`CVE-${m[1]}-${m[2]}`);
  return [...found].sort(compareCve);
}

export function compareCve(a: string, b: string): number {
  const [, ya, na] = a.split('-');
  const [, yb, nb] = b.split('-');
  return Number(ya) - Number(yb) || Number(na) - Number(nb);
}

/**
 * The DEP-3 header of a patch: everything before the first line that starts the diff
 * itself. git format-patch's "---" line (before the diffstat) also ends it, so file names in
 * the diffstat do not count as claims.
 */
export function dep3Header(patch: string): string {
  const lines = patch.split('\n');
  const end = lines.findIndex(
    (line) => line === '---' || /^(diff |Index: |--- |\+\+\+ |={5,}|@@ )/.test(line),
  );
  return (end < 0 ? lines : lines.slice(0, end)).join('\n');
}

/** Where a unit's CVE ids came from, for the manifest's 'why'. */
export interface CveEvidence {
  readonly cves: string[];
  readonly sources: string[];
}

export function patchCves(path: string, content: string, seriesComments: readonly string[]): CveEvidence {
  const sources: string[] = [];
  const all = new Set<string>();
  const add = (label: string, ids: string[]) => {
    if (ids.length === 0) return;
    sources.push(label);
    for (const id of ids) all.add(id);
  };
  add('file name', cveIds(path));
  add('series comment', cveIds(seriesComments.join('\n')));
  add('DEP-3 header', cveIds(dep3Header(content)));
  return { cves: [...all].sort(compareCve), sources };
}
