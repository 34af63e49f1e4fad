/**
 * `wfbuild live memcached`: the enabled server under a real client's load in the guest (bench
 * kernel, 2 CPUs), patched cyclically in local and then global mode from one boot; the results
 * judged into live.json, latency.svg and a table.
 */
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { ExitCode, UserError } from '../cli/errors.ts';
import { whichCommand } from '../kernel/prerequisites.ts';
import { enablePackage } from '../enable/index.ts';
import { repoRoot } from '../paths.ts';
import { runInVm } from '../vm/index.ts';
import { consoleTail } from '../vm/console.ts';
import { analyzeModes, liveConsole } from './guest-results.ts';
import { renderLatencySvg } from './plot.ts';
import { bundleFromSeries } from './bundle.ts';
import { liveServers, stripSeries, type LiveOptions, type LiveReport, type LiveServer } from './types.ts';

export { liveServers, stripSeries, type LiveOptions, type LiveReport, type LiveServer } from './types.ts';


/** The Debian version each server is enabled at (Debian 12's current one). */
const serverPackages: Record<LiveServer, string | null> = {
  memcached: 'memcached=1.6.18-1',
  slapd: 'openldap=2.5.13+dfsg-5', // slapd-run.ts
};

/** memload's default pause per connection between requests (µs): memcaslap makes the load, memload samples it. */
export const defaultThinkUs = 2000;


/** Validates what can be checked without building or booting anything. */
export function checkLiveOptions(o: { server: string; cycles: number; intervalS: number; modes: readonly string[] }): void {
  if (!(liveServers as readonly string[]).includes(o.server)) throw new UserError(`unknown server '${o.server}' (expected ${liveServers.join(' or ')})`);
  if (serverPackages[o.server as LiveServer] === null) throw new UserError(`${o.server}: no enabled build yet (corpus/apps/${o.server}/ has no enablement patch); only memcached runs live`);
  if (!Number.isInteger(o.cycles) || o.cycles < 1 || o.cycles > 100_000) throw new UserError(`--cycles must be an integer from 1 to 100000, got '${String(o.cycles)}'`);
  if (!Number.isFinite(o.intervalS) || o.intervalS < 0.2 || o.intervalS > 3600) throw new UserError(`--interval must be a number of seconds from 0.2 to 3600, got '${String(o.intervalS)}'`);
  if (o.modes.length === 0 || o.modes.some((m) => m !== 'local' && m !== 'global')) throw new UserError(`--mode must be local, global or both`);
}

async function requireTool(name: string, debianPackage: string): Promise<string> {
  const path = await whichCommand(name);
  if (path === undefined) throw new UserError(`${name} is missing: apt-get install ${debianPackage} (or wfbuild setup)`, ExitCode.missingPrerequisite);
  return path;
}

/** Compiles memload (the client that records every request) into `dir`. */
export async function buildMemload(dir: string): Promise<string> {
  const out = join(dir, 'memload');
  await execa('gcc', ['-O2', '-Wall', '-o', out, join(repoRoot, 'pipeline/src/live/memload.c')]);
  return out;
}

/** Compiles the conn_new probe (cne-probe.c, a preload library for memcached) into `dir`. */
export async function buildCneProbe(dir: string): Promise<string> {
  const out = join(dir, 'cne-probe.so');
  await execa('gcc', ['-O2', '-Wall', '-fPIC', '-shared', '-fno-builtin', '-o', out, join(repoRoot, 'pipeline/src/live/cne-probe.c')]);
  return out;
}

