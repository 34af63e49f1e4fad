/**
 * `wfbuild live slapd`: boots the bench kernel with the enabled slapd, its directory, OpenLDAP's
 * slapd-mtread as the load and ldapload beside it (every search timed and checked); cycles
 * through the units' bundles (apply, roll back) in local then global mode; live.json,
 * latency.svg, the table. The guest side is slapd-guest.sh.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { enablePackage } from '../enable/index.ts';
import { repoRoot } from '../paths.ts';
import { runInVm } from '../vm/index.ts';
import { consoleTail } from '../vm/console.ts';
import { analyzeModes, liveConsole } from './guest-results.ts';
import { renderLatencySvg } from './plot.ts';
import { stripSeries, type LiveOptions, type LiveReport } from './types.ts';
import { defaultSlapdUnits, slapdBundles, slapdPackage, stageSlapd, type SlapdBundle } from './slapd.ts';

/** Entries in the guest's directory (besides the suffix and ou=people). */
export const defaultUsers = 2000;

/** ldapload's default pause per connection between searches (µs): slapd-mtread makes the load. */
export const defaultSlapdThinkUs = 2000;

export interface SlapdLiveOptions extends LiveOptions {
  /** Entries in the directory (default 2000). */
  readonly users?: number;
}

async function buildLdapload(dir: string): Promise<string> {
  const out = join(dir, 'ldapload');
  await execa('gcc', ['-O2', '-Wall', '-o', out, join(repoRoot, 'pipeline/src/live/slapd-ldapload.c')]);
  return out;
}

/** The getnameinfo probe preloaded into slapd (slapd-hname-probe.c). */
async function buildProbe(dir: string): Promise<string> {
  const out = join(dir, 'slapd-hname-probe.so');
  await execa('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', out, join(repoRoot, 'pipeline/src/live/slapd-hname-probe.c'), '-ldl']);
  return out;
}

/** The SLAPI plugin the guest configures to see which slapi_over_config runs (slapd-slapi-plugin.c). */
async function buildSlapiPlugin(dir: string): Promise<string> {
  const out = join(dir, 'wf-slapi-plugin.so');
  await execa('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', out, join(repoRoot, 'pipeline/src/live/slapd-slapi-plugin.c')]);
  return out;
}

