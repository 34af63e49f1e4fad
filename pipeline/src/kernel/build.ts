import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, repoRoot } from '../paths.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { checkMergedConfig, configFragments, isDebianBased, kernelVariants, parseConfig, type ConfigFragment, type KernelVariant } from './config.ts';
import { kernelBuildPrerequisites, requirePrerequisites } from './prerequisites.ts';
import { readSeries, sha256 } from './series.ts';
import { linuxSource } from './source.ts';
import { withLock } from '../common/lock.ts';
import { prepareTree, type SourceTree } from './tree.ts';
import { exists } from '../common/fs.ts';
import { debianConfigPrerequisite, readDebianConfig, withoutModules } from './debian-config.ts';

export interface BuildKernelOptions {
  variant: KernelVariant;
  /** Folder with `series` and the patches; default kernel/patches. Tests point it at a copy. */
  patchesDir?: string;
  /** Folder with the *.config fragments; default kernel/config. */
  configDir?: string;
  /** Progress and compiler output, one line at a time. */
  onOutput?: (line: string) => void;
  /** make -j; default the number of CPUs. */
  jobs?: number;
  /**
   * Build folder name under cacheRoot/kernel/build (default: the variant). One folder per
   * variant keeps rebuilds incremental; an experiment (e.g. a KASAN config) uses its own so
   * it does not turn the next regular build into a full one.
   */
  buildSlot?: string;
}

export interface KernelBuild {
  bzImage: string;
  /** `make kernelrelease`, e.g. 6.1.192-wfpatch. */
  version: string;
  cacheKey: string;
  /** True when an earlier build with the same inputs was reused. */
  cached: boolean;
  /** The final .config, and System.map, next to bzImage. */
  config: string;
  systemMap: string;
}

interface KernelMeta {
  version: string;
  cacheKey: string;
  variant: KernelVariant;
  linuxSource: string;
  patches: string[];
  fragments: string[];
  buildSeconds: number;
  builtAt: string;
}

/** Bump when the way a kernel is built changes, so old cache entries are not reused. */
const builderFormat = 1;

export const kernelCacheDir: string = join(cacheRoot, 'kernel');

/**
 * kernel/patches, or WFPATCH_KERNEL_PATCHES: lets a whole test run use another series (an
 * empty one while the real series is being reworked, a work-in-progress copy).
 */
export function defaultPatchesDir(): string {
  return process.env.WFPATCH_KERNEL_PATCHES || join(repoRoot, 'kernel/patches');
}

/** kernel/config, or WFPATCH_KERNEL_CONFIG (same reason). */
export function defaultConfigDir(): string {
  return process.env.WFPATCH_KERNEL_CONFIG || join(repoRoot, 'kernel/config');
}


function result(dir: string, meta: KernelMeta, cached: boolean): KernelBuild {
  return {
    bzImage: join(dir, 'bzImage'),
    version: meta.version,
    cacheKey: meta.cacheKey,
    cached,
    config: join(dir, 'config'),
    systemMap: join(dir, 'System.map'),
  };
}

async function readMeta(dir: string): Promise<KernelMeta | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as KernelMeta;
  } catch {
    return undefined;
  }
}

/** Runs make in the kernel tree, streaming lines; failure → UserError with the errors and the tail. */
export async function make(tree: SourceTree, buildDir: string, targets: string[], jobs: number, log: (line: string) => void, logFile?: string): Promise<string> {
  // LOCALVERSION set (even empty) stops setlocalversion from appending "+".
  const args = ['-n', '10', 'make', '-C', tree.path, `O=${buildDir}`, `-j${jobs}`, 'LOCALVERSION=', ...targets];
  const subprocess = execa('nice', args, { all: true, reject: false, buffer: { all: false, stdout: true, stderr: false } });
  const lines: string[] = [];
  for await (const line of subprocess.iterable({ from: 'all' })) {
    lines.push(line);
    log(line);
  }
  const done = await subprocess;
  if (logFile) await writeFile(logFile, lines.join('\n') + '\n');
  if (done.exitCode !== 0) {
    const errors = lines.filter((l) => /error[:\]]|Error \d/.test(l)).slice(0, 15);
    throw new UserError(
      `kernel build failed (make ${targets.join(' ')}, exit ${done.exitCode}${logFile ? `, full log ${logFile}` : ''}):\n` +
        `${errors.join('\n')}\n--- last lines ---\n${lines.slice(-20).join('\n')}`,
      ExitCode.buildFailed,
    );
  }
  return lines.join('\n');
}