export async function runLive(opts: LiveOptions): Promise<LiveReport> {
  checkLiveOptions(opts);
  if (opts.server === 'slapd') return (await import('./slapd-run.ts')).runLiveSlapd(opts);
  const say = opts.onOutput ?? (() => {});
  if (opts.bundle !== undefined && opts.debianPatch !== undefined) throw new UserError('give either a bundle or a Debian patch, not both');
  if (opts.binary !== undefined) await access(resolve(opts.binary), constants.X_OK).catch(() => {
    throw new UserError(`cannot run the server binary ${opts.binary}`);
  });
  if (opts.bundle !== undefined) await access(resolve(opts.bundle), constants.R_OK).catch(() => {
    throw new UserError(`cannot read the bundle ${opts.bundle}`);
  });
  const memcaslap = await requireTool('memcaslap', 'libmemcached-tools');
  const memccapable = await requireTool('memccapable', 'libmemcached-tools');
  const ctl = join(repoRoot, 'kpatch-fork/runtime/build/wfpatch-ctl');
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork/runtime')], { env: { MAKEFLAGS: '' } }).catch((error: Error) => {
    throw new UserError(`libwfpatch / wfpatch-ctl did not build: ${error.message}`, ExitCode.buildFailed);
  });
  const pkg = serverPackages[opts.server]!;
  let server: string;
  let serverFiles: Array<{ host: string; guest?: string }>;
  let packageLabel: string;
  let bundleFile = opts.bundle ? resolve(opts.bundle) : undefined;
  if (opts.debianPatch) {
    // The server is the enabled build without that patch, as its .deb installs it; the bundle targets it.
    const built = await bundleFromSeries(pkg, opts.debianPatch, { onOutput: say });
    say(`bundle ${built.bundle} for ${built.installedPath} of ${built.version} (build-id ${built.buildId})`);
    bundleFile = built.bundle;
    server = built.installedPath;
    serverFiles = [{ host: built.binary, guest: built.installedPath }, ...(built.debugFile && built.debugPath ? [{ host: built.debugFile, guest: built.debugPath }] : [])];
    packageLabel = `${opts.server} ${built.version}`;
  } else {
    say(`enabled build of ${pkg} (wfbuild enable; cached after the first time)`);
    const enabled = await enablePackage({ package: pkg, onOutput: (l) => say(`enable: ${l}`) });
    server = opts.binary ? resolve(opts.binary) : join(enabled.tree, 'memcached');
    serverFiles = [{ host: server }];
    packageLabel = `${enabled.package} ${enabled.version}`;
  }

  const work = await mkdtemp(join(tmpdir(), 'wflive-'));
  const out = resolve(opts.out);
  try {
    const memload = await buildMemload(work);
    const cneProbe = opts.cneProbe ? await buildCneProbe(work) : undefined;
    const script = join(work, 'live-guest.sh');
    await writeFile(script, await readFile(join(repoRoot, 'pipeline/src/live/guest.sh')), { mode: 0o755 });
    const bundle = bundleFile;
    const connections = opts.connections ?? 16;
    const stepS = opts.cycles * 2 * opts.intervalS;
    const capableRuns = 2 * Math.ceil(opts.cycles / (opts.capableEvery ?? 1));
    // Boot, per mode: start-up, conformance baseline, steps (+ memccapable's 5–30 s), forks, drain; then the results over serial.
    // Generous (a loaded host slows every step): the timeout only ends a guest that hangs. The
    // earlier 240 + modes × (120 + 4 × steps + 60 × memccapable runs) ended a 2-cycle run at
    // 16.5 min on a host running four other TCG guests (load 25–30), with the results lost.
    const timeoutSec = Math.ceil(600 + opts.modes.length * (300 + stepS * 10 + capableRuns * 150));
    const guestResults = join(work, 'results');
    say(`booting ${opts.bzImage ? opts.bzImage : 'the bench kernel'} (2 CPUs): ${opts.modes.join(' then ')} mode, ${opts.cycles} cycle(s) of apply + rollback every ${opts.intervalS} s${bundle ? '' : ' (no bundle: each step is a migration without a patch)'}`);
    const vm = await runInVm({
      variant: 'bench',
      ...(opts.bzImage ? { bzImage: opts.bzImage } : {}),
      cpus: 2,
      memMiB: 1024,
      timeoutSec,
      program: script,
      files: [...serverFiles, { host: memload }, { host: ctl }, { host: memcaslap }, { host: memccapable }, ...(bundle ? [{ host: bundle }] : []), ...(cneProbe ? [{ host: cneProbe }] : [])],
      env: {
        LIVE_MODES: opts.modes.join(' '),
        LIVE_CYCLES: String(opts.cycles),
        LIVE_INTERVAL: String(opts.intervalS),
        LIVE_CONNS: String(connections),
        LIVE_THREADS: String(opts.threads ?? 4),
        LIVE_THINK_US: String(opts.thinkUs ?? defaultThinkUs),
        LIVE_BUNDLE: bundle ?? '',
        LIVE_MEMCACHED: server,
        LIVE_MEMLOAD: memload,
        LIVE_CTL: ctl,
        LIVE_FAULT: opts.fault ?? '',
        LIVE_CAPABLE_EVERY: String(opts.capableEvery ?? 1),
        LIVE_PIN: opts.pin === 'exe' ? 'exe' : '',
        LIVE_CNE_PROBE: cneProbe ?? '',
      },
      outDir: guestResults,
      onConsole: liveConsole(say),
    });
    const { modes, clock } = await analyzeModes(guestResults, opts.modes, opts.cycles);
    const report: LiveReport = {
      server: opts.server,
      package: packageLabel,
      bundle: bundle ?? null,
      binary: server,
      cycles: opts.cycles,
      intervalS: opts.intervalS,
      pin: opts.pin ?? 'all',
      kernel: { variant: 'bench', cpus: 2 },
      clock,
      load: `memcaslap -T 1 -c ${connections} (the load; its own summary under memcaslap) beside memload with ${connections} connections (90% get, 10% set, 64-byte values over 10000 keys, ${opts.thinkUs ?? defaultThinkUs} µs pause per connection between requests), which measured every one of its requests' latency; memccapable after ${(opts.capableEvery ?? 1) === 1 ? 'every step' : `both steps of every ${opts.capableEvery}th cycle and of the last`}`,
      modes,
      guest: { exitCode: vm.exitCode, timedOut: vm.timedOut, kernelFailure: vm.kernelFailure },
    };
    // Whatever the guest did, keep what came back: the raw results and the judgement.
    const tmpOut = `${out}.tmp-${process.pid}`;
    await rm(tmpOut, { recursive: true, force: true });
    await mkdir(tmpOut, { recursive: true });
    await rename(guestResults, join(tmpOut, 'guest')).catch(() => mkdir(join(tmpOut, 'guest')));
    await writeFile(join(tmpOut, 'console.log'), vm.console);
    await writeFile(join(tmpOut, 'live.json'), `${JSON.stringify(stripSeries(report), null, 2)}\n`);
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

