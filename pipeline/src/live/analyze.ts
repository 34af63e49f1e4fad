/**
 * The analysis of one mode's results from a `wfbuild live` guest run: memload's samples
 * (every request), libwfpatch's JSON log (every transition), the guest script's cycle records
 * and memory figures, judged with latency.ts.
 *
 * Clocks: memload times requests with CLOCK_MONOTONIC and records a CLOCK_REALTIME /
 * CLOCK_MONOTONIC pair at its start; libwfpatch's log lines carry CLOCK_REALTIME (`time`, µs)
 * and the milliseconds since the transition's trigger (CLOCK_MONOTONIC). Both clocks come from
 * the guest's one clocksource and the guest runs no time daemon, so the pair converts exactly.
 */
import { gunzipSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../common/fs.ts';
import { phaseMedians, transitionPhases, type PhaseMedians } from './breakdown.ts';
import { faultFigures, forkFigures, memoryTrend, type FaultFigures, type ForkFigures, type MemoryTrend } from './resources.ts';
import { patchWindows, percentiles, splitByWindows, type PatchMoment, type Percentiles, type RequestSample } from './latency.ts';

export type LiveMode = 'local' | 'global';

/** memload.json (see memload.c). */
export interface LoadSummary {
  readonly final: boolean;
  readonly requests: number;
  readonly failed: number;
  readonly droppedConnections: number;
  readonly maxLatencyNs: number;
  readonly connections: number;
  readonly getPercent: number;
  readonly clocksource: string;
  readonly resolutionNs: number;
  readonly getresNs: number;
  readonly baseMonoNs: number;
  readonly baseRealNs: number;
  readonly endMonoNs: number;
}

export interface Samples {
  /** Finished requests, startUs on CLOCK_MONOTONIC. */
  readonly ok: RequestSample[];
  readonly failed: RequestSample[];
  /** The file ended inside a record (a killed client). */
  readonly truncated: boolean;
}

/** Reads memload's .samples (or .samples.gz) file: "WFLS1\n" then varint pairs. */
export function parseSamples(data: Buffer, baseMonoNs: number): Samples {
  const bytes = data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data, { finishFlush: 2 /* Z_SYNC_FLUSH: a cut gzip still yields its data */ }) : data;
  const magic = 'WFLS1\n';
  if (bytes.subarray(0, magic.length).toString('latin1') !== magic) throw new Error('not a memload samples file (no WFLS1 header)');
  const ok: RequestSample[] = [];
  const failed: RequestSample[] = [];
  let pos = magic.length;
  let prev = BigInt(Math.round(baseMonoNs));
  const varint = (): bigint | null => {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= bytes.length) return null;
      const b = bytes[pos++]!;
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return value;
      shift += 7n;
    }
  };
  for (;;) {
    const start = pos;
    const zig = varint();
    const lat = zig === null ? null : varint();
    if (zig === null || lat === null) return { ok, failed, truncated: pos > start };
    const delta = (zig >> 1n) ^ -(zig & 1n);
    prev += delta;
    const sample = { startUs: Number(prev) / 1000, latencyUs: Number(lat >> 1n) / 1000 };
    ((lat & 1n) === 1n ? failed : ok).push(sample);
  }
}

/** One transition from libwfpatch's log. */
export interface Transition {
  readonly seq: number;
  readonly action: 'apply' | 'rollback';
  readonly patch: string | null;
  /** CLOCK_REALTIME of the trigger, µs. */
  readonly triggerRealUs: number;
  readonly outcome: string | null;
  readonly threads: number | null;
  readonly migrated: number | null;
  /** ms from the trigger to each thread's switch (local: migrated; global: arrived). */
  readonly threadMs: number[];
  /** Threads that left live patching (a background thread going to sleep) in the transition before switching: not waited for. */
  readonly left: number;
  /** ms from the trigger until every thread runs the new code (local: last migration; global: release). */
  readonly switchMs: number | null;
  readonly createUs: number | null;
  readonly loadUs: number | null;
  readonly reason: string | null;
}

