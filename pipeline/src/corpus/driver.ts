/**
 * `wfbuild corpus`: classifies every selected unit of the manifests with the pipeline, caches
 * each unit's result under its input hash (resumable), and writes corpus/results/bookworm.{json,md}.
 */
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, repoRoot } from '../paths.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { intOption } from '../cli/options.ts';
import { tail } from '../common/text.ts';
import { createDiffObjectPath } from '../stages/create-diff-object.ts';
import { patchApplies } from '../stages/apply-patch.ts';
import { parsePackages } from './command.ts';
import { readManifest, type Manifest } from './manifest.ts';
import { dscPath, ensureSources, treeAt, treeWithout, unitPatchFile, withoutMailSignature } from './tree.ts';
import { classifyUnit } from './classify-unit.ts';
import { triagePatch } from '../triage/index.ts';
import { packageRow, ratios, totalRow, type PackageRow, type UnitResult } from './results.ts';
import { renderReport } from './table.ts';
import type { CorpusUnit } from './units.ts';
import { classifyCompileOnly, profiles } from './compile-only/index.ts';
import { exists, writeAtomic } from '../common/fs.ts';

/** Bump when the driver's way of classifying a unit changes (invalidates cached results). */
const driverVersion = 2;
export const resultsCache: string = join(cacheRoot, 'corpus', 'results');
export const defaultResultsDir: string = join(repoRoot, 'corpus', 'results');

export type View = 'corpus' | 'update' | 'series';

/** The PATH package builds run with (Debian's, without /usr/local and user shims). */
export const debianPath = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Which units a run classifies (corpus/README.md): 'series' — every unit of the series walk;
 * 'update' — the units a bookworm update added; 'corpus' (default) — the update units where the
 * package has any, else its series walk (Debian took a new upstream release, or no update).
 */
export function selectUnits(manifest: Manifest, view: View): CorpusUnit[] {
  const update = manifest.units.filter((u) => u.views.includes('update'));
  if (view === 'series') return [...manifest.units];
  if (view === 'update') return update;
  return update.length > 0 ? update : [...manifest.units];
}

/**
 * Where a unit is applied. Series walk: on top of every patch before it. Update view: every
 * update unit on the same base (the tree before the first update unit — the version users run),
 * as if each fix had arrived alone, so the package needs one original build; a unit that does
 * not apply alone there falls back to its series position (the caller checks).
 */
export function preferredBase(unit: CorpusUnit, selected: readonly CorpusUnit[], usesUpdateView: boolean): number {
  if (!usesUpdateView) return unit.start;
  return Math.min(...selected.map((u) => u.start));
}

/** Hash of what decides a unit's verdict besides its own patch: the tools that classify it. */
async function toolsFingerprint(): Promise<{ createDiffObject: string; pipeline: string }> {
  const hashFile = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
  const createDiffObject = await hashFile(createDiffObjectPath).catch(() => 'missing');
  const pipeline = createHash('sha256');
  for (const dir of ['stages', 'triage', 'wrapper', 'report', 'bundle']) {
    const root = join(repoRoot, 'pipeline', 'src', dir);
    const files = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const f of files.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()) {
      pipeline.update(relative(repoRoot, f)).update('\0').update(await readFile(f));
    }
  }
  return { createDiffObject: createDiffObject.slice(0, 16), pipeline: pipeline.digest('hex').slice(0, 16) };
}

/** A base tree a unit can be applied to (see corpus/README.md, "Where a unit is applied"). */
export type Placement = { kind: 'series-prefix'; at: number } | { kind: 'series-without-unit' };

/**
 * The bases to try, in order: the preferred one (shared base in the update view, the unit's
 * series position otherwise), then its series position, then last on the whole series without
 * it — for a unit before a patch Debian's build needs (apache2's layout comes from
 * fhs_compliance.patch, so no tree before it builds).
 */
export function placementsFor(unit: CorpusUnit, preferred: number, seriesLength: number): Placement[] {
  const list: Placement[] = [{ kind: 'series-prefix', at: preferred }];
  if (preferred !== unit.start) list.push({ kind: 'series-prefix', at: unit.start });
  if (unit.start + unit.patches.length < seriesLength) list.push({ kind: 'series-without-unit' });
  return list;
}

function describePlacement(p: Placement): string {
  return p.kind === 'series-prefix' ? `applied after ${p.at} series patches` : 'applied last, on the whole series without it';
}

