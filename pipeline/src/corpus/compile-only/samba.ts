/**
 * Samba in the compile-only corpus mode: configure a tree as Debian does, read waf's compile
 * database without building, and generate only the files (pidl NDR code, asn1, error tables,
 * …) the touched translation units include. A full Samba build takes hours on two cores; this
 * needs one configure and a few generator tasks.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../../cli/errors.ts';
import { exists } from '../../common/fs.ts';
import { tail } from '../../common/text.ts';
import { toTranslationUnit, type RawCommand, type TranslationUnit } from './database.ts';

/** Debian's build environment: no user shims (ccache, the wrapper) ahead of the real tools. */
const debianPath = '/usr/sbin:/usr/bin:/sbin:/bin';
/** What debian/rules exports for waf (see its WAF variable and _PYTHON_SYSCONFIGDATA_NAME). */
export const wafEnv: Record<string, string> = {
  PATH: debianPath,
  PYTHONHASHSEED: '1',
  _PYTHON_SYSCONFIGDATA_NAME: '_sysconfigdata__linux_x86_64-linux-gnu',
  LC_ALL: 'C.UTF-8',
};

/**
 * The environment every command starts from: not the caller's, whose CFLAGS, CC or CPATH
 * would change what Debian's make and gcc do (buildflags.mk keeps a CFLAGS it finds set).
 */
function baseEnv(): Record<string, string> {
  return { PATH: debianPath, HOME: process.env.HOME ?? '/root', LC_ALL: 'C.UTF-8', TMPDIR: process.env.TMPDIR ?? '/tmp' };
}

export const databasePath = (tree: string): string => join(tree, 'bin', 'default', 'compile_commands.json');

async function requireSambaTree(tree: string): Promise<void> {
  for (const file of ['debian/rules', 'buildtools/bin/waf', 'third_party/waf/waflib/extras/clang_compilation_database.py']) {
    if (!(await exists(join(tree, file)))) throw new UserError(`${tree} is not a Samba source tree with Debian packaging: no ${file}`, ExitCode.usage);
  }
}

/** Runs a command niced in the tree, streaming its output lines to `log`; a failure is a UserError with the output's tail. */
async function run(tree: string, what: string, argv: readonly string[], env: Record<string, string>, log: (line: string) => void): Promise<void> {
  const proc = execa('nice', ['-n', '10', ...argv], { cwd: tree, env: { ...baseEnv(), ...env }, extendEnv: false, all: true, reject: false, stdin: 'ignore' });
  for await (const line of proc.iterable({ from: 'all' })) log(line);
  const result = await proc;
  if (result.exitCode !== 0) throw new UserError(`samba: ${what} failed (exit ${result.exitCode}):\n${tail(result.all ?? '', 20)}`, ExitCode.buildFailed);
}

/**
 * waf with the clang_compilation_database extra loaded, so `clangdb` is a command: Samba's own
 * wscript does not load it, and its built-in database is written only after a full build.
 * The program is constant; the waf arguments come after it on the command line.
 */
const wafWithClangdb = [
  'import os, runpy, sys',
  "waf = os.path.abspath('buildtools/bin/waf')",
  "sys.path.insert(0, os.path.abspath('third_party/waf'))",
  'import waflib.extras.clang_compilation_database as db',
  // wafsamba's RECURSE accepts only the build context classes it knows, by class name.
  "db.ClangDbContext.__name__ = 'BuildContext'",
  'sys.argv = [waf] + sys.argv[1:]',
  "runpy.run_path(waf, run_name='__main__')",
].join('\n');

async function waf(tree: string, args: readonly string[], log: (line: string) => void, what: string): Promise<void> {
  await run(tree, what, ['python3', '-c', wafWithClangdb, ...args], wafEnv, log);
}

