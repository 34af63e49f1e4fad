import { describe, expect, it } from 'vitest';
import { patchWindows, percentiles, splitByWindows } from '../pipeline/src/live/latency.ts';
import { phaseMedians, transitionPhases } from '../pipeline/src/live/breakdown.ts';
import { faultFigures, forkFigures, memoryTrend, slope } from '../pipeline/src/live/resources.ts';
import { seriesNames, withoutSuffix } from '../pipeline/src/enable/without.ts';
import { latencySpec, ruleOpacity, zoomAbovePatches, zoomWindow } from '../pipeline/src/live/plot.ts';
import type { ModeReport } from '../pipeline/src/live/analyze.ts';

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


describe('where a transition\'s time goes (breakdown.ts)', () => {
  const t = 1000; // seconds; the log's `time` is CLOCK_REALTIME in seconds
  const line = (o: Record<string, unknown>): string => JSON.stringify(o);
  const local = [
    line({ time: t, event: 'trigger', seq: 1, action: 'apply', mode: 'local' }),
    line({ time: t + 0.010, event: 'patch_loaded', seq: 1, load_us: 9000 }),
    line({ time: t + 0.012, event: 'generation_created', seq: 1, create_us: 1500 }),
    line({ time: t + 0.020, event: 'migration_pending', seq: 1 }),
    line({ time: t + 0.040, event: 'migrated', thread: 'worker', ms: 21 }),
    line({ time: t + 0.041, event: 'migrated', thread: 'listener', ms: 35 }),
    line({ time: t + 0.042, event: 'done', seq: 1, ms: 36 }),
    line({ time: t + 2, event: 'trigger', seq: 2, action: 'rollback', mode: 'local' }),
    line({ time: t + 2.0002, event: 'migration_pending', seq: 2 }),
    line({ time: t + 2.003, event: 'migrated', thread: 'worker', ms: 2 }),
    line({ time: t + 2.004, event: 'done', seq: 2, ms: 4 }),
    line({ time: t + 4, event: 'trigger', seq: 3, action: 'apply', mode: 'local' }),
    line({ time: t + 4.001, event: 'rejected', seq: 3, reason: 'wrong build-id' }),
  ].join('\n');

  it('local: load, create, kick, first and last migration after the trigger; rejected transitions left out', () => {
    const phases = transitionPhases(local);
    expect(phases).toHaveLength(2);
    expect(phases[0]).toMatchObject({ action: 'apply', global: false, firstThreadMs: 21, lastThreadMs: 35, doneMs: 36, loadUs: 9000, createUs: 1500 });
    expect(phases[0]!.loadedMs).toBeCloseTo(10, 3);
    expect(phases[0]!.createdMs).toBeCloseTo(12, 3);
    expect(phases[0]!.pendingMs).toBeCloseTo(20, 3);
    const m = phaseMedians(phases);
    expect(m.apply.count).toBe(1);
    expect(m.apply.kickToLastMs).toBeCloseTo(15, 3);
    expect(m.apply.switchMs).toBe(35); // local: the last migration
    expect(m.rollback).toMatchObject({ count: 1, loadedMs: null, createdMs: null, switchMs: 2 });
  });

  it('global: all parked (quiescence), and the switch is the release (done)', () => {
    const global = [
      line({ time: t, event: 'trigger', seq: 1, action: 'apply', mode: 'global' }),
      line({ time: t + 0.005, event: 'patch_loaded', seq: 1, load_us: 5000 }),
      line({ time: t + 0.009, event: 'arrived', thread: 'worker', ms: 8 }),
      line({ time: t + 0.010, event: 'quiescence', seq: 1, ms: 9.5 }),
      line({ time: t + 0.011, event: 'done', seq: 1, ms: 10.5 }),
    ].join('\n');
    const m = phaseMedians(transitionPhases(global));
    expect(m.apply).toMatchObject({ count: 1, quiescenceMs: 9.5, doneMs: 10.5, switchMs: 10.5, pendingMs: null, createdMs: null });
  });
});

