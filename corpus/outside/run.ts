/**
 * Issue #16's outside-package benchmark: `wfbuild` on Debian packages the project was not
 * developed on, each with its newest Debian 12 patch that changes C code, applied to the tree
 * without it. The expected verdicts were written down by reading the patches
 * (corpus/outside/packages.json); this script runs the CLI and compares.
 *
 *   npm run bench:outside -- [--packages a,b] [--small] [--plain] [--cache DIR] [--out DIR]
 *                            [--timeout MIN] [--strict] [--verbose]
 *
 * Per package: (1) `apt-get source --download-only NAME=VERSION` into the cache;
 * (2) the tree without the patch: `dpkg-source --skip-patches -x`, then every other
 * debian/patches/series entry in order with `patch -pN` (the CLI's `--package` fetches the tree
 * with the whole series applied, so it cannot say "without this series patch": we give it
 * `--source`); (3) `nice -n 10 node pipeline/bin/wfbuild build PATCH --source TREE --out DIR
 * --json`, timed; (4) report.json's outcome against the expectation, and every changed object
 * against the expected sources (an object nobody expected is "spurious"). With `--plain`, also
 * a plain build of a fresh copy of the tree right after it — the command and clean environment
 * report.json's `build` records — and the ratio, for the ≤ 1.5x goal (only when the original
 * build was not reused from the cache: a warm wfbuild is no figure against a cold plain build).
 *
 * The CLI runs as a process (execa, argument arrays, no shell): this script imports nothing from
 * pipeline/src. Exit: 0 every selected runnable package matched, 1 a mismatch, a failure or a
 * spurious object, 2 bad arguments. Packages with nothing to run (no patch, source not
 * delivered) are listed as "skip" and fail the run only with --strict.
 */
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

type Outcome = 'kpatchable' | 'not-kpatchable' | 'not-text-only' | 'no-compiled-code';

interface Expected {
  readonly outcome: Outcome | null;
  readonly textOnly: boolean | null;
  readonly objects: readonly { readonly source: string; readonly functions?: readonly string[] }[];
  readonly binaries: readonly { readonly build: string; readonly installed: string }[];
  readonly reason: string;
}

interface PackageEntry {
  readonly package: string;
  readonly version: string;
  readonly dscSha256: string;
  readonly registry: { readonly delivered: boolean; readonly missing: readonly string[]; readonly note?: string };
  readonly patch: { readonly name: string; readonly sha256: string; readonly strip: number; readonly seriesIndex: number } | null;
  readonly expected: Expected;
  readonly small: boolean;
}

interface Row {
  package: string;
  version: string;
  patch: string;
  expected: string;
  got: string;
  match: 'yes' | 'NO' | 'skip';
  seconds: number | null;
  plainSeconds: number | null;
  exitCode: number | null;
  spurious: string[];
  missingExpected: string[];
  detail: string;
  /** report.json's per-stage milliseconds (original build, patched build, …), when there is a report. */
  timings: Record<string, number> | null;
  /** Was the original build reused from the cache (then the ratio says nothing about a cold run)? */
  originalCached: boolean | null;
  /** report.json's patchedBuild counts: recompiled / differing / changed. */
  rebuilt: { recompiled: number; differing: number; changed: number } | null;
  /** Per bundle: the binary in the tree and where the package installs it. */
  bundles: { binary: string; installedPath: string | null }[];
  /** The plain build's failure, when it failed (its time is then not a figure). */
  plainError: string | null;
  log: string | null;
}

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const wfbuild = join(repo, 'pipeline/bin/wfbuild');
const debBuildOptions = 'nocheck nostrip parallel=2';

