/**
 * `wfbuild corpus` for the packages with a compile-only profile (prepare.ts): one configured
 * tree per package, the series walked backwards (walk.ts), each unit's result cached under its
 * key like the full pipeline's, so a rerun is resumable unit by unit.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { newestResultFor } from '../keys.ts';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from '../../paths.ts';
import { UserError } from '../../cli/errors.ts';
import { copyTree } from '../../common/fs.ts';
import { alive } from '../../common/lock.ts';
import { parseSeries } from '../series.ts';
import { treeAt, withoutMailSignature } from '../tree.ts';
import type { Manifest } from '../manifest.ts';
import type { CorpusUnit } from '../units.ts';
import type { UnitResult } from '../results.ts';
import { rebase } from './database.ts';
import { prepare, profiles, type Prepared, type Profile } from './prepare.ts';
import { generateFor } from './samba.ts';
import { affectedUnits } from './affected.ts';
import { copiedTrees } from '../../common/copied-trees.ts';
import { confirmOnBase } from './confirm-base.ts';
import { confirmVerdict } from '../confirm.ts';
import type { OriginalBuild } from '../../stages/context.ts';
import { triageAll, verdictWithoutCompiling, walkSeries, type Measured, type WalkUnit, type WalkVerdict } from './walk.ts';
import { SeriesBinaries } from './relink.ts';
import { BuiltCopyBinaries, makeStrategy, wafStrategy, type LinkStrategy } from './built-copy.ts';
import type { SeriesEntry } from '../series.ts';
import { writeAtomic } from '../../common/fs.ts';
import { unitTreeMethod } from '../unit-tree-build.ts';
import { measureConfigureUnit } from './configure-unit.ts';
import { versionWithoutEpoch } from '../debversion.ts';

export { profiles } from './prepare.ts';

/** Most translation units one unit compiles (twice) before it is reported as over the limit. */
export const defaultLimit = 120;

export interface CompileOnlyOptions {
  readonly jobs: number;
  /** --tu-limit; undefined: the profile's, else defaultLimit. */
  readonly limit: number | undefined;
  readonly tools: object;
  readonly cacheDir: string;
  readonly log: (line: string) => void;
  readonly keyOf: (unit: CorpusUnit, mode: string) => string;
  /** Sources and build dependencies present (called once, only when something is compiled). */
  readonly ensurePrerequisites: () => Promise<void>;
  /** The profile (default: the package's in prepare.ts; tests give memcached one). */
  readonly profile?: Profile;
  /**
   * For a unit this mode cannot measure (a build-system change): the full pipeline's verdict,
   * where the package is cheap enough to build per unit (build-log profiles); null: none.
   */
  readonly fallback?: (unit: CorpusUnit, why: string) => Promise<WalkVerdict | null>;
  /** Write nothing new: uncached units come back as pending (or an earlier tools' result). */
  readonly noBuilds: boolean;
  /**
   * What decides a unit's verdict besides the tools (unitKey with tools: null): written into
   * each result, so a reporting run finds it after the tools moved (earlierResult).
   */
  readonly inputsOf?: (unit: CorpusUnit) => string;
  /** --units: only these units may compile; the others are reported as with noBuilds. */
  readonly only?: ReadonlySet<string>;
  /**
   * For a bookworm-update unit: the update base's build (the binary users run), its unbuilt
   * tree and the unit as one patch file, to confirm a kpatch-able verdict against that binary
   * (confirm-base.ts); null: none (series-walk units, profiles without a wrapper build).
   */
  readonly updateBase?: (unit: CorpusUnit) => Promise<{ base: OriginalBuild; pristine: string; patchFile: string } | null>;
}

export interface CompileOnlyResults {
  readonly units: UnitResult[];
  /** Preparation (configure or original build) time, when this run prepared. */
  readonly prepareSeconds: number;
}

/** The mode's own sources: part of its result keys, so a change to how it classifies redoes its units (and only its). */
async function sourcesFingerprint(): Promise<string> {
  const dir = fileURLToPath(new URL('.', import.meta.url));
  const hash = createHash('sha256');
  for (const name of (await readdir(dir)).filter((n) => n.endsWith('.ts')).sort()) hash.update(name).update('\0').update(await readFile(join(dir, name)));
  return hash.digest('hex').slice(0, 12);
}

