/**
 * Per package: how the compile-only mode gets a tree it can compile single translation units
 * in, and that tree's compile database. Three ways, by what the build system offers:
 * - build-log: the pipeline's cached original build through the compiler wrapper (small C
 *   packages: openldap, apache2) — its log is the database;
 * - configure + CMake's compile_commands.json (mariadb);
 * - configure + `make -n` (nodejs: gyp writes plain Makefiles).
 * Samba's waf has its own (samba.ts). Prepared trees are cached under
 * cacheRoot/corpus/prepared/<package>_<version>/<profile>/ with a .complete marker and never
 * modified: the walk works on a copy.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { cacheRoot } from '../../paths.ts';
import { ExitCode, UserError } from '../../cli/errors.ts';
import { tail } from '../../common/text.ts';
import { chooseBuildCommand } from '../../stages/build-command.ts';
import { cleanBuildEnv } from '../../stages/build-env.ts';
import { describeTree } from '../../stages/source.ts';
import { originalBuild, type OriginalBuild } from '../../stages/original-build.ts';
import { versionWithoutEpoch } from '../debversion.ts';
import type { Manifest } from '../manifest.ts';
import { fromBuildLog, fromCompileCommands, fromMakeDryRun, rebase, splitWords, toTranslationUnit, unique, type TranslationUnit } from './database.ts';
import { configureSamba, sambaCommands } from './samba.ts';
import type { EmbeddedData } from './walk.ts';
import { copyTree, exists } from '../../common/fs.ts';

export const preparedCache: string = join(cacheRoot, 'corpus', 'prepared');

export interface Profile {
  /** Part of every result key of the package: bump when preparing changes. */
  readonly name: string;
  readonly how: 'build-log' | 'cmake' | 'make-dry-run' | 'waf';
  /** debian/rules targets that configure (cmake, make-dry-run, waf). */
  readonly configure?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** cmake: the compile database; make-dry-run: the folder make runs in. */
  readonly path?: string;
  /** make-dry-run: make's arguments. */
  readonly makeArgs?: readonly string[];
  /**
   * make-dry-run (gyp): actions whose generated headers translation units include, run on
   * their own — through make they would pull in the whole build as prerequisites.
   */
  readonly gypActions?: readonly string[];
  readonly embedded?: EmbeddedData;
  /** Most translation units one unit may compile (default: index.ts' defaultLimit, for C++). */
  readonly limit?: number;
}

const debOptions = { DEB_BUILD_OPTIONS: 'nocheck nostrip parallel=2' };

/** Packages the corpus classifies in compile-only mode (memcached keeps the full pipeline: CI runs it). */
export const profiles: Readonly<Record<string, Profile>> = {
  // C units compile in a fraction of a second: a widely included header is still cheap.
  openldap: { name: 'build-log-1', how: 'build-log', limit: 800 },
  apache2: { name: 'build-log-1', how: 'build-log', limit: 800 },
  // nginx: Debian compiles a copy of src/ in debian/build-bin (copies.ts). The full pipeline
  // would rebuild it whole per unit (its wrapper build records no make invocation to re-run).
  nginx: { name: 'build-log-1', how: 'build-log', limit: 800 },
  mariadb: {
    name: 'cmake-1',
    how: 'cmake',
    configure: ['override_dh_auto_configure'],
    env: { ...debOptions, CMAKE_EXPORT_COMPILE_COMMANDS: 'ON' },
    path: 'builddir/compile_commands.json',
  },
  samba: { name: 'waf-1', how: 'waf', limit: 800 },
  nodejs: {
    name: 'make-dry-run-2',
    how: 'make-dry-run',
    configure: ['override_dh_auto_configure'],
    env: debOptions,
    path: 'out',
    makeArgs: ['BUILDTYPE=Release', 'V=1'],
    // The inspector's protocol headers (src/inspector_*.cc include them).
    gypActions: ['convert_node_protocol_to_json', 'node_protocol_generated_sources', 'concatenate_protocols', 'v8_inspector_compress_protocol_json'],
    embedded: {
      pattern: /^lib\/.*\.js$/,
      why: 'the build embeds lib/*.js into the binary as data (js2c → node_javascript.cc): a change there is a data change, not text',
    },
  },
};

export interface Prepared {
  /** The tree the database's paths point into. */
  readonly tree: string;
  readonly database: TranslationUnit[];
  /** Whether this call found it in the cache. */
  readonly cached: boolean;
  readonly seconds: number;
  /** build-log: the original build itself (its recorded makes and binaries: relink.ts). */
  readonly original?: OriginalBuild;
}

