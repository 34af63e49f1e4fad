/**
 * The server's resources over a live run: memory per cycle (RSS and MemFree after each
 * rollback, when the process is back on the code it started with) and fork() of the server
 * timed inside it (the runtime's `fork` request), to set wf_create against. Pure functions over
 * the guest script's records.
 */

export interface MemoryPoint {
  readonly cycle: number;
  readonly rssKiB: number;
  readonly memFreeKiB: number;
  /** memcached's slab memory (`stats slabs` total_malloced), when it answered. */
  readonly cacheKiB: number | null;
  /** The server's mappings (/proc/PID/maps lines), when the guest counted them. */
  readonly maps?: number | null;
}

export interface MemoryTrend {
  readonly points: number;
  /** Least-squares slope over the second half of the cycles (the first half fills the cache). */
  readonly rssKiBPerCycle: number | null;
  readonly memFreeKiBPerCycle: number | null;
  /** RSS minus the server's cache (slab pages): what it holds besides the items it was given. */
  readonly rssBesidesCacheKiBPerCycle: number | null;
  /** RSS at the middle and at the end of the run (the second half's first and last points). */
  readonly rssMidKiB: number | null;
  readonly rssEndKiB: number | null;
  readonly memFreeMidKiB: number | null;
  readonly memFreeEndKiB: number | null;
  /** The server's mappings per cycle over the second half (a rolled-back patch kept mapped adds 2–3). */
  readonly mapsPerCycle: number | null;
  readonly mapsMid: number | null;
  readonly mapsEnd: number | null;
}

/** Slope of y over x by least squares; null for fewer than 2 distinct x. */
export function slope(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 2 || ys.length !== n) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx === 0 ? null : sxy / sxx;
}

/** The memory trend of the points after each rollback. */
export function memoryTrend(points: readonly MemoryPoint[]): MemoryTrend {
  const half = points.slice(Math.floor(points.length / 2));
  const xs = half.map((p) => p.cycle);
  return {
    points: points.length,
    rssKiBPerCycle: slope(xs, half.map((p) => p.rssKiB)),
    memFreeKiBPerCycle: slope(xs, half.map((p) => p.memFreeKiB)),
    rssBesidesCacheKiBPerCycle: half.every((p) => p.cacheKiB !== null) ? slope(xs, half.map((p) => p.rssKiB - p.cacheKiB!)) : null,
    rssMidKiB: half[0]?.rssKiB ?? null,
    rssEndKiB: half.at(-1)?.rssKiB ?? null,
    memFreeMidKiB: half[0]?.memFreeKiB ?? null,
    memFreeEndKiB: half.at(-1)?.memFreeKiB ?? null,
    mapsPerCycle: half.every((p) => typeof p.maps === 'number') ? slope(xs, half.map((p) => p.maps!)) : null,
    mapsMid: half[0]?.maps ?? null,
    mapsEnd: half.at(-1)?.maps ?? null,
  };
}

export interface ForkFigures {
  /** Median fork() µs in the server before the cycles (generation 0 only) and after them. */
  readonly beforeUs: number | null;
  readonly afterUs: number | null;
  readonly probes: number;
  readonly errors: readonly string[];
}

/** forks.jsonl: {"when":"before"|"after","probe":{event:"fork",fork_us|error}} per line. */
export function forkFigures(text: string): ForkFigures {
  const before: number[] = [];
  const after: number[] = [];
  const errors: string[] = [];
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let rec: { when?: string; probe?: { fork_us?: number; error?: string } };
    try {
      rec = JSON.parse(raw) as typeof rec;
    } catch {
      continue;
    }
    if (typeof rec.probe?.error === 'string') errors.push(rec.probe.error);
    else if (typeof rec.probe?.fork_us === 'number') (rec.when === 'after' ? after : before).push(rec.probe.fork_us);
  }
  const median = (xs: number[]): number | null => {
    if (!xs.length) return null;
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  return { beforeUs: median(before), afterUs: median(after), probes: before.length + after.length, errors };
}

export interface FaultFigures {
  /** Median minor faults of the server from a step's trigger until wfpatch-ctl returned (all switched). */
  readonly applyDuring: number | null;
  readonly rollbackDuring: number | null;
  /** Median minor faults from a step's trigger until the next step's (its whole interval). */
  readonly applyInterval: number | null;
  readonly rollbackInterval: number | null;
}

/** Steps in order: {step, minFltBefore, minFltAfter}; older runs without the counts give nulls. */
export function faultFigures(steps: ReadonlyArray<{ step: string; minFltBefore?: number | null; minFltAfter?: number | null }>): FaultFigures {
  const med = (xs: number[]): number | null => {
    if (!xs.length) return null;
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const during: Record<string, number[]> = { apply: [], rollback: [] };
  const interval: Record<string, number[]> = { apply: [], rollback: [] };
  steps.forEach((s, i) => {
    if (!(s.step in during) || typeof s.minFltBefore !== 'number') return;
    if (typeof s.minFltAfter === 'number') during[s.step]!.push(s.minFltAfter - s.minFltBefore);
    const next = steps[i + 1];
    if (next && typeof next.minFltBefore === 'number') interval[s.step]!.push(next.minFltBefore - s.minFltBefore);
  });
  return { applyDuring: med(during.apply!), rollbackDuring: med(during.rollback!), applyInterval: med(interval.apply!), rollbackInterval: med(interval.rollback!) };
}
