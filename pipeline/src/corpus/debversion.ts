/**
 * Debian version ordering (Debian Policy 5.6.12): epoch, then upstream version, then
 * revision, each compared part by part. Pure, so manifests sort versions without dpkg.
 */

interface ParsedVersion {
  readonly epoch: number;
  readonly upstream: string;
  readonly revision: string;
}

export function parseDebianVersion(version: string): ParsedVersion {
  const text = version.trim();
  if (!/^(\d+:)?[0-9][A-Za-z0-9.+~:-]*$/.test(text)) {
    throw new Error(`not a Debian version: '${version}'`);
  }
  const colon = text.indexOf(':');
  const epoch = colon >= 0 ? Number(text.slice(0, colon)) : 0;
  const rest = colon >= 0 ? text.slice(colon + 1) : text;
  const dash = rest.lastIndexOf('-');
  return dash >= 0
    ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) }
    : { epoch, upstream: rest, revision: '' };
}

/** dpkg's character weight: '~' before the end of a part, letters before other symbols. */
function weight(ch: string | undefined): number {
  if (ch === undefined) return 0;
  if (ch === '~') return -1;
  if (/[A-Za-z]/.test(ch)) return ch.charCodeAt(0);
  return ch.charCodeAt(0) + 256;
}

function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix, compared character by character with dpkg's weights.
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const wa = i < a.length && !/\d/.test(a[i]!) ? weight(a[i]) : 0;
      const wb = j < b.length && !/\d/.test(b[j]!) ? weight(b[j]) : 0;
      if (wa !== wb) return wa < wb ? -1 : 1;
      if (i < a.length && !/\d/.test(a[i]!)) i++;
      if (j < b.length && !/\d/.test(b[j]!)) j++;
    }
    // Digit run, compared as a number (leading zeros do not matter).
    let na = '';
    let nb = '';
    while (i < a.length && /\d/.test(a[i]!)) na += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) nb += b[j++];
    const da = BigInt(na || '0');
    const db = BigInt(nb || '0');
    if (da !== db) return da < db ? -1 : 1;
  }
  return 0;
}

/** Negative, zero or positive as a sorts before, equal to or after b (like dpkg --compare-versions). */
export function compareDebianVersions(a: string, b: string): number {
  const pa = parseDebianVersion(a);
  const pb = parseDebianVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch < pb.epoch ? -1 : 1;
  return compareFragment(pa.upstream, pb.upstream) || compareFragment(pa.revision, pb.revision);
}

/** The upstream part (no epoch, no Debian revision), e.g. 1.6.18 for 1.6.18-1+deb12u1. */
export function upstreamVersion(version: string): string {
  return parseDebianVersion(version).upstream;
}

/** The version without its epoch, as it appears in source file names. */
export function versionWithoutEpoch(version: string): string {
  const colon = version.indexOf(':');
  return colon >= 0 ? version.slice(colon + 1) : version;
}
