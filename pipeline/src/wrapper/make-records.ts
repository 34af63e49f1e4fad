/**
 * The outermost make invocations of a build, as the wrapper's make shim recorded them (m.*:
 * directory, tool, arguments; m.*.env: the environment). The patched build re-runs exactly
 * these — same targets, flags, environment and directory — instead of the whole build command,
 * which for a Debian tree re-runs configure (chrony's configure rewrites config.h, and then
 * every object is recompiled).
 */
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { physicalTree, readRecordFields, type BuildLogEntry, type CompileEntry } from './index.ts';

export interface MakeInvocation {
  /** Tree-relative directory make ran in. */
  readonly cwd: string;
  /** As the build called it (make or gmake: the shim, found through PATH). */
  readonly tool: string;
  readonly args: readonly string[];
  /** The whole environment make ran with (the wrapper's own variables included). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * False when no compile, link or archive ran under it in the original build (knot-resolver's
   * `ninja doc`: Sphinx and Doxygen only): the patched build needs no re-run of it. Absent in
   * make lists recorded before this was known: then it is re-run.
   */
  readonly built?: boolean;
}

/**
 * Probes, not build steps: autoconf's `make -f conftest.make`, `make -f -`, version queries,
 * dry runs and database dumps — also in a cluster of short options, as dh's look for override
 * targets (`make -Rrnpsf debian/rules debhelper-fail-me`).
 */
function isProbe(tool: string, args: readonly string[]): boolean {
  if (tool === 'ninja') return isNinjaProbe(args);
  return args.some(
    (a, i) =>
      /conftest/.test(a) ||
      /^-[A-Za-z]*[npq][A-Za-z]*$/.test(a) ||
      ((a === '-f' || a === '--file' || a === '--makefile') && args[i + 1] === '-') ||
      a === '-f-' ||
      a === '--file=-' ||
      ['--version', '-v', '-p', '--print-data-base', '-q', '--question', '-n', '--just-print', '--dry-run', '--recon'].includes(a),
  );
}

/**
 * ninja's queries and dry runs: `-t TOOL` (meson and CMake ask for compdb, targets, …),
 * `-n`, `--version` (meson's and CMake's version checks), `-h`. Its `-v` is verbose, not version.
 */
function isNinjaProbe(args: readonly string[]): boolean {
  return args.some((a) => a === '-t' || /^-t./.test(a) || a === '-n' || a === '--version' || a === '-h' || a === '--help');
}

/** The folder a ninja call builds in (`-C DIR`, relative to where it started) and its build file. */
function ninjaBuildFile(cwd: string, args: readonly string[]): string {
  let dir = cwd;
  let file = 'build.ninja';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-C' && args[i + 1] !== undefined) dir = resolve(dir, args[++i]);
    else if (a.startsWith('-C') && a.length > 2) dir = resolve(dir, a.slice(2));
    else if (a === '-f' && args[i + 1] !== undefined) file = args[++i];
    else if (a.startsWith('-f') && a.length > 2) file = a.slice(2);
  }
  return resolve(dir, file);
}

/** The makefiles a make call names (-f X, -fX, --file=X, --makefile=X, a cluster ending in f). */
function makefilesNamed(args: readonly string[]): string[] {
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--file' || a === '--makefile' || /^-[A-Za-z]*f$/.test(a)) {
      if (args[i + 1] !== undefined) files.push(args[++i]);
    } else if (/^--(make)?file=/.test(a)) files.push(a.slice(a.indexOf('=') + 1));
    else if (/^-f./.test(a)) files.push(a.slice(2));
  }
  return files;
}

const present = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

/**
 * A make whose makefile is gone after the build ran a probe's temporary makefile (nfs-utils'
 * configure: `make -f confmf.GNU`): nothing to re-run. `-C DIR` is not followed (rare at the
 * outermost level); such a make is kept.
 */
async function makefileGone(tool: string, cwd: string, args: readonly string[]): Promise<boolean> {
  // CMake's try_compile runs ninja in a scratch folder it removes afterwards.
  if (tool === 'ninja') return !(await present(ninjaBuildFile(cwd, args)));
  if (args.some((a) => a === '-C' || a.startsWith('-C') || a.startsWith('--directory'))) return false;
  const named = makefilesNamed(args);
  if (named.length > 0) return !(await Promise.all(named.map((f) => present(resolve(cwd, f))))).every(Boolean);
  const defaults = await Promise.all(['GNUmakefile', 'makefile', 'Makefile'].map((f) => present(join(cwd, f))));
  return !defaults.some(Boolean);
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const item of text.split('\0')) {
    const eq = item.indexOf('=');
    if (eq > 0) env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}

/**
 * Whether a make found through /proc (one the shim never saw) built something the build kept:
 * `outputsFile` lists what its compiles wrote (an empty line: not known, so kept). A make whose
 * outputs are all gone, or outside the tree, ran probes — postfix's `make makefiles` in
 * debian/rules' configure step runs makedefs' test compiles — and re-running it would redo
 * configuration, not the build.
 */
