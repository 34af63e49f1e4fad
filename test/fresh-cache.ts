/**
 * `npm test` (after the type check): runs the test files one at a time, each alone with an
 * empty WFPATCH_CACHE, as a fresh machine would, so a test that only passes because another
 * test (or a manual command) filled the cache fails here. `npm test -- FILE…` runs some.
 *
 * Three stores are shared with the regular cache instead of starting empty, because they are
 * content-addressed and every reader builds the entry it misses under a lock (so sharing them
 * cannot hide a missing preparation step, only the minutes of rebuilding them):
 * - `kernel/`: kernel builds, keyed by source version, series and config fragments;
 * - `wfbuild/orig/`: original package builds, keyed by the tree's contents and the build command;
 * - `enable/`: wfpatch-enabled package builds, keyed by package, version, enablement patch and
 *   libwfpatch;
 * - `rootfs/`: debootstrap'd Debian roots for guest tests, keyed by suite and package list.
 * Everything else — fetched sources, unpacked trees, corpus results, walk objects — starts empty.
 */
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { cacheRoot, repoRoot } from '../pipeline/src/paths.ts';

/** Paths under the cache root that the fresh caches share (see the header). */
export const sharedStores: readonly string[] = ['kernel', join('wfbuild', 'orig'), 'enable', 'rootfs'];

interface FileOutcome {
  readonly file: string;
  readonly passed: boolean;
  readonly seconds: number;
}

async function freshCache(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wfpatch-fresh-cache-'));
  for (const store of sharedStores) {
    const target = join(cacheRoot, store);
    await mkdir(target, { recursive: true });
    await mkdir(join(dir, store, '..'), { recursive: true });
    await symlink(target, join(dir, store));
  }
  return dir;
}

// OpenLDAP's enabled build and the two series units' builds take 25–40 minutes each cold on two
// cores, which would take CI past its hour on a new machine (the issue allows skipping slapd's
// build in CI with the reason printed). WFPATCH_SKIP_OPENLDAP=0 runs them.
const skipOpenldap = process.env.WFPATCH_SKIP_OPENLDAP ?? '1';
if (skipOpenldap === '1') console.log('npm test: OpenLDAP suites skip their builds (WFPATCH_SKIP_OPENLDAP=1 by default: 25–40 min per cold OpenLDAP build); WFPATCH_SKIP_OPENLDAP=0 npm test runs them');

async function runAlone(file: string): Promise<FileOutcome> {
  const cache = await freshCache();
  const started = performance.now();
  try {
    const run = await execa('npx', ['vitest', 'run', file], {
      cwd: repoRoot,
      env: { WFPATCH_CACHE: cache, WFPATCH_SKIP_OPENLDAP: skipOpenldap },
      reject: false,
      stdout: 'inherit',
      stderr: 'inherit',
      stdin: 'ignore',
    });
    return { file, passed: run.exitCode === 0, seconds: Math.round((performance.now() - started) / 1000) };
  } finally {
    await rm(cache, { recursive: true, force: true });
  }
}

async function testFiles(): Promise<string[]> {
  const names = await readdir(join(repoRoot, 'test'));
  return names.filter((n) => n.endsWith('.test.ts')).sort().map((n) => join('test', n));
}

const { positionals } = parseArgs({ allowPositionals: true, options: {} });
const files = positionals.length > 0 ? positionals.map((f) => relative(repoRoot, join(process.cwd(), f))) : await testFiles();
const outcomes: FileOutcome[] = [];
for (const file of files) {
  console.log(`\n=== ${file} alone, empty cache (shared: ${sharedStores.join(', ')}) ===`);
  outcomes.push(await runAlone(file));
}
console.log('\nEach test file alone on an empty cache:');
for (const o of outcomes) console.log(`  ${o.passed ? 'ok  ' : 'FAIL'} ${o.file} (${o.seconds} s)`);
const failed = outcomes.filter((o) => !o.passed).length;
console.log(`${outcomes.length - failed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
