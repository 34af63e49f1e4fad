/**
 * Source trees for corpus units: the base version unpacked without its patches
 * (dpkg-source --skip-patches), then the series applied up to a unit's start, so the unit
 * applies exactly as it would have on top of the patches before it. Cached and never modified.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot } from '../paths.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { tail } from '../common/text.ts';
import { parseSeries, type SeriesEntry } from './series.ts';
import { sha256 } from './units.ts';
import { versionWithoutEpoch } from './debversion.ts';
import { fetchVersion, indexedVersions, sourcesCache } from './registry.ts';
import type { Manifest } from './manifest.ts';
import type { CorpusUnit } from './units.ts';
import { exists } from '../common/fs.ts';

export const treesCache: string = join(cacheRoot, 'corpus', 'trees');

export function dscPath(manifest: Manifest): string {
  return join(sourcesCache, manifest.package, `${manifest.package}_${versionWithoutEpoch(manifest.baseVersion)}.dsc`);
}

/**
 * The manifest's base version in the sources cache, fetched from the registry on a miss.
 * Every reader of the sources cache goes through here, so no caller depends on an earlier
 * command having filled it (a fresh machine has an empty cache).
 */
export async function ensureSources(manifest: Manifest): Promise<string> {
  const dsc = dscPath(manifest);
  if (await exists(dsc)) return dsc;
  const indexed = (await indexedVersions(manifest.package)).find((v) => v.version === manifest.baseVersion);
  if (!indexed) throw new UserError(`${manifest.package} ${manifest.baseVersion}: the registry no longer lists it; regenerate the manifest ('wfbuild corpus manifest')`, ExitCode.missingPrerequisite);
  const fetched = await fetchVersion(manifest.package, indexed);
  if (fetched.missing.length > 0) {
    throw new UserError(`${manifest.package} ${manifest.baseVersion}: the registry did not deliver ${fetched.missing.map((m) => `${m.file} (${m.reason})`).join(', ')}`, ExitCode.missingPrerequisite);
  }
  if (!(await exists(dsc))) throw new UserError(`${manifest.package} ${manifest.baseVersion}: fetched, but ${dsc} is not there`, ExitCode.missingPrerequisite);
  return dsc;
}

/**
 * Applies one series patch with the strip level the series gives it. No dry run: it rejects
 * a patch file of several commits that touch one file twice (samba's
 * bug-16018-v4-17-lts-v8.patch), which applies for real; the caller works in a temporary tree
 * that a failure throws away.
 */
export async function applySeriesPatch(tree: string, entry: Pick<SeriesEntry, 'path' | 'strip'>): Promise<void> {
  const file = join(tree, 'debian', 'patches', entry.path);
  const args = [`-p${entry.strip}`, '--batch', '--forward', '--no-backup-if-mismatch', '-r', '-', '-i', file];
  const real = await execa('patch', args, { cwd: tree, reject: false, all: true, stdin: 'ignore' });
  if (real.exitCode !== 0) throw new UserError(`debian/patches/${entry.path} does not apply:\n${tail(real.all ?? '', 8)}`, ExitCode.buildFailed);
}

/**
 * The base version's tree with series patches [0, start) applied, at
 * cacheRoot/corpus/trees/<pkg>_<version>/p<start>/tree. Built in a temporary folder and renamed,
 * so an interrupted run never leaves a tree that looks finished.
 */
export async function treeAt(manifest: Manifest, start: number, log: (line: string) => void = () => {}): Promise<string> {
  return preparedTree(manifest, `p${start}`, (series) => {
    if (start > series.length) throw new UserError(`${manifest.package}: unit starts at patch ${start} but the series has ${series.length}`, ExitCode.usage);
    return series.slice(0, start);
  }, log);
}

/**
 * The base version's tree with every series patch applied except the unit's: the base for
 * applying the unit last, as if it were the newest update (used when the tree before the unit
 * does not build because Debian's build needs a later patch).
 */
export async function treeWithout(manifest: Manifest, unit: Pick<CorpusUnit, 'start' | 'patches'>, log: (line: string) => void = () => {}): Promise<string> {
  const end = unit.start + unit.patches.length;
  return preparedTree(manifest, `w${unit.start}-${end}`, (series) => series.filter((e) => e.index < unit.start || e.index >= end), log);
}

/** The series without some ranges [start, end) of its patches (the update view's shared base, placement.ts). */
export async function treeWithoutRanges(manifest: Manifest, ranges: readonly (readonly [number, number])[], log: (line: string) => void = () => {}): Promise<string> {
  const name = `x${ranges.map(([a, b]) => `${a}-${b}`).join('_')}`;
  return preparedTree(manifest, name, (series) => series.filter((e) => !ranges.some(([a, b]) => e.index >= a && e.index < b)), log);
}

