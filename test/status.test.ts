/**
 * Issue #12 on the host (global mode: the host kernel has no generations): libwfpatch's autoload
 * at wf_init (WF_PATCH_DIR, WF_NO_AUTOLOAD, a corrupt file refused while the process serves),
 * `wfbuild status` (applied with CVEs, when and mode; installed but not applied and why; every
 * thread), `wfbuild apply --all` / `wfbuild revert --all`, and wfpatch-ctl's `pids` / `applied`
 * that the hot-fix packages' maintainer scripts use. Real processes (the runtime's wftest
 * `serve` scenario) with real create-diff-object patches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { ProcessStatus } from '../pipeline/src/status/collect.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const runtime = new URL('../kpatch-fork/runtime', import.meta.url).pathname;
const build = join(runtime, 'tests/build');
const ctl = join(runtime, 'build/wfpatch-ctl');

let scratch: string;
let dir: string;
const servers: { name: string; proc: ResultPromise; pid: number; lines: string[] }[] = [];

async function startServer(name: string, env: Record<string, string>): Promise<void> {
  const proc = execa(join(build, 'wftest'), ['serve', '600'], { env: { WF_GLOBAL: '1', WF_LOGFILE: join(scratch, `${name}.log`), ...env }, buffer: false, reject: false });
  const lines: string[] = [];
  const pid = await new Promise<number>((resolveReady, fail) => {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      for (const l of chunk.split('\n').filter(Boolean)) {
        lines.push(l);
        const m = /"ready":(\d+)/.exec(l);
        if (m) resolveReady(Number(m[1]));
      }
    });
    setTimeout(() => fail(new Error(`${name} did not start`)), 20_000);
  });
  servers.push({ name, proc, pid, lines });
}

function pidOf(name: string): number {
  return servers.find((s) => s.name === name)!.pid;
}

async function status(pid: number): Promise<ProcessStatus> {
  const r = await execa(wfbuild, ['status', '--pid', String(pid), '--json'], { all: true });
  return (JSON.parse(r.stdout) as ProcessStatus[])[0];
}

beforeAll(async () => {
  await execa('make', ['-C', runtime, 'test-programs']);
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-status-'));
  dir = join(scratch, 'fixes');
  await execa('mkdir', [dir]);
  await copyFile(join(build, 'v2.o'), join(dir, '0001-v2.wfp'));
  await writeFile(join(dir, '0001-v2.json'), JSON.stringify({ name: 'version-two', cves: ['CVE-2099-1111'], description: 'version() returns 2' }));
  // A corrupted fix: the first 1000 bytes of a real patch object.
  await writeFile(join(dir, '0002-corrupt.wfp'), (await readFile(join(build, 'v3.o'))).subarray(0, 1000));
  await startServer('autoload', { WF_PATCH_DIR: dir });
  await startServer('autoload-2', { WF_PATCH_DIR: dir });
  await startServer('off', { WF_PATCH_DIR: dir, WF_NO_AUTOLOAD: '1' });
}, 120_000);

afterAll(async () => {
  for (const s of servers) s.proc.kill('SIGKILL');
  await rm(scratch, { recursive: true, force: true });
});

describe('autoload and wfbuild status', () => {
  it('autoload applied the good fix in order and refused the corrupt one; status says what, when, how and why', async () => {
    const started = Date.now() / 1000;
    const s = await status(pidOf('autoload'));
    expect(s).toMatchObject({ pid: pidOf('autoload'), mode: 'global', exe: join(build, 'wftest'), busy: false });
    expect(s.applied).toHaveLength(1);
    expect(s.applied[0]).toMatchObject({ patch: join(dir, '0001-v2.wfp'), name: 'version-two', cves: ['CVE-2099-1111'], mode: 'global', functions: 1 });
    expect(s.applied[0].time).toBeGreaterThan(started - 300);
    expect(s.notApplied).toEqual([
      expect.objectContaining({ patch: join(dir, '0002-corrupt.wfp'), why: expect.stringMatching(/^refused at start: truncated: section headers .* beyond the file's 1000 bytes/) }),
    ]);
    // Every thread: the four tracked workers, and the untracked main and patcher threads.
    expect(s.threads.filter((t) => t.tracked).map((t) => t.name).sort()).toEqual(['worker-0', 'worker-1', 'worker-2', 'worker-3']);
    expect(s.threads.filter((t) => !t.tracked).map((t) => t.name)).toContain('wf-patcher');
    // The server runs the fixed code and kept serving (workers answer the new value).
    const server = servers.find((x) => x.name === 'autoload')!;
    await expect.poll(() => server.lines.some((l) => l === '{"value":2}'), { timeout: 10_000 }).toBe(true);
  });

  it('with WF_NO_AUTOLOAD=1 nothing is applied, and status says why the installed fixes are not', async () => {
    const s = await status(pidOf('off'));
    expect(s.applied).toEqual([]);
    expect(s.autoload.off).toBe('WF_NO_AUTOLOAD=1');
    expect(s.notApplied.map((p) => p.why)).toEqual([expect.stringMatching(/autoload off \(WF_NO_AUTOLOAD=1\)/), expect.stringMatching(/autoload off/)]);
  });

  it('a fix installed after the start is listed as not applied yet; the text form names every process', async () => {
    await copyFile(join(build, 'v3.o'), join(dir, '0003-v3.wfp'));
    const s = await status(pidOf('autoload-2'));
    expect(s.notApplied.find((p) => p.patch.endsWith('0003-v3.wfp'))?.why).toMatch(/installed after the process started/);
    await rm(join(dir, '0003-v3.wfp'));
    const text = (await execa(wfbuild, ['status'])).stdout;
    for (const name of ['autoload', 'autoload-2', 'off']) expect(text).toContain(`pid ${pidOf(name)}  ${join(build, 'wftest')}`);
    expect(text).toMatch(/applied {6}version-two \(CVE-2099-1111\) {2}\d{4}-\d\d-\d\dT[\d:]+Z {2}global/);
  });

  it('wfpatch-ctl pids BUILD_ID finds the three servers; applied lists the fixes in order', async () => {
    const s = await status(pidOf('autoload'));
    const pids = (await execa(ctl, ['pids', s.buildId!])).stdout.split('\n').map(Number);
    for (const name of ['autoload', 'autoload-2', 'off']) expect(pids).toContain(pidOf(name));
    expect((await execa(ctl, ['pids', 'ab'.repeat(20)])).stdout).toBe('');
    expect((await execa(ctl, [String(pidOf('autoload')), 'applied'])).stdout).toBe(join(dir, '0001-v2.wfp'));
    expect((await execa(ctl, ['pids', 'NOT-HEX'], { reject: false })).exitCode).toBe(2);
  });

  it('apply --all patches every process of the build-id; revert --all rolls each back; they keep serving', async () => {
    const v3 = join(build, 'v3.o');
    const applied = await execa(wfbuild, ['apply', '--all', v3], { all: true, reject: false });
    expect(applied.exitCode, applied.all).toBe(0);
    for (const name of ['autoload', 'autoload-2', 'off']) {
      expect(applied.stdout).toContain(`pid ${pidOf(name)}: apply ${v3}: done`);
      expect((await status(pidOf(name))).applied.at(-1)?.patch).toBe(v3);
    }
    for (const s of servers) await expect.poll(() => s.lines.includes('{"value":3}'), { timeout: 10_000 }).toBe(true);
    const reverted = await execa(wfbuild, ['revert', '--all'], { all: true, reject: false });
    expect(reverted.exitCode, reverted.all).toBe(0);
    expect((await status(pidOf('autoload'))).applied.map((a) => a.name)).toEqual(['version-two']);
    expect((await status(pidOf('off'))).applied).toEqual([]);
    const none = await execa(wfbuild, ['apply', '--all', join(build, 'wrongid.o')], { all: true, reject: false });
    expect(none.exitCode, none.all).toBe(0);
    expect(none.stdout).toMatch(/no running libwfpatch process has build-id [0-9a-f]+: nothing to patch/);
    for (const s of servers) expect(s.proc.exitCode ?? null).toBeNull();
  });

  it('bad usage: --pid of a process without libwfpatch, --pid with --all', async () => {
    const r = await execa(wfbuild, ['status', '--pid', String(process.pid)], { reject: false, all: true });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/has no libwfpatch control socket/);
    expect((await execa(wfbuild, ['status', '--pid', '1', '--all'], { reject: false })).exitCode).toBe(2);
    expect((await execa(wfbuild, ['revert'], { reject: false })).exitCode).toBe(2);
  });
});
