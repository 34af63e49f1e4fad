/**
 * A bounded AFL++ run (45 s) over create-diff-object's reader and passes, seeded with real
 * objects compiled from kpatch-fork/tests/fuzz/seeds. Every input AFL keeps is then replayed
 * through the address/undefined-behaviour sanitizer build. Anything that crashes is copied to
 * kpatch-fork/tests/crashers/ (replayed by cdo-robust.test.ts forever after) and fails the test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';

const kf = join(repoRoot, 'kpatch-fork');
const seconds = Number(process.env.CDO_FUZZ_SECONDS ?? 45);
let dir = '';

beforeAll(async () => {
  await execa('make', ['-C', kf, 'bin/cdo-fuzz-afl', 'bin/cdo-fuzz-replay']);
  dir = await mkdtemp(join(tmpdir(), 'cdo-fuzz-'));
  await mkdir(join(dir, 'in'));
  const seeds = join(kf, 'tests/fuzz/seeds');
  for (const f of await readdir(seeds)) {
    const cxx = f.endsWith('.cc');
    if (!cxx && !f.endsWith('.c')) continue;
    const obj = join(dir, 'in', `${basename(f).replace(/\.\w+$/, '')}.o`);
    // small seeds (no -g) fuzz faster; the orig side keeps -g for realism
    await execa(cxx ? 'g++' : 'gcc', ['-O2', '-ffunction-sections', '-fdata-sections', '-fPIC', '-c', join(seeds, f), '-o', obj]);
  }
  await execa('gcc', ['-O2', '-g', '-ffunction-sections', '-fdata-sections', '-fPIC', '-c', join(seeds, 'basic.c'), '-o', join(dir, 'orig.o')]);
});

afterAll(async () => {
  if (dir && !process.env.CDO_KEEP) await rm(dir, { recursive: true, force: true });
});

describe('create-diff-object fuzzing (AFL++)', () => {
  it(`finds no crash in ${seconds} s, and nothing AFL kept trips the sanitizers`, { timeout: (seconds + 240) * 1000 }, async () => {
    const afl = await execa('nice', ['-n', '10', 'afl-fuzz', '-i', join(dir, 'in'), '-o', join(dir, 'out'), '-V', String(seconds), '-t', '1000', '--', join(kf, 'bin/cdo-fuzz-afl'), '@@', join(dir, 'orig.o')], {
      reject: false,
      env: { AFL_SKIP_CPUFREQ: '1', AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES: '1', AFL_NO_UI: '1', AFL_NO_AFFINITY: '1', AFL_QUIET: '1' },
      timeout: (seconds + 120) * 1000,
    });
    expect(afl.exitCode, afl.stderr.slice(-2000) + afl.stdout.slice(-2000)).toBe(0);
    const found = join(dir, 'out/default');
    const queue = (await readdir(join(found, 'queue'))).filter((f) => f.startsWith('id'));
    expect(queue.length).toBeGreaterThan(3); // AFL did explore
    const crashes = existsSync(join(found, 'crashes')) ? (await readdir(join(found, 'crashes'))).filter((f) => f.startsWith('id')) : [];
    const failures: string[] = [];
    const keep = async (from: string, why: string): Promise<void> => {
      const name = `afl-${Date.now().toString(36)}-${failures.length}.bin`;
      await copyFile(from, join(kf, 'tests/crashers', name));
      failures.push(`${name}: ${why}`);
    };
    for (const f of crashes) await keep(join(found, 'crashes', f), 'AFL crash');
    for (const f of queue) {
      const r = await execa(join(kf, 'bin/cdo-fuzz-replay'), [join(found, 'queue', f), join(dir, 'orig.o')], {
        reject: false,
        env: { ASAN_OPTIONS: 'detect_leaks=0', UBSAN_OPTIONS: 'halt_on_error=1' },
      });
      const code = r.exitCode ?? -1;
      if (code < 0 || code > 5) await keep(join(found, 'queue', f), `sanitizer: exit ${code} ${r.stderr.slice(0, 300)}`);
    }
    expect(failures).toEqual([]);
  });
});
