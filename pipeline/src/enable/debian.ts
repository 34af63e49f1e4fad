import { appendFile, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { UserError } from '../cli/errors.ts';
import { exists } from '../common/fs.ts';
import { tail } from '../common/text.ts';
import type { Enablement } from './apps.ts';

/** The enabled package's version: Debian's version with a `+wfpatch1` suffix (sorts after it). */
export function enabledVersion(version: string): string {
  return `${version}+wfpatch1`;
}

/**
 * Checks that the enablement patch applies to the (unmodified) tree: a dry run, so a patch for
 * another version fails in a second, before anything is copied or built.
 */
export async function checkApplies(tree: string, enablement: Enablement, what: string): Promise<void> {
  const format = (await readFile(join(tree, 'debian/source/format'), 'utf8').catch(() => '')).trim();
  if (format !== '3.0 (quilt)') {
    throw new UserError(`${what}: source format '${format || 'none'}' is not 3.0 (quilt): cannot add the enablement patch to a series`);
  }
  // --fuzz=0: dpkg-source applies series patches without fuzz, so the dry run must not accept more.
  const result = await execa('patch', ['-p1', '--dry-run', '--batch', '--forward', '--fuzz=0', '-i', enablement.patch], { cwd: tree, reject: false, all: true });
  if (result.exitCode !== 0) {
    throw new UserError(`${enablement.display} does not apply to ${what}:\n${patchFailures(result.all ?? '')}`);
  }
}

/** patch(1)'s dry-run output reduced to what failed, each line naming its file. */
export function patchFailures(output: string): string {
  const failures: string[] = [];
  let file = '?';
  for (const line of output.split('\n')) {
    const checking = /^checking file (.+)$/.exec(line);
    if (checking) file = checking[1];
    else if (/FAILED|can't find file|No such file|malformed|Reversed|garbage|Only garbage/i.test(line)) failures.push(`  ${file}: ${line.trim()}`);
  }
  return failures.length ? failures.join('\n') : tail(output, 12);
}

/**
 * Adds the enablement patch to the tree the Debian way: into debian/patches and at the end of
 * the series, applied by dpkg-source (which records it in .pc like the package's own patches).
 */
export async function addToSeries(tree: string, enablement: Enablement): Promise<void> {
  const patches = join(tree, 'debian/patches');
  const target = join(patches, enablement.name);
  if (await exists(target)) throw new UserError(`debian/patches/${enablement.name} already exists in the package: rename the enablement patch`);
  await mkdir(patches, { recursive: true });
  await copyFile(enablement.patch, target);
  const series = join(patches, 'series');
  const text = await readFile(series, 'utf8').catch(() => '');
  await appendFile(series, `${text === '' || text.endsWith('\n') ? '' : '\n'}${enablement.name}\n`);
  // --no-unapply-patches: dpkg-buildpackage's --after-build would otherwise unapply the whole
  // series at the end, and the build tree in the cache would no longer match its objects.
  const result = await execa('dpkg-source', ['--no-unapply-patches', '--before-build', '.'], { cwd: tree, reject: false, all: true });
  if (result.exitCode !== 0 || !(await isApplied(tree, enablement))) {
    throw new UserError(`dpkg-source did not apply ${enablement.display}:\n${tail(result.all ?? '', 12)}`);
  }
}

/** Whether quilt's bookkeeping (.pc/applied-patches) lists the enablement patch as applied. */
export async function isApplied(tree: string, enablement: Enablement): Promise<boolean> {
  const applied = await readFile(join(tree, '.pc/applied-patches'), 'utf8').catch(() => '');
  return applied.split('\n').includes(enablement.name);
}

export interface ChangelogEntry {
  readonly source: string;
  readonly version: string;
  readonly text: string;
  readonly maintainer: string;
  /** RFC 5322 date, as `date -R` writes it. */
  readonly date: string;
}

/** The distribution of the newest changelog entry (the enabled version ships where it did). */
export async function currentDistribution(tree: string): Promise<string> {
  const result = await execa('dpkg-parsechangelog', ['-l', join(tree, 'debian/changelog'), '-S', 'Distribution']);
  return result.stdout.trim() || 'UNRELEASED';
}

/** Prepends a changelog entry (what `dch -v VERSION` would write, without its prompts). */
export async function addChangelogEntry(tree: string, entry: ChangelogEntry): Promise<void> {
  const path = join(tree, 'debian/changelog');
  const old = await readFile(path, 'utf8');
  const distribution = await currentDistribution(tree);
  const head = `${entry.source} (${entry.version}) ${distribution}; urgency=medium\n\n  * ${entry.text}\n\n -- ${entry.maintainer}  ${entry.date}\n\n`;
  await writeFile(path, head + old);
}

/** RFC 5322 date of `when`, in UTC, as Debian changelogs write it. */
export function changelogDate(when: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${days[when.getUTCDay()]}, ${p(when.getUTCDate())} ${months[when.getUTCMonth()]} ${when.getUTCFullYear()} ${p(when.getUTCHours())}:${p(when.getUTCMinutes())}:${p(when.getUTCSeconds())} +0000`;
}
