import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, realpath, rm, writeFile, open } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { capturedPath, installShims, readRecords, wrapperEnv, wrapperVersion, writeBuildLog, readBuildLog, type BuildLogEntry } from '../wrapper/index.ts';
import { readMakeRecords, type MakeInvocation } from '../wrapper/make-records.ts';
import { reproducibleEnv } from './reproducible.ts';
import { bindMountAvailable, runBuild } from './build-command.ts';
import { buildId } from '../bundle/index.ts';
import { buildProcessEnv } from './build-env.ts';
import { withLock } from '../common/lock.ts';
import { copyTree, exists } from '../common/fs.ts';
import { needsBuild, type BuildCommand, type OriginalBuild, type SourceTree, type Stage } from './context.ts';

export type { OriginalBuild } from './context.ts';

/**
 * Stage 3, original build: the tree built once through the compiler wrapper, in the cache
 * (cacheRoot/wfbuild/orig/<key>), so classifying many patches of one package builds it once.
 */
export const originalBuildStage: Stage = {
  key: 'originalBuild',
  title: () => 'build the original through the compiler wrapper',
  async run(ctx, task) {
    if (!needsBuild(ctx)) return task.skip('no compiled code touched: nothing to build');
    if (ctx.original) {
      task.title = `original build: the enabled build of wfbuild enable (${ctx.original.dir})`;
      return;
    }
    const original = await originalBuild(ctx.tree!, ctx.cmd!, join(ctx.input.cache, 'orig'), (line) => (task.output = line));
    ctx.original = original;
    const compiles = original.log.filter((e) => e.kind === 'compile').length;
    task.title = `original build ${original.cached ? 'from the cache' : 'built'}: ${compiles} objects (${ctx.cmd!.display})`;
  },
};

interface Meta {
  readonly key: string;
  readonly source: string;
  readonly command: string;
  readonly wrapper: string;
  readonly shipped: Record<string, string> | null;
  readonly builtAt: string;
}

/**
 * What identifies the source: package and version (or the folder's name) and a hash of the
 * tree's contents — every file's bytes and mode, every symbolic link's target. Contents, not
 * mtimes: the same source fetched or cloned again (a new machine, a fresh cache, CI's clone)
 * is the same original build, while a locally edited tree is a different one.
 */
