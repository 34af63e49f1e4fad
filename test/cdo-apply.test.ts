/**
 * create-diff-object's output, applied for real: a running multi-threaded program linked with
 * libwfpatch (kpatch-fork/runtime, global mode on the host) loads the patch object
 * create-diff-object wrote and must print the patched behaviour — new string literals and jump
 * table, the ORIGINAL static local counting on, static helpers and libc through load-time
 * references, C++ exceptions thrown, unwound and caught through patched code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { cdo, runCdo } from '../kpatch-fork/tests/harness.ts';
import { workerProgram } from './helpers/worker-program.ts';

const kf = join(repoRoot, 'kpatch-fork');
const rt = join(kf, 'runtime');
let dir = '';

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'cdo-apply-'));
});
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

const libC = `#include <stdio.h>
static int __attribute__((noinline)) weight(int i) { return i * 3; }
const char *kind(int i)
{
	switch (i % 7) {
	case 0: return "zero"; case 1: return "one"; case 2: return "two"; case 3: return "three";
	case 4: return "four"; case 5: return "five"; default: return "many";
	}
}
int describe(int i, char *buf, unsigned long n)
{
	static int calls;
	calls++;
	return snprintf(buf, n, "v1 %s calls=%d w=%d", kind(i), calls, weight(i));
}
`;
const libPatched = libC
  .replace('"v1 %s calls=%d w=%d", kind(i)', '"v2 %s calls=%d w=%d fn=%s", kind(i)')
  .replace('weight(i));', 'weight(i), __func__);')
  .replace('case 4: return "four";', 'case 4: return "FOUR";');

const mainC = workerProgram({
  preamble: 'int describe(int i, char *buf, unsigned long n);',
  bufBytes: 128,
  step: 'describe(i, buf, sizeof(buf));\nprintf("%d %s\\n", i, buf);',
  linesAfterPatch: 16, // a few more lines with the new code
});

/** Runs prog with WF_PATCH_QUEUE=patch, sends SIGPATCH once it printed a few lines, returns stdout+log. */
async function runPatched(prog: string, patch: string, ldPath?: string): Promise<{ stdout: string; log: string }> {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}.jsonl`);
  const child = execa(prog, [], {
    reject: false,
    env: { WF_GLOBAL: '1', WF_PATCH_QUEUE: patch, WF_LOGFILE: log, ...(ldPath ? { LD_LIBRARY_PATH: ldPath } : {}) },
    timeout: 30_000,
  });
  let sent = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    if (!sent && chunk.toString().includes('5 v1')) {
      sent = true;
      // SIGPATCH is SIGRTMIN+0: 34 with glibc (Node has no name for it)
      process.kill(child.pid!, 34);
    }
  });
  const r = await child;
  const { readFile } = await import('node:fs/promises');
  return { stdout: r.stdout, log: existsSync(log) ? await readFile(log, 'utf8') : '' };
}

describe.each(['pie', 'pic'] as const)('a create-diff-object patch applied by libwfpatch (-f%s)', (model) => {
  it('the running program switches to the patched code, keeping its static state', { timeout: 120_000 }, async () => {
    const d = join(dir, `c-${model}`);
    for (const t of ['o', 'p']) await mkdir(join(d, t), { recursive: true });
    await writeFile(join(d, 'o/lib.c'), libC);
    await writeFile(join(d, 'p/lib.c'), libPatched);
    await writeFile(join(d, 'o/main.c'), mainC);
    const pic = model === 'pie' ? '-fPIE' : '-fPIC';
    for (const t of ['o', 'p']) await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', pic, '-c', 'lib.c'], { cwd: join(d, t) });
    await execa('gcc', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'main.c'], { cwd: join(d, 'o') });
    const rtLib = ['-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`];
    let target: string;
    if (model === 'pie') {
      await execa('gcc', ['-pie', '-o', 'prog', 'main.o', 'lib.o', ...rtLib], { cwd: join(d, 'o') });
      target = join(d, 'o/prog');
    } else {
      await execa('gcc', ['-shared', '-Wl,--build-id', '-o', 'libcase.so', 'lib.o'], { cwd: join(d, 'o') });
      await execa('gcc', ['-pie', '-o', 'prog', 'main.o', '-L.', '-lcase', ...rtLib], { cwd: join(d, 'o') });
      target = join(d, 'o/libcase.so');
    }
    const patch = join(d, 'patch.o');
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', patch, '--binary', target], join(d, 'v.json'));
    expect(r.exitCode).toBe(0);
    const run = await runPatched(join(d, 'o/prog'), patch, join(d, 'o'));
    expect(run.log).toContain('"outcome":"applied"');
    const lines = run.stdout.trim().split('\n');
    const first = lines.findIndex((l) => l.includes(' v2 '));
    expect(first).toBeGreaterThan(3);
    // before: the old code; after: new literal, new jump table entry, __func__ — and the
    // static local counts on from where the old code left it (the original variable)
    for (const [i, l] of lines.entries()) {
      const calls = Number(/calls=(\d+)/.exec(l)![1]);
      expect(calls).toBe(i + 1);
      if (i < first) expect(l).toMatch(/ v1 /);
      else expect(l).toMatch(/ v2 \w+ calls=\d+ w=\d+ fn=describe$/);
    }
    const after = lines.slice(first);
    expect(after.some((l) => l.includes(' FOUR '))).toBe(true);
    expect(after.some((l) => l.includes(' four '))).toBe(false);
  });
});

