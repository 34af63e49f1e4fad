/**
 * create-diff-object on bad input: garbage, truncated and mismatched objects give exit 2 with a
 * clear message (usage and I/O problems exit 1), always a verdict, never a crash and never an
 * output file. Also replays the kept fuzz crashers and a deterministic mutation sweep through
 * the sanitizer build of the reader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { cdo, runCdo } from '../kpatch-fork/tests/harness.ts';

const kf = join(repoRoot, 'kpatch-fork');
const replay = join(kf, 'bin/cdo-fuzz-replay');
let dir = '';
let orig = '';
let patched = '';
let binary = '';

const src = `#include <stdio.h>
int glob = 3;
static int counter;
static int __attribute__((noinline)) helper(int x) { counter++; return x * 3 + counter; }
int f(int x) { switch (x) { case 0: return helper(x); case 1: return glob; case 2: return puts("two"); case 3: return helper(x + 1) * 2; case 4: return printf("%d\\n", x); default: return -x; } }
int main(int c, char **v) { (void)v; return f(c); }
`;

async function cc(args: string[]): Promise<void> {
  await execa('gcc', args, { cwd: dir });
}

beforeAll(async () => {
  await execa('make', ['-C', kf, 'bin/create-diff-object', 'bin/cdo-fuzz-replay']);
  dir = await mkdtemp(join(tmpdir(), 'cdo-robust-'));
  await execa('mkdir', ['-p', 'o', 'p'], { cwd: dir });
  await writeFile(join(dir, 'o/x.c'), src);
  await writeFile(join(dir, 'p/x.c'), src.replace('x * 3', 'x * 4'));
  for (const t of ['o', 'p']) await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', 'x.c'], { cwd: join(dir, t) });
  orig = join(dir, 'o/x.o');
  patched = join(dir, 'p/x.o');
  await cc(['-pie', '-o', 'prog', 'o/x.o']);
  binary = join(dir, 'prog');
});

afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

async function expectBad(args: string[], code: number, message: RegExp): Promise<void> {
  const v = join(dir, `v-${Math.random().toString(36).slice(2)}.json`);
  const out = args[args.indexOf('--output') + 1]!;
  await writeFile(out, 'stale patch from an earlier run');
  const r = await runCdo(args, v);
  expect(r.exitCode).toBe(code);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/Segmentation|Aborted|AddressSanitizer/);
  expect(r.verdict).not.toBeNull();
  expect(r.verdict!.exitCode).toBe(code);
  expect(r.verdict!.error).toMatch(message);
  expect(r.verdict!.reasons.some((x) => x.kind === 'error')).toBe(true);
  expect(existsSync(out)).toBe(false);
}

describe('create-diff-object: bad input', () => {
  it('the good pair works (baseline for the cases below)', async () => {
    const r = await runCdo([orig, patched, '--output', join(dir, 'ok.o'), '--binary', binary], join(dir, 'ok.json'));
    expect(r.exitCode).toBe(0);
  });

  it('garbage and empty files', async () => {
    await writeFile(join(dir, 'garbage.o'), Buffer.from('this is not an object file at all, just text\n'.repeat(20)));
    await writeFile(join(dir, 'empty.o'), '');
    await expectBad([orig, join(dir, 'garbage.o'), '--output', join(dir, 'out.o')], 2, /garbage\.o: not an ELF file/);
    await expectBad([join(dir, 'empty.o'), patched, '--output', join(dir, 'out.o')], 2, /empty\.o: not an ELF file/);
  });

  it('truncated objects, cut anywhere', async () => {
    const whole = await readFile(patched);
    const cuts = [10, 52, 64, 200, 1000, Math.floor(whole.length / 2), whole.length - 200, whole.length - 64, whole.length - 1];
    for (const cut of cuts) {
      const p = join(dir, `cut-${cut}.o`);
      await writeFile(p, whole.subarray(0, cut));
      await expectBad([orig, p, '--output', join(dir, 'out.o')], 2, /truncated|not an ELF|section|symbol|cannot/);
    }
  });

  it('an empty object (no symbol table at all) diffed with itself: nothing to patch', async () => {
    await writeFile(join(dir, 'empty.c'), '/* everything #ifdef-ed out */\n');
    await cc(['-O2', '-c', 'empty.c']);
    await execa('strip', ['--strip-unneeded', join(dir, 'empty.o')]);
    const r = await runCdo([join(dir, 'empty.o'), join(dir, 'empty.o'), '--output', join(dir, 'e.o')], join(dir, 'e.json'));
    expect(r.exitCode).toBe(3);
  });

  it('an LTO object (GIMPLE, not code) is refused instead of "nothing changed"', async () => {
    await writeFile(join(dir, 'lto.c'), 'int f(int x) { return x + 1; }\n');
    await cc(['-O2', '-flto', '-c', 'lto.c']);
    await expectBad([join(dir, 'lto.o'), join(dir, 'lto.o'), '--output', join(dir, 'out.o')], 2, /LTO object .*-fno-lto/);
  });

  it('a 32-bit object', async () => {
    await writeFile(join(dir, 'x32.s'), '.text\n.globl f\nf: ret\n');
    await execa('as', ['--32', '-o', join(dir, 'x32.o'), join(dir, 'x32.s')]);
    await expectBad([join(dir, 'x32.o'), patched, '--output', join(dir, 'out.o')], 2, /32-bit ELF object/);
  });

  it('an object for another machine (aarch64)', async () => {
    await writeFile(join(dir, 'arm.c'), 'int f(int x) { return x + 1; }\n');
    await execa('clang', ['--target=aarch64-linux-gnu', '-O2', '-c', '-o', join(dir, 'arm.o'), join(dir, 'arm.c')]);
    await expectBad([orig, join(dir, 'arm.o'), '--output', join(dir, 'out.o')], 2, /machine type 183 is not x86-64/);
  });

  it('a linked binary instead of an object', async () => {
    await expectBad([binary, patched, '--output', join(dir, 'out.o')], 2, /not a relocatable object/);
  });

  it('objects of two different source files', async () => {
    await writeFile(join(dir, 'other.c'), 'int other(int x) { return x; }\n');
    await cc(['-O2', '-ffunction-sections', '-fdata-sections', '-c', 'other.c']);
    await expectBad([orig, join(dir, 'other.o'), '--output', join(dir, 'out.o')], 2, /different source files.*x\.c.*other\.c/);
  });

  it('a --binary that is not a binary, or has no build-id', async () => {
    await expectBad([orig, patched, '--output', join(dir, 'out.o'), '--binary', join(dir, 'o/x.c')], 2, /not an ELF file/);
    await cc(['-pie', '-Wl,--build-id=none', '-o', 'noid', 'o/x.o']);
    await expectBad([orig, patched, '--output', join(dir, 'out.o'), '--binary', join(dir, 'noid')], 2, /no GNU build-id/);
  });

  it('usage and I/O errors exit 1', async () => {
    const r = await execa(cdo, [orig], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('usage:');
    const u = await execa(cdo, [orig, patched, '--output', join(dir, 'o.o'), '--frobnicate'], { reject: false });
    expect(u.exitCode).toBe(1);
    expect(u.stderr).toContain('unknown option --frobnicate');
    await expectBad([join(dir, 'missing.o'), patched, '--output', join(dir, 'out.o')], 1, /missing\.o: cannot open: No such file/);
    const w = await runCdo([orig, patched, '--output', join(dir, 'no/such/dir/p.o')], join(dir, 'w.json'));
    expect(w.exitCode).toBe(1);
    expect(w.verdict!.error).toMatch(/cannot create/);
  });
});