type LogLine = Record<string, unknown> & { event?: string; time?: number; seq?: number };

/** The transitions in a libwfpatch log, in order (thread events belong to the open transition). */
export function parseRuntimeLog(text: string): Transition[] {
  const out: Transition[] = [];
  let cur: { -readonly [K in keyof Transition]: Transition[K] } | null = null;
  let global = false;
  // Per transition: the threads whose switch was logged, and those that left before theirs.
  let switchedTids = new Set<number>();
  let leftTids = new Set<number>();
  const close = (): void => {
    if (cur) out.push(cur);
    cur = null;
  };
  for (const raw of text.split('\n')) {
    if (!raw.trim().startsWith('{')) continue;
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      continue; // a line cut by a killed process
    }
    const num = (k: string): number | null => (typeof line[k] === 'number' ? (line[k] as number) : null);
    switch (line.event) {
      case 'trigger':
        close();
        global = line.mode === 'global';
        switchedTids = new Set();
        leftTids = new Set();
        cur = {
          seq: num('seq') ?? out.length + 1,
          action: line.action === 'rollback' ? 'rollback' : 'apply',
          patch: typeof line.patch === 'string' ? line.patch : null,
          triggerRealUs: Math.round((num('time') ?? 0) * 1e6),
          outcome: null,
          threads: null,
          migrated: null,
          threadMs: [],
          left: 0,
          switchMs: null,
          createUs: null,
          loadUs: null,
          reason: null,
        };
        break;
      case 'migrated':
      case 'arrived':
        if (cur && num('ms') !== null) {
          cur.threadMs.push(num('ms')!);
          if (typeof line.tid === 'number') switchedTids.add(line.tid);
        }
        break;
      case 'thread_exit':
        if (cur && typeof line.tid === 'number' && !switchedTids.has(line.tid) && !leftTids.has(line.tid)) {
          leftTids.add(line.tid);
          cur.left++;
        }
        break;
      case 'generation_created':
        if (cur) cur.createUs = num('create_us');
        break;
      case 'patch_loaded':
        if (cur) cur.loadUs = num('load_us');
        break;
      case 'summary':
        if (cur) {
          cur.outcome = typeof line.outcome === 'string' ? line.outcome : null;
          cur.threads = num('threads');
          cur.migrated = num('migrated');
        }
        break;
      case 'done':
        if (cur) {
          const last = cur.threadMs.length ? Math.max(...cur.threadMs) : null;
          // Global: threads run again (with the new code) only when the barrier is released.
          cur.switchMs = global || last === null ? num('ms') : last;
        }
        close();
        break;
      case 'rejected':
        if (cur) {
          cur.outcome = 'rejected';
          cur.reason = typeof line.reason === 'string' ? line.reason : null;
        }
        close();
        break;
      default:
        break;
    }
  }
  close();
  return out;
}

export interface CycleRecord {
  readonly cycle: number;
  readonly step: 'baseline' | 'apply' | 'rollback';
  readonly request: string | null;
  readonly ctlExit: number | null;
  readonly capableExit: number | null;
  readonly memFreeBeforeKiB: number | null;
  readonly memFreeAfterKiB: number | null;
  /** The server's RSS right after the step (older runs: absent). */
  readonly rssAfterKiB?: number | null;
  /** memcached's slab memory after the step (`stats slabs` total_malloced), KiB. */
  readonly cacheKiB?: number | null;
  readonly mapsAfter?: number | null;
  /** The server's minor faults when the step began and when wfpatch-ctl returned. */
  readonly minFltBefore?: number | null;
  readonly minFltAfter?: number | null;
  /** A memccapable run's span, /proc/uptime centiseconds (= CLOCK_MONOTONIC: the guest never suspends). */
  readonly startCs?: number;
  readonly endCs?: number;
}

export interface MemFigures {
  readonly memFreeKiB: number;
  readonly rssKiB: number | null;
}