/** Compiled objects per unit, kept between runs. */
function objectsCacheOf(manifest: Manifest, profile: Profile): string {
  return join(cacheRoot, 'corpus', 'objects', `${manifest.package}_${manifest.baseVersion.replace(/:/g, '_')}`, profile.name);
}

/** What treeAt(manifest, applied) holds: the base source and the series patches applied (a configured tree's cache key). */
async function sourceId(manifest: Manifest, applied: number): Promise<string> {
  const tree = await treeAt(manifest, applied);
  const series = parseSeries(await readFile(join(tree, 'debian', 'patches', 'series'), 'utf8')).slice(0, applied);
  const hash = createHash('sha256').update(`${manifest.package}\0${manifest.baseVersion}\0${manifest.baseDscSha256}\0`);
  for (const entry of series) hash.update(`${entry.path}\0${entry.strip}\0`).update(await readFile(join(tree, 'debian', 'patches', entry.path))).update('\0');
  return hash.digest('hex');
}

/**
 * A unit configure-unit.ts measures: it changes a build-system file. Generator inputs (.y, .l)
 * are not re-generated there, so a unit with one keeps its failed verdict.
 */
function measuredByConfiguring(texts: readonly string[], id: string): boolean {
  const files = triageAll(texts, id).files;
  return files.some((f) => f.kind === 'build-system') && !files.some((f) => /\.(y|l|ypp|ll)$/.test(f.path));
}

/** How the kept built copy links for a configure-only profile (built-copy.ts); null: it does not (cmake: mariadb's build is kept out of reach). */
export function linkStrategyOf(profile: Profile): LinkStrategy | null {
  if (profile.how === 'waf') return wafStrategy;
  if (profile.how === 'make-dry-run') return makeStrategy(profile.path ?? '.', profile.makeArgs ?? []);
  return null;
}

export function modeOf(profile: Profile, fingerprint: string): string {
  return `compile-only ${profile.name} ${fingerprint}`;
}

/** Removes walk copies left by killed runs. */
async function sweepWalks(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const pid = Number(/-(\d+)(\.[\w.]+)?$/.exec(name)?.[1] ?? 0);
    if (pid > 0 && pid !== process.pid && !alive(pid)) await rm(join(root, name), { recursive: true, force: true });
  }
}