async function preparedTree(manifest: Manifest, name: string, pick: (series: SeriesEntry[]) => SeriesEntry[], log: (line: string) => void): Promise<string> {
  const root = join(treesCache, `${manifest.package}_${versionWithoutEpoch(manifest.baseVersion)}`, name);
  const tree = join(root, 'tree');
  if (await exists(join(root, '.complete'))) return tree;
  const dsc = await ensureSources(manifest);
  const temp = `${root}.tmp-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  try {
    log(`${manifest.package}: unpacking ${manifest.baseVersion} without its patches`);
    const x = await execa('dpkg-source', ['--skip-patches', '-x', dsc, join(temp, 'tree')], { reject: false, all: true, stdin: 'ignore' });
    if (x.exitCode !== 0) throw new UserError(`dpkg-source -x ${dsc} failed:\n${tail(x.all ?? '', 8)}`, ExitCode.buildFailed);
    const series = parseSeries(await readFile(join(temp, 'tree', 'debian', 'patches', 'series'), 'utf8').catch(() => ''));
    const entries = pick(series);
    if (entries.length > 0) log(`${manifest.package}: applying ${entries.length} of ${series.length} series patches (${name})`);
    for (const entry of entries) await applySeriesPatch(join(temp, 'tree'), entry);
    await writeFile(join(temp, '.complete'), `${new Date().toISOString()}\n`);
    await rm(root, { recursive: true, force: true });
    await rename(temp, root);
    return tree;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}

/**
 * A patch file without git format-patch's closing signature ("-- " and a version line): in a
 * concatenation of several patches it would sit between two diffs, where it is no diff syntax.
 */
export function withoutMailSignature(text: string): string {
  const body = text.endsWith('\n') ? text : `${text}\n`;
  return body.replace(/\n-- \n\d+\.\d+[^\n]*\n\s*$/, '\n');
}

/**
 * The unit's patch as one file (its patch files concatenated, in series order), written next
 * to the cache so the pipeline can apply it with -p1. Checks the files against the manifest's
 * hash: a manifest older than the registry's sources is an error, not a silent mismeasurement.
 */
export async function unitPatchFile(manifest: Manifest, unit: CorpusUnit, tree: string, outDir: string): Promise<string> {
  const texts: string[] = [];
  for (const path of unit.patches) {
    const text = await readFile(join(tree, 'debian', 'patches', path), 'utf8').catch(() => undefined);
    if (text === undefined) throw new UserError(`${manifest.package} ${manifest.baseVersion} has no debian/patches/${path}: is the manifest stale? run 'wfbuild corpus manifest'`, ExitCode.usage);
    texts.push(text);
  }
  if (sha256(texts) !== unit.sha256) {
    throw new UserError(`${manifest.package} unit ${unit.id}: the patches differ from the manifest's (sha256): run 'wfbuild corpus manifest --packages ${manifest.package}'`, ExitCode.usage);
  }
  if (unit.strip.some((s) => s !== 1)) {
    throw new UserError(`${manifest.package} unit ${unit.id}: a patch with -p${unit.strip.find((s) => s !== 1)} in the series; the pipeline applies -p1 patches only`, ExitCode.usage);
  }
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, `${unit.sha256.slice(0, 16)}.patch`);
  // Every mail of every file (a file may hold several format-patch mails: dovecot's CVE fixes).
  const parts = texts.flatMap(commitsOf).map(withoutMailSignature);
  await writeFile(file, parts.map((t, i) => (i === 0 ? t : withoutHeader(t))).join(''));
  return file;
}

/**
 * The commits of a patch file made of several git format-patch mails, oldest first; one part
 * for any other file.
 */
export function commitsOf(text: string): string[] {
  const starts = [...text.matchAll(/^From [0-9a-f]{40} /gm)].map((m) => m.index!);
  // A file may open with a DEP-3 header and the first commit's diff, without a mail line (a
  // header alone belongs to the first mail: samba's bug-16018 series).
  if (starts.length > 0 && starts[0] !== 0 && /^(diff |--- \S.*\n\+\+\+ )/m.test(text.slice(0, starts[0]))) starts.unshift(0);
  if (starts.length < 2) return [text];
  return starts.map((start, i) => text.slice(i === 0 ? 0 : start, starts[i + 1] ?? text.length));
}

/**
 * A patch without its header (DEP-3 or mail, everything before the first diff). Concatenated
 * after another patch, a header would sit between two diffs, where a diff parser takes it for
 * a broken hunk (mosquitto's CVE-2023-28366 and its regression fix: "Unknown line … From:").
 */
export function withoutHeader(text: string): string {
  const m = /^(diff |--- |Index: )/m.exec(text);
  return m ? text.slice(m.index) : text;
}