async function runRules(tree: string, target: string, env: Readonly<Record<string, string>>, log: (line: string) => void): Promise<void> {
  log(`  debian/rules ${target}`);
  const result = await execa('nice', ['-n', '10', 'debian/rules', target], { cwd: tree, env: { ...env }, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new UserError(`debian/rules ${target} failed:\n${tail(result.all ?? '', 12)}`, ExitCode.buildFailed);
}

/**
 * Runs gyp actions by their recorded commands (`cmd_<target>_<action> = …; cd $(srcdir)/.;
 * mkdir -p …; tool args`), without a shell: each `;`-separated step is a cd, a mkdir or a
 * command split into words.
 */
export async function runGypActions(outDir: string, builddir: string, srcdir: string, actions: readonly string[], env: Record<string, string>, log: (line: string) => void): Promise<void> {
  const makefiles = (await readdir(outDir, { recursive: true })).filter((f) => f.endsWith('.mk'));
  const texts = await Promise.all(makefiles.map((f) => readFile(join(outDir, f), 'utf8')));
  const vars: Record<string, string> = { srcdir, obj: join(builddir, 'obj'), builddir };
  for (const action of actions) {
    const line = texts.flatMap((t) => t.split('\n')).find((l) => l.startsWith('cmd_') && l.includes(`_${action} = `));
    if (!line) throw new UserError(`gyp action ${action}: no command in ${outDir}/*.mk`, ExitCode.buildFailed);
    const body = line.slice(line.indexOf(' = ') + 3).replace(/\$\((\w+)\)/g, (_, name: string) => vars[name] ?? '');
    let cwd = outDir;
    log(`  gyp action ${action}`);
    for (const step of body.split(/;\s*/).map((x) => x.trim()).filter(Boolean)) {
      const words = splitWords(step);
      if (words[0] === 'cd') cwd = resolve(cwd, words[1]!);
      else if (words[0] === 'mkdir') await mkdir(words[words.length - 1]!, { recursive: true });
      else if (words[0] === 'export' || /^\w+=/.test(words[0]!)) continue;
      else {
        const result = await execa(words[0]!, words.slice(1), { cwd, env, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
        if (result.exitCode !== 0) throw new UserError(`gyp action ${action} failed:\n${tail(result.all ?? '', 8)}`, ExitCode.buildFailed);
      }
    }
  }
}

export interface Configured {
  /** One translation unit per source (its first compiler call): what the walk compiles. */
  readonly database: TranslationUnit[];
  /** Every compiler call, in the build system's order (a source compiled for two targets twice). */
  readonly calls: TranslationUnit[];
}

/**
 * Runs the profile's configure step in `tree` (a copy of the sources, at the path it keeps:
 * CMake and waf record absolute paths) and reads its compile database. Throws UserError when
 * configure fails or writes no database. Shared by prepare() and configure-unit.ts.
 */
export async function configureInPlace(pkg: string, profile: Profile, tree: string, log: (line: string) => void): Promise<Configured> {
  // Debian's build environment, not the caller's: a user's PATH (pyenv shims, ccache) changes
  // which python or compiler configure finds.
  const env = { ...cleanBuildEnv(), ...profile.env };
  for (const target of profile.configure ?? []) await runRules(tree, target, env, log);
  let database: TranslationUnit[];
  let calls: TranslationUnit[];
  if (profile.how === 'waf') {
    // waf keeps absolute paths: configured here, at the prepared tree's final path (samba.ts).
    await configureSamba(tree, log);
    database = (await sambaCommands(tree)).map((c) => toTranslationUnit(c, tree)).filter((u): u is TranslationUnit => u !== null);
    calls = database;
  } else if (profile.how === 'cmake') {
    const json = await readFile(join(tree, profile.path!), 'utf8').catch(() => {
      throw new UserError(`${pkg}: configure wrote no ${profile.path}`, ExitCode.buildFailed);
    });
    calls = fromCompileCommands(json, tree, true);
    database = unique(calls);
  } else {
    const dir = join(tree, profile.path ?? '.');
    const dry = await execa('make', ['-n', '-C', dir, ...(profile.makeArgs ?? [])], { env, extendEnv: false, reject: false, all: false, maxBuffer: 512 * 1024 * 1024 });
    if (dry.exitCode !== 0) throw new UserError(`${pkg}: make -n in ${profile.path} failed:\n${tail(dry.stderr, 8)}`, ExitCode.buildFailed);
    calls = fromMakeDryRun(dry.stdout, dir, tree, true);
    database = unique(calls);
    if (profile.gypActions?.length) await runGypActions(dir, join(dir, 'Release'), tree, profile.gypActions, env, log);
  }
  if (database.length === 0) throw new UserError(`${pkg}: the compile database is empty`, ExitCode.buildFailed);
  return { database, calls };
}

/**
 * The prepared tree for `fullSeries` (the base version with its whole series applied, from
 * treeAt): built or configured once, then cached.
 */
export async function prepare(manifest: Manifest, profile: Profile, fullSeries: string, log: (line: string) => void): Promise<Prepared> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) / 100) / 10;
  if (profile.how === 'build-log') {
    const source = await describeTree(fullSeries);
    const cmd = await chooseBuildCommand(source, undefined);
    log(`${manifest.package}: the original build through the compiler wrapper (${cmd.display}; cached)`);
    const build = await originalBuild(source, cmd, join(cacheRoot, 'wfbuild', 'orig'), () => {});
    return { tree: build.tree, database: fromBuildLog(build.log, build.tree), cached: build.cached, seconds: elapsed(), original: build };
  }
  const root = join(preparedCache, `${manifest.package}_${versionWithoutEpoch(manifest.baseVersion)}`, profile.name);
  const tree = join(root, 'tree');
  const databaseFile = join(root, 'database.json');
  if (await exists(join(root, '.complete'))) {
    const stored = JSON.parse(await readFile(databaseFile, 'utf8')) as { tree: string; units: TranslationUnit[] };
    return { tree, database: stored.units.map((u) => rebase(u, stored.tree, tree)), cached: true, seconds: elapsed() };
  }
  // An unfinished preparation (killed run) is started over: its state is unknown.
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  log(`${manifest.package}: configuring once for compile-only mode (${profile.configure?.join(', ') ?? profile.how})`);
  await copyTree(fullSeries, tree);
  const { database } = await configureInPlace(manifest.package, profile, tree, log);
  await writeFile(databaseFile, JSON.stringify({ tree, units: database }) + '\n');
  await writeFile(join(root, '.complete'), `${new Date().toISOString()}\n`);
  log(`${manifest.package}: ${database.length} translation units in the compile database (${elapsed()} s)`);
  return { tree, database, cached: false, seconds: elapsed() };
}
