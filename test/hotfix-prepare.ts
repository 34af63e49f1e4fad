/**
 * Shared by test/hotfix.test.ts (guest, local mode) and test/hotfix-host.test.ts (host
 * namespace, global mode): the enabled memcached (`wfbuild enable`), the two fixes of
 * fixtures/hotfix/memcached built by wfbuild against that enabled build, the hot-fix .debs
 * (.1, .2, and .1 with a corrupt fix) from `wfbuild package`, memload and wfpatch-ctl; and the
 * checks of what fixtures/hotfix/guest.sh leaves in its results folder.
 */
import { expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { enablePackage } from '../pipeline/src/enable/index.ts';
import { repoRoot } from '../pipeline/src/paths.ts';
import type { Report } from '../pipeline/src/report/types.ts';

export const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');
export const fixtures = join(repoRoot, 'test/fixtures/hotfix');
export const fixes = ['0001-verbosity-level-out-of-range.patch', '0002-slabs-memlimit-below-malloced-CVE-2099-0012.patch'];

export interface Prepared {
  /** Under /var/tmp, not /tmp: a guest sees the host's files through 9p, but has its own /tmp. */
  readonly scratch: string;
  readonly enabledDebs: readonly string[];
  readonly enabledVersion: string;
  readonly debBuildId: string;
  readonly outs: readonly string[];
  readonly deb1: string;
  readonly deb2: string;
  readonly corrupt: string;
  /** A hot-fix .deb for another build of memcached (the Debian build, not the enabled one). */
  readonly other: string;
  readonly otherBuildId: string;
  readonly memload: string;
  /** `wfbuild status`, bundled into one file (esbuild) for node. */
  readonly status: string;
  readonly ctl: string;
}

async function buildIdOf(file: string): Promise<string> {
  const out = (await execa('readelf', ['-n', '--wide', file])).stdout;
  return /Build ID:\s*([0-9a-f]+)/.exec(out)![1];
}

/** The Debian source package the hot-fixes are for. */
const target = 'memcached=1.6.18-1+deb12u1';

export async function prepareHotfix(say: (line: string) => void): Promise<Prepared> {
  await mkdir('/var/tmp', { recursive: true });
  const scratch = await mkdtemp('/var/tmp/wfpatch-hotfix-');
  const enabled = await enablePackage({ package: target, onOutput: say });
  const deb = enabled.debs.find((d) => /\/memcached_[^/]*\.deb$/.test(d))!;
  await execa('dpkg-deb', ['-x', deb, join(scratch, 'enabled')]);
  const debBuildId = await buildIdOf(join(scratch, 'enabled/usr/bin/memcached'));

  // The fixes are built against the enabled build itself (`--enabled`: its cached tree, compiler
  // records and binaries as linked are the original), so the bundles target exactly the
  // build-id of the .deb's memcached. A rebuild of a copy of its tree need not link the same
  // bytes: its debug info names the libwfpatch folder, which enable resolves to its physical path.
  const outs: string[] = [];
  for (const fix of fixes) {
    const out = join(scratch, fix.replace(/\.patch$/, ''));
    say(`wfbuild ${fix} --package ${target} --enabled (minutes the first time)`);
    const r = await execa('node', [wfbuild, join(fixtures, 'memcached', fix), '--package', target, '--enabled', '--out', out], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    outs.push(out);
  }
  // No --depends: the reports name the enabled package and version (the tree's changelog).
  const pkg = async (name: string, outputs: string[]): Promise<string> => {
    const r = await execa('node', [wfbuild, 'package', ...outputs, '--out', join(scratch, name)], { reject: false, all: true });
    expect(r.exitCode, r.all).toBe(0);
    return join(scratch, name, (await readdir(join(scratch, name)))[0]);
  };
  const deb1 = await pkg('debs1', outs.slice(0, 1));
  const deb2 = await pkg('debs2', outs);
  // The first fix built against Debian's own memcached (not enabled: another build-id), packaged
  // as if for the installed enabled version: it installs, and no process has its build-id.
  const otherOut = join(scratch, 'other-build');
  say(`wfbuild ${fixes[0]} --package ${target} (Debian's build: another build-id; minutes the first time)`);
  const o = await execa('node', [wfbuild, join(fixtures, 'memcached', fixes[0]), '--package', target, '--out', otherOut], { reject: false, all: true });
  expect(o.exitCode, o.all).toBe(0);
  const otherReport = JSON.parse(await readFile(join(otherOut, 'report.json'), 'utf8')) as Report;
  const otherBuildId = otherReport.bundles.find((b) => b.installedPath === '/usr/bin/memcached')!.buildId!;
  expect(otherBuildId).not.toBe(debBuildId);
  const otherDir = join(scratch, 'debs-other');
  const op = await execa('node', [wfbuild, 'package', otherOut, '--depends', `memcached=${enabled.version}`, '--out', otherDir], { reject: false, all: true });
  expect(op.exitCode, op.all).toBe(0);
  const other = join(otherDir, (await readdir(otherDir))[0]);
  // The same .1 with its fix cut short: a corrupt .wfp inside a well-formed package.
  const unpacked = join(scratch, 'corrupt-tree');
  await execa('dpkg-deb', ['-R', deb1, unpacked]);
  const wfpDir = join(unpacked, 'usr/lib/wfpatch', debBuildId);
  const wfp = join(wfpDir, (await readdir(wfpDir)).find((n) => n.endsWith('.wfp'))!);
  await truncate(wfp, Math.floor((await stat(wfp)).size / 3));
  await mkdir(join(scratch, 'corrupt'));
  const corrupt = join(scratch, 'corrupt', 'memcached-livepatch-corrupt.deb');
  await execa('dpkg-deb', ['--root-owner-group', '--build', unpacked, corrupt]);

  // `wfbuild status` as one JavaScript file: through tsx, the whole CLI (every command and its
  // dependencies) is transpiled and loaded at each start — many minutes in a TCG guest.
  const statusEntry = join(scratch, 'status-entry.ts');
  await writeFile(statusEntry, [
    `import { statusCommand } from ${JSON.stringify(join(repoRoot, 'pipeline/src/status/command.ts'))};`,
    `import { UserError } from ${JSON.stringify(join(repoRoot, 'pipeline/src/cli/errors.ts'))};`,
    'try {',
    '  process.exitCode = await statusCommand.run(process.argv.slice(2));',
    '} catch (error) {',
    '  if (!(error instanceof UserError)) throw error;',
    '  console.error(`wfbuild status: ${error.message}`);',
    '  process.exitCode = error.exitCode;',
    '}',
    '',
  ].join('\n'));
  const status = join(scratch, 'wfbuild-status.mjs');
  await execa(join(repoRoot, 'node_modules/.bin/esbuild'), [statusEntry, '--bundle', '--platform=node', '--format=esm', '--target=node20', `--outfile=${status}`, '--log-level=warning']);

  const memload = join(scratch, 'memload');
  await execa('gcc', ['-O2', '-Wall', '-o', memload, join(repoRoot, 'pipeline/src/live/memload.c')]);
  await execa('make', ['-s', '-C', join(repoRoot, 'kpatch-fork/runtime'), 'build/wfpatch-ctl']);
  return {
    scratch,
    // memcached and its -dbgsym: the runtime resolves the stripped binary's locals through it.
    enabledDebs: enabled.debs,
    enabledVersion: enabled.version,
    debBuildId,
    outs,
    deb1,
    deb2,
    corrupt,
    other,
    otherBuildId,
    memload,
    status,
    ctl: join(repoRoot, 'kpatch-fork/runtime/build/wfpatch-ctl'),
  };
}

/**
 * The packages a guest root needs beside minbase to install `debs`: their Depends and
 * Pre-Depends (first alternative, no version or :any), less the .debs' own packages.
 */
export async function dependsOf(debs: readonly string[]): Promise<string[]> {
  const own = new Set<string>();
  const wanted = new Set<string>();
  for (const deb of debs) {
    own.add((await execa('dpkg-deb', ['-f', deb, 'Package'])).stdout.trim());
    const fields = (await execa('dpkg-deb', ['-f', deb, 'Depends', 'Pre-Depends'])).stdout;
    for (const line of fields.split('\n')) {
      const value = line.replace(/^[A-Za-z-]+:\s*/, '');
      for (const dep of value.split(',')) {
        const name = dep.split('|')[0].trim().split(/[\s(:]/)[0];
        if (name) wanted.add(name);
      }
    }
  }
  return [...wanted].filter((n) => !own.has(n)).sort();
}

/** guest.sh's environment. */
export function guestEnv(p: Prepared, global: boolean): Record<string, string> {
  return {
    HF_ENABLED: p.enabledDebs.join(' '),
    HF_CORRUPT: p.corrupt,
    HF_OTHER: p.other,
    HF_DEB1: p.deb1,
    HF_DEB2: p.deb2,
    HF_MEMLOAD: p.memload,
    HF_STATUS: p.status,
    HF_CTL: p.ctl,
    ...(global ? { HF_GLOBAL: '1' } : {}),
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  };
}

/** The checks of guest.sh's results, in either mode. */
export function hotfixChecks(get: () => { prepared: Prepared; results: string; mode: 'local' | 'global' }): void {
  const readResult = (name: string): Promise<string> => readFile(join(get().results, name), 'utf8').catch(() => '');
  const lastEvent = async (name: string): Promise<Record<string, unknown>> =>
    ((await readResult(name)).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)).at(-1) ?? {};

  it('the fixes target the build in the enabled .deb; the package Depends on exactly it; lintian finds no error', async () => {
    const { prepared: p } = get();
    for (const out of p.outs) {
      const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
      expect(report.outcome).toBe('kpatchable');
      expect(report.bundles.find((b) => b.installedPath === '/usr/bin/memcached')?.buildId).toBe(p.debBuildId);
    }
    // The exact enabled build and its debug symbols (the runtime resolves the stripped
    // memcached's local symbols through the -dbgsym file), then the control client's libc.
    const v = p.enabledVersion.replace(/[+.]/g, '\\$&');
    expect((await execa('dpkg-deb', ['-f', p.deb2, 'Depends'])).stdout).toMatch(new RegExp(`^memcached \\(= ${v}\\), memcached-dbgsym \\(= ${v}\\), libc6 \\(>= [0-9.]+\\)$`));
    expect((await execa('dpkg-deb', ['-f', p.deb2, 'Version'])).stdout).toBe(`${p.enabledVersion}.2`);
    const lintian = await execa('lintian', [p.deb2], { reject: false, all: true });
    expect(lintian.all.split('\n').filter((l) => l.startsWith('E: ')), lintian.all).toEqual([]);
  });

  it('dpkg installed the enabled memcached; before any fix, verbosity 99 is clamped (OK)', async () => {
    expect(await readResult('dpkg-enabled.rc')).toBe('0\n');
    expect(await readResult('verbosity-before.txt')).toBe('OK\n');
  });

  it("another build's hot-fix installs, patches nothing and says so; memcached serves on", async () => {
    const { prepared: p } = get();
    expect(await readResult('dpkg-other.rc')).toBe('0\n');
    expect(await readResult('dpkg-other.txt')).toContain(`memcached-livepatch: no running process has build-id ${p.otherBuildId} (/usr/bin/memcached): nothing patched now`);
    expect(await readResult('outcome-other.txt')).toMatch(/^none$/m);
    expect((await lastEvent('inventory-other.json')).applied).toEqual([]);
    expect(await readResult('verbosity-other.txt')).toBe('OK\n');
  });

  it('a corrupt fix: the package installs, the runtime refuses the file, postinst reports it, memcached serves on', async () => {
    expect(await readResult('dpkg-corrupt.rc')).toBe('0\n');
    expect(await readResult('dpkg-corrupt.txt')).toMatch(/memcached-livepatch: pid \d+: 0001-verbosity-level-out-of-range\.wfp NOT applied: .*(truncated|beyond)/);
    expect(await readResult('outcome-corrupt.txt')).toMatch(/^\d+ 0001-verbosity-level-out-of-range\.wfp rejected /m);
    expect((await lastEvent('inventory-corrupt.json')).applied).toEqual([]);
  });

  it('.1 patches the running memcached (every tracked thread in the new generation in local mode)', async () => {
    const { mode } = get();
    expect(await readResult('dpkg-deb1.rc')).toBe('0\n');
    expect(await readResult('dpkg-deb1.txt')).toMatch(/pid \d+: 0001-verbosity-level-out-of-range\.wfp applied/);
    expect(await readResult('verbosity-deb1.txt')).toBe('CLIENT_ERROR verbosity level out of range\n');
    const s = (JSON.parse(await readResult('status-deb1.txt')) as { applied: { name: string; mode: string }[]; currentGen: number | null; behind: unknown[]; threads: { tracked: boolean; gen: number | null }[] }[])[0];
    expect(s.applied.map((a) => [a.name, a.mode])).toEqual([['0001-verbosity-level-out-of-range', mode]]);
    const tracked = s.threads.filter((t) => t.tracked);
    expect(tracked.length).toBeGreaterThanOrEqual(5); // the listener and 4 workers at least
    expect(s.behind).toEqual([]);
    if (mode === 'local') {
      expect(s.currentGen).toBeGreaterThan(0);
      for (const t of tracked) expect(t.gen).toBe(s.currentGen);
    }
  });

  it('the upgrade to .2 applies only the new fix', async () => {
    expect(await readResult('dpkg-deb2.rc')).toBe('0\n');
    const out = await readResult('dpkg-deb2.txt');
    expect(out).toMatch(/0001-verbosity-level-out-of-range\.wfp already applied/);
    expect(out).toMatch(/0002-slabs-memlimit-below-malloced-CVE-2099-0012\.wfp applied/);
    const patches = ((await lastEvent('status-deb2.json')).patches as { patch: string }[]).map((p) => p.patch.split('/').at(-1));
    expect(patches).toEqual(['0001-verbosity-level-out-of-range.wfp', '0002-slabs-memlimit-below-malloced-CVE-2099-0012.wfp']);
  });

  it('dpkg -r in the process that got both fixes by upgrade rolls both back (the default rollback depth follows the installed fixes); .2 again applies both', async () => {
    expect(await readResult('dpkg-remove-first.rc')).toBe('0\n');
    const removed = await readResult('dpkg-remove-first.txt');
    const second = removed.indexOf('0002-slabs-memlimit-below-malloced-CVE-2099-0012.wfp rolled back');
    expect(second, removed).toBeGreaterThan(-1);
    expect(second, removed).toBeLessThan(removed.indexOf('0001-verbosity-level-out-of-range.wfp rolled back'));
    expect(removed).not.toMatch(/refused/);
    expect((await lastEvent('status-removed-first.json')).patches).toEqual([]);
    expect(await readResult('dpkg-reinstall.rc')).toBe('0\n');
    const again = await readResult('dpkg-reinstall.txt');
    expect(again).toMatch(/0001-verbosity-level-out-of-range\.wfp applied/);
    expect(again).toMatch(/0002-slabs-memlimit-below-malloced-CVE-2099-0012\.wfp applied/);
  });

  it('after a restart the installed fixes load at wf_init; dpkg -r rolls them back, newest first', async () => {
    const restart = await lastEvent('inventory-restart.json');
    expect((restart.autoload as { files: { outcome: string }[] }).files.map((f) => f.outcome)).toEqual(['applied', 'applied']);
    expect(((await lastEvent('status-restart.json')).patches as unknown[]).length).toBe(2);
    expect(await readResult('verbosity-restart.txt')).toBe('CLIENT_ERROR verbosity level out of range\n');
    expect(await readResult('dpkg-remove.rc')).toBe('0\n');
    const removed = await readResult('dpkg-remove.txt');
    const second = removed.indexOf('0002-slabs-memlimit-below-malloced-CVE-2099-0012.wfp rolled back');
    expect(second).toBeGreaterThan(-1);
    expect(second).toBeLessThan(removed.indexOf('0001-verbosity-level-out-of-range.wfp rolled back'));
    expect(removed).not.toMatch(/refused/);
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
}