export async function classifyCompileOnly(manifest: Manifest, selected: readonly CorpusUnit[], opts: CompileOnlyOptions): Promise<CompileOnlyResults> {
  const profile = opts.profile ?? profiles[manifest.package];
  if (!profile) throw new Error(`${manifest.package}: no compile-only profile`);
  const mode = modeOf(profile, await sourcesFingerprint());
  const results = new Map<string, UnitResult>();
  const todo: CorpusUnit[] = [];
  // Units the full pipeline classified (fallback) do not depend on this mode's sources.
  const fallbackMode = `full-pipeline fallback ${profile.name}; ${unitTreeMethod}`;
  for (const unit of selected) {
    const text =
      (await readFile(join(opts.cacheDir, `${opts.keyOf(unit, mode)}.json`), 'utf8').catch(() => undefined)) ??
      (await readFile(join(opts.cacheDir, `${opts.keyOf(unit, fallbackMode)}.json`), 'utf8').catch(() => undefined));
    if (text !== undefined) {
      const cached = JSON.parse(text) as UnitResult;
      opts.log(`${manifest.package} ${unit.id}: ${cached.verdict} (cached)`);
      // The time it took when it was classified: the table reports what each package costs.
      results.set(unit.id, { ...cached, views: unit.views, cves: unit.cves });
    } else todo.push(unit);
  }
  const resultFor = (unit: CorpusUnit, v: WalkVerdict): UnitResult => ({
    package: manifest.package,
    unit: unit.id,
    cves: unit.cves,
    views: unit.views,
    base: 'series-prefix',
    appliedAt: unit.start,
    verdict: v.verdict,
    reason: v.reason,
    reasons: v.reasons,
    objects: v.objects,
    ...(v.liveWithNewData !== undefined ? { liveWithNewData: v.liveWithNewData } : {}),
    ...(v.perBinary !== undefined ? { perBinary: v.perBinary } : {}),
    ...(v.confirmation !== undefined ? { confirmation: v.confirmation } : {}),
    seconds: v.seconds,
    key: opts.keyOf(unit, mode),
    ...(opts.inputsOf ? { inputs: opts.inputsOf(unit) } : {}),
    mode: `compile-only (${profile.how}; ${v.compiled} translation units compiled twice${v.checkedOn ? `; ${v.checkedOn}` : ''})`,
  });
  let prepareSeconds = 0;
  let prerequisites: Promise<void> | null = null;
  const ready = (): Promise<void> => (prerequisites ??= opts.ensurePrerequisites());
  // Units that need no compiling are classified from their text alone: no tree, no configure.
  if (todo.length > 0) {
    const patches = join(await treeAt(manifest, 0, opts.log), 'debian', 'patches');
    for (const unit of [...todo]) {
      const started = performance.now();
      const texts = (await Promise.all(unit.patches.map((p) => readFile(join(patches, p), 'utf8')))).map(withoutMailSignature);
      let quick: ReturnType<typeof verdictWithoutCompiling>;
      try {
        quick = verdictWithoutCompiling(texts, unit.id, profile.embedded);
      } catch (error) {
        // A patch triage cannot read (malformed, a binary diff) is a failed unit, with triage's reason.
        if (!(error instanceof UserError)) throw error;
        quick = { verdict: 'failed', reason: `triage: ${(error as Error).message.split('\n')[0]}`, reasons: [], objects: 0, compiled: 0 };
      }
      if (!quick) continue;
      let verdict: WalkVerdict = { ...quick, seconds: Math.round((performance.now() - started) / 100) / 10 };
      let how = '';
      let configured = false;
      if (quick.verdict === 'failed' && profile.how === 'build-log' && opts.fallback && !opts.noBuilds) {
        opts.log(`${manifest.package} ${unit.id}: ${quick.reason.slice(0, 120)} — the full pipeline instead`);
        const full = await opts.fallback(unit, quick.reason);
        if (full) {
          verdict = { ...full, seconds: Math.round((performance.now() - started) / 100) / 10 };
          how = "full pipeline (a build-system change: the unit's tree configured and built from scratch, its objects compared with the base tree's build)";
        }
      } else if (quick.verdict === 'failed' && opts.noBuilds) continue;
      else if (quick.verdict === 'failed' && profile.how !== 'build-log' && measuredByConfiguring(texts, unit.id)) {
        opts.log(`${manifest.package} ${unit.id}: a build-system change — the trees before and after it configured from scratch`);
        await ready();
        configured = true;
        const m = await measureConfigureUnit({
          pkg: manifest.package,
          folder: `${manifest.package}_${versionWithoutEpoch(manifest.baseVersion)}`,
          profile,
          unitId: unit.id,
          texts,
          before: { tree: await treeAt(manifest, unit.start, opts.log), id: await sourceId(manifest, unit.start) },
          after: { tree: await treeAt(manifest, unit.start + unit.patches.length, opts.log), id: await sourceId(manifest, unit.start + unit.patches.length) },
          objectsCache: objectsCacheOf(manifest, profile),
          scratch: join(cacheRoot, 'corpus', 'walk', `${manifest.package}-${process.pid}.configure`),
          jobs: opts.jobs,
          limit: opts.limit ?? profile.limit ?? defaultLimit,
          ...(manifest.services ? { services: manifest.services } : {}),
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          log: (line) => opts.log(`${manifest.package} ${line}`),
        });
        await rm(join(cacheRoot, 'corpus', 'walk', `${manifest.package}-${process.pid}.configure`), { recursive: true, force: true });
        const { measured: _measured, ...v } = m.verdict;
        // Configuring is this unit's cost, whether it happened now or in an earlier run; the two
        // configures run at once, so the longer one counts.
        const sides = m.trees ? [m.trees.before, m.trees.after] : [];
        const longest = (cached: boolean): number => Math.max(0, ...sides.filter((t) => t.cached === cached).map((t) => t.seconds));
        const elapsed = (performance.now() - started) / 1000 + Math.max(0, longest(true) - longest(false));
        verdict = { ...v, seconds: Math.round(elapsed * 10) / 10 };
        how = `compile-only (${profile.how}; a build-system unit: the trees before and after it configured from scratch${m.trees ? ` (configured trees ${m.trees.before.key}, ${m.trees.after.key}${m.trees.before.cached && m.trees.after.cached ? ', cached' : ''}; configure ${Math.round(m.trees.before.seconds)} s and ${Math.round(m.trees.after.seconds)} s, run at once)` : ''}; ${v.compiled} translation units compiled, each in its own tree)`;
      }
      const result = { ...resultFor(unit, verdict), ...(how && !configured ? { mode: how, key: opts.keyOf(unit, fallbackMode) } : how ? { mode: how } : {}) };
      await writeAtomic(join(opts.cacheDir, `${result.key}.json`), JSON.stringify(result, null, 2) + '\n');
      opts.log(`${manifest.package} ${unit.id}: ${result.verdict} — ${result.reason.slice(0, 200)}`);
      results.set(unit.id, result);
      todo.splice(todo.indexOf(unit), 1);
    }
  }
  const reportOnly = opts.noBuilds ? [...todo] : todo.filter((u) => opts.only && !opts.only.has(u.id));
  for (const unit of reportOnly) todo.splice(todo.indexOf(unit), 1);
  if (reportOnly.length > 0) {
    for (const unit of reportOnly) {
      // Tools move while long runs go on (this mode's sources are part of the key): a reporting
      // run takes the newest result for the same unit at the same place, flagged as such.
      const inputs = opts.inputsOf?.(unit);
      const older = inputs === undefined ? undefined : await newestResultFor(opts.cacheDir, unit.id, [inputs], unit.start);
      if (older) {
        opts.log(`${manifest.package} ${unit.id}: ${older.verdict} (cached, earlier tools)`);
        results.set(unit.id, { ...older, views: unit.views, cves: unit.cves, earlierTools: true });
      } else results.set(unit.id, { ...resultFor(unit, { verdict: 'pending', reason: 'not classified yet', reasons: [], objects: 0, compiled: 0, seconds: 0 }) });
    }
  }
  if (todo.length > 0) {
    await ready();
    const full = await treeAt(manifest, manifest.seriesLength, opts.log);
    const prepared: Prepared = await prepare(manifest, profile, full, opts.log);
    if (!prepared.cached) {
      prepareSeconds = prepared.seconds;
      await writeAtomic(join(opts.cacheDir, `prepare-${profile.name}.json`), JSON.stringify({ seconds: prepared.seconds, units: prepared.database.length }) + '\n');
    }
    if (profile.how === 'waf') {
      // Generated headers for every unit's affected sources, judged on the whole series (the
      // walk's copy then has them for the states before too).
      const patches = join(prepared.tree, 'debian', 'patches');
      const sources = new Set<string>();
      for (const unit of todo) {
        const texts = (await Promise.all(unit.patches.map((p) => readFile(join(patches, p), 'utf8')))).map(withoutMailSignature);
        const files = triageAll(texts, unit.id).files.filter((f) => f.change !== 'deleted').map((f) => f.path);
        const affected = await affectedUnits(prepared.tree, files, prepared.database);
        if (affected.units.length <= (opts.limit ?? profile.limit ?? defaultLimit)) for (const a of affected.units) sources.add(a.unit.source);
      }
      // waf runs only in the configured tree itself, so before the walk copies it (samba.ts).
      if (sources.size > 0) await generateFor(prepared.tree, [...sources].sort(), opts.log);
    }
    // Copies of the sources the build compiles instead of them (copies.ts).
    const copies = await copiedTrees(prepared.tree, full, prepared.database.map((u) => u.source));
    if (copies.length > 0) opts.log(`${manifest.package}: the build compiles copies of the sources in ${copies.join(', ')}; the walk keeps them in step`);
    const walkRoot = join(cacheRoot, 'corpus', 'walk');
    await mkdir(walkRoot, { recursive: true });
    await sweepWalks(walkRoot);
    const copy = join(walkRoot, `${manifest.package}-${process.pid}`);
    const byId = new Map(todo.map((u) => [u.id, u]));
    type Walked = Omit<WalkVerdict, 'seconds'>;
    /** A kpatch-able update unit measured again on the update base's build, its bundles dry-run there; null: no update base. */
    const onUpdateBase = async (unit: CorpusUnit, v: Walked, texts: readonly string[]): Promise<Walked | null> => {
      const at = opts.updateBase ? await opts.updateBase(unit) : null;
      if (!at) return null;
      const touched = triageAll(texts, unit.id).files.map((f) => f.path);
      const outcome = await confirmOnBase({
        ...at,
        touched,
        ...(manifest.services ? { services: manifest.services } : {}),
        work: join(walkRoot, `${manifest.package}-${process.pid}.confirm`),
        jobs: opts.jobs,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
      opts.log(`${manifest.package} ${unit.id}: on the update base: ${outcome.kind === 'checked' ? outcome.checks.map((c) => `${c.binary} ${c.ok ? 'ok' : c.line}`).join('; ') : outcome.why}`);
      const checkedOn = 'checked on the update base build';
      if (outcome.kind === 'checked') return { ...confirmVerdict(v, outcome.checks), checkedOn };
      return { ...v, checkedOn, confirmation: { confirmed: false, binaries: [], how: outcome.why } };
    };
    // Every other kpatch-able unit of a wrapper build: against the binaries of the series before it (relink.ts).
    // Configure-only profiles: against the long-running files linked for the unit in a kept built copy (built-copy.ts).
    const binariesLog = (line: string): void => opts.log(`${manifest.package} ${line}`);
    const binaries = prepared.original
      ? new SeriesBinaries({ original: prepared.original, walkTree: copy, work: join(walkRoot, `${manifest.package}-${process.pid}.bins`), ...(manifest.services ? { services: manifest.services } : {}), log: binariesLog })
      : linkStrategyOf(profile)
        ? new BuiltCopyBinaries({ strategy: linkStrategyOf(profile)!, configured: prepared.tree, walkTree: copy, database: prepared.database, built: join(dirname(prepared.tree), 'built'), work: join(walkRoot, `${manifest.package}-${process.pid}.bins`), jobs: opts.jobs, ...(manifest.services ? { services: manifest.services } : {}), log: binariesLog })
        : null;
    const confirmUnit = async (w: WalkUnit, v: Walked, measured: Measured): Promise<Walked> => {
      const unit = byId.get(w.id)!;
      const base = await onUpdateBase(unit, v, measured.texts);
      if (base) return base;
      return binaries ? binaries.confirmVerdict(unit.id, v, measured) : v;
    };
    await rm(copy, { recursive: true, force: true });
    opts.log(`${manifest.package}: copying the prepared tree for the walk`);
    await copyTree(prepared.tree, copy);
    try {
      const series = parseSeries(await readFile(join(copy, 'debian', 'patches', 'series'), 'utf8'));
      await walkSeries({
        tree: copy,
        series,
        database: prepared.database.map((u) => rebase(u, prepared.tree, copy)),
        units: todo.map((u): WalkUnit => ({ id: u.id, start: u.start, count: u.patches.length })),
        scratch: join(walkRoot, `${manifest.package}-${process.pid}.scratch`),
        objectsCache: objectsCacheOf(manifest, profile),
        jobs: opts.jobs,
        limit: opts.limit ?? profile.limit ?? defaultLimit,
        ...(profile.embedded ? { embedded: profile.embedded } : {}),
        ...(manifest.services ? { services: manifest.services } : {}),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        copies,
        log: (line) => opts.log(`${manifest.package} ${line}`),
        ...(binaries ? { undone: (entry: SeriesEntry, files: readonly string[]) => binaries.undone(entry.path, files) } : {}),
        confirm: confirmUnit,
        done: async (w, v) => {
          const unit = byId.get(w.id)!;
          const result = resultFor(unit, v);
          await writeAtomic(join(opts.cacheDir, `${result.key}.json`), JSON.stringify(result, null, 2) + '\n');
          opts.log(`${manifest.package} ${unit.id}: ${result.verdict}${result.reason ? ` — ${result.reason.slice(0, 200)}` : ''} (${result.seconds} s)`);
          results.set(unit.id, result);
        },
      });
    } finally {
      await rm(copy, { recursive: true, force: true });
      await rm(join(walkRoot, `${manifest.package}-${process.pid}.scratch`), { recursive: true, force: true });
      await binaries?.close();
    }
  }
  if (prepareSeconds === 0) {
    // Prepared in an earlier run: its measured time still belongs to the package's cost.
    const stored = JSON.parse(await readFile(join(opts.cacheDir, `prepare-${profile.name}.json`), 'utf8').catch(() => '{}')) as { seconds?: number };
    prepareSeconds = stored.seconds ?? 0;
  }
  return { units: selected.map((u) => results.get(u.id)!), prepareSeconds };
}
