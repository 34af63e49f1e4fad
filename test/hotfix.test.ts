/**
 * Issue #12 end to end, in the guest with a Debian userland (`wfbuild vm run --userland`): the
 * enabled memcached .deb installed with dpkg and serving under load; hot-fix .debs made by
 * `wfbuild package` from two real wfbuild outputs (fixtures/hotfix/memcached/: a fix in
 * proto_text.c, one in slabs.c), built against the enabled build — their target build-id is the
 * one of /usr/bin/memcached in the .deb. In the guest (fixtures/hotfix/guest.sh): a package
 * with a corrupt fix is refused by the runtime while memcached serves and postinst says so;
 * .1 patches the running memcached (every thread in the new generation); the upgrade to .2
 * applies only the second fix; after a restart both load at wf_init; `dpkg -r` rolls them back;
 * memload saw no failed request in either run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { enablePackage } from '../pipeline/src/enable/index.ts';
import { libwfpatchBuildEnv, snapshotLibwfpatch } from '../pipeline/src/enable/libwfpatch.ts';
import { debianBinaryBuild } from '../pipeline/src/enable/package-build.ts';
import { copyTree } from '../pipeline/src/common/fs.ts';
import { cacheRoot, repoRoot } from '../pipeline/src/paths.ts';
import { runInVm } from '../pipeline/src/vm/run.ts';
import { shellQuote } from '../pipeline/src/vm/init-script.ts';
import type { Report } from '../pipeline/src/report/types.ts';

const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');
const fixtures = join(repoRoot, 'test/fixtures/hotfix');
const fixes = ['0001-verbosity-level-out-of-range.patch', '0002-slabs-memlimit-below-malloced-CVE-2099-0012.patch'];

// Under /var/tmp, not /tmp: the guest sees the host's files through 9p, but has its own /tmp.
let scratch: string;
let results: string;
let enabledVersion: string;
let debBuildId: string;
const debs: Record<'corrupt' | 'deb1' | 'deb2', string> = { corrupt: '', deb1: '', deb2: '' };
let vmExit: number | null = null;
let vmConsole = '';

async function buildIdOf(file: string): Promise<string> {
  const out = (await execa('readelf', ['-n', '--wide', file])).stdout;
  return /Build ID:\s*([0-9a-f]+)/.exec(out)![1];
}

const readResult = (name: string): Promise<string> => readFile(join(results, name), 'utf8').catch(() => '');
const jsonLines = async (name: string): Promise<Record<string, unknown>[]> =>
  (await readResult(name)).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
const lastEvent = async (name: string): Promise<Record<string, unknown>> => (await jsonLines(name)).at(-1) ?? {};

beforeAll(async () => {
  await mkdir('/var/tmp', { recursive: true });
  scratch = await mkdtemp('/var/tmp/wfpatch-hotfix-');
  results = join(scratch, 'results');
  const say = (l: string): void => void process.stderr.write(`hotfix: ${l}\n`);
  const enabled = await enablePackage({ package: 'memcached=1.6.18-1+deb12u1', onOutput: say });
  enabledVersion = enabled.version;
  const deb = enabled.debs.find((d) => /\/memcached_[^/]*\.deb$/.test(d))!;
  await execa('dpkg-deb', ['-x', deb, join(scratch, 'enabled')]);
  debBuildId = await buildIdOf(join(scratch, 'enabled/usr/bin/memcached'));

  // The fixes are built against the enabled build: its tree (with the enablement patch and the
  // +wfpatch1 changelog entry) cleaned, built the way wfbuild enable builds it.
  const tree = join(scratch, 'tree');
  await copyTree(enabled.tree, tree);
  await execa('debian/rules', ['clean'], { cwd: tree });
  const lib = await snapshotLibwfpatch(join(cacheRoot, 'enable'));
  const env = { ...debianBinaryBuild.env, ...libwfpatchBuildEnv(lib) };
  const buildCmd = `${Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(' ')} debian/rules build`;
  const outs: string[] = [];
  for (const fix of fixes) {
    const out = join(scratch, fix.replace(/\.patch$/, ''));
    say(`wfbuild ${fix} (the enabled build; minutes the first time)`);
    const r = await execa('node', [wfbuild, join(fixtures, 'memcached', fix), '--source', tree, '--build-cmd', buildCmd, '--out', out], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    outs.push(out);
  }
  const pkg = async (name: string, outputs: string[]): Promise<string> => {
    const r = await execa('node', [wfbuild, 'package', ...outputs, '--depends', `memcached=${enabledVersion}`, '--out', join(scratch, name)], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    return join(scratch, name, (await readdir(join(scratch, name)))[0]);
  };
  debs.deb1 = await pkg('debs1', outs.slice(0, 1));
  debs.deb2 = await pkg('debs2', outs);
  // The same .1 with its fix cut short: a corrupt .wfp inside a well-formed package.
  const unpacked = join(scratch, 'corrupt-tree');
  await execa('dpkg-deb', ['-R', debs.deb1, unpacked]);
  const wfpDir = join(unpacked, 'usr/lib/wfpatch', debBuildId);
  const wfp = join(wfpDir, (await readdir(wfpDir)).find((n) => n.endsWith('.wfp'))!);
  await truncate(wfp, Math.floor((await stat(wfp)).size / 3));
  await mkdir(join(scratch, 'corrupt'));
  debs.corrupt = join(scratch, 'corrupt', 'memcached-livepatch-corrupt.deb');
  await execa('dpkg-deb', ['--root-owner-group', '--build', unpacked, debs.corrupt]);

  const memload = join(scratch, 'memload');
  await execa('gcc', ['-O2', '-Wall', '-o', memload, join(repoRoot, 'pipeline/src/live/memload.c')]);
  await execa('make', ['-s', '-C', join(repoRoot, 'kpatch-fork/runtime'), 'build/wfpatch-ctl']);
  say('guest run (userland over 9p, TCG; minutes)');
  const run = await runInVm({
    userland: true,
    program: join(fixtures, 'guest.sh'),
    memMiB: 2048,
    cpus: 2,
    timeoutSec: 2400,
    outDir: results,
    env: {
      // memcached and its -dbgsym: the runtime resolves the stripped binary's locals through it.
      HF_ENABLED: enabled.debs.join(' '),
      HF_CORRUPT: debs.corrupt,
      HF_DEB1: debs.deb1,
      HF_DEB2: debs.deb2,
      HF_MEMLOAD: memload,
      HF_WFBUILD: wfbuild,
      HF_CTL: join(repoRoot, 'kpatch-fork/runtime/build/wfpatch-ctl'),
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    },
    onConsole: (t) => process.stderr.write(t),
  });
  vmExit = run.exitCode;
  vmConsole = run.console;
  expect(run.kernelFailure).toBeNull();
  expect(run.timedOut).toBe(false);
}, 3 * 3600_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('hot-fix packages in a Debian guest', () => {
  it('the fixes target the build in the enabled .deb; the package Depends on exactly it; lintian finds no error', async () => {
    for (const fix of fixes) {
      const report = JSON.parse(await readFile(join(scratch, fix.replace(/\.patch$/, ''), 'report.json'), 'utf8')) as Report;
      expect(report.outcome).toBe('kpatchable');
      expect(report.bundles.find((b) => b.installedPath === '/usr/bin/memcached')?.buildId).toBe(debBuildId);
    }
    expect((await execa('dpkg-deb', ['-f', debs.deb2, 'Depends'])).stdout).toMatch(new RegExp(`^memcached \\(= ${enabledVersion.replace(/[+.]/g, '\\$&')}\\), libc6`));
    expect((await execa('dpkg-deb', ['-f', debs.deb2, 'Version'])).stdout).toBe(`${enabledVersion}.2`);
    const lintian = await execa('lintian', [debs.deb2], { reject: false, all: true });
    expect(lintian.all.split('\n').filter((l) => l.startsWith('E: ')), lintian.all).toEqual([]);
  });

  it('the guest installed the enabled memcached and ran the whole sequence', async () => {
    expect(vmExit, vmConsole.slice(-3000)).toBe(0);
    expect(await readResult('dpkg-enabled.rc')).toBe('0\n');
    expect(await readResult('verbosity-before.txt')).toBe('OK\n');
  });

  it('a corrupt fix: the package installs, the runtime refuses the file, postinst reports it, memcached serves on', async () => {
    expect(await readResult('dpkg-corrupt.rc')).toBe('0\n');
    expect(await readResult('dpkg-corrupt.txt')).toMatch(/memcached-livepatch: pid \d+: 0001-verbosity-level-out-of-range\.wfp NOT applied: .*(truncated|beyond)/);
    expect(await readResult('outcome-corrupt.txt')).toMatch(/^\d+ 0001-verbosity-level-out-of-range\.wfp rejected /m);
    const inv = await lastEvent('inventory-corrupt.json');
    expect(inv.applied).toEqual([]);
  });

  it('.1 patches the running memcached: applied in local mode, every thread in the new generation', async () => {
    expect(await readResult('dpkg-deb1.rc')).toBe('0\n');
    expect(await readResult('dpkg-deb1.txt')).toMatch(/pid \d+: 0001-verbosity-level-out-of-range\.wfp applied/);
    expect(await readResult('verbosity-deb1.txt')).toBe('CLIENT_ERROR verbosity level out of range\n');
    const status = JSON.parse(await readResult('status-deb1.txt')) as { applied: { name: string; mode: string; gen: number }[]; currentGen: number; behind: unknown[]; threads: { tracked: boolean; gen: number }[] }[];
    const s = status[0];
    expect(s.applied.map((a) => [a.name, a.mode])).toEqual([['0001-verbosity-level-out-of-range', 'local']]);
    expect(s.currentGen).toBeGreaterThan(0);
    expect(s.behind).toEqual([]);
    const tracked = s.threads.filter((t) => t.tracked);
    expect(tracked.length).toBeGreaterThanOrEqual(5); // listener + 4 workers at least
    for (const t of tracked) expect(t.gen).toBe(s.currentGen);
  });

  it('the upgrade to .2 applies only the new fix', async () => {
    expect(await readResult('dpkg-deb2.rc')).toBe('0\n');
    const out = await readResult('dpkg-deb2.txt');
    expect(out).toMatch(/0001-verbosity-level-out-of-range\.wfp already applied/);
    expect(out).toMatch(/0002-slabs-memlimit-below-malloced-CVE-2099-0012\.wfp applied/);
    const patches = ((await lastEvent('status-deb2.json')).patches as { patch: string }[]).map((p) => p.patch.split('/').at(-1));
    expect(patches).toEqual(['0001-verbosity-level-out-of-range.wfp', '0002-slabs-memlimit-below-malloced-CVE-2099-0012.wfp']);
  });

  it('after a restart the installed fixes load at wf_init; dpkg -r rolls them back in the running process', async () => {
    const restart = await lastEvent('inventory-restart.json');
    expect((restart.autoload as { files: { outcome: string }[] }).files.map((f) => f.outcome)).toEqual(['applied', 'applied']);
    expect(((await lastEvent('status-restart.json')).patches as unknown[]).length).toBe(2);
    expect(await readResult('verbosity-restart.txt')).toBe('CLIENT_ERROR verbosity level out of range\n');
    expect(await readResult('dpkg-remove.rc')).toBe('0\n');
    const removed = await readResult('dpkg-remove.txt');
    expect(removed.indexOf('0002-slabs-memlimit-below-malloced-CVE-2099-0012.wfp rolled back')).toBeGreaterThan(-1);
    expect(removed.indexOf('0002-slabs')).toBeLessThan(removed.indexOf('0001-verbosity-level-out-of-range.wfp rolled back'));
    expect((await lastEvent('status-removed.json')).patches).toEqual([]);
    expect(await readResult('verbosity-removed.txt')).toBe('OK\n');
  });

  it('memcached served every request of both load runs', async () => {
    for (const run of ['first', 'second']) {
      const summary = JSON.parse(await readResult(`load-${run}.json`)) as { requests: number; failed: number; droppedConnections: number };
      expect(summary.requests).toBeGreaterThan(100);
      expect(summary.failed).toBe(0);
      expect(summary.droppedConnections).toBe(0);
    }
  });
});