describe('server resources over a run (resources.ts)', () => {
  it('slope: least squares; flat, rising, too few points', () => {
    expect(slope([1, 2, 3, 4], [5, 5, 5, 5])).toBe(0);
    expect(slope([1, 2, 3, 4], [10, 18, 26, 34])).toBeCloseTo(8);
    expect(slope([1], [1])).toBeNull();
    expect(slope([2, 2], [1, 3])).toBeNull();
  });

  it('memory trend: the second half only (the first fills the cache); RSS besides the cache', () => {
    // The cache grows by 100 KiB per cycle in the first half and stops; the server besides it keeps 8 KiB per cycle.
    const points = Array.from({ length: 20 }, (_, i) => {
      const cycle = i + 1;
      const cacheKiB = 1000 + 100 * Math.min(cycle, 10);
      return { cycle, cacheKiB, rssKiB: 5000 + cacheKiB + 8 * cycle, memFreeKiB: 900_000 - 8 * cycle };
    });
    const trend = memoryTrend(points);
    expect(trend.points).toBe(20);
    expect(trend.rssKiBPerCycle).toBeCloseTo(8);
    expect(trend.rssBesidesCacheKiBPerCycle).toBeCloseTo(8);
    expect(trend.memFreeKiBPerCycle).toBeCloseTo(-8);
    expect(trend.rssMidKiB).toBe(points[10]!.rssKiB);
    expect(memoryTrend(points.map((p) => ({ ...p, cacheKiB: null }))).rssBesidesCacheKiBPerCycle).toBeNull();
    // Mappings: a rolled-back patch kept mapped adds 2 per cycle; without counts, no figure.
    expect(trend.mapsPerCycle).toBeNull();
    const mapped = memoryTrend(points.map((p) => ({ ...p, maps: 60 + 2 * p.cycle })));
    expect(mapped.mapsPerCycle).toBeCloseTo(2);
    expect([mapped.mapsMid, mapped.mapsEnd]).toEqual([82, 100]);
  });

  it('fork probes: medians before and after, errors kept', () => {
    const text = [
      '{"when":"before","probe":{"event":"fork","fork_us":100}}',
      '{"when":"before","probe":{"event":"fork","fork_us":300}}',
      '{"when":"before","probe":{"event":"fork","fork_us":200}}',
      '{"when":"after","probe":{"event":"fork","error":"Cannot allocate memory"}}',
      '{"when":"after","probe":{"event":"fork","fork_us":400}}',
      'garbage',
    ].join('\n');
    expect(forkFigures(text)).toEqual({ beforeUs: 200, afterUs: 400, probes: 4, errors: ['Cannot allocate memory'] });
  });

  it('minor faults: during each step and over its interval (until the next step)', () => {
    const f = faultFigures([
      { step: 'apply', minFltBefore: 100, minFltAfter: 160 },
      { step: 'rollback', minFltBefore: 200, minFltAfter: 205 },
      { step: 'apply', minFltBefore: 300, minFltAfter: 380 },
      { step: 'rollback', minFltBefore: 420, minFltAfter: 421 },
    ]);
    expect(f).toEqual({ applyDuring: 70, rollbackDuring: 3, applyInterval: 110, rollbackInterval: 100 });
  });
});

describe('enable --without (without.ts)', () => {
  it('the version suffix names the left-out patches by number, else by name', () => {
    expect(withoutSuffix([])).toBe('');
    expect(withoutSuffix(['0007-uninitialized-variables.patch'])).toBe('~without.0007');
    expect(withoutSuffix(['0007-a.patch', 'CVE-2023-46853.patch'])).toBe('~without.0007.CVE.2023.46853');
  });

  it('series names: comments, blank lines and -pN options left out', () => {
    expect(seriesNames('# a comment\n0001-a.patch\n\n0002-b.patch -p1\n0003-c.patch # why\n')).toEqual(['0001-a.patch', '0002-b.patch', '0003-c.patch']);
  });
});

describe('latency.svg stays readable for a long soak (plot.ts)', () => {
  const mode = (patches: number): ModeReport =>
    ({
      requests: 10,
      failed: 0,
      latencyUs: { window: null, outside: null },
      series: {
        points: Array.from({ length: patches * 2 }, (_, i) => [i * 0.5, 100 + i] as [number, number]),
        patches: Array.from({ length: patches }, (_, i) => ({ t: i + 0.25, action: i % 2 ? 'rollback' : 'apply', switchMs: 1 })),
      },
    }) as unknown as ModeReport;
  const panels = (patches: number): Array<{ title: { text: string }; layer: Array<{ data: { values: unknown[] }; mark: { opacity: number } }> }> =>
    (latencySpec({ server: 'memcached', cycles: patches / 2, intervalS: 1, modes: { local: mode(patches), global: mode(patches) } }) as unknown as { vconcat: never[] }).vconcat;

  it('a short run: one panel per mode, its patch moments drawn clearly', () => {
    const p = panels(10);
    expect(p.map((x) => x.title.text)).toEqual(['local quiescence', 'global quiescence']);
    expect(p[0]!.layer[1]!.mark.opacity).toBe(0.8);
  });

  it('a soak: the overview draws its 2,000 moments faint, and a 20-s zoom from the middle draws each one', () => {
    const p = panels(2000);
    expect(p.map((x) => x.title.text)).toEqual(['local quiescence', 'local quiescence, 20 s from the middle of the run', 'global quiescence', 'global quiescence, 20 s from the middle of the run']);
    expect(p[0]!.layer[1]!.mark.opacity).toBeLessThan(0.1);
    expect(p[0]!.layer[1]!.data.values).toHaveLength(2000);
    const zoomed = p[1]!.layer[1]!.data.values as Array<{ t: number }>;
    expect(zoomed).toHaveLength(21); // 990.25 … 1010.25, both ends inside
    expect(Math.min(...zoomed.map((r) => r.t))).toBe(990.25);
    expect(Math.max(...zoomed.map((r) => r.t))).toBe(1010.25);
    expect(p[1]!.layer[1]!.mark.opacity).toBe(0.8);
  });

  it('the zoom starts at the threshold, and the opacity never reaches 0', () => {
    expect(zoomWindow(Array.from({ length: zoomAbovePatches }, (_, i) => i))).toBeNull();
    expect(zoomWindow(Array.from({ length: zoomAbovePatches + 1 }, (_, i) => i))).toEqual({ from: 20, to: 40 });
    expect(ruleOpacity(1_000_000)).toBe(0.05);
    expect(ruleOpacity(1)).toBe(0.8);
  });
});