const { values } = parseArgs({
  options: {
    packages: { type: 'string' },
    small: { type: 'boolean', default: false },
    plain: { type: 'boolean', default: false },
    cache: { type: 'string' },
    out: { type: 'string' },
    timeout: { type: 'string', default: '240' },
    strict: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (values.help) {
  console.log(
    'Usage: npm run bench:outside -- [--packages a,b] [--small] [--plain] [--cache DIR] [--out DIR] [--timeout MIN] [--strict] [--verbose]\n' +
      'Runs wfbuild on issue #16\'s outside packages (corpus/outside/packages.json) and compares the verdicts.',
  );
  process.exit(0);
}

const data = JSON.parse(await readFile(join(here, 'packages.json'), 'utf8')) as { packages: PackageEntry[] };
const cacheRoot = resolve(values.cache ?? join(process.env.WFPATCH_CACHE ?? '/var/cache/wfpatch', 'outside'));
const outRoot = resolve(values.out ?? join(cacheRoot, 'runs', new Date().toISOString().replace(/[:.]/g, '-')));
const timeoutMs = Number(values.timeout) * 60_000;
if (!(timeoutMs > 0)) usage(`--timeout: not a number of minutes: ${values.timeout}`);

let selected = data.packages;
if (values.packages) {
  const names = values.packages.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !data.packages.some((p) => p.package === n));
  if (unknown.length) usage(`unknown package(s): ${unknown.join(', ')} (known: ${data.packages.map((p) => p.package).join(', ')})`);
  selected = names.map((n) => data.packages.find((p) => p.package === n)!);
}
if (values.small) selected = selected.filter((p) => p.small);

function usage(msg: string): never {
  console.error(`bench:outside: ${msg}`);
  process.exit(2);
}

const noEpoch = (v: string): string => v.replace(/^\d+:/, '');
const sha256 = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');
const secs = (ms: number): number => Math.round(ms / 100) / 10;

function log(msg: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

/** apt-get source --download-only into the cache (once), then the .dsc checked against the data. */
async function download(p: PackageEntry): Promise<string> {
  const dir = join(cacheRoot, 'sources', `${p.package}_${noEpoch(p.version)}`);
  const dsc = join(dir, `${p.package}_${noEpoch(p.version)}.dsc`);
  if (!existsSync(join(dir, '.complete'))) {
    await mkdir(dir, { recursive: true });
    log(`${p.package}: apt-get source --download-only ${p.package}=${p.version}`);
    const r = await execa('apt-get', ['source', '--download-only', `${p.package}=${p.version}`], { cwd: dir, reject: false, all: true, stdin: 'ignore' });
    if (r.exitCode !== 0) {
      const errs = (r.all ?? '').split('\n').filter((l) => /^E:|^Err:/.test(l));
      throw new Error(`apt-get source ${p.package}=${p.version} failed (exit ${r.exitCode}): ${errs.join(' | ') || (r.all ?? '').slice(-500)}`);
    }
    await writeFile(join(dir, '.complete'), '');
  }
  const got = sha256(await readFile(dsc));
  if (got !== p.dscSha256) throw new Error(`${basename(dsc)}: sha256 ${got}, the test data says ${p.dscSha256} (the registry changed: re-read the patch and update packages.json)`);
  return dsc;
}

/** debian/patches/series → [{name, strip}], comments and blank lines dropped. */
function parseSeries(text: string): { name: string; strip: number }[] {
  const out: { name: string; strip: number }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    const [name, ...opts] = line.split(/\s+/);
    const p = opts.find((o) => /^-p\d+$/.test(o));
    out.push({ name: name!, strip: p ? Number(p.slice(2)) : 1 });
  }
  return out;
}

/**
 * The tree without the patch, cached: dpkg-source --skip-patches -x, then every series entry
 * but the chosen one. Built in a temporary folder and renamed, so a killed run leaves no half tree.
 */
async function prepareTree(p: PackageEntry, dsc: string): Promise<{ tree: string; patch: string }> {
  const patch = p.patch!;
  const key = `${p.package}_${noEpoch(p.version)}-without-${patch.name.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  const base = join(cacheRoot, 'trees', key);
  const tree = join(base, 'tree');
  const patchFile = join(base, patch.name.replace(/\//g, '_'));
  if (!existsSync(join(base, '.complete'))) {
    const tmp = `${base}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    log(`${p.package}: dpkg-source --skip-patches -x, series without ${patch.name}`);
    await execa('dpkg-source', ['--skip-patches', '-x', dsc, join(tmp, 'tree')], { cwd: tmp, stdin: 'ignore' });
    const seriesText = await readFile(join(tmp, 'tree/debian/patches/series'), 'utf8');
    const series = parseSeries(seriesText);
    const at = series.findIndex((s) => s.name === patch.name);
    if (at < 0) throw new Error(`${patch.name} is not in ${p.package}'s debian/patches/series`);
    if (at !== patch.seriesIndex) throw new Error(`${patch.name} is entry ${at} of the series, the test data says ${patch.seriesIndex}`);
    const body = await readFile(join(tmp, 'tree/debian/patches', patch.name));
    const got = sha256(body);
    if (got !== patch.sha256) throw new Error(`${patch.name}: sha256 ${got}, the test data says ${patch.sha256}`);
    for (const [i, s] of series.entries()) {
      if (i === at) continue;
      const r = await execa('patch', [`-p${s.strip}`, '--batch', '--forward', '--no-backup-if-mismatch', '-i', join('debian/patches', s.name)], {
        cwd: join(tmp, 'tree'),
        reject: false,
        all: true,
        stdin: 'ignore',
      });
      if (r.exitCode !== 0) throw new Error(`series entry ${i} ${s.name} does not apply without ${patch.name}: ${(r.all ?? '').split('\n').slice(-6).join(' | ')}`);
    }
    await writeFile(join(tmp, basename(patchFile)), body);
    await writeFile(join(tmp, '.complete'), '');
    if (existsSync(join(base, '.complete'))) {
      // Another run prepared it meanwhile: keep theirs (it may be in use), drop ours.
      await rm(tmp, { recursive: true, force: true });
    } else {
      await rm(base, { recursive: true, force: true });
      await rename(tmp, base);
    }
  }
  return { tree, patch: patchFile };
}

/** Expected sources, compared by path suffix (exim and openssh build the same file in several folders). */
function expectedSources(e: Expected): string[] {
  return e.objects.map((o) => o.source.split(/\s/)[0]!);
}
function sourceMatches(got: string, expected: string): boolean {
  return got === expected || got.endsWith(`/${expected}`) || basename(got) === basename(expected);
}

interface ReportLite {
  outcome: Outcome;
  textOnly: boolean | null;
  objects: { object: string; source: string; binaries: string[]; verdicts: { binary: string; outcome: string }[] }[];
  bundles: { binary: string; installedPath: string | null }[];
  reasons: { object: string | null; kind: string; symbol: string | null; what: string }[];
  timings: Record<string, number>;
  build: { argv: string[]; env: Record<string, string> } | null;
  originalBuild: { key: string; cached: boolean } | null;
  patchedBuild: { how: string; recompiled: number; differing: number; changed: number } | null;
}

async function runOne(p: PackageEntry): Promise<Row> {
  const row: Row = {
    package: p.package,
    version: p.version,
    patch: p.patch?.name ?? '-',
    expected: p.expected.outcome ?? '-',
    got: '-',
    match: 'skip',
    seconds: null,
    plainSeconds: null,
    exitCode: null,
    spurious: [],
    missingExpected: [],
    detail: '',
    timings: null,
    originalCached: null,
    rebuilt: null,
    bundles: [],
    plainError: null,
    log: null,
  };
  if (!p.patch) {
    row.detail = 'no Debian 12 patch to run';
    return row;
  }
  if (!p.registry.delivered) {
    row.detail = `source not delivered: ${p.registry.missing.join('; ')}`;
    return row;
  }
  const outDir = join(outRoot, p.package);
  await mkdir(outRoot, { recursive: true });
  row.log = join(outRoot, `${p.package}.log`);
  let tree: string;
  let patch: string;
  try {
    const dsc = await download(p);
    ({ tree, patch } = await prepareTree(p, dsc));
  } catch (err) {
    row.match = 'NO';
    row.got = 'failed: source';
    row.detail = (err as Error).message;
    await writeFile(row.log, `${row.detail}\n`);
    return row;
  }

  const args = [wfbuild, 'build', patch, '--source', tree, '--out', outDir, '--json'];
  log(`${p.package}: nice -n 10 node ${args.join(' ')}`);
  const start = performance.now();
  const r = await execa('nice', ['-n', '10', process.execPath, ...args], {
    reject: false,
    stdin: 'ignore',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    cwd: repo,
    ...(values.verbose ? { stderr: ['pipe', 'inherit'] as const } : {}),
  });
  row.seconds = secs(performance.now() - start);
  row.exitCode = r.exitCode ?? null;
  await writeFile(row.log, `$ nice -n 10 node ${args.join(' ')}\n# exit ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}, ${row.seconds} s\n--- stderr\n${r.stderr}\n--- stdout\n${r.stdout}\n`);

  let report: ReportLite | null = null;
  try {
    report = JSON.parse(r.stdout) as ReportLite;
  } catch {
    report = existsSync(join(outDir, 'report.json')) ? (JSON.parse(await readFile(join(outDir, 'report.json'), 'utf8')) as ReportLite) : null;
  }
  if (!report) {
    const kind = r.timedOut ? 'timeout' : r.exitCode === 12 ? 'build' : r.exitCode === 2 ? 'bad input' : r.exitCode === 13 ? 'tool missing' : `exit ${r.exitCode}`;
    row.got = `failed: ${kind}`;
    row.match = 'NO';
    row.detail = firstErrorLine(r.stderr) ?? (r.stderr.split('\n').filter(Boolean).slice(-1)[0] ?? '');
  } else {
    row.got = report.outcome;
    row.match = report.outcome === p.expected.outcome && (p.expected.textOnly === null || report.textOnly === p.expected.textOnly) ? 'yes' : 'NO';
    const exp = expectedSources(p.expected);
    // A changed object is one create-diff-object found changed code or data in. An object whose
    // bytes differ with nothing to patch everywhere (a header's line shift moving only debug
    // line info) is reported, but it is not a change the patch makes.
    const changed = report.objects.filter((o) => o.verdicts.some((v) => v.outcome !== 'nothing'));
    row.spurious = changed.filter((o) => !exp.some((e) => sourceMatches(o.source, e))).map((o) => o.object);
    row.missingExpected = exp.filter((e) => !changed.some((o) => sourceMatches(o.source, e)));
    if (row.spurious.length) row.match = 'NO';
    const reasons = report.reasons.map((x) => `${x.kind}: ${x.what}`);
    row.timings = report.timings;
    row.originalCached = report.originalBuild?.cached ?? null;
    row.rebuilt = report.patchedBuild ? { recompiled: report.patchedBuild.recompiled, differing: report.patchedBuild.differing, changed: report.patchedBuild.changed } : null;
    row.bundles = report.bundles.map((b) => ({ binary: b.binary, installedPath: b.installedPath }));
    const t = report.timings;
    row.detail = [
      `original build ${secs(t.originalBuild ?? 0)} s, patched build ${secs(t.patchedBuild ?? 0)} s`,
      reasons.length ? `reasons: ${reasons.slice(0, 4).join('; ')}${reasons.length > 4 ? ` (+${reasons.length - 4})` : ''}` : '',
      report.bundles.length ? `bundles: ${report.bundles.map((b) => b.installedPath ?? b.binary).join(', ')}` : '',
      row.spurious.length ? `spurious changed objects: ${row.spurious.slice(0, 6).join(', ')}${row.spurious.length > 6 ? ` (+${row.spurious.length - 6})` : ''}` : '',
      row.missingExpected.length ? `expected changed but not reported: ${row.missingExpected.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' | ');
  }

  if (values.plain) {
    const plain = await plainBuild(p, tree, report?.build ?? null);
    row.plainSeconds = plain.seconds;
    row.plainError = plain.error;
  }
  return row;
}

/**
 * The line a developer needs from the CLI's stderr: its own message, plus the most telling
 * error line after it (configure's "configure: error: …" before dh's wrapper line; the CLI
 * today prints the tail of the build output, which for configure failures is config.log's
 * confdefs dump, so the real line may be missing: then the log file has everything there is).
 */
function firstErrorLine(stderr: string): string | null {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  if (!lines.length) return null;
  const patterns = [
    /configure: error:|Can't exec|Can't locate|No <[^>]+> include file found|^CMake Error|^meson\.build:\d+:\d+: ERROR|Dependency .* not found|^ERROR:/,
    /\berror:|fatal error/i,
    /Unmet|not found|No such file|cannot|does not apply/i,
  ];
  for (const re of patterns) {
    const hit = lines.slice(1).find((l) => re.test(l) && !/^make(\[\d+\])?: \*\*\*/.test(l));
    if (hit) return `${lines[0]} ${hit.length > 400 ? `${hit.slice(0, 400)}…` : hit}`;
  }
  return lines[0]!;
}

/** The clean environment wfbuild documents (pipeline/README.md), for a run that left no report. */
const fallbackEnv: Record<string, string> = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/nonexistent', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TZ: 'UTC', DEB_BUILD_OPTIONS: debBuildOptions };

/**
 * A plain build of a fresh copy of the tree, without the wrapper, right after the wfbuild run
 * (so both see the same machine load as far as a sequential run can): the command and the
 * whole clean environment report.json's `build` says wfbuild used (`debian/rules build-arch`,
 * Debian's PATH, fixed locale and HOME, DEB_BUILD_OPTIONS), so the ratio measures the wrapper,
 * the copies and the patched rebuild, not a different build. Copying the tree is not timed;
 * the output goes to `<out>/<package>.plain.log`.
 */
async function plainBuild(p: PackageEntry, tree: string, build: ReportLite['build']): Promise<{ seconds: number | null; error: string | null }> {
  const copy = join(cacheRoot, 'plain', `${p.package}-${process.pid}`);
  await rm(copy, { recursive: true, force: true });
  await mkdir(dirname(copy), { recursive: true });
  await cp(tree, copy, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const argv = build?.argv.length ? build.argv : ['debian/rules', 'build-arch'];
  const env = build ? { ...build.env } : fallbackEnv;
  log(`${p.package}: plain ${argv.join(' ')} (for the ratio), env ${Object.keys(env).join(' ')}`);
  const start = performance.now();
  const r = await execa('nice', ['-n', '10', ...argv], {
    cwd: copy,
    env,
    extendEnv: false,
    reject: false,
    all: true,
    stdin: 'ignore',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
  });
  const ms = performance.now() - start;
  await writeFile(join(outRoot, `${p.package}.plain.log`), `$ ${argv.join(' ')}\n# env ${JSON.stringify(env)}\n# exit ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}, ${secs(ms)} s\n${r.all ?? ''}\n`);
  await rm(copy, { recursive: true, force: true });
  if (r.exitCode === 0) return { seconds: secs(ms), error: null };
  const error = r.timedOut ? 'timed out' : `exit ${r.exitCode}: ${firstErrorLine(r.all ?? '') ?? ''}`;
  log(`${p.package}: the plain build failed (${error})`);
  return { seconds: null, error };
}

function table(rows: Row[]): string {
  const head = ['package', 'patch', 'expected', 'got', 'match?', 'wfbuild s', 'original', 'plain s', 'ratio', 'r/d/c', 'bundles (installed path)'];
  const cells = rows.map((r) => [
    r.package,
    r.patch.length > 44 ? `${r.patch.slice(0, 41)}...` : r.patch,
    r.expected,
    r.got,
    r.match,
    r.seconds === null ? '-' : r.seconds.toFixed(1),
    r.originalCached === null ? '-' : r.originalCached ? 'cached' : `${secs(r.timings?.originalBuild ?? 0).toFixed(1)} s`,
    r.plainSeconds === null ? (r.plainError ? 'failed' : '-') : r.plainSeconds.toFixed(1),
    // A cached original makes the wfbuild figure a warm one: no ratio to the cold plain build.
    r.seconds !== null && r.plainSeconds && r.originalCached === false ? `${(r.seconds / r.plainSeconds).toFixed(2)}x` : '-',
    r.rebuilt ? `${r.rebuilt.recompiled}/${r.rebuilt.differing}/${r.rebuilt.changed}` : '-',
    r.bundles.length ? r.bundles.map((b) => b.installedPath ?? `${b.binary} (installed path unknown)`).join(', ') : '-',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => `| ${c.map((x, i) => x.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

if (!selected.length) usage('no package selected');
log(`bench:outside: ${selected.map((p) => p.package).join(', ')}; cache ${cacheRoot}; output ${outRoot}`);
const rows: Row[] = [];
for (const p of selected) {
  const row = await runOne(p);
  rows.push(row);
  log(`${p.package}: expected ${row.expected}, got ${row.got} (${row.match})${row.seconds !== null ? `, ${row.seconds} s` : ''}${row.detail ? ` — ${row.detail}` : ''}`);
}
await mkdir(outRoot, { recursive: true });
await writeFile(join(outRoot, 'results.json'), `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);

console.log(table(rows));
console.log();
for (const r of rows) {
  const plain = r.plainError ? ` | plain build failed: ${r.plainError}` : '';
  if (r.detail || plain) console.log(`${r.package}: ${r.detail}${plain}${r.log ? ` (log: ${r.log})` : ''}`);
}
const ran = rows.filter((r) => r.match !== 'skip');
const matched = ran.filter((r) => r.match === 'yes').length;
const skipped = rows.length - ran.length;
console.log(`\n${matched} of ${ran.length} run packages matched the reader's verdict${skipped ? `; ${skipped} not runnable (skip)` : ''}. Results: ${join(outRoot, 'results.json')}`);
process.exit(matched === ran.length && (!values.strict || skipped === 0) ? 0 : 1);
