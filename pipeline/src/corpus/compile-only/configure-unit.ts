/**
 * A build-system unit of a configure-only profile (cmake, make-dry-run, waf), measured: the
 * tree before the unit and the tree with it are each configured from scratch with the
 * profile's configure step, and the translation units whose compilation the unit changes are
 * compiled in their own tree (before in the before-tree, after in the after-tree) and judged
 * like every other compile-only unit (walk.ts' judgeCompiled).
 *
 * A unit changes a translation unit's compilation when its compile command differs between the
 * two compile databases, when it includes a header whose content differs between the two
 * configured trees (a generated config.h, or a header the unit itself changes), when it touches
 * its source, or when only one side compiles it. The two trees sit in different folders, so
 * commands and headers are compared with each tree's folder replaced by one placeholder, and
 * the objects are compiled with -ffile-prefix-map onto one folder (debug info and __FILE__
 * agree); a path spelled into a -D value or a generated header is compared that way but
 * compiled as it is. Link commands are not compared: how objects are linked is no code change.
 *
 * Configured trees are cached under cacheRoot/corpus/configured/<package>_<version>/<key>/,
 * the key naming the sources (their identity, given by the caller), the profile and its
 * configure command, with a .complete marker that holds the time configuring took: a re-run
 * configures nothing again, and a tree is never modified once complete.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../../paths.ts';
import { UserError } from '../../cli/errors.ts';
import { copyTree, exists } from '../../common/fs.ts';
import type { Services } from '../services.ts';
import { affectedUnits, headerName } from './affected.ts';
import { compileUnits, firstError, type CompileFailure } from './compile.ts';
import { rebase, type TranslationUnit } from './database.ts';
import { configureInPlace, type Profile } from './prepare.ts';
import { generateFor } from './samba.ts';
import { compileFailed, judgeCompiled, triageAll, type Classified } from './walk.ts';

export const configuredCache: string = join(cacheRoot, 'corpus', 'configured');

/** Where both sides' objects say they were compiled (-ffile-prefix-map). */
const commonRoot = '/wfpatch/configured-tree';
const placeholder = '\0tree\0';

export interface ConfiguredTree {
  readonly tree: string;
  /** One translation unit per source (its first compiler call). */
  readonly database: readonly TranslationUnit[];
  /** Every compiler call (a source compiled for two targets twice). */
  readonly calls: readonly TranslationUnit[];
  readonly key: string;
  /** Whether this call found it in the cache. */
  readonly cached: boolean;
  /** How long configuring took (when it was configured, for a cached tree). */
  readonly seconds: number;
}

/** The cache key of a configured tree: the sources, the profile and its configure command. */
export function configuredKey(profile: Profile, sourceId: string): string {
  // 'calls': the stored trees hold every compiler call, not one per source.
  const how = { layout: 'calls', name: profile.name, how: profile.how, configure: profile.configure ?? [], env: profile.env ?? {}, path: profile.path ?? null, makeArgs: profile.makeArgs ?? [], gypActions: profile.gypActions ?? [] };
  return createHash('sha256').update(JSON.stringify({ how, sourceId })).digest('hex').slice(0, 16);
}

export interface ConfigureRequest {
  readonly pkg: string;
  /** <package>_<version>: the cache folder the package's configured trees share. */
  readonly folder: string;
  readonly profile: Profile;
  /** The unconfigured sources (not modified: copied). */
  readonly source: string;
  /** What the sources are (base source hash and applied patches): part of the key. */
  readonly sourceId: string;
  /** Default configuredCache (tests give their own). */
  readonly cache?: string;
  readonly log: (line: string) => void;
}