function failedResult(pkg: string, unit: CorpusUnit, placement: Placement, key: string, reason: string, seconds: number): UnitResult {
  return {
    package: pkg, unit: unit.id, cves: unit.cves, views: unit.views, base: placement.kind,
    appliedAt: placement.kind === 'series-prefix' ? placement.at : -1,
    verdict: 'failed', reason, reasons: [reason], objects: 0, seconds, key,
  };
}

/**
 * Whether classifying the unit builds the package: triage finds a compiled file. nodejs also
 * compiles its JavaScript library (lib/ *.js files, via js2c into the binary), which triage counts
 * as not compiled, so there a lib/ change needs the build too.
 */
async function needsBuild(manifest: Manifest, unit: CorpusUnit): Promise<boolean> {
  const tree = await treeAt(manifest, unit.start);
  const text = (await Promise.all(unit.patches.map((p) => readFile(join(tree, 'debian', 'patches', p), 'utf8')))).map(withoutMailSignature).join('');
  try {
    if (triagePatch(text, unit.id).touchesCompiledCode) return true;
  } catch {
    return true; // triage cannot read it: the full pipeline run will say why (a failed unit)
  }
  return manifest.package === 'nodejs' && /^\+\+\+ (b\/)?lib\/.*\.js/m.test(text);
}

/** The newest cached result of a unit with one of these input hashes (any tool versions). */
async function newestResultFor(cacheDir: string, unitId: string, inputs: readonly string[]): Promise<UnitResult | undefined> {
  let best: { result: UnitResult; mtime: number } | undefined;
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    const path = join(cacheDir, name);
    const result = JSON.parse(await readFile(path, 'utf8').catch(() => 'null')) as UnitResult | null;
    if (!result || result.unit !== unitId || result.verdict === 'pending') continue;
    // Results written before 'inputs' existed are taken only from driver version 2 (they
    // have 'base'); version 1 placed units differently.
    if (result.inputs === undefined ? result.base === undefined : !inputs.includes(result.inputs)) continue;
    const mtime = (await stat(path)).mtimeMs;
    if (!best || mtime > best.mtime) best = { result, mtime };
  }
  return best?.result;
}

export function unitKey(parts: { manifest: Manifest; unit: CorpusUnit; appliedAt: number; buildCmd: string | null; tools: object | null }): string {
  return createHash('sha256')
    .update(JSON.stringify([driverVersion, parts.manifest.package, parts.manifest.baseVersion, parts.manifest.baseDscSha256, parts.unit.sha256, parts.appliedAt, parts.buildCmd, parts.tools]))
    .digest('hex')
    .slice(0, 32);
}



/** The base version's sources in the cache (downloaded again if the cache was emptied). */
/** Installs the package's build dependencies when dpkg-checkbuilddeps says some are missing. */
async function ensureBuildDeps(manifest: Manifest, tree: string, log: (line: string) => void): Promise<void> {
  const check = await execa('dpkg-checkbuilddeps', ['-B'], { cwd: tree, reject: false, all: true });
  if (check.exitCode === 0) return;
  log(`${manifest.package}: installing build dependencies (apt-get build-dep)`);
  const result = await execa('apt-get', ['build-dep', '-y', '-q', '--arch-only', dscPath(manifest)], { env: { DEBIAN_FRONTEND: 'noninteractive' }, reject: false, all: true });
  if (result.exitCode !== 0) throw new UserError(`apt-get build-dep ${manifest.package} failed:\n${tail(result.all ?? '', 10)}`, ExitCode.missingPrerequisite);
}

/** Does the unit apply at this tree? (stages/apply-patch.ts: applied for real to a copy of the files it touches) */
export async function appliesAt(tree: string, patchFile: string): Promise<boolean> {
  return (await patchApplies(tree, patchFile, join(tmpdir(), 'wfpatch-corpus-apply'))).ok;
}

export interface PackageResults {
  readonly package: string;
  readonly baseVersion: string;
  readonly update: Manifest['update'];
  readonly view: View;
  readonly usesUpdateView: boolean;
  /** Classified in compile-only mode (units in series order, object-level verdicts). */
  readonly compileOnly?: boolean;
  readonly units: UnitResult[];
  readonly row: PackageRow;
}

export interface RunOptions {
  readonly packages: readonly string[];
  readonly jobs: number;
  readonly view: View;
  readonly outDir: string;
  /**
   * Run no package build: units without a cached result are classified only when they need no
   * build (triage finds no compiled file); the rest are reported as pending.
   */
  readonly noBuilds: boolean;
  /** Classify every package with the full pipeline (a build per unit), not compile-only. */
  readonly fullBuilds: boolean;
  /** Compile-only mode: most translation units one unit may compile (undefined: per package). */
  readonly limit: number | undefined;
  readonly log: (line: string) => void;
}