/**
 * tinyconfig (or, given `base`, that configuration), then every fragment's assignments
 * appended in merge order (Kconfig takes the last assignment of a symbol), then
 * olddefconfig; then check nothing asked for was dropped.
 */
async function configure(tree: SourceTree, buildDir: string, fragments: readonly ConfigFragment[], log: (line: string) => void, base?: string): Promise<void> {
  const configPath = join(buildDir, '.config');
  if (base === undefined) await make(tree, buildDir, ['tinyconfig'], 1, log);
  else await writeFile(configPath, base);
  const overridden = new Set(fragments.flatMap((f) => [...parseConfig(f.content).keys()]));
  const tiny = (await readFile(configPath, 'utf8')).split('\n').filter((line) => {
    const key = /^(?:# )?(CONFIG_[A-Za-z0-9_]+)[= ]/.exec(line)?.[1];
    return key === undefined || !overridden.has(key);
  });
  const merged = [...tiny, ...fragments.flatMap((f) => [`# --- ${f.name}`, ...f.content.split('\n')])].join('\n') + '\n';
  await writeFile(configPath, merged);
  await make(tree, buildDir, ['olddefconfig'], 1, log);
  checkMergedConfig(fragments, await readFile(configPath, 'utf8'));
}

/** Everything a build of `opts` depends on, and where its output goes. */
export interface KernelInputs {
  variant: KernelVariant;
  log: (line: string) => void;
  jobs: number;
  source: Awaited<ReturnType<typeof linuxSource>>;
  patches: Awaited<ReturnType<typeof readSeries>>;
  fragments: ConfigFragment[];
  /** The configuration the fragments are merged on; undefined: tinyconfig. */
  base: string | undefined;
  cacheKey: string;
  outDir: string;
  buildDir: string;
}

export async function kernelInputs(opts: BuildKernelOptions): Promise<KernelInputs> {
  const { variant } = opts;
  if (!kernelVariants.includes(variant)) {
    throw new UserError(`unknown kernel variant '${String(variant)}' (expected ${kernelVariants.join(' or ')})`);
  }
  const log = opts.onOutput ?? (() => {});
  const patchesDir = opts.patchesDir ?? defaultPatchesDir();
  const configDir = opts.configDir ?? defaultConfigDir();
  const jobs = opts.jobs ?? availableParallelism();
  if (opts.buildSlot !== undefined && !/^[A-Za-z0-9_-]+$/.test(opts.buildSlot)) {
    throw new UserError(`bad build slot '${opts.buildSlot}' (letters, digits, - and _)`);
  }
  const debian = isDebianBased(variant);
  await requirePrerequisites(debian ? [...kernelBuildPrerequisites, debianConfigPrerequisite] : kernelBuildPrerequisites);
  const source = await linuxSource();
  const patches = await readSeries(patchesDir);
  const fragments = await configFragments(configDir, variant);
  const debianConfig = debian ? await readDebianConfig() : undefined;
  const base = variant === 'debian' && debianConfig !== undefined ? withoutModules(debianConfig) : debianConfig;
  const cacheKey = sha256(
    JSON.stringify({
      builderFormat,
      linux: [source.packageVersion, source.fingerprint],
      variant,
      patches: patches.map((p) => [p.name, p.sha256]),
      fragments: fragments.map((f) => [f.name, f.sha256]),
      ...(base === undefined ? {} : { base: sha256(base) }),
    }),
  ).slice(0, 24);
  const outDir = join(kernelCacheDir, 'out', `${variant}-${cacheKey}`);
  const buildDir = join(kernelCacheDir, 'build', opts.buildSlot ?? variant);
  return { variant, log, jobs, source, patches, fragments, base, cacheKey, outDir, buildDir };
}

/**
 * The unpacked tree with the series applied and `inputs.buildDir` configured for it
 * (emptied first if it was built from another unpacked tree). Call under the kernel lock.
 */
export async function configuredTree(inputs: KernelInputs): Promise<SourceTree> {
  const { log, variant, fragments, base, buildDir } = inputs;
  const tree = await prepareTree(kernelCacheDir, inputs.source, inputs.patches, log);
  // Objects built from another unpacked tree may be newer than its (old-dated) sources.
  const stamp = join(buildDir, '.wf-tree-id');
  if ((await readFile(stamp, 'utf8').catch(() => '')) !== tree.id) {
    await rm(buildDir, { recursive: true, force: true });
    await mkdir(buildDir, { recursive: true });
    await writeFile(stamp, tree.id);
  }
  log(`configuring ${variant}: ${base === undefined ? 'tinyconfig' : variant === 'debian' ? 'Debian amd64 without modules' : 'Debian amd64'} + ${fragments.map((f) => f.name).join(' + ')}`);
  await configure(tree, buildDir, fragments, log, base);
  return tree;
}

/**
 * Builds (or reuses) the guest kernel for `variant`: Debian's linux-source-6.1 with the
 * patch series applied and the config fragments merged on tinyconfig (or, for the debian
 * variant, on Debian's configuration). Outputs are cached under cacheRoot/kernel/out/<key>,
 * key = sha256 of the source version, the series and the fragments (and the base
 * configuration); an unchanged second call only hashes those inputs.
 */
export async function buildKernel(opts: BuildKernelOptions): Promise<KernelBuild> {
  const inputs = await kernelInputs(opts);
  const { variant, log, jobs, patches, fragments, cacheKey, outDir, buildDir, source } = inputs;
  const hit = await readMeta(outDir);
  if (hit) return result(outDir, hit, true);

  return withLock(
    join(kernelCacheDir, 'lock'),
    async () => {
      const raced = await readMeta(outDir);
      if (raced) return result(outDir, raced, true);
      const started = performance.now(); // monotonic: the wall clock may be set during a long build
      const tree = await configuredTree(inputs);
      log(`building bzImage (make -j${jobs})`);
      await make(tree, buildDir, ['bzImage'], jobs, log, join(buildDir, 'build.log'));
      const version = (await execa('make', ['-s', '-C', tree.path, `O=${buildDir}`, 'LOCALVERSION=', 'kernelrelease'])).stdout.trim();
      const meta: KernelMeta = {
        version,
        cacheKey,
        variant,
        linuxSource: source.packageVersion,
        patches: patches.map((p) => p.name),
        fragments: fragments.map((f) => f.name),
        buildSeconds: Math.round((performance.now() - started) / 1000),
        builtAt: new Date().toISOString(),
      };
      // Publish atomically: a reader sees a complete folder or none.
      const tmp = `${outDir}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      await copyFile(join(buildDir, 'arch/x86/boot/bzImage'), join(tmp, 'bzImage'));
      await copyFile(join(buildDir, '.config'), join(tmp, 'config'));
      if (await exists(join(buildDir, 'System.map'))) await copyFile(join(buildDir, 'System.map'), join(tmp, 'System.map'));
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
      await rename(tmp, outDir);
      return result(outDir, meta, false);
    },
    (owner) => log(`waiting for the kernel build lock (held by pid ${owner})`),
  );
}
