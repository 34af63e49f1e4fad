import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { Listr } from 'listr2';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { intOption } from '../cli/options.ts';
import { buildKernel } from '../vm/index.ts';
import type { Report } from '../stages/index.ts';
import { buildDemoBundle, buildRuntime, runDemoGuest, type DemoOptions, type DemoResult } from './run.ts';
import { renderSummary } from './summary.ts';

const help = `Usage: wfbuild demo [--mode local|global] [--workers N] [--clients N] [--seconds S] [--out DIR]

The main job, end to end, on the bundled example (corpus/demo): kvd, a multi-threaded
key-value server linked with libwfpatch, and a DEP-3 patch that fixes its key truncation.
  1. builds the guest kernel with the address-space generation extension (cached)
  2. wfbuild: triage, original build, patched build, create-diff-object, bundle (report.json)
  3. boots the kernel under QEMU, runs kvd under load from kvload, triggers the patch
     mid-run, and reports when each thread switched and when the bug stopped answering.
Options:
  --mode      local (default: each thread migrates to the new generation on its own) or
              global (all threads park at a barrier, the baseline)
  --workers   kvd worker threads (default 4)     --clients  load threads (default 4)
  --seconds   length of the load (default 4)     --out      default ./wfbuild-out/demo`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the main job end to end on the bundled example: build, patch a running server in the guest',
  help,
  async run(args) {
    const { values } = parseArgs({
      args,
      strict: true,
      options: {
        mode: { type: 'string' },
        workers: { type: 'string' },
        clients: { type: 'string' },
        seconds: { type: 'string' },
        out: { type: 'string' },
      },
    });
    const mode = values.mode ?? 'local';
    if (mode !== 'local' && mode !== 'global') throw new UserError(`--mode must be local or global, got '${mode}'`);
    const seconds = intOption('seconds', values.seconds, 1, 64) ?? 4;
    const opts: DemoOptions = {
      mode,
      workers: intOption('workers', values.workers, 1, 64) ?? 4,
      clients: intOption('clients', values.clients, 1, 64) ?? 4,
      seconds,
      triggerMs: Math.round((seconds * 1000) / 3),
      out: resolve(values.out ?? 'wfbuild-out/demo'),
      renderer: 'silent',
    };
    let report: Report | undefined;
    let result: DemoResult | undefined;
    await new Listr(
      [
        {
          title: 'guest kernel with address-space generations (debug variant)',
          task: async (_ctx, task) => {
            const kernel = await buildKernel({ variant: 'debug' });
            opts.bzImage = kernel.bzImage;
            task.title = `guest kernel ${kernel.version} (${kernel.cached ? 'cached' : 'built'}, key ${kernel.cacheKey})`;
          },
        },
        { title: 'libwfpatch', task: () => buildRuntime() },
        {
          title: 'wfbuild corpus/demo/kvd-long-keys.patch (triage, builds, create-diff-object, bundle)',
          task: async (_ctx, task) => {
            report = await buildDemoBundle(opts);
            const b = report.bundles[0];
            task.title = `wfbuild: text-only ${report.textOnly ? 'yes' : 'no'}, kpatch-able ${report.kpatchable ? 'yes' : 'no'}; bundle ${b.file} for ${b.binary} (build-id ${(b.buildId ?? "none").slice(0, 12)})`;
          },
        },
        {
          title: `kvd under load in the guest, patched mid-run (${mode} mode)`,
          task: async (_ctx, task) => {
            result = await runDemoGuest(opts, report as Report);
            task.title = `kvd patched in the guest (${mode} mode): ${result.summary.outcome ?? 'no outcome'}`;
          },
        },
      ],
      { renderer: 'default', fallbackRenderer: 'simple', exitOnError: true },
    ).run();
    const final = result as DemoResult;
    console.log(renderSummary(final.summary));
    console.log(`report: ${opts.out}/report.json`);
    if (final.kernelFailure) {
      console.error(`guest kernel failure:\n${final.kernelFailure}`);
      return ExitCode.kernelFailure;
    }
    return final.summary.problems.length === 0 ? ExitCode.ok : ExitCode.internal;
  },
};
