import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import type { Command } from '../cli/command.ts';
import { ExitCode, UserError } from '../cli/errors.ts';
import { checkLiveOptions, runLive, type LiveReport } from './run.ts';
import type { LiveMode, ModeReport } from './analyze.ts';

const help = `Usage: wfbuild live memcached|slapd [--mode local|global|both] [--cycles N] [--interval S]
                     [--patch NAME | --bundle FILE [--binary FILE] | --no-patch] [--out DIR] [--json]
                     [--capable-every K] [--pin exe|all]

Boots the bench kernel (2 CPUs) with the server enabled for live patching (wfbuild enable),
starts it under load over loopback (memcached: memcaslap, and memload, our client that records
every request's latency on CLOCK_MONOTONIC), and patches it cyclically: apply, then roll back,
every --interval seconds, --cycles times; memccapable checks the protocol after every step
(or, with --capable-every K, after both steps of every K-th cycle and of the last one).
Local, then global quiescence, from one guest boot. The patch is, by default, memcached's
0007-uninitialized-variables from Debian's own series, made into a bundle by wfbuild against
the enabled build (that build's binary is the one run). With --no-patch each step is a
migration without a patch (wfpatch-ctl next). slapd: OpenLDAP's slapd-mtread is the load and
ldapload (ours) times and checks every search; the patches are getaddrinfo-is-threadsafe
(libldap) and slapi-errorlog-file (libslapi) in turn, or --patch U1,U2 (slapd-run.ts).

Writes DIR/live.json (figures per mode), DIR/latency.svg (latency over time, patch moments
marked), DIR/guest/ (the raw results) and DIR/console.log; prints a table.

Options:
  --mode M       local, global or both (default both)
  --cycles N     apply+rollback cycles per mode (default 50)
  --interval S   seconds between steps (default 1)
  --patch NAME   a patch of the package's Debian series (default 0007-uninitialized-variables)
  --bundle FILE  a ready bundle instead; --binary FILE the server binary it targets
  --no-patch     migrations without a patch
  --out DIR      default ./wfbuild-live/SERVER
  --json         print live.json instead of the table
  --capable-every K  memccapable (5–30 s a run) only after every K-th cycle and the last (soaks)
  --cne-probe    memcached: show which _logger_parse_cne runs (the original or the patch's):
                 a watch connevents client, one connection after every step, the caller
                 of its line's formatting looked up in the server's maps (guest/MODE/cne.jsonl)
  --pin exe|all  what libwfpatch pins at wf_init: the executable and its libraries (all, the
                 default) or the executable only (WF_PIN=exe: a smaller wf_create; library code
                 cannot then be patched in local mode)

Exit: 0 done (check the table: failed requests and dropped connections must be 0); 2 bad
input; 10 the guest kernel reported a failure; 11 the guest hung; 13 a tool is missing.`;

function parseNumber(name: string, text: string | undefined, fallback: number, integer: boolean): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UserError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${text}'`);
  return n;
}

// slapd: '' means its default units (slapd.ts: getaddrinfo-is-threadsafe, slapi-errorlog-file); --patch U1,U2 names others.
const defaultPatch: Record<LiveReport['server'], string> = { memcached: '0007-uninitialized-variables', slapd: '' };

const fmt = (x: number | null | undefined, digits = 0): string => (x === null || x === undefined ? '–' : x.toFixed(digits));

