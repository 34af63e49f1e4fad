/**
 * New data, as kpatch allows it (create-diff-object --new-data, kpatch-fork/src/newdata.c):
 * a patch that adds static and global variables carries them; libwfpatch allocates them next
 * to the new code with their initial values, and only the new code uses them. Applied for
 * real to a running multi-threaded program: the new zero-initialised counter starts from 0,
 * the new initialised one from its initializer, the new constant table reads right, the
 * ORIGINAL static keeps counting — and a change to existing data is still "not text-only".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runCdo } from '../kpatch-fork/tests/harness.ts';
import { workerProgram } from './helpers/worker-program.ts';

const kf = join(repoRoot, 'kpatch-fork');
const rt = join(kf, 'runtime');
let dir = '';

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'cdo-newdata-'));
});
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

const libC = `#include <stdio.h>
int describe(int i, char *buf, unsigned long n)
{
	static int calls;
	calls++;
	return snprintf(buf, n, "v1 calls=%d i=%d", calls, i);
}
`;
// The shape of apache2's fix-macro.patch (a new static flag) and nodejs' CVE-2025-59466 (a new
// static guard), plus a new initialised counter, a new constant table and a new global.
const libPatched = `#include <stdio.h>
static int seen;
static int next_id = 100;
static const char *const colours[] = { "red", "green", "blue" };
int patch_generation = 2;
int describe(int i, char *buf, unsigned long n)
{
	static int calls;
	calls++;
	seen++;
	return snprintf(buf, n, "v%d calls=%d i=%d seen=%d id=%d c=%s", patch_generation, calls, i, seen, next_id++, colours[seen % 3]);
}
`;

const mainC = workerProgram({
  preamble: 'int describe(int i, char *buf, unsigned long n);',
  bufBytes: 160,
  step: 'describe(i, buf, sizeof(buf));\nprintf("%d %s\\n", i, buf);',
  linesAfterPatch: 12,
});

async function build(name: string, orig: string, patched: string): Promise<string> {
  const d = join(dir, name);
  for (const t of ['o', 'p']) await mkdir(join(d, t), { recursive: true });
  await writeFile(join(d, 'o/lib.c'), orig);
  await writeFile(join(d, 'p/lib.c'), patched);
  for (const t of ['o', 'p']) await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', 'lib.c'], { cwd: join(d, t) });
  return d;
}

async function runPatched(prog: string, patch: string): Promise<{ stdout: string; log: string }> {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}.jsonl`);
  const child = execa(prog, [], { reject: false, env: { WF_GLOBAL: '1', WF_PATCH_QUEUE: patch, WF_LOGFILE: log }, timeout: 30_000 });
  let sent = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    if (!sent && chunk.toString().includes('5 v1')) {
      sent = true;
      process.kill(child.pid!, 34); // SIGPATCH = SIGRTMIN+0
    }
  });
  const r = await child;
  return { stdout: r.stdout, log: existsSync(log) ? await readFile(log, 'utf8') : '' };
}

describe('create-diff-object --new-data', () => {
  it('without the flag new variables are "not text-only" (exit 4), as before', { timeout: 60_000 }, async () => {
    const d = await build('noflag', libC, libPatched);
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', join(d, 'patch.o')], join(d, 'v.json'));
    expect(r.exitCode).toBe(4);
    expect(r.verdict!.liveWithNewData).toBe(false);
    expect(r.verdict!.newData.map((x) => x.name).sort()).toEqual(expect.arrayContaining(['next_id', 'patch_generation', 'seen']));
    expect(existsSync(join(d, 'patch.o'))).toBe(false);
  });

  it('a change to EXISTING data stays not text-only, named, even with the flag', { timeout: 60_000 }, async () => {
    const orig = `static int limit = 10;\nstatic int fresh_unused;\nint f(int i) { return i < limit ? i : limit; }\nint *g(void) { return &limit; }\n`;
    const d = await build('existing', orig, orig.replace('limit = 10', 'limit = 20').replace('fresh_unused;', 'fresh_unused;\nstatic int fresh;').replace('return i < limit', 'fresh++; return i < limit'));
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', join(d, 'patch.o'), '--new-data'], join(d, 'v.json'));
    expect(r.exitCode).toBe(4);
    expect(r.verdict!.liveWithNewData).toBe(false);
    expect(r.verdict!.changedData.map((x) => x.name)).toEqual(['limit']);
    expect(r.stderr).toMatch(/not text-only: data object limit: initializer changed/);
  });

  it('an entry added to a section the linker collects (FRR\'s xref_array) is named as the cause, even with the flag', { timeout: 60_000 }, async () => {
    // One entry per call site, as FRR's log macros place them: the program walks the section once.
    const entry = (n: number) => `static const struct site site_${n} = { ${n}, "f" };\nstatic const struct site *const site_p_${n} __attribute__((used, section("site_array"))) = &site_${n};\n`;
    const head = 'struct site { int line; const char *fn; };\n';
    const orig = `${head}${entry(1)}int f(int i) { return i + 1; }\n`;
    const d = await build('collected', orig, `${head}${entry(1)}${entry(2)}int f(int i) { return i + 2; }\n`);
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', join(d, 'patch.o'), '--new-data'], join(d, 'v.json'));
    expect(r.exitCode).toBe(4);
    expect(r.verdict!.textOnlyReasons[0]).toMatch(/^adds entries to site_array \(8 bytes\), a section the linker collects for the program to walk at start-up \(__start_site_array\), so the running program never sees the change$/);
    // an entry whose call site's metadata changed (a line moved) is named as a collected entry
    const moved = await build('collected-moved', orig, orig.replace('site_1 = { 1,', 'site_1 = { 7,').replace('i + 1', 'i + 4'));
    const m = await runCdo([join(moved, 'o/lib.o'), join(moved, 'p/lib.o'), '--output', join(moved, 'patch.o'), '--new-data'], join(moved, 'v.json'));
    expect(m.exitCode).toBe(4);
    expect(m.verdict!.textOnlyReasons[0]).toMatch(/^entry site_p_1 of site_array, a section the linker collects .*changed \(initializer changed \(pointer at byte 0\)\), so the running program keeps the old entry$/);
    // a code-only change next to such a section is not affected
    const same = await build('collected-same', orig, orig.replace('i + 1', 'i + 3'));
    const ok = await runCdo([join(same, 'o/lib.o'), join(same, 'p/lib.o'), '--output', join(same, 'patch.o'), '--new-data'], join(same, 'v.json'));
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.verdict!.textOnlyReasons).toEqual([]);
  });

  it('a new thread-local variable is refused with its reason', { timeout: 60_000 }, async () => {
    const orig = `int f(int i) { return i * 2; }\n`;
    const d = await build('tls', orig, `static __thread int depth;\nint f(int i) { depth++; return i * 2 + depth; }\n`);
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', join(d, 'patch.o'), '--new-data'], join(d, 'v.json'));
    expect(r.exitCode).toBe(4);
    expect(r.verdict!.textOnlyReasons.join('\n')).toMatch(/new data object depth \(thread-local/);
  });

  it('carries new .bss, .data, constant and global data; libwfpatch allocates and initialises it in a running program', { timeout: 120_000 }, async () => {
    const d = await build('apply', libC, libPatched);
    await writeFile(join(d, 'o/main.c'), mainC);
    await execa('gcc', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'main.c'], { cwd: join(d, 'o') });
    await execa('gcc', ['-pie', '-o', 'prog', 'main.o', 'lib.o', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(d, 'o') });
    const patch = join(d, 'patch.o');
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', patch, '--binary', join(d, 'o/prog'), '--new-data'], join(d, 'v.json'));
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const v = r.verdict!;
    // the paper's column stays comparable: this is not text-only, but live-patchable with new data
    expect(v.textOnly).toBe(false);
    expect(v.liveWithNewData).toBe(true);
    expect(Object.fromEntries((v.newDataCarried ?? []).map((x) => [x.name, x.reason]))).toEqual({
      seen: 'zero-initialised',
      next_id: 'initialised',
      patch_generation: 'initialised',
    });
    expect(v.copiedData.map((x) => x.name)).toContain('colours');
    expect(v.reasons.every((x) => x.kind === 'new-data')).toBe(true);
    const sections = (await execa('readelf', ['-SW', patch])).stdout;
    expect(sections).toMatch(/\.bss\.seen\s+NOBITS/);
    expect(sections).toMatch(/\.data\.next_id\s+PROGBITS/);

    const run = await runPatched(join(d, 'o/prog'), patch);
    expect(run.log).toContain('"outcome":"applied"');
    const lines = run.stdout.trim().split('\n');
    const first = lines.findIndex((l) => / v2 /.test(l));
    expect(first).toBeGreaterThan(3);
    const colours = ['red', 'green', 'blue'];
    for (const [i, l] of lines.entries()) {
      // the ORIGINAL static local counts on across the patch
      expect(Number(/calls=(\d+)/.exec(l)![1])).toBe(i + 1);
      if (i < first) {
        expect(l).toMatch(/ v1 calls=\d+ i=\d+$/);
        continue;
      }
      // the new variables start from their initial values when the new code first runs
      const k = i - first + 1;
      expect(l).toContain(` seen=${k} id=${99 + k} c=${colours[k % 3]}`);
    }
  });
});
