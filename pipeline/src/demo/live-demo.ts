/**
 * The demo's main job: a real Debian server and a real Debian patch. `wfbuild live memcached
 * --mode both` with a short soak: memcached 1.6.18-1 enabled without Debian's
 * 0007-uninitialized-variables, that fix made into a bundle by `wfbuild --enabled`, applied and
 * rolled back every second under memcaslap's load, local then global quiescence, from one boot
 * of the bench kernel; then the table and the verdicts (no failed request, no dropped
 * connection, every transition done, memccapable passing).
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { ModeReport } from '../live/analyze.ts';
import { runVerdicts, type Verdict } from '../live/bench.ts';
import { liveTable } from '../live/command.ts';
import { runLive, type LiveReport } from '../live/run.ts';

export interface LiveDemoOptions {
  readonly out: string;
  /** Apply + rollback cycles per mode (default 10). */
  readonly cycles: number;
  /** memccapable after every K-th cycle and the last (default 5). */
  readonly capableEvery: number;
  readonly onOutput?: (line: string) => void;
}

export interface LiveDemoResult {
  readonly report: LiveReport;
  readonly verdicts: readonly Verdict[];
  readonly text: string;
}

export const demoDefaults = { cycles: 10, capableEvery: 5 } as const;

export async function runLiveDemo(opts: LiveDemoOptions): Promise<LiveDemoResult> {
  const report = await runLive({
    server: 'memcached',
    modes: ['local', 'global'],
    cycles: opts.cycles,
    intervalS: 1,
    out: opts.out,
    debianPatch: '0007-uninitialized-variables',
    capableEvery: opts.capableEvery,
    ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
  });
  const verdicts = Object.entries(report.modes).flatMap(([mode, r]) =>
    r && !('error' in r) ? runVerdicts(mode, r as ModeReport, opts.cycles, { memory: false }) : [{ what: mode, ok: false, detail: r?.error ?? 'no result' }],
  );
  const text = [liveTable(report), '', ...verdicts.map((v) => `${v.ok ? 'ok  ' : 'FAIL'} ${v.what}: ${v.detail}`), '', `written: ${join(opts.out, 'live.json')}, ${join(opts.out, 'latency.svg')}`].join('\n');
  await writeFile(join(opts.out, 'demo.txt'), `${text}\n`);
  return { report, verdicts, text };
}
