/**
 * Latency arithmetic for live-patching runs: per-request samples, the windows around patch
 * moments, and percentiles. Pure functions: the run collects samples, this module judges them.
 *
 * A window runs from a patch's trigger until `afterMs` after its last thread switched (the
 * research's "during patching"). A request belongs to a window when it was in flight at any
 * moment of it: a request that started before the trigger and finished inside the window
 * was slowed by the patch just as much as one that started inside.
 */

/** One request as the load client saw it (times on the guest's monotonic clock, µs). */
export interface RequestSample {
  readonly startUs: number;
  readonly latencyUs: number;
}

/** One patch moment: when it was triggered and when its last thread had switched. */
export interface PatchMoment {
  readonly triggerUs: number;
  readonly allSwitchedUs: number;
}

export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Windows closer than this are merged, so overlapping patches count once. */
export function patchWindows(moments: readonly PatchMoment[], afterMs = 200): Array<[number, number]> {
  const spans = moments
    .map((m): [number, number] => {
      if (!(m.allSwitchedUs >= m.triggerUs)) throw new RangeError(`a patch moment whose threads switched (${m.allSwitchedUs}) before its trigger (${m.triggerUs})`);
      return [m.triggerUs, m.allSwitchedUs + afterMs * 1000];
    })
    .sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const span of spans) {
    const last = merged.at(-1);
    if (last && span[0] <= last[1]) last[1] = Math.max(last[1], span[1]);
    else merged.push([...span]);
  }
  return merged;
}

/** Splits the samples into those in flight during some window and the rest. */
export function splitByWindows(samples: readonly RequestSample[], windows: ReadonlyArray<readonly [number, number]>): { inside: RequestSample[]; outside: RequestSample[] } {
  const inside: RequestSample[] = [];
  const outside: RequestSample[] = [];
  const sorted = [...windows].sort((a, b) => a[0] - b[0]);
  for (const s of samples) {
    const end = s.startUs + s.latencyUs;
    // Windows are few (one per patch) and sorted: a binary search for the last window that
    // starts before the request ended is enough, since merged windows do not overlap.
    let lo = 0;
    let hi = sorted.length - 1;
    let hit = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]![0] <= end) {
        hit = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    (hit >= 0 && sorted[hit]![1] >= s.startUs ? inside : outside).push(s);
  }
  return { inside, outside };
}

/** Nearest-rank percentile (the smallest value with at least q of the samples at or below it). */
function nearestRank(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/**
 * p50/p99/p99.9/max of the latencies, or null for no samples. Refuses a clock whose resolution
 * is worse than `maxResolutionNs`: with 4 ms jiffies every percentile is a multiple of 4 ms and
 * a tail ratio means nothing.
 */
export function percentiles(latenciesUs: readonly number[], clockResolutionNs: number, maxResolutionNs = 10_000): Percentiles | null {
  if (!(clockResolutionNs > 0) || clockResolutionNs > maxResolutionNs) {
    throw new RangeError(`the clock's resolution is ${clockResolutionNs} ns, worse than ${maxResolutionNs} ns: percentiles from it would be meaningless`);
  }
  if (latenciesUs.length === 0) return null;
  const sorted = Float64Array.from(latenciesUs).sort();
  const values = Array.from(sorted);
  return { count: values.length, p50: nearestRank(values, 0.5), p99: nearestRank(values, 0.99), p999: nearestRank(values, 0.999), max: values.at(-1)! };
}
