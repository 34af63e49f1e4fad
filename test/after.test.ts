/**
 * Issue #16: `--after P1.patch,P2.patch` (or a series file) — a fix written on top of an earlier
 * fix of the same update. smallc's 0005 changes the line 0001 changed, so it applies only after
 * 0001; with --after both builds contain 0001 and the verdict concerns 0005 alone.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Report } from '../pipeline/src/report/types.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
const smallc = new URL('./fixtures/smallc/', import.meta.url).pathname;
const tree = join(smallc, 'tree');
const first = join(smallc, 'patches/0001-text-only-CVE-2099-0001.patch');
const docs = join(smallc, 'patches/0003-docs-only.patch');
const second = join(smallc, 'after/0005-greet-limit-inclusive-after-0001.patch');

let scratch: string;
let cache: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-after-'));
  cache = join(scratch, 'cache');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function run(args: string[]) {
  return execa(wfbuild, args, { reject: false, all: true, env: { WFPATCH_CACHE: cache } });
}

async function report(out: string): Promise<Report> {
  return JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
}

describe('--after', () => {
  it('without it, the follow-up fix does not apply, and the message says how to name the earlier fix', async () => {
    const result = await run([second, '--source', tree, '--out', join(scratch, 'out-none')]);
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toMatch(/greet\.c: hunk #1 \(at line 7\) does not apply/);
    expect(result.stderr).toMatch(/--after/);
  });

  it('--after P1,P2: both builds contain the earlier fixes; the verdict is the follow-up\'s alone', async () => {
    const out = join(scratch, 'out-list');
    const result = await run([second, '--source', tree, '--after', `${docs},${first}`, '--out', out]);
    expect(result.exitCode, result.all).toBe(0);
    const r = await report(out);
    expect(r.after.map((p) => p.name)).toEqual(['0003-docs-only.patch', '0001-text-only-CVE-2099-0001.patch']);
    expect(r).toMatchObject({ outcome: 'kpatchable', textOnly: true });
    expect(r.objects.map((o) => o.object)).toEqual(['greet.o']);
    // The original build is of the tree with 0001 (its verdict would otherwise be 0001 + 0005).
    const orig = join(cache, 'wfbuild/orig');
    const key = r.originalBuild!.key;
    expect(await readFile(join(orig, key, 'tree/greet.c'), 'utf8')).toContain('if (len == 0 || len > (size_t)limits.max_name)');
    expect(await readFile(join(orig, key, 'tree/README.md'), 'utf8')).toContain('Run: ./smallc NAME...');
    // The --source tree itself is never modified.
    expect(await readFile(join(tree, 'greet.c'), 'utf8')).toContain('if (len > (size_t)limits.max_name)');
  });

  it('a series file names them too, and a second run reuses the prepared tree and its original build', async () => {
    const patches = join(scratch, 'patches');
    await mkdir(patches);
    await copyFile(first, join(patches, 'earlier-fix.patch'));
    await writeFile(join(patches, 'series'), '# the update so far\nearlier-fix.patch\n');
    const out = join(scratch, 'out-series');
    const result = await run([second, '--source', tree, '--after', join(patches, 'series'), '--out', out]);
    expect(result.exitCode, result.all).toBe(0);
    const r = await report(out);
    expect(r.after.map((p) => p.name)).toEqual(['earlier-fix.patch']);
    const again = await run([second, '--source', tree, '--after', join(patches, 'series'), '--out', join(scratch, 'out-series-2')]);
    expect(again.exitCode, again.all).toBe(0);
    expect((await report(join(scratch, 'out-series-2'))).originalBuild).toEqual({ key: r.originalBuild!.key, cached: true });
    expect((await readdir(join(cache, 'wfbuild/based'))).filter((n) => !n.includes('.tmp-'))).toHaveLength(2);
  });

  it('an earlier fix that does not apply is named as such', async () => {
    const result = await run([first, '--source', tree, '--after', `${first},${second},${first}`, '--out', join(scratch, 'out-bad')]);
    expect(result.exitCode, result.all).toBe(2);
    expect(result.stderr).toMatch(/--after: 0001-text-only-CVE-2099-0001\.patch \(after 0001-text-only-CVE-2099-0001\.patch, 0005-greet-limit-inclusive-after-0001\.patch\) does not apply/);
  });
});
