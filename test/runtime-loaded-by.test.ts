/**
 * A module's patch that calls a function only the program loading it exports (nginx's modules
 * take ngx_pnalloc from /usr/sbin/nginx, linked with -Wl,-E): create-diff-object --binary and
 * `wfpatch-ctl check` resolve it with --loaded-by PROGRAM, as libwfpatch does at run time
 * (runtime/relocate.c resolve(): dlsym(RTLD_DEFAULT), the process's global scope, in which the
 * main program's dynamic symbols come first). Without --loaded-by both refuse it; a loading
 * program that is missing or not ELF is a clear error with a non-zero exit; and the patch,
 * applied in the running program, runs its new code. A library only the module needs (it is
 * loaded RTLD_LOCAL) resolves in the dry run and, through the module's own scope, at run time.
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

// The module uses host_offset (so it imports it); the patch also calls host_scale, which the
// module never referenced: only the program exports it (-rdynamic).
const modC = `int host_offset(int x);
int mod_step(int i)
{
	return host_offset(i);
}
`;
const modPatched = modC.replace('int mod_step', 'int host_scale(int x);\nint mod_step').replace('return host_offset(i);', 'return host_scale(host_offset(i));');
// A library only the module needs (zlib: a required Debian package, which the program does not
// load): the module is dlopen()ed RTLD_LOCAL, so its libraries stay out of the global scope.
const modZlib = modC.replace('int mod_step', 'unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned len);\nint mod_step').replace('return host_offset(i);', 'return host_offset(i) + (crc32(0, 0, 0) == 0 ? 2000 : 0);');
const modNowhere = modC.replace('int mod_step', 'int host_nowhere(int x);\nint mod_step').replace('return host_offset(i);', 'return host_nowhere(host_offset(i));');
const progC = `#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
#include "wfpatch.h"
__attribute__((noinline, used)) int host_offset(int x) { return x + 1; }
__attribute__((noinline, used)) int host_scale(int x) { return x * 1000; }
int main(int argc, char **argv)
{
	(void)argc;
	wf_init((struct wf_configuration){ 0 });
	/* RTLD_LOCAL: the program's exports reach the module through the global scope alone */
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "%s\\n", dlerror());
		return 1;
	}
	int (*step)(int) = (int (*)(int))dlsym(h, "mod_step");
	for (int i = 0; i < 300; i++) {
		wf_global_quiescence("main", 1);
		printf("%d step=%d\\n", i, step(i));
		fflush(stdout);
		usleep(10000);
	}
	return 0;
}
`;

async function check(bundle: string, binary: string, extra: string[] = []): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(ctl, ['check', bundle, binary, ...extra], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const modFlags = ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIC', '-c', 'mod.c'];

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'runtime-loaded-by-'));
  for (const t of ['o', 'p', 'n', 'z']) await mkdir(join(dir, t), { recursive: true });
  await writeFile(join(dir, 'o/mod.c'), modC);
  await writeFile(join(dir, 'p/mod.c'), modPatched);
  await writeFile(join(dir, 'n/mod.c'), modNowhere);
  await writeFile(join(dir, 'z/mod.c'), modZlib);
  await writeFile(join(dir, 'o/prog.c'), progC);
  for (const t of ['o', 'p', 'n', 'z']) await execa('gcc', modFlags, { cwd: join(dir, t) });
  await execa('gcc', ['-shared', '-Wl,--build-id', '-o', 'mod.so', 'mod.o'], { cwd: join(dir, 'o') });
  // the same module, needing libz (which it does not use yet)
  await execa('gcc', ['-shared', '-Wl,--build-id', '-o', 'zmod.so', 'mod.o', '-Wl,--no-as-needed', '/lib/x86_64-linux-gnu/libz.so.1'], { cwd: join(dir, 'o') });
  await execa('gcc', ['-O2', '-g', '-fPIE', '-pie', '-rdynamic', '-Wl,--build-id', `-I${rt}`, '-o', 'prog', 'prog.c', '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(dir, 'o') });
  await writeFile(join(dir, 'not-elf'), '#!/bin/sh\necho not a program\n');
});
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

const cdoArgs = (patched: string, out: string, extra: string[] = []) => [join(dir, 'o/mod.o'), join(dir, patched, 'mod.o'), '--output', join(dir, out), '--binary', join(dir, 'o/mod.so'), ...extra];

describe('create-diff-object --binary MODULE --loaded-by PROGRAM', () => {
  it('without --loaded-by, a function only the loading program exports does not resolve (exit 5)', { timeout: 60_000 }, async () => {
    const r = await runCdo(cdoArgs('p', 'alone.o'), join(dir, 'alone.json'));
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toMatch(/host_scale does not resolve in .*mod\.so: not defined in the binary or the libraries it needs/);
  });

  it('with --loaded-by the program, it resolves as exported by the program (exit 0)', { timeout: 60_000 }, async () => {
    const r = await runCdo(cdoArgs('p', 'patch.o', ['--loaded-by', join(dir, 'o/prog')]), join(dir, 'patch.json'));
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const ref = r.verdict!.references.find((x) => x.name === 'host_scale');
    expect(ref?.resolved).toBe(true);
    expect(ref?.how).toMatch(/exported by .*prog, which loads the binary/);
  });

  it('a function found nowhere still fails, naming the loading program searched', { timeout: 60_000 }, async () => {
    const r = await runCdo(cdoArgs('n', 'nowhere.o', ['--loaded-by', join(dir, 'o/prog')]), join(dir, 'nowhere.json'));
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toMatch(/host_nowhere does not resolve in .*mod\.so: not defined in the binary or the libraries it needs, nor exported by the program that loads it \(.*\/o\/prog\)/);
  });

  it('a loading program that is missing, not ELF, or no value: clear error, non-zero exit', { timeout: 60_000 }, async () => {
    const missing = await runCdo(cdoArgs('p', 'bad.o', ['--loaded-by', join(dir, 'nonexistent')]), join(dir, 'bad.json'));
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/nonexistent: cannot open: No such file or directory \(--loaded-by\)/);
    expect(existsSync(join(dir, 'bad.o'))).toBe(false);
    const notElf = await runCdo(cdoArgs('p', 'bad.o', ['--loaded-by', join(dir, 'not-elf')]), join(dir, 'bad.json'));
    expect(notElf.exitCode).toBe(2);
    expect(notElf.stderr).toMatch(/not-elf: --loaded-by needs an x86-64 executable or shared object/);
    const noBinary = await runCdo([join(dir, 'o/mod.o'), join(dir, 'p/mod.o'), '--output', join(dir, 'bad.o'), '--loaded-by', join(dir, 'o/prog')]);
    expect(noBinary.exitCode).toBe(1);
    expect(noBinary.stderr).toContain('--loaded-by needs --binary');
    const noValue = await runCdo(cdoArgs('p', 'bad.o', ['--loaded-by']));
    expect(noValue.exitCode).toBe(1);
    expect(noValue.stderr).toContain('--loaded-by needs a program');
  });
});

describe('wfpatch-ctl check BUNDLE MODULE --loaded-by PROGRAM', () => {
  it('without --loaded-by the module alone cannot resolve what the program exports', { timeout: 60_000 }, async () => {
    const r = await check(join(dir, 'patch.o'), join(dir, 'o/mod.so'));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/error: unresolved symbol host_(offset|scale) \(not in .*mod\.so, not exported by the \d+ libraries it needs\)/);
    expect(r.stdout).toMatch(/^FAILED: /m);
  });

  it('with --loaded-by the program it passes', { timeout: 60_000 }, async () => {
    const r = await check(join(dir, 'patch.o'), join(dir, 'o/mod.so'), ['--loaded-by', join(dir, 'o/prog')]);
    expect(r.stdout).toMatch(/^ok: .*patch\.o against .*mod\.so \(build-id [0-9a-f]+\): \d+ relocations, [1-9]\d* undefined symbols \([1-9]\d* in libraries.*1 functions.*\d+ libraries and 1 loading program read/m);
    expect(r.exitCode).toBe(0);
  });

  it('a symbol found nowhere still fails, naming the loading program searched', { timeout: 60_000 }, async () => {
    const bad = join(dir, 'gone.o');
    await execa('objcopy', ['--redefine-sym', 'host_scale=host_gone', join(dir, 'patch.o'), bad]);
    const r = await check(bad, join(dir, 'o/mod.so'), ['--loaded-by', join(dir, 'o/prog')]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/error: unresolved symbol host_gone \(not in .*mod\.so, not exported by the program loading it \(.*\/o\/prog\) or the \d+ libraries they need\)/);
  });

  it('a loading program that is missing or not ELF, or a malformed option: exit 2 with the reason', { timeout: 60_000 }, async () => {
    const missing = await check(join(dir, 'patch.o'), join(dir, 'o/mod.so'), ['--loaded-by', join(dir, 'nonexistent')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot open .*nonexistent: No such file or directory \(--loaded-by\)/);
    const notElf = await check(join(dir, 'patch.o'), join(dir, 'o/mod.so'), ['--loaded-by', join(dir, 'not-elf')]);
    expect(notElf.exitCode).toBe(2);
    expect(notElf.stderr).toMatch(/not-elf is not an ELF file \(--loaded-by\)|not-elf is not an x86-64 executable/);
    const usage = await check(join(dir, 'patch.o'), join(dir, 'o/mod.so'), ['--loaded-by']);
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain('[--loaded-by PROGRAM]');
  });
});

/** Runs prog with `module`, sends SIGPATCH once it printed a few lines, stops it when the new code answered. */
async function applyInProgram(module: string, patch: string, patched: (i: number) => number, name: string): Promise<{ lines: RegExpExecArray[]; log: string; stdout: string }> {
  const log = join(dir, `${name}.jsonl`);
  const child = execa(join(dir, 'o/prog'), [module], { reject: false, env: { WF_GLOBAL: '1', WF_PATCH_QUEUE: patch, WF_LOGFILE: log }, timeout: 30_000 });
  let sent = false;
  let stop = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    if (!sent && text.includes('3 step=4')) {
      sent = true;
      process.kill(child.pid!, 34); // SIGPATCH
    }
    for (const m of text.matchAll(/^(\d+) step=(\d+)$/gm)) if (Number(m[2]) === patched(Number(m[1]))) stop = true;
    if (stop) child.kill('SIGTERM');
  });
  const run = await child;
  const lines = run.stdout.split('\n').map((l) => /^(\d+) step=(\d+)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  return { lines, stdout: run.stdout, log: existsSync(log) ? await readFile(log, 'utf8') : '' };
}

/** Old code (i + 1) until the switch, then only the new code. */
function expectSwitched(r: { lines: RegExpExecArray[]; log: string; stdout: string }, patched: (i: number) => number): void {
  const isNew = (m: RegExpExecArray) => Number(m[2]) === patched(Number(m[1]));
  expect(r.lines[0]![2]).toBe('1');
  const first = r.lines.findIndex(isNew);
  expect(first, `${r.stdout}\n${r.log}`).toBeGreaterThan(0);
  expect(r.lines.slice(first).every(isNew)).toBe(true);
  expect(r.lines.slice(0, first).every((m) => Number(m[2]) === Number(m[1]) + 1)).toBe(true);
}

describe('libwfpatch applies the same patch in the running program', () => {
  it('resolves host_scale from the program and runs the new code', { timeout: 60_000 }, async () => {
    const scaled = (i: number) => (i + 1) * 1000;
    expectSwitched(await applyInProgram(join(dir, 'o/mod.so'), join(dir, 'patch.o'), scaled, 'apply'), scaled);
  });

  it("resolves a library only the RTLD_LOCAL module needs, as the dry run does (the module's local scope)", { timeout: 60_000 }, async () => {
    const zpatch = join(dir, 'zpatch.o');
    const r = await runCdo([join(dir, 'o/mod.o'), join(dir, 'z/mod.o'), '--output', zpatch, '--binary', join(dir, 'o/zmod.so'), '--loaded-by', join(dir, 'o/prog')], join(dir, 'zpatch.json'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.verdict!.references.find((x) => x.name === 'crc32')?.how).toBe('defined in libz.so.1, which the binary loads');
    const c = await check(zpatch, join(dir, 'o/zmod.so'), ['--loaded-by', join(dir, 'o/prog')]);
    expect(c.stdout).toMatch(/^ok: /m);
    expect(c.exitCode).toBe(0);
    // the program does not load libz: only the module's own scope has crc32
    expect((await execa('readelf', ['-dW', join(dir, 'o/prog')])).stdout).not.toContain('libz');
    const plus = (i: number) => i + 1 + 2000;
    expectSwitched(await applyInProgram(join(dir, 'o/zmod.so'), zpatch, plus, 'zapply'), plus);
  });
});
