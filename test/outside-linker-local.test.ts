/**
 * Issue #16 (nfs-utils): a patched object calls a function through a header that declares it
 * with default visibility, while the object defining it marks it hidden. The linker turns such
 * a symbol into a LOCAL of the binary (under the empty STT_FILE block), so create-diff-object
 * --binary must resolve the plain global reference against that local — nfs-utils' cache.o
 * calling xlog() in rpc.mountd was listed as unresolved although the binary has it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../pipeline/src/paths.ts';

const cdo = join(repoRoot, 'kpatch-fork/bin/create-diff-object');
const flags = ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIE'];
let dir: string;

beforeAll(async () => {
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork'), 'bin/create-diff-object']);
  dir = await mkdtemp(join(tmpdir(), 'wfbuild-linker-local-'));
  await mkdir(join(dir, 'orig'));
  await mkdir(join(dir, 'patched'));
  await writeFile(join(dir, 'log.c'), '__attribute__((visibility("hidden"))) int xlog(int a) { return a * 3 + 1; }\n');
  await writeFile(join(dir, 'main.c'), 'int handler(int);\nint main(int c, char **v) { (void)v; return handler(c); }\n');
  const user = (n: number): string => `int xlog(int a);\nint handler(int x) { return xlog(x) + ${n}; }\n`;
  await writeFile(join(dir, 'orig/user.c'), user(1));
  await writeFile(join(dir, 'patched/user.c'), user(2));
  for (const side of ['orig', 'patched']) await execa('gcc', [...flags, '-c', 'user.c', '-o', 'user.o'], { cwd: join(dir, side) });
  for (const unit of ['log', 'main']) await execa('gcc', [...flags, '-c', `${unit}.c`], { cwd: dir });
  await execa('gcc', ['-pie', '-o', 'prog', 'main.o', 'orig/user.o', 'log.o'], { cwd: dir });
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('create-diff-object --binary: a hidden definition the linker made local', () => {
  it('is a LOCAL symbol of the linked binary (the case being tested)', async () => {
    const { stdout } = await execa('readelf', ['-sW', join(dir, 'prog')]);
    expect(stdout).toMatch(/FUNC\s+LOCAL\s+DEFAULT\s+\d+\s+xlog$/m);
  });

  it('resolves the default-visibility reference to it, and names it like a hidden reference', async () => {
    const verdictPath = join(dir, 'verdict.json');
    const r = await execa(cdo, ['orig/user.o', 'patched/user.o', '--output', 'patch.o', '--verdict', verdictPath, '--binary', 'prog'], { cwd: dir, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const verdict = JSON.parse(await readFile(verdictPath, 'utf8')) as { unresolved: string[]; references: { name: string; symbol: string; resolved: boolean; how: string }[] };
    expect(verdict.unresolved).toEqual([]);
    expect(verdict.references.find((x) => x.name === 'xlog')).toMatchObject({ symbol: '__wfsym:1:xlog:', resolved: true, how: expect.stringMatching(/linker-made local/) });
    const { stdout } = await execa('readelf', ['-sW', join(dir, 'patch.o')]);
    expect(stdout).toMatch(/UND __wfsym:1:xlog:$/m);
  });

  it('still calls a name the binary has nowhere unresolved (exit 5)', async () => {
    await writeFile(join(dir, 'patched/user.c'), 'int xlog(int a);\nint nowhere(int a);\nint handler(int x) { return xlog(x) + nowhere(x); }\n');
    await execa('gcc', [...flags, '-c', 'user.c', '-o', 'user.o'], { cwd: join(dir, 'patched') });
    const verdictPath = join(dir, 'verdict2.json');
    const r = await execa(cdo, ['orig/user.o', 'patched/user.o', '--output', 'patch2.o', '--verdict', verdictPath, '--binary', 'prog'], { cwd: dir, reject: false });
    expect(r.exitCode).toBe(5);
    const verdict = JSON.parse(await readFile(verdictPath, 'utf8')) as { unresolved: string[] };
    expect(verdict.unresolved).toEqual(['nowhere']);
  });
});