export async function classifyPackage(pkg: string, opts: RunOptions, tools: object): Promise<PackageResults> {
  const manifest = await readManifest(pkg);
  const selected = selectUnits(manifest, opts.view);
  const usesUpdateView = opts.view !== 'series' && selected.some((u) => u.views.includes('update'));
  const buildCmd = opts.jobs === 2 ? null : `DEB_BUILD_OPTIONS='nocheck nostrip parallel=${opts.jobs}' debian/rules build`;
  const cacheDir = join(resultsCache, pkg);
  await mkdir(cacheDir, { recursive: true });
  if (profiles[pkg] && !opts.fullBuilds) {
    // Compile-only mode (corpus/README.md): units in series order on one configured tree.
    const out = await classifyCompileOnly(manifest, selected, {
      jobs: opts.jobs,
      limit: opts.limit,
      tools,
      cacheDir,
      log: opts.log,
      noBuilds: opts.noBuilds,
      keyOf: (unit, mode) => unitKey({ manifest, unit, appliedAt: unit.start, buildCmd: mode, tools }),
      ensurePrerequisites: async () => {
        await ensureSources(manifest);
        await ensureBuildDeps(manifest, await treeAt(manifest, 0, opts.log), opts.log);
      },
      fallback: async (unit) => {
        await ensureSources(manifest);
        await ensureBuildDeps(manifest, await treeAt(manifest, 0, opts.log), opts.log);
        const patchFile = await unitPatchFile(manifest, unit, await treeAt(manifest, unit.start, opts.log), join(cacheRoot, 'corpus', 'patches', pkg));
        // As the full pipeline's series walk: the tree before the unit, else (it does not
        // build without a later patch) the whole series without the unit.
        const placements = placementsFor(unit, unit.start, manifest.seriesLength);
        let cls: Awaited<ReturnType<typeof classifyUnit>> | undefined;
        for (const [n, placement] of placements.entries()) {
          let tree: string;
          try {
            tree = placement.kind === 'series-prefix' ? await treeAt(manifest, placement.at, opts.log) : await treeWithout(manifest, unit, opts.log);
          } catch (error) {
            if (error instanceof UserError) continue;
            throw error;
          }
          cls = await classifyUnit({ patchFile, tree, buildCmd });
          const originalFailed = cls.verdict === 'failed' && /^original build .* failed/.test(cls.reason);
          if (!originalFailed || n === placements.length - 1) break;
          opts.log(`${pkg} ${unit.id}: the tree before it does not build; trying ${describePlacement(placements[n + 1]!)}`);
        }
        if (!cls) return null;
        return { verdict: cls.verdict, reason: cls.reason, reasons: cls.reasons, objects: cls.objects, compiled: 0, seconds: 0 };
      },
    });
    const seconds = out.units.reduce((sum, u) => sum + u.seconds, 0) + out.prepareSeconds;
    return { package: pkg, baseVersion: manifest.baseVersion, update: manifest.update, view: opts.view, usesUpdateView, compileOnly: true, units: out.units, row: packageRow(pkg, manifest.baseVersion, out.units, seconds) };
  }
  let prepared = false;
  const units: UnitResult[] = [];
  for (const [i, unit] of selected.entries()) {
    const label = `${pkg} [${i + 1}/${selected.length}] ${unit.id}`;
    const placements = placementsFor(unit, preferredBase(unit, selected, usesUpdateView), manifest.seriesLength);
    const keyOf = (p: Placement) => unitKey({ manifest, unit, appliedAt: p.kind === 'series-prefix' ? p.at : -1, buildCmd, tools });
    // A finished unit costs nothing, not even a tree: look for any placement's result first.
    let cached: UnitResult | undefined;
    for (const placement of placements) {
      const text = await readFile(join(cacheDir, `${keyOf(placement)}.json`), 'utf8').catch(() => undefined);
      if (text !== undefined) {
        cached = JSON.parse(text) as UnitResult;
        break;
      }
    }
    if (cached) {
      opts.log(`${label}: ${cached.verdict} (cached)`);
      units.push({ ...cached, views: unit.views, cves: unit.cves });
      continue;
    }
    if (opts.noBuilds && (await needsBuild(manifest, unit))) {
      // Tools move while a long run goes on (the pipeline's sources are part of the key): a
      // reporting run takes the newest result for the same unit and patch, flagged as such.
      const inputs = placements.map((p) => unitKey({ manifest, unit, appliedAt: p.kind === 'series-prefix' ? p.at : -1, buildCmd, tools: null }));
      const older = await newestResultFor(cacheDir, unit.id, inputs);
      if (older) {
        opts.log(`${label}: ${older.verdict} (cached, earlier tools)`);
        units.push({ ...older, views: unit.views, cves: unit.cves, earlierTools: true });
        continue;
      }
      opts.log(`${label}: pending (no cached result; --no-builds)`);
      units.push({ ...failedResult(pkg, unit, placements[0]!, keyOf(placements[0]!), 'not classified yet', 0), verdict: 'pending' });
      continue;
    }
    if (!prepared) {
      await ensureSources(manifest);
      await ensureBuildDeps(manifest, await treeAt(manifest, 0, opts.log), opts.log);
      prepared = true;
    }
    const patchDir = join(cacheRoot, 'corpus', 'patches', pkg);
    const patchFile = await unitPatchFile(manifest, unit, await treeAt(manifest, unit.start, opts.log), patchDir);
    let result: UnitResult | undefined;
    let seconds = 0;
    for (const [n, placement] of placements.entries()) {
      const last = n === placements.length - 1;
      let tree: string;
      try {
        tree = placement.kind === 'series-prefix' ? await treeAt(manifest, placement.at, opts.log) : await treeWithout(manifest, unit, opts.log);
      } catch (error) {
        // The series without this unit does not apply (a later patch needs it): no such base.
        if (error instanceof UserError && !last) continue;
        if (error instanceof UserError) {
          result = failedResult(pkg, unit, placement, keyOf(placement), `no base tree: ${error.message.split('\n')[0]}`, seconds);
          break;
        }
        throw error;
      }
      if (placement.kind === 'series-prefix' && placement.at !== unit.start && !(await appliesAt(tree, patchFile))) {
        opts.log(`${label}: does not apply alone after ${placement.at} series patches; trying the next base`);
        continue;
      }
      opts.log(`${label}: classifying (${describePlacement(placement)})`);
      const started = performance.now();
      const cls = await classifyUnit({ patchFile, tree, buildCmd });
      seconds += Math.round((performance.now() - started) / 100) / 10;
      const originalFailed = cls.verdict === 'failed' && /^original build .* failed/.test(cls.reason);
      if (originalFailed && !last) {
        opts.log(`${label}: ${cls.reason.slice(0, 200)}; the tree before this unit does not build, trying the next base`);
        continue;
      }
      result = {
        package: pkg,
        unit: unit.id,
        cves: unit.cves,
        views: unit.views,
        base: placement.kind,
        appliedAt: placement.kind === 'series-prefix' ? placement.at : manifest.seriesLength - unit.patches.length,
        verdict: cls.verdict,
        reason: cls.reason,
        reasons: cls.reasons,
        objects: cls.objects,
        seconds,
        key: keyOf(placement),
        inputs: unitKey({ manifest, unit, appliedAt: placement.kind === 'series-prefix' ? placement.at : -1, buildCmd, tools: null }),
      };
      break;
    }
    if (!result) result = failedResult(pkg, unit, placements[placements.length - 1]!, keyOf(placements[placements.length - 1]!), 'applies at no base tried', seconds);
    await writeAtomic(join(cacheDir, `${result.key}.json`), JSON.stringify(result, null, 2) + '\n');
    opts.log(`${label}: ${result.verdict}${result.reason ? ` — ${result.reason.slice(0, 200)}` : ''} (${result.seconds} s)`);
    units.push(result);
  }
  const seconds = units.reduce((sum, u) => sum + u.seconds, 0);
  return { package: pkg, baseVersion: manifest.baseVersion, update: manifest.update, view: opts.view, usesUpdateView, units, row: packageRow(pkg, manifest.baseVersion, units, seconds) };
}

