/**
 * Benchmark (not a test): the whole `wfbuild` of one patch against one plain build of the
 * package, in the same run, on the same machine. kpatch-build builds twice (2x); wfbuild aims
 * for at most 1.5x: the original is built once (then cached), the patched build is incremental.
 *
 *   npx tsx pipeline/src/stages/bench.ts [--package memcached=1.6.18-1] [--patch FILE] [--runs N]
 *
 * Per run: (1) plain `debian/rules build-arch` in a fresh copy of the tree (no wrapper; the
 * same target and clean environment as wfbuild's builds);
 * (2) `wfbuild build` with an empty original-build cache (cold: original build through the
 * wrapper + patched rebuild + create-diff-object + bundle); (3) the same again with the cache
 * (warm: what each further patch of the package costs). Runs alternate (1) and (2) first so a
 * load change on the shared machine does not favour one side.
 */
import { parseArgs } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot, repoRoot } from '../paths.ts';
import { fetchPackage } from './source.ts';
import { cleanBuildEnv } from './build-env.ts';
import { copyTree } from '../common/fs.ts';
import { debBuildOptions } from './build-command.ts';
import { classifyPatch, type Report } from './index.ts';

const { values } = parseArgs({
  options: {
    package: { type: 'string', default: 'memcached=1.6.18-1' },
    patch: { type: 'string', default: join(repoRoot, 'test/fixtures/memcached/0001-safe_strcpy-empty-destination.patch') },
    runs: { type: 'string', default: '1' },
  },
  strict: true,
});

const tree = await fetchPackage(values.package!, join(cacheRoot, 'wfbuild/sources'));
const scratch = await mkdtemp(join(tmpdir(), 'wfbuild-bench-'));

async function plainBuild(): Promise<number> {
  const copy = join(scratch, `plain-${Date.now()}`);
  await copyTree(tree.dir, copy);
  const start = performance.now();
  await execa('nice', ['-n', '10', 'debian/rules', 'build-arch'], { cwd: copy, env: cleanBuildEnv({ DEB_BUILD_OPTIONS: debBuildOptions }), extendEnv: false, stdin: 'ignore' });
  const ms = performance.now() - start;
  await rm(copy, { recursive: true, force: true });
  return ms;
}

async function wfbuild(cache: string): Promise<{ ms: number; report: Report }> {
  const start = performance.now();
  const report = await classifyPatch({ patch: values.patch!, source: tree.dir, cache, out: join(scratch, 'out'), renderer: 'silent' });
  return { ms: performance.now() - start, report };
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
console.log(`wfbuild benchmark: ${values.package} (${tree.dir}), patch ${values.patch}`);
try {
  for (let run = 1; run <= Number(values.runs); run++) {
    const cache = join(scratch, `cache-${run}`);
    let plain: number;
    let cold: { ms: number; report: Report };
    if (run % 2 === 1) {
      plain = await plainBuild();
      cold = await wfbuild(cache);
    } else {
      cold = await wfbuild(cache);
      plain = await plainBuild();
    }
    const warm = await wfbuild(cache);
    await rm(cache, { recursive: true, force: true });
    console.log(`run ${run}: outcome ${cold.report.outcome}`);
    console.log(`  plain debian/rules build-arch     ${s(plain)}`);
    console.log(`  wfbuild, cold cache               ${s(cold.ms)}  = ${(cold.ms / plain).toFixed(2)}x plain   stages: ${Object.entries(cold.report.timings).map(([k, v]) => `${k} ${s(v)}`).join(', ')}`);
    console.log(`  wfbuild, original build cached    ${s(warm.ms)}  = ${(warm.ms / plain).toFixed(2)}x plain   stages: ${Object.entries(warm.report.timings).map(([k, v]) => `${k} ${s(v)}`).join(', ')}`);
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
