/**
 * debian/patches/series as quilt reads it: one patch per line, optional patch options
 * (only -pN matters to us), '#' comments. Comments are kept because Debian maintainers put
 * the CVE a group of patches fixes there (samba: "# CVE-2018-14628: ...").
 */

export interface SeriesEntry {
  /** Path below debian/patches. */
  readonly path: string;
  /** The -p level quilt uses for this patch (default 1). */
  readonly strip: number;
  /** 0-based position among the patches (comments do not count). */
  readonly index: number;
  /** Comment lines directly above this entry (without '#'), nearest last. */
  readonly comments: readonly string[];
}

export function parseSeries(text: string): SeriesEntry[] {
  const entries: SeriesEntry[] = [];
  let comments: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      comments = [];
      continue;
    }
    if (line.startsWith('#')) {
      comments.push(line.replace(/^#+\s*/, ''));
      continue;
    }
    // A trailing '# comment' after the patch name is allowed by quilt.
    const [body] = line.split(/\s+#/);
    const [path, ...options] = body!.trim().split(/\s+/);
    if (path === undefined || path.includes('..') || path.startsWith('/')) {
      throw new Error(`series: bad patch path in line '${line}'`);
    }
    let strip = 1;
    for (const option of options) {
      const m = /^-p(\d+)$/.exec(option);
      if (m) strip = Number(m[1]);
      else if (option === '-p') throw new Error(`series: '-p' without a level in line '${line}'`);
      // Other options (e.g. -R) are rare in Debian; we refuse them instead of misapplying.
      else throw new Error(`series: unsupported patch option '${option}' in line '${line}'`);
    }
    entries.push({ path, strip, index: entries.length, comments });
    comments = [];
  }
  return entries;
}
