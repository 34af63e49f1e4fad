import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDemoBundle, buildRuntime, runDemoGuest, type DemoOptions } from '../pipeline/src/demo/run.ts';
import { buildKernel } from '../pipeline/src/vm/index.ts';
import { parseEvents, summarizeDemo, type LoadStats } from '../pipeline/src/demo/summary.ts';
import type { Report } from '../pipeline/src/stages/index.ts';

const load: LoadStats = {
  requests: 1000, errors: 0, leaked: 300, refused: 200, leakedAfterTrigger: 3,
  triggerUs: 1_000_000, lastLeakUs: 1_004_000, firstRefusalUs: 1_001_000, seconds: 3, threads: 4,
};

describe('demo summary', () => {
  it('reports the switch times and when the bug stopped answering', () => {
    const events = parseEvents([
      '{"event":"init","mode":"local"}',
      '{"event":"generation_created","gen":1,"create_us":120.5}',
      '{"event":"jumps_written","functions":[{"name":"handle_request"}]}',
      '{"event":"migrated","ms":0.5}',
      '{"event":"migrated","ms":1.5}',
      '{"event":"summary","mode":"local","outcome":"applied","threads":2,"migrated":2}',
    ].join('\n'));
    const s = summarizeDemo(events, load);
    expect(s.problems).toEqual([]);
    expect(s.threadMs).toEqual([0.5, 1.5]);
    expect(s.switched).toBe(2);
    expect(s.jumps).toEqual(['handle_request']);
    expect(s.fixedWithinMs).toBeCloseTo(4);
  });

  it('names what went wrong: no patch, failed requests, no fixed answers', () => {
    const s = summarizeDemo(parseEvents('{"event":"rejected","reason":"wrong build-id"}'), { ...load, errors: 2, refused: 0 });
    expect(s.problems).toContain('rejected: wrong build-id');
    expect(s.problems.some((p) => p.includes('not applied'))).toBe(true);
    expect(s.problems).toContain('2 requests failed (connect ?, i/o ?, unexpected answers ?)');
    expect(s.problems).toContain('no request saw the fixed behaviour');
  });
});

// What `npm run demo` runs: `wfbuild demo`, i.e. `wfbuild live memcached --mode both` with a
// short soak (10 cycles, memccapable after cycles 5 and 10), through the CLI as a user runs it.
describe('wfbuild demo: memcached from Debian, Debian\'s 0007 fix, under load, both modes', () => {
  it('exits 0 with every verdict ok; live.json has both modes with no failed request, no dropped connection, every transition done', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'demo-live-')), 'demo');
    const r = await execa(join(repoRoot, 'pipeline/bin/wfbuild'), ['demo', '--out', out], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.stdout).toMatch(/^ok\s+local: failed requests: 0$/m);
    expect(r.stdout).toMatch(/^ok\s+global: dropped connections: 0$/m);
    expect(r.stdout).not.toMatch(/^FAIL/m);
    const json = JSON.parse(await readFile(join(out, 'live.json'), 'utf8')) as Record<string, any>;
    expect(json.server).toBe('memcached');
    expect(json.package).toMatch(/memcached 1\.6\.18-1\+wfpatch1~without\.0007/);
    expect(json.clock.resolutionNs).toBeLessThan(10_000);
    for (const m of ['local', 'global']) {
      const mode = json.modes[m];
      expect(mode.cycles).toBe(10);
      expect(mode.failed, m).toBe(0);
      expect(mode.droppedConnections, m).toBe(0);
      expect(mode.transitions.applied, m).toBe(10);
      expect(mode.transitions.rolledBack, m).toBe(10);
      expect(mode.transitions.rejected, m).toBe(0);
      expect(mode.transitions.allThreadsSwitched, m).toBe(true);
      expect(mode.conformance.runs, m).toBe(5); // baseline + after both steps of cycles 5 and 10
      expect(mode.conformance.failures, m).toBe(0);
      expect(typeof mode.latencyUs.window.p999, m).toBe('number');
    }
    expect(typeof json.modes.local.createUs).toBe('number');
    expect(typeof json.modes.local.forkUs.beforeUs).toBe('number');
    expect((await readFile(join(out, 'latency.svg'), 'utf8')).startsWith('<svg')).toBe(true);
  }, 3_600_000);
});

// kvd, the bundled toy server (corpus/demo), kept as a fixture: wfbuild makes the bundle, the
// debug kernel boots, kvd is patched under load in both modes (`wfbuild demo --kvd`).
describe('kvd fixture end to end in the guest', () => {
  let report: Report;
  let out: string;
  let bzImage: string;
  const opts = (mode: 'local' | 'global'): DemoOptions => ({
    mode, workers: 4, clients: 4, seconds: 4, triggerMs: 1300, out, bzImage, renderer: 'silent',
  });

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'demo-test-'));
    bzImage = (await buildKernel({ variant: 'debug' })).bzImage;
    await buildRuntime();
    report = await buildDemoBundle(opts('local'));
  }, 3_600_000);

  it('wfbuild classifies the fix as text-only and kpatch-able, with one bundle for kvd', () => {
    expect(report.textOnly).toBe(true);
    expect(report.kpatchable).toBe(true);
    expect(report.bundles.map((b) => b.binary)).toEqual(['kvd']);
  });

  for (const mode of ['local', 'global'] as const) {
    it(`patches kvd under load in ${mode} mode: every worker switches, no request fails, the bug stops`, async () => {
      const result = await runDemoGuest(opts(mode), report);
      const s = result.summary;
      expect(result.kernelFailure).toBeNull();
      expect(s.problems).toEqual([]);
      expect(s.mode).toBe(mode);
      expect(s.threads).toBe(4);
      expect(s.switched).toBe(4);
      expect(s.load.leaked).toBeGreaterThan(0);
      expect(s.load.refused).toBeGreaterThan(0);
      // No answer shows the bug once the last worker has switched (0.5 s slack for clocks and TCG).
      expect(s.threadMs, 'every worker\'s switch is logged with its time').toHaveLength(4);
      const lastSwitchMs = Math.max(...s.threadMs);
      expect((s.load.lastLeakUs - s.load.triggerUs) / 1000).toBeLessThan(lastSwitchMs + 500);
    }, 600_000);
  }
});