export async function runLiveSlapd(opts: SlapdLiveOptions): Promise<LiveReport> {
  const say = opts.onOutput ?? (() => {});
  if (opts.bundle !== undefined || opts.binary !== undefined) throw new UserError('wfbuild live slapd: give series units with --patch U1,U2 (a ready --bundle / --binary is memcached-only)');
  const ctl = join(repoRoot, 'kpatch-fork/runtime/build/wfpatch-ctl');
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork/runtime')], { env: { MAKEFLAGS: '' } }).catch((error: Error) => {
    throw new UserError(`libwfpatch / wfpatch-ctl did not build: ${error.message}`, ExitCode.buildFailed);
  });
  say(`enabled build of ${slapdPackage} (wfbuild enable; cached after the first time)`);
  const enabled = await enablePackage({ package: slapdPackage, onOutput: (l) => say(`enable: ${l}`) });
  // debianPatch: series units, comma-separated (cycle c patches with unit (c-1) mod n); none: migrations without a patch.
  const units = opts.debianPatch === undefined ? [] : opts.debianPatch === '' ? defaultSlapdUnits : opts.debianPatch.split(',').filter(Boolean);
  const bundles: SlapdBundle[] = await slapdBundles(units, say);
  for (const b of bundles) say(`bundle ${b.bundle} (${b.unit}) for ${b.soname} (build-id ${b.buildId})`);

  const work = await mkdtemp(join(tmpdir(), 'wflive-slapd-'));
  const out = resolve(opts.out);
  try {
    const ldapload = await buildLdapload(work);
    const probe = await buildProbe(work);
    const payload = await stageSlapd(enabled, bundles, work, await buildSlapiPlugin(work));
    const script = join(work, 'live-slapd-guest.sh');
    await writeFile(script, await readFile(join(repoRoot, 'pipeline/src/live/slapd-guest.sh')), { mode: 0o755 });
    const connections = opts.connections ?? 16;
    const users = opts.users ?? defaultUsers;
    const thinkUs = opts.thinkUs ?? defaultSlapdThinkUs;
    // Hang detection, not a budget: boot, unpacking and slapadd (minutes under TCG on a loaded
    // host), the control slapd; per mode start-up and drain, and per step its interval plus the
    // dump of the whole directory and wfpatch-ctl; then the results over serial.
    const timeoutSec = Math.ceil(900 + opts.modes.length * (180 + opts.cycles * 2 * (opts.intervalS * 3 + 20)));
    const guestResults = join(work, 'results');
    say(`booting the bench kernel (2 CPUs): ${opts.modes.join(' then ')} mode, ${opts.cycles} cycle(s) of apply + rollback every ${opts.intervalS} s${bundles.length ? ` (${bundles.map((b) => b.unit).join(', ')} in turn)` : ' (no bundle: migrations without a patch)'}`);
    const vm = await runInVm({
      variant: 'bench',
      ...(opts.bzImage ? { bzImage: opts.bzImage } : {}),
      cpus: 2,
      memMiB: 1024,
      timeoutSec,
      program: script,
      files: [
        { host: payload.tarball },
        { host: ldapload },
        { host: probe },
        { host: payload.mtread },
        { host: ctl },
        ...payload.hostLibs.map((host) => ({ host })),
        ...bundles.map((b) => ({ host: b.bundle })),
      ],
      env: {
        LIVE_MODES: opts.modes.join(' '),
        LIVE_CYCLES: String(opts.cycles),
        LIVE_INTERVAL: String(opts.intervalS),
        LIVE_CONNS: String(connections),
        LIVE_THREADS: String(opts.threads ?? 4),
        LIVE_THINK_US: String(thinkUs),
        LIVE_USERS: String(users),
        LIVE_BUNDLES: bundles.map((b) => b.bundle).join(' '),
        LIVE_TARBALL: payload.tarball,
        LIVE_LDAPLOAD: ldapload,
        LIVE_PROBE: probe,
        LIVE_MTREAD: payload.mtread,
        LIVE_MTREAD_THREADS: '4',
        LIVE_CTL: ctl,
        LIVE_FAULT: opts.fault ?? '',
      },
      outDir: guestResults,
      onConsole: liveConsole(say),
    });
    const { modes, clock } = await analyzeModes(guestResults, opts.modes, opts.cycles);
    const report: LiveReport = {
      server: 'slapd',
      pin: 'all', // slapd's enablement pins the executable and its libraries (libldap is patched)
      package: `${enabled.package} ${enabled.version}`,
      bundle: bundles.length ? bundles.map((b) => `${b.bundle} (${b.unit} → ${b.soname})`).join('; ') : null,
      binary: payload.contents.slapd!,
      cycles: opts.cycles,
      intervalS: opts.intervalS,
      kernel: { variant: 'bench', cpus: 2 },
      clock,
      load: `slapd-mtread (OpenLDAP's tests/progs, from the enabled build; -c 4 -m 4: 4 threads reading cn=user1 over 4 connections) as the load, beside ldapload with ${connections} connections (base-scope searches of random cn=userK of ${users}, ${thinkUs} µs pause per connection between searches, each answer checked: exactly that entry and resultCode 0), which measured every one of its searches' latency; after every step a subtree search of the whole directory on a new connection compared with the one before the first cycle (reported as memccapable runs / failures)`,
      modes,
      guest: { exitCode: vm.exitCode, timedOut: vm.timedOut, kernelFailure: vm.kernelFailure },
    };
    const hnameProbe = await probeReadings(guestResults, opts.modes, bundles);
    for (const [m, readings] of Object.entries(hnameProbe)) say(`${m}: ldap_pvt_get_hname after each step (held: old code, free: new): ${readings.map((r) => `${r.after}${r.cycle}(${r.unit ?? '-'})=${r.hname}`).join(' ')}`);
    const slapiProbe = await slapiReadings(guestResults, opts.modes);
    if (slapiProbe.control !== null) say(`SLAPI error log a configured plugin wrote to (${oldSlapiLog}: old slapi_over_config, ${newSlapiLog}: new): control slapd ${slapiProbe.control}; ${Object.entries(slapiProbe.modes).map(([m, r]) => `${m} after cycle ${r.cycle}'s apply ${r.log}`).join('; ')}`);
    const tmpOut = `${out}.tmp-${process.pid}`;
    await rm(tmpOut, { recursive: true, force: true });
    await mkdir(tmpOut, { recursive: true });
    await rename(guestResults, join(tmpOut, 'guest')).catch(() => mkdir(join(tmpOut, 'guest')));
    await writeFile(join(tmpOut, 'console.log'), vm.console);
    await writeFile(join(tmpOut, 'live.json'), `${JSON.stringify({ ...(stripSeries(report) as object), bundles, staged: payload.contents, hnameProbe, slapiProbe }, null, 2)}\n`);
    await writeFile(join(tmpOut, 'latency.svg'), await renderLatencySvg(report));
    await rm(out, { recursive: true, force: true });
    await rename(tmpOut, out);
    if (vm.kernelFailure) throw new UserError(`the guest kernel reported a failure (results kept in ${out}):\n${vm.kernelFailure}`, ExitCode.kernelFailure);
    if (vm.timedOut) throw new UserError(`the guest did not finish within ${timeoutSec} s (results so far in ${out}):\n${consoleTail(vm.console, 15)}`, ExitCode.guestTimeout);
    if (vm.exitCode !== 0) throw new UserError(`the guest script failed (exit ${vm.exitCode}; results kept in ${out}):\n${consoleTail(vm.console, 15)}`, ExitCode.internal);
    return report;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** What the probe saw for each conformance dump's connection: which ldap_pvt_get_hname ran. */
export interface ProbeReading {
  readonly cycle: number;
  readonly after: 'apply' | 'rollback';
  /** The unit applied in that cycle (null: no bundles). */
  readonly unit: string | null;
  readonly hname: string;
}

async function probeReadings(results: string, modes: readonly string[], bundles: readonly SlapdBundle[]): Promise<Record<string, ProbeReading[]>> {
  const out: Record<string, ProbeReading[]> = {};
  for (const mode of modes) {
    const text = await readFile(join(results, mode, 'cycles.jsonl'), 'utf8').catch(() => '');
    out[mode] = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as { cycle: number; step: string; after?: string; hname?: string }];
        } catch {
          return [];
        }
      })
      .filter((r) => r.step === 'conformance' && (r.after === 'apply' || r.after === 'rollback'))
      .map((r) => ({ cycle: r.cycle, after: r.after as 'apply' | 'rollback', unit: bundles.length ? bundles[(r.cycle - 1) % bundles.length]!.unit : null, hname: r.hname ?? 'none' }));
  }
  return out;
}

