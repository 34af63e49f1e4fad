/**
 * An enabled build without some of the package's own series patches (`wfbuild enable
 * --without P`), and which files the built .debs install. A fix that Debian already carries in
 * its series (memcached's 0007-uninitialized-variables) is live-patched onto the build of the
 * series without it: that build is the running server, the fix is the patch.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';

/**
 * The version suffix naming the left-out patches, after `+wfpatch1`: `~without.0007` for
 * `0007-uninitialized-variables.patch` (the number a series patch starts with, else its name
 * with every character a Debian revision may not hold turned into a dot). `~` sorts it before
 * the enabled build with the whole series.
 */
export function withoutSuffix(without: readonly string[]): string {
  if (!without.length) return '';
  const ids = without.map((w) => {
    const stem = basename(w).replace(/\.(patch|diff)$/, '');
    return /^\d+(?=-)/.exec(stem)?.[0] ?? stem.replace(/[^A-Za-z0-9.+]+/g, '.');
  });
  return `~without.${ids.join('.')}`;
}

/** Series lines: names with comments and blank lines left out (quilt's format: NAME [-pN]). */
export function seriesNames(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0]!);
}

/**
 * Each of `without` as the series names it: the name itself, else with `.patch` or `.diff`
 * added (memcached's series names carry `.patch`, openldap's mostly none). A name not in the
 * series is bad input.
 */
export function resolveSeriesNames(names: readonly string[], without: readonly string[], what: string): string[] {
  const missing: string[] = [];
  const alsoTried: string[] = [];
  const resolved = without.map((w) => {
    const tried = /\.(patch|diff)$/.test(w) ? [w] : [`${w}.patch`, w, `${w}.diff`];
    const hit = tried.find((n) => names.includes(n));
    if (!hit) {
      missing.push(tried[0]!);
      alsoTried.push(...tried.slice(1));
    }
    return hit ?? w;
  });
  if (missing.length) {
    const nor = alsoTried.length ? `nor ${alsoTried.join(', ')}; ` : '';
    throw new UserError(`${what} has no ${missing.join(', ')} in debian/patches/series (${nor}its series: ${names.join(', ') || 'empty'})`);
  }
  return [...new Set(resolved)].sort();
}

/** Removes `without` (names as the series has them) from debian/patches/series; a name not in the series is bad input. */
export async function dropFromSeries(tree: string, without: readonly string[], what: string): Promise<void> {
  const path = join(tree, 'debian/patches/series');
  const text = await readFile(path, 'utf8').catch(() => '');
  const names = seriesNames(text);
  const missing = without.filter((w) => !names.includes(w));
  if (missing.length) throw new UserError(`${what} has no ${missing.join(', ')} in debian/patches/series (its series: ${names.join(', ') || 'empty'})`);
  const kept = text.split('\n').filter((line) => !without.includes(line.replace(/#.*/, '').trim().split(/\s+/)[0] ?? ''));
  await writeFile(path, kept.join('\n'));
}

/**
 * Which linked outputs of the build the .debs install, and where: an ELF file (or a hard link
 * to one) in a .deb whose name is the output's (the .deb's copy is stripped, so bytes cannot match; a name that two
 * .debs or two outputs share is left out). Debug symbol packages (-dbgsym) are not installs.
 */
export async function shippedFiles(work: string, debs: readonly string[]): Promise<Record<string, string>> {
  const installed = new Map<string, string[]>();
  for (const deb of debs) {
    if (/-dbgsym_/.test(basename(deb))) continue;
    const listing = await execa('dpkg-deb', ['--contents', deb]);
    for (const line of listing.stdout.split('\n')) {
      // Regular files, and hard links to them: slapd's .deb ships one binary as
      // /usr/sbin/slapacl with slapd, slapadd… as hard links to it ("h… ./usr/sbin/slapd link to ./usr/sbin/slapacl").
      if (!line.startsWith('-') && !line.startsWith('h')) continue;
      const path = line.split(/\s+/).slice(5).join(' ').replace(/ link to .*$/, '').replace(/^\./, '');
      if (!/\/(s?bin|lib|libexec)\//.test(path)) continue;
      installed.set(basename(path), [...(installed.get(basename(path)) ?? []), path]);
    }
  }
  const log = (await readFile(join(work, 'build-log.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; output?: string });
  const outputs = [...new Set(log.filter((e) => e.kind === 'link' && e.output).map((e) => e.output!))];
  const shipped: Record<string, string> = {};
  for (const output of outputs) {
    const same = outputs.filter((o) => basename(o) === basename(output));
    const at = installed.get(basename(output)) ?? [];
    if (same.length === 1 && at.length === 1) shipped[output] = at[0]!;
  }
  return shipped;
}