export interface ResultsFile {
  readonly schema: 1;
  readonly distribution: 'bookworm';
  readonly view: View;
  readonly generatedAt: string;
  readonly tools: object;
  readonly packages: PackageResults[];
  readonly total: { row: PackageRow; ratios: ReturnType<typeof ratios> };
}

/** Results of packages not run now are kept from the previous file when it used the same view. */
export function mergeResults(previous: ResultsFile | undefined, fresh: readonly PackageResults[], order: readonly string[], view: View): PackageResults[] {
  const byName = new Map<string, PackageResults>();
  if (previous && previous.view === view) for (const p of previous.packages) byName.set(p.package, p);
  for (const p of fresh) byName.set(p.package, p);
  return order.filter((name) => byName.has(name)).map((name) => byName.get(name)!);
}

function intro(view: View, packages: readonly PackageResults[]): string {
  const lines = [
    `Generated by \`wfbuild corpus${view === 'corpus' ? '' : ` --view ${view}`}\` on Debian 12 (bookworm); units and the rules that choose them: corpus/README.md and corpus/bookworm/*.json.`,
    '',
    '| package | base version | units from | applied |',
    '|---|---|---|---|',
  ];
  for (const p of packages) {
    const from = p.usesUpdateView ? `bookworm update (${p.update.kind}${p.update.from ? ` vs ${p.update.from}` : ''})` : `series walk (update: ${p.update.kind})`;
    const applied = p.compileOnly
      ? 'each on top of the patches before it; compile-only mode (object level)'
      : p.usesUpdateView
        ? 'each alone on the version before the update'
        : 'each on top of the patches before it';
    lines.push(`| ${p.package} | ${p.baseVersion} | ${from} | ${applied} |`);
  }
  return lines.join('\n');
}