/** Where SLAPI's error log goes by default before Debian's slapi-errorlog-file and after it. */
export const oldSlapiLog = '/var/errors';
export const newSlapiLog = '/var/log/slapi-errors';

/**
 * Which slapi_over_config ran when the guest configured a SLAPI plugin: the error log the
 * plugin's line went to, in the control slapd (never patched) and in each mode's slapd after the
 * first apply of the libslapi bundle (null: not checked, no such bundle).
 */
export interface SlapiProbe {
  readonly control: string | null;
  readonly modes: Readonly<Record<string, { readonly cycle: number; readonly log: string }>>;
}

async function slapiReadings(results: string, modes: readonly string[]): Promise<SlapiProbe> {
  const read = async (file: string): Promise<Record<string, unknown> | null> =>
    readFile(file, 'utf8').then(
      (t) => JSON.parse(t) as Record<string, unknown>,
      () => null,
    );
  const control = await read(join(results, 'slapi-control.json'));
  const out: Record<string, { cycle: number; log: string }> = {};
  for (const mode of modes) {
    const r = await read(join(results, mode, 'slapi.json'));
    if (r) out[mode] = { cycle: Number(r.cycle), log: String(r.slapiErrorLog) };
  }
  return { control: control ? String(control.slapiErrorLog) : null, modes: out };
}