export function liveTable(report: LiveReport): string {
  const modes = Object.keys(report.modes) as LiveMode[];
  const get = (m: LiveMode): ModeReport | null => {
    const r = report.modes[m];
    return r && !('error' in r) ? r : null;
  };
  const rows: Array<[string, (r: ModeReport) => string]> = [
    ['requests (memload)', (r) => String(r.requests)],
    ['failed requests', (r) => String(r.failed)],
    ['dropped connections', (r) => String(r.droppedConnections)],
    ['memcaslap ops (TPS); its avg / max µs', (r) => (r.load.memcaslap ? `${fmt(r.load.memcaslap.ops)} (${fmt(r.load.memcaslap.tps)}); ${fmt(r.load.memcaslap.avgUs)} / ${fmt(r.load.memcaslap.maxUs)}` : '–')],
    ['latency all p50 / p99 / p99.9 / max (µs)', (r) => pct(r.latencyUs.all)],
    ['  in patch windows', (r) => pct(r.latencyUs.window)],
    ['  outside them (and outside memccapable)', (r) => pct(r.latencyUs.outside)],
    ['  during memccapable runs', (r) => pct(r.latencyUs.duringConformance)],
    ['p99.9 window / outside', (r) => fmt(r.p999WindowRatio, 2)],
    ['trigger → all switched, median / max (ms)', (r) => `${fmt(r.switchMs.median, 2)} / ${fmt(r.switchMs.max, 2)}`],
    ['seconds between steps (median)', (r) => fmt(r.stepSpacingS, 1)],
    ['transitions done / rejected', (r) => `${r.transitions.applied + r.transitions.rolledBack} / ${r.transitions.rejected}`],
    ['every tracked thread switched', (r) => (r.transitions.allThreadsSwitched ? `yes (${fmt(r.transitions.threads)} threads)` : 'NO')],
    ['memccapable runs / failures', (r) => `${r.conformance.runs} / ${r.conformance.failures}`],
    ['wf_create (µs)', (r) => fmt(r.createUs)],
    ['patch load (µs)', (r) => fmt(r.loadUs)],
    ['fork() of the server before / after the cycles (µs)', (r) => (r.forkUs ? `${fmt(r.forkUs.beforeUs)} / ${fmt(r.forkUs.afterUs)}${r.forkUs.errors.length ? ` (${r.forkUs.errors.length} failed: ${r.forkUs.errors[0]})` : ''}` : '–')],
    ['  apply: loaded / created / kick (ms after trigger)', (r) => (r.switchBreakdownMs ? `${fmt(r.switchBreakdownMs.apply.loadedMs, 1)} / ${fmt(r.switchBreakdownMs.apply.createdMs, 1)} / ${fmt(r.switchBreakdownMs.apply.pendingMs, 1)}` : '–')],
    ['  apply: first / last thread switched; all parked (ms)', (r) => (r.switchBreakdownMs ? `${fmt(r.switchBreakdownMs.apply.firstThreadMs, 1)} / ${fmt(r.switchBreakdownMs.apply.lastThreadMs, 1)}; ${fmt(r.switchBreakdownMs.apply.quiescenceMs, 1)}` : '–')],
    ['  switch median apply / rollback (ms)', (r) => (r.switchBreakdownMs ? `${fmt(r.switchBreakdownMs.apply.switchMs, 1)} / ${fmt(r.switchBreakdownMs.rollback.switchMs, 1)}` : '–')],
    ['minor faults: apply / rollback, until switched; in its interval', (r) => (r.minorFaults ? `${fmt(r.minorFaults.applyDuring)} / ${fmt(r.minorFaults.rollbackDuring)}; ${fmt(r.minorFaults.applyInterval)} / ${fmt(r.minorFaults.rollbackInterval)}` : '–')],
    ['memory per generation (KiB)', (r) => fmt(r.memoryPerGenerationKiB)],
    ['RSS before / after (KiB)', (r) => `${fmt(r.memory.before?.rssKiB)} / ${fmt(r.memory.after?.rssKiB)}`],
    ['MemFree before / after (KiB)', (r) => `${fmt(r.memory.before?.memFreeKiB)} / ${fmt(r.memory.after?.memFreeKiB)}`],
    ['2nd half, mappings per cycle (middle → end)', (r) => (r.memoryTrend ? `${fmt(r.memoryTrend.mapsPerCycle ?? null, 3)} (${r.memoryTrend.mapsMid ?? '?'} → ${r.memoryTrend.mapsEnd ?? '?'})` : '–')],
    ['2nd half, KiB per cycle: RSS / RSS besides cache / MemFree', (r) => (r.memoryTrend ? `${fmt(r.memoryTrend.rssKiBPerCycle, 2)} / ${fmt(r.memoryTrend.rssBesidesCacheKiBPerCycle, 2)} / ${fmt(r.memoryTrend.memFreeKiBPerCycle, 2)}` : '–')],
  ];
  const pct = (p: ModeReport['latencyUs']['all']): string => (p ? `${fmt(p.p50)} / ${fmt(p.p99)} / ${fmt(p.p999)} / ${fmt(p.max)}` : '–');
  const header = ['', ...modes];
  const body = rows.map(([label, f]) => [label, ...modes.map((m) => {
    const r = get(m);
    return r ? f(r) : `error: ${(report.modes[m] as { error: string }).error}`;
  })]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const refused = modes.map(get).find((r) => r?.percentilesRefused)?.percentilesRefused;
  return [
    `${report.package} (${report.server}), ${report.cycles} cycle(s), interval ${report.intervalS} s, pinned: ${report.pin === 'exe' ? 'the executable' : 'executable and libraries'}, ${report.bundle ?? 'no bundle: migrations without a patch'}`,
    `clock: ${report.clock.clocksource ?? '?'}, measured resolution ${fmt(report.clock.resolutionNs)} ns${refused ? ` — percentiles refused: ${refused}` : ''}`,
    line(header),
    ...body.map(line),
  ].join('\n');
}

export const liveCommand: Command = {
  name: 'live',
  summary: 'patch an enabled server cyclically under real load in the guest (local vs global), latency report',
  help,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        mode: { type: 'string' },
        cycles: { type: 'string' },
        interval: { type: 'string' },
        bundle: { type: 'string' },
        binary: { type: 'string' },
        patch: { type: 'string' },
        'no-patch': { type: 'boolean' },
        out: { type: 'string' },
        json: { type: 'boolean' },
        fault: { type: 'string' },
        'capable-every': { type: 'string' },
        pin: { type: 'string' },
        'cne-probe': { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new UserError(positionals.length ? `unexpected argument '${positionals[1]}'` : 'which server? wfbuild live memcached|slapd');
    const server = positionals[0]!;
    const mode = values.mode ?? 'both';
    const modes: LiveMode[] = mode === 'both' ? ['local', 'global'] : mode === 'local' || mode === 'global' ? [mode] : [];
    if (!modes.length) throw new UserError(`--mode must be local, global or both, got '${mode}'`);
    const cycles = parseNumber('cycles', values.cycles, 50, true);
    const intervalS = parseNumber('interval', values.interval, 1, false);
    checkLiveOptions({ server, cycles, intervalS, modes });
    const capableEvery = parseNumber('capable-every', values['capable-every'], 1, true);
    if (capableEvery < 1) throw new UserError(`--capable-every must be at least 1, got '${capableEvery}'`);
    if (values.pin !== undefined && values.pin !== 'exe' && values.pin !== 'all') throw new UserError(`--pin must be exe or all, got '${values.pin}'`);
    if (values.fault !== undefined && !/^(kill-client|term-server|bad-bundle)@\d+$/.test(values.fault)) throw new UserError(`--fault must be kill-client@N, term-server@N or bad-bundle@N`);
    if ([values.bundle, values.patch, values['no-patch']].filter((v) => v !== undefined).length > 1) throw new UserError('give one of --patch, --bundle and --no-patch');
    if (values['cne-probe'] && server !== 'memcached') throw new UserError('--cne-probe is memcached-only');
    const out = resolve(values.out ?? join('wfbuild-live', server));
    const report = await runLive({
      server: server as LiveReport['server'],
      modes,
      cycles,
      intervalS,
      out,
      ...(values.bundle ? { bundle: values.bundle } : {}),
      ...(values.binary ? { binary: values.binary } : {}),
      ...(values.bundle || values['no-patch'] ? {} : { debianPatch: values.patch ?? defaultPatch[server as LiveReport['server']] }),
      ...(values.fault ? { fault: values.fault } : {}),
      ...(values['cne-probe'] ? { cneProbe: true } : {}),
      capableEvery,
      ...(values.pin !== undefined ? { pin: values.pin as 'exe' | 'all' } : {}),
      onOutput: values.json ? undefined : (line) => console.error(`live: ${line}`),
    });
    console.log(values.json ? JSON.stringify(report, (k, v: unknown) => (k === 'series' ? undefined : v), 2) : `${liveTable(report)}\n\nwritten: ${out}/live.json, ${out}/latency.svg`);
    return ExitCode.ok;
  },
};