export interface ModeReport {
  readonly requests: number;
  readonly failed: number;
  readonly droppedConnections: number;
  /** all: every request; window: in flight during a patch window; outside: neither in a window nor during a memccapable run (those: duringConformance). */
  readonly latencyUs: { readonly all: Percentiles | null; readonly window: Percentiles | null; readonly outside: Percentiles | null; readonly duringConformance: Percentiles | null };
  /** Why no percentiles are reported (a clock coarser than 10 µs), else null. */
  readonly percentilesRefused: string | null;
  /** p99.9 inside the patch windows / p99.9 outside them. */
  readonly p999WindowRatio: number | null;
  readonly switchMs: { readonly median: number | null; readonly max: number | null };
  readonly createUs: number | null;
  readonly loadUs: number | null;
  readonly memoryPerGenerationKiB: number | null;
  readonly cycles: number;
  /** Median seconds between two triggers: --interval, or longer when memccapable (≈5 s: its noreply tests wait) took longer. */
  readonly stepSpacingS: number | null;
  readonly transitions: { readonly total: number; readonly applied: number; readonly rolledBack: number; readonly rejected: number; readonly allThreadsSwitched: boolean; readonly threads: number | null; readonly rejectReasons?: readonly string[] };
  readonly conformance: { readonly runs: number; readonly failures: number };
  readonly memory: { readonly before: MemFigures | null; readonly after: MemFigures | null };
  readonly load: { readonly client: 'memload'; readonly final: boolean; readonly truncated: boolean; readonly connections: number; readonly memcaslap: MemcaslapFigures | null };
  readonly clock: { readonly clocksource: string; readonly resolutionNs: number };
  /** Where the switch time goes: median phase moments (ms after the trigger) per action (breakdown.ts). */
  readonly switchBreakdownMs: { readonly apply: PhaseMedians; readonly rollback: PhaseMedians };
  /** fork() of the server timed inside it, before and after the cycles (resources.ts). */
  readonly forkUs: ForkFigures;
  /** RSS and MemFree after every rollback: the trend over the second half of the run. */
  readonly memoryTrend: MemoryTrend;
  /** The server's minor page faults per transition and per step interval (resources.ts). */
  readonly minorFaults: FaultFigures;
  /** For the plot: (seconds since the load started, latency µs) and patch moments (seconds). */
  readonly series: { readonly points: Array<[number, number]>; readonly patches: Array<{ t: number; action: string; switchMs: number | null }> };
}

export interface MemcaslapFigures {
  /** Seconds of load in its last statistics line. */
  readonly seconds: number | null;
  readonly ops: number | null;
  readonly tps: number | null;
  /** memcaslap's own latency figures over the whole run (µs). */
  readonly avgUs: number | null;
  readonly maxUs: number | null;
  readonly getMisses: number | null;
}

/**
 * memcaslap's figures: the last "Total Statistics" block's Global line (it prints one every
 * second with -S 1s; stopped by a signal it prints no final summary), or its final
 * "Run time: … Ops: … TPS: …" line when it ran to its end.
 */
export function parseMemcaslap(raw: string): MemcaslapFigures {
  // Its signal handler's message can land in the middle of a statistics line.
  const text = raw.replace(/SIGINT handled\.\n?/g, '');
  // Type Time(s) Ops TPS(ops/s) Net(M/s) Get_miss Min(us) Max(us) Avg(us) Std_dev Geo_dist
  const totals = [...text.matchAll(/Total Statistics[^\n]*\n[^\n]*\n[^\n]*\nGlobal\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/g)].at(-1);
  if (totals) {
    const n = totals.slice(1).map(Number);
    return { seconds: n[0]!, ops: n[1]!, tps: n[2]!, getMisses: n[3]!, maxUs: n[5]!, avgUs: n[6]! };
  }
  const run = /Run time:\s*([\d.]+)s\s+Ops:\s*(\d+)\s+TPS:\s*(\d+)/.exec(text);
  const misses = /get_misses:\s*(\d+)/.exec(text);
  return { seconds: run ? Number(run[1]) : null, ops: run ? Number(run[2]) : null, tps: run ? Number(run[3]) : null, avgUs: null, maxUs: null, getMisses: misses ? Number(misses[1]) : null };
}