/** The sources configured from scratch with the profile's configure step, or the cached tree. Throws UserError when configure fails. */
export async function configuredTree(req: ConfigureRequest): Promise<ConfiguredTree> {
  const key = configuredKey(req.profile, req.sourceId);
  const root = join(req.cache ?? configuredCache, req.folder, key);
  const tree = join(root, 'tree');
  if (await exists(join(root, '.complete'))) {
    const stored = JSON.parse(await readFile(join(root, 'database.json'), 'utf8')) as { tree: string; units: TranslationUnit[]; calls: TranslationUnit[] };
    const marker = JSON.parse(await readFile(join(root, '.complete'), 'utf8')) as { seconds?: number };
    const moved = (units: readonly TranslationUnit[]): TranslationUnit[] => units.map((u) => rebase(u, stored.tree, tree));
    return { tree, database: moved(stored.units), calls: moved(stored.calls), key, cached: true, seconds: marker.seconds ?? 0 };
  }
  const started = performance.now();
  // An unfinished tree (killed run) is started over: its state is unknown. Configured in
  // place: CMake and waf keep the absolute paths they were configured at.
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  req.log(`configuring ${req.folder} ${key} from scratch (${req.profile.configure?.join(', ') ?? req.profile.how})`);
  await copyTree(req.source, tree);
  const { database, calls } = await configureInPlace(req.pkg, req.profile, tree, req.log);
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  await writeFile(join(root, 'database.json'), JSON.stringify({ tree, units: database, calls }) + '\n');
  await writeFile(join(root, '.complete'), JSON.stringify({ configuredAt: new Date().toISOString(), seconds }) + '\n');
  req.log(`configured ${key}: ${database.length} translation units, ${calls.length} compiler calls (${seconds} s)`);
  return { tree, database, calls, key, cached: false, seconds };
}

/** A translation unit the unit changes the compilation of: before and/or after. */
export interface AffectedTu {
  readonly source: string;
  readonly why: string;
  readonly before: TranslationUnit | null;
  readonly after: TranslationUnit | null;
}

function normalised(tu: TranslationUnit, root: string): string {
  const swap = (s: string): string => s.split(root).join(placeholder);
  return JSON.stringify([swap(tu.directory), tu.compiler, tu.args.map(swap)]);
}

