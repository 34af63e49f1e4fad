/**
 * A carried archive member (pipeline/src/stages/carry.ts), applied for real: the program links
 * test/fixtures/rebuild-archive's libsupport.a, whose fsloc.o it never pulled in; the fix makes
 * export_entry() call lookup_referral() from fsloc.o. The patch is what wfbuild makes of it —
 * fsloc.o `ld -r`-ed onto the patched cache.o, then create-diff-object --binary — and a running
 * multi-threaded program linked with libwfpatch must switch to the new code and run the carried
 * functions (their static helper, libc, and the hidden xlog the linker made local) correctly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { combine } from '../pipeline/src/stages/carry.ts';
import { workerProgram } from './helpers/worker-program.ts';

const kf = join(repoRoot, 'kpatch-fork');
const rt = join(kf, 'runtime');
const cdo = join(kf, 'bin/create-diff-object');
const fixture = new URL('./fixtures/rebuild-archive/', import.meta.url).pathname;
const flags = ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE'];
let dir = '';

// The fixture's main, as a long-running multi-threaded program that can be patched.
const mainC = workerProgram({
  preamble: '#include "support.h"',
  bufBytes: 64,
  step: 'if (export_entry(buf, sizeof(buf), 2) < 0)\n\tbuf[0] = 0;\nprintf("%d [%s]\\n", i, buf);',
  linesAfterPatch: 16,
});

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'carry-apply-'));
  await cp(join(fixture, 'tree'), join(dir, 'o'), { recursive: true });
  await cp(join(fixture, 'tree'), join(dir, 'p'), { recursive: true });
  await execa('patch', ['-p1', '--batch', '-i', join(fixture, 'patches/0001-export-referral.patch')], { cwd: join(dir, 'p') });
  for (const side of ['o', 'p']) {
    for (const unit of ['cache', 'fsloc', 'xlog']) await execa('gcc', [...flags, '-c', `${unit}.c`], { cwd: join(dir, side) });
  }
  const o = join(dir, 'o');
  await writeFile(join(o, 'prog.c'), mainC);
  await execa('gcc', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'prog.c'], { cwd: o });
  await execa('ar', ['rcs', 'libsupport.a', 'cache.o', 'fsloc.o', 'xlog.o'], { cwd: o });
  await execa('gcc', ['-pie', '-o', 'prog', 'prog.o', '-L.', '-lsupport', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: o });
}, 120_000);
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

async function runPatched(prog: string, patch: string): Promise<{ stdout: string; stderr: string; log: string }> {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}.jsonl`);
  const child = execa(prog, [], { reject: false, env: { WF_GLOBAL: '1', WF_PATCH_QUEUE: patch, WF_LOGFILE: log }, timeout: 30_000 });
  let sent = false;
  let seen = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
    if (!sent && seen.includes('\n5 [')) {
      sent = true;
      process.kill(child.pid!, 34); // SIGPATCH = SIGRTMIN+0
    }
  });
  const r = await child;
  return { stdout: r.stdout, stderr: r.stderr, log: existsSync(log) ? await readFile(log, 'utf8') : '' };
}

describe('a patch carrying an archive member the binary never linked, applied by libwfpatch', () => {
  it('the binary lacks fsloc.o (the case being tested); without carrying it the patch is refused (exit 5)', async () => {
    const { stdout } = await execa('nm', [join(dir, 'o/prog')]);
    expect(stdout).not.toMatch(/lookup_referral/);
    const r = await execa(cdo, ['o/cache.o', 'p/cache.o', '--output', 'plain.o', '--verdict', 'plain.json', '--binary', 'o/prog'], { cwd: dir, reject: false });
    expect(r.exitCode).toBe(5);
    expect((JSON.parse(await readFile(join(dir, 'plain.json'), 'utf8')) as { unresolved: string[] }).unresolved).toEqual(['lookup_referral']);
  });

  it('the running program switches to the new code and runs the carried functions', { timeout: 120_000 }, async () => {
    await combine(join(dir, 'p/cache.o'), [{ object: 'fsloc.o', path: join(dir, 'p/fsloc.o'), defines: ['lookup_referral'] }], join(dir, 'combined.o'));
    const r = await execa(cdo, ['o/cache.o', 'combined.o', '--output', 'patch.o', '--verdict', 'v.json', '--binary', 'o/prog'], { cwd: dir, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const run = await runPatched(join(dir, 'o/prog'), join(dir, 'patch.o'));
    expect(run.log).toContain('"outcome":"applied"');
    const lines = run.stdout.trim().split('\n');
    const first = lines.findIndex((l) => l.includes('flags=2 1'));
    expect(first, run.stdout).toBeGreaterThan(3);
    // before: the old export_entry; after: the referral from the carried lookup_referral
    // (parse_method found "refer=" → method 1), on every line.
    for (const [i, l] of lines.entries()) expect(l).toBe(`${i} [${i < first ? 'flags=2 ' : 'flags=2 1'}]`);
  });
});

/**
 * A new function added in one file and called from another (the bundle defines it: the
 * object-diff stage passes it to create-diff-object as --provided): the two patch objects
 * `ld -r`-ed into one bundle, applied in the running program.
 */
describe('a bundle whose one object calls a function new in the other (patch 0002), applied by libwfpatch', () => {
  it('the call resolves within the bundle and the new function runs', { timeout: 120_000 }, async () => {
    const q = join(dir, 'q');
    await cp(join(fixture, 'tree'), q, { recursive: true });
    await execa('patch', ['-p1', '--batch', '-i', join(fixture, 'patches/0002-new-function-in-another-file.patch')], { cwd: q });
    for (const unit of ['cache', 'xlog']) await execa('gcc', [...flags, '-c', `${unit}.c`], { cwd: q });
    const without = await execa(cdo, ['o/cache.o', 'q/cache.o', '--output', 'q-cache.o', '--verdict', 'q-cache0.json', '--binary', 'o/prog'], { cwd: dir, reject: false });
    expect(without.exitCode).toBe(5);
    const cache = await execa(cdo, ['o/cache.o', 'q/cache.o', '--output', 'q-cache.o', '--verdict', 'q-cache.json', '--binary', 'o/prog', '--provided', 'xlog_level'], { cwd: dir, reject: false });
    expect(cache.exitCode, cache.stderr).toBe(0);
    const xlog = await execa(cdo, ['o/xlog.o', 'q/xlog.o', '--output', 'q-xlog.o', '--verdict', 'q-xlog.json', '--binary', 'o/prog'], { cwd: dir, reject: false });
    expect(xlog.exitCode, xlog.stderr).toBe(0);
    await execa('ld', ['-r', '-o', 'q-bundle.o', 'q-cache.o', 'q-xlog.o'], { cwd: dir });
    const run = await runPatched(join(dir, 'o/prog'), join(dir, 'q-bundle.o'));
    expect(run.log).toContain('"outcome":"applied"');
    // xlog("exported", flags * xlog_level(flags)): 2 before, 2 * 2 after.
    const logged = run.stderr.split('\n').filter((l) => l.startsWith('exported: '));
    const first = logged.indexOf('exported: 4');
    expect(first, run.stderr).toBeGreaterThan(3);
    for (const [i, l] of logged.entries()) expect(l).toBe(i < first ? 'exported: 2' : 'exported: 4');
  });
});