const median = (xs: readonly number[]): number | null => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function readJson<T>(path: string): Promise<T | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

/** At most this many points go into the plot per mode (every sample above the p99 is kept). */
const plotPoints = 4_000;

/** Reads `dir` (the guest's /results/MODE) and judges it. */
export async function analyzeMode(dir: string, opts: { cycles: number; windowAfterMs?: number }): Promise<ModeReport> {
  const summary = await readJson<LoadSummary>(join(dir, 'memload.json'));
  if (!summary) throw new Error(`${dir}: no memload.json (the load client never started)`);
  const samplesPath = (await exists(join(dir, 'memload.samples.gz'))) ? join(dir, 'memload.samples.gz') : join(dir, 'memload.samples');
  const samples = (await exists(samplesPath)) ? parseSamples(await readFile(samplesPath), summary.baseMonoNs) : { ok: [], failed: [], truncated: false };
  const log = await readFile(join(dir, 'wfpatch.log'), 'utf8').catch(() => '');
  const transitions = parseRuntimeLog(log);
  const cycles = (await readFile(join(dir, 'cycles.jsonl'), 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as CycleRecord];
      } catch {
        return [];
      }
    });

  // CLOCK_REALTIME µs → CLOCK_MONOTONIC µs.
  const realToMono = (realUs: number): number => realUs - (summary.baseRealNs - summary.baseMonoNs) / 1000;
  const moments: PatchMoment[] = transitions
    .filter((t) => t.outcome !== 'rejected' && t.switchMs !== null)
    .map((t) => {
      const triggerUs = realToMono(t.triggerRealUs);
      return { triggerUs, allSwitchedUs: triggerUs + t.switchMs! * 1000 };
    });
  const windows = patchWindows(moments, opts.windowAfterMs ?? 200);
  const { inside, outside: notInWindows } = splitByWindows(samples.ok, windows);
  // memccapable's runs (flush_all, large values, noreply waits) load the server too: requests in
  // flight during one are left out of "outside", the baseline a window is compared with.
  const conformanceSpans = cycles
    .filter((c) => c.startCs !== undefined && c.endCs !== undefined)
    .map((c): [number, number] => [c.startCs! * 10_000 - 10_000, c.endCs! * 10_000 + 10_000]);
  const { inside: duringConformance, outside } = splitByWindows(notInWindows, conformanceSpans);
  const res = summary.resolutionNs;
  // latency.ts refuses a clock coarser than 10 µs; then no percentile is reported at all.
  let refused: string | null = null;
  const lat = (xs: RequestSample[]): Percentiles | null => {
    try {
      return percentiles(xs.map((s) => s.latencyUs), res);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      refused = error.message;
      return null;
    }
  };
  const all = lat(samples.ok);
  const window = lat(inside);
  const out = lat(outside);

  const applied = transitions.filter((t) => t.outcome === 'applied').length;
  const rolledBack = transitions.filter((t) => t.outcome === 'rolled-back').length;
  const rejected = transitions.filter((t) => t.outcome === 'rejected').length;
  const finished = transitions.filter((t) => t.outcome !== 'rejected');
  // A background thread that migrates and then leaves (its sleep) before the summary is not in
  // the summary's `migrated`, but its own migrated/arrived line is there; one that leaves before
  // its point is not waited for (corpus/apps/memcached/README.md, "leave / re-join").
  const allThreadsSwitched = transitions.length > 0 && transitions.every((t) => t.outcome !== null && t.outcome !== 'rejected' && t.threads !== null && t.migrated !== null && Math.max(t.migrated, t.threadMs.length) + t.left >= t.threads);
  const switches = finished.map((t) => t.switchMs).filter((x): x is number => x !== null);
  const memDrops = cycles
    .filter((c) => c.step === 'apply' && c.ctlExit === 0 && c.memFreeBeforeKiB !== null && c.memFreeAfterKiB !== null)
    .map((c) => c.memFreeBeforeKiB! - c.memFreeAfterKiB!);
  const hasGenerations = transitions.some((t) => t.createUs !== null);
  const conformanceRuns = cycles.filter((c) => c.capableExit !== null);

  // The plot: a bounded sample of the points, every slow one kept.
  const base = summary.baseMonoNs / 1000;
  const p99 = all?.p99 ?? Infinity;
  const stride = Math.max(1, Math.ceil(samples.ok.length / plotPoints));
  const points: Array<[number, number]> = [];
  samples.ok.forEach((s, i) => {
    if (i % stride === 0 || s.latencyUs >= p99) points.push([(s.startUs - base) / 1e6, s.latencyUs]);
  });
  const slap = await readFile(join(dir, 'memcaslap.txt'), 'utf8').catch(() => null);

  return {
    requests: samples.ok.length + samples.failed.length,
    failed: samples.failed.length,
    droppedConnections: summary.droppedConnections,
    latencyUs: { all, window, outside: out, duringConformance: lat(duringConformance) },
    percentilesRefused: refused,
    p999WindowRatio: window && out ? window.p999 / out.p999 : null,
    switchMs: { median: median(switches), max: switches.length ? Math.max(...switches) : null },
    createUs: median(transitions.map((t) => t.createUs).filter((x): x is number => x !== null)),
    loadUs: median(transitions.map((t) => t.loadUs).filter((x): x is number => x !== null)),
    // Only local mode makes generations; MemFree across an apply (the new generation lives on).
    memoryPerGenerationKiB: hasGenerations ? median(memDrops) : null,
    cycles: opts.cycles,
    stepSpacingS: median(transitions.slice(1).map((t, i) => (t.triggerRealUs - transitions[i]!.triggerRealUs) / 1e6)),
    transitions: { total: transitions.length, applied, rolledBack, rejected, allThreadsSwitched, threads: median(finished.map((t) => t.threads).filter((x): x is number => x !== null)), rejectReasons: [...new Set(transitions.filter((t) => t.outcome === 'rejected').map((t) => t.reason ?? '?'))] },
    conformance: { runs: conformanceRuns.length, failures: conformanceRuns.filter((c) => c.capableExit !== 0).length },
    memory: { before: await readJson<MemFigures>(join(dir, 'mem-before.json')), after: await readJson<MemFigures>(join(dir, 'mem-after.json')) },
    load: { client: 'memload', final: summary.final, truncated: samples.truncated, connections: summary.connections, memcaslap: slap === null ? null : parseMemcaslap(slap) },
    clock: { clocksource: summary.clocksource, resolutionNs: summary.resolutionNs },
    switchBreakdownMs: phaseMedians(transitionPhases(log)),
    forkUs: forkFigures(await readFile(join(dir, 'forks.jsonl'), 'utf8').catch(() => '')),
    memoryTrend: memoryTrend(
      cycles
        .filter((c) => c.step === 'rollback' && typeof c.rssAfterKiB === 'number' && c.memFreeAfterKiB !== null)
        .map((c) => ({ cycle: c.cycle, rssKiB: c.rssAfterKiB!, memFreeKiB: c.memFreeAfterKiB!, cacheKiB: typeof c.cacheKiB === 'number' ? c.cacheKiB : null, maps: typeof c.mapsAfter === 'number' ? c.mapsAfter : null })),
    ),
    minorFaults: faultFigures(cycles.filter((c) => c.step === 'apply' || c.step === 'rollback')),
    series: {
      points,
      patches: finished.map((t) => ({ t: (realToMono(t.triggerRealUs) - base) / 1e6, action: t.action, switchMs: t.switchMs })),
    },
  };
}
