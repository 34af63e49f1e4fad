/**
 * `wfbuild live memcached`: the enabled memcached under load in the guest (bench kernel,
 * 2 CPUs), patched cyclically in local and then global mode from one boot. A short run (3
 * cycles of apply + rollback of Debian's 0007-uninitialized-variables, made into a bundle by
 * wfbuild against the enabled build; steps 1 s apart or as long as memccapable takes) must lose no request and no connection, every tracked thread must switch in every
 * transition, and live.json / latency.svg must be complete. Faults (the load client killed, the
 * server SIGTERMed during a transition) must neither hang the guest nor lose the results so far.
 * (The fault runs use migrations without a patch.) Bad input is refused before any build or
 * boot. On an empty cache the enabled build, the bundle's build and the bench kernel are built
 * first (minutes).
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runLive, type LiveReport } from '../pipeline/src/live/run.ts';
import { parseMemcaslap, parseRuntimeLog, parseSamples, type ModeReport } from '../pipeline/src/live/analyze.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';
import { bundleFromSeries, readBuildId } from '../pipeline/src/live/bundle.ts';
import { enablePackage } from '../pipeline/src/enable/index.ts';

const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wflive-test-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function mode(report: LiveReport, m: 'local' | 'global'): ModeReport {
  const r = report.modes[m];
  if (!r || 'error' in r) throw new Error(`mode ${m}: ${r ? r.error : 'missing'}`);
  return r;
}

describe('wfbuild live: bad input, refused before building or booting', () => {
  it.each([
    [['nginx'], /unknown server 'nginx'/],
    [['memcached', '--cycles', '0'], /--cycles must be an integer from 1/],
    [['memcached', '--cycles', 'garbage'], /--cycles must be an integer, got 'garbage'/],
    [['memcached', '--interval', 'soon'], /--interval must be a number/],
    [['memcached', '--mode', 'both-ish'], /--mode must be local, global or both/],
    [['slapd', '--bundle', '/nonexistent.wfp'], /memcached-only/],
    [[], /which server/],
  ])('wfbuild live %j → exit 2', async (args, message) => {
    const started = Date.now();
    const r = await execa(wfbuild, ['live', ...args], { reject: false, env: { WFPATCH_CACHE: join(scratch, 'never-used') } });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    // Refused before any build or boot (those take minutes to half an hour); the bound only has
    // to allow for starting wfbuild on a loaded host (35 s seen at load 9 under nice).
    expect(Date.now() - started).toBeLessThan(120_000);
  });

  it('a missing bundle is refused by the library too', async () => {
    await expect(runLive({ server: 'memcached', modes: ['local'], cycles: 1, intervalS: 1, out: join(scratch, 'x'), bundle: join(scratch, 'nope.wfp') })).rejects.toThrow(UserError);
  });
});

describe('the readers', () => {
  it('memload samples: varint records, zigzag start deltas, the failure bit; a cut record is ignored', () => {
    const varint = (v: bigint): number[] => {
      const out: number[] = [];
      while (v >= 0x80n) {
        out.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      out.push(Number(v));
      return out;
    };
    const zig = (d: bigint): bigint => (d >= 0n ? d << 1n : ((-d) << 1n) - 1n);
    const base = 1_000_000_000n;
    const bytes = [
      ...Buffer.from('WFLS1\n'),
      ...varint(zig(5_000n)), ...varint(120_000n << 1n), // start base+5 µs, 120 µs
      ...varint(zig(-2_000n)), ...varint((7_000n << 1n) | 1n), // base+3 µs, failed
      ...varint(zig(300n)), // cut inside the record
    ];
    const s = parseSamples(Buffer.from(bytes), Number(base));
    expect(s.ok).toEqual([{ startUs: 1_000_005, latencyUs: 120 }]);
    expect(s.failed).toEqual([{ startUs: 1_000_003, latencyUs: 7 }]);
    expect(s.truncated).toBe(true);
  });

  it("memcaslap's last Total Statistics line, also when its SIGINT message cut it", () => {
    const block = (t: number, ops: number, tail: string) =>
      `Total Statistics\nType     Time(s)  Ops          TPS(ops/s)   Net(M/s)   Get_miss   Min(us)  Max(us)    Avg(us)    Std_dev    Geo_dist  \nPeriod   1        789          789          0.8        660        130      170016     20429      27279.93   8044.52\nGlobal   ${t}       ${tail}${ops}        691          0.7        50747      74       421011     23339      31045.12   11277.71\n`;
    const text = `servers: 127.0.0.1:11211\n${block(98, 67716, '')}\n${block(99, 68505, 'SIGINT handled.\n')}`;
    expect(parseMemcaslap(text)).toEqual({ seconds: 99, ops: 68505, tps: 691, getMisses: 50747, maxUs: 421011, avgUs: 23339 });
    expect(parseMemcaslap('Run time: 3.0s Ops: 250306 TPS: 82128 Net_rate: 62.6M/s\n')).toMatchObject({ seconds: 3, ops: 250306, tps: 82128 });
  });

  it("libwfpatch's log: transitions with their threads; local switch = last migration, global = release", () => {
    const lines = [
      { event: 'init', time: 1 },
      { event: 'trigger', seq: 1, time: 10.5, action: 'apply', mode: 'local', patch: null },
      { event: 'generation_created', seq: 1, create_us: 80 },
      { event: 'migrated', thread: 'worker', ms: 1.5 },
      { event: 'migrated', thread: 'listener', ms: 2.5 },
      { event: 'summary', seq: 1, outcome: 'applied', threads: 2, migrated: 2 },
      { event: 'done', seq: 1, ms: 3 },
      { event: 'trigger', seq: 2, time: 11.5, action: 'rollback', mode: 'global', patch: null },
      { event: 'arrived', thread: 'worker', ms: 0.5 },
      { event: 'summary', seq: 2, outcome: 'rejected', threads: 2, migrated: 1 },
      { event: 'rejected', seq: 2, reason: 'global quiescence not reached' },
    ].map((l) => JSON.stringify(l));
    const t = parseRuntimeLog(`${lines.join('\n')}\n{"event":"trig`);
    expect(t).toHaveLength(2);
    expect(t[0]).toMatchObject({ seq: 1, action: 'apply', triggerRealUs: 10_500_000, outcome: 'applied', threads: 2, migrated: 2, switchMs: 2.5, createUs: 80 });
    expect(t[1]).toMatchObject({ seq: 2, action: 'rollback', outcome: 'rejected', reason: 'global quiescence not reached', switchMs: null });
  });
});

describe('wfbuild live memcached (guest)', () => {
  it('a short run, both modes from one boot: no failed request, no dropped connection, every thread switched each time', async () => {
    const out = join(scratch, 'short');
    const lines: string[] = [];
    const report = await runLive({ server: 'memcached', modes: ['local', 'global'], cycles: 3, intervalS: 1, out, debianPatch: '0007-uninitialized-variables', cneProbe: true, onOutput: (l) => lines.push(l) });
    expect(report.bundle).toMatch(/memcached\.wfp$/);
    expect(report.guest.kernelFailure).toBeNull();
    expect(report.clock.resolutionNs).toBeLessThan(10_000);
    for (const m of ['local', 'global'] as const) {
      const r = mode(report, m);
      const context = `${m}: ${JSON.stringify({ ...r, series: undefined })}`;
      expect(r.requests, context).toBeGreaterThan(100);
      expect(r.failed, context).toBe(0);
      expect(r.droppedConnections, context).toBe(0);
      expect(r.transitions.total, context).toBe(6); // 3 cycles × (apply + rollback)
      expect(r.transitions.rejected, context).toBe(0);
      expect(r.transitions.allThreadsSwitched, context).toBe(true);
      expect(r.conformance.runs, context).toBe(7); // baseline + after each step
      expect(r.conformance.failures, context).toBe(0);
      expect(r.latencyUs.window, context).not.toBeNull();
      expect(r.latencyUs.all!.p50).toBeGreaterThan(0);
      expect(r.load.memcaslap?.ops, context).toBeGreaterThan(0);
    }
    expect(mode(report, 'local').createUs).toBeGreaterThan(0);
    expect(mode(report, 'local').loadUs).toBeGreaterThan(0);
    expect(mode(report, 'global').loadUs).toBeGreaterThan(0);

    const json = JSON.parse(await readFile(join(out, 'live.json'), 'utf8')) as Record<string, any>;
    expect(json.server).toBe('memcached');
    expect(json.clock.resolutionNs).toBeLessThan(10_000);
    for (const m of ['local', 'global']) {
      const r = json.modes[m];
      for (const key of ['requests', 'failed', 'droppedConnections', 'switchMs', 'createUs', 'loadUs', 'memoryPerGenerationKiB', 'cycles']) expect(r, `${m}.${key}`).toHaveProperty(key);
      for (const part of ['all', 'window']) for (const p of ['p50', 'p99', 'p999', 'max']) expect(typeof r.latencyUs[part][p], `${m}.latencyUs.${part}.${p}`).toBe('number');
      expect(typeof r.switchMs.median).toBe('number');
      expect(typeof r.switchMs.max).toBe('number');
      expect(r.cycles).toBe(3);
    }
    // The fix visible in behaviour: with a `watch connevents` client attached, memcached's logger
    // thread formats a conn_new line for every new connection in _logger_parse_cne; the probe
    // (cne-probe.c) saw who called the formatting: memcached's own code before the first apply
    // and after every rollback, the patch's code (an anonymous r-x mapping) after every apply.
    for (const m of ['local', 'global']) {
      const probes = (await readFile(join(out, 'guest', m, 'cne.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { cycle: number; step: string; in: string });
      expect(probes.map((p) => `${p.step}:${p.in}`), m).toEqual([
        'baseline:memcached',
        ...[1, 2, 3].flatMap(() => ['apply:patch', 'rollback:memcached']),
      ]);
      const watch = await readFile(join(out, 'guest', m, 'watch.txt'), 'utf8');
      expect(watch, m).toMatch(/type=conn_new rip=127\.0\.0\.1 rport=\d+ transport=tcp/);
    }
    const svg = await readFile(join(out, 'latency.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('local quiescence');
    expect(svg).toContain('global quiescence');
    expect((await stat(join(out, 'guest/local/wfpatch.log'))).size).toBeGreaterThan(0);
  }, 3_600_000);

  it.each([
    ['kill-client@2', 'the load client killed before cycle 2'],
    ['term-server@2', 'memcached SIGTERMed during cycle 2'],
  ])('fault %s (%s): the guest ends by itself and the results so far are kept', async (fault) => {
    const out = join(scratch, fault.replace('@', '-'));
    const report = await runLive({ server: 'memcached', modes: ['local'], cycles: 3, intervalS: 1, out, fault }).catch((error: Error) => {
      throw new Error(`${fault}: ${error.message}`);
    });
    expect(report.guest.timedOut).toBe(false);
    expect(report.guest.kernelFailure).toBeNull();
    const r = mode(report, 'local');
    expect(r.requests).toBeGreaterThan(0);
    const json = JSON.parse(await readFile(join(out, 'live.json'), 'utf8')) as { modes: { local: { requests: number } } };
    expect(json.modes.local.requests).toBe(r.requests);
    if (fault.startsWith('kill-client')) {
      expect(r.load.final).toBe(false); // killed: its partial summary and flushed samples
    } else {
      // The server went away: its connections dropped, the transitions after it did not happen.
      expect(r.droppedConnections).toBeGreaterThan(0);
      expect(r.transitions.total).toBeLessThan(6);
    }
  }, 3_600_000);
});

describe('wfbuild live memcached: bad bundles (guest)', () => {
  it('a bundle for another build of memcached (the whole series, 0007 in it) is refused by build-id; the server serves on', async () => {
    const built = await bundleFromSeries('memcached=1.6.18-1', '0007-uninitialized-variables');
    const whole = await enablePackage({ package: 'memcached=1.6.18-1' });
    const other = join(whole.tree, 'memcached');
    expect(await readBuildId(other)).not.toBe(built.buildId);
    const out = join(scratch, 'wrong-build');
    const report = await runLive({ server: 'memcached', modes: ['local', 'global'], cycles: 2, intervalS: 1, out, bundle: built.bundle, binary: other });
    for (const m of ['local', 'global'] as const) {
      const r = mode(report, m);
      const context = `${m}: ${JSON.stringify({ ...r, series: undefined })}`;
      // Every apply refused (and so every rollback: nothing applied); nothing else went wrong.
      expect(r.transitions.applied, context).toBe(0);
      expect(r.transitions.rejected, context).toBe(4);
      expect(r.transitions.rejectReasons?.join('\n'), context).toMatch(/build-id/i);
      expect(r.requests, context).toBeGreaterThan(100);
      expect(r.failed, context).toBe(0);
      expect(r.droppedConnections, context).toBe(0);
      expect(r.conformance.failures, context).toBe(0);
      expect(r.conformance.runs, context).toBe(5);
    }
  }, 3_600_000);

  it('a bundle that fails to load while a patch is applied is refused; the server stays on its generation and the cycles go on', async () => {
    const out = join(scratch, 'bad-bundle');
    const report = await runLive({ server: 'memcached', modes: ['local', 'global'], cycles: 3, intervalS: 1, out, debianPatch: '0007-uninitialized-variables', fault: 'bad-bundle@2' });
    for (const m of ['local', 'global'] as const) {
      const r = mode(report, m);
      const context = `${m}: ${JSON.stringify({ ...r, series: undefined })}`;
      expect(r.transitions.applied, context).toBe(3);
      expect(r.transitions.rolledBack, context).toBe(3);
      expect(r.transitions.rejected, context).toBe(1);
      expect(r.failed, context).toBe(0);
      expect(r.droppedConnections, context).toBe(0);
      expect(r.conformance.failures, context).toBe(0);
      const bad = JSON.parse(await readFile(join(out, 'guest', m, 'bad-bundle.json'), 'utf8')) as { ctlExit: number; before: Record<string, unknown>; after: Record<string, unknown> };
      expect(bad.ctlExit, context).toBe(3); // rejected
      // The same patch stack (and, in local mode, the same generation) before and after.
      expect(bad.after.depth).toBe(1);
      expect(bad.after.patches).toEqual(bad.before.patches);
      if (m === 'local') expect(bad.after.gen).toBe(bad.before.gen);
      expect(bad.after.busy).toBe(false);
    }
  }, 3_600_000);
});
