// The libwfpatch benchmark in the guest: local (generations) vs global (barrier) under a steady
// call load, printed side by side from one guest run (kpatch-fork/runtime/tests/bench.c).
//
//   npx tsx pipeline/src/apply/bench.ts [--variant bench|debug] [--bzimage PATH] [--threads N] [--seconds S]
//
// TCG time is not native time: compare the two columns, not the absolute figures.
import { parseArgs } from 'node:util';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../paths.ts';
import { runInVm } from '../vm/index.ts';
import type { KernelVariant } from '../kernel/index.ts';

export interface RuntimeBenchResult {
  readonly table: string;
  readonly json: unknown;
}

export async function runRuntimeBench(opts: {
  variant: KernelVariant;
  bzImage?: string;
  threads: number;
  seconds: number;
}): Promise<RuntimeBenchResult> {
  const runtime = join(repoRoot, 'kpatch-fork/runtime');
  const build = join(runtime, 'tests/build');
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork'), '-j2'], { env: { MAKEFLAGS: '' } });
  await execa('make', ['-C', runtime, 'test-programs']);
  const out = await mkdtemp(join(tmpdir(), 'wfruntime-bench-'));
  const vm = await runInVm({
    variant: opts.variant,
    ...(opts.bzImage ? { bzImage: opts.bzImage } : {}),
    program: join(build, 'bench'),
    args: ['both', join(build, 'bench-v2.o'), String(opts.threads), String(opts.seconds)],
    files: [{ host: join(build, 'bench-v2.o') }],
    cpus: 2,
    timeoutSec: 600,
    outDir: out,
  });
  if (vm.exitCode !== 0 || vm.kernelFailure) {
    throw new Error(`benchmark guest failed (exit ${vm.exitCode}): ${vm.kernelFailure ?? vm.console.slice(-2000)}`);
  }
  const start = vm.console.indexOf('libwfpatch benchmark');
  const table = start >= 0 ? vm.console.slice(start).split('\n').slice(0, 11).join('\n') : vm.console;
  const json: unknown = JSON.parse(await readFile(join(out, 'runtime-bench.json'), 'utf8'));
  return { table, json };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      variant: { type: 'string', default: 'bench' },
      bzimage: { type: 'string' },
      threads: { type: 'string', default: '8' },
      seconds: { type: 'string', default: '1' },
    },
    strict: true,
  });
  const result = await runRuntimeBench({
    variant: values.variant as KernelVariant,
    bzImage: values.bzimage,
    threads: Number(values.threads),
    seconds: Number(values.seconds),
  });
  console.log(result.table);
  console.log(JSON.stringify(result.json));
}