/** xorshift32: a reproducible byte-mutation sweep */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

describe('create-diff-object: reader under the sanitizers', () => {
  it('replays every kept crasher without a sanitizer report', async () => {
    const crashDir = join(kf, 'tests/crashers');
    const files = existsSync(crashDir) ? (await readdir(crashDir)).filter((f) => !f.endsWith('.md')) : [];
    const failures: string[] = [];
    for (const f of files) {
      const r = await execa(replay, [join(crashDir, f), orig], { reject: false, env: { ASAN_OPTIONS: 'detect_leaks=0', UBSAN_OPTIONS: 'halt_on_error=1' } });
      const code = r.exitCode ?? -1;
      if (code < 0 || code > 5) failures.push(`${f}: exit ${code} ${r.signal ?? ''} ${r.stderr.slice(0, 300)}`);
      // the real tool too: a clean exit 2 (or a verdict), never a crash
      const t = await execa(cdo, [orig, join(crashDir, f), '--output', join(dir, 'crash-out.o')], { reject: false });
      if ((t.exitCode ?? -1) < 0 || (t.exitCode ?? -1) > 5) failures.push(`${f}: create-diff-object exit ${t.exitCode} ${t.signal ?? ''}`);
    }
    expect(failures).toEqual([]);
  });

  it('survives 400 deterministic byte mutations of a real object', { timeout: 300_000 }, async () => {
    const whole = await readFile(patched);
    const next = rng(0x5eed);
    const failures: string[] = [];
    for (let i = 0; i < 400; i++) {
      const buf = Buffer.from(whole);
      const flips = 1 + (next() % 8);
      for (let k = 0; k < flips; k++) buf[next() % buf.length] = next() & 0xff;
      const p = join(dir, 'mut.o');
      await writeFile(p, buf);
      const r = await execa(replay, [p, orig], { reject: false, env: { ASAN_OPTIONS: 'detect_leaks=0', UBSAN_OPTIONS: 'halt_on_error=1' } });
      const code = r.exitCode ?? -1;
      if (code < 0 || code > 5) {
        const keep = join(kf, 'tests/crashers', `mutation-${i}.bin`);
        await copyFile(p, keep);
        failures.push(`mutation ${i} (kept as ${keep}): exit ${code} ${r.signal ?? ''} ${r.stderr.slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
