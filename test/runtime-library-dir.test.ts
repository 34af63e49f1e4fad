/**
 * A program's patch that calls a function of a library the same package builds (dovecot's auth
 * takes t_normpath from libdovecot.so.0, installed in /usr/lib/dovecot, its run path, and
 * absent from the build machine). The build captured the library as libhelper.so.1.2.3; the
 * program needs it as libhelper.so.1. stages/library-dir.ts links the build's libraries by
 * soname into one directory, and create-diff-object --binary and `wfpatch-ctl check` resolve
 * through it with --library-dir: without it both refuse the patch, with it both pass; a bad
 * option is a clear error with a non-zero exit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readlink, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { libraryDir, libraryDirArgs } from '../pipeline/src/stages/library-dir.ts';
import { runCdo } from '../kpatch-fork/tests/harness.ts';

const kf = join(repoRoot, 'kpatch-fork');
const ctl = join(kf, 'runtime', 'build', 'wfpatch-ctl');
let dir = '';
let sonames: string | null = null;

const libC = `int helper_old(int x) { return x + 1; }
int helper_new(int x) { return x * 1000; }
`;
const progC = `#include <stdio.h>
int helper_old(int x);
__attribute__((noinline)) int step(int i)
{
	return helper_old(i);
}
int main(void)
{
	printf("%d\\n", step(1));
	return 0;
}
`;
const progPatched = progC.replace('int helper_old(int x);', 'int helper_old(int x);\nint helper_new(int x);').replace('return helper_old(i);', 'return helper_new(helper_old(i));');

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'runtime-library-dir-'));
  // linked/: what the wrapper captured, the library under its real file name only
  const libs = join(dir, 'linked', 'src', 'lib', '.libs');
  await mkdir(libs, { recursive: true });
  for (const t of ['o', 'p']) await mkdir(join(dir, t), { recursive: true });
  await writeFile(join(dir, 'helper.c'), libC);
  await execa('gcc', ['-O2', '-fPIC', '-shared', '-Wl,--build-id', '-Wl,-soname,libhelper.so.1', '-o', join(libs, 'libhelper.so.1.2.3'), 'helper.c'], { cwd: dir });
  // a module without a soname is not linked in
  await execa('gcc', ['-O2', '-fPIC', '-shared', '-o', join(libs, 'plugin.so'), 'helper.c'], { cwd: dir });
  await writeFile(join(dir, 'o/prog.c'), progC);
  await writeFile(join(dir, 'p/prog.c'), progPatched);
  for (const t of ['o', 'p']) await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', 'prog.c'], { cwd: join(dir, t) });
  // the link needs the soname file; the run path is where the package installs it
  await execa('cp', [join(libs, 'libhelper.so.1.2.3'), join(dir, 'libhelper.so')]);
  await execa('gcc', ['-pie', '-Wl,--build-id', '-o', 'prog', 'prog.o', '-L', dir, '-lhelper', '-Wl,-rpath,/usr/lib/wfpatch-test-not-installed'], { cwd: join(dir, 'o') });
  sonames = await libraryDir(join(dir, 'linked'));
});
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

const cdoArgs = (out: string, extra: string[] = []) => [join(dir, 'o/prog.o'), join(dir, 'p/prog.o'), '--output', join(dir, out), '--binary', join(dir, 'o/prog'), ...extra];

describe('libraryDir (stages/library-dir.ts)', () => {
  it('links each shared object of the build by its soname, and only those with one', async () => {
    expect(sonames).toBe(join(dir, 'linked.sonames'));
    expect(await readdir(sonames!)).toEqual(['libhelper.so.1']);
    expect(await readlink(join(sonames!, 'libhelper.so.1'))).toBe('../linked/src/lib/.libs/libhelper.so.1.2.3');
    expect(libraryDirArgs(sonames)).toEqual(['--library-dir', sonames]);
    expect(libraryDirArgs(null)).toEqual([]);
  });

  it('is null for a build that links no library with a soname', async () => {
    const empty = join(dir, 'empty-linked');
    await mkdir(join(empty, 'bin'), { recursive: true });
    await writeFile(join(empty, 'bin', 'tool'), 'not a library');
    expect(await libraryDir(empty)).toBeNull();
    expect(existsSync(`${empty}.sonames`)).toBe(false);
  });
});

describe('create-diff-object --binary PROGRAM --library-dir DIR', () => {
  it('without it, a function of the package\'s own library does not resolve (exit 5)', { timeout: 60_000 }, async () => {
    const r = await runCdo(cdoArgs('alone.o'), join(dir, 'alone.json'));
    expect(r.exitCode).toBe(5);
    expect(r.stderr).toMatch(/helper_new does not resolve in .*prog: not defined in the binary or the libraries it needs/);
  });

  it('with it, the function resolves in the library the binary loads (exit 0)', { timeout: 60_000 }, async () => {
    const r = await runCdo(cdoArgs('patch.o', libraryDirArgs(sonames)), join(dir, 'patch.json'));
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const ref = r.verdict!.references.find((x) => x.name === 'helper_new');
    expect(ref?.resolved).toBe(true);
    expect(ref?.how).toBe('defined in libhelper.so.1, which the binary loads');
  });

  it('no directory, or no --binary: usage error, no output', { timeout: 60_000 }, async () => {
    const noValue = await runCdo(cdoArgs('bad.o', ['--library-dir']));
    expect(noValue.exitCode).toBe(1);
    expect(noValue.stderr).toContain('--library-dir needs a directory');
    const noBinary = await runCdo([join(dir, 'o/prog.o'), join(dir, 'p/prog.o'), '--output', join(dir, 'bad.o'), '--library-dir', sonames!]);
    expect(noBinary.exitCode).toBe(1);
    expect(noBinary.stderr).toContain('--library-dir needs --binary');
    expect(existsSync(join(dir, 'bad.o'))).toBe(false);
  });
});

describe('wfpatch-ctl check BUNDLE PROGRAM --library-dir DIR', () => {
  const check = async (extra: string[]) => {
    const r = await execa(ctl, ['check', join(dir, 'patch.o'), join(dir, 'o/prog'), ...extra], { reject: false });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  };

  it('without it, the library is not found and the reference is unresolved', { timeout: 60_000 }, async () => {
    const r = await check([]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/error: unresolved symbol helper_new \(not in .*prog, .*libraries not found: libhelper\.so\.1\)/);
  });

  it('with it, the library is read and the bundle passes', { timeout: 60_000 }, async () => {
    const r = await check(libraryDirArgs(sonames));
    expect(r.stdout).toMatch(/^ok: .*patch\.o against .*prog \(build-id [0-9a-f]+\)/m);
    expect(r.stdout).not.toContain('not found');
    expect(r.exitCode).toBe(0);
  });

  it('a malformed option: exit 2 with the usage', { timeout: 60_000 }, async () => {
    for (const bad of [['--library-dir'], ['--library-dir', ''], ['--library-dir', 'a:b']]) {
      const r = await check(bad);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('[--library-dir DIR]');
    }
  });
});
