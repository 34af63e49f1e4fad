import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../paths.ts';
import { classifyPatch, type Report } from '../stages/index.ts';
import { runInVm } from '../vm/index.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { parseEvents, summarizeDemo, type DemoSummary, type LoadStats } from './summary.ts';

export const demoDir = join(repoRoot, 'corpus/demo');
export const demoPatch = join(demoDir, 'kvd-long-keys.patch');
export const runtimeDir = join(repoRoot, 'kpatch-fork/runtime');

export interface DemoOptions {
  mode: 'local' | 'global';
  workers: number;
  clients: number;
  seconds: number;
  triggerMs: number;
  /** Where report.json and the bundle go. */
  out: string;
  /** The guest kernel (from buildKernel); built or reused when absent. */
  bzImage?: string;
  renderer: 'default' | 'simple' | 'silent';
  onConsole?: (text: string) => void;
}

export interface DemoResult {
  report: Report;
  summary: DemoSummary;
  kernelFailure: string | null;
}

/** libwfpatch must exist before kvd links against it. */
export async function buildRuntime(): Promise<void> {
  const result = await execa('make', ['-C', runtimeDir, '-j2'], { reject: false, all: true });
  if (result.exitCode !== 0) throw new UserError(`make -C ${runtimeDir} failed:\n${result.all ?? ''}`, ExitCode.buildFailed);
}

/** wfbuild on the bundled example: kvd's source tree and its DEP-3 fix. */
export async function buildDemoBundle(opts: DemoOptions): Promise<Report> {
  // kvd's Makefile finds libwfpatch through WFPATCH_DIR (wfbuild builds a copy of the tree, in a
  // clean environment: the variable goes on make's command line, where the report records it).
  const buildCmd = `make -j2 WFPATCH_DIR=${runtimeDir}`;
  const report = await classifyPatch({ patch: demoPatch, source: join(demoDir, 'kvd'), out: opts.out, renderer: opts.renderer, buildCmd });
  if (!report.kpatchable || report.bundles.length !== 1) {
    throw new UserError(`the demo patch was not made into one bundle: ${JSON.stringify(report.reasons)}`, ExitCode.internal);
  }
  return report;
}

/** Boots the guest, runs kvd under load, triggers the patch, and reads back what happened. */
export async function runDemoGuest(opts: DemoOptions, report: Report): Promise<DemoResult> {
  const bundle = report.bundles[0];
  if (bundle.file === null) throw new UserError('the demo report has no bundle file', ExitCode.internal);
  const kvd = bundle.originalPath;
  const kvload = join(dirname(kvd), 'kvload');
  const bundlePath = join(opts.out, bundle.file);
  const results = await mkdtemp(join(tmpdir(), 'wfpatch-demo-'));
  try {
    const env: Record<string, string> = {
      KVD: kvd,
      KVLOAD: kvload,
      BUNDLE: bundlePath,
      WORKERS: String(opts.workers),
      CLIENTS: String(opts.clients),
      SECONDS: String(opts.seconds),
      TRIGGER_MS: String(opts.triggerMs),
    };
    if (opts.mode === 'global') env.WF_GLOBAL = '1';
    const run = await runInVm({
      variant: 'debug',
      bzImage: opts.bzImage,
      cpus: 2,
      memMiB: 512,
      timeoutSec: 120 + opts.seconds * 4,
      program: join(demoDir, 'guest-demo.sh'),
      files: [{ host: kvd }, { host: kvload }, { host: bundlePath }],
      env,
      outDir: results,
      onConsole: opts.onConsole,
    });
    if (run.timedOut) throw new UserError(`the demo guest hung:\n${run.console.slice(-2000)}`, ExitCode.guestTimeout);
    if (run.exitCode !== 0) throw new UserError(`the demo guest failed (exit ${run.exitCode}):\n${run.console.slice(-2000)}`, ExitCode.internal);
    const load = JSON.parse(await readFile(join(results, 'load.json'), 'utf8')) as LoadStats;
    // The operator's record of the live patch, next to report.json.
    await copyFile(join(results, 'wfpatch.jsonl'), join(opts.out, `wfpatch-${opts.mode}.jsonl`));
    await copyFile(join(results, 'load.json'), join(opts.out, `load-${opts.mode}.json`));
    await copyFile(join(results, 'load.err'), join(opts.out, `load-${opts.mode}.err`));
    const events = parseEvents(await readFile(join(results, 'wfpatch.jsonl'), 'utf8'));
    return { report, summary: summarizeDemo(events, load), kernelFailure: run.kernelFailure };
  } finally {
    await rm(results, { recursive: true, force: true });
  }
}