/** Headers under a configured tree (tree-relative), the patch system's and VCS folders left out. */
async function headersOf(tree: string): Promise<string[]> {
  const all = await readdir(tree, { recursive: true, withFileTypes: true });
  return all
    .filter((d) => d.isFile() && headerName.test(d.name))
    .map((d) => join(d.parentPath ?? d.path, d.name).slice(tree.length + 1))
    .filter((p) => !/^(\.pc|\.git|debian)\//.test(p));
}

/** Headers whose content (each tree's folder replaced) differs, or that only one side has. */
export async function changedHeaders(before: string, after: string): Promise<{ changed: string[]; added: string[]; removed: string[] }> {
  const [b, a] = await Promise.all([headersOf(before), headersOf(after)]);
  const inBefore = new Set(b);
  const inAfter = new Set(a);
  const changed: string[] = [];
  for (const path of a.filter((p) => inBefore.has(p))) {
    const [x, y] = await Promise.all([readFile(join(before, path), 'latin1'), readFile(join(after, path), 'latin1')]);
    if (x !== y && x.split(before).join(placeholder) !== y.split(after).join(placeholder)) changed.push(path);
  }
  return { changed: changed.sort(), added: a.filter((p) => !inBefore.has(p)).sort(), removed: b.filter((p) => !inAfter.has(p)).sort() };
}

function callsBySource(calls: readonly TranslationUnit[]): Map<string, TranslationUnit[]> {
  const by = new Map<string, TranslationUnit[]>();
  for (const c of calls) by.set(c.source, [...(by.get(c.source) ?? []), c]);
  return by;
}

/**
 * The translation units whose compilation the unit changes (see the module comment). A source
 * compiled for several targets is compared call by call; the pair compiled is its first call
 * that differs (a call only the tree with the unit has: a new object; only the tree before: a
 * removed one).
 */
export async function affectedByConfigure(before: ConfiguredTree, after: ConfiguredTree, touched: readonly string[]): Promise<AffectedTu[]> {
  const b = new Map(before.database.map((u) => [u.source, u]));
  const a = new Map(after.database.map((u) => [u.source, u]));
  const found = new Map<string, AffectedTu>();
  const note = (source: string, why: string, pair?: { before: TranslationUnit | null; after: TranslationUnit | null }): void => {
    if (!found.has(source)) found.set(source, { source, why, before: pair ? pair.before : (b.get(source) ?? null), after: pair ? pair.after : (a.get(source) ?? null) });
  };
  for (const source of [...a.keys()].filter((s) => !b.has(s))) note(source, 'compiled only with the unit');
  for (const source of [...b.keys()].filter((s) => !a.has(s))) note(source, 'no longer compiled with the unit');
  const callsBefore = callsBySource(before.calls);
  const callsAfter = callsBySource(after.calls);
  for (const [source, now] of callsAfter) {
    const then = callsBefore.get(source);
    if (!then) continue;
    const n = Math.min(then.length, now.length);
    const i = [...Array(n).keys()].find((k) => normalised(then[k]!, before.tree) !== normalised(now[k]!, after.tree));
    if (i !== undefined) note(source, then.length > 1 ? `its compile command changes (call ${i + 1} of ${then.length})` : 'its compile command changes', { before: then[i]!, after: now[i]! });
    else if (now.length > then.length) note(source, `compiled ${now.length} times with the unit, ${then.length} before`, { before: null, after: now[n]! });
    else if (now.length < then.length) note(source, `compiled ${now.length} times with the unit, ${then.length} before`, { before: then[n]!, after: null });
  }
  for (const file of touched) if (a.has(file) || b.has(file)) note(file, 'touched');
  const headers = await changedHeaders(before.tree, after.tree);
  const viaAfter = await affectedUnits(after.tree, [...headers.changed, ...headers.added], after.database);
  const viaBefore = await affectedUnits(before.tree, headers.removed, before.database);
  for (const x of [...viaAfter.units, ...viaBefore.units]) if (x.why !== 'touched') note(x.unit.source, x.why);
  return [...found.values()].sort((x, y) => x.source.localeCompare(y.source));
}

export interface ConfigureUnitOptions {
  readonly pkg: string;
  readonly folder: string;
  readonly profile: Profile;
  readonly unitId: string;
  /** The unit's patch texts (mail signatures removed). */
  readonly texts: readonly string[];
  /** The unconfigured sources before the unit (the walk's state at its start) and with it, each with its identity. */
  readonly before: { readonly tree: string; readonly id: string };
  readonly after: { readonly tree: string; readonly id: string };
  readonly cache?: string;
  readonly objectsCache: string;
  readonly scratch: string;
  readonly jobs: number;
  readonly limit: number;
  readonly services?: Services;
  readonly env: Record<string, string>;
  readonly log: (line: string) => void;
}

export interface ConfigureUnitResult {
  readonly verdict: Classified;
  readonly affected: readonly AffectedTu[];
  /** Null where configuring failed. */
  readonly trees: { readonly before: ConfiguredTree; readonly after: ConfiguredTree } | null;
  /** Configure time of both trees (when they were configured, for cached ones). */
  readonly configureSeconds: number;
}

/** The telling line of a failed configure: its first error line, else its last. */
function configureError(error: Error): string {
  return firstError(error.message.split('\n').slice(1).join('\n') || error.message);
}

function withPrefixMap(tu: TranslationUnit, root: string): TranslationUnit {
  return { ...tu, args: [...tu.args, `-ffile-prefix-map=${root}=${commonRoot}`] };
}

/** Measures one build-system unit on its two configured trees. */
export async function measureConfigureUnit(o: ConfigureUnitOptions): Promise<ConfigureUnitResult> {
  const request = (side: { tree: string; id: string }): ConfigureRequest => ({ pkg: o.pkg, folder: o.folder, profile: o.profile, source: side.tree, sourceId: side.id, ...(o.cache ? { cache: o.cache } : {}), log: o.log });
  // Both at once: a configure is mostly one process waiting on compiler probes.
  const [before, after] = await Promise.allSettled([configuredTree(request(o.before)), configuredTree(request(o.after))]);
  const failed = (r: PromiseSettledResult<ConfiguredTree>): Error | null => (r.status === 'rejected' ? (r.reason as Error) : null);
  for (const r of [before, after]) if (r.status === 'rejected' && !(r.reason instanceof UserError)) throw r.reason;
  const fail = (verdict: 'failed' | 'not-measurable', why: string): ConfigureUnitResult => ({ verdict: { verdict, reason: why, reasons: [why], objects: 0, compiled: 0 }, affected: [], trees: null, configureSeconds: 0 });
  const beforeError = failed(before);
  if (beforeError) {
    return fail('not-measurable', `the tree before the unit does not configure (${o.profile.configure?.join(', ') ?? o.profile.how}, from scratch): ${configureError(beforeError)} — no binary exists without the unit to patch`);
  }
  const afterError = failed(after);
  if (afterError) return fail('failed', `configure fails with the unit applied (${o.profile.configure?.join(', ') ?? o.profile.how}, from scratch): ${configureError(afterError)}`);
  const trees = { before: (before as PromiseFulfilledResult<ConfiguredTree>).value, after: (after as PromiseFulfilledResult<ConfiguredTree>).value };
  const configureSeconds = trees.before.seconds + trees.after.seconds;
  const touched = triageAll(o.texts, o.unitId).files.map((f) => f.path);
  const affected = await affectedByConfigure(trees.before, trees.after, touched);
  const result = (verdict: Classified): ConfigureUnitResult => ({ verdict, affected, trees, configureSeconds });
  if (affected.length === 0) {
    const why = `configure output unchanged for compiled units: the ${trees.after.calls.length} compiler calls (${trees.after.database.length} sources) and every header are the same in the trees configured before and after the unit`;
    return result({ verdict: 'no-code', reason: why, reasons: [why, 'link commands are not compared: how objects are linked changes no compiled code'], objects: 0, compiled: 0 });
  }
  if (affected.length > o.limit) {
    const why = `compile-only limit: ${affected.length} translation units are affected (limit ${o.limit}; ${affected[0]!.source}: ${affected[0]!.why})`;
    return result({ verdict: 'failed', reason: why, reasons: [why], objects: 0, compiled: 0 });
  }
  o.log(`  ${affected.length} translation unit(s) affected by configure: ${affected.slice(0, 5).map((a) => `${a.source} (${a.why})`).join(', ')}${affected.length > 5 ? ', …' : ''}`);
  const afterUnits = affected.flatMap((a) => (a.after ? [a.after] : []));
  const beforeUnits = affected.flatMap((a) => (a.after && a.before ? [a.before] : []));
  const removed = affected.filter((a) => !a.after).map((a) => ({ source: a.source, why: a.why }));
  const key = createHash('sha256').update(JSON.stringify([o.texts, trees.before.key, trees.after.key, affected.map((a) => [a.source, a.why])])).digest('hex').slice(0, 16);
  const dir = join(o.objectsCache, `${o.unitId.replace(/[^\w.-]+/g, '_')}-configured-${key}`);
  if (!(await exists(join(dir, '.complete')))) {
    await rm(dir, { recursive: true, force: true });
    const compileSide = async (tree: ConfiguredTree, units: readonly TranslationUnit[], side: 'before' | 'after'): Promise<CompileFailure[]> => {
      // waf: the generated headers these units include, made in their own tree (samba.ts).
      if (o.profile.how === 'waf' && units.length > 0) await generateFor(tree.tree, units.map((u) => u.source), o.log);
      o.log(`  compiling ${units.length} translation unit(s) ${side === 'after' ? 'with the unit, in its configured tree' : 'without it, in the tree configured before it'}`);
      return compileUnits(units.map((u) => withPrefixMap(u, tree.tree)), join(dir, side), o.jobs, o.env);
    };
    const afterFailures = await compileSide(trees.after, afterUnits, 'after');
    const beforeFailures = afterFailures.length > 0 ? [] : await compileSide(trees.before, beforeUnits, 'before');
    if (afterFailures.length > 0 || beforeFailures.length > 0) {
      await rm(dir, { recursive: true, force: true });
      return result(afterFailures.length > 0 ? compileFailed(afterFailures, 'with the patch applied', afterUnits.length) : compileFailed(beforeFailures, 'before the patch', afterUnits.length));
    }
    await writeFile(join(dir, '.complete'), `${new Date().toISOString()}\n`);
  } else o.log(`  ${afterUnits.length} translation unit(s): objects from the cache`);
  const notes = affected.map((a) => `${a.source}: ${a.why}`);
  const verdict = await judgeCompiled({ id: o.unitId, units: afterUnits, dir, scratch: o.scratch, notes: [], lastNotes: notes, removed, texts: o.texts, touched, ...(o.services ? { services: o.services } : {}) });
  return result(verdict);
}
