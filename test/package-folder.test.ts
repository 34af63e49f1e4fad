/**
 * Issue #16, point 1: `wfbuild --package` run from a folder that already holds the package's
 * .dsc (people run `apt-get source` first). apt-get source --print-uris printed "Skipping
 * already downloaded file" there instead of the URIs, and wfbuild said "no such source package".
 * memcached 1.6.18-1 from the registry (as test/memcached.test.ts); a documentation-only patch,
 * so nothing is built (seconds, apart from the download).
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Report } from '../pipeline/src/report/types.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;

let scratch: string;
let folder: string;

const docsPatch = `Description: a note for packagers
Forwarded: not-needed
---
--- /dev/null
+++ b/doc/wfpatch-note.txt
@@ -0,0 +1 @@
+A documentation-only change.
`;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wfbuild-pkgdir-'));
  folder = await mkdtemp(join(scratch, 'user-'));
  // What a user does first: the source package in the current folder.
  await execa('apt-get', ['source', '--download-only', '-q', 'memcached=1.6.18-1'], { cwd: folder, stdin: 'ignore' });
  await writeFile(join(scratch, 'docs-note.patch'), docsPatch);
}, 600_000);
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('--package from a folder that holds the .dsc', () => {
  it('fetches and classifies as from anywhere else', async () => {
    expect(await readdir(folder)).toContain('memcached_1.6.18-1.dsc');
    const out = join(scratch, 'out');
    const result = await execa(wfbuild, [join(scratch, 'docs-note.patch'), '--package', 'memcached=1.6.18-1', '--out', out], {
      cwd: folder,
      reject: false,
      all: true,
      env: { WFPATCH_CACHE: join(scratch, 'cache') },
    });
    expect(result.all).not.toMatch(/no such source package/);
    expect(result.exitCode, result.all).toBe(3);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as Report;
    expect(report.package).toEqual({ name: 'memcached', version: '1.6.18-1' });
    expect(report.outcome).toBe('no-compiled-code');
    // The caller's folder is left as it was.
    expect((await readdir(folder)).sort()).toEqual(['memcached_1.6.18-1.debian.tar.xz', 'memcached_1.6.18-1.dsc', 'memcached_1.6.18.orig.tar.xz']);
  }, 600_000);
});
