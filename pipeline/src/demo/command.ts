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
import { demoDefaults, runLiveDemo } from './live-demo.ts';

const help = `Usage: wfbuild demo [--cycles N] [--capable-every K] [--out DIR]
       wfbuild demo --kvd [--mode local|global] [--workers N] [--clients N] [--seconds S] [--out DIR]

The main job, end to end, on a real Debian server and a real Debian patch:
\`wfbuild live memcached --mode both\` with a short soak.
  1. wfbuild enable: memcached 1.6.18-1 built the Debian way with its enablement patch
     (corpus/apps/memcached) and without Debian's 0007-uninitialized-variables (cached)
  2. wfbuild 0007 --enabled: that fix made into a bundle against exactly that build
  3. the bench kernel with address-space generations (built once, cached), booted under QEMU;
     memcached from its .deb under memcaslap's load and our per-request client; the fix
     applied and rolled back every second, --cycles times, local then global quiescence;
     memccapable after every K-th cycle and the last
  4. prints the table (latency in and outside the patch windows, switch times, wf_create,
     fork, memory) and the verdicts; DIR/live.json, DIR/latency.svg
Options:
  --cycles N         apply+rollback cycles per mode (default 10)
  --capable-every K  memccapable after every K-th cycle and the last (default 5)
  --out DIR          default ./wfbuild-out/demo
  --kvd              the earlier demo on the bundled toy server (corpus/demo: kvd, its key
                     truncation fix) on the debug kernel, kept as a fixture; its options:
                     --mode local|global, --workers N, --clients N, --seconds S
Exit: 0 when every verdict holds; 1 when one does not (the table says which).`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the main job end to end: memcached from Debian patched with Debian\'s fix under load in the guest, local vs global',
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
        kvd: { type: 'boolean' },
        cycles: { type: 'string' },
        'capable-every': { type: 'string' },
      },
    });
    if (!values.kvd) {
      if (values.mode || values.workers || values.clients || values.seconds) throw new UserError('--mode, --workers, --clients and --seconds are options of the kvd demo (--kvd)');
      const result = await runLiveDemo({
        out: resolve(values.out ?? 'wfbuild-out/demo'),
        cycles: intOption('cycles', values.cycles, 1, 1000) ?? demoDefaults.cycles,
        capableEvery: intOption('capable-every', values['capable-every'], 1, 1000) ?? demoDefaults.capableEvery,
        onOutput: (line) => console.error(`demo: ${line}`),
      });
      console.log(result.text);
      return result.verdicts.every((v) => v.ok) ? ExitCode.ok : ExitCode.internal;
    }
    if (values.cycles || values['capable-every']) throw new UserError('--cycles and --capable-every belong to the memcached demo (without --kvd)');
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
