/**
 * DEP-3 patch headers (https://dep-team.pages.debian.net/deps/dep3/) and the git
 * format-patch headers many Debian patches carry instead (From/Subject/Date).
 */

export interface PatchHeader {
  /** Short description: DEP-3 Description, else Subject without its "[PATCH n/m]" tag. */
  readonly description: string | null;
  /** The long description: continuation lines and the free text of the header. */
  readonly longDescription: string;
  readonly origin: string | null;
  /** Bug and Bug-<vendor> URLs, in header order. */
  readonly bugs: readonly string[];
  readonly bugDebian: string | null;
  readonly forwarded: string | null;
  readonly author: string | null;
  /** Every field as written (lowercased name → value, continuation lines joined by '\n'). */
  readonly fields: Readonly<Record<string, string>>;
}

const fieldLine = /^([A-Za-z][A-Za-z0-9-]*):(?:\s(.*)|$)/;
/** git format-patch's first line ("From <sha> Mon Sep 17 00:00:00 2001") is not a field. */
const mboxFromLine = /^From [0-9a-f]{7,40} /;

/** Parses the text before a patch's first file header. Never throws: a header is optional. */
export function parseHeader(text: string): PatchHeader {
  const fields: Record<string, string> = {};
  const free: string[] = [];
  let current: string | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (mboxFromLine.test(line)) continue;
    // "---" ends the message part of a git format-patch header; the diffstat follows.
    if (line === '---') break;
    const field = fieldLine.exec(line);
    if (field && !(current === null && free.length > 0 && !knownField(field[1]))) {
      current = field[1].toLowerCase();
      fields[current] = fields[current] === undefined ? (field[2] ?? '').trim() : `${fields[current]}\n${(field[2] ?? '').trim()}`;
      continue;
    }
    if (current !== null && /^\s+\S/.test(line)) {
      // A folded field: DEP-3 long descriptions, or a Subject wrapped by git.
      const value = line.trim() === '.' ? '' : line.trim();
      fields[current] = `${fields[current]}\n${value}`;
      continue;
    }
    current = null;
    if (line.trim() !== '' || free.length > 0) free.push(line);
  }
  while (free.length > 0 && free[free.length - 1].trim() === '') free.pop();

  const descField = fields['description'] ?? null;
  const subject = fields['subject'] ?? null;
  const [short, ...rest] = (descField ?? subject ?? '').split('\n');
  const description = short ? short.replace(/^\[PATCH[^\]]*\]\s*/i, '').trim() || null : null;
  // A wrapped Subject continues the short description; a DEP-3 Description's later lines are the long one.
  const fullShort = subject !== null && descField === null && rest.length > 0 ? [description, ...rest].join(' ').trim() : description;
  const longParts = descField !== null ? rest : [];
  const longDescription = [...longParts, ...free].join('\n').trim();
  const bugs = Object.entries(fields)
    .filter(([name]) => name === 'bug' || (name.startsWith('bug-') && name !== 'bug-debian'))
    .flatMap(([, value]) => value.split('\n'))
    .concat(fields['bug-debian'] ? fields['bug-debian'].split('\n') : [])
    .filter((v) => v.length > 0);
  return {
    description: fullShort,
    longDescription,
    origin: fields['origin'] ?? null,
    bugs,
    bugDebian: fields['bug-debian'] ?? null,
    forwarded: fields['forwarded'] ?? null,
    author: fields['author'] ?? fields['from'] ?? null,
    fields,
  };
}

const dep3Fields = new Set([
  'description', 'subject', 'origin', 'bug', 'bug-debian', 'bug-ubuntu', 'forwarded', 'author', 'from',
  'reviewed-by', 'acked-by', 'last-update', 'applied-upstream', 'date', 'signed-off-by', 'cve',
]);

function knownField(name: string): boolean {
  return dep3Fields.has(name.toLowerCase()) || name.toLowerCase().startsWith('bug-');
}

/** CVE ids in any of the texts, upper-cased, de-duplicated, in order of appearance. */
export function findCves(...texts: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const text of texts) {
    for (const match of text.matchAll(/CVE-(\d{4})-(\d{4,7})/gi)) seen.add(`CVE-${match[1]}-${match[2]}`);
  }
  return [...seen];
}