describe('a bundle of two patch objects (ld -r) applied by libwfpatch', () => {
  it('both objects are patched; each keeps its own statics', { timeout: 120_000 }, async () => {
    const d = join(dir, 'bundle');
    for (const t of ['o', 'p']) await mkdir(join(d, t), { recursive: true });
    // two files with a static of the same name: sympos and file keep them apart
    const other = `static int calls;
static int __attribute__((noinline)) bump(void) { return ++calls; }
int other_tag(void) { return bump() * 1000; }
`;
    await writeFile(join(d, 'o/lib.c'), libC.replace('calls=%d w=%d"', 'calls=%d w=%d t=%d"').replace('weight(i));', 'weight(i), other_tag());').replace('#include <stdio.h>', '#include <stdio.h>\nint other_tag(void);'));
    const patchedLib = libPatched.replace('fn=%s"', 'fn=%s t=%d"').replace('__func__);', '__func__, other_tag());').replace('#include <stdio.h>', '#include <stdio.h>\nint other_tag(void);');
    await writeFile(join(d, 'p/lib.c'), patchedLib);
    await writeFile(join(d, 'o/other.c'), other);
    await writeFile(join(d, 'p/other.c'), other.replace('* 1000', '* 2000'));
    await writeFile(join(d, 'o/main.c'), mainC);
    for (const t of ['o', 'p']) {
      for (const f of ['lib.c', 'other.c']) await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', f], { cwd: join(d, t) });
    }
    await execa('gcc', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'main.c'], { cwd: join(d, 'o') });
    await execa('gcc', ['-pie', '-o', 'prog', 'main.o', 'lib.o', 'other.o', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(d, 'o') });
    for (const f of ['lib', 'other']) {
      const r = await runCdo([join(d, `o/${f}.o`), join(d, `p/${f}.o`), '--output', join(d, `${f}.patch.o`), '--binary', join(d, 'o/prog')], join(d, `${f}.json`));
      expect(r.exitCode).toBe(0);
    }
    const bundle = join(d, 'bundle.o');
    await execa('ld', ['-r', '-o', bundle, join(d, 'lib.patch.o'), join(d, 'other.patch.o')]);
    const run = await runPatched(join(d, 'o/prog'), bundle);
    expect(run.log).toContain('"outcome":"applied"');
    const lines = run.stdout.trim().split('\n');
    const first = lines.findIndex((l) => l.includes(' v2 '));
    expect(first).toBeGreaterThan(3);
    for (const [i, l] of lines.entries()) {
      expect(Number(/calls=(\d+)/.exec(l)![1])).toBe(i + 1);
      // other.c's own static "calls" counts on too, now times 2000
      const t = Number(/t=(\d+)/.exec(l)![1]);
      expect(t).toBe((i + 1) * (i < first ? 1000 : 2000));
    }
  });
});

const cxxLib = `#include <stdexcept>
#include <string>
#include <cstdio>
int check(int x)
{
	if (x % 5 == 4) throw std::runtime_error("old " + std::to_string(x));
	return x;
}
int guarded(int x)
{
	try {
		return check(x);
	} catch (const std::runtime_error &e) {
		std::printf("caught(%s)\\n", e.what());
		return -1;
	}
}
`;
const cxxPatched = cxxLib.replace('"old "', '"new "').replace('caught(%s)', 'CAUGHT[%s]').replace('x % 5 == 4', 'x % 5 == 3');

const cxxMain = `#include <pthread.h>
#include <cstdio>
#include <stdexcept>
#include <unistd.h>
#include "wfpatch.h"
int check(int x);
int guarded(int x);
static volatile int cur, stop_at = 400;
static void *worker(void *)
{
	for (int i = 0; i < stop_at; i++) {
		cur = i;
		wf_global_quiescence("worker", 1);
		int g = guarded(i);
		try {
			check(i);
			std::printf("%d v%d ok g=%d\\n", i, 0, g);
		} catch (const std::exception &e) {
			std::printf("%d main-caught %s\\n", i, e.what());
		}
		std::fflush(stdout);
		usleep(10000);
	}
	return nullptr;
}
static void done(void) { stop_at = cur + 16; }
int main()
{
	struct wf_configuration config = {};
	config.patch_done = done;
	wf_init(config);
	pthread_t t;
	pthread_create(&t, nullptr, worker, nullptr);
	pthread_join(t, nullptr);
}
`;

