import { describe, expect, it } from 'vitest';
import { patchWindows, percentiles, splitByWindows } from '../pipeline/src/live/latency.ts';

describe('latency percentiles', () => {
  it('nearest rank on 1..1000 µs', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(percentiles(values, 50)).toEqual({ count: 1000, p50: 500, p99: 990, p999: 999, max: 1000 });
  });

  it('one slow request in 10,000 shows in p99.9 only when it is in the top 0.1%', () => {
    const values = [...Array.from({ length: 9_999 }, () => 100), 50_000];
    expect(percentiles(values, 50)).toMatchObject({ p50: 100, p99: 100, p999: 100, max: 50_000 });
    const eleven = [...Array.from({ length: 9_989 }, () => 100), ...Array.from({ length: 11 }, () => 50_000)];
    expect(percentiles(eleven, 50)).toMatchObject({ p99: 100, p999: 50_000 });
  });

  it('no samples: null; a coarse clock: refused, naming the resolution', () => {
    expect(percentiles([], 50)).toBeNull();
    expect(() => percentiles([1, 2, 3], 4_000_000)).toThrow(/4000000 ns, worse than 10000 ns/);
    expect(() => percentiles([1, 2, 3], 0)).toThrow(RangeError);
  });
});

describe('patch windows', () => {
  it('run from the trigger to 200 ms after the last switch; overlapping windows merge', () => {
    const windows = patchWindows([
      { triggerUs: 5_000_000, allSwitchedUs: 5_300_000 },
      { triggerUs: 1_000_000, allSwitchedUs: 1_050_000 },
      { triggerUs: 5_400_000, allSwitchedUs: 5_450_000 },
    ]);
    expect(windows).toEqual([[1_000_000, 1_250_000], [5_000_000, 5_650_000]]);
    expect(() => patchWindows([{ triggerUs: 10, allSwitchedUs: 5 }])).toThrow(/before its trigger/);
  });

  it('a request in flight at any moment of a window counts inside, the rest outside', () => {
    const windows = patchWindows([{ triggerUs: 1_000_000, allSwitchedUs: 1_050_000 }]); // [1.0 s, 1.25 s]
    const at = (startUs: number, latencyUs: number) => ({ startUs, latencyUs });
    const { inside, outside } = splitByWindows(
      [at(900_000, 50_000), at(990_000, 20_000), at(1_100_000, 100), at(1_250_000, 1), at(1_250_001, 5), at(2_000_000, 10)],
      windows,
    );
    expect(inside).toEqual([at(990_000, 20_000), at(1_100_000, 100), at(1_250_000, 1)]);
    expect(outside).toEqual([at(900_000, 50_000), at(1_250_001, 5), at(2_000_000, 10)]);
  });
});