export async function writeResults(outDir: string, view: View, tools: object, packages: PackageResults[], notRun: { package: string; why: string }[]): Promise<ResultsFile> {
  const rows = packages.map((p) => p.row);
  const total = totalRow(rows);
  const file: ResultsFile = { schema: 1, distribution: 'bookworm', view, generatedAt: new Date().toISOString(), tools, packages, total: { row: total, ratios: ratios(total) } };
  await mkdir(outDir, { recursive: true });
  await writeAtomic(join(outDir, 'bookworm.json'), JSON.stringify(file, null, 2) + '\n');
  const md = renderReport({ title: 'Debian 12 (bookworm) corpus: text-only and kpatch-able patches', intro: intro(view, packages), rows, results: packages.flatMap((p) => p.units), notRun });
  await writeAtomic(join(outDir, 'bookworm.md'), md);
  return file;
}

export function parseJobs(value: string | undefined): number {
  return intOption('jobs', value, 1, 64) ?? 2;
}

export function parseView(value: string | undefined): View {
  if (value === undefined) return 'corpus';
  if (value === 'corpus' || value === 'update' || value === 'series') return value;
  throw new UserError(`--view ${value}: one of corpus, update, series`);
}

export async function runCorpus(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { packages: { type: 'string' }, jobs: { type: 'string' }, view: { type: 'string' }, out: { type: 'string' }, 'no-builds': { type: 'boolean' }, 'full-builds': { type: 'boolean' }, 'tu-limit': { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const opts: RunOptions = {
    packages: parsePackages(values.packages),
    jobs: parseJobs(values.jobs),
    view: parseView(values.view),
    outDir: values.out ?? defaultResultsDir,
    noBuilds: values['no-builds'] === true,
    fullBuilds: values['full-builds'] === true,
    limit: intOption('tu-limit', values['tu-limit']),
    log: (line) => console.error(line),
  };
  // Every manifest is checked before anything is built: bad input fails in seconds.
  for (const pkg of opts.packages) await readManifest(pkg);
  if (!(await exists(createDiffObjectPath))) {
    throw new UserError(`${createDiffObjectPath} is missing: run 'make -C kpatch-fork' (or npm run setup)`, ExitCode.missingPrerequisite);
  }
  // Package builds get Debian's plain PATH: a pyenv or cargo shim earlier in PATH (as on this
  // machine) makes samba's waf and nodejs' configure pick a Python without Debian's modules.
  process.env.PATH = debianPath;
  const tools = await toolsFingerprint();
  const fresh: PackageResults[] = [];
  for (const pkg of opts.packages) fresh.push(await classifyPackage(pkg, opts, tools));
  const previousText = await readFile(join(opts.outDir, 'bookworm.json'), 'utf8').catch(() => undefined);
  let previous: ResultsFile | undefined;
  try {
    previous = previousText ? (JSON.parse(previousText) as ResultsFile) : undefined;
  } catch {
    previous = undefined; // a broken results file is replaced, not trusted
  }
  const { corpusPackages } = await import('./manifest.ts');
  const merged = mergeResults(previous, fresh, corpusPackages, opts.view);
  const notRun = corpusPackages.filter((p) => !merged.some((m) => m.package === p)).map((p) => ({ package: p, why: 'not run yet with this view' }));
  const file = await writeResults(opts.outDir, opts.view, tools, merged, notRun);
  const t = file.total.row;
  console.log(`${t.units.all} units (${t.units.cve} CVE): ${t.code.all} change code, ${t.textOnly.all} text-only, ${t.kpatchable.all} kpatch-able, ${t.failed.all} failed → ${join(opts.outDir, 'bookworm.md')}`);
  return ExitCode.ok;
}