/** Configures the tree as Debian does (PATH=/usr/sbin:/usr/bin:/sbin:/bin, no user shims) and writes bin/default/compile_commands.json. */
export async function configureSamba(tree: string, log: (line: string) => void): Promise<void> {
  await requireSambaTree(tree);
  // debian/rules' configure target: branding, waf configure with Debian's flags, its fix-ups.
  // A configured tree (bin/configured.stamp) makes it a no-op.
  await run(tree, 'debian/rules configure', ['debian/rules', 'configure'], { PATH: debianPath, DEB_BUILD_OPTIONS: 'parallel=2', LC_ALL: 'C.UTF-8' }, log);
  await waf(tree, ['clangdb'], log, 'waf clangdb');
  if (!(await exists(databasePath(tree)))) throw new UserError(`samba: waf clangdb wrote no ${databasePath(tree)}`, ExitCode.buildFailed);
}

/** The tree's compile database (after configureSamba). */
export async function sambaCommands(tree: string): Promise<RawCommand[]> {
  const path = databasePath(tree);
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) throw new UserError(`samba: no ${path}: run configureSamba first`, ExitCode.missingPrerequisite);
  return parseWafDatabase(text, path);
}

/** waf's compile_commands.json: entries with `arguments` arrays. Malformed entries are an error, not skipped. */
export function parseWafDatabase(text: string, where: string): RawCommand[] {
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${where}: not JSON (${(error as Error).message})`, ExitCode.buildFailed);
  }
  if (!Array.isArray(entries)) throw new UserError(`${where}: not an array`, ExitCode.buildFailed);
  return entries.map((e: unknown, i): RawCommand => {
    const entry = e as { directory?: unknown; arguments?: unknown; file?: unknown };
    if (typeof entry?.directory !== 'string' || typeof entry.file !== 'string' || !Array.isArray(entry.arguments) || !entry.arguments.every((a) => typeof a === 'string')) {
      throw new UserError(`${where}: entry ${i} lacks a directory, file or arguments array`, ExitCode.buildFailed);
    }
    return { directory: entry.directory, arguments: entry.arguments as string[], file: entry.file };
  });
}

/**
 * A waf command that runs only the tasks that make the wanted files (names as the sources
 * spell them in #include, matched against the ends of the tasks' outputs) and what those
 * tasks need: the producers of their inputs, the generators named in Samba's `depends_on`
 * (asn1_compile and compile_et are built from the embedded Heimdal), and, for such host
 * tools' own compiles, every header-making task up to their build group. Names no task makes
 * are an error; ["*"] wants every header any task makes and every generated .c no compile
 * takes as its source (those are #included). The program is constant; the
 * wanted names come in WFGEN_WANT (JSON).
 */
const wafGenerate = String.raw`
import json, os, runpy, sys
waf = os.path.abspath('buildtools/bin/waf')
sys.path.insert(0, os.path.abspath('third_party/waf'))
from waflib import Build, Errors, Logs, Task

def produces_header(t):
    return any(n.name.endswith('.h') for n in t.outputs)

def compiles(t):
    return t.__class__.__name__ in ('c', 'cxx')

# Named BuildContext: wafsamba's RECURSE accepts only build context classes it knows by name.
class BuildContext(Build.BuildContext):
    cmd = 'wfgenerate'
    def get_build_iterator(self):
        want = json.loads(os.environ['WFGEN_WANT'])
        groups = []
        for i, g in enumerate(self.groups):
            self.current_group = i
            for tg in g:
                if hasattr(tg, 'post'):
                    tg.post()
            groups.append(self.get_tasks_group(i))
        group_of, producer = {}, {}
        for i, ts in enumerate(groups):
            for t in ts:
                group_of[t] = i
                for n in t.outputs:
                    producer[n] = t
        chosen, found = set(), set()
        if want == ['*']:
            # Headers, and generated files no compile takes as its source: those are #included
            # (lib/param/param_table_gen.c).
            compiled = set(n for t in group_of if compiles(t) for n in t.inputs)
            chosen = set(t for t in group_of if not compiles(t) and (produces_header(t) or any(n.name.endswith('.c') and n not in compiled for n in t.outputs)))
            found.add('*')
        for t in set(producer.values()):
            for n in t.outputs:
                rel = n.path_from(self.bldnode)
                for w in want:
                    if rel == w or rel.endswith('/' + w):
                        chosen.add(t)
                        found.add(w)
        missing = [w for w in want if w not in found]
        if missing:
            raise Errors.WafError('no task generates: ' + ' '.join(missing))
        work = list(chosen)
        headers_upto = -1
        while work:
            t = work.pop()
            deps = [producer[n] for n in list(t.inputs) + list(getattr(t, 'dep_nodes', [])) if n in producer]
            tg = getattr(t, 'generator', None)
            if tg is not None:
                for name in tg.to_list(getattr(tg, 'depends_on', '')):
                    deps.extend(self.get_tgen_by_name(name).tasks)
            if compiles(t) and group_of[t] > headers_upto:
                headers_upto = group_of[t]
                deps.extend(x for i in range(headers_upto + 1) for x in groups[i] if produces_header(x))
            for d in deps:
                if d not in chosen:
                    chosen.add(d)
                    work.append(d)
        Logs.info('wfgenerate: %d of %d tasks for %s', len(chosen), len(group_of), ' '.join(want))
        for i, ts in enumerate(groups):
            self.current_group = i
            tasks = [t for t in ts if t in chosen]
            Task.set_file_constraints(tasks)
            Task.set_precedence_constraints(tasks)
            self.cur_tasks = tasks
            if tasks:
                yield tasks
        while 1:
            yield []

sys.argv = [waf] + sys.argv[1:]
runpy.run_path(waf, run_name='__main__')
`;

/**
 * The headers a make-style dependency rule (gcc -M -MG) names that do not exist: with -MG,
 * gcc lists a missing header as its #include spells it, relative to nothing.
 */
export function parseDependencyRule(text: string): string[] {
  const body = text.replace(/\\\n/g, ' ');
  const colon = body.indexOf(': ');
  if (colon < 0) throw new Error(`not a dependency rule: ${text.slice(0, 120)}`);
  return body
    .slice(colon + 2)
    .split(/\s+/)
    .filter((w) => w !== '');
}

/**
 * A missing header's name without leading ./ and ../ (gcc spells it as the #include does,
 * e.g. "../librpc/gen_ndr/lsa.h" from a file in librpc/gen_ndr/): what is left is a suffix
 * of the generated file's path in the build directory.
 */
export function spelledName(header: string): string {
  const name = normalize(header).replace(/^(\.\.\/)+/, '');
  if (name === '' || name === '.' || name === '..' || name.startsWith('/')) throw new Error(`not a relative header name: ${header}`);
  return name;
}

/** The database's unit for each tree-relative source (sources Debian's configuration does not compile are absent). */
export function unitsFor(commands: readonly RawCommand[], tree: string, sources: readonly string[]): Map<string, TranslationUnit> {
  const wanted = new Set(sources.map((s) => normalize(s)));
  const units = new Map<string, TranslationUnit>();
  for (const cmd of commands) {
    const unit = toTranslationUnit(cmd, tree);
    if (unit && wanted.has(unit.source) && !units.has(unit.source)) units.set(unit.source, unit);
  }
  return units;
}

/** The unit's headers that do not exist yet, as the sources spell them (gcc -M -MG). */
export async function missingHeaders(unit: TranslationUnit): Promise<string[]> {
  const result = await execa('nice', ['-n', '10', unit.compiler, ...unit.args, '-M', '-MG', '-E'], {
    cwd: unit.directory,
    env: { ...baseEnv(), PATH: debianPath },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  if (result.exitCode !== 0) throw new UserError(`samba: ${unit.source}: gcc -M failed:\n${tail(result.stderr, 12)}`, ExitCode.buildFailed);
  const headers = parseDependencyRule(result.stdout);
  const missing: string[] = [];
  for (const h of headers) if (!(await exists(isAbsolute(h) ? h : join(unit.directory, h)))) missing.push(spelledName(h));
  return missing;
}

/**
 * The folder waf was configured in, from its lock file (`top_dir = '…'`), or null when the
 * text names none.
 */
export function configuredTop(lockFile: string): string | null {
  const m = /^top_dir = '([^'\n]*)'$/m.exec(lockFile);
  return m ? m[1]! : null;
}

/**
 * waf keeps absolute paths (lock file, c4che): in a copy of a configured tree it would not
 * find its configuration. Running waf there is refused with a clear error; compiling single
 * units in a copy works (rebase their commands).
 */
async function requireConfiguredHere(tree: string): Promise<void> {
  const lock = await readFile(join(tree, '.lock-wscript'), 'utf8').catch(() => undefined);
  if (lock === undefined) throw new UserError(`samba: ${tree} is not configured (no .lock-wscript): run configureSamba first`, ExitCode.missingPrerequisite);
  const top = configuredTop(lock);
  if (top !== resolve(tree)) {
    throw new UserError(`samba: ${tree} was configured as ${top ?? '(unknown)'}; waf cannot run in a copy — generate in the configured tree, then copy it`, ExitCode.usage);
  }
}

/** Beyond this many sources, generating every header at once is cheaper than asking gcc round after round. */
export const generateAllFrom = 150;

/** The missing headers of all units, two gcc runs at a time (the machine's cores). */
async function missingOfAll(units: readonly TranslationUnit[]): Promise<Set<string>> {
  const missing = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < units.length) for (const h of await missingHeaders(units[next++]!)) missing.add(h);
  };
  await Promise.all([worker(), worker()]);
  return missing;
}

/**
 * Makes the generated files the given tree-relative sources need exist (after configureSamba,
 * in the configured tree itself: waf cannot run in a copy). Few sources: only the generators
 * of the headers gcc finds missing, round after round. Many (a touched header included
 * everywhere): every header-making task in one waf run, then the same check.
 */
export async function generateFor(tree: string, sources: readonly string[], log: (line: string) => void): Promise<void> {
  await requireConfiguredHere(tree);
  const units = unitsFor(await sambaCommands(tree), tree, sources);
  for (const s of sources) if (!units.has(normalize(s))) log(`samba: ${s} is not compiled in Debian's configuration; nothing to generate for it`);
  // A source the tree lacks (a unit's new file in its before state; a file waf itself writes
  // during a full build) has no includes to look for.
  for (const [source] of units) {
    if (!(await exists(join(tree, source)))) {
      log(`samba: ${source} does not exist in the tree; nothing to generate for it`);
      units.delete(source);
    }
  }
  if (units.size >= generateAllFrom) {
    log(`samba: ${units.size} units: generating every header`);
    await run(tree, 'waf wfgenerate', ['python3', '-c', wafGenerate, 'wfgenerate', '-j2'], { ...wafEnv, WFGEN_WANT: '["*"]' }, log);
  }
  // A generated header can include others that only show up once it exists: repeat until none
  // is missing. Each round generates at least one new file or fails, so this ends.
  let previous = '';
  for (let round = 1; ; round++) {
    const missing = await missingOfAll([...units.values()]);
    if (missing.size === 0) return;
    const want = [...missing].sort();
    const key = want.join('\n');
    if (key === previous) throw new UserError(`samba: generating did not produce: ${want.join(' ')}`, ExitCode.buildFailed);
    previous = key;
    log(`samba: generate round ${round}: ${want.join(' ')}`);
    await run(tree, 'waf wfgenerate', ['python3', '-c', wafGenerate, 'wfgenerate', '-j2'], { ...wafEnv, WFGEN_WANT: JSON.stringify(want) }, log);
  }
}

/** Tree-relative path of a database entry's source (for callers matching patch files). */
export function commandSource(cmd: RawCommand, tree: string): string {
  return relative(tree, normalize(isAbsolute(cmd.file) ? cmd.file : join(cmd.directory, cmd.file)));
}
