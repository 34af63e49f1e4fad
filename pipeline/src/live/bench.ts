/**
 * `npm run bench:live`: the soak. `wfbuild live memcached --mode both` with many cycles (default
 * 1000) from one guest boot; memccapable (5–30 s a run in TCG) only after both steps of every
 * K-th cycle and of the last one, so the soak measures patching rather than the tester. Prints
 * the live table, the host's load before and after (the vCPUs share the host), and the soak's
 * verdicts: 0 failed requests, 0 dropped connections, every transition done, memory flat.
 *
 *   npx tsx pipeline/src/live/bench.ts [--cycles N] [--capable-every K] [--interval S] [--out DIR]
 *
 * Exit 0 when every verdict holds, 1 otherwise (the figures are written either way).
 */
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { ModeReport } from './analyze.ts';
import { liveTable } from './command.ts';
import { runLive, type LiveReport } from './run.ts';

/**
 * Memory is flat when, over the second half of the soak (the first fills the cache), what the
 * server holds besides its cache grows by less than this per cycle: 1 KiB/cycle is 1 MiB over
 * a 1000-cycle soak, below one apply's patch region (8 KiB) kept per cycle.
 */
export const flatKiBPerCycle = 1;

export interface Verdict {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The soak's verdicts for one mode. */
export function soakVerdicts(mode: string, r: ModeReport, cycles: number): Verdict[] {
  return runVerdicts(mode, r, cycles, { memory: true });
}

/** A run's verdicts for one mode; memory flatness only for runs long enough to tell (the soak). */
export function runVerdicts(mode: string, r: ModeReport, cycles: number, opts: { memory: boolean }): Verdict[] {
  const t = r.transitions;
  const grow = r.memoryTrend.rssBesidesCacheKiBPerCycle ?? r.memoryTrend.rssKiBPerCycle;
  const all: Verdict[] = [
    { what: `${mode}: failed requests`, ok: r.failed === 0, detail: String(r.failed) },
    { what: `${mode}: dropped connections`, ok: r.droppedConnections === 0, detail: String(r.droppedConnections) },
    { what: `${mode}: transitions done`, ok: t.applied === cycles && t.rolledBack === cycles && t.rejected === 0 && t.allThreadsSwitched, detail: `${t.applied} applied, ${t.rolledBack} rolled back, ${t.rejected} rejected of ${cycles} cycles` },
    { what: `${mode}: memccapable`, ok: r.conformance.runs > 0 && r.conformance.failures === 0, detail: `${r.conformance.runs} runs, ${r.conformance.failures} failed` },
    {
      what: `${mode}: memory flat (server's RSS besides its cache, 2nd half)`,
      ok: grow !== null && grow <= flatKiBPerCycle,
      detail: `${grow === null ? '?' : grow.toFixed(2)} KiB/cycle (limit ${flatKiBPerCycle}); RSS ${r.memory.before?.rssKiB ?? '?'} → ${r.memory.after?.rssKiB ?? '?'} KiB, MemFree ${r.memory.before?.memFreeKiB ?? '?'} → ${r.memory.after?.memFreeKiB ?? '?'} KiB`,
    },
  ];
  return opts.memory ? all : all.filter((v) => !v.what.includes('memory flat'));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cycles: { type: 'string', default: '1000' },
      'capable-every': { type: 'string', default: '100' },
      interval: { type: 'string', default: '1' },
      out: { type: 'string', default: join('wfbuild-live', 'soak') },
    },
    strict: true,
  });
  const cycles = Number(values.cycles);
  const capableEvery = Number(values['capable-every']);
  const out = resolve(values.out);
  const loadBefore = loadavg();
  const started = Date.now();
  console.error(`soak: ${cycles} cycles per mode, memccapable after every ${capableEvery}th cycle and the last; host load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  const report: LiveReport = await runLive({
    server: 'memcached',
    modes: ['local', 'global'],
    cycles,
    intervalS: Number(values.interval),
    out,
    debianPatch: '0007-uninitialized-variables',
    capableEvery,
    onOutput: (line) => console.error(`live: ${line}`),
  });
  const loadAfter = loadavg();
  const verdicts = Object.entries(report.modes).flatMap(([mode, r]) => (r && !('error' in r) ? soakVerdicts(mode, r, cycles) : [{ what: `${mode}`, ok: false, detail: r?.error ?? 'no result' }]));
  const lines = [
    liveTable(report),
    '',
    `host load average before / after: ${loadBefore.map((x) => x.toFixed(2)).join(' ')} / ${loadAfter.map((x) => x.toFixed(2)).join(' ')}; ${((Date.now() - started) / 60000).toFixed(1)} min`,
    ...verdicts.map((v) => `${v.ok ? 'ok  ' : 'FAIL'} ${v.what}: ${v.detail}`),
  ];
  console.log(lines.join('\n'));
  await writeFile(join(out, 'soak.txt'), `${lines.join('\n')}\n`);
  return verdicts.every((v) => v.ok) ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(error.message);
      process.exit(2);
    },
  );
}