async function leftABuildOutput(outputsFile: string, physical: string, canonical: (cwd: string) => string): Promise<boolean> {
  const text = await readFile(outputsFile, 'utf8').catch(() => '');
  for (const line of text.split('\n').slice(0, -1)) {
    if (line === '') return true;
    const path = canonical(line);
    const rel = relative(physical, path);
    if (!rel.startsWith('..') && !isAbsolute(rel) && (await present(path))) return true;
  }
  return false;
}

/**
 * Reads the make records of a record folder (the shim's m.XXXX, recorded when the make or ninja
 * started; the compiler wrapper's m.p<pid>-<start>, recorded at the first compile under a make
 * the shim never saw), in record order; probes and makes outside the tree are left out.
 */
const foundThroughProc = /^m\.p\d+-\d+$/;

export async function readMakeRecords(tree: string, logDir: string): Promise<MakeInvocation[]> {
  const { physical, canonical } = await physicalTree(tree);
  const names = (await readdir(logDir)).filter((n) => /^m\.[^.]+$/.test(n));
  const found: { time: bigint; make: MakeInvocation }[] = [];
  for (const name of names) {
    const record = await readRecordFields(join(logDir, name));
    if (!record) continue;
    const [recorded, tool, ...args] = record.fields;
    const cwd = canonical(recorded);
    const rel = relative(physical, cwd);
    if (rel.startsWith('..') || isAbsolute(rel) || isProbe(tool, args) || (await makefileGone(tool, cwd, args))) continue;
    // The compiler wrapper's own records are m.p<pid>-<start>; the shim's are mktemp names
    // (m.XXXXXXXXXX), one in 62 of which also begins with a p.
    if (foundThroughProc.test(name) && !(await leftABuildOutput(join(logDir, `${name}.outputs`), physical, canonical))) continue;
    const envText = await readFile(join(logDir, `${name}.env`), 'utf8').catch(() => null);
    if (envText === null) continue;
    found.push({ time: record.time, make: { cwd: rel || '.', tool, args, env: parseEnv(envText) } });
  }
  found.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  // Outermost makes run one after another (dh's steps), so a compile, link or ar call recorded
  // under a make (r.*) belongs to the last make that started before it finished.
  const underMake = await Promise.all(
    (await readdir(logDir)).filter((n) => /^r\.[^.]+$/.test(n)).map(async (n) => (await stat(join(logDir, n), { bigint: true })).mtimeNs),
  );
  return found.map((f, i) => {
    const next = found[i + 1]?.time;
    const built = underMake.some((t) => t >= f.time && (next === undefined || t < next));
    return { ...f.make, built };
  });
}

/**
 * Whether re-running the recorded makes redoes every compile of the build: only when each
 * recorded compile whose object the build kept ran under one of them (an object gone after the
 * build is a configure or meson probe's: nothing to redo). Else the reason why not (for the
 * report's notes). `tree`: the original build's tree, after the build.
 */
export async function replayable(log: readonly BuildLogEntry[], makes: readonly MakeInvocation[], tree: string): Promise<{ ok: true } | { ok: false; why: string }> {
  if (makes.length === 0) return { ok: false, why: 'the build ran no make or ninja' };
  const candidates = log.filter((e): e is CompileEntry => e.kind === 'compile' && e.outsideMake === true);
  const kept = await Promise.all(candidates.map((e) => present(resolve(tree, e.object))));
  const outside = candidates.filter((_, i) => kept[i]);
  if (outside.length > 0) return { ok: false, why: `${outside.length} compile(s) ran outside a make or ninja the wrapper saw (e.g. ${outside[0].object})` };
  return { ok: true };
}

/** A jobserver handed down by the original build's parent make no longer exists at replay time. */
function withoutJobserver(flags: string): string {
  return flags
    .split(' ')
    .filter((f) => !/^--jobserver-(auth|fds)=/.test(f))
    .join(' ');
}

/**
 * The environment to re-run a recorded make with: the recorded one, with the wrapper's own
 * variables (shim folder, record folder, tree) replaced by the new run's, and no stale jobserver.
 */
export function replayEnv(make: MakeInvocation, oldShims: string, wrapper: Readonly<Record<string, string>>, newShims: string): Record<string, string> {
  const env: Record<string, string> = { ...make.env };
  delete env.WFBUILD_IN_MAKE;
  for (const key of ['MAKEFLAGS', 'MFLAGS']) if (env[key] !== undefined) env[key] = withoutJobserver(env[key]);
  const path = (env.PATH ?? '').split(':').filter((p) => p !== oldShims && p !== newShims);
  Object.assign(env, wrapper);
  env.PATH = [newShims, ...path].join(':');
  return env;
}