describe('a C++ patch applied by libwfpatch', () => {
  it('exceptions are thrown, unwound and caught through the patched code', { timeout: 180_000 }, async () => {
    const d = join(dir, 'cxx');
    for (const t of ['o', 'p']) await mkdir(join(d, t), { recursive: true });
    await writeFile(join(d, 'o/lib.cc'), cxxLib);
    await writeFile(join(d, 'p/lib.cc'), cxxPatched);
    await writeFile(join(d, 'o/main.cc'), cxxMain.replace('v%d ok', 'v1 ok'));
    for (const t of ['o', 'p']) await execa('g++', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', 'lib.cc'], { cwd: join(d, t) });
    await execa('g++', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'main.cc'], { cwd: join(d, 'o') });
    await execa('g++', ['-pie', '-o', 'prog', 'main.o', 'lib.o', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(d, 'o') });
    const patch = join(d, 'patch.o');
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', patch, '--binary', join(d, 'o/prog')], join(d, 'v.json'));
    expect(r.exitCode).toBe(0);
    const run = await runPatched(join(d, 'o/prog'), patch);
    expect(run.log).toContain('"outcome":"applied"');
    const out = run.stdout;
    // before the patch: i % 5 == 4 throws "old i", caught in guarded() as caught(...) and in main
    expect(out).toMatch(/caught\(old 4\)\n4 main-caught old 4/);
    // after: i % 5 == 3 throws "new i" from the patched check(): the patched guarded() catches it
    // (its landing pad and LSDA come from the patch), main's unchanged handler unwinds through it
    expect(out).toMatch(/CAUGHT\[new (\d+)\]\n\1 main-caught new \1/);
    const tail = out.slice(out.indexOf('CAUGHT['));
    expect(tail).not.toContain('old ');
    expect(tail).not.toContain('caught(');
  });
});

describe('C++ CHECK()-style constants applied by libwfpatch', () => {
  it('the patched code reports the new line through its own copy of the constant', { timeout: 180_000 }, async () => {
    const d = join(dir, 'check');
    for (const t of ['o', 'p']) await mkdir(join(d, t), { recursive: true });
    const lib = `#include <cstdio>
struct AssertionInfo { const char *file_line; const char *message; };
__attribute__((noinline)) void Report(const AssertionInfo &info) { std::printf("report %s (%s)\\n", info.file_line, info.message); }
#define STR2(x) #x
#define STR(x) STR2(x)
#define CHECK(expr) do { if (!(expr)) { static const AssertionInfo args = { __FILE__ ":" STR(__LINE__), #expr }; Report(args); } } while (0)
int verify(int x) { CHECK(x % 5 != 2); return x; }
`;
    await writeFile(join(d, 'o/lib.cc'), lib);
    await writeFile(join(d, 'p/lib.cc'), `// two lines\n// moved\n${lib}`);
    const main = cxxMain.replace('int g = guarded(i);', 'int g = verify(i);').replace('int guarded(int x);', 'int verify(int x);').replace('v%d ok', 'v1 ok');
    await writeFile(join(d, 'o/main.cc'), main);
    for (const t of ['o', 'p']) await execa('g++', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', 'lib.cc'], { cwd: join(d, t) });
    await execa('g++', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'main.cc'], { cwd: join(d, 'o') });
    await writeFile(join(d, 'o/check.cc'), 'int check(int x) { return x; }\n');
    await execa('g++', ['-O2', '-fPIE', '-c', 'check.cc'], { cwd: join(d, 'o') });
    await execa('g++', ['-pie', '-o', 'prog', 'main.o', 'lib.o', 'check.o', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(d, 'o') });
    const patch = join(d, 'patch.o');
    const r = await runCdo([join(d, 'o/lib.o'), join(d, 'p/lib.o'), '--output', patch, '--binary', join(d, 'o/prog')], join(d, 'v.json'));
    expect(r.exitCode).toBe(0);
    expect(r.verdict!.copiedData).toHaveLength(1);
    // "v1 ok" lines are printed before the patch; the trigger waits for line 5
    const run = await runPatched(join(d, 'o/prog'), patch);
    expect(run.log).toContain('"outcome":"applied"');
    const reports = run.stdout.split('\n').filter((l) => l.startsWith('report '));
    expect(reports[0]).toBe('report lib.cc:7 (x % 5 != 2)');
    expect(reports.at(-1)).toBe('report lib.cc:9 (x % 5 != 2)');
  });
});

void cdo;
