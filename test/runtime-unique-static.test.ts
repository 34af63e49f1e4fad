/**
 * A C++ inline function's static and its guard variable (squid's `CacheDigest::Pool()`'s
 * `thePool`): g++ makes them STB_GNU_UNIQUE, one per process. A patch that changes the function
 * keeps using the running program's object, so it refers to both by name. create-diff-object
 * --binary resolved them, while the loader's lookup (kpatch-fork/runtime/modules.c, which
 * `wfpatch-ctl check` and libwfpatch share) took only GLOBAL and WEAK symbols and refused the
 * patch. Here: the dry run passes, and the patch applied in the running program uses the
 * program's static (its count goes on), not a new one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runCdo } from '../kpatch-fork/tests/harness.ts';

const kf = join(repoRoot, 'kpatch-fork');
const rt = join(kf, 'runtime');
const ctl = join(rt, 'build', 'wfpatch-ctl');
let dir = '';

const progCc = `#include <stdio.h>
#include <unistd.h>
#include "wfpatch.h"
struct Counter { Counter(); int n; };
__attribute__((noinline)) Counter::Counter() : n(0) {}
inline Counter &counter() { static Counter c; return c; }
__attribute__((noinline)) int step(int i) { return ++counter().n + i * 0; }
int main()
{
	wf_init((struct wf_configuration){});
	for (int i = 0; i < 300; i++) {
		wf_global_quiescence("main", 1);
		printf("%d n=%d\\n", i, step(i));
		fflush(stdout);
		usleep(10000);
	}
	return 0;
}
`;
// The patch counts in thousands from then on, on the same static.
const patchedCc = progCc.replace('return ++counter().n + i * 0;', 'return (counter().n += 1000) + i * 0;');

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'runtime-unique-'));
  for (const t of ['o', 'p']) {
    await mkdir(join(dir, t), { recursive: true });
    await writeFile(join(dir, t, 'prog.cc'), t === 'o' ? progCc : patchedCc);
    await execa('g++', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', `-I${rt}`, '-c', 'prog.cc'], { cwd: join(dir, t) });
  }
  await execa('g++', ['-pie', '-Wl,--build-id', '-o', 'prog', 'prog.o', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(dir, 'o') });
});
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

describe('STB_GNU_UNIQUE statics of C++ inline functions', () => {
  it('the binary holds the static and its guard as unique symbols (the case under test)', async () => {
    const syms = (await execa('readelf', ['-sW', join(dir, 'o/prog')])).stdout;
    expect(syms).toMatch(/OBJECT\s+UNIQUE\s+DEFAULT\s+\d+ _ZZ7countervE1c$/m);
    expect(syms).toMatch(/OBJECT\s+UNIQUE\s+DEFAULT\s+\d+ _ZGVZ7countervE1c$/m);
  });

  it('create-diff-object resolves them in the binary and the dry run passes', { timeout: 60_000 }, async () => {
    const r = await runCdo([join(dir, 'o/prog.o'), join(dir, 'p/prog.o'), '--output', join(dir, 'patch.o'), '--binary', join(dir, 'o/prog')], join(dir, 'patch.json'));
    expect(r.exitCode, r.stderr).toBe(0);
    const check = await execa(ctl, ['check', join(dir, 'patch.o'), join(dir, 'o/prog')], { reject: false });
    expect(check.stdout).toMatch(/^ok: /m);
    expect(check.exitCode).toBe(0);
  });

  it('applied in the running program, the patch counts on the program\'s own static', { timeout: 60_000 }, async () => {
    const log = join(dir, 'run.jsonl');
    const child = execa(join(dir, 'o/prog'), [], { reject: false, env: { WF_GLOBAL: '1', WF_PATCH_QUEUE: join(dir, 'patch.o'), WF_LOGFILE: log }, timeout: 30_000 });
    let sent = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      if (!sent && /^5 n=6$/m.test(text)) {
        sent = true;
        process.kill(child.pid!, 34); // SIGPATCH
      }
      if (/n=\d{4,}$/m.test(text)) child.kill('SIGTERM');
    });
    const run = await child;
    const counts = run.stdout.split('\n').map((l) => /^\d+ n=(\d+)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
    const first = counts.findIndex((n) => n >= 1000);
    const context = `${run.stdout}\n${existsSync(log) ? await readFile(log, 'utf8') : ''}`;
    expect(first, context).toBeGreaterThan(5);
    // Old code counted 1, 2, … first; the patch added 1000 to that same count.
    expect(counts.slice(0, first)).toEqual(counts.slice(0, first).map((_, k) => k + 1));
    expect(counts[first], context).toBe(first + 1000);
  });
});