async function sourceIdentity(tree: SourceTree): Promise<string> {
  const prune = ['.', '-path', './.git', '-prune', '-o'];
  const [entries, contents] = await Promise.all([
    execa('find', [...prune, '(', '-type', 'f', '-o', '-type', 'l', ')', '-printf', '%y %m %P %l\n'], { cwd: tree.dir }),
    execa('find', [...prune, '-type', 'f', '-exec', 'sha256sum', '--', '{}', '+'], { cwd: tree.dir, maxBuffer: 1 << 30 }),
  ]);
  const hash = createHash('sha256')
    .update(entries.stdout.split('\n').sort().join('\n'))
    .update(contents.stdout.split('\n').sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  return tree.package ? `${tree.package.name}_${tree.package.version}@${hash}` : `${basename(tree.dir)}@${hash}`;
}

/**
 * Bump when what a cached original build holds changes (layout, meta.json, shipped detection).
 * 2: logs of builds reached through a symbolic link had paths outside the tree (readRecords).
 * 3: makes.json (the recorded makes the patched build re-runs) and linked/ (binaries as linked).
 * 4: shipped also from the package's own install (debian/rules install-arch), by build-id too.
 */
const cacheFormat = 4;

export async function originalBuildKey(tree: SourceTree, cmd: BuildCommand): Promise<{ key: string; source: string; wrapper: string }> {
  const source = await sourceIdentity(tree);
  const wrapper = await wrapperVersion();
  const key = createHash('sha256').update(JSON.stringify([cacheFormat, source, cmd.display, cmd.env, wrapper])).digest('hex').slice(0, 24);
  return { key, source, wrapper };
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

async function isElf(path: string): Promise<boolean> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return false;
  try {
    const buf = Buffer.alloc(4);
    await handle.read(buf, 0, 4, 0);
    return buf.toString('latin1') === '\x7fELF';
  } finally {
    await handle.close();
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** An installed ELF file: its path on the target system and how to recognise it. */
interface InstalledElf {
  readonly installed: string;
  readonly sha256: string;
  readonly buildId: string | null;
}

/** The ELF files under `root`, named by their path below it (root = the target's /). */
async function installedElves(root: string): Promise<InstalledElf[]> {
  const found: InstalledElf[] = [];
  for (const file of await listFiles(root).catch(() => [] as string[])) {
    if (!(await isElf(file))) continue;
    found.push({ installed: file.slice(root.length), sha256: await sha256File(file), buildId: await buildId(file) });
  }
  return found;
}

/**
 * The package's own install, for packages that install through their own rules rather than
 * dh_auto_install (postfix's `make install` in override_dh_auto_install, a `$(MAKE) -C DIR
 * install`): `debian/rules install-arch` in a throw-away copy of the built tree, bind-mounted at
 * the build's path when possible (absolute paths a build system stored stay valid). Returns the
 * folders it created directly under debian/ (debian/tmp, debian/<binary package>): each is a
 * root of installed files. Best effort: a failed install still leaves what it installed.
 */
async function packageInstall(tree: string, env: Record<string, string>, work: string): Promise<string[]> {
  const before = new Set(await readdir(join(tree, 'debian')));
  const copy = join(work, 'tree');
  await mkdir(work, { recursive: true });
  await copyTree(tree, copy);
  const argv = ['nice', '-n', '10', 'debian/rules', 'install-arch'];
  const bound = (await bindMountAvailable()) ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && cd "$2" && shift 2 && exec "$@"', 'sh', copy, tree, ...argv] : argv;
  await execa(bound[0], bound.slice(1), { cwd: copy, env, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
  const after = await readdir(join(copy, 'debian'), { withFileTypes: true });
  return after.filter((e) => e.isDirectory() && !e.name.startsWith('.') && !before.has(e.name)).map((e) => join(copy, 'debian', e.name));
}

/**
 * Matches linked outputs with installed files: by bytes (with nostrip the installed ELF files
 * are the built ones byte for byte), then by build-id, then by a unique file name (libtool
 * relinks some files on install: new rpath, other bytes). Adds to `shipped`, returns what is left.
 */
async function matchInstalled(outputs: readonly { output: string; built: string }[], installed: readonly InstalledElf[], shipped: Record<string, string>): Promise<{ output: string; built: string }[]> {
  const byHash = new Map(installed.map((f) => [f.sha256, f.installed] as const));
  const byId = new Map(installed.filter((f) => f.buildId !== null).map((f) => [f.buildId!, f.installed] as const));
  const unmatched: { output: string; built: string }[] = [];
  for (const o of outputs) {
    const hit = byHash.get(await sha256File(o.built)) ?? byId.get((await buildId(o.built)) ?? '');
    if (hit) shipped[o.output] = hit;
    else unmatched.push(o);
  }
  const taken = new Set(Object.values(shipped));
  const rest: { output: string; built: string }[] = [];
  for (const o of unmatched) {
    const named = [...new Set(installed.filter((f) => basename(f.installed) === basename(o.output) && !taken.has(f.installed)).map((f) => f.installed))];
    const candidates = unmatched.filter((u) => basename(u.output) === basename(o.output));
    if (named.length === 1 && candidates.length === 1) shipped[o.output] = named[0];
    else rest.push(o);
  }
  return rest;
}

/**
 * Does the package replace dh_auto_install with its own rule (override_dh_auto_install[-arch])?
 * Then the upstream install rule is not how it installs, and running it can cost a whole
 * build: exim4's override installs from the copies it built (b-exim4-daemon-*), and the top-level
 * `make install` that dh_auto_install runs first built the never-built top-level tree (~200 s of
 * a 350 s wfbuild). `dh install-arch --no-act` names the override as dh would run it.
 */
export async function overridesAutoInstall(tree: string, env: Record<string, string>): Promise<boolean> {
  const plan = await execa('dh', ['install-arch', '--no-act'], { cwd: tree, env, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
  return plan.exitCode === 0 && /^\s*debian\/rules override_dh_auto_install(-arch)?\s*$/m.test(plan.all ?? '');
}

/**
 * For a Debian tree: which linked files the package installs, and where (e.g.
 * /usr/bin/memcached). First `dh_auto_install` into a staging folder (the upstream install
 * rule; not when the package overrides it); what that does not place, the package's own
 * install (packageInstall). Binaries that
 * are only built (memcached-debug, test programs) are then not patch targets. Null when
 * neither install ran.
 */
async function findShipped(tree: string, linked: string, log: readonly BuildLogEntry[], env: Record<string, string>, staging: string): Promise<Record<string, string> | null> {
  const outputs: { output: string; built: string }[] = [];
  for (const entry of log) {
    if (entry.kind !== 'link' || /\.(o|a|lo)$/.test(entry.output)) continue;
    // The copy taken at link time: the tree's file may be gone or changed by now.
    const built = (await exists(capturedPath(linked, entry.output))) ? capturedPath(linked, entry.output) : join(tree, entry.output);
    if ((await exists(built)) && !outputs.some((o) => o.output === entry.output)) outputs.push({ output: entry.output, built });
  }
  const shipped: Record<string, string> = {};
  let left = outputs;
  let autoInstalled = false;
  if (!(await overridesAutoInstall(tree, env))) {
    const auto = await execa('dh_auto_install', [`--destdir=${staging}`], { cwd: tree, env, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
    autoInstalled = auto.exitCode === 0;
    if (autoInstalled) left = await matchInstalled(outputs, await installedElves(staging), shipped);
  }
  if (left.length === 0) return shipped;
  const work = `${staging}-package`;
  try {
    const roots = await packageInstall(tree, env, work);
    const installed = (await Promise.all(roots.map(installedElves))).flat();
    if (installed.length === 0 && !autoInstalled) return null;
    await matchInstalled(left, installed, shipped);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return shipped;
}

/**
 * Files dated after the clock (a tree unpacked or cloned before the clock was set back, a
 * machine whose clock runs behind) get the current time in the build's copy, as tar does when
 * it warns of "time stamp in the future": else configure stops ("newly created file is older
 * than distributed files") and make rebuilds what it has just built.
 */
async function clampFutureTimes(tree: string): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  await execa('find', ['.', '-newermt', `@${now}`, '-exec', 'touch', '-h', '-d', `@${now}`, '{}', '+'], { cwd: tree });
}

/**
 * The original build, from the cache or built now: the tree is copied into the cache and built
 * there through the compiler wrapper. A half-finished build (killed run) has no meta.json and
 * is rebuilt from scratch.
 */
export async function originalBuild(tree: SourceTree, cmd: BuildCommand, cacheDir: string, onOutput?: (line: string) => void): Promise<OriginalBuild> {
  const { key } = await originalBuildKey(tree, cmd);
  await mkdir(cacheDir, { recursive: true });
  // Builds record and embed physical paths (a shell's $PWD after a chdir, DWARF's comp_dir), and
  // the patched build must run where the original did: the build's folder is always named by
  // its physical path, also when the cache is reached through a symbolic link.
  const dir = join(await realpath(cacheDir), key);
  // One builder per cache key: concurrent runs (the corpus classifying patches of one
  // package in parallel) wait for the first one's build instead of racing it.
  return withLock(`${dir}.lock`, () => cachedOrBuild(tree, cmd, dir, onOutput), (owner) => onOutput?.(`waiting for process ${owner} building the same original`));
}

async function cachedOrBuild(tree: SourceTree, cmd: BuildCommand, dir: string, onOutput?: (line: string) => void): Promise<OriginalBuild> {
  const { key, source, wrapper } = await originalBuildKey(tree, cmd);
  const metaPath = join(dir, 'meta.json');
  if (await exists(metaPath)) {
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Meta;
    const makes = JSON.parse(await readFile(join(dir, 'makes.json'), 'utf8')) as MakeInvocation[];
    return { key, dir, tree: join(dir, 'tree'), log: await readBuildLog(join(dir, 'build-log.jsonl')), shipped: meta.shipped, cached: true, makes, linked: join(dir, 'linked') };
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const built = join(dir, 'tree');
  try {
    onOutput?.(`copying ${tree.dir}`);
    await copyTree(tree.dir, built);
    await clampFutureTimes(built);
    const shims = join(dir, 'shims');
    const records = join(dir, 'records');
    await installShims(shims);
    await mkdir(records);
    const env = { ...(await reproducibleEnv(built)), ...wrapperEnv(shims, records, built) };
    onOutput?.(`${cmd.display} (through the compiler wrapper)`);
    // A failed build's log is kept beside the cache (the tree is removed below).
    await runBuild(cmd, built, env, `original build of ${tree.package ? `${tree.package.name} ${tree.package.version}` : tree.dir}`, undefined, 'original', resolve(dir, '../../failed'));
    const linked = join(dir, 'linked');
    const log = await readRecords(built, records, linked);
    const makes = await readMakeRecords(built, records);
    if (!log.some((e) => e.kind === 'compile')) {
      throw new UserError(`original build (${cmd.display}) compiled nothing through the compiler wrapper; is the tree already built, or does its build call the compiler by absolute path?`, ExitCode.buildFailed);
    }
    await writeBuildLog(join(dir, 'build-log.jsonl'), log);
    await writeFile(join(dir, 'makes.json'), JSON.stringify(makes, null, 1) + '\n');
    await rm(records, { recursive: true, force: true });
    let shipped: Record<string, string> | null = null;
    if (tree.debian) {
      onOutput?.('dh_auto_install into a staging folder (which binaries the package ships)');
      const staging = join(dir, 'staging');
      const installRecords = join(dir, 'install-records');
      await mkdir(installRecords);
      shipped = await findShipped(built, linked, log, buildProcessEnv(cmd.env, { ...env, ...wrapperEnv(shims, installRecords, built) }), staging);
      await rm(staging, { recursive: true, force: true });
      await rm(installRecords, { recursive: true, force: true });
    }
    const meta: Meta = { key, source, command: cmd.display, wrapper, shipped, builtAt: new Date().toISOString() };
    await writeFile(metaPath, JSON.stringify(meta, null, 2) + '\n');
    return { key, dir, tree: built, log, shipped, cached: false, makes, linked };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
