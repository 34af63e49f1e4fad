/**
 * `wfpatch-ctl check BUNDLE BINARY` (kpatch-fork/runtime/check.c): the loader's dry run. A
 * patch create-diff-object made for a binary passes; the same patch against another build, a
 * renamed symbol that nothing exports, a local at a position that does not exist, a stripped
 * binary, a file that is no patch — each fails with its reason and exit 1, and the real
 * runtime, applying the broken patch to the running program, refuses it for the same reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runCdo } from '../kpatch-fork/tests/harness.ts';

const kf = join(repoRoot, 'kpatch-fork');
const rt = join(kf, 'runtime');
const ctl = join(rt, 'build', 'wfpatch-ctl');
let dir = '';

const libC = `#include <stdio.h>
static int calls;
static int __attribute__((noinline)) weight(int i) { return i * 3 + calls; }
int describe(int i, char *buf, unsigned long n)
{
	calls++;
	return snprintf(buf, n, "v1 calls=%d w=%d", calls, weight(i));
}
`;
// strlen: a GNU indirect function in libc, which dlsym resolves (the dry run must too)
const libPatched = libC.replace('"v1 calls=%d w=%d"', '"v2 calls=%d w=%d"').replace('#include <stdio.h>', '#include <stdio.h>\n#include <string.h>').replace('\treturn snprintf(buf, n,', '\tif (strlen(buf) > n) return -1;\n\treturn snprintf(buf, n,');
const mainC = `#include <stdio.h>
#include <unistd.h>
#include "wfpatch.h"
int describe(int i, char *buf, unsigned long n);
int main(void)
{
	char buf[64];
	wf_init((struct wf_configuration){ 0 });
	for (int i = 0; i < 60; i++) {
		wf_global_quiescence("main", 1);
		describe(i, buf, sizeof(buf));
		printf("%d %s\\n", i, buf);
		fflush(stdout);
		usleep(10000);
	}
	return 0;
}
`;

async function check(bundle: string, binary: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(ctl, ['check', bundle, binary], { reject: false });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await execa('make', ['-C', kf]);
  dir = await mkdtemp(join(tmpdir(), 'runtime-check-'));
  for (const t of ['o', 'p']) await mkdir(join(dir, t), { recursive: true });
  await writeFile(join(dir, 'o/lib.c'), libC);
  await writeFile(join(dir, 'p/lib.c'), libPatched);
  await writeFile(join(dir, 'o/main.c'), mainC);
  for (const t of ['o', 'p']) await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE', '-c', 'lib.c'], { cwd: join(dir, t) });
  await execa('gcc', ['-O2', '-g', '-fPIE', `-I${rt}`, '-c', 'main.c'], { cwd: join(dir, 'o') });
  const link = (out: string, extra: string[] = []) =>
    execa('gcc', ['-pie', '-Wl,--build-id', '-o', out, 'main.o', 'lib.o', ...extra, '-L', join(rt, 'build'), '-lwfpatch', '-ldl', '-lpthread', `-Wl,-rpath,${join(rt, 'build')}`], { cwd: join(dir, 'o') });
  await link('prog');
  // the same program, linked once more with other contents: another build-id
  await link('other', ['-Wl,--defsym=wf_unused_marker=0']);
  const r = await runCdo([join(dir, 'o/lib.o'), join(dir, 'p/lib.o'), '--output', join(dir, 'patch.o'), '--binary', join(dir, 'o/prog')], join(dir, 'v.json'));
  expect(r.exitCode).toBe(0);
});
afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

describe('wfpatch-ctl check BUNDLE BINARY', () => {
  it('passes the patch made for the binary, resolving locals in it and libc through the libraries it needs', { timeout: 60_000 }, async () => {
    expect((await execa('readelf', ['-sW', join(dir, 'patch.o')])).stdout).toMatch(/UND strlen$/m);
    const r = await check(join(dir, 'patch.o'), join(dir, 'o/prog'));
    expect(r.stdout).toMatch(/^ok: .*patch\.o against .*prog \(build-id [0-9a-f]+\): \d+ relocations, [1-9]\d* undefined symbols \([1-9]\d* in libraries/m);
    expect(r.stdout).toContain('1 functions');
    expect(r.exitCode).toBe(0);
  });

  it('refuses it against another build (build-id)', { timeout: 60_000 }, async () => {
    const r = await check(join(dir, 'patch.o'), join(dir, 'o/other'));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/error: wrong build-id: the patch is for [0-9a-f]+, .*other is [0-9a-f]+/);
    expect(r.stdout).toMatch(/^FAILED: /m);
  });

  it('names a symbol nothing exports, and the running program refuses the same patch for it', { timeout: 60_000 }, async () => {
    const bad = join(dir, 'unresolved.o');
    await execa('objcopy', ['--redefine-sym', 'snprintf=snprintf_gone', join(dir, 'patch.o'), bad]);
    const r = await check(bad, join(dir, 'o/prog'));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/error: unresolved symbol snprintf_gone \(not in .*prog, not exported by the \d+ libraries it needs\)/);
    // the real loader, in the running program, agrees
    const log = join(dir, 'unresolved.jsonl');
    const child = execa(join(dir, 'o/prog'), [], { reject: false, env: { WF_GLOBAL: '1', WF_PATCH_QUEUE: bad, WF_LOGFILE: log }, timeout: 30_000 });
    let sent = false;
    child.stdout!.on('data', (chunk: Buffer) => {
      if (!sent && chunk.toString().includes('3 v1')) {
        sent = true;
        process.kill(child.pid!, 34); // SIGPATCH
      }
    });
    const run = await child;
    expect(run.stdout).not.toContain(' v2 ');
    const text = existsSync(log) ? await readFile(log, 'utf8') : '';
    expect(text).toContain('snprintf_gone');
    expect(text).toMatch(/rejected/);
  });

  it('names a local at a position the binary does not have', { timeout: 60_000 }, async () => {
    const syms = (await execa('readelf', ['-sW', join(dir, 'patch.o')])).stdout;
    const local = /__wfsym:1:(\w+(?:\.\d+)?):lib\.c/.exec(syms);
    expect(local).not.toBeNull();
    const bad = join(dir, 'sympos.o');
    await execa('objcopy', ['--redefine-sym', `${local![0]}=__wfsym:2:${local![1]}:lib.c`, join(dir, 'patch.o'), bad]);
    const r = await check(bad, join(dir, 'o/prog'));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`error: local ${local![1]} in lib.c: position 2 requested, only 1 exist`);
  });

  it('a stripped binary without a debug file cannot resolve locals', { timeout: 60_000 }, async () => {
    const stripped = join(dir, 'stripped');
    await copyFile(join(dir, 'o/prog'), stripped);
    await execa('strip', [stripped]);
    const r = await check(join(dir, 'patch.o'), stripped);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/has no \.symtab \(stripped, no debug file\)/);
  });

  it('a file that is no patch object, and usage errors, exit non-zero with the reason', { timeout: 60_000 }, async () => {
    const r = await check(join(dir, 'o/prog'), join(dir, 'o/prog'));
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('expected ET_REL');
    const missing = await check(join(dir, 'patch.o'), join(dir, 'nonexistent'));
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot open .*nonexistent/);
    const usage = await execa(ctl, ['check', join(dir, 'patch.o')], { reject: false });
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain('wfpatch-ctl check BUNDLE BINARY');
  });
});
